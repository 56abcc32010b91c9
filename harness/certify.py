"""The certification pipeline: Keras file -> converter -> artifact -> runner -> outputs -> comparison.

`certify_variant` produces the compat.json records of one case x flavour x format on every backend;
pytest (tests/test_certify.py) and the `tfjs-certify certify` command both call it, and both write
reports/compat.json through `build_report`.
"""
from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import platform
import shutil
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from harness import compare as cmp
from harness import reference, tolerance
from harness.case import FORMATS

BACKENDS = ("cpu", "wasm", "webgl")


@dataclasses.dataclass
class Converted:
    """The converter's result for one variant."""

    status: str  # "ok", "rejected", "converter_error", "reference_error"
    artifact: Path | None = None
    message: str | None = None
    issues: list = dataclasses.field(default_factory=list)
    convert_ms: float | None = None
    sizes: dict = dataclasses.field(default_factory=lambda: {"model_json_bytes": None, "weights_bytes": None,
                                                             "shards": None})


def _issue_dicts(issues) -> list[dict]:
    out = []
    for i in issues:
        d = dataclasses.asdict(i) if dataclasses.is_dataclass(i) else dict(i)
        d["value"] = reference._jsonable(d.get("value"))
        out.append(d)
    return out


def _sizes(directory: Path) -> dict:
    model_json = directory / "model.json"
    shards = sorted(directory.glob("*.bin"))
    return {"model_json_bytes": model_json.stat().st_size if model_json.exists() else None,
            "weights_bytes": sum(p.stat().st_size for p in shards), "shards": len(shards)}


def convert_variant(prepared: reference.Prepared, fmt: str, workdir: Path) -> Converted:
    """Run our converter on the prepared model file (the API format was converted when prepared)."""
    from converter import ConversionError, UnsupportedModelError, convert
    if prepared.error:
        return Converted("reference_error", message=prepared.error)
    if fmt == "api":
        api = prepared.files["api"]
        if (api / "error.json").exists():
            err = json.loads((api / "error.json").read_text())
            return Converted(err["kind"], message=err["message"], issues=err["issues"])
        return Converted("ok", artifact=api, sizes=_sizes(api))
    out = workdir / f"{prepared.flavour}-{fmt}"
    start = time.perf_counter()
    try:
        convert(prepared.files[fmt], out, overwrite=True)
    except UnsupportedModelError as e:
        return Converted("rejected", message=str(e), issues=_issue_dicts(e.issues))
    except ConversionError as e:
        return Converted("converter_error", message=str(e))
    except Exception as e:  # a converter crash is a converter error, with its type
        return Converted("converter_error", message=f"{type(e).__name__}: {e}")
    return Converted("ok", artifact=out, convert_ms=(time.perf_counter() - start) * 1000, sizes=_sizes(out))


def _first_divergence(session, handle, prepared, tol) -> dict | None:
    """The first layer, in topological order, whose TF.js output leaves tolerance."""
    try:
        model = reference.load_model(prepared)
        layers = reference.layer_outputs(model, prepared.inputs, prepared.flavour)
        names = [name for name, _, _ in layers if name in handle.layers]
        got = session.layer_outputs(handle, prepared.inputs, names) if names else {}
    except Exception as e:  # localisation is best effort; the mismatch itself stands
        return {"layer": "?", "class_name": "?", "max_abs": None, "max_rel": None,
                "preceding": [], "note": f"could not localise: {type(e).__name__}: {e}"[:300]}
    preceding = []
    for name, cls, ref_outs in layers:
        if name not in got:
            continue
        ok, metrics, _ = cmp.compare_outputs([name] * len(ref_outs), ref_outs, got[name], tol)
        worst = cmp.worst_error(metrics)
        if not ok:
            return {"layer": name, "class_name": cls, "max_abs": worst,
                    "max_rel": max((m["max_rel"] or 0.0) for m in metrics) if metrics else None,
                    "preceding": preceding[-5:]}
        preceding.append({"layer": name, "class_name": cls, "max_abs": worst})
    return None


def run_backend(session, backend: str, converted: Converted, prepared, tol, *, timings: bool) -> dict:
    """Load and run one artifact on one backend; the outcome part of a record."""
    from js_runner import RunnerError
    info = session.backends.get(backend)
    if info is None or not info.available:
        return {"outcome": "unavailable", "message": f"backend {backend} unavailable: "
                f"{getattr(info, 'reason', None) or 'not started'}"}
    result = {"metrics": [], "first_divergence": None, "timings_ms": {}}
    handle = None
    try:
        handle = session.load(converted.artifact, backend)
        result["timings_ms"]["load"] = handle.load_ms
        start = time.perf_counter()
        outs = session.predict(handle, prepared.inputs)
        result["timings_ms"]["first_predict"] = (time.perf_counter() - start) * 1000
        if timings:
            result["timings_ms"]["predict_median"] = session.time_predict(handle, prepared.inputs, k=5)[
                "predict_median_ms"]
        ok, metrics, message = cmp.compare_outputs(prepared.output_names, prepared.reference, outs, tol)
        result["metrics"] = metrics
        result["message"] = message
        result["outcome"] = "pass" if ok else "mismatch"
        if not ok:
            result["first_divergence"] = _first_divergence(session, handle, prepared, tol)
    except RunnerError as e:
        # TF.js could not load the model, or built it but cannot run it; anything later is an error.
        result["outcome"] = "load_error" if handle is None or e.stage == "predict" else "error"
        result["message"] = str(e)[:500]
    finally:
        if handle is not None:
            try:
                session.dispose(handle)
            except Exception:
                pass
    return result


def is_ok(outcome: str, expect, codes: list[str]) -> bool:
    """The one rule, for pytest, `certify` and the gate: did the record meet its expectation?"""
    if expect.outcome == "pass":
        return outcome == "pass"
    if expect.outcome == "reject":
        return outcome == "rejected" and expect.code in codes
    return outcome == expect.fails_with  # a known failure fails exactly as declared; a pass is not ok


def record_id(case_name: str, flavour: str, fmt: str, backend: str) -> str:
    return f"{case_name}-{flavour}-{fmt}-{backend}"


def make_record(case, flavour, fmt, backend, converted: Converted, result: dict, tol) -> dict:
    expect = case.expect.for_backend(backend)
    outcome = result.get("outcome") or converted.status
    codes = [i["code"] for i in converted.issues]
    metrics = result.get("metrics", [])
    return {
        "id": record_id(case.name, flavour, fmt, backend),
        "case": case.name, "tier": case.tier,
        "layer_classes": list(case.layer_classes), "options": reference._jsonable(dict(case.options)),
        "flavour": flavour, "format": fmt, "backend": backend,
        "expected": expect.outcome, "expected_reason": expect.reason or None, "expected_code": expect.code,
        "expected_failure": expect.fails_with,
        "outcome": outcome, "ok": is_ok(outcome, expect, codes),
        "message": (result.get("message") or converted.message or None),
        "reason_codes": converted.issues,
        "metrics": metrics, "max_abs": cmp.worst_error(metrics) if metrics else None,
        "tolerance": {"atol": tol.atol, "rtol": tol.rtol, "reason": tol.reason},
        "first_divergence": result.get("first_divergence"),
        "timings_ms": {"convert": converted.convert_ms, "load": None, "first_predict": None,
                       "predict_median": None, **result.get("timings_ms", {})},
        "sizes": converted.sizes,
    }


def failed_record(case, flavour, fmt, backend, outcome: str, message: str) -> dict:
    """The record of a variant that never got as far as a comparison (`error`, `missing`)."""
    tol = tolerance.for_backend(backend, None, case.tolerance)
    return make_record(case, flavour, fmt, backend, Converted(outcome, message=message), {}, tol)


def keep_artifacts(case, flavour, fmt, prepared, converted: Converted, record: dict, artifacts: Path):
    """A failing case keeps its model file, converted directory, inputs and both outputs."""
    dest = Path(artifacts) / reference._safe(f"{case.name}-{flavour}-{fmt}")
    dest.mkdir(parents=True, exist_ok=True)
    src = prepared.files.get(fmt)
    if src is not None and src.is_file():
        shutil.copy2(src, dest / src.name)
    if converted.artifact is not None and converted.artifact.exists():
        shutil.copytree(converted.artifact, dest / "tfjs", dirs_exist_ok=True)
    if prepared.inputs:
        np.savez(dest / "inputs.npz", *prepared.inputs)
        np.savez(dest / "keras_outputs.npz", *prepared.reference)
    (dest / f"record-{record['backend']}.json").write_text(json.dumps(record, indent=1))
    return dest


def certify_variant(session, case, flavour, fmt, backends, workdir: Path, artifacts: Path) -> list[dict]:
    """Every record of one case x flavour x format. Never raises: a failure anywhere in the pipeline
    becomes the outcome of the records it touched (`error`, with the exception on one line)."""
    try:
        return _certify_variant(session, case, flavour, fmt, backends, workdir, artifacts)
    except Exception as e:
        message = f"the harness failed on this variant: {reference.one_line(e)}"
        return [failed_record(case, flavour, fmt, b, "error", message) for b in backends]


def _certify_variant(session, case, flavour, fmt, backends, workdir: Path, artifacts: Path) -> list[dict]:
    prepared = reference.prepare(case, flavour, FORMATS[flavour])
    converted = convert_variant(prepared, fmt, workdir)
    records = []
    for backend in backends:
        info = session.backends.get(backend) if session is not None else None
        tol = tolerance.for_backend(backend, getattr(info, "float_precision", None), case.tolerance)
        if converted.status == "ok" and case.expect.outcome != "reject":
            result = run_backend(session, backend, converted, prepared, tol, timings=case.tier == "app")
        elif converted.status == "ok":  # an expected rejection that the converter let through
            result = {"outcome": "error", "message": "the converter accepted a model it must refuse "
                                                     f"(expected {case.expect.code}: {case.expect.reason})"}
        else:
            result = {}
        record = make_record(case, flavour, fmt, backend, converted, result, tol)
        if not record["ok"] and record["outcome"] != "unavailable":
            try:
                keep_artifacts(case, flavour, fmt, prepared, converted, record, artifacts)
            except OSError as e:  # the verdict stands without its artifacts
                record["message"] = f"{record['message'] or ''} (artifacts not kept: {e})".strip()
        records.append(record)
    return records


# --- the report ------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _v(package: str):
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def environment(session) -> dict:
    from harness import tf_policy
    backends = {}
    for name, info in (session.backends.items() if session is not None else []):
        backends[name] = {"available": info.available, "reason": info.reason, "tfjs_version": info.tfjs_version,
                          "float_precision": info.float_precision, "webgl_renderer": info.webgl_renderer,
                          "wasm_simd": info.wasm_simd, "wasm_threads": info.wasm_threads}
    tfjs = next((b["tfjs_version"] for b in backends.values() if b["tfjs_version"]), None)
    return {"python": platform.python_version(), "platform": platform.platform(),
            "keras": _v("keras"), "tf_keras": _v("tf-keras"), "tensorflow": _v("tensorflow"),
            "onednn": tf_policy.facts(),
            "tfjs": tfjs, "chromium": getattr(session, "browser_version", None), "playwright": _v("playwright"),
            "backends": backends}


def merge_environments(envs) -> dict:
    """One environment from several processes' (workers): the first with backends, oneDNN as TensorFlow ran."""
    envs = [e for e in envs if e]
    if not envs:
        return {}
    env = dict(next((e for e in envs if e.get("backends")), envs[0]))
    ran = [e["onednn"] for e in envs if (e.get("onednn") or {}).get("enabled") is not None]
    if ran:  # a process that imported TensorFlow says how it ran; any disagreement shows as False
        env["onednn"] = {**ran[0], "enabled": all(o["enabled"] for o in ran),
                         "set_too_late": any(o["set_too_late"] for o in ran)}
    return env


MISSING = "selected but left no record: the run crashed or stopped before certifying it"


def certification_params(cases, backends=BACKENDS) -> list[tuple]:
    """(test id, case, flavour, format, backend or None) for each certification test: one per backend,
    except an expected rejection, checked once per flavour x format (the converter alone decides)."""
    out = []
    for case in cases:
        for flavour, fmt in case.variants():
            if case.tier == "reject":
                out.append((f"{case.name}-{flavour}-{fmt}", case, flavour, fmt, None))
            else:
                out += [(record_id(case.name, flavour, fmt, b), case, flavour, fmt, b) for b in backends]
    return out


def expected_variants(cases, backends) -> list[tuple]:
    """(case, flavour, format, backend) of every record certifying `cases` on `backends` produces."""
    return [(c, fl, fm, b) for c in cases for fl, fm in c.variants() for b in backends]


def with_missing(records: list[dict], expected) -> list[dict]:
    """`records`, plus a not-ok `missing` record for every expected one that never came."""
    out, have = list(records), {r["id"] for r in records}
    for case, flavour, fmt, backend in expected:
        if record_id(case.name, flavour, fmt, backend) not in have:
            out.append(failed_record(case, flavour, fmt, backend, "missing", MISSING))
            have.add(out[-1]["id"])
    return out


def omissions(cases) -> list[dict]:
    """Flavours kept out of the suite on purpose, with their reasons (compat.json's `omitted`)."""
    return [{"case": c.name, "flavour": o.flavour, "reason": o.reason} for c in cases for o in c.omitted]


def build_report(records: list[dict], env: dict, *, duration_s: float, command: str, filters=(),
                 expected=None, omitted=()) -> dict:
    """compat.json from a run's records. `expected`: what the run selected (every one without a record
    becomes a `missing` record); `filters`: what narrowed the selection (none: a full run)."""
    from harness import report
    if expected is not None:
        records = with_missing(records, expected)
    backends = [b for b in BACKENDS if any(r["backend"] == b for r in records)] or list(BACKENDS)
    layers, summary = report.rollup(records, backends)
    precision = {b: (env.get("backends", {}).get(b) or {}).get("float_precision") for b in BACKENDS}
    return {
        "schema_version": 2,
        "generated_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "run": {"command": command, "duration_s": round(duration_s, 2), "partial": bool(filters),
                "filters": list(filters), "selected": len(records)},
        "environment": env,
        "tolerances": tolerance.policy_json(precision),
        "records": sorted(records, key=lambda r: r["id"]),
        "omitted": list(omitted),
        "layers": layers,
        "summary": summary,
    }
