"""The lowering stage: rewrite Keras constructs TF.js 4.22 lacks or computes wrongly into layers it runs as
Keras does (the rules, and why each is exact: `lowering_table.py`).

It runs inside `topology`, on each container's layer list once its nodes are in the Keras 2 form TF.js
reads, before `support` judges each layer. A rule replaces one layer by a chain (or a small branch): the
layer holding the user's weights keeps the user's name, the others are named `<name>__<role>`, and every
reference to the user's layer is redirected to the layer now holding its output (`Context.outputs`).
Weights that change shape (a kernel gaining an axis, a dilated or block-diagonal kernel) get a transform,
applied as they are written. A rule that needs a shape or rank the file does not record refuses the model
with `not_lowerable` instead of guessing.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from converter.lowering_table import LOWERINGS
from converter.support import Issue

GLOBAL_POOL = {"GlobalAveragePooling1D", "GlobalMaxPooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling2D"}
GLOBAL_POOL_3D = {"GlobalAveragePooling3D": "GlobalAveragePooling", "GlobalMaxPooling3D": "GlobalMaxPooling"}
SEQUENCE_2D = {"ZeroPadding1D": "ZeroPadding2D", "Cropping1D": "Cropping2D", "UpSampling1D": "UpSampling2D"}
CONV = {"Conv1D", "Conv2D", "Conv3D"}
# Layers with an `activation` argument a lowering may pull out into layers of its own.
ACTIVATION_OWNERS = {
    "Dense",
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "Conv2DTranspose",
    "Conv3DTranspose",
    "SeparableConv2D",
    "DepthwiseConv2D",
    "Activation",
}
SPECIAL_ACTIVATIONS = ("leaky_relu", "hard_silu", "hard_swish")
# One layer of a replacement chain: (class, config, role); role None takes the user's layer name.
Step = tuple[str, dict[str, Any], "str | None"]


def f32(value) -> float:
    """A constant as float32 sees it (TF.js's cpu kernels compute some in double: write them rounded)."""
    return float(np.float32(value))


@dataclasses.dataclass
class Applied:
    """One lowering applied to one of the user's layers."""

    rule: str
    layer: str
    detail: str

    def __str__(self):
        return f"{self.layer}: {self.detail} [{self.rule}]"


class Refuse(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclasses.dataclass
class Context:
    """What the stage knows and what it did, for one model."""

    keras: int
    weight_shapes: dict[str, tuple] = dataclasses.field(default_factory=dict)
    shapes: dict[str, list] = dataclasses.field(default_factory=dict)  # layer -> input shapes (node 0)
    ranks: dict[str, int | None] = dataclasses.field(default_factory=dict)  # layer -> output rank (batch incl.)
    applied: list[Applied] = dataclasses.field(default_factory=list)
    transforms: dict[str, Callable[[np.ndarray], np.ndarray]] = dataclasses.field(default_factory=dict)
    outputs: dict[str, str] = dataclasses.field(default_factory=dict)  # user's layer -> TF.js layer
    issues: list[Issue] = dataclasses.field(default_factory=list)

    @property
    def training_exact(self) -> bool:
        return all(LOWERINGS[a.rule].training_exact for a in self.applied)


# --- building blocks -----------------------------------------------------------------------------


def _name(e) -> str:
    return str(e.get("name") or (e.get("config") or {}).get("name"))


def _entry(cls: str, config: dict, name: str, nodes) -> dict:
    return {"class_name": cls, "config": {**config, "name": name}, "name": name, "inbound_nodes": nodes}


def _chain(e, steps, *, first_inputs=None) -> list[dict]:
    """`steps` ((class, config, role) with role None for the user's name), each taking the previous one's
    output, the first the layer's own inputs: one node per call of the layer."""
    name, nodes = _name(e), e.get("inbound_nodes") or []
    out, prev = [], None
    for cls, cfg, role in steps:
        n = name if role is None else f"{name}__{role}"
        new = (
            copy.deepcopy(first_inputs if first_inputs is not None else nodes)
            if prev is None
            else [[[prev, k, 0, {}]] for k in range(len(nodes))]
        )
        out.append(_entry(cls, cfg, n, new))
        prev = n
    return out


def _out_name(chain: list[dict]) -> str:
    return _name(chain[-1])


def _kernel(ctx: Context, layer: str, weight: str = "kernel") -> tuple:
    shape = ctx.weight_shapes.get(f"{layer}/{weight}")
    if shape is None:
        raise Refuse(f"the weight {layer}/{weight} needed to lower it is missing")
    return tuple(shape)


def _tuple(value, n):
    return tuple(value) if isinstance(value, (list, tuple)) else (value,) * n


def _activation_name(value):
    if isinstance(value, dict):
        value = value.get("config") if value.get("class_name") == "function" else value.get("class_name")
    return value


# --- what the layer's input is like --------------------------------------------------------------

OUT_RANK_KEEP = {
    "Dense",
    "Activation",
    "Dropout",
    "SpatialDropout1D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "BatchNormalization",
    "LayerNormalization",
    "ReLU",
    "LeakyReLU",
    "PReLU",
    "ELU",
    "ThresholdedReLU",
    "Softmax",
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "Conv2DTranspose",
    "Conv3DTranspose",
    "SeparableConv2D",
    "DepthwiseConv2D",
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "ZeroPadding3D",
    "Cropping1D",
    "Cropping2D",
    "Cropping3D",
    "UpSampling1D",
    "UpSampling2D",
    "UpSampling3D",
    "Permute",
    "Masking",
    "Rescaling",
    "CenterCrop",
    "Resizing",
    "Add",
    "Multiply",
    "Average",
    "Maximum",
    "Minimum",
    "Subtract",
    "Concatenate",
    "SeparableConv1D",
    "Conv1DTranspose",
    "Identity",
}


def out_rank(e: dict, in_ranks: list) -> int | None:
    """The rank (batch included) of a layer's first output, from its inputs' ranks; None when unknown."""
    cls, cfg = e.get("class_name"), e.get("config") or {}
    r = in_ranks[0] if in_ranks else None
    if cls == "InputLayer":
        shape = _batch_shape(e)
        return len(shape) if shape else None
    if cls in OUT_RANK_KEEP:
        return r
    if cls in ("Flatten", "CategoryEncoding"):
        return 2
    if cls in GLOBAL_POOL or cls in GLOBAL_POOL_3D:
        return r if cfg.get("keepdims") else 2
    if cls == "Reshape" and isinstance(cfg.get("target_shape"), list):
        return len(cfg["target_shape"]) + 1
    if cls == "RepeatVector":
        return 3
    if cls == "Embedding":
        return None if r is None else r + 1
    if cls in ("SimpleRNN", "GRU", "LSTM", "RNN", "Bidirectional"):
        inner = cfg.get("layer", {}).get("config", {}) if cls == "Bidirectional" else cfg
        return 3 if inner.get("return_sequences") else 2
    if cls == "ConvLSTM2D":
        return 5 if cfg.get("return_sequences") else 4
    return None


# --- the rules -----------------------------------------------------------------------------------


def _rule(e: dict, ctx: Context, rank: int | None, shape: list | None, functional: bool):
    """(rule, chain of entries, detail) replacing `e`, or None when TF.js runs it as it is."""
    cls, cfg, name = e.get("class_name"), dict(e.get("config") or {}), _name(e)
    cf = cfg.get("data_format") == "channels_first"
    steps: list[Step]

    if cls in GLOBAL_POOL and (cfg.get("keepdims") or (cls.endswith("1D") and cf)):
        keepdims = bool(cfg.pop("keepdims", False))
        pool = {**cfg, "keepdims": False}
        steps = []
        if cls.endswith("1D"):
            if cf:
                steps.append(("Permute", {"dims": [2, 1]}, "permute"))
                pool["data_format"] = "channels_last"
            steps.append((cls, pool, "pool" if keepdims else None))
            if keepdims:
                steps.append(("RepeatVector", {"n": 1}, None if not cf else "repeat"))
                if cf:
                    steps.append(("Permute", {"dims": [2, 1]}, None))
            rule = "global_pooling_keepdims" if keepdims else "global_pooling_1d_channels_first"
            return (
                rule,
                _chain(e, steps),
                f"{cls}({'keepdims=True' if keepdims else 'channels_first'}) -> " + " + ".join(s[0] for s in steps),
            )
        steps = [(cls, pool, "pool"), ("RepeatVector", {"n": 1}, "repeat")]
        if cf:
            steps.append(("Permute", {"dims": [2, 1]}, "permute"))
        steps.append(
            (
                "TimeDistributed",
                {"layer": {"class_name": "RepeatVector", "config": {"n": 1, "name": f"{name}__repeat_inner"}}},
                None,
            )
        )
        return (
            "global_pooling_keepdims",
            _chain(e, steps),
            f"{cls}(keepdims=True) -> " + " + ".join(s[0] for s in steps),
        )

    if cls in GLOBAL_POOL_3D:
        kind = GLOBAL_POOL_3D[cls]
        if cfg.get("keepdims"):
            raise Refuse(f"{cls}(keepdims=True) is not lowered (a rank-5 result from rank-2 pooling)")
        inner = {
            "class_name": f"{kind}2D",
            "config": {"name": f"{name}__pool2d", "data_format": "channels_first" if cf else "channels_last"},
        }
        steps = [("TimeDistributed", {"layer": inner}, "per_slice")]
        if cf:
            steps.append(("Permute", {"dims": [2, 1]}, "permute"))
        steps.append((f"{kind}1D", {}, None))
        return "global_pooling_3d", _chain(e, steps), f"{cls} -> TimeDistributed({kind}2D) + {kind}1D"

    if cls == "Subtract" and functional:
        nodes = e.get("inbound_nodes") or []
        if any(len(node) != 2 for node in nodes):
            raise Refuse("Subtract takes exactly two inputs")
        neg = _entry(
            "Rescaling", {"scale": -1.0, "offset": 0.0}, f"{name}__negate", [[copy.deepcopy(node[1])] for node in nodes]
        )
        add = _entry(
            "Add", {}, name, [[copy.deepcopy(node[0]), [f"{name}__negate", k, 0, {}]] for k, node in enumerate(nodes)]
        )
        return "subtract", [neg, add], "Subtract -> Rescaling(scale=-1) + Add"

    if cls == "Identity":
        return "identity", _chain(e, [("Activation", {"activation": "linear"}, None)]), "Identity -> Activation(linear)"

    if cls in SEQUENCE_2D:
        if cf:
            raise Refuse(f"{cls} channels_first is not lowered")
        if cls == "UpSampling1D":
            size = cfg.get("size", 2)
            args: dict[str, Any] = {
                "size": [size[0] if isinstance(size, list) else size, 1],
                "interpolation": "nearest",
            }
        else:
            key = "padding" if cls == "ZeroPadding1D" else "cropping"
            a, b = _tuple(cfg.get(key, 1), 2)
            args = {key: [[a, b], [0, 0]]}
        steps = [
            (
                "TimeDistributed",
                {"layer": {"class_name": "RepeatVector", "config": {"n": 1, "name": f"{name}__expand_inner"}}},
                "expand",
            ),
            (SEQUENCE_2D[cls], {**args, "data_format": "channels_last"}, "2d"),
            (
                "TimeDistributed",
                {"layer": {"class_name": "Flatten", "config": {"name": f"{name}__squeeze_inner"}}},
                None,
            ),
        ]
        return (
            "sequence_2d",
            _chain(e, steps),
            f"{cls} -> TimeDistributed(RepeatVector(1)) + {SEQUENCE_2D[cls]} + TimeDistributed(Flatten)",
        )

    if cls in ("SeparableConv1D", "Conv1DTranspose"):
        if cf:
            raise Refuse(f"{cls} channels_first is not lowered")
        if cfg.get("padding") == "causal" or (cls == "Conv1DTranspose" and cfg.get("output_padding") is not None):
            raise Refuse(f"{cls} with causal padding or output_padding is not lowered")
        if any(d != 1 for d in _tuple(cfg.get("dilation_rate", 1), 1)) and cls == "Conv1DTranspose":
            raise Refuse("a dilated Conv1DTranspose is not lowered")
        k = _tuple(cfg.get("kernel_size"), 1)[0]
        s = _tuple(cfg.get("strides", 1), 1)[0]
        d = _tuple(cfg.get("dilation_rate", 1), 1)[0]
        conv = {
            **cfg,
            "kernel_size": [k, 1],
            "strides": [s, 1],
            "dilation_rate": [d, 1],
            "data_format": "channels_last",
        }
        if cls == "SeparableConv1D":
            channels = _kernel(ctx, name, "depthwise_kernel")[1]
            ctx.transforms[f"{name}/depthwise_kernel"] = lambda w: w[:, None, :, :]
            ctx.transforms[f"{name}/pointwise_kernel"] = lambda w: w[:, None, :, :]
            target = "SeparableConv2D"
        else:
            channels = _kernel(ctx, name)[2]
            ctx.transforms[f"{name}/kernel"] = lambda w: w[:, None, :, :]
            conv.pop("dilation_rate")
            target = "Conv2DTranspose"
        steps = [
            ("Reshape", {"target_shape": [-1, 1, channels]}, "to_2d"),
            (target, conv, None),
            ("Reshape", {"target_shape": [-1, cfg["filters"]]}, "to_1d"),
        ]
        return "conv_1d_as_2d", _chain(e, steps), f"{cls} -> Reshape + {target} + Reshape"

    if cls == "Conv1D" and (cfg.get("padding") == "causal" or cf):
        if cf and cfg.get("padding") == "causal":
            raise Refuse("a causal channels_first Conv1D is not lowered")
        if cf:
            conv = {**cfg, "data_format": "channels_last"}
            steps = [
                ("Permute", {"dims": [2, 1]}, "to_channels_last"),
                ("Conv1D", conv, None),
                ("Permute", {"dims": [2, 1]}, "to_channels_first"),
            ]
            return "channels_first_conv", _chain(e, steps), "Conv1D(channels_first) -> Permute + Conv1D + Permute"
        k, channels, _ = _kernel(ctx, name)
        d = _tuple(cfg.get("dilation_rate", 1), 1)[0]
        steps = [
            ("Reshape", {"target_shape": [-1, 1, channels]}, "to_2d"),
            ("ZeroPadding2D", {"padding": [[d * (k - 1), 0], [0, 0]], "data_format": "channels_last"}, "pad"),
            ("Reshape", {"target_shape": [-1, channels]}, "to_1d"),
            ("Conv1D", {**cfg, "padding": "valid"}, None),
        ]
        return (
            "causal_conv_1d",
            _chain(e, steps),
            f"Conv1D(padding=causal) -> ZeroPadding2D({d * (k - 1)} left) + Conv1D(valid)",
        )

    if cls == "SeparableConv2D" and cf:
        steps = [
            ("Permute", {"dims": [2, 3, 1]}, "to_channels_last"),
            ("SeparableConv2D", {**cfg, "data_format": "channels_last"}, None),
            ("Permute", {"dims": [3, 1, 2]}, "to_channels_first"),
        ]
        return (
            "channels_first_conv",
            _chain(e, steps),
            "SeparableConv2D(channels_first) -> Permute + SeparableConv2D + Permute",
        )

    if cls == "ReLU" and (float(cfg.get("negative_slope") or 0) != 0 or float(cfg.get("threshold") or 0) != 0):
        return _relu(e, cfg, name, functional)

    if cls in CONV and int(cfg.get("groups") or 1) > 1:
        groups = int(cfg["groups"])
        kernel = _kernel(ctx, name)
        ctx.transforms[f"{name}/kernel"] = functools.partial(_block_diagonal, groups=groups)
        return (
            "grouped_conv",
            _chain(e, [(cls, {**cfg, "groups": 1}, None)]),
            f"{cls}(groups={groups}) -> {cls} with a block-diagonal {kernel[:-2]}x{kernel[-2] * groups}x"
            f"{kernel[-1]} kernel",
        )

    if cls in ("DepthwiseConv2D", "Conv2DTranspose") and any(d != 1 for d in _tuple(cfg.get("dilation_rate", 1), 2)):
        dil = _tuple(cfg.get("dilation_rate", 1), 2)
        if cls == "Conv2DTranspose" and any(s != 1 for s in _tuple(cfg.get("strides", 1), 2)):
            raise Refuse("a strided, dilated Conv2DTranspose is not lowered")
        weight = "depthwise_kernel" if cls == "DepthwiseConv2D" else "kernel"
        ks = _tuple(cfg.get("kernel_size"), 2)
        ctx.transforms[f"{name}/{weight}"] = functools.partial(_dilate, dilation=dil)
        eff = [(k - 1) * d + 1 for k, d in zip(ks, dil)]
        return (
            "dilated_kernel",
            _chain(e, [(cls, {**cfg, "kernel_size": eff, "dilation_rate": [1, 1]}, None)]),
            f"{cls}(dilation_rate={list(dil)}) -> {cls} with a {eff[0]}x{eff[1]} dilated kernel",
        )

    if cls == "Softmax" and cfg.get("axis", -1) not in (-1, [-1]):
        axis = cfg["axis"][0] if isinstance(cfg["axis"], list) else cfg["axis"]
        if rank is None:
            raise Refuse("Softmax over a non-last axis needs the input's rank, which this file does not record")
        axis = axis % rank
        if axis == 0:
            raise Refuse("Softmax over the batch axis")
        if axis != rank - 1:
            dims = _swap(rank, axis)
            steps = [
                ("Permute", {"dims": dims}, "axis_last"),
                ("Softmax", {"axis": -1}, "softmax"),
                ("Permute", {"dims": dims}, None),
            ]
            return "softmax_axis", _chain(e, steps), f"Softmax(axis={cfg['axis']}) -> Permute + Softmax(-1) + Permute"

    if cls == "BatchNormalization":
        axis = cfg.get("axis", -1)
        axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
        if rank is None or not isinstance(axis, int):
            return None  # the rank is unknown (after a nested model, say): TF.js is right on the last axis
        axis = axis % rank
        bn = {**cfg, "axis": -1}
        if rank == 5:
            steps = []
            if axis != 4:
                steps.append(("Permute", {"dims": _swap(5, axis)}, "axis_last"))
            steps.append(
                (
                    "TimeDistributed",
                    {"layer": {"class_name": "BatchNormalization", "config": {**bn, "name": f"{name}__per_slice"}}},
                    None,
                )
            )
            if axis != 4:
                steps.append(("Permute", {"dims": _swap(5, axis)}, "axis_back"))
            return (
                "batch_norm_rank5",
                _chain(e, steps),
                "BatchNormalization(rank 5) -> TimeDistributed("
                "BatchNormalization)" + (" in a Permute" if axis != 4 else ""),
            )
        if axis != rank - 1:
            dims = _swap(rank, axis)
            steps = [
                ("Permute", {"dims": dims}, "axis_last"),
                ("BatchNormalization", bn, None),
                ("Permute", {"dims": dims}, "axis_back"),
            ]
            return (
                "batch_norm_axis",
                _chain(e, steps),
                f"BatchNormalization(axis={cfg.get('axis')}) -> Permute + BatchNormalization(-1) + Permute",
            )
        return None

    if cls == "CenterCrop":
        if shape is None or len(shape) != 4 or shape[1] is None or shape[2] is None:
            return None  # the file does not say: TF.js's own CenterCrop, under support's rules
        h_in, w_in, h, w = shape[1], shape[2], cfg["height"], cfg["width"]
        if h_in < h or w_in < w:
            raise Refuse("CenterCrop that enlarges (Keras resizes) is not lowered")
        h0, w0 = (h_in - h) // 2, (w_in - w) // 2
        crop = {"cropping": [[h0, h_in - h - h0], [w0, w_in - w - w0]], "data_format": "channels_last"}
        return "center_crop", _chain(e, [("Cropping2D", crop, None)]), f"CenterCrop({h}x{w}) -> Cropping2D"

    if cls == "CategoryEncoding":
        if rank is None:
            return None  # the file does not say: TF.js's own CategoryEncoding, under support's rules
        steps = [("Permute", {"dims": list(range(1, rank))}, "copy"), ("CategoryEncoding", cfg, None)]
        return "category_encoding_copy", _chain(e, steps), "CategoryEncoding -> Permute(identity) + CategoryEncoding"

    act = _activation_name(cfg.get("activation"))
    if cls in ACTIVATION_OWNERS and (act in SPECIAL_ACTIVATIONS or (act == "hard_sigmoid" and ctx.keras == 3)):
        return _activation(e, cfg, name, act, functional)
    return None


def _swap(rank: int, axis: int) -> list[int]:
    dims = list(range(1, rank))
    dims[axis - 1], dims[-1] = dims[-1], dims[axis - 1]
    return dims


def _relu(e, cfg, name, functional):
    pos: list[Step]
    s = float(cfg.get("negative_slope") or 0)
    t = float(cfg.get("threshold") or 0)
    m = cfg.get("max_value")
    if s != 0 and t == 0 and m is None:
        return (
            "relu_slope",
            _chain(e, [("LeakyReLU", {"alpha": f32(s)}, None)]),
            f"ReLU(negative_slope={s:g}) -> LeakyReLU(alpha={s:g})",
        )
    pos = [("ThresholdedReLU", {"theta": f32(t)}, "positive")] if t != 0 else [("ReLU", {"max_value": m}, "positive")]
    if t != 0 and m is not None:
        pos.append(("ReLU", {"max_value": m}, "positive_max"))
    if s == 0:
        pos[-1] = (pos[-1][0], pos[-1][1], None)
        return "relu_slope", _chain(e, pos), f"ReLU(threshold={t:g}) -> " + " + ".join(p[0] for p in pos)
    if not functional:
        raise Refuse("ReLU with both a slope and a threshold or maximum needs a functional model")
    positive = _chain(e, pos)
    negative = _chain(
        e,
        [
            ("Rescaling", {"scale": -1.0, "offset": f32(t)}, "shift"),
            ("ReLU", {}, "negative"),
            ("Rescaling", {"scale": f32(-s), "offset": 0.0}, "scale"),
        ],
    )
    add = _entry(
        "Add",
        {},
        name,
        [
            [[_out_name(positive), k, 0, {}], [_out_name(negative), k, 0, {}]]
            for k in range(len(e.get("inbound_nodes") or []))
        ],
    )
    return (
        "relu_slope",
        [*positive, *negative, add],
        f"ReLU(negative_slope={s:g}, threshold={t:g}, max_value={m}) -> positive part + (-slope) * relu(threshold - x)",
    )


def _hard_sigmoid_steps(prefix: str) -> list[Step]:
    return [
        ("Rescaling", {"scale": 1.0, "offset": 3.0}, f"{prefix}plus3"),
        ("ReLU", {"max_value": 6.0}, f"{prefix}relu6"),
        ("Rescaling", {"scale": f32(1.0 / 6.0), "offset": 0.0}, f"{prefix}div6"),
    ]


def _activation(e, cfg, name, act, functional):
    """A special activation: as an Activation layer, or pulled out of the layer that carries it."""
    nodes = e.get("inbound_nodes") or []
    chain: list[dict] = []
    if e.get("class_name") == "Activation":
        source, inputs = None, nodes
    else:  # the layer keeps its name and weights, computing linearly; the activation follows it
        chain = _chain(e, [(e["class_name"], {**cfg, "activation": "linear"}, None)])
        source = name
        inputs = [[[name, k, 0, {}]] for k in range(len(nodes))]
    suffix = "" if source is None else "act_"
    if act == "leaky_relu":
        tail = _chain(e, [("LeakyReLU", {"alpha": f32(0.2)}, None if source is None else "act")], first_inputs=inputs)
        return "leaky_relu_activation", chain + tail, "activation leaky_relu -> LeakyReLU(alpha=0.2)"
    if act == "hard_sigmoid":
        steps = _hard_sigmoid_steps(suffix)
        steps[-1] = (steps[-1][0], steps[-1][1], None if source is None else "act")
        tail = _chain(e, steps, first_inputs=inputs)
        return "hard_sigmoid_keras3", chain + tail, "activation hard_sigmoid -> Rescaling(+3) + ReLU(6) + Rescaling(/6)"
    if not functional:
        raise Refuse(f"the {act} activation needs a functional model to be lowered")
    branch = _chain(e, _hard_sigmoid_steps(suffix), first_inputs=inputs)
    mul = _entry(
        "Multiply",
        {},
        name if source is None else f"{name}__act",
        [[copy.deepcopy(inputs[k][0]), [_out_name(branch), k, 0, {}]] for k in range(len(nodes))],
    )
    return "hard_silu", chain + branch + [mul], f"activation {act} -> x * (Rescaling(+3) + ReLU(6) + Rescaling(/6))"


def _dilate(w: np.ndarray, dilation) -> np.ndarray:
    dh, dw = dilation
    kh, kw = w.shape[:2]
    out = np.zeros(((kh - 1) * dh + 1, (kw - 1) * dw + 1, *w.shape[2:]), dtype=w.dtype)
    out[::dh, ::dw] = w
    return out


def _block_diagonal(w: np.ndarray, groups: int) -> np.ndarray:
    cin, f = w.shape[-2], w.shape[-1]
    fg = f // groups
    out = np.zeros((*w.shape[:-2], cin * groups, f), dtype=w.dtype)
    for g in range(groups):
        out[..., g * cin : (g + 1) * cin, g * fg : (g + 1) * fg] = w[..., :, g * fg : (g + 1) * fg]
    return out


def metadata(ctx: Context) -> dict:
    """What goes into model.json's userDefinedMetadata: each lowering, and the TF.js layer now holding the
    output of each user's layer (for tools that compare layer by layer)."""
    if not ctx.applied:
        return {}
    return {
        "tfjs_certify": {
            "lowerings": [dataclasses.asdict(a) for a in ctx.applied],
            "outputs": dict(ctx.outputs),
        }
    }


# --- applying the rules to a container ------------------------------------------------------------


def _issue(e, reason) -> Issue:
    return Issue(
        layer=_name(e),
        class_name=str(e.get("class_name")),
        argument=None,
        value=None,
        code="not_lowerable",
        reason=reason,
    )


def _redirect(entries: list[dict], outputs: list, old: str, new: str, chain_names: set[str]):
    for e in entries:
        if _name(e) in chain_names:
            continue
        for node in e.get("inbound_nodes") or []:
            for ref in node:
                if ref[0] == old:
                    ref[0], ref[2] = new, 0
    for ref in outputs:
        if ref[0] == old:
            ref[0], ref[2] = new, 0


def lower_functional(entries: list[dict], outputs: list, ctx: Context) -> tuple[list[dict], list]:
    """The container's layers with every rule applied, and its outputs redirected."""
    ranks: dict[str, int | None] = {}
    out: list[dict] = []
    outputs = copy.deepcopy(outputs)
    entries = copy.deepcopy(entries)
    for e in entries:
        name = _name(e)
        refs = (e.get("inbound_nodes") or [[]])[0] if e.get("inbound_nodes") else []
        in_ranks = [ranks.get(r[0]) for r in refs]
        shape = _input_shape(e, refs, entries, ctx)
        rank = len(shape) if shape is not None else (in_ranks[0] if in_ranks else None)
        try:
            found = _rule(e, ctx, rank, shape, functional=True)
        except Refuse as r:
            ctx.issues.append(_issue(e, r.reason))
            found = None
        ranks[name] = out_rank(e, [rank] + in_ranks[1:]) if in_ranks else out_rank(e, [])
        if found is None:
            out.append(e)
            continue
        rule, chain, detail = found
        ctx.applied.append(Applied(rule, name, detail))
        last = _out_name(chain)
        if last != name:
            ctx.outputs[name] = last
            _redirect(entries, outputs, name, last, {_name(c) for c in chain})
        out.extend(chain)
    return out, outputs


def _input_shape(e, refs, entries, ctx) -> list | None:
    """The layer's (first) input shape, when the file records it: Keras 3 writes it with every call; for
    tf_keras only an InputLayer's is known."""
    name = _name(e)
    if ctx.shapes.get(name):
        return ctx.shapes[name][0]
    if len(refs) == 1:
        source = next((x for x in entries if _name(x) == refs[0][0]), None)
        if source is not None and source.get("class_name") == "InputLayer":
            shape = _batch_shape(source)
            return list(shape) if isinstance(shape, list) else None
    return None


def _batch_shape(e) -> list | None:
    cfg = e.get("config") or {}
    shape = cfg.get("batch_input_shape") or cfg.get("batch_shape")
    return shape if isinstance(shape, list) else None


def lower_sequential(layers: list[dict], ctx: Context) -> list[dict]:
    """A Sequential's layer list with every chain rule applied (branching rules refuse)."""
    out: list[dict] = []
    rank: int | None = None
    shape: list | None = None
    for e in copy.deepcopy(layers):
        if _batch_shape(e):  # an InputLayer, or a first layer given its input shape (the Keras 2 idiom)
            shape = list(_batch_shape(e) or [])
            rank = len(shape)
        if e.get("class_name") == "InputLayer":
            out.append(e)
            continue
        try:
            found = _rule(e, ctx, rank, shape, functional=False)
        except Refuse as r:
            ctx.issues.append(_issue(e, r.reason))
            found = None
        rank = out_rank(e, [rank])
        shape = None
        if found is None:
            out.append(e)
            continue
        rule, chain, detail = found
        ctx.applied.append(Applied(rule, _name(e), detail))
        if _out_name(chain) != _name(e):
            ctx.outputs[_name(e)] = _out_name(chain)
        out.extend({k: v for k, v in c.items() if k != "inbound_nodes"} for c in chain)
    return out
