"""`tfjs-certify certify`: the reference suite or a user's own model files, with progress and a summary.

The same pipeline as pytest (harness.certify), run outside pytest: optionally in parallel worker
processes (one browser each), then reports/compat.{json,md,html} and, after a full suite run, the
regression gate against the baseline.
"""
from __future__ import annotations

import concurrent.futures
import fnmatch
import json
import multiprocessing
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

from harness import certify, reference, tolerance
from harness.case import FORMATS, PASS


def _variants(select: str | None):
    from harness.catalogue import CASES
    out = []
    for case in CASES:
        for flavour in case.flavours:
            for fmt in FORMATS[flavour]:
                ident = f"{case.name}-{flavour}-{fmt}"
                if select and not _matches(select, ident):
                    continue
                out.append((case.name, flavour, fmt))
    return out


def _matches(expr: str, ident: str) -> bool:
    """`-k`: a substring, or a glob with `*`; `a or b` and `not a` as in pytest's simplest forms."""
    expr = expr.strip()
    if " or " in expr:
        return any(_matches(e, ident) for e in expr.split(" or "))
    if expr.startswith("not "):
        return not _matches(expr[4:], ident)
    return fnmatch.fnmatchcase(ident, expr) if "*" in expr else expr in ident


_WORKER: dict = {}


def _quiet():
    """Keras and TensorFlow chatter (retracing, input-structure warnings) is not the user's business."""
    import logging
    import os
    import warnings
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)


def _start_worker(backends):
    """A worker process's own browser, reused by every chunk it certifies."""
    import atexit
    from js_runner import BrowserSession
    _quiet()
    session = BrowserSession(backends=tuple(backends), timeout_s=120.0)
    atexit.register(session.close)
    _WORKER.update(session=session, backends=backends,
                   tmp=tempfile.TemporaryDirectory(prefix="tfjs-certify-"))


def _certify(session, variants, backends, workdir: Path, progress=None, task=None) -> list[dict]:
    """Certify suite variants with one browser (reject cases need none)."""
    from harness.catalogue import CASES
    by_name = {c.name: c for c in CASES}
    records = []
    for name, flavour, fmt in variants:
        case = by_name[name]
        if progress is not None:
            progress.update(task, description=f"{name}-{flavour}-{fmt}"[:60])
        records += certify.certify_variant(session if case.tier != "reject" else None, case, flavour, fmt,
                                           backends, workdir)
        if progress is not None:
            progress.advance(task)
    return records


def _work(variants) -> tuple[list[dict], dict]:
    """Certify some suite variants in a worker process, with its browser."""
    session = _WORKER["session"]
    records = _certify(session, variants, _WORKER["backends"], Path(_WORKER["tmp"].name))
    return records, certify.environment(session)


def _suite(backends, select, workers, progress) -> tuple[list[dict], dict]:
    variants = _variants(select)
    if not variants:
        raise SystemExit(f"tfjs-certify: no case matches -k {select!r}")
    records, env = [], {}
    if workers == 1:  # one browser, progress per variant
        from js_runner import BrowserSession
        with BrowserSession(backends=tuple(backends), timeout_s=120.0) as session, \
                tempfile.TemporaryDirectory(prefix="tfjs-certify-") as tmp:
            task = progress.add_task("certifying", total=len(variants))
            records = _certify(session, variants, backends, Path(tmp), progress, task)
            return records, certify.environment(session)
    ctx = multiprocessing.get_context("spawn")
    chunks = [variants[i:i + 8] for i in range(0, len(variants), 8)]  # small, so progress moves
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_start_worker,
                                                initargs=(list(backends),)) as pool:
        task = progress.add_task(f"certifying in {workers} workers", total=len(variants))
        futures = {pool.submit(_work, chunk): len(chunk) for chunk in chunks}
        for future in concurrent.futures.as_completed(futures):
            recs, env = future.result()
            records += recs
            progress.advance(task, futures[future])
    return records, env


def _load_inputs(path: Path | None, model) -> list[np.ndarray] | None:
    if path is None:
        return None
    data = np.load(path)
    names = [t.name.split(":")[0] for t in model.inputs]
    if all(n in data.files for n in names):
        return [data[n] for n in names]
    if len(data.files) == len(names):
        return [data[f] for f in data.files]
    raise SystemExit(f"tfjs-certify: {path}: expected arrays named {', '.join(names)} "
                     f"(or {len(names)} arrays in order), found {', '.join(data.files)}")


def certify_model_file(session, path: Path, backends, inputs_path, workdir: Path) -> list[dict]:
    """Certify one user model file: convert, predict in Keras and TF.js, compare."""
    from converter import ConversionError
    from converter.reader import read_model_file
    from harness import inputs as inputs_mod
    try:
        with read_model_file(path) as mf:
            major, fmt = mf.keras_major, mf.format
    except ConversionError as e:
        raise SystemExit(f"tfjs-certify: {e}")
    flavour = "keras3" if major == 3 else "tf_keras"
    k = reference.keras_module(flavour)

    def loader():
        return k.models.load_model(str(path), compile=False)
    model = loader()
    xs = _load_inputs(inputs_path, model) or inputs_mod.make_inputs(inputs_mod.specs_from_model(model), 2,
                                                                    reference.SEED)
    prepared = reference.Prepared(path.name, flavour, path.parent, {fmt: path}, xs,
                                  reference.predict(model, xs), reference.output_names(model), loader=loader)
    converted = certify.convert_variant(prepared, fmt, workdir)
    classes = sorted({type(layer).__name__ for layer in model.layers})
    case = types.SimpleNamespace(name=path.name, tier="user", layer_classes=tuple(classes), options={},
                                 expect=PASS, tolerance=None)
    records = []
    for backend in backends:
        info = session.backends.get(backend)
        tol = tolerance.for_backend(backend, getattr(info, "float_precision", None))
        result = (certify.run_backend(session, backend, converted, prepared, tol, timings=True)
                  if converted.status == "ok" else {})
        record = certify.make_record(case, flavour, fmt, backend, converted, result, tol)
        if not record["ok"] and record["outcome"] != "unavailable":
            certify.keep_artifacts(case, flavour, fmt, prepared, converted, record)
        records.append(record)
    return records


def run(models, *, backends, select=None, out_dir=Path("reports"), workers=1, inputs=None,
        baseline=None, verbose=False) -> int:
    """Certify, write the reports, compare with the baseline; 0 when everything that should pass passed."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from harness import baseline as gate
    from harness import report
    console = Console(stderr=True)
    _quiet()
    start = time.time()
    columns = (TextColumn("{task.description:<60}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        if models:
            from js_runner import BrowserSession
            records = []
            with BrowserSession(backends=tuple(backends), timeout_s=120.0) as session, \
                    tempfile.TemporaryDirectory(prefix="tfjs-certify-") as tmp:
                task = progress.add_task("certifying", total=len(models))
                for path in models:
                    progress.update(task, description=str(path)[:60])
                    records += certify_model_file(session, Path(path), backends, inputs, Path(tmp))
                    progress.advance(task)
                env = certify.environment(session)
            complete = False
        else:
            records, env = _suite(backends, select, workers, progress)
            complete = select is None and set(backends) == set(certify.BACKENDS)
    command = "tfjs-certify certify " + " ".join(sys.argv[2:])
    data = certify.build_report(records, env, duration_s=time.time() - start, complete=complete,
                                command=command.strip())
    paths = report.write_reports(data, out_dir)
    console.print(report.summary_table(data))
    console.print(f"reports: {', '.join(str(p) for p in paths.values())}")
    status = 0 if all(r["ok"] for r in records) else 1
    for r in records:
        if not r["ok"]:
            console.print(f"[red]not ok[/red] {r['id']}: {r['outcome']}: {(r['message'] or '')[:200]}")
    if not models and baseline is not None and Path(baseline).exists():
        diff = gate.compare(json.loads(Path(baseline).read_text()), data,
                            only_ids=None if complete else {r["id"] for r in records})
        console.print(gate.diff_table(diff))
        if diff.regressions:
            console.print(f"[red]regression against {baseline}[/red]")
            status = 1
    console.print(f"done in {time.time() - start:.1f} s")
    return status
