"""Certifying one variant: Keras file -> converter -> artifact -> runner -> outputs -> comparison -> records.

`certify_variant` produces the records of one case x flavour x format on every backend; pytest
(tests/test_certify.py) and `tfjs-certify certify` (harness.pipeline.run) both call it. It never raises:
a failure anywhere becomes the outcome of the records it touched.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path

import numpy as np

from harness.pipeline import compare as cmp
from harness.pipeline import quantize, reference, tolerance, training
from harness.pipeline.convert import Converted, convert_variant, lowered_outputs
from harness.results.record import AppliedTolerance, Divergence, ReasonCode, Record, Step, Timings, worst_error
from harness.suite.case import Variant


def is_ok(outcome: str, expect, codes: list[str], lowered_as_declared: bool = True) -> bool:
    """The one rule, for pytest, `certify` and the gate: did the record meet its expectation? A case that
    declares lowerings must also have been converted through exactly those."""
    if not lowered_as_declared:
        return False
    if expect.outcome == "pass":
        return outcome == "pass"
    if expect.outcome == "reject":
        return outcome == "rejected" and expect.code in codes
    return outcome == expect.fails_with  # a known failure fails exactly as declared; a pass is not ok


def make_record(
    variant: Variant,
    backend: str,
    converted: Converted,
    tol,
    *,
    outcome: str | None = None,
    message: str | None = None,
    metrics=(),
    divergence: Divergence | None = None,
    timings: dict | None = None,
    quantized: dict | None = None,
) -> Record:
    """A record: what the converter said, and (when it converted) what the backend run gave."""
    case = variant.case
    expect = variant.expect.for_backend(backend)
    outcome = outcome or converted.status
    rules = sorted({x.rule for x in converted.lowerings})
    wrong = []
    if converted.status == "ok" and case.lowered and rules != sorted(case.lowered):
        wrong.append(f"converted through lowerings {rules or 'none'}, but the case declares {sorted(case.lowered)}")
    if converted.status == "ok" and case.companion and converted.companion != sorted(set(case.companion)):
        wrong.append(
            f"run by companion rules {converted.companion or 'none'}, but the case declares {sorted(case.companion)}"
        )
    as_declared = not wrong
    if wrong:
        message = "; ".join(m for m in (*wrong, message or converted.message) if m)
    return Record(
        id=variant.record_id(backend),
        case=case.name,
        tier=case.tier,
        layer_classes=list(case.layer_classes),
        options=reference.jsonable(dict(case.options)),
        flavour=variant.flavour,
        format=variant.format,
        backend=backend,
        expected=expect.outcome,
        expected_reason=expect.reason or None,
        expected_code=expect.code,
        expected_failure=expect.fails_with,
        outcome=outcome,
        ok=is_ok(outcome, expect, [i.code for i in converted.issues], as_declared),
        message=message or converted.message or None,
        reason_codes=list(converted.issues),
        metrics=list(metrics),
        max_abs=worst_error(list(metrics)) if metrics else None,
        tolerance=AppliedTolerance(tol.atol, tol.rtol, tol.reason),
        first_divergence=divergence,
        timings_ms=Timings(convert=converted.convert_ms, **(timings or {})),
        sizes=converted.sizes,
        quantization=dataclasses.replace(converted.quantization, **(quantized or {}))
        if converted.quantization
        else None,
        lowerings=list(converted.lowerings),
    )


def failed_record(variant: Variant, backend: str, outcome: str, message: str) -> Record:
    """The record of a variant that never got as far as a comparison (`error`, `missing`...)."""
    tol = tolerance.for_backend(backend, None, variant.case.tolerance if not variant.quantization else None)
    return make_record(variant, backend, Converted(outcome, message=message), tol)


def first_divergence(session, handle, prepared, tol, moved: dict[str, str] | None = None) -> Divergence | None:
    """The first layer, in topological order, whose TF.js output leaves tolerance. `moved` maps a user's
    layer to the TF.js layer now holding its output (a lowering's chain)."""
    moved = moved or {}
    try:
        model = prepared.load_model()
        layers = reference.layer_outputs(model, prepared.inputs, prepared.flavour)
        names = [moved.get(name, name) for name, _, _ in layers if moved.get(name, name) in handle.layers]
        by_tfjs = session.layer_outputs(handle, prepared.inputs, names) if names else {}
        got = {name: by_tfjs[moved.get(name, name)] for name, _, _ in layers if moved.get(name, name) in by_tfjs}
    except Exception as e:  # localisation is best effort; the mismatch itself stands
        return Divergence("?", None, None, note=f"could not localise: {reference.one_line(e)}")
    preceding: list[Step] = []
    for name, cls, ref_outs in layers:
        if name not in got:
            continue
        ok, metrics, _ = cmp.compare_outputs([name] * len(ref_outs), ref_outs, got[name], tol)
        worst = worst_error(metrics)
        if not ok:
            return Divergence(
                name, cls, worst, max((m.max_rel or 0.0) for m in metrics) if metrics else None, preceding[-5:]
            )
        preceding.append(Step(name, cls, worst))
    return None


def run_backend(
    session,
    variant: Variant,
    backend: str,
    converted: Converted,
    prepared,
    tol,
    *,
    timings: bool,
    originals: dict | None = None,
) -> Record:
    """Load and run one artifact on one backend, and compare its outputs with Keras's. With `originals`
    (a quantized conversion's encoding errors, quantize.encoding_errors), also check every weight TF.js
    decoded lies within its quantization step of the float32 original."""
    from js_runner import RunnerError

    info = session.backends.get(backend)
    if info is None or not info.available:
        return make_record(
            variant,
            backend,
            converted,
            tol,
            outcome="unavailable",
            message=(f"backend {backend} unavailable: {getattr(info, 'reason', None) or 'not started'}"),
        )
    times: dict = {}
    handle = None
    try:
        handle = session.load(converted.artifact, backend)
        times["load"] = handle.load_ms
        start = time.perf_counter()
        outs = session.predict(handle, prepared.inputs)
        times["first_predict"] = (time.perf_counter() - start) * 1000
        if timings:
            times["predict_median"] = session.time_predict(handle, prepared.inputs, k=5)["predict_median_ms"]
        ok, metrics, message = cmp.compare_outputs(prepared.output_names, prepared.reference, outs, tol)
        quantized = None
        if originals is not None:
            quantized = dequantization(session.dequant_check(handle), originals)
            steps = quantized["dequant_steps"]
            if steps is None or steps > 1.0:
                ok = False
                moved = (
                    f"dequantization: weight {quantized['worst_weight']} moved {steps:.3g} steps (at most 1)"
                    if steps is not None
                    else f"dequantization: weight {quantized['worst_weight']}"
                )
                message = f"{moved}; {message}" if message else moved
        divergence = (
            None
            if ok or originals is not None
            else first_divergence(session, handle, prepared, tol, lowered_outputs(converted.artifact))
        )
        return make_record(
            variant,
            backend,
            converted,
            tol,
            outcome="pass" if ok else "mismatch",
            message=message,
            metrics=metrics,
            divergence=divergence,
            timings=times,
            quantized=quantized,
        )
    except RunnerError as e:
        # TF.js could not load the model, or built it but cannot run it; anything later is an error.
        outcome = "load_error" if handle is None or e.stage == "predict" else "error"
        return make_record(variant, backend, converted, tol, outcome=outcome, message=str(e)[:500], timings=times)
    finally:
        if handle is not None:
            try:
                session.dispose(handle)
            except Exception:
                pass


def dequantization(loaded: dict, encoded: dict) -> dict:
    """How far TF.js's decoded weights lie from the float32 originals, in quantization steps: what the
    encoding moved each weight (`encoded`, quantize.encoding_errors), plus how far TF.js's loaded value lies
    from the value its manifest entry encodes (`loaded`, measured in the page), for the worst weight."""
    worst, worst_name = 0.0, None
    for name, enc in encoded.items():
        if name not in loaded:
            return {"dequant_steps": None, "worst_weight": f"{name} (not checked in TF.js)"}
        drift = loaded[name]
        steps = float("inf") if drift is None else enc.steps + drift / enc.min_bound
        if worst_name is None or steps > worst:
            worst, worst_name = steps, name
    return {"dequant_steps": worst if worst_name else 0.0, "worst_weight": worst_name}


def keep_artifacts(variant: Variant, prepared, converted: Converted, record: Record, artifacts: Path) -> Path:
    """A failing case keeps its model file, converted directory, inputs and both outputs."""
    dest = Path(artifacts) / reference._safe(variant.id)
    dest.mkdir(parents=True, exist_ok=True)
    src = prepared.files.get(variant.format)
    if src is not None and src.is_file():
        shutil.copy2(src, dest / src.name)
    if converted.artifact is not None and converted.artifact.exists():
        shutil.copytree(converted.artifact, dest / "tfjs", dirs_exist_ok=True)
    if prepared.inputs:
        np.savez(dest / "inputs.npz", *prepared.inputs)
        np.savez(dest / "keras_outputs.npz", *prepared.reference)
    (dest / f"record-{record.backend}.json").write_text(json.dumps(record.to_json(), indent=1))
    return dest


def _tolerance(variant: Variant, backend: str, precision, prepared, budget):
    if variant.quantization is None:
        return tolerance.for_backend(backend, precision, variant.case.tolerance)
    scale = quantize.output_scale(prepared.reference)
    return tolerance.for_quantization(backend, variant.quantization, scale, precision, budget)


def _encoding(converted: Converted, q) -> dict[str, quantize.Encoded]:
    """What the quantized conversion's encoding did to each weight (quantize.encoding_errors), computed once
    per artifact and kept beside it (a function of the source's weights and the dtypes, as the artifact is)."""
    assert converted.artifact is not None
    kept = converted.artifact.parent / "encoding.json"
    if kept.exists():
        return {n: quantize.Encoded(*v) for n, v in json.loads(kept.read_text()).items()}
    weights = quantize.float32_weights(converted.source)
    dtypes = dict(q.plan or {}) if q.dtype == "plan" else {n: q.dtype for n in weights}
    encoded = quantize.encoding_errors(weights, dtypes)
    from harness.results.render import write_atomic  # workers may race: each writes its own file, then renames

    write_atomic(kept, json.dumps({n: [e.steps, e.min_bound] for n, e in encoded.items()}))
    return encoded


def certify_prepared(
    session, variant: Variant, prepared, backends, workdir: Path, artifacts: Path, *, timings: bool | None = None
) -> list[Record]:
    """The records of a variant whose Keras side is `prepared`. `timings`: also time 5 more predictions
    (default: for apps and users' models, whose speed is worth reporting)."""
    case = variant.case
    plan = budget = originals = None
    if variant.quantization == "plan" and not prepared.error:
        budget = tolerance.PLAN_BUDGET * quantize.output_scale(prepared.reference)
        plan = quantize.cached_plan(prepared, prepared.files[variant.format], budget).weights
    converted = convert_variant(prepared, variant.format, workdir, quantization=variant.quantization, plan=plan)
    if converted.quantization is not None:
        converted.quantization.budget = budget
        originals = _encoding(converted, converted.quantization)
    records = []
    for backend in backends:
        info = session.backends.get(backend) if session is not None else None
        tol = _tolerance(variant, backend, getattr(info, "float_precision", None), prepared, budget)
        if converted.status == "ok" and case.expect.outcome != "reject":
            record = run_backend(
                session,
                variant,
                backend,
                converted,
                prepared,
                tol,
                timings=case.tier in ("app", "user") if timings is None else timings,
                originals=originals,
            )
        elif converted.status == "ok":  # an expected rejection that the converter let through
            record = make_record(
                variant,
                backend,
                converted,
                tol,
                outcome="error",
                message=(
                    f"the converter accepted a model it must refuse (expected {case.expect.code}: {case.expect.reason})"
                ),
            )
        else:
            record = make_record(variant, backend, converted, tol)
        if not record.ok and record.outcome != "unavailable":
            try:
                keep_artifacts(variant, prepared, converted, record, artifacts)
            except OSError as e:  # the verdict stands without its artifacts
                record.message = f"{record.message or ''} (artifacts not kept: {e})".strip()
        records.append(record)
    return records


def certify_training(session, variant: Variant, prepared, backends, workdir: Path, artifacts: Path) -> list[Record]:
    """The records of a train variant: the converter must carry the training configuration (or refuse it as
    the case expects), then TF.js must evaluate and train as Keras did."""
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
    records = []
    for backend in backends:
        info = session.backends.get(backend) if session is not None else None
        tol = tolerance.for_training(backend, optimizer, getattr(info, "float_precision", None))
        if converted.status == "ok" and case.expect.outcome == "reject":
            record = make_record(
                variant,
                backend,
                converted,
                tol,
                outcome="error",
                message=(
                    f"the converter carried a training configuration it must refuse ({case.expect.code}: "
                    f"{case.expect.reason})"
                ),
            )
        elif converted.status != "ok":
            record = make_record(variant, backend, converted, tol)
        elif info is None or not info.available:
            record = make_record(
                variant,
                backend,
                converted,
                tol,
                outcome="unavailable",
                message=f"backend {backend} unavailable: {getattr(info, 'reason', None)}",
            )
        else:
            try:
                result = training.run(session, variant, backend, converted, prepared, tol)
                record = make_record(
                    variant,
                    backend,
                    converted,
                    tol,
                    outcome=result["outcome"],
                    message=result["message"],
                    metrics=result["metrics"],
                    timings=result["timings"],
                )
            except RunnerError as e:
                outcome = "load_error" if e.stage in ("predict", "fetch", "parse", "weights") else "error"
                record = make_record(variant, backend, converted, tol, outcome=outcome, message=str(e)[:500])
        if not record.ok and record.outcome != "unavailable":
            try:
                keep_artifacts(variant, prepared, converted, record, artifacts)
            except OSError as e:
                record.message = f"{record.message or ''} (artifacts not kept: {e})".strip()
        records.append(record)
    return records


def certify_variant(
    session, variant: Variant, backends, workdir: Path, artifacts: Path, *, timings: bool | None = None
) -> list[Record]:
    """Every record of one case x flavour x format. Never raises: a failure anywhere in the pipeline
    becomes the outcome of the records it touched (`error`, with the exception on one line)."""
    start = time.perf_counter()
    records = _certify_variant(session, variant, backends, workdir, artifacts, timings=timings)
    share = (time.perf_counter() - start) * 1000 / max(len(records), 1)
    for record in records:
        record.timings_ms.total = share
    return records


def _certify_variant(session, variant: Variant, backends, workdir: Path, artifacts: Path, *, timings) -> list[Record]:
    try:
        if variant.case.fit is not None:
            trained = training.prepare(variant.case, variant.flavour)
            return certify_training(session, variant, trained, backends, workdir, artifacts)
        prepared = reference.prepare(variant.case, variant.flavour)
        return certify_prepared(session, variant, prepared, backends, workdir, artifacts, timings=timings)
    except Exception as e:
        message = f"the harness failed on this variant: {reference.one_line(e)}"
        return [failed_record(variant, b, "error", message) for b in backends]
