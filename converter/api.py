"""The converter's Python API: `convert` a Keras file, `check` one, or `save_keras_model` from memory."""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from converter import lowering, topology, training
from converter.companion import CLASSES as COMPANION_CLASSES
from converter.companion import SOURCE as COMPANION_SOURCE
from converter.companion import Context as CompanionContext
from converter.companion import Use as CompanionUse
from converter.companion import metadata as companion_metadata
from converter.companion import write_module
from converter.errors import ConversionError, UnsupportedModelError
from converter.reader import read_array, read_model_file
from converter.support import SUPPORTED_LAYERS, Issue
from converter.support_table import CONTAINERS
from converter.training import Training
from converter.weights import UnnamedWeights, model_weights
from converter.writer import (
    DEFAULT_SHARD_SIZE,
    PLAN_DTYPES,
    quantization_for,
    staged_directory,
    write_model_json,
    write_weights,
)

VERSION = "0.1.0"
CONVERTED_BY = f"tfjs-certify converter v{VERSION}"


@dataclasses.dataclass
class LayerInfo:
    name: str
    class_name: str
    weights: list[str]


@dataclasses.dataclass
class Analysis:
    """What the support analysis found: the TF.js config, and every problem in it."""

    path: Path
    format: str
    keras_version: str
    model_config: dict
    issues: list
    layers: list[LayerInfo]
    training: Training = dataclasses.field(default_factory=lambda: Training(compiled=False))
    lowerings: list[lowering.Applied] = dataclasses.field(default_factory=list)
    companion: list[CompanionUse] = dataclasses.field(default_factory=list)  # layers the companion module runs
    needs_companion: list[Issue] = dataclasses.field(default_factory=list)  # layers it would run (--companion)
    custom_layers: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (layer, class) ported to JS

    @property
    def supported(self) -> bool:
        return not self.issues


@dataclasses.dataclass
class ConversionResult:
    """What `convert` wrote."""

    out_dir: Path
    files: dict[str, int]  # file name -> bytes
    layers: list[LayerInfo]
    weights: int
    weight_bytes: int
    keras_version: str
    format: str
    seconds: float
    training: Training = dataclasses.field(default_factory=lambda: Training(compiled=False))
    lowerings: list[lowering.Applied] = dataclasses.field(default_factory=list)
    companion: list[CompanionUse] = dataclasses.field(default_factory=list)
    custom_layers: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    @property
    def companion_file(self) -> Path | None:
        """The companion module written next to model.json, when the model needs it."""
        return self.out_dir / COMPANION_SOURCE.name if self.companion else None

    @property
    def shards(self) -> int:
        return sum(1 for f in self.files if f.endswith(".bin"))


def _inventory(model_config: dict, weights) -> list[LayerInfo]:
    by_layer: dict[str, list[str]] = {}
    for w in weights:
        by_layer.setdefault(w.layer, []).append(w.name)

    def walk(cfg):
        inner = cfg.get("config") or {}
        for layer in inner.get("layers", []) if isinstance(inner, dict) else []:
            name = (layer.get("config") or {}).get("name", "")
            yield LayerInfo(name, layer.get("class_name", ""), by_layer.get(name, []))

    return list(walk(model_config))


def _analyse(model_file, comp: CompanionContext) -> tuple[Analysis, list, lowering.Context]:
    cleaned = topology.clean(model_file.model_config)
    skipped: list[UnnamedWeights] = []  # a custom layer's: the other layers' weights are still named for lowering
    try:
        weights = model_weights(model_file, cleaned, skipped, comp.custom)
        failure: Exception | None = skipped[0] if skipped else None
    except (KeyError, TypeError, ConversionError) as e:
        weights, failure = [], e
    stored = {w.name: w for w in weights}
    low = lowering.Context(
        model_file.keras_major, {w.name: w.shape for w in weights}, read=lambda name: read_array(stored[name].dataset)
    )
    tfjs_config, issues = topology.translate_model(
        model_file.model_config, keras=model_file.keras_major, low=low, comp=comp
    )
    if failure is not None and not issues:
        # an unsupported layer's weights cannot be named either: only then is the failure the news
        if isinstance(failure, ConversionError):
            raise failure
        raise ConversionError(model_file.path, f"model config and weights do not match: {failure}") from failure
    written = lowering.written(weights, low)
    weights = [w for w in weights if w.name not in low.folded]  # written into a lowered layer's config
    train = training.analyse(model_file, tfjs_config, weights)
    if train.carried and not low.training_exact:
        train = training.refused(model_file, "lowered_for_inference", _inexact_for_training(low))
    elif train.carried and not comp.training_exact:
        train = training.refused(model_file, "js_layer_for_inference", _js_for_training(comp))
    analysis = Analysis(
        model_file.path,
        model_file.format,
        model_file.keras_version,
        tfjs_config,
        issues,
        _inventory(cleaned, written),
        train,
        list(low.applied),
        list(comp.uses),
        [i for i in issues if i.code == "needs_companion"],
        list(comp.custom_layers),
    )
    return analysis, written, low


def _inexact_for_training(low: lowering.Context) -> str:
    rules = sorted({a.rule for a in low.applied if not lowering.LOWERINGS[a.rule].training_exact})
    layers = [a.layer for a in low.applied if a.rule in rules]
    why = "; ".join(dict.fromkeys(lowering.LOWERINGS[r].why_not_for_training for r in rules))
    return (
        f"the model runs in TF.js only lowered ({', '.join(rules)} on {', '.join(layers[:3])}"
        f"{'...' if len(layers) > 3 else ''}), which computes the same outputs but is not certified to train as "
        f"Keras does ({why})"
    )


def _js_for_training(comp: CompanionContext) -> str:
    layers = [f"{u.layer} ({u.js_class})" for u in comp.uses if not u.training_exact]
    layers += [f"{layer} ({cls}, your JavaScript port)" for layer, cls in comp.custom_layers]
    return (
        f"the model runs in TF.js only with JavaScript layers ({', '.join(layers[:3])}"
        f"{'...' if len(layers) > 3 else ''}) that are not certified to train as Keras does"
    )


def _context(path, companion_enabled: bool, custom_classes) -> CompanionContext:
    """The companion stage's options; the custom classes as {class: weight names or None}."""
    if custom_classes is None:
        custom: dict = {}
    elif isinstance(custom_classes, Mapping):
        custom = {str(k): (None if v is None else tuple(v)) for k, v in custom_classes.items()}
    else:
        custom = {str(k): None for k in custom_classes}
    taken = sorted(set(custom) & (set(SUPPORTED_LAYERS) | set(CONTAINERS) | COMPANION_CLASSES | {"RNN"}))
    if taken:
        raise ConversionError(
            path,
            f"custom class(es) {', '.join(taken)} would replace a class TF.js or the companion module registers "
            "(tf.serialization.registerClass keys classes by name): rename the port",
        )
    return CompanionContext(enabled=companion_enabled, custom=custom)


def check(path, *, companion: bool = False, custom_classes=None) -> Analysis:
    """The support analysis of a Keras file, without writing anything."""
    comp = _context(path, companion, custom_classes)
    with read_model_file(path) as model_file:
        return _analyse(model_file, comp)[0]


def convert(
    path,
    out_dir,
    *,
    input_format: str | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    quantize: dict[str, list[str] | None] | None = None,
    quantize_plan: dict[str, str] | None = None,
    split_weights_by_layer: bool = False,
    overwrite: bool = False,
    metadata: dict | None = None,
    require_training: bool = False,
    companion: bool = False,
    custom_classes: Mapping[str, Sequence[str] | None] | Sequence[str] | None = None,
) -> ConversionResult:
    """Convert the Keras model file at `path` into a TF.js Layers artifact at `out_dir`.

    `quantize` maps "float16" / "uint8" / "uint16" to weight-name patterns (`*` allowed; None: every
    float32 weight); `quantize_plan` maps weight names to one of float32, float16, uint16, uint8 (a plan
    from `tfjs-certify plan`). A compiled model's training configuration becomes a top-level `trainingConfig`
    (with the optimizer's state where TF.js can load it) when TF.js trains as Keras does; otherwise it is left
    out and `result.training.issues` says why, or, with `require_training`, `UnsupportedModelError` is raised.
    `companion`: run what only JavaScript can (converter/companion_table.py) with the companion module, written
    next to model.json (`result.companion_file`); without it such a model is refused (`needs_companion`).
    `custom_classes`: the user's custom layer classes (as model.json names them: the Keras registered name) that
    a JavaScript port registers; a mapping gives each class's weight names, which a .keras file needs
    (weights.CUSTOM_CONVENTION). Their configs are written as they are; without this they are refused.
    Raises `UnsupportedModelError` (nothing written) when TF.js cannot run the model as Keras does,
    `ConversionError` for unreadable or inconsistent input.
    """
    start = time.perf_counter()
    if input_format not in (None, "keras", "keras_keras", "keras_saved_model_v3", "h5", "keras_v3"):
        raise ConversionError(path, f"unsupported --input_format {input_format!r}")
    if shard_size <= 0:
        raise ConversionError(path, "the weight shard size must be positive")
    if sum(v is None for v in (quantize or {}).values()) > 1:
        raise ConversionError(path, "choose one quantization for every weight: float16, uint8 or uint16")
    bad = sorted({d for d in (quantize_plan or {}).values()} - set(PLAN_DTYPES))
    if bad:
        raise ConversionError(path, f"the quantization plan uses unknown dtype(s) {', '.join(map(str, bad))}")
    comp = _context(path, companion, custom_classes)
    with read_model_file(path) as model_file:
        analysis, weights, low = _analyse(model_file, comp)
        if analysis.issues:
            raise UnsupportedModelError(path, analysis.issues)
        train = analysis.training
        if require_training and not train.carried:
            raise UnsupportedModelError(path, train.issues or [_not_compiled(path)])
        known = {w.name for w in weights} | {s for w in weights for s in w.sources} | low.replaced | low.folded
        unknown = sorted(set(quantize_plan or {}) - known)
        if unknown:
            raise ConversionError(
                path, f"the quantization plan names weights the model lacks: {', '.join(unknown[:5])}"
            )
        try:
            quantize_plan = _plan_for_derived(low, quantize or {}, quantize_plan)
        except ValueError as e:
            raise ConversionError(path, f"weight {e}") from e
        if split_weights_by_layer:
            groups: dict[str, list] = {}
            for w in weights:
                groups.setdefault(w.layer, []).append(w)
            weight_groups = list(groups.values())
        else:
            weight_groups = [weights] if weights else []
        model_json: dict = {
            "format": "layers-model",
            "generatedBy": f"keras v{model_file.keras_version}",
            "convertedBy": CONVERTED_BY,
        }
        ours = {**lowering.metadata(low).get("tfjs_certify", {}), **companion_metadata(comp)}
        if metadata or ours:
            model_json["userDefinedMetadata"] = dict(metadata or {}) | ({"tfjs_certify": ours} if ours else {})
        topology_json: dict = {
            "keras_version": model_file.keras_version,
            "backend": model_file.backend,
            "model_config": analysis.model_config,
        }
        model_json["modelTopology"] = topology_json
        if train.carried:
            model_json["trainingConfig"] = train.config
            if train.state:  # in the last group: see _tfjs_safe_order
                weight_groups = (
                    [*weight_groups[:-1], [*weight_groups[-1], *train.state]] if weight_groups else [list(train.state)]
                )
        plan = None if quantize_plan is None else {low.renames.get(k, k): v for k, v in quantize_plan.items()}
        weight_groups = _tfjs_safe_order(weight_groups, _bytes_written(quantize or {}, plan))
        with staged_directory(Path(out_dir), overwrite=overwrite) as stage:
            try:
                manifest, shard_files = write_weights(
                    stage,
                    [[w if isinstance(w, tuple) else (w.name, w.load) for w in g] for g in weight_groups],
                    shard_size=shard_size,
                    quantize_map=quantize or {},
                    plan=plan,
                )
            except ConversionError as e:
                raise ConversionError(path, e.problem) from e
            model_json["weightsManifest"] = manifest
            try:
                json_file = write_model_json(stage, model_json)
            except ValueError as e:
                raise ConversionError(path, f"the model config cannot be written as JSON: {e}") from e
            module = {p.name: p.stat().st_size for p in [write_module(stage)]} if comp.uses else {}
    files = {json_file.name: json_file.bytes} | {f.name: f.bytes for f in shard_files} | module
    return ConversionResult(
        Path(out_dir),
        files,
        analysis.layers,
        len(weights),
        sum(f.bytes for f in shard_files),
        model_file.keras_version,
        model_file.format,
        time.perf_counter() - start,
        train,
        analysis.lowerings,
        analysis.companion,
        analysis.custom_layers,
    )


def _plan_for_derived(low: lowering.Context, quantize: dict, plan: dict[str, str] | None) -> dict[str, str] | None:
    """The quantization plan extended to the weights a lowering derived: a derived weight nothing names is
    quantized as the stored weights it comes from are (a plan entry or a pattern naming `mha/query/kernel`
    covers `mha__q0/kernel`...); a constant a lowering adds (a mask's positions) stays float32."""
    extra: dict[str, str] = {}
    for name, derived in low.derived.items():
        if plan is not None and name in plan:
            continue
        if not derived.sources:
            extra[name] = "float32"
        elif quantization_for(name, quantize) is None:
            dtypes = {quantization_for(s, quantize, plan) or "float32" for s in derived.sources}
            if len(dtypes) == 1:
                extra[name] = dtypes.pop()
    return {**(plan or {}), **extra} if extra else plan


def tfjs_weights(path, *, custom_classes=None) -> dict[str, np.ndarray]:
    """Every weight of the model at `path` as the converter writes it in float32, by the name TF.js loads it
    under (lowered weights transformed, derived ones computed): what a quantized conversion encodes."""
    comp = _context(path, True, custom_classes)
    with read_model_file(path) as model_file:
        _, weights, _ = _analyse(model_file, comp)
        return {w.name: w.load() for w in weights}


def _bytes_written(quantize: dict, plan: dict | None):
    """The bytes a weight takes in its shard, as written (its shape after any lowering transform): its quantized
    dtype's, else 4."""
    sizes = {"float16": 2, "uint16": 2, "uint8": 1}

    def size(weight) -> int:
        if isinstance(weight, tuple):  # optimizer state: float32, never quantized
            return 0
        try:
            dtype = quantization_for(weight.name, quantize, plan)
        except ValueError:
            dtype = None  # two patterns claim it: the writer refuses it, with the reason
        return int(np.prod(weight.shape)) * sizes.get(dtype or "", 4)

    return size


def _tfjs_safe_order(groups: list, size) -> list:
    """Weight groups in an order TF.js 4.22 reads back correctly.

    TF.js joins every shard of every group into one CompositeArrayBuffer that assumes, when all shards but
    the last have one size, that the last is no larger (io/composite_array_buffer.js findShardForByte); a
    larger last shard reads as zeros. Several groups whose last shards differ (--split_weights_by_layer)
    can break that, so groups go largest first, by the bytes each weight takes as written (`size`, quantized
    and transformed sizes included): the last shard is then never the largest."""
    if len(groups) < 2:
        return groups
    return sorted(groups, key=lambda group: sum(size(w) for w in group), reverse=True)


def _not_compiled(path) -> Issue:
    return Issue(
        layer=Path(path).name,
        class_name="training",
        argument=None,
        value=None,
        code="bad_config",
        reason="the model is not compiled: its file holds no training configuration",
    )


def save_keras_model(model, out_dir, **options) -> ConversionResult:
    """Convert an in-memory Keras 3 or tf_keras model (the counterpart of tensorflowjs'
    `save_keras_model`). The model is saved by its own Keras (`.keras` for Keras 3, `.h5` for
    tf_keras) into a temporary file, which is then converted like any file."""
    keras3 = type(model).__module__.startswith("keras")
    suffix = ".keras" if keras3 else ".h5"
    with tempfile.TemporaryDirectory(prefix="tfjs-certify-") as tmp:
        path = os.path.join(tmp, "model" + suffix)
        model.save(path)
        result = convert(path, out_dir, **options)
    return result
