"""Map one Keras layer config onto what TF.js 4.22 reads, or say why not.

The data lives in `support_table.py`; this module only applies it. A config is
returned only when TF.js will read it with the meaning Keras gave it: keys TF.js
never reads are dropped when neutral and refused otherwise (fail closed).
"""

import dataclasses
import math

from converter import support_table as table

CODES = {
    "bad_config": "The config is not a dict of the shape Keras writes.",
    "unknown_layer": "TF.js 4.22 has no layer class of this name.",
    "needs_python_code": "The layer runs Python code (Lambda, custom or registered class).",
    "unsupported_argument": "The config has a key this converter has not classified.",
    "ignored_argument": "TF.js never reads this key, and its value is not neutral.",
    "unsupported_value": "TF.js reads this key but refuses or mis-computes this value.",
    "unknown_activation": "TF.js 4.22 has no activation with Keras's meaning of this name.",
    "unknown_initializer": "TF.js 4.22 has no such initializer (it is built even when weights load).",
    "unknown_regularizer": "TF.js 4.22 has no such regularizer.",
    "unknown_constraint": "TF.js 4.22 has no such constraint.",
    "unsupported_dtype": "TF.js 4.22 layers compute in float32 (inputs: float32 or int32).",
    "not_lowerable": "TF.js lacks or mis-computes this, and no exact lowering applies (lowering_table.py).",
    "ignores_mask": "A mask reaches a layer that uses it in Keras and ignores it in TF.js (masks.py).",
    "rank_limit": "TF.js refuses this layer at the rank its input has here (support_table.RANK_LIMITS).",
    "needs_companion": "Only the companion module runs this (companion_table.py): convert with --companion.",
}

SUPPORTED_LAYERS = frozenset(table.LAYERS)
ACTIVATIONS = table.ACTIVATIONS
INITIALIZERS = table.INITIALIZERS
REGULARIZERS = table.REGULARIZERS
CONSTRAINTS = table.CONSTRAINTS


@dataclasses.dataclass(frozen=True)
class Issue:
    """Why one layer (or one of its arguments) cannot be converted."""

    layer: str
    class_name: str
    argument: str | None
    value: object
    code: str
    reason: str

    def __str__(self):
        where = f"{self.layer} ({self.class_name})"
        if self.argument is not None:
            where += f" {self.argument}={self.value!r}"
        return f"{where}: {self.reason} [{self.code}]"


class _Refused(Exception):
    """Raised inside one argument's conversion; becomes one Issue."""

    def __init__(self, code, reason, value):
        super().__init__(reason)
        self.code, self.reason, self.value = code, reason, value


def adapt_layer(class_name, config, *, keras):
    """Return `(tfjs_class_name, tfjs_config, issues)` for one layer config.

    keras: 2 or 3, the Keras that wrote the config. Nested layers (`layer`,
    `cell`, `cells`) are left as they are: the translator visits them.
    """
    name = config.get("name", "?") if isinstance(config, dict) else "?"

    def issue(argument, value, code, reason):
        return Issue(str(name), str(class_name), argument, value, code, reason)

    if not isinstance(class_name, str) or not isinstance(config, dict):
        return class_name, config, [issue(None, None, "bad_config", "a layer needs a class name and a dict config")]
    if keras not in (2, 3):
        raise ValueError(f"keras must be 2 or 3, not {keras!r}")
    tfjs_class = table.CLASS_RENAMES.get(class_name, class_name)
    if tfjs_class in table.CONTAINERS:
        return tfjs_class, config, []
    if tfjs_class in table.TF_OP_LAYERS:
        reason = (
            f"{class_name} calls tf.{config.get('function')}, which TF.js cannot run; the converter lowers only "
            "the TensorFlow functions of converter/lowering/ops.py, in the forms it lists"
        )
        return tfjs_class, config, [issue(None, None, "needs_python_code", reason)]
    if tfjs_class in table.PYTHON_LAYERS or ">" in tfjs_class:
        return (
            tfjs_class,
            config,
            [
                issue(
                    None,
                    None,
                    "needs_python_code",
                    f"{class_name} runs Python code that TF.js cannot run; port it to JavaScript",
                )
            ],
        )
    if tfjs_class in table.DIVERGENT_LAYERS:
        return tfjs_class, config, [issue(None, None, "unsupported_value", table.DIVERGENT_LAYERS[tfjs_class])]
    if tfjs_class not in table.LAYERS:
        if tfjs_class in table.MISSING_LAYERS:
            reason = f"TF.js 4.22 has no {class_name} layer"
        else:
            reason = f"{class_name} is not a TF.js 4.22 layer (a custom layer needs a JavaScript port)"
        return tfjs_class, config, [issue(None, None, "unknown_layer", reason)]

    out, issues = adapt_arguments(class_name, config, {**table.COMMON, **table.LAYERS[tfjs_class]}, keras=keras)
    return tfjs_class, out, issues


def adapt_arguments(class_name, config: dict, rules: dict, *, keras) -> tuple[dict, list[Issue]]:
    """`(tfjs_config, issues)`: each key of a layer's `config` through its rule in `rules` (support_table's
    vocabulary); a key without a rule is refused."""
    name = config.get("name", "?")

    def issue(argument, value, code, reason):
        return Issue(str(name), str(class_name), argument, value, code, reason)

    out: dict = {}
    issues: list[Issue] = []
    for key, value in config.items():
        rule = rules.get(key)
        if rule is None:
            issues.append(
                issue(
                    key, value, "unsupported_argument", f"{class_name} argument {key!r} is not known to this converter"
                )
            )
            continue
        try:
            kept, converted = _apply(rule, key, value, class_name, config, keras)
        except _Refused as refused:
            issues.append(issue(key, refused.value, refused.code, refused.reason))
            continue
        if kept:
            target = rule.to or key
            if target in out and target != key and not _same(out[target], converted):
                issues.append(issue(key, value, "bad_config", f"{key!r} and {target!r} disagree"))
            out[target] = converted
    return out, issues


def _apply(rule, key, value, class_name, config, keras):
    """Return (kept, value) for one key, or raise _Refused."""
    kind = rule.kind
    if kind == "keep":
        if key == "axis" and class_name in ("BatchNormalization", "BatchNormalizationV1", "BatchNormalizationV2"):
            value = _single_axis(value)
        if rule.allowed is not None and not any(_same(value, a) for a in rule.allowed):
            reason = rule.why or f"TF.js 4.22 {class_name} accepts {key} in {list(rule.allowed)}"
            raise _Refused("unsupported_value", reason, value)
        return True, value
    if kind == "drop":
        if rule.neutral is table.ANY or any(_same(value, n) for n in rule.neutral):
            return False, None
        raise _Refused("ignored_argument", rule.why or f"TF.js 4.22 ignores {key}", value)
    if kind == "activation":
        return True, adapt_activation(value, keras=keras)
    if kind == "initializer":
        return True, adapt_initializer(value)
    if kind == "regularizer":
        return True, adapt_regularizer(value)
    if kind == "constraint":
        return True, adapt_constraint(value)
    if kind == "dtype":
        return True, adapt_dtype(value, input_layer=class_name == "InputLayer")
    if kind == "backward_layer":
        _check_backward_layer(value, config.get("layer"), keras)
        return False, None
    raise AssertionError(f"unknown rule kind {kind!r}")


def adapt_activation(value, *, keras):
    """Return the TF.js activation name for a Keras activation (string or object)."""
    if value is None:
        return None
    if isinstance(value, dict):
        value = value.get("config") if value.get("class_name") == "function" else value.get("class_name")
    if not isinstance(value, str) or value not in table.ACTIVATIONS:
        raise _Refused("unknown_activation", f"TF.js 4.22 has no activation {value!r}", value)
    if value == "hard_sigmoid" and keras not in table.HARD_SIGMOID_KERAS:
        raise _Refused(
            "unknown_activation", "Keras 3 hard_sigmoid is relu6(x+3)/6, TF.js computes clip(0.2x+0.5)", value
        )
    return table.ACTIVATIONS[value]


def adapt_initializer(value):
    """Return a TF.js initializer `{"class_name", "config"}` for a Keras one."""
    if value is None:
        return None
    if isinstance(value, str):
        cls = table.INITIALIZER_STRINGS.get(value)
        if cls is None:
            raise _Refused("unknown_initializer", f"TF.js 4.22 has no initializer {value!r}", value)
        value = {"class_name": cls, "config": {}}
    cls, conf = _object(value, "unknown_initializer")
    tfjs = table.INITIALIZERS.get(cls)
    if tfjs is None:
        raise _Refused("unknown_initializer", f"TF.js 4.22 has no initializer {cls!r}", value)
    keys = table.INITIALIZER_KEYS.get(tfjs, ("seed",))
    out = {k: conf[k] for k in keys if k in conf}
    if "distribution" in out:
        out["distribution"] = table.DISTRIBUTION_RENAMES.get(out["distribution"], out["distribution"])
    return {"class_name": tfjs, "config": out}


def _named_object(value, aliases: dict, code: str, what: str):
    """(class name, config) of a serialized object, or of its string alias (`"l2"`, `"max_norm"`)."""
    if isinstance(value, str):
        cls = aliases.get(value)
        if cls is None:
            raise _Refused(code, f"TF.js 4.22 has no {what} {value!r}", value)
        value = {"class_name": cls, "config": {}}
    return _object(value, code)


def adapt_regularizer(value):
    """Return a TF.js `L1L2` regularizer for a Keras L1, L2 or L1L2 one."""
    if value is None:
        return None
    cls, conf = _named_object(value, table.REGULARIZER_STRINGS, "unknown_regularizer", "regularizer")
    if cls not in table.REGULARIZERS:
        raise _Refused("unknown_regularizer", f"TF.js 4.22 has only the L1L2 regularizer, not {cls!r}", value)
    l1_key, l2_key = table.REGULARIZERS[cls]
    # Keras's own default factor is 0.01 for each, as TF.js's L1L2 constructor.
    l1 = conf.get(l1_key, 0.01) if l1_key else 0.0
    l2 = conf.get(l2_key, 0.01) if l2_key else 0.0
    return {"class_name": "L1L2", "config": {"l1": l1, "l2": l2}}


def adapt_constraint(value):
    """Return a TF.js constraint `{"class_name", "config"}` for a Keras one."""
    if value is None:
        return None
    cls, conf = _named_object(value, table.CONSTRAINT_STRINGS, "unknown_constraint", "constraint")
    if cls not in table.CONSTRAINTS:
        raise _Refused("unknown_constraint", f"TF.js 4.22 has no constraint {cls!r}", value)
    return {"class_name": cls, "config": {k: conf[k] for k in table.CONSTRAINTS[cls] if k in conf}}


def adapt_dtype(value, *, input_layer=False):
    """Return the dtype TF.js should read, refusing non-float32 compute dtypes."""
    if value is None:
        return None
    if isinstance(value, dict):  # a DTypePolicy the translator did not flatten
        value = (value.get("config") or {}).get("name")
    if input_layer and value in table.INPUT_DTYPES:
        return table.INPUT_DTYPES[value]
    if value in table.LAYER_DTYPES:
        return value
    raise _Refused("unsupported_dtype", f"TF.js 4.22 layers compute in float32, not {value!r}", value)


def _check_backward_layer(backward, forward, keras):
    """Refuse a Keras 3 backward_layer that is not the forward layer reversed."""
    if backward is None:
        return
    if not isinstance(backward, dict) or not isinstance(forward, dict):
        raise _Refused("bad_config", "Bidirectional needs layer and backward_layer configs", backward)

    def essence(layer_config):
        cls = layer_config.get("class_name")
        tfjs_class, conf, _ = adapt_layer(cls, dict(layer_config.get("config") or {}), keras=keras)
        conf.pop("name", None)
        return tfjs_class, conf, bool(conf.pop("go_backwards", False))

    f_cls, f_conf, f_back = essence(forward)
    b_cls, b_conf, b_back = essence(backward)
    if f_cls != b_cls or f_back == b_back or not _same(f_conf, b_conf):
        raise _Refused(
            "ignored_argument",
            "TF.js 4.22 always builds the backward layer as a reversed copy of `layer`",
            "<layer config>",
        )


def _object(value, code):
    """Return (class_name, config) of a serialized Keras object."""
    if not isinstance(value, dict) or not isinstance(value.get("class_name"), str):
        raise _Refused(code, f"expected a {{class_name, config}} object, got {value!r}", value)
    if value.get("registered_name") not in (None, value["class_name"]) or ">" in value["class_name"]:
        raise _Refused(code, f"{value['class_name']!r} is a custom object", value)
    conf = value.get("config") or {}
    if not isinstance(conf, dict):
        raise _Refused(code, f"{value['class_name']!r} has a config that is not a dict", value)
    return value["class_name"], conf


def _single_axis(value):
    """BatchNormalization: TF.js reads one int axis; unwrap a one-item list."""
    if isinstance(value, (list, tuple)):
        if len(value) == 1:
            return value[0]
        raise _Refused("unsupported_value", "TF.js 4.22 BatchNormalization takes a single axis", value)
    return value


def _same(value, target):
    """Equality that treats 1 == [1, 1], 0.0 == "0.0" and NaN == NaN as Keras means them."""
    if isinstance(target, (list, tuple)) and isinstance(value, (list, tuple)):
        return len(value) == len(target) and all(_same(v, t) for v, t in zip(value, target))
    if isinstance(value, dict) or isinstance(target, dict):
        if not (isinstance(value, dict) and isinstance(target, dict)) or value.keys() != target.keys():
            return False
        return all(_same(value[k], target[k]) for k in value)
    if isinstance(value, (list, tuple)) and not isinstance(target, (list, tuple)):
        return len(value) > 0 and all(_same(v, target) for v in value)
    if isinstance(value, bool) or isinstance(target, bool) or value is None or target is None:
        return value is target or (value == target and type(value) is type(target))
    number_v, number_t = _number(value), _number(target)
    if number_v is not None and number_t is not None:
        return number_v == number_t or (math.isnan(number_v) and math.isnan(number_t))
    return value == target


def _number(value):
    """float(value) for numbers and numeric strings (tf_keras writes ReLU's "0.0")."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None
