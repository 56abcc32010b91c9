"""Certifying training: a compiled case evaluated and trained in TF.js as Keras does, step for step.

The Keras side (cached like a reference): build and compile the case's model, train `pretrain` steps
(so the file holds optimizer state), save it (`.keras` and the in-memory API before `.h5`, which strips
the optimizer from a live Keras 3 model), then record `test_on_batch` on the first batch, the loss of
each following `train_on_batch`, and every weight after (batch-norm statistics included). The TF.js
side loads the converted model, which must come compiled from the file alone, then does the same.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from harness.files import save_npz_atomic, write_atomic
from harness.pipeline import compare as cmp
from harness.pipeline import reference, shared_run, tolerance, verdict
from harness.pipeline.convert import Converted, convert_variant
from harness.results.record import ReasonCode, Record
from harness.vocabulary import FILE_SUFFIX

SEED = 4321
# Keras 3 writes `.h5` last: saving one strips the optimizer from the live model's compile config.
SAVE_ORDER = {"keras3": ("keras", "api", "h5"), "tf_keras": ("h5",)}


@dataclasses.dataclass
class TrainPrepared:
    """What Keras did with a train case: its files, batches, evaluation, step losses and final weights."""

    case: str
    flavour: str
    files: dict[str, Path]
    batches: list = dataclasses.field(default_factory=list)  # (inputs, targets) per batch
    evaluation: dict[str, float] = dataclasses.field(default_factory=dict)
    steps: list[float] = dataclasses.field(default_factory=list)
    weights: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    outputs: list[str] = dataclasses.field(default_factory=list)
    error: str | None = None
    directory: Path | None = None
    convert_options: dict = dataclasses.field(default_factory=dict)

    # what the inference pipeline reads of a prepared case
    @property
    def inputs(self):
        return self.batches[0][0] if self.batches else []

    @property
    def reference(self):
        return []


def prepare(case, flavour: str) -> TrainPrepared:
    """Train the case in Keras, or take what it did from the cache."""
    directory = reference.entry("train", case, flavour)
    meta = directory / "meta.json"
    api_dir = directory / f"api-{reference.converter_hash()}"
    wants_api = "api" in SAVE_ORDER[flavour]
    error = reference.populate_once(
        directory,
        lambda: meta.exists() and (not wants_api or api_dir.exists()),
        lambda: _populate(case, flavour, directory, api_dir),
    )
    if error:
        return TrainPrepared(
            case.name, flavour, {}, error=error, directory=directory, convert_options=reference.conversion_options(case)
        )
    info = json.loads(meta.read_text())
    data = np.load(directory / "data.npz")
    batches = [
        ([data[f"b{b}x{i}"] for i in range(info["n_inputs"])], [data[f"b{b}y{i}"] for i in range(info["n_outputs"])])
        for b in range(info["n_batches"])
    ]
    files = {fmt: directory / f"model{FILE_SUFFIX[fmt]}" for fmt in info["formats"] if fmt != "api"}
    if "api" in info["formats"]:
        files["api"] = api_dir
    weights = dict(np.load(directory / "weights.npz")) if (directory / "weights.npz").exists() else {}
    return TrainPrepared(
        case.name,
        flavour,
        files,
        batches,
        info["evaluation"],
        info["steps"],
        weights,
        info["outputs"],
        directory=directory,
        convert_options=reference.conversion_options(case),
    )


def _populate(case, flavour: str, directory: Path, api_dir: Path) -> str | None:
    step = "build"
    try:
        model = reference.build(case, flavour)
        fit = case.fit
        batches = fit.data(case.build.input_shapes(), SEED)
        step = "pretrain"
        for xs, ys in batches[1 : 1 + fit.pretrain]:
            model.train_on_batch(_one(xs), _one(ys))
        saved = []
        for fmt in SAVE_ORDER[flavour]:
            step = f"save ({fmt})"
            if fmt == "api":
                reference._convert_in_memory(model, directory, api_dir, reference.conversion_options(case))
            else:
                suffix = FILE_SUFFIX[fmt]
                tmp = directory / f".model{suffix}.{os.getpid()}.tmp{suffix}"
                model.save(tmp)
                os.replace(tmp, directory / f"model{suffix}")
            saved.append(fmt)
        evaluation, steps, weights = {}, [], {}
        if case.expect.outcome != "reject":  # a refusal needs no training reference
            step = "evaluate"
            evaluation = {k: float(v) for k, v in model.test_on_batch(*map(_one, batches[0]), return_dict=True).items()}
            step = "train"
            for xs, ys in batches[1 + fit.pretrain :]:
                steps.append(float(model.train_on_batch(_one(xs), _one(ys), return_dict=True)["loss"]))
            from harness.pipeline.quantize import keras_variables

            weights = {name: np.asarray(v.numpy()) for name, v in keras_variables(model).items()}
        arrays = {f"b{b}x{i}": x for b, (xs, _) in enumerate(batches) for i, x in enumerate(xs)}
        arrays |= {f"b{b}y{i}": y for b, (_, ys) in enumerate(batches) for i, y in enumerate(ys)}
        save_npz_atomic(directory / "data.npz", arrays)
        save_npz_atomic(directory / "weights.npz", weights)
        meta = {
            "n_inputs": len(batches[0][0]),
            "n_outputs": len(batches[0][1]),
            "n_batches": len(batches),
            "formats": saved,
            "evaluation": evaluation,
            "steps": steps,
            "outputs": reference.output_names(model),
        }
        write_atomic(directory / "meta.json", json.dumps(meta))
    except Exception as e:
        return f"Keras could not {step} the model: {reference.one_line(e)}"
    return None


def _one(arrays):
    return arrays[0] if len(arrays) == 1 else list(arrays)


# --- the TF.js side ------------------------------------------------------------------------------

# Names Keras and TF.js give the same quantity: the output prefix, then a canonical metric name.
_CANON = {
    "acc": "accuracy",
    "accuracy": "accuracy",
    "binaryaccuracy": "accuracy",
    "categoricalaccuracy": "accuracy",
    "sparsecategoricalaccuracy": "accuracy",
    "meansquarederror": "mse",
    "meanabsoluteerror": "mae",
    "meanabsolutepercentageerror": "mape",
    "ce": "crossentropy",
    "crossentropy": "crossentropy",
    "binarycrossentropy": "crossentropy",
    "categoricalcrossentropy": "crossentropy",
    "sparsecategoricalcrossentropy": "crossentropy",
}


def canonical(name: str, outputs: list[str]) -> str:
    prefix = next((o + "_" for o in sorted(outputs, key=len, reverse=True) if name.startswith(o + "_")), "")
    rest = re.sub(r"[_\s]", "", name[len(prefix) :]).lower()
    return prefix + _CANON.get(rest, rest)


def tfjs_evaluation(values: list[float], names: list[str], n_outputs: int) -> dict[str, float]:
    """TF.js evaluate's scalars by metricsNames. With N outputs TF.js 4.22 returns the running sums of the
    per-output losses first (l0, l0+l1, ...), then the per-output losses and the metrics: the total is the
    N-th value, and the rest, shifted by N - 1, line up with metricsNames[1:]."""
    if n_outputs <= 1:
        return dict(zip(names, values))
    return {"loss": values[n_outputs - 1], **dict(zip(names[1:], values[n_outputs:]))}


def loaded_name(name: str, loaded) -> str | None:
    """The name TF.js loaded weight `name` under: itself, or, by TF.js's own fallback (engine/container.js
    loadWeights), without its second-to-last part (`gru/gru_cell/kernel` loads into an RNN's `gru/kernel`)."""
    if name in loaded:
        return name
    parts = name.split("/")
    fallback = "/".join(parts[:-2] + parts[-1:])
    return fallback if len(parts) > 2 and fallback in loaded else None


def _compare(name: str, want, got, tol):
    """One comparison; a shape mismatch (TF.js ran 1 step where Keras ran 12, say) is a problem, never a
    broadcast."""
    want, got = np.asarray(want, np.float32), np.asarray(got, np.float32)
    if want.shape != got.shape:
        return None, f"{name}: TF.js shape {list(got.shape)}, Keras {list(want.shape)}"
    return cmp.output_metrics(name, want, got, tol), None


@dataclasses.dataclass
class TfjsTraining:
    """What TF.js gave: `evaluate`'s scalars and names, then each train step's scalars, and the weights after."""

    values: list
    names: list
    steps: list
    weights: dict


def _in_tfjs(session, variant, backend: str, converted: Converted, batches, times: dict) -> TfjsTraining | None:
    """Evaluate on the first batch, then train on the rest (after `fit.pretrain`); None: TF.js loaded the model
    uncompiled."""
    from harness.pipeline.inference import loaded

    with loaded(session, converted.artifact, backend) as handle:
        times["load"] = handle.load_ms
        if not session.training_info(handle)["compiled"]:
            return None
        xs, ys = batches[0]
        start = time.perf_counter()
        values, names = session.evaluate(handle, xs, ys, len(xs[0]))
        steps, weights = session.train_steps(handle, batches[1 + variant.case.fit.pretrain :])
        times["first_predict"] = (time.perf_counter() - start) * 1000
        return TfjsTraining(values, names, steps, weights)


def _judge(tfjs: TfjsTraining, prepared: TrainPrepared, tol) -> tuple[list, list[str]]:
    """TF.js's evaluation, step losses and trained weights against Keras's: the metrics, and the problems."""
    got = tfjs_evaluation(tfjs.values, tfjs.names, len(prepared.outputs))
    want = {canonical(k, prepared.outputs): v for k, v in prepared.evaluation.items()}
    metrics, problems = [], []
    for name, value in got.items():
        key = canonical(name, prepared.outputs)
        if key not in want:
            problems.append(f"TF.js evaluate reports {name}, which Keras does not")
            continue
        metrics.append(
            cmp.output_metrics(f"evaluate {name}", np.array(want[key], np.float32), np.array(value, np.float32), tol)
        )
    missing = sorted(set(want) - {canonical(n, prepared.outputs) for n in got})
    if missing:
        problems.append(f"Keras evaluate reports {', '.join(missing)}, which TF.js does not")
    comparisons: list[tuple[str, Any, Any]] = [("step losses", prepared.steps, [s[0] for s in tfjs.steps])]
    for wname, array in prepared.weights.items():
        tfjs_name = loaded_name(wname, tfjs.weights)
        if tfjs_name is None:
            problems.append(f"TF.js has no weight {wname}")
            continue
        comparisons.append((f"weight {wname}", array, tfjs.weights[tfjs_name]))
    for name, want_value, got_value in comparisons:
        metric, problem = _compare(name, want_value, got_value, tol)
        if problem:
            problems.append(problem)
        else:
            metrics.append(metric)
    bad = [m for m in metrics if m.mismatches]
    if bad:
        worst = max(bad, key=lambda m: m.max_abs if m.max_abs is not None else float("inf"))
        problems.append(
            f"{worst.output}: {worst.mismatches}/{worst.size} values outside atol={tol.atol:g} "
            f"rtol={tol.rtol:g} (max_abs {worst.max_abs:.3g})"
            if worst.max_abs is not None
            else f"{worst.output}: not finite"
        )
    return metrics, problems


def run(session, variant, backend: str, converted: Converted, prepared: TrainPrepared, tol) -> verdict.Run:
    """Evaluate and train on one backend: the comparisons (as Metrics), a message, and the outcome. What TF.js
    gave for a byte-identical artifact on the same batches earlier in this session is judged instead, unless it
    fails (harness/pipeline/shared_run.py)."""
    assert converted.artifact is not None
    batches = [(xs, [np.asarray(y, np.float32) for y in ys]) for xs, ys in prepared.batches]  # TF.js labels
    arrays = [a for xs, ys in batches for a in (*xs, *ys)]
    run_key = shared_run.key(backend, converted.artifact, arrays, kind=f"train after {variant.case.fit.pretrain}")
    earlier = shared_run.lookup(session, run_key)
    if earlier is not None:
        metrics, problems = _judge(earlier.value, prepared, tol)
        if not problems:
            return verdict.Run("pass", None, None, metrics, None, {}, shared_run=earlier.run)
    times: dict = {}
    tfjs = _in_tfjs(session, variant, backend, converted, batches, times)
    if tfjs is None:
        return verdict.Run("mismatch", "TF.js loaded the model uncompiled", timings=times)
    shared_run.remember(session, run_key, variant.record_id(backend), tfjs)
    metrics, problems = _judge(tfjs, prepared, tol)
    return verdict.Run("mismatch" if problems else "pass", "; ".join(problems) or None, None, metrics, None, times)


def certify(session, variant, prepared, backends, workdir) -> list[tuple[Record, Converted]]:
    """The records of a train variant: the converter must carry the training configuration (or refuse it as
    the case expects), then TF.js must evaluate and train as Keras did."""
    from harness.pipeline.inference import unavailable
    from js_runner import RunnerError

    case = variant.case
    converted = convert_variant(prepared, variant.format, workdir)
    if converted.status == "ok" and converted.training and not converted.training["carried"]:
        issues = [ReasonCode(**i) for i in converted.training["issues"]]
        converted = dataclasses.replace(
            converted,
            status="rejected",
            issues=issues,
            message="training configuration not carried: " + "; ".join(f"{i.reason} [{i.code}]" for i in issues),
        )
    optimizer = None
    if converted.status == "ok":
        assert converted.artifact is not None
        model_json = json.loads((converted.artifact / "model.json").read_text())
        optimizer = model_json.get("trainingConfig", {}).get("optimizer_config", {}).get("class_name")
    out = []
    for backend in backends:
        info = session.backends.get(backend) if session is not None else None
        tol = tolerance.for_training(backend, optimizer, getattr(info, "float_precision", None))
        if converted.status != "ok":
            result = None
        elif case.expect.outcome == "reject":
            result = verdict.Run(
                "error",
                f"the converter carried a training configuration it must refuse ({case.expect.code}: "
                f"{case.expect.reason})",
            )
        else:
            result = unavailable(session, backend)
            if result is None:
                try:
                    result = run(session, variant, backend, converted, prepared, tol)
                except RunnerError as e:
                    result = verdict.from_runner_error(e)
        out.append((verdict.record(variant, backend, converted, tol, result), converted))
    return out


__all__ = ["TrainPrepared", "canonical", "certify", "prepare", "run", "tfjs_evaluation"]
