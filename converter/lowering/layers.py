"""Layers TF.js lacks (Subtract, Identity, the 1D padding, cropping and upsampling layers), axes it mis-reads
(Softmax and BatchNormalization over another axis, BatchNormalization on rank 5), and preprocessing layers
that rewrite the shape of the tensor they are given (CenterCrop, CategoryEncoding)."""

from __future__ import annotations

import copy
from typing import Any

from converter.lowering.engine import Refuse, Site, Step, as_tuple, make_entry, rule

SEQUENCE_2D = {"ZeroPadding1D": "ZeroPadding2D", "Cropping1D": "Cropping2D", "UpSampling1D": "UpSampling2D"}


def swap(rank: int, axis: int) -> list[int]:
    """Permute dims (batch excluded, 1-based) exchanging `axis` and the last axis."""
    dims = list(range(1, rank))
    dims[axis - 1], dims[-1] = dims[-1], dims[axis - 1]
    return dims


@rule("subtract", "Subtract")
def subtract(site: Site):
    if not site.functional:
        return None
    name, nodes = site.name, site.entry.get("inbound_nodes") or []
    if any(len(node) != 2 for node in nodes):
        raise Refuse("Subtract takes exactly two inputs")
    neg = make_entry(
        "Rescaling", {"scale": -1.0, "offset": 0.0}, f"{name}__negate", [[copy.deepcopy(node[1])] for node in nodes]
    )
    add = make_entry(
        "Add", {}, name, [[copy.deepcopy(node[0]), [f"{name}__negate", k, 0, {}]] for k, node in enumerate(nodes)]
    )
    return [neg, add], "Subtract -> Rescaling(scale=-1) + Add"


@rule("identity", "Identity")
def identity(site: Site):
    return site.chain([("Activation", {"activation": "linear"}, None)]), "Identity -> Activation(linear)"


@rule("sequence_2d", *SEQUENCE_2D)
def sequence_2d(site: Site):
    cls, cfg, name = site.cls, site.cfg, site.name
    if site.channels_first:
        raise Refuse(f"{cls} channels_first is not lowered")
    if cls == "UpSampling1D":
        size = cfg.get("size", 2)
        args: dict[str, Any] = {"size": [size[0] if isinstance(size, list) else size, 1], "interpolation": "nearest"}
    else:
        key = "padding" if cls == "ZeroPadding1D" else "cropping"
        a, b = as_tuple(cfg.get(key, 1), 2)
        args = {key: [[a, b], [0, 0]]}
    steps: list[Step] = [
        (
            "TimeDistributed",
            {"layer": {"class_name": "RepeatVector", "config": {"n": 1, "name": f"{name}__expand_inner"}}},
            "expand",
        ),
        (SEQUENCE_2D[cls], {**args, "data_format": "channels_last"}, "2d"),
        ("TimeDistributed", {"layer": {"class_name": "Flatten", "config": {"name": f"{name}__squeeze_inner"}}}, None),
    ]
    return (
        site.chain(steps),
        f"{cls} -> TimeDistributed(RepeatVector(1)) + {SEQUENCE_2D[cls]} + TimeDistributed(Flatten)",
    )


@rule("softmax_axis", "Softmax")
def softmax_axis(site: Site):
    cfg, rank = site.cfg, site.rank
    if cfg.get("axis", -1) in (-1, [-1]):
        return None
    axis = cfg["axis"][0] if isinstance(cfg["axis"], list) else cfg["axis"]
    if rank is None:
        raise Refuse("Softmax over a non-last axis needs the input's rank, which this file does not record")
    axis = axis % rank
    if axis == 0:
        raise Refuse("Softmax over the batch axis")
    if axis == rank - 1:
        return None
    dims = swap(rank, axis)
    steps: list[Step] = [
        ("Permute", {"dims": dims}, "axis_last"),
        ("Softmax", {"axis": -1}, "softmax"),
        ("Permute", {"dims": dims}, None),
    ]
    return site.chain(steps), f"Softmax(axis={cfg['axis']}) -> Permute + Softmax(-1) + Permute"


def _batch_norm_axis(site: Site) -> int | None:
    """The axis a BatchNormalization normalizes, counted from 0 with the batch; None where the rank is unknown
    (after a nested model, say): TF.js is then right on the last axis, and wrong nowhere the file shows."""
    axis = site.cfg.get("axis", -1)
    axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    if site.rank is None or not isinstance(axis, int):
        return None
    return axis % site.rank


@rule("batch_norm_rank5", "BatchNormalization")
def batch_norm_rank5(site: Site):
    axis = _batch_norm_axis(site)
    if axis is None or site.rank != 5:
        return None
    bn = {**site.cfg, "axis": -1}
    steps: list[Step] = []
    if axis != 4:
        steps.append(("Permute", {"dims": swap(5, axis)}, "axis_last"))
    inner = {"class_name": "BatchNormalization", "config": {**bn, "name": f"{site.name}__per_slice"}}
    steps.append(("TimeDistributed", {"layer": inner}, None))
    if axis != 4:
        steps.append(("Permute", {"dims": swap(5, axis)}, "axis_back"))
    return (
        site.chain(steps),
        "BatchNormalization(rank 5) -> TimeDistributed(BatchNormalization)" + (" in a Permute" if axis != 4 else ""),
    )


@rule("batch_norm_axis", "BatchNormalization")
def batch_norm_axis(site: Site):
    axis = _batch_norm_axis(site)
    rank = site.rank
    if axis is None or rank is None or rank == 5 or axis == rank - 1:
        return None
    dims = swap(rank, axis)
    steps: list[Step] = [
        ("Permute", {"dims": dims}, "axis_last"),
        ("BatchNormalization", {**site.cfg, "axis": -1}, None),
        ("Permute", {"dims": dims}, "axis_back"),
    ]
    return (
        site.chain(steps),
        f"BatchNormalization(axis={site.cfg.get('axis')}) -> Permute + BatchNormalization(-1) + Permute",
    )


@rule("center_crop", "CenterCrop")
def center_crop(site: Site):
    shape, cfg = site.shape, site.cfg
    if shape is None or len(shape) != 4 or shape[1] is None or shape[2] is None:
        return None  # the file does not say: TF.js's own CenterCrop, under support's rules
    h_in, w_in, h, w = shape[1], shape[2], cfg["height"], cfg["width"]
    if h_in < h or w_in < w:
        raise Refuse("CenterCrop that enlarges (Keras resizes) is not lowered")
    h0, w0 = (h_in - h) // 2, (w_in - w) // 2
    crop = {"cropping": [[h0, h_in - h - h0], [w0, w_in - w - w0]], "data_format": "channels_last"}
    return site.chain([("Cropping2D", crop, None)]), f"CenterCrop({h}x{w}) -> Cropping2D"


@rule("category_encoding_copy", "CategoryEncoding")
def category_encoding_copy(site: Site):
    if site.rank is None:
        return None  # the file does not say: TF.js's own CategoryEncoding, under support's rules
    steps: list[Step] = [
        ("Permute", {"dims": list(range(1, site.rank))}, "copy"),
        ("CategoryEncoding", site.cfg, None),
    ]
    return site.chain(steps), "CategoryEncoding -> Permute(identity) + CategoryEncoding"
