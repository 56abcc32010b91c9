"""How a lowering rule sees a layer, builds its replacement, and is registered; and how the rules are applied
to a container's layers.

The stage runs inside `topology`, on each container's layer list once its nodes are in the Keras 2 form
TF.js reads, before `support` judges each layer. For each layer, the rules registered for its class are
tried in registration order, then the rules for any layer that carries an `activation` (registered with
`activation=True`); the first that returns a replacement wins. A rule is a function of a `Site`, returning
`(chain, detail)` or None, or raising `Refuse`; its name is an entry of `lowering_table.LOWERINGS`.
Weights that change shape (a kernel gaining an axis, a dilated or block-diagonal kernel) get a transform in
`Context.transforms`, applied as they are written; a weight the replacement reads under another name (a
grouped Conv2D's kernel as a DepthwiseConv2D's depthwise_kernel) gets its new name in `Context.renames`. A rule
may read a weight's values (`Site.fold`) to write them into the replacement's config (a per-channel Rescaling):
such a weight is then not written (`Context.folded`). A rule that needs weights under new names (one stored
kernel split per attention head, say) derives them (`Context.derive`): each is computed, when written, from
stored weights (or is a constant), and the stored weights it replaces (`Context.replace`) are not written.
`written` is the list of weights TF.js then loads. A rule that returns an empty chain removes the layer (an
identity at inference): every reference to its output is redirected to its input.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from converter.lowering_table import LOWERINGS
from converter.reader import read_array
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
    read: Callable[[str], np.ndarray] | None = None  # a weight's values by its TF.js name (set by converter/api.py)
    folded: set[str] = dataclasses.field(default_factory=set)  # weights written into a config: left out of the shards
    renames: dict[str, str] = dataclasses.field(default_factory=dict)  # weight -> the name its new layer reads
    int_inputs: bool = False  # the model has an integer input (set as the stage meets its InputLayers)
    derived: dict[str, Derived] = dataclasses.field(default_factory=dict)  # TF.js name -> how it is computed
    replaced: set[str] = dataclasses.field(default_factory=set)  # stored weights not written as they are
    masked: set[str] = dataclasses.field(default_factory=set)  # layers whose output may carry a Keras mask
    nested_inputs_masked: bool = False  # the inputs of nested models may carry masks (the model makes some)
    top_inputs: set[str] = dataclasses.field(default_factory=set)  # the model's own inputs (never masked)

    @property
    def training_exact(self) -> bool:
        return all(LOWERINGS[a.rule].training_exact for a in self.applied)

    def derive(self, name: str, layer: str, shape, compute: Callable[..., np.ndarray], *sources: str):
        """Write a weight `name` (of the user's layer `layer`, shaped `shape`) computed as
        `compute(*values of sources)`; with no sources, `compute()` is a constant (never quantized)."""
        self.derived[name] = Derived(tuple(sources), compute, tuple(int(d) for d in shape), layer)

    def replace(self, *names: str):
        """The stored weights `names` are not written (derived weights stand for them)."""
        self.replaced.update(names)

    def weight_values(self, name: str) -> np.ndarray:
        """The values of the weight `name` (a lowering that writes them into a config); Refuse if absent."""
        if self.read is None or name not in self.weight_shapes:
            raise Refuse(f"the weight {name} needed to lower it is missing")
        return np.asarray(self.read(name))

    def layer_weights(self, layer: str) -> list[str]:
        """The names of `layer`'s own weights (`<layer>/<weight>`), in the order the file lists them."""
        prefix = f"{layer}/"
        return [n for n in self.weight_shapes if n.startswith(prefix) and "/" not in n[len(prefix) :]]


@dataclasses.dataclass(frozen=True)
class Derived:
    """A weight TF.js loads that the file does not hold under its name: `compute` of the stored weights
    `sources` (TF.js names), evaluated when it is written. `layer` is the user's layer it belongs to."""

    sources: tuple[str, ...]
    compute: Callable[..., np.ndarray]
    shape: tuple[int, ...]
    layer: str


@dataclasses.dataclass(frozen=True)
class Written:
    """One weight as TF.js loads it: its name, shape, the top-level layer it belongs to, how to read it, and
    the stored weights it comes from (itself for a stored weight; none for a constant)."""

    name: str
    shape: tuple[int, ...]
    layer: str
    load: Callable[[], np.ndarray]
    sources: tuple[str, ...]


def written(weights: list, ctx: Context) -> list[Written]:
    """The weights TF.js loads, in manifest order: the stored weights neither folded nor replaced, in file order
    (through their transform, under their new name), and the derived weights of each user's layer where its
    first replaced weight was (a layer whose derived weights replace nothing: at the end)."""
    stored = {w.name: w for w in weights}
    missing = sorted({s for d in ctx.derived.values() for s in d.sources} - set(stored))
    if missing:
        raise KeyError(f"derived weights read weights the file lacks: {', '.join(missing)}")
    by_layer: dict[str, list[str]] = {}
    for name, d in ctx.derived.items():
        by_layer.setdefault(d.layer, []).append(name)
    owner = {s: d.layer for d in ctx.derived.values() for s in d.sources}
    out: list[Written] = []
    placed: set[str] = set()
    for w in weights:
        if w.name in ctx.folded:
            continue
        if w.name not in ctx.replaced:
            load = _reader(w.dataset, ctx.transforms.get(w.name))
            out.append(Written(ctx.renames.get(w.name, w.name), _shape(w, ctx), w.layer, load, (w.name,)))
            continue
        layer = owner.get(w.name)
        if layer is not None and layer not in placed:
            placed.add(layer)
            out += [_derived(n, ctx.derived[n], stored, w.layer) for n in by_layer[layer]]
    for layer, names in by_layer.items():
        if layer not in placed:
            out += [_derived(n, ctx.derived[n], stored, layer) for n in names]
    return out


def _reader(dataset, transform) -> Callable[[], np.ndarray]:
    if transform is None:
        return lambda: read_array(dataset)
    return lambda: np.ascontiguousarray(transform(read_array(dataset)))


def _shape(w, ctx: Context) -> tuple[int, ...]:
    transform = ctx.transforms.get(w.name)
    return tuple(w.shape) if transform is None else tuple(transform(np.zeros(w.shape, np.float32)).shape)


def _derived(name: str, d: Derived, stored: dict, layer: str) -> Written:
    def load():
        value = np.ascontiguousarray(d.compute(*(read_array(stored[s].dataset) for s in d.sources)))
        if value.shape != d.shape:
            raise ValueError(f"derived weight {name} has shape {value.shape}, not {d.shape}")
        return value

    return Written(name, d.shape, layer, load, d.sources)


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

# Layers whose (first) output has the rank of their (first) input: elementwise, normalizing, resampling
# and merging layers, convolutions and pooling of any rank, augmentation (identity at inference).
# Image augmentation layers: each returns its input, cast to its float compute dtype, when called with
# training=False (checked in Keras 3.15 and tf_keras 2.21); lowering/preprocessing.py removes them.
AUGMENTATION = (
    "RandomFlip",
    "RandomRotation",
    "RandomZoom",
    "RandomTranslation",
    "RandomContrast",
    "RandomBrightness",
    "RandomHeight",
    "RandomWidth",
    "RandomColorDegeneration",
    "RandomColorJitter",
    "RandomElasticTransform",
    "RandomErasing",
    "RandomGaussianBlur",
    "RandomGrayscale",
    "RandomHue",
    "RandomInvert",
    "RandomPerspective",
    "RandomPosterization",
    "RandomSaturation",
    "RandomSharpness",
    "RandomShear",
    "AugMix",
    "CutMix",
    "Equalization",
    "MixUp",
    "RandAugment",
    "Solarization",
)

OUT_RANK_KEEP = frozenset(
    {
        "Dense",
        "Activation",
        "Dropout",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "SpatialDropout3D",
        "GaussianNoise",
        "GaussianDropout",
        "AlphaDropout",
        "ActivityRegularization",
        "BatchNormalization",
        "LayerNormalization",
        "GroupNormalization",
        "UnitNormalization",
        "RMSNormalization",
        "Normalization",
        "Discretization",
        "SpectralNormalization",
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
        "DepthwiseConv1D",
        "LocallyConnected1D",
        "LocallyConnected2D",
        "MaxPooling1D",
        "MaxPooling2D",
        "MaxPooling3D",
        "AveragePooling1D",
        "AveragePooling2D",
        "AveragePooling3D",
        "AdaptiveAveragePooling1D",
        "AdaptiveAveragePooling2D",
        "AdaptiveAveragePooling3D",
        "AdaptiveMaxPooling1D",
        "AdaptiveMaxPooling2D",
        "AdaptiveMaxPooling3D",
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
        "MultiHeadAttention",
        "GroupedQueryAttention",
        "Attention",
        "AdditiveAttention",
        # keras.applications' own layers (ConvNeXt, InceptionResNetV2)
        "LayerScale",
        "CustomScaleLayer",
        "StochasticDepth",
        "RandomCrop",
        "AutoContrast",
        "ContrastLimitedAdaptiveHistogramEqualization",
        *AUGMENTATION,
    }
)
# tf_keras TFOpLambda functions whose output has the rank of their first input (filled by ops.py).
TF_OPS_RANK_KEEP: set[str] = set()
RNNS = ("SimpleRNN", "GRU", "LSTM", "RNN", "Bidirectional")
CONV_RNNS = {"ConvLSTM1D": 4, "ConvLSTM2D": 5, "ConvLSTM3D": 6}  # the rank of a returned sequence


def out_rank(e: dict, in_ranks: list) -> int | None:
    """The rank (batch included) of a layer's first output, from its inputs' ranks and its config; None when
    unknown (a Lambda, a Dot, a custom layer)."""
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
    if cls == "EinsumDense":
        shape = cfg.get("output_shape")
        return len(shape) + 1 if isinstance(shape, list) else 2
    if cls in RNNS:
        inner = cfg.get("layer", {}).get("config", {}) if cls == "Bidirectional" else cfg
        return 3 if inner.get("return_sequences") else 2
    if cls in CONV_RNNS:
        return CONV_RNNS[cls] if cfg.get("return_sequences") else CONV_RNNS[cls] - 1
    if cls == "TimeDistributed" and isinstance(cfg.get("layer"), dict):
        inner = out_rank(cfg["layer"], [None if r is None else r - 1])
        return None if inner is None else inner + 1
    if cls in ("Functional", "Model", "Sequential"):
        return container_rank(e)
    if cls == "TFOpLambda":
        return _tf_op_rank(cfg, r, (e.get("inbound_nodes") or [[]])[0])
    return None


def _tf_op_rank(cfg: dict, r: int | None, node) -> int | None:
    fn = cfg.get("function")
    if fn in TF_OPS_RANK_KEEP:
        return r
    refs = _tensor_refs(node)
    kwargs = refs[0][3] if refs and len(refs[0]) > 3 and isinstance(refs[0][3], dict) else {}
    if fn == "reshape" and isinstance(kwargs.get("shape"), list):
        return len(kwargs["shape"])
    if fn in ("transpose", "compat.v1.transpose") and isinstance(kwargs.get("perm"), list):
        return len(kwargs["perm"])
    return None


def container_rank(e: dict) -> int | None:
    """The rank of a nested model's first output, following its layers from its inputs."""
    cfg = e.get("config") or {}
    layers = cfg.get("layers") or []
    if e.get("class_name") == "Sequential":
        rank = None
        for layer in layers:
            shape = batch_shape(layer)
            rank = len(shape) if shape else rank
            if layer.get("class_name") != "InputLayer":
                rank = out_rank(layer, [rank])
        return rank
    ranks: dict[str, int | None] = {}
    for layer in layers:
        nodes = layer.get("inbound_nodes") or []
        refs = _tensor_refs(nodes[0]) if nodes else []
        ranks[layer_name(layer)] = out_rank(layer, [ranks.get(str(ref[0])) for ref in refs])
    out = cfg.get("output_layers") or []
    first = out if out and isinstance(out[0], str) else (out[0] if out else None)
    return ranks.get(str(first[0])) if first else None


def _tensor_refs(node) -> list:
    """The [layer, node, tensor(, kwargs)] each input of one call refers to: a Keras 2 node (a list of refs, or
    tf_keras's single unnested ref) or a Keras 3 one (keras tensors in its arguments)."""
    if isinstance(node, dict):
        if node.get("class_name") == "__keras_tensor__":
            return [list((node.get("config") or {}).get("keras_history") or [])]
        return [ref for v in node.values() for ref in _tensor_refs(v)]
    if isinstance(node, list):
        if node and isinstance(node[0], str):
            return [node]
        return [ref for v in node for ref in _tensor_refs(v)]
    return []


# --- the registry ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Site:
    """One of the user's layers, as a rule sees it."""

    entry: dict
    ctx: Context
    rank: int | None  # the rank of its (first) input, batch included, when the file says
    shape: list | None  # its (first) input shape, batch included, when the file says
    functional: bool  # in a functional model (a rule may branch) rather than a Sequential
    shapes: list = dataclasses.field(default_factory=list)  # the shape of each input of its first call, or None

    @property
    def masked(self) -> bool:
        """Whether an input may carry a Keras mask (from Embedding(mask_zero=True) or Masking upstream)."""
        return any(ref[0] in self.ctx.masked for node in self.entry.get("inbound_nodes") or [] for ref in node)

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

    def expect(self, *keys: str) -> dict:
        """The config, once every key is one the rule reads (or a layer's common keys) and the layer computes in
        float32. A layer a rule replaces is never seen by `support`, so the rule must refuse what it does not
        know rather than drop it."""
        cfg = self.cfg
        unknown = sorted(set(cfg) - set(keys) - COMMON_KEYS)
        if unknown:
            raise Refuse(f"{self.cls} argument(s) {', '.join(unknown)} are not known to this lowering")
        if cfg.get("dtype") not in (None, "float32"):
            raise Refuse(f"{self.cls} computes in {cfg.get('dtype')}, not float32")
        return cfg

    @property
    def weights(self) -> list[str]:
        """The names of the layer's weights, as the file lists them."""
        return self.ctx.layer_weights(self.name)

    def fold(self, weight: str) -> np.ndarray:
        """The values of the weight `weight` (a full name), which the replacement holds in its config: the
        weight is then left out of the shards."""
        values = self.ctx.weight_values(weight)
        self.ctx.folded.add(weight)
        return values


COMMON_KEYS = frozenset({"name", "trainable", "dtype", "batch_input_shape", "batch_shape", "batch_size"})
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


def find(e: dict, ctx: Context, rank: int | None, shape: list | None, functional: bool, shapes=None):
    """(rule name, chain, detail) replacing `e`, or None when TF.js runs it as it is; raises Refuse."""
    site = Site(e, ctx, rank, shape, functional, list(shapes) if shapes is not None else [shape])
    candidates = RULES.get(site.cls, [])
    if site.cls in ACTIVATION_OWNERS:
        candidates = [*candidates, *ACTIVATION_RULES]
    for registered in candidates:
        before = (dict(ctx.transforms), dict(ctx.renames), set(ctx.folded), dict(ctx.derived), set(ctx.replaced))
        try:
            found = registered.apply(site)
        except Refuse:
            # a refused rule leaves the weights as stored
            ctx.transforms, ctx.renames, ctx.folded, ctx.derived, ctx.replaced = before
            raise
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
        shapes = _input_shapes(e, refs, entries, ctx)
        shape = shapes[0] if shapes else None
        rank = len(shape) if shape is not None else (in_ranks[0] if in_ranks else None)
        _check_rank_limit(e, [rank] + in_ranks[1:], ctx)
        if _makes_mask(e, ctx) or any(r[0] in ctx.masked for node in e.get("inbound_nodes") or [] for r in node):
            ctx.masked.add(name)
        _note_input(e, ctx)
        try:
            found = find(e, ctx, rank, shape, functional=True, shapes=shapes)
        except Refuse as r:
            ctx.issues.append(_issue(e, r.reason))
            found = None
        ranks[name] = out_rank(e, [rank] + in_ranks[1:]) if in_ranks else out_rank(e, [])
        if found is None:
            out.append(e)
            continue
        rule_name, replacement, detail = found
        ctx.applied.append(Applied(rule_name, name, detail))
        if name in ctx.masked:
            ctx.masked.update(layer_name(c) for c in replacement)
        if not replacement:
            ctx.outputs[name] = _bypass(entries, outputs, e)
            continue
        last = output_name(replacement)
        if last != name:
            ctx.outputs[name] = last
            ranks[last] = ranks[name]
            _redirect(entries, outputs, name, last, {layer_name(c) for c in replacement})
        out.extend(replacement)
    return out, outputs


def _bypass(entries: list[dict], outputs: list, removed: dict) -> str:
    """Remove a layer that is an identity at inference: every reference to the output of its call k is
    redirected to that call's input. Returns the layer now holding the output of its first call."""
    name, nodes = layer_name(removed), removed.get("inbound_nodes") or []
    if any(len(node) != 1 for node in nodes):
        raise ValueError(f"only a layer with one input can be removed, not {name}")
    sources = [node[0] for node in nodes]
    refs = [ref for e in entries for node in e.get("inbound_nodes") or [] for ref in node] + list(outputs)
    for ref in refs:
        if ref[0] == name:
            ref[0], ref[1], ref[2] = sources[ref[1]][:3]
    return str(sources[0][0])


def _note_input(e: dict, ctx: Context) -> None:
    dtype = (e.get("config") or {}).get("dtype")
    if e.get("class_name") == "InputLayer" and isinstance(dtype, str) and dtype.startswith(("int", "uint")):
        ctx.int_inputs = True


def _input_shapes(e, refs, entries, ctx) -> list:
    """The shape of each input of the layer's first call (None where unknown), when the file records it:
    Keras 3 writes them with every call; for tf_keras only an InputLayer's is known."""
    name = layer_name(e)
    if ctx.shapes.get(name):
        return list(ctx.shapes[name])
    out: list = []
    for ref in refs:
        source = next((x for x in entries if layer_name(x) == ref[0]), None)
        shape = batch_shape(source) if source is not None and source.get("class_name") == "InputLayer" else None
        out.append(list(shape) if isinstance(shape, list) else None)
    return out


def _makes_mask(e: dict, ctx: Context) -> bool:
    cls, cfg = e.get("class_name"), e.get("config") or {}
    if cls == "InputLayer":
        return ctx.nested_inputs_masked and layer_name(e) not in ctx.top_inputs
    return cls == "Masking" or (cls == "Embedding" and bool(cfg.get("mask_zero")))


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
        _note_input(e, ctx)
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
        if not replacement:  # removed: the next layer takes its input
            if batch_shape(e) and not out:  # it carried the model's only input shape: an InputLayer keeps it
                config = {"batch_input_shape": batch_shape(e), "dtype": "float32", "name": f"{layer_name(e)}_input"}
                out.append({"class_name": "InputLayer", "config": config})
            ctx.outputs[layer_name(e)] = layer_name(out[-1])
            continue
        if batch_shape(e) and not batch_shape(replacement[0]):  # the model's input shape stays on its first layer
            replacement[0]["config"]["batch_input_shape"] = batch_shape(e)
        if output_name(replacement) != layer_name(e):
            ctx.outputs[layer_name(e)] = output_name(replacement)
        out.extend({k: v for k, v in c.items() if k != "inbound_nodes"} for c in replacement)
    return out
