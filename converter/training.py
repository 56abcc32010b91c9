"""A compiled Keras model's training configuration as the top-level `trainingConfig` TF.js 4.22 compiles.

Sources: a `.keras` file's `compile_config`, an `.h5` file's `training_config` (Keras 3 and tf_keras), and
through them an in-memory compiled model. Every loss, metric and optimizer goes through `training_table`;
anything TF.js would not compute as Keras does leaves the whole training configuration out, with one
`Issue` per piece and its reason code: the model still converts for inference. Optimizer state is
carried, in the positional layout TF.js loads, for the optimizers whose state TF.js can load.
"""

from __future__ import annotations

import dataclasses
import math

import h5py
import numpy as np

from converter import training_table as table
from converter.support import Issue

NON_TRAINABLE = {"BatchNormalization": ("moving_mean", "moving_variance")}


@dataclasses.dataclass
class Training:
    """What the converter makes of a model's training configuration."""

    compiled: bool  # the file holds a training configuration
    config: dict | None = None  # the TF.js trainingConfig; None when not carried
    issues: list[Issue] = dataclasses.field(default_factory=list)
    state: list[tuple[str, object, dict]] = dataclasses.field(default_factory=list)  # (name, loader, extra)
    state_note: str | None = None  # why the optimizer state is not carried
    summary: dict = dataclasses.field(default_factory=dict)  # loss, metrics, optimizer as carried

    @property
    def carried(self) -> bool:
        return self.config is not None


class _Refuse(Exception):
    def __init__(self, code: str, reason: str, argument: str | None = None, value=None):
        super().__init__(reason)
        self.code, self.reason, self.argument, self.value = code, reason, argument, value


# --- reading what Keras wrote ---------------------------------------------------------------------


def _name_of(obj):
    """(name, config) of a loss/metric/optimizer as Keras serializes it: a string, or an object."""
    if isinstance(obj, str):
        return obj, {}
    if not isinstance(obj, dict) or not isinstance(obj.get("class_name"), str):
        raise _Refuse("bad_config", f"expected a name or a serialized object, got {obj!r}")
    cls, cfg = obj["class_name"], obj.get("config")
    registered = obj.get("registered_name")
    module = str(obj.get("module") or "")
    if cls == "function" and isinstance(cfg, str):
        if module and not module.startswith("keras"):
            raise _Refuse("needs_python_code", f"{cfg!r} is a Python function TF.js cannot run", value=cfg)
        return cfg, {}
    if ">" in cls or (registered not in (None, cls) and not str(registered).startswith("keras")):
        if cls.startswith("Custom>") and cls[len("Custom>") :] in table.KERAS_OPTIMIZERS:
            return cls[len("Custom>") :], cfg if isinstance(cfg, dict) else {}
        raise _Refuse("needs_python_code", f"{registered or cls!r} is a custom object TF.js cannot run", value=cls)
    if module and not module.startswith("keras"):
        raise _Refuse("needs_python_code", f"{cls!r} from {module} is custom Python code", value=cls)
    return cls, cfg if isinstance(cfg, dict) else {}


def _loss(obj) -> str:
    name, cfg = _name_of(obj)
    if name in table.REFUSED_LOSSES:
        refused = table.REFUSED_LOSSES[name]
        raise _Refuse(refused.code, refused.reason, "loss", name)
    if name not in table.LOSSES:
        if name in table.KERAS_ONLY_LOSSES:
            raise _Refuse("unknown_loss", f"TF.js 4.22 has no loss {name!r}", "loss", name)
        raise _Refuse(
            "needs_python_code", f"{name!r} is not a Keras loss: a custom loss needs a JavaScript port", "loss", name
        )
    _arguments(f"TF.js {table.LOSSES[name]}", cfg, table.LOSS_IGNORED_KEYS, table.LOSS_NEUTRAL)
    return table.LOSSES[name]


def _arguments(what: str, cfg: dict, ignored, neutral: dict) -> None:
    """Every argument of a loss or metric object must be ignorable or at the value TF.js computes with: fail
    closed on any other, and on any key the tables do not know."""
    for key, value in cfg.items():
        if key in ignored:
            continue
        if key not in neutral:
            raise _Refuse("ignored_argument", f"{what} has no argument {key!r}", key, value)
        expected, why = neutral[key]
        value = table.REDUCTION_SYNONYMS.get(value, value) if key == "reduction" else value
        if not _same(value, expected):
            raise _Refuse("ignored_argument", why, key, value)


def _metric(obj, loss: str, units: int | None) -> str:
    name, cfg = _name_of(obj)
    if name == "MeanMetricWrapper":  # tf_keras: the metric it resolved, as the file says
        extra = sorted(set(cfg) - {"fn", "name", "dtype"})
        if extra:
            raise _Refuse("ignored_argument", f"a wrapped metric with arguments {extra}", "metrics", cfg.get("fn"))
        name, cfg = cfg.get("fn", cfg.get("name")), {}
    _arguments(f"TF.js metric {name}", cfg, table.METRIC_IGNORED_KEYS, table.METRIC_NEUTRAL)
    if name in ("accuracy", "acc"):
        # TF.js resolves it from the loss; Keras 3 from the output's size: they agree except for a
        # several-unit output trained with binary cross-entropy, which Keras 3 gives categorical accuracy.
        if loss == "binaryCrossentropy" and units != 1:
            if units is None:
                raise _Refuse(
                    "computes_differently",
                    "cannot tell which accuracy Keras resolved (output size "
                    "unknown): name binary_accuracy or categorical_accuracy",
                    "metrics",
                    name,
                )
            return "categoricalAccuracy"
        return "accuracy"
    if name in ("crossentropy", "ce", "binary_crossentropy", "BinaryCrossentropy"):
        if name.lower().startswith("binary") and loss != "binaryCrossentropy":
            raise _Refuse(
                "unknown_metric",
                "TF.js names binary cross-entropy only through `crossentropy` with a binary cross-entropy loss",
                "metrics",
                name,
            )
        return "crossentropy"
    if name in ("sparse_categorical_accuracy", "SparseCategoricalAccuracy"):
        if loss != "sparseCategoricalCrossentropy":
            raise _Refuse(
                "unknown_metric",
                "TF.js reaches sparse categorical accuracy only through `accuracy` "
                "with a sparse categorical cross-entropy loss",
                "metrics",
                name,
            )
        return "accuracy"
    if name in table.REFUSED_METRICS:
        refused = table.REFUSED_METRICS[name]
        raise _Refuse(refused.code, refused.reason, "metrics", name)
    if name not in table.METRICS:
        raise _Refuse("unknown_metric", f"TF.js 4.22 has no metric {name!r}", "metrics", name)
    return table.METRICS[name]


def _number(value, what) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _Refuse("unsupported_value", f"{what} must be a number (TF.js has no schedules)", what, value)
    return float(value)


def _optimizer(obj) -> tuple[dict, str]:
    """(TF.js optimizer_config, Keras class name)."""
    name, cfg = _name_of(obj)
    if name in table.REFUSED_OPTIMIZERS:
        refused = table.REFUSED_OPTIMIZERS[name]
        raise _Refuse(refused.code, refused.reason, "optimizer", name)
    if name not in table.OPTIMIZERS:
        raise _Refuse("unknown_optimizer", f"TF.js 4.22 has no {name} optimizer", "optimizer", name)
    for key, value in cfg.items():
        if key in table.OPTIMIZER_IGNORED_KEYS or key in table.OPTIMIZER_HYPERPARAMETERS[name]:
            continue
        if key not in table.OPTIMIZER_NEUTRAL:
            raise _Refuse("ignored_argument", f"TF.js {name} has no argument {key!r}", key, value)
        neutral, why = table.OPTIMIZER_NEUTRAL[key]
        if not any(_same(value, n) for n in neutral):
            code = "computes_differently" if key in table.OPTIMIZER_DIVERGENT else "ignored_argument"
            raise _Refuse(code, why, key, value)
    lr = _number(cfg.get("learning_rate"), "learning_rate")
    if name == "SGD":
        momentum = _number(cfg.get("momentum", 0.0), "momentum")
        if momentum == 0:
            return {"class_name": "SGD", "config": {"learning_rate": lr}}, name
        nesterov = bool(cfg.get("nesterov", False))
        return {
            "class_name": "Momentum",
            "config": {"learning_rate": lr, "momentum": momentum, "use_nesterov": nesterov},
        }, name
    if name in ("Adam", "Adamax"):
        config = {
            "learning_rate": lr,
            "beta_1": _number(cfg.get("beta_1", 0.9), "beta_1"),
            "beta_2": _number(cfg.get("beta_2", 0.999), "beta_2"),
            "epsilon": _number(cfg.get("epsilon", 1e-7), "epsilon"),
        }
        if name == "Adamax":
            config["decay"] = 0.0
        return {"class_name": name, "config": config}, name
    if name == "Adagrad":
        epsilon = _number(cfg.get("epsilon", 1e-7), "epsilon")
        if abs(epsilon - table.TFJS_EPSILON) > 1e-12:
            raise _Refuse(
                "ignored_argument", "TF.js Adagrad has no epsilon: it adds the backend's 1e-7", "epsilon", epsilon
            )
        return {
            "class_name": "Adagrad",
            "config": {
                "learning_rate": lr,
                "initial_accumulator_value": _number(
                    cfg.get("initial_accumulator_value", 0.1), "initial_accumulator_value"
                ),
            },
        }, name
    return {
        "class_name": "RMSProp",
        "config": {  # RMSprop; TF.js names Keras's rho `decay`
            "learning_rate": lr,
            "decay": _number(cfg.get("rho", 0.9), "rho"),
            "momentum": _number(cfg.get("momentum", 0.0), "momentum"),
            "epsilon": _number(cfg.get("epsilon", 1e-7), "epsilon"),
            "centered": False,
        },
    }, name


def _same(a, b) -> bool:
    if a is None or b is None or isinstance(a, bool) or isinstance(b, bool):
        return a is b or (a == b and type(a) is type(b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return a == b


# --- the whole configuration ---------------------------------------------------------------------


def _outputs(tfjs_config: dict) -> list[tuple[str, int | None]]:
    """(output layer name, its units when its config says) in model output order."""
    cfg = tfjs_config.get("config") or {}
    layers = cfg.get("layers") or []
    by_name = {(layer.get("config") or {}).get("name"): layer for layer in layers}
    if tfjs_config.get("class_name") == "Sequential":
        names = [(layers[-1].get("config") or {}).get("name")] if layers else []
    else:
        names = [ref[0] for ref in cfg.get("output_layers") or []]
    out = []
    for name in names:
        units = ((by_name.get(name) or {}).get("config") or {}).get("units")
        out.append((str(name), units if isinstance(units, int) else None))
    return out


def _per_output(value, outputs, what):
    """A per-output value (a list in output order, or a dict by output name) as {output: value}."""
    names = [n for n, _ in outputs]
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise _Refuse("bad_config", f"{what} names outputs the model lacks: {', '.join(unknown)}", what)
        return value
    if len(value) != len(names):
        raise _Refuse("bad_config", f"{what} has {len(value)} entries for {len(names)} outputs", what)
    return dict(zip(names, value))


def translate(keras_config: dict, tfjs_config: dict) -> tuple[dict, dict, str]:
    """(trainingConfig, summary, Keras optimizer class) from a Keras compile/training config; raises _Refuse."""
    outputs = _outputs(tfjs_config)
    for key in ("loss_weights", "weighted_metrics", "sample_weight_mode"):
        value = keras_config.get(key)
        if key == "loss_weights" and value is not None:
            weights = (
                list(value.values()) if isinstance(value, dict) else list(value) if isinstance(value, list) else [value]
            )
            if all(_same(w, 1.0) or _same(w, 1) for w in weights):
                continue  # weighting every output by 1 is the same as none
        if value not in (None, [], {}):
            raise _Refuse("unsupported_value", f"TF.js 4.22 cannot load {key}", key, value)
    loss = keras_config.get("loss")
    if loss is None:
        raise _Refuse("bad_config", "the model is compiled without a loss", "loss")
    if isinstance(loss, (list, dict)) and len(outputs) > 1:
        losses = {o: _loss(v) for o, v in _per_output(loss, outputs, "loss").items()}
        missing = [n for n, _ in outputs if n not in losses]
        if missing:
            raise _Refuse("bad_config", f"no loss for output(s) {', '.join(missing)}", "loss")
        tfjs_loss: str | dict = losses
    else:
        single = (
            loss[0]
            if isinstance(loss, list) and len(loss) == 1
            else (next(iter(loss.values())) if isinstance(loss, dict) and len(loss) == 1 else loss)
        )
        tfjs_loss = _loss(single)
        losses = {n: tfjs_loss for n, _ in outputs}
    metrics = keras_config.get("metrics") or []
    units = dict(outputs)
    if isinstance(metrics, list) and metrics and all(isinstance(m, list) for m in metrics):
        metrics = _per_output(metrics, outputs, "metrics")
    if isinstance(metrics, dict):
        tfjs_metrics: list | dict = {}
        for out, items in _per_output(metrics, outputs, "metrics").items():
            items = items if isinstance(items, list) else [items]
            mapped = [_metric(m, losses[out], units.get(out)) for m in items]
            if mapped:
                tfjs_metrics[out] = mapped
    else:
        if len(outputs) > 1 and metrics:
            raise _Refuse("bad_config", "a flat metrics list on a model with several outputs", "metrics")
        name = outputs[0][0] if outputs else ""
        tfjs_metrics = [_metric(m, losses.get(name, ""), units.get(name)) for m in metrics]
    optimizer_obj = keras_config.get("optimizer_config", keras_config.get("optimizer"))
    if optimizer_obj is None:
        raise _Refuse(
            "bad_config",
            "the file holds no optimizer (a Keras 3 model saved as .h5 before .keras loses it)",
            "optimizer",
        )
    optimizer, keras_class = _optimizer(optimizer_obj)
    config = {
        "loss": tfjs_loss,
        "metrics": tfjs_metrics or None,
        "optimizer_config": optimizer,
        "loss_weights": None,
        "weighted_metrics": None,
        "sample_weight_mode": None,
    }
    summary = {
        "loss": tfjs_loss,
        "metrics": tfjs_metrics,
        "optimizer": optimizer["class_name"],
        "optimizer_config": optimizer["config"],
    }
    return config, summary, keras_class


# --- optimizer state ----------------------------------------------------------------------------


def trainable_in_model_order(tfjs_config: dict, weights) -> list:
    """The weights TF.js trains, in `model.trainableWeights` order: layers as the config lists them, each
    layer's weights as it creates them; moving statistics and layers with trainable false excluded."""
    cfg = tfjs_config.get("config") or {}
    order = {(layer.get("config") or {}).get("name"): i for i, layer in enumerate(cfg.get("layers") or [])}
    frozen = set()
    classes = {}

    def visit(layer):
        lcfg = layer.get("config") or {}
        name = lcfg.get("name")
        classes[name] = layer.get("class_name")
        if lcfg.get("trainable") is False:
            frozen.add(name)
        for inner in (lcfg.get("layers") or []) if isinstance(lcfg.get("layers"), list) else []:
            visit(inner)

    for layer in cfg.get("layers") or []:
        visit(layer)
    out = []
    for w in sorted(weights, key=lambda w: order.get(w.layer, len(order))):
        owner, _, var = w.name.rpartition("/")
        owner_layer = owner.split("/")[0]
        if w.layer in frozen or owner_layer in frozen:
            continue
        if var in NON_TRAINABLE.get(classes.get(owner_layer, ""), ()):
            continue
        out.append(w)
    return out


def _optimizer_vars(model_file) -> list[tuple[str | None, h5py.Dataset]]:
    """The optimizer's saved variables in the file's order, with their names where the file has them."""
    if model_file.layout == "keras_objects":
        group = model_file.weights.get("optimizer")
        vars_ = group.get("vars") if group is not None else None
        return [(None, vars_[str(i)]) for i in range(len(vars_))] if vars_ is not None else []
    root = model_file.weights.file
    group = root.get("optimizer_weights")
    if group is None:
        return []
    names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs.get("weight_names", [])]
    return [(n, group[n]) for n in names if n in group]


def state(model_file, tfjs_optimizer: dict, keras_class: str, trainable) -> tuple[list, str | None]:
    """(manifest entries for the optimizer's state, or [] with the reason it is not carried)."""
    tfjs_class = tfjs_optimizer["class_name"]
    saved = _optimizer_vars(model_file)
    if not saved:
        return [], None  # never trained: nothing to carry
    names = [n or "" for n, _ in saved]
    iteration = saved[0][1]
    rest = saved[1:]
    if model_file.keras_major == 3:  # Keras 3 keeps its learning rate as the second variable
        rest = [(n, d) for n, d in rest if not (n or "").endswith("learning_rate")]
        if model_file.layout == "keras_objects" and len(rest) and rest[0][1].shape == ():
            rest = rest[1:]
    shapes = [tuple(w.shape) for w in trainable]
    count = len(trainable)
    slots = [d for _, d in rest]
    if not slots and int(np.asarray(iteration[()])) == 0:
        return [], None  # compiled, never trained: the optimizer has no state yet
    if tfjs_class in table.NO_STATE:
        return [], table.NO_STATE[tfjs_class]

    def layout_error():
        expected = {"SGD": "none", "Adam": f"{2 * count}", "RMSProp": f"{count} or {2 * count}"}.get(
            tfjs_class, f"{count}"
        )
        return [], (
            f"the file holds {len(slots)} {keras_class} slot variable(s) where {expected} were expected "
            f"(one set per trainable weight, {count} trainable weights)"
        )

    def reshape(group):
        return all(tuple(d.shape) == s for d, s in zip(group, shapes)) and len(group) == count

    per_weight: list[tuple[str, list]] = []  # (slot suffix, datasets in trainable order)
    lr = tfjs_optimizer["config"]["learning_rate"]
    if tfjs_class == "SGD":
        if slots:
            return layout_error()
    elif tfjs_class == "Momentum":  # Keras keeps m = -lr * a; TF.js keeps a
        if not reshape(slots):
            return layout_error()
        per_weight.append(("momentum", [(d, -1.0 / lr) for d in slots]))
    elif tfjs_class == "Adam":
        legacy = any("/m:" in n or n.endswith("/m") for n in names) and not any("/m/" in n for n in names)
        ms, vs = (slots[:count], slots[count:]) if legacy else (slots[0::2], slots[1::2])
        if len(slots) != 2 * count or not reshape(ms) or not reshape(vs):
            return layout_error()
        per_weight += [("m", [(d, 1.0) for d in ms]), ("v", [(d, 1.0) for d in vs])]
    elif tfjs_class == "Adagrad":
        if not reshape(slots):
            return layout_error()
        per_weight.append(("accumulator", [(d, 1.0) for d in slots]))
    elif tfjs_class == "RMSProp":  # Keras: every velocity, then every momentum if momentum > 0
        rms, mom = slots[:count], slots[count:]
        if not reshape(rms) or (mom and not reshape(mom)):
            return layout_error()
        per_weight.append(("rms", [(d, 1.0) for d in rms]))
        per_weight.append(("momentum", [(d, 1.0) for d in mom] if mom else [(None, s) for s in shapes]))
    entries: list[tuple[str, object, dict]] = [
        ("iter", lambda d=iteration: np.asarray(d[()]).astype(np.int32).reshape(()), {"group": "optimizer"})
    ]
    for suffix, group in per_weight:
        for w, (dataset, factor) in zip(trainable, group):
            if dataset is None:
                entries.append((f"{w.name}/{suffix}", lambda s=factor: np.zeros(s, np.float32), {"group": "optimizer"}))
            else:
                entries.append(
                    (
                        f"{w.name}/{suffix}",
                        lambda d=dataset, f=factor: np.asarray(d[()], np.float32) * f,
                        {"group": "optimizer"},
                    )
                )
    return entries, None


def refused(model_file, code: str, reason: str, argument: str | None = None, value=None) -> Training:
    """A compiled model whose training configuration is not carried, and why."""
    name = model_file.path.name if model_file.path else "model"
    issue = Issue(layer=name, class_name="training", argument=argument, value=value, code=code, reason=reason)
    return Training(compiled=True, issues=[issue])


def frozen_batch_norms(tfjs_config: dict) -> list[str]:
    """The BatchNormalization layers Keras keeps in inference mode in `fit`: trainable false, or inside a
    frozen model or wrapper."""
    found: list[str] = []

    def visit(layer: dict, frozen: bool) -> None:
        cfg = layer.get("config") or {}
        if not isinstance(cfg, dict):
            return
        frozen = frozen or cfg.get("trainable") is False
        if layer.get("class_name") == "BatchNormalization" and frozen:
            found.append(str(cfg.get("name")))
        children = list(cfg["layers"]) if isinstance(cfg.get("layers"), list) else []
        if isinstance(cfg.get("layer"), dict):  # a wrapper (TimeDistributed)
            children.append(cfg["layer"])
        for child in children:
            visit(child, frozen)

    visit(tfjs_config, False)
    return found


def analyse(model_file, tfjs_config: dict, weights) -> Training:
    """The training configuration of `model_file` as TF.js can carry it, or why not."""
    keras_config = model_file.compile_config or model_file.training_config
    if not keras_config:
        return Training(compiled=False)
    try:
        config, summary, keras_class = translate(keras_config, tfjs_config)
    except _Refuse as e:
        return refused(model_file, e.code, e.reason, e.argument, e.value)
    frozen = frozen_batch_norms(tfjs_config)
    if frozen:
        why = table.FROZEN_BATCH_NORM
        return refused(model_file, why.code, f"{why.reason} ({', '.join(frozen[:3])})", "trainable", False)
    trainable = trainable_in_model_order(tfjs_config, weights)
    entries, note = state(model_file, config["optimizer_config"], keras_class, trainable)
    return Training(compiled=True, config=config, state=entries, state_note=note, summary=summary)
