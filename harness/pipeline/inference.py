"""Certifying inference: the converted float32 model, run on each backend, against Keras's outputs.

On a backend: load the artifact, predict the case's inputs, compare with the Keras reference at the backend's
tolerance (harness/pipeline/tolerance.py, or a looser per-case override with its reason) and, on a mismatch,
find the first layer whose TF.js output leaves tolerance.
"""

from __future__ import annotations

import contextlib
import time

from harness.pipeline import compare as cmp
from harness.pipeline import reference, shared_run, tolerance, verdict
from harness.pipeline.convert import Converted, convert_variant, lowered_outputs
from harness.results.record import Divergence, Record, Step, worst_error
from harness.suite.case import Variant


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


@contextlib.contextmanager
def loaded(session, artifact, backend: str, scripts=()):
    """A model loaded on one backend's page (after `scripts`: a user's ported layers), disposed of when the block
    ends (whatever happened in it)."""
    handle = session.load(artifact, backend, scripts=scripts)
    try:
        yield handle
    finally:
        try:
            session.dispose(handle)
        except Exception:  # the page may be gone already; its replacement holds nothing
            pass


def unavailable(session, backend: str) -> verdict.Run | None:
    """The run of a backend that did not start in this browser (never a pass), or None when it is up."""
    info = session.backends.get(backend) if session is not None else None
    if info is not None and info.available:
        return None
    reason = getattr(info, "reason", None) or "not started"
    return verdict.Run("unavailable", message=f"backend {backend} unavailable: {reason}", stage="backend")


def run_backend(
    session, backend: str, converted: Converted, prepared, tol, *, timings: bool, record_id: str
) -> verdict.Run:
    """Load and run one artifact on one backend, and compare its outputs with Keras's. When this session already
    ran a byte-identical artifact on the same inputs (harness/pipeline/shared_run.py), its outputs are compared
    instead, unless they fail: then the artifact runs, and its divergence is localised, on its own."""
    from js_runner import RunnerError

    assert converted.artifact is not None
    run_key = shared_run.key(backend, converted.artifact, prepared.inputs, prepared.scripts)
    earlier = shared_run.lookup(session, run_key)
    if earlier is not None:
        outs = list(earlier.value)
        ok, metrics, message = cmp.compare_outputs(prepared.output_names, prepared.reference, outs, tol)
        if ok:
            return verdict.Run("pass", message, None, metrics, None, {}, shared_run=earlier.run)
    times: dict = {}
    try:
        with loaded(session, converted.artifact, backend, prepared.scripts) as handle:
            times["load"] = handle.load_ms
            start = time.perf_counter()
            outs = session.predict(handle, prepared.inputs)
            times["first_predict"] = (time.perf_counter() - start) * 1000
            shared_run.remember(session, run_key, record_id, list(outs))
            if timings:
                times["predict_median"] = session.time_predict(handle, prepared.inputs, k=5)["predict_median_ms"]
            ok, metrics, message = cmp.compare_outputs(prepared.output_names, prepared.reference, outs, tol)
            moved = lowered_outputs(converted.artifact)
            divergence = None if ok else first_divergence(session, handle, prepared, tol, moved)
            return verdict.Run("pass" if ok else "mismatch", message, None, metrics, divergence, times)
    except RunnerError as e:
        run = verdict.from_runner_error(e)
        run.timings = times
        return run


def certify(session, variant: Variant, prepared, backends, workdir, *, timings: bool) -> list[tuple[Record, Converted]]:
    """The records of a float32 variant whose Keras side is `prepared`, with the conversion each judged."""
    case = variant.case
    converted = convert_variant(prepared, variant.format, workdir)
    out = []
    for backend in backends:
        info = session.backends.get(backend) if session is not None else None
        tol = tolerance.for_backend(backend, getattr(info, "float_precision", None), case.tolerance)
        if converted.status != "ok":
            run = None
        elif case.expect.outcome == "reject":
            run = verdict.Run(
                "error",
                f"the converter accepted a model it must refuse (expected {case.expect.code}: {case.expect.reason})",
            )
        else:
            run = unavailable(session, backend) or run_backend(
                session, backend, converted, prepared, tol, timings=timings, record_id=variant.record_id(backend)
            )
        out.append((verdict.record(variant, backend, converted, tol, run), converted))
    return out
