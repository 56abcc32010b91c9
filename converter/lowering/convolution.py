"""Convolutions TF.js lacks (SeparableConv1D, Conv1DTranspose) or mis-reads (causal padding, channels_first
Conv1D and SeparableConv2D, groups, dilated depthwise and transposed kernels)."""

from __future__ import annotations

import functools

import numpy as np

from converter.lowering.engine import Refuse, Site, Step, as_tuple, rule


def _time_steps(site: Site) -> int | None:
    """The input's number of time steps, when the file records it."""
    shape = site.shape
    return shape[1] if shape is not None and len(shape) == 3 and isinstance(shape[1], int) else None


def _to_2d(site: Site, steps: int | None, channels: int) -> Step:
    """(batch, steps, channels) -> (batch, steps, 1, channels). A Reshape to the static shape when the file gives
    it, else TimeDistributed(RepeatVector(1)); never a Reshape to -1, which TF.js 4.22 keeps as a -1 in the
    static shape it infers (Reshape.computeOutputShape, the batch size being unknown), so that a Flatten and
    Dense after it are built with a negative size and the model does not load."""
    if steps is not None:
        return ("Reshape", {"target_shape": [steps, 1, channels]}, "to_2d")
    inner = {"class_name": "RepeatVector", "config": {"n": 1, "name": f"{site.name}__to_2d_inner"}}
    return ("TimeDistributed", {"layer": inner}, "to_2d")


def _to_1d(site: Site, steps: int | None, channels: int, role: str | None) -> Step:
    """(batch, steps, 1, channels) -> (batch, steps, channels), as `_to_2d` (TimeDistributed(Flatten))."""
    if steps is not None:
        return ("Reshape", {"target_shape": [steps, channels]}, role)
    inner = {"class_name": "Flatten", "config": {"name": f"{site.name}__to_1d_inner"}}
    return ("TimeDistributed", {"layer": inner}, role)


def conv_length(steps: int | None, cls: str, cfg: dict) -> int | None:
    """The number of steps a 1D (transposed) convolution outputs, as Keras computes it."""
    if steps is None:
        return None
    k = as_tuple(cfg.get("kernel_size"), 1)[0]
    s = as_tuple(cfg.get("strides", 1), 1)[0]
    d = as_tuple(cfg.get("dilation_rate", 1), 1)[0]
    same = cfg.get("padding") == "same"
    if cls == "Conv1DTranspose":
        return steps * s if same else steps * s + max(k - s, 0)
    span = (k - 1) * d + 1
    return (steps + s - 1) // s if same else (steps - span) // s + 1


@rule("conv_1d_as_2d", "SeparableConv1D", "Conv1DTranspose")
def conv_1d_as_2d(site: Site):
    cls, cfg, name, ctx = site.cls, site.cfg, site.name, site.ctx
    if site.channels_first:
        raise Refuse(f"{cls} channels_first is not lowered")
    if cfg.get("padding") == "causal" or (cls == "Conv1DTranspose" and cfg.get("output_padding") is not None):
        raise Refuse(f"{cls} with causal padding or output_padding is not lowered")
    if any(d != 1 for d in as_tuple(cfg.get("dilation_rate", 1), 1)) and cls == "Conv1DTranspose":
        raise Refuse("a dilated Conv1DTranspose is not lowered")
    k = as_tuple(cfg.get("kernel_size"), 1)[0]
    s = as_tuple(cfg.get("strides", 1), 1)[0]
    d = as_tuple(cfg.get("dilation_rate", 1), 1)[0]
    conv = {**cfg, "kernel_size": [k, 1], "strides": [s, 1], "dilation_rate": [d, 1], "data_format": "channels_last"}
    if cls == "SeparableConv1D":
        channels = site.kernel("depthwise_kernel")[1]
        ctx.transforms[f"{name}/depthwise_kernel"] = lambda w: w[:, None, :, :]
        ctx.transforms[f"{name}/pointwise_kernel"] = lambda w: w[:, None, :, :]
        target = "SeparableConv2D"
    else:
        channels = site.kernel()[2]
        ctx.transforms[f"{name}/kernel"] = lambda w: w[:, None, :, :]
        conv.pop("dilation_rate")
        target = "Conv2DTranspose"
    t = _time_steps(site)
    steps: list[Step] = [
        _to_2d(site, t, channels),
        (target, conv, None),
        _to_1d(site, conv_length(t, cls, cfg), cfg["filters"], "to_1d"),
    ]
    return site.chain(steps), f"{cls} -> {steps[0][0]} + {target} + {steps[-1][0]}"


@rule("causal_conv_1d", "Conv1D")
def causal_conv_1d(site: Site):
    cfg = site.cfg
    if cfg.get("padding") != "causal":
        return None
    if site.channels_first:
        raise Refuse("a causal channels_first Conv1D is not lowered")
    k, channels, _ = site.kernel()
    d = as_tuple(cfg.get("dilation_rate", 1), 1)[0]
    t = _time_steps(site)
    steps: list[Step] = [
        _to_2d(site, t, channels),
        ("ZeroPadding2D", {"padding": [[d * (k - 1), 0], [0, 0]], "data_format": "channels_last"}, "pad"),
        _to_1d(site, None if t is None else t + d * (k - 1), channels, "to_1d"),
        ("Conv1D", {**cfg, "padding": "valid"}, None),
    ]
    return site.chain(steps), f"Conv1D(padding=causal) -> ZeroPadding2D({d * (k - 1)} left) + Conv1D(valid)"


@rule("channels_first_conv", "Conv1D")
def channels_first_conv_1d(site: Site):
    if not site.channels_first:
        return None
    steps: list[Step] = [
        ("Permute", {"dims": [2, 1]}, "to_channels_last"),
        ("Conv1D", {**site.cfg, "data_format": "channels_last"}, None),
        ("Permute", {"dims": [2, 1]}, "to_channels_first"),
    ]
    return site.chain(steps), "Conv1D(channels_first) -> Permute + Conv1D + Permute"


@rule("channels_first_conv", "SeparableConv2D")
def channels_first_separable_2d(site: Site):
    if not site.channels_first:
        return None
    steps: list[Step] = [
        ("Permute", {"dims": [2, 3, 1]}, "to_channels_last"),
        ("SeparableConv2D", {**site.cfg, "data_format": "channels_last"}, None),
        ("Permute", {"dims": [3, 1, 2]}, "to_channels_first"),
    ]
    return site.chain(steps), "SeparableConv2D(channels_first) -> Permute + SeparableConv2D + Permute"


# A grouped Conv2D's config keys under their DepthwiseConv2D names.
DEPTHWISE_KEYS = {
    "kernel_initializer": "depthwise_initializer",
    "kernel_regularizer": "depthwise_regularizer",
    "kernel_constraint": "depthwise_constraint",
}


@rule("depthwise_conv", "Conv2D")
def depthwise_conv(site: Site):
    """A Conv2D with one input channel per group (ConvNeXt's 7x7 convolutions) is a DepthwiseConv2D: tried
    before `grouped_conv`, whose block-diagonal kernel would be channels times larger."""
    cfg = site.cfg
    groups = int(cfg.get("groups") or 1)
    if groups <= 1 or any(d != 1 for d in as_tuple(cfg.get("dilation_rate", 1), 2)):
        return None
    kh, kw, per_group, filters = site.kernel()
    if per_group != 1 or filters % groups:
        return None
    multiplier = filters // groups
    name = site.name
    site.ctx.transforms[f"{name}/kernel"] = lambda w: w.reshape(kh, kw, groups, multiplier)
    site.ctx.renames[f"{name}/kernel"] = f"{name}/depthwise_kernel"
    depthwise = {DEPTHWISE_KEYS.get(k, k): v for k, v in cfg.items() if k not in ("filters", "groups")}
    depthwise["depth_multiplier"] = multiplier
    return (
        site.chain([("DepthwiseConv2D", depthwise, None)]),
        f"Conv2D(groups={groups}) -> DepthwiseConv2D(depth_multiplier={multiplier})",
    )


@rule("grouped_conv", "Conv1D", "Conv2D", "Conv3D")
def grouped_conv(site: Site):
    cfg = site.cfg
    groups = int(cfg.get("groups") or 1)
    if groups <= 1:
        return None
    kernel = site.kernel()
    site.ctx.transforms[f"{site.name}/kernel"] = functools.partial(block_diagonal, groups=groups)
    return (
        site.chain([(site.cls, {**cfg, "groups": 1}, None)]),
        f"{site.cls}(groups={groups}) -> {site.cls} with a block-diagonal {kernel[:-2]}x{kernel[-2] * groups}x"
        f"{kernel[-1]} kernel",
    )


@rule("dilated_kernel", "DepthwiseConv2D", "Conv2DTranspose")
def dilated_kernel(site: Site):
    cls, cfg = site.cls, site.cfg
    dil = as_tuple(cfg.get("dilation_rate", 1), 2)
    if all(d == 1 for d in dil):
        return None
    if cls == "Conv2DTranspose" and any(s != 1 for s in as_tuple(cfg.get("strides", 1), 2)):
        raise Refuse("a strided, dilated Conv2DTranspose is not lowered")
    weight = "depthwise_kernel" if cls == "DepthwiseConv2D" else "kernel"
    ks = as_tuple(cfg.get("kernel_size"), 2)
    site.ctx.transforms[f"{site.name}/{weight}"] = functools.partial(dilate, dilation=dil)
    eff = [(k - 1) * d + 1 for k, d in zip(ks, dil)]
    return (
        site.chain([(cls, {**cfg, "kernel_size": eff, "dilation_rate": [1, 1]}, None)]),
        f"{cls}(dilation_rate={list(dil)}) -> {cls} with a {eff[0]}x{eff[1]} dilated kernel",
    )


def dilate(w: np.ndarray, dilation) -> np.ndarray:
    """A 2D kernel with zeros inserted between its taps: the dilated convolution as a plain one."""
    dh, dw = dilation
    kh, kw = w.shape[:2]
    out = np.zeros(((kh - 1) * dh + 1, (kw - 1) * dw + 1, *w.shape[2:]), dtype=w.dtype)
    out[::dh, ::dw] = w
    return out


def block_diagonal(w: np.ndarray, groups: int) -> np.ndarray:
    """A grouped kernel `[..., C/groups, F]` as the full `[..., C, F]` kernel, zero off each group's block."""
    cin, f = w.shape[-2], w.shape[-1]
    fg = f // groups
    out = np.zeros((*w.shape[:-2], cin * groups, f), dtype=w.dtype)
    for g in range(groups):
        out[..., g * cin : (g + 1) * cin, g * fg : (g + 1) * fg] = w[..., :, g * fg : (g + 1) * fg]
    return out
