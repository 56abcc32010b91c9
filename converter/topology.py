"""Keras 2 and Keras 3 model configs to the Keras 2 style config TF.js 4.22 deserializes.

This module owns the *structure*: serialized-object envelopes, dtype policies, the Keras 3 node format,
input/output layer lists, Sequential inputs, nested models and wrappers. What each layer's arguments
mean in TF.js is `converter.support`'s job: every layer config goes through `support.adapt_layer`.
Problems are collected as `Issue`s, never raised, so that a model's every problem is reported at once.
"""

from __future__ import annotations

import copy
import dataclasses

from converter import companion, lowering, masks
from converter.lowering.applications import MODULES as APPLICATION_LAYERS
from converter.support import Issue, adapt_layer

CONTAINERS = ("Functional", "Model", "Sequential")
# Keys Keras 3 adds to serialized objects that carry no meaning for TF.js.
ENVELOPE_KEYS = ("module", "registered_name", "build_config", "compile_config", "shared_object_id")
# Keras 3 records how a mask is computed as op layers (Embedding(mask_zero) -> NotEqual, Masking ->
# NotEqual + Any); TF.js propagates the same masks implicitly, so these nodes are dropped.
MASK_OPS = ("NotEqual", "Any")
# Layers whose output depends on `training`: a node called with training=True keeps them in training
# mode in Keras even at inference, which TF.js ignores. For every other layer the flag is neutral.
TRAINING_SENSITIVE = (
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "BatchNormalization",
    "SimpleRNN",
    "GRU",
    "LSTM",
    "ConvLSTM2D",
    "RNN",
    "Bidirectional",
    "TimeDistributed",
    "MultiHeadAttention",  # dropout on the attention weights
    "Attention",
    "AdditiveAttention",
    "Functional",
    "Sequential",
    "Model",
)
# Keras 3 records tensor arithmetic (`x * 2.0`, `keras.ops.*`) as op nodes, some named like layers
# ("Multiply", "Add"). They are marked with this prefix so they are never taken for those layers.
OP_PREFIX = "keras.ops."


def _is_op(entry: dict, keras: int) -> bool:
    """An op node: written from `keras.src.ops` (a .keras file says so), or, in a Keras 3 .h5 where the
    module is not written, a config holding nothing but a name (every layer has `trainable` and `dtype`)."""
    cls = entry.get("class_name", "")
    if str(entry.get("module", "")).startswith(("keras.src.ops", "keras.ops")):
        return True
    cfg = entry.get("config")
    return (
        keras == 3 and cls not in CONTAINERS and cls != "InputLayer" and isinstance(cfg, dict) and set(cfg) <= {"name"}
    )


def _bare(cls) -> str:
    return cls[len(OP_PREFIX) :] if isinstance(cls, str) and cls.startswith(OP_PREFIX) else cls


def is_serialized(obj) -> bool:
    return isinstance(obj, dict) and "class_name" in obj and "config" in obj


def clean(obj):
    """Strip Keras 3 envelopes recursively: {module, class_name, config, registered_name} -> {class_name,
    config}; DTypePolicy objects -> their name; serialized functions (activations) -> their name."""
    if isinstance(obj, list):
        return [clean(x) for x in obj]
    if not isinstance(obj, dict):
        return obj
    if is_serialized(obj):
        cls = obj["class_name"]
        if isinstance(cls, str) and cls.endswith("DTypePolicy") and isinstance(obj["config"], dict):
            return obj["config"].get("name", "float32")
        if cls == "function" and isinstance(obj["config"], str):
            return obj["config"]
        module = obj.get("module")
        if cls in APPLICATION_LAYERS and module is not None and module not in APPLICATION_LAYERS[cls]:
            # a class named like one of keras.applications' own layers, defined elsewhere: a custom layer
            return {**{k: clean(v) for k, v in obj.items() if k not in ENVELOPE_KEYS}, "class_name": f"{module}>{cls}"}
        if (
            obj.get("registered_name")
            and obj.get("registered_name") not in (cls, "function")
            and cls not in CONTAINERS
            and not str(cls).startswith(OP_PREFIX)
        ):
            # A custom object registered in Python: its registered name (`package>Class`) is the class name, which
            # support refuses, or a JavaScript port the user names registers (companion.Context.custom).
            return {
                **{k: clean(v) for k, v in obj.items() if k not in ENVELOPE_KEYS},
                "class_name": obj["registered_name"],
            }
    return {k: clean(v) for k, v in obj.items() if k not in ENVELOPE_KEYS}


def translate_model(
    model_config: dict, *, keras: int, low: lowering.Context | None = None, comp: companion.Context | None = None
) -> tuple[dict, list[Issue]]:
    """(TF.js model config, issues) for a Keras 2 or 3 `model_config`; with `low`, the lowering stage runs
    on every container (what it applied, and the weight transforms it needs, are left in `low`)."""
    issues: list[Issue] = []
    config = clean(_mark_ops(copy.deepcopy(model_config), keras))
    has_masks = _makes_masks(config)
    _drop_zero_output_for_mask(config, masks=has_masks)
    if low is not None and has_masks:
        # a nested model's inputs carry the masks of the tensors it is called on; the model's own never do
        low.nested_inputs_masked = True
        low.top_inputs = {str(ref[0]) for ref in _flat_triples((config.get("config") or {}).get("input_layers"))}
    out = _container(config, keras, issues, low, comp)
    if low is not None:
        # A class TF.js lacks that the lowering stage refused: its reason (the form not lowered) says more.
        refused = {(i.layer, i.class_name) for i in low.issues}
        issues = [i for i in issues if not (i.code == "unknown_layer" and (i.layer, i.class_name) in refused)]
        issues.extend(low.issues)
    issues.extend(masks.refusals(out))
    return out, issues


def _mark_ops(obj, keras: int):
    """Prefix the class of every op node in a functional model (see OP_PREFIX)."""
    if isinstance(obj, list):
        return [_mark_ops(x, keras) for x in obj]
    if not isinstance(obj, dict):
        return obj
    if "inbound_nodes" in obj and _is_op(obj, keras):
        obj = {**obj, "class_name": OP_PREFIX + _bare(obj.get("class_name", ""))}
    return {k: _mark_ops(v, keras) for k, v in obj.items()}


def _makes_masks(obj) -> bool:
    """Whether any layer can create a mask (Embedding(mask_zero=True) or Masking)."""
    if isinstance(obj, list):
        return any(_makes_masks(x) for x in obj)
    if not isinstance(obj, dict):
        return False
    cfg = obj.get("config")
    if obj.get("class_name") == "Masking" or (
        obj.get("class_name") == "Embedding" and isinstance(cfg, dict) and cfg.get("mask_zero")
    ):
        return True
    return any(_makes_masks(v) for v in obj.values())


def _drop_zero_output_for_mask(obj, *, masks: bool):
    """`zero_output_for_mask` (which Keras' Bidirectional sets on its RNNs; TF.js has no such argument)
    only acts on masked steps of a returned sequence: drop it where no mask can exist or where the
    layer returns only its last output; elsewhere support refuses it."""
    if isinstance(obj, list):
        for x in obj:
            _drop_zero_output_for_mask(x, masks=masks)
    elif isinstance(obj, dict):
        if "zero_output_for_mask" in obj and (not masks or not obj.get("return_sequences")):
            obj.pop("zero_output_for_mask")
        for v in obj.values():
            _drop_zero_output_for_mask(v, masks=masks)


def _container(obj: dict, keras: int, issues: list, low=None, comp=None) -> dict:
    cls = obj.get("class_name")
    cfg = obj.get("config")
    if cls == "Sequential":
        return {"class_name": "Sequential", "config": _sequential(cfg, keras, issues, low, comp)}
    if cls in ("Functional", "Model"):
        return {"class_name": cls, "config": _functional(cfg or {}, keras, issues, low, comp)}
    issues.append(
        Issue(
            layer=str((cfg or {}).get("name", "?")),
            class_name=str(cls),
            argument=None,
            value=None,
            code="needs_python_code",
            reason=f"model class {cls!r} is a subclassed model; only Sequential and "
            f"functional models have a config TF.js can rebuild",
        )
    )
    return obj


def _layer(entry: dict, keras: int, issues: list, low=None, comp=None) -> dict:
    """One layer entry: nested models recurse, everything else goes through support."""
    cls = entry.get("class_name")
    if cls in CONTAINERS:
        return _container(entry, keras, issues, low, comp) | {
            k: v for k, v in entry.items() if k not in ("class_name", "config")
        }
    cfg = dict(entry.get("config") or {})
    if isinstance(cls, str) and cls.startswith(OP_PREFIX):
        issues.append(
            Issue(
                layer=str(cfg.get("name", "?")),
                class_name=_bare(cls),
                argument=None,
                value=None,
                code="needs_python_code",
                reason=f"a Keras 3 op ({_bare(cls)}) applied to a tensor, not a layer: "
                f"TF.js cannot rebuild it; wrap it in a layer TF.js has",
            )
        )
        return entry
    if cls == "Bidirectional":
        cfg = _unprefix_forward(cfg)
    # Wrapped layers and RNN cells are layer configs of their own.
    for key in ("layer", "cell"):
        if isinstance(cfg.get(key), dict) and "class_name" in cfg[key]:
            cfg[key] = _layer(cfg[key], keras, issues, comp=comp)
    if isinstance(cfg.get("cells"), list):
        cfg["cells"] = [_layer(c, keras, issues, comp=comp) for c in cfg["cells"]]
    if cls == "Bidirectional" and comp is not None and _uses_companion(cfg.get("layer")):
        # support compares backward_layer with the forward layer's reversed copy: in the companion's form too
        # (its issues and uses are the forward layer's, counted once)
        quiet = dataclasses.replace(comp, uses=[], custom_layers=[])
        if isinstance(cfg.get("backward_layer"), dict) and "class_name" in cfg["backward_layer"]:
            cfg["backward_layer"] = _layer(cfg["backward_layer"], keras, [], comp=quiet)
    # the companion module's classes and the user's own come first; everything else is TF.js's (support_table)
    found = companion.adapt(str(cls), cfg, keras, comp) if comp is not None else None
    new_cls, new_cfg, layer_issues = found if found is not None else adapt_layer(cls, cfg, keras=keras)
    issues.extend(layer_issues)
    return {**entry, "class_name": new_cls, "config": new_cfg}


def _uses_companion(entry) -> bool:
    return isinstance(entry, dict) and entry.get("class_name") in companion.CLASSES


def _unprefix_forward(cfg: dict) -> dict:
    """Keras 3 stores Bidirectional's already-renamed copy (`forward_x`); TF.js adds `forward_` itself."""
    inner = copy.deepcopy(cfg.get("layer") or {})
    name = (inner.get("config") or {}).get("name", "")
    if name.startswith("forward_"):
        inner["config"]["name"] = name[len("forward_") :]
    return {**cfg, "layer": inner}


def _sequential(cfg, keras: int, issues: list, low=None, comp=None) -> dict:
    if isinstance(cfg, list):  # very old Keras: the config is the layer list
        cfg = {"layers": cfg}
    layers = list(cfg.get("layers") or [])
    first = layers[0] if layers else None
    has_input = first is not None and (
        first.get("class_name") == "InputLayer"
        or any(k in (first.get("config") or {}) for k in ("batch_input_shape", "batch_shape"))
    )
    if not has_input:
        shape = cfg.get("build_input_shape")
        if shape is None:
            issues.append(
                Issue(
                    layer=str(cfg.get("name")),
                    class_name="Sequential",
                    argument=None,
                    value=None,
                    code="unsupported_argument",
                    reason="the Sequential model was never built, so it has no input shape",
                )
            )
        else:
            layers.insert(
                0,
                {
                    "class_name": "InputLayer",
                    "config": {
                        "batch_input_shape": list(shape),
                        "dtype": "float32",
                        "name": f"{cfg.get('name', 'sequential')}_input",
                    },
                },
            )
    if low is not None:
        layers = lowering.lower_sequential(layers, low)
    out = {"name": cfg.get("name"), "layers": [_layer(entry, keras, issues, low, comp) for entry in layers]}
    return {k: v for k, v in out.items() if v is not None}


def _flat_triples(value):
    """Keras 3 writes a single input/output as a flat ["x", 0, 0]; Keras 2 always nests."""
    if value and isinstance(value[0], str):
        return [list(value)]
    return [list(v) for v in value or []]


def _functional(cfg: dict, keras: int, issues: list, low=None, comp=None) -> dict:
    entries: list = [_attention_inputs(e) for e in cfg.get("layers") or []]
    if low is not None and keras == 3:
        entries = [_lower_op(e, low) for e in entries]
        for e in entries:
            _record_shapes(e, low)
    by_name = {e.get("name") or (e.get("config") or {}).get("name"): e for e in entries}
    # A nested model has a node of its own from being built (Keras 2 and TF.js count it). Keras 3 writes
    # the nodes that call it without that node, so references to it from Keras 3 nodes shift by one; its
    # `output_layers` already count the node for a Functional (functional.py get_config's reindexing map),
    # but not for a Sequential, which in Keras 3 is no Functional.
    shift = {n for n, e in by_name.items() if e.get("class_name") in CONTAINERS} if keras == 3 else set()
    out_shift = {n for n in shift if by_name[n].get("class_name") == "Sequential"}
    translated = []
    for entry in entries:
        name = entry.get("name") or (entry.get("config") or {}).get("name")
        nodes = [
            _node(node, str(name), entry.get("class_name"), by_name, shift, issues)
            for node in entry.get("inbound_nodes") or []
        ]
        translated.append({**entry, "name": name, "inbound_nodes": nodes})
    # Mask op layers nobody reads any more are dropped, chains too (Masking: NotEqual -> Any).
    outputs = [[n, i + (n in out_shift), t] for n, i, t in _flat_triples(cfg.get("output_layers"))]
    kept = translated
    while True:
        used = {ref[0] for e in kept for node in e["inbound_nodes"] for ref in node}
        used |= {ref[0] for ref in outputs}
        pruned = [e for e in kept if not (_bare(e.get("class_name")) in MASK_OPS and e["name"] not in used)]
        if len(pruned) == len(kept):
            break
        kept = pruned
    if low is not None:
        kept, outputs = lowering.lower_functional(kept, outputs, low)
    return {
        "name": cfg.get("name"),
        "layers": [_layer(e, keras, issues, low, comp) for e in kept],
        "input_layers": _flat_triples(cfg.get("input_layers")),
        "output_layers": outputs,
    }


def _attention_inputs(entry: dict) -> dict:
    """MultiHeadAttention is called as `mha(query, value, key=None, attention_mask=None, ...)`: Keras 3 writes
    the tensors as arguments, tf_keras as `value` and `key` keyword arguments of the query's node. Both become
    one input list [query, value(, key)], as Attention takes its inputs, so every reference to an input is a
    node's input (lowering redirects those); a tensor `attention_mask` is kept as `True`, for the lowering to
    refuse by name."""
    if entry.get("class_name") != "MultiHeadAttention":
        return entry
    nodes: list = []
    for node in entry.get("inbound_nodes") or []:
        if isinstance(node, dict):  # Keras 3: {"args": [query, value(, key)], "kwargs": {...}}
            kwargs = dict(node.get("kwargs") or {})
            tensors = list(node.get("args") or [])
            for key in ("query", "value", "key")[len(tensors) :]:
                if _is_tensor(kwargs.get(key)):
                    tensors.append(kwargs.pop(key))
            if _is_tensor(kwargs.get("attention_mask")):
                kwargs["attention_mask"] = True
            nodes.append({"args": [tensors], "kwargs": kwargs})
        elif node and isinstance(node[0], list) and len(node[0]) == 4 and isinstance(node[0][3], dict):
            first, kwargs = node[0][:3], dict(node[0][3])  # tf_keras: [[query..., {"value": [...], ...}]]
            refs = [first] + [kwargs.pop(k)[:3] for k in ("value", "key") if isinstance(kwargs.get(k), list)]
            if isinstance(kwargs.get("attention_mask"), list):
                kwargs["attention_mask"] = True
            nodes.append([[*ref, dict(kwargs)] for ref in refs])
        else:
            nodes.append(node)
    return {**entry, "inbound_nodes": nodes}


def _tensor_shapes(obj) -> list:
    if _is_tensor(obj):
        shape = obj["config"].get("shape")
        return [list(shape) if isinstance(shape, list) else None]
    if isinstance(obj, (list, tuple)):
        return [s for x in obj for s in _tensor_shapes(x)]
    return []


def _record_shapes(entry: dict, low) -> None:
    """Keras 3 writes each call's input shapes in its node: keep the first call's for the lowering stage."""
    nodes = entry.get("inbound_nodes") or []
    if nodes and isinstance(nodes[0], dict) and nodes[0].get("args"):
        low.shapes[entry.get("name") or (entry.get("config") or {}).get("name")] = _tensor_shapes(nodes[0]["args"][0])


# Keras 3 op nodes that are a layer TF.js has: tensor (op) constant, and tensor (op) tensor.
_SCALAR_OPS = {"Add", "Subtract", "Multiply", "TrueDivide", "Divide"}


def _lower_op(entry: dict, low) -> dict:
    """A Keras 3 op node applying arithmetic with a constant, or between two tensors, as the layer that
    computes it (lowering_table: scalar_op, tensor_op); any other op node is left to be refused."""
    cls = entry.get("class_name")
    if not (isinstance(cls, str) and cls.startswith(OP_PREFIX)):
        return entry
    op, name = _bare(cls), entry.get("name") or (entry.get("config") or {}).get("name")
    nodes = entry.get("inbound_nodes") or []
    if not nodes or not all(
        isinstance(n, dict) and len(n.get("args") or []) in (1, 2) and not n.get("kwargs") for n in nodes
    ):
        return entry
    args = nodes[0]["args"]
    numbers = [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]
    tensors = [a for a in args if _is_tensor(a)]
    if op == "Relu6" and len(args) == 1 and len(tensors) == 1:
        new = ("ReLU", {"max_value": 6.0})
        rule, detail = "tensor_op", "keras.ops.relu6 -> ReLU(max_value=6)"
    elif op in _SCALAR_OPS and len(tensors) == 1 and len(numbers) == 1 and len(args) == 2:
        c, first = float(numbers[0]), _is_tensor(args[0])
        if op == "Add":
            scale, offset = 1.0, c
        elif op == "Subtract":
            scale, offset = (1.0, -c) if first else (-1.0, c)
        elif op == "Multiply":
            scale, offset = c, 0.0
        elif first and c != 0:  # x / c
            scale, offset = 1.0 / c, 0.0
        else:
            return entry  # c / x has no layer
        new = ("Rescaling", {"scale": lowering.f32(scale), "offset": lowering.f32(offset)})
        rule, detail = (
            "scalar_op",
            f"{op}({'x, ' if first else ''}{c:g}{'' if first else ', x'}) -> "
            f"Rescaling(scale={scale:g}, offset={offset:g})",
        )
        nodes = [{"args": [next(a for a in n["args"] if _is_tensor(a))], "kwargs": {}} for n in nodes]
    elif op in ("Add", "Multiply", "Subtract") and len(tensors) == 2 and len(args) == 2:
        new = (op, {})
        rule, detail = "tensor_op", f"{op} of two tensors -> the {op} layer"
        nodes = [{"args": [list(n["args"])], "kwargs": {}} for n in nodes]
    else:
        return entry
    low.applied.append(lowering.Applied(rule, str(name), detail))
    return {**entry, "class_name": new[0], "config": {"name": name, **new[1]}, "inbound_nodes": nodes}


def _is_tensor(obj) -> bool:
    return isinstance(obj, dict) and obj.get("class_name") == "__keras_tensor__"


def _refs(obj) -> list:
    """Every keras tensor in a (nested) argument, as [layer, node_index, tensor_index]."""
    if _is_tensor(obj):
        return [list(obj["config"]["keras_history"])]
    if isinstance(obj, (list, tuple)):
        return [r for x in obj for r in _refs(x)]
    if isinstance(obj, dict):
        return [r for x in obj.values() for r in _refs(x)]
    return []


def _node(node, layer: str, cls: str, by_name: dict, shift: set, issues: list) -> list:
    """A Keras 3 node {"args", "kwargs"} as a Keras 2 list of [layer, node, tensor, kwargs]."""
    if isinstance(node, list):  # already Keras 2; tf_keras writes a TFOpLambda's node unnested
        return [node] if node and isinstance(node[0], str) else node
    args = list(node.get("args") or [])
    kwargs = dict(node.get("kwargs") or {})

    def problem(argument, reason):
        issues.append(
            Issue(
                layer=str(layer),
                class_name=str(cls),
                argument=argument,
                value=None,
                code="unsupported_argument",
                reason=reason,
            )
        )

    refs = _refs(args[0]) if args else []
    if _bare(cls) not in MASK_OPS and any(_refs(a) for a in args[1:]):
        problem("args", "tensors passed as extra positional arguments")
    # RNN initial states follow the inputs, as in Keras 2 (TF.js splits them off again).
    refs += _refs(kwargs.pop("initial_state", None))
    mask = kwargs.pop("mask", None)
    for ref in _refs(mask):
        if _bare((by_name.get(ref[0]) or {}).get("class_name")) not in MASK_OPS:
            problem(
                "mask",
                "an explicit mask tensor; TF.js only propagates masks from Embedding(mask_zero=True) and Masking",
            )
    if kwargs.pop("training", None) and _bare(cls) in TRAINING_SENSITIVE:
        problem("training", "called with training=True, which TF.js ignores at inference")
    for key, value in list(kwargs.items()):
        if _refs(value):
            problem(key, f"tensor passed as keyword argument {key!r}")
            kwargs.pop(key)
        elif value is None:
            kwargs.pop(key)
    return [[r[0], r[1] + (r[0] in shift), r[2], dict(kwargs)] for r in refs]
