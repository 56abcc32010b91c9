"""Normalization layers TF.js 4.22 lacks: Normalization (feature standardization), GroupNormalization,
UnitNormalization and RMSNormalization, each rewritten into Rescaling, Reshape, LayerNormalization and
cropping layers TF.js has. Statistics and scales stored in the file become the constants of a Rescaling."""

from __future__ import annotations

import math

import numpy as np

from converter.lowering.engine import Refuse, Site, Step, make_entry, output_name, rule

KERAS_EPSILON = 1e-7  # keras.backend.epsilon(), Normalization's floor on the standard deviation (not in the file)
UNIT_EPSILON = 1e-24  # LayerNormalization's epsilon for UnitNormalization, times the number of features


def constant(values: np.ndarray, shape: tuple[int, ...] | None = None):
    """float32 values as a Rescaling argument: a number, or nested lists of `shape` (TF.js broadcasts them
    against the input as numpy does: a list over the last axis, nested lists over the trailing ones)."""
    values = np.asarray(values, dtype=np.float32)
    if values.size == 1 and shape is None:
        return float(values.reshape(()))
    return values.reshape(shape if shape is not None else values.shape).astype(np.float64).tolist()


def static_dims(site: Site) -> list[int] | None:
    """The input's dimensions after the batch, when the file records every one."""
    shape = site.shape
    if shape is None or len(shape) < 2 or not all(isinstance(d, int) for d in shape[1:]):
        return None
    return list(shape[1:])


def named(site: Site, weight: str) -> str:
    """The full name of the layer's weight `weight` (files name weights `<layer>/<weight>`)."""
    for name in site.weights:
        if name.rsplit("/", 1)[-1] == weight:
            return name
    raise Refuse(f"the weight {site.name}/{weight} needed to lower it is missing")


def _axes(value) -> list[int]:
    if value is None:
        return []
    return [value] if isinstance(value, int) else list(value)


def _broadcast_shape(site: Site, keep: list[int], values: np.ndarray) -> tuple[int, ...] | None:
    """The shape (batch excluded) Keras broadcasts Normalization's statistics to: `values`' axes on the last of
    the kept axes, 1 elsewhere (normalization.py build). None: a list over the last axis, whatever the rank."""
    if values.ndim == 0:
        return ()
    if values.ndim == 1 and keep[-1:] == [-1]:
        return None
    if site.rank is None:
        raise Refuse(
            "Normalization over axes other than the last needs the input's rank, which this file does not record"
        )
    rank = site.rank
    kept = sorted(a % rank for a in keep)
    if 0 in kept:
        raise Refuse("Normalization with statistics per batch index (the batch axis kept) is not lowered")
    shape = [1] * rank
    for i in range(1, values.ndim + 1):
        shape[kept[-i]] = values.shape[-i]
    return tuple(shape[1:])


@rule("normalization", "Normalization")
def normalization(site: Site):
    cfg = site.expect("axis", "invert", "mean", "variance")
    keep = _axes(cfg.get("axis", -1))
    if cfg.get("mean") is not None:
        mean = np.asarray(cfg["mean"], dtype=np.float32)
        variance = np.asarray(cfg["variance"], dtype=np.float32)
    else:  # adapted: the statistics are the layer's weights (and a count, needed only to adapt again)
        mean, variance = site.fold(named(site, "mean")), site.fold(named(site, "variance"))
        site.fold(named(site, "count"))
    shape = _broadcast_shape(site, keep, mean)
    std = np.maximum(np.sqrt(variance.astype(np.float32)), np.float32(KERAS_EPSILON))
    if cfg.get("invert"):
        steps: list[Step] = [("Rescaling", {"scale": constant(std, shape), "offset": constant(mean, shape)}, None)]
        return site.chain(steps), "Normalization(invert=True) -> Rescaling(scale=std, offset=mean)"
    steps = [
        ("Rescaling", {"scale": 1.0, "offset": constant(-mean, shape)}, "center"),
        ("Rescaling", {"scale": constant(np.float32(1) / std, shape), "offset": 0.0}, None),
    ]
    return site.chain(steps), "Normalization -> Rescaling(offset=-mean) + Rescaling(scale=1/std)"


@rule("group_normalization", "GroupNormalization")
def group_normalization(site: Site):
    cfg = site.expect(
        "groups",
        "axis",
        "epsilon",
        "center",
        "scale",
        "beta_initializer",
        "gamma_initializer",
        "beta_regularizer",
        "gamma_regularizer",
        "beta_constraint",
        "gamma_constraint",
    )
    dims = static_dims(site)
    if dims is None:
        raise Refuse("GroupNormalization needs the input's static shape, which this file does not record")
    rank = len(dims) + 1
    axis = cfg.get("axis", -1) % rank
    channels = dims[axis - 1]
    groups = channels if cfg.get("groups", 32) == -1 else int(cfg.get("groups", 32))
    if axis not in (1, rank - 1) or channels % groups:
        raise Refuse(f"GroupNormalization over axis {cfg.get('axis')} of a rank-{rank} input is not lowered")
    spatial = math.prod(dims[:-1]) if axis == rank - 1 else math.prod(dims[1:])
    if axis == rank - 1:  # (spatial, groups, channels per group), normalized over all but the groups
        grouped, normalized = [spatial, groups, channels // groups], [1, 3]
        affine: tuple[int, ...] | None = None
    else:  # channels_first: (groups, channels per group x spatial)
        grouped, normalized = [groups, channels // groups * spatial], [2]
        affine = (channels, *[1] * (rank - 2))
    norm = {"axis": normalized, "epsilon": float(cfg.get("epsilon", 1e-3)), "center": False, "scale": False}
    steps: list[Step] = [
        ("Reshape", {"target_shape": grouped}, "groups"),
        ("LayerNormalization", norm, "normalize"),
        ("Reshape", {"target_shape": dims}, "ungroup"),
    ]
    gamma = site.fold(named(site, "gamma")) if cfg.get("scale", True) else np.ones(channels, np.float32)
    beta = site.fold(named(site, "beta")) if cfg.get("center", True) else np.zeros(channels, np.float32)
    if cfg.get("scale", True) or cfg.get("center", True):
        steps.append(("Rescaling", {"scale": constant(gamma, affine), "offset": constant(beta, affine)}, None))
    else:
        steps[-1] = ("Reshape", {"target_shape": dims}, None)
    return site.chain(steps), f"GroupNormalization({groups} groups) -> Reshape + LayerNormalization + Reshape"


def _dims_for(site: Site, axis) -> list[int]:
    """The static input dimensions UnitNormalization and RMSNormalization need (their Reshapes), after checking
    they normalize the last axis alone and the model can hold their branch."""
    axes = _axes(axis)
    if len(axes) != 1 or not (axes[0] == -1 or (site.rank is not None and axes[0] == site.rank - 1)):
        raise Refuse(f"{site.cls} over axis {axis} (not the last alone) is not lowered")
    if not site.functional:
        raise Refuse(f"{site.cls} lowers to two branches joined, which a Sequential cannot hold")
    dims = static_dims(site)
    if dims is None:
        raise Refuse(f"{site.cls} needs the input's static shape, which this file does not record")
    return dims


def _root_mean_square(site: Site, dims: list[int], epsilon: float, scale) -> list[dict]:
    """x * rsqrt(mean(x^2, last axis) + epsilon) * scale: LayerNormalization of concat(x, -x) (mean 0, variance
    mean(x^2)), of which the first half is kept, then Rescaling(scale)."""
    channels, rows = dims[-1], math.prod(dims[:-1])
    nodes = site.entry.get("inbound_nodes") or []
    name = site.name
    negate = site.chain([("Rescaling", {"scale": -1.0, "offset": 0.0}, "negate")])
    pair = make_entry(
        "Concatenate",
        {"axis": -1},
        f"{name}__pair",
        [[node[0], [output_name(negate), k, 0, {}]] for k, node in enumerate(nodes)],
    )
    rest: list[Step] = [
        ("LayerNormalization", {"axis": -1, "epsilon": epsilon, "center": False, "scale": False}, "normalize"),
        ("Reshape", {"target_shape": [rows, 2, channels]}, "halves"),
        ("Cropping2D", {"cropping": [[0, 0], [0, 1]], "data_format": "channels_last"}, "first_half"),
        ("Reshape", {"target_shape": dims}, "unpair"),
        ("Rescaling", {"scale": scale, "offset": 0.0}, None),
    ]
    tail = site.chain(rest, first_inputs=[[[f"{name}__pair", k, 0, {}]] for k in range(len(nodes))])
    return [*negate, pair, *tail]


@rule("unit_normalization", "UnitNormalization")
def unit_normalization(site: Site):
    cfg = site.expect("axis")
    dims = _dims_for(site, cfg.get("axis", -1))
    # rsqrt(mean(x^2) + eps) / sqrt(C) = rsqrt(sum(x^2) + C eps): Keras's x * rsqrt(sum(x^2)) for every input but
    # those of norm below ~1e-8 (Keras 3 clamps rsqrt at 1e12, tf_keras's l2_normalize the sum at 1e-12)
    scale = float(np.float32(1) / np.sqrt(np.float32(dims[-1])))
    entries = _root_mean_square(site, dims, UNIT_EPSILON / dims[-1], scale)
    return entries, "UnitNormalization -> LayerNormalization of concat(x, -x), first half, Rescaling(1/sqrt(C))"


@rule("rms_normalization", "RMSNormalization")
def rms_normalization(site: Site):
    cfg = site.expect("axis", "epsilon")
    dims = _dims_for(site, cfg.get("axis", -1))
    scale = site.fold(named(site, "scale"))
    entries = _root_mean_square(site, dims, float(cfg.get("epsilon", 1e-6)), constant(scale, scale.shape))
    return entries, "RMSNormalization -> LayerNormalization of concat(x, -x), first half, Rescaling(scale)"
