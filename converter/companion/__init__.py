"""The companion stage: Keras constructs only JavaScript can run, given to classes of the companion module; and
the user's own custom classes, when the user says a JavaScript port of each exists.

- `converter/companion_table.py`: which construct maps to which companion class, and why (the data);
- `tfjs_certify_companion.js` (here): the module itself, written next to model.json when a model needs it;
- this module: one small function per construct, applied by `topology` to every layer before `support`.

A model that needs the module is refused (`needs_companion`) unless converted with `companion=True`; a custom
class is refused (`needs_python_code`) unless named in `custom_classes`. The converter reads data only: the
JavaScript is copied, never run, and the user's Python is never imported.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from converter.companion_table import ARGUMENTS, COMPANIONS, JS_FILE, VERSION
from converter.support import Issue, adapt_arguments
from converter.support_table import COMMON

SOURCE = Path(__file__).resolve().parent / JS_FILE
CLASSES = frozenset(ARGUMENTS)


@dataclasses.dataclass
class Use:
    """One of the user's layers run by a companion class."""

    rule: str  # the companion_table entry
    layer: str
    keras_class: str
    js_class: str
    training_exact: bool

    def __str__(self):
        return f"{self.layer}: {self.keras_class} -> {self.js_class} [{self.rule}]"


@dataclasses.dataclass
class Context:
    """What the stage may use, and what it did, for one model.

    `custom`: the user's custom classes with a JavaScript port, each with the names of its weights in the order
    the layer stores them (None: the names the .h5 file records; see `weights.custom_weight_names`)."""

    enabled: bool = False
    custom: Mapping[str, Sequence[str] | None] = dataclasses.field(default_factory=dict)
    uses: list[Use] = dataclasses.field(default_factory=list)
    custom_layers: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (layer, class)

    @property
    def training_exact(self) -> bool:
        return all(u.training_exact for u in self.uses) and not self.custom_layers


Adapted = tuple[str, dict, list[Issue]]  # TF.js class, config, issues
Rule = Callable[[dict, int], "tuple[Adapted, bool] | None"]  # (adapted, training exact), or None: not this rule
RULES: dict[str, tuple[str, Rule]] = {}  # Keras class -> (companion_table entry, its rule)


def rule(name: str, *classes: str) -> Callable[[Rule], Rule]:
    if name not in COMPANIONS:
        raise ValueError(f"companion rule {name!r} is not in companion_table.COMPANIONS")

    def register(fn: Rule) -> Rule:
        for cls in classes:
            RULES[cls] = (name, fn)
        return fn

    return register


def adapt(class_name: str, config: dict, keras: int, ctx: Context) -> Adapted | None:
    """`(TF.js class, config, issues)` for a layer the companion module or the user's JavaScript runs; None when
    neither does (the layer is then `support`'s)."""
    name = str(config.get("name", "?"))
    if class_name in ctx.custom:
        ctx.custom_layers.append((name, class_name))
        return class_name, config, []
    if class_name not in RULES:
        return None
    rule_name, fn = RULES[class_name]
    found = fn(config, keras)
    if found is None:
        return None
    (tfjs_class, tfjs_config, issues), training_exact = found
    entry = COMPANIONS[rule_name]
    if issues:
        return tfjs_class, tfjs_config, issues
    if not ctx.enabled:
        reason = f"{entry.why}; the companion module's {tfjs_class} runs it: convert with --companion (companion=True)"
        issue = Issue(
            layer=name, class_name=class_name, argument=None, value=None, code="needs_companion", reason=reason
        )
        return class_name, config, [issue]
    ctx.uses.append(Use(rule_name, name, class_name, tfjs_class, training_exact))
    return tfjs_class, tfjs_config, []


# --- the rules ----------------------------------------------------------------------------------------------------


def _companion(cls: str, config: dict, keras: int, keras_class: str) -> Adapted:
    """The companion class `cls` with `config`'s arguments through its rules (issues name the Keras class)."""
    out, issues = adapt_arguments(keras_class, config, {**COMMON, **ARGUMENTS[cls]}, keras=keras)
    return cls, out, issues


@rule("gru_reset_after", "GRU")
def gru(config, keras):
    if not config.get("reset_after"):
        return None  # TF.js's own GRU
    return _companion("TfjsCertifyGRU", config, keras, "GRU"), _no_dropout(config)


@rule("gru_reset_after", "GRUCell")
def gru_cell(config, keras):
    if not config.get("reset_after"):
        return None
    return _companion("TfjsCertifyGRUCell", config, keras, "GRUCell"), _no_dropout(config)


def _no_dropout(config) -> bool:
    """TfjsCertifyGRUCell does not implement dropout in training (it throws): such a model trains only in Keras."""
    return not config.get("dropout") and not config.get("recurrent_dropout")


@rule("resizing", "Resizing")
def resizing(config, keras):
    return _companion("TfjsCertifyResizing", config, keras, "Resizing"), COMPANIONS["resizing"].training_exact


@rule("upsampling_interpolated", "UpSampling2D")
def upsampling(config, keras):
    if config.get("interpolation", "nearest") == "nearest":
        return None  # TF.js's own UpSampling2D
    adapted = _companion("TfjsCertifyUpSampling2D", config, keras, "UpSampling2D")
    return adapted, COMPANIONS["upsampling_interpolated"].training_exact


@rule("discretization", "Discretization")
def discretization(config, keras):
    cls, out, issues = _companion("TfjsCertifyDiscretization", config, keras, "Discretization")
    bounds = config.get("bin_boundaries")
    if not isinstance(bounds, list) or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds):
        issues.append(
            Issue(
                layer=str(config.get("name", "?")),
                class_name="Discretization",
                argument="bin_boundaries",
                value=bounds,
                code="unsupported_value",
                reason="the bin boundaries are not in the config as a list of numbers (an adapted layer saved "
                "without them?)",
            )
        )
    return (cls, out, issues), COMPANIONS["discretization"].training_exact


def tfjs_class_name(name: str) -> str:
    """The name TF.js looks a class up by: it camel-cases every string of model.json but layer names
    (tfjs-layers serialization_utils convertPythonicToTs, generic_utils toCamelCase), class names included, so a
    port of `my_layers>Scale` registers `myLayers>Scale` (and reads a config key `my_arg` as `myArg`)."""
    if len(name) <= 1 or "_" not in name:
        return name
    return re.sub(r"_+(\w|$)", lambda m: m.group(1).upper(), name)


# --- what the converter writes ------------------------------------------------------------------------------------


def metadata(ctx: Context) -> dict:
    """model.json's userDefinedMetadata.tfjs_certify entries: the companion classes the model needs (the runner
    loads the module when this is present), and the user's custom classes it needs ported."""
    out: dict = {}
    if ctx.uses:
        out["companion"] = {
            "file": JS_FILE,
            "version": VERSION,
            "classes": sorted({u.js_class for u in ctx.uses}),
            "layers": [dataclasses.asdict(u) for u in ctx.uses],
        }
    if ctx.custom_layers:
        out["custom_classes"] = {cls: tfjs_class_name(cls) for cls in sorted({cls for _, cls in ctx.custom_layers})}
    return out


def write_module(directory: Path) -> Path:
    """Copy the companion module next to model.json."""
    target = Path(directory) / JS_FILE
    shutil.copyfile(SOURCE, target)
    return target


def script_tag(out_dir) -> str:
    """The one line a web app adds, after TF.js and before tf.loadLayersModel."""
    return f'<script src="{Path(out_dir).as_posix()}/{JS_FILE}"></script>'
