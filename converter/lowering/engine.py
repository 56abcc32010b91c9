"""How a lowering rule sees a layer, builds its replacement, and is registered; and how the rules are applied
to a container's layers.

The stage runs inside `topology`, on each container's layer list once its nodes are in the Keras 2 form
TF.js reads, before `support` judges each layer. For each layer, the rules registered for its class are
tried in registration order, then the rules for any layer that carries an `activation` (registered with
`activation=True`); the first that returns a replacement wins. A rule is a function of a `Site`, returning
`(chain, detail)` or None, or raising `Refuse`; its name is an entry of `lowering_table.LOWERINGS`.
Weights that change shape (a kernel gaining an axis, a dilated or block-diagonal kernel) get a transform in
`Context.transforms`, applied as they are written.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from converter.lowering_table import LOWERINGS
from converter.support import Issue
from converter.support_table import RANK_LIMITS

# One layer of a replacement chain: (class, config, role); role None takes the user's layer name.
Step = tuple[str, dict[str, Any], "str | None"]
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


def layer_name(e) -> str:
    return str(e.get("name") or (e.get("config") or {}).get("name"))


def make_entry(cls: str, config: dict, name: str, nodes) -> dict:
    return {"class_name": cls, "config": {**config, "name": name}, "name": name, "inbound_nodes": nodes}


def chain(e, steps, *, first_inputs=None) -> list[dict]:
    """`steps` ((class, config, role) with role None for the user's name), each taking the previous one's
    output, the first the layer's own inputs: one node per call of the layer."""
    name, nodes = layer_name(e), e.get("inbound_nodes") or []
    out, prev = [], None
    for cls, cfg, role in steps:
        n = name if role is None else f"{name}__{role}"
        new = (
            copy.deepcopy(first_inputs if first_inputs is not None else nodes)
            if prev is None
            else [[[prev, k, 0, {}]] for k in range(len(nodes))]
        )
        out.append(make_entry(cls, cfg, n, new))
        prev = n
    return out


def output_name(entries: list[dict]) -> str:
    return layer_name(entries[-1])


def kernel_shape(ctx: Context, layer: str, weight: str = "kernel") -> tuple:
    shape = ctx.weight_shapes.get(f"{layer}/{weight}")
    if shape is None:
        raise Refuse(f"the weight {layer}/{weight} needed to lower it is missing")
    return tuple(shape)


def as_tuple(value, n):
    return tuple(value) if isinstance(value, (list, tuple)) else (value,) * n


def activation_name(value):
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
        shape = batch_shape(e)
        return len(shape) if shape else None
    if cls in OUT_RANK_KEEP:
        return r
    if cls in ("Flatten", "CategoryEncoding"):
        return 2
    if str(cls).startswith("Global") and str(cls).endswith(("Pooling1D", "Pooling2D", "Pooling3D")):
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


# --- the registry ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Site:
    """One of the user's layers, as a rule sees it."""

    entry: dict
    ctx: Context
    rank: int | None  # the rank of its (first) input, batch included, when the file says
    shape: list | None  # its (first) input shape, batch included, when the file says
    functional: bool  # in a functional model (a rule may branch) rather than a Sequential

    @property
    def cls(self) -> str:
        return str(self.entry.get("class_name"))

    @property
    def cfg(self) -> dict:
        """A copy of the layer's config, for the rule to edit."""
        return dict(self.entry.get("config") or {})

    @property
    def name(self) -> str:
        return layer_name(self.entry)

    @property
    def channels_first(self) -> bool:
        return (self.entry.get("config") or {}).get("data_format") == "channels_first"

    def chain(self, steps: list[Step], *, first_inputs=None) -> list[dict]:
        return chain(self.entry, steps, first_inputs=first_inputs)

    def kernel(self, weight: str = "kernel") -> tuple:
        return kernel_shape(self.ctx, self.name, weight)


Replacement = tuple[list[dict], str]  # the entries replacing the layer, and a one-line description
Rule = Callable[[Site], "Replacement | None"]


@dataclasses.dataclass(frozen=True)
class Registered:
    name: str  # the lowering_table entry
    apply: Rule


RULES: dict[str, list[Registered]] = {}  # Keras class -> its rules, in the order they are tried
ACTIVATION_RULES: list[Registered] = []  # tried, after a class's own rules, on any layer with an activation


def rule(name: str, *classes: str, activation: bool = False) -> Callable[[Rule], Rule]:
    """Register a rule function for `classes` (or, with `activation`, for every layer with an activation)."""
    if name not in LOWERINGS:
        raise ValueError(f"lowering {name!r} is not in lowering_table.LOWERINGS")

    def register(fn: Rule) -> Rule:
        entry = Registered(name, fn)
        if activation:
            ACTIVATION_RULES.append(entry)
        for cls in classes:
            RULES.setdefault(cls, []).append(entry)
        return fn

    return register


def find(e: dict, ctx: Context, rank: int | None, shape: list | None, functional: bool):
    """(rule name, chain, detail) replacing `e`, or None when TF.js runs it as it is; raises Refuse."""
    site = Site(e, ctx, rank, shape, functional)
    candidates = RULES.get(site.cls, [])
    if site.cls in ACTIVATION_OWNERS:
        candidates = [*candidates, *ACTIVATION_RULES]
    for registered in candidates:
        found = registered.apply(site)
        if found is not None:
            entries, detail = found
            return registered.name, entries, detail
    return None


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
        layer=layer_name(e),
        class_name=str(e.get("class_name")),
        argument=None,
        value=None,
        code="not_lowerable",
        reason=reason,
    )


def _check_rank_limit(e: dict, ranks: list, ctx: Context) -> None:
    """A layer TF.js refuses at the rank its input has here (support_table.RANK_LIMITS) is refused now, not by
    TF.js when the model runs."""
    limit = RANK_LIMITS.get(str(e.get("class_name")))
    if limit is None:
        return
    highest, why = limit
    known = [r for r in ranks if r is not None]
    if known and max(known) > highest:
        ctx.issues.append(
            Issue(
                layer=layer_name(e),
                class_name=str(e.get("class_name")),
                argument="input rank",
                value=max(known),
                code="rank_limit",
                reason=f"{why} (here rank {max(known)})",
            )
        )


def _redirect(entries: list[dict], outputs: list, old: str, new: str, chain_names: set[str]):
    for e in entries:
        if layer_name(e) in chain_names:
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
        name = layer_name(e)
        refs = (e.get("inbound_nodes") or [[]])[0] if e.get("inbound_nodes") else []
        in_ranks = [ranks.get(r[0]) for r in refs]
        shape = _input_shape(e, refs, entries, ctx)
        rank = len(shape) if shape is not None else (in_ranks[0] if in_ranks else None)
        _check_rank_limit(e, [rank] + in_ranks[1:], ctx)
        try:
            found = find(e, ctx, rank, shape, functional=True)
        except Refuse as r:
            ctx.issues.append(_issue(e, r.reason))
            found = None
        ranks[name] = out_rank(e, [rank] + in_ranks[1:]) if in_ranks else out_rank(e, [])
        if found is None:
            out.append(e)
            continue
        rule_name, replacement, detail = found
        ctx.applied.append(Applied(rule_name, name, detail))
        last = output_name(replacement)
        if last != name:
            ctx.outputs[name] = last
            _redirect(entries, outputs, name, last, {layer_name(c) for c in replacement})
        out.extend(replacement)
    return out, outputs


def _input_shape(e, refs, entries, ctx) -> list | None:
    """The layer's (first) input shape, when the file records it: Keras 3 writes it with every call; for
    tf_keras only an InputLayer's is known."""
    name = layer_name(e)
    if ctx.shapes.get(name):
        return ctx.shapes[name][0]
    if len(refs) == 1:
        source = next((x for x in entries if layer_name(x) == refs[0][0]), None)
        if source is not None and source.get("class_name") == "InputLayer":
            shape = batch_shape(source)
            return list(shape) if isinstance(shape, list) else None
    return None


def batch_shape(e) -> list | None:
    cfg = e.get("config") or {}
    shape = cfg.get("batch_input_shape") or cfg.get("batch_shape")
    return shape if isinstance(shape, list) else None


def lower_sequential(layers: list[dict], ctx: Context) -> list[dict]:
    """A Sequential's layer list with every chain rule applied (branching rules refuse)."""
    out: list[dict] = []
    rank: int | None = None
    shape: list | None = None
    for e in copy.deepcopy(layers):
        if batch_shape(e):  # an InputLayer, or a first layer given its input shape (the Keras 2 idiom)
            shape = list(batch_shape(e) or [])
            rank = len(shape)
        if e.get("class_name") == "InputLayer":
            out.append(e)
            continue
        try:
            found = find(e, ctx, rank, shape, functional=False)
        except Refuse as r:
            ctx.issues.append(_issue(e, r.reason))
            found = None
        rank = out_rank(e, [rank])
        shape = None
        if found is None:
            out.append(e)
            continue
        rule_name, replacement, detail = found
        ctx.applied.append(Applied(rule_name, layer_name(e), detail))
        if output_name(replacement) != layer_name(e):
            ctx.outputs[layer_name(e)] = output_name(replacement)
        out.extend({k: v for k, v in c.items() if k != "inbound_nodes"} for c in replacement)
    return out
