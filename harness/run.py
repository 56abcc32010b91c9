"""`tfjs-certify certify`: the reference suite or a user's own model files, with progress and a summary.

The same pipeline as pytest (harness.certify), run outside pytest: optionally in parallel worker
processes (one browser each), then reports/compat.{json,md,html} and, for the suite, the regression
gate against the baseline. One variant or one model file never stops the run: whatever fails becomes
the outcome of its records, and a variant a crashed worker never certified becomes a `missing` record.
"""
from __future__ import annotations

import concurrent.futures
import fnmatch
import json
import multiprocessing
import os
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

from harness import certify, reference, tolerance
from harness.case import PASS


def _variants(cases, select: str | None):
    return [(case, flavour, fmt) for case in cases for flavour, fmt in case.variants()
            if not select or _matches(select, f"{case.name}-{flavour}-{fmt}")]


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
    import warnings
    warnings.filterwarnings("ignore")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)


def _start_worker(backends, artifacts, cache):
    """A worker process's own browser, reused by every chunk it certifies."""
    import atexit
    from js_runner import BrowserSession
    _quiet()
    reference.set_cache_dir(cache)
    session = BrowserSession(backends=tuple(backends), timeout_s=120.0)
    atexit.register(session.close)
    _WORKER.update(session=session, backends=backends, artifacts=Path(artifacts),
                   tmp=tempfile.TemporaryDirectory(prefix="tfjs-certify-"))


def _certify(session, variants, backends, workdir: Path, artifacts: Path, progress=None, task=None) -> list[dict]:
    """Certify suite variants with one browser (reject cases need none)."""
    records = []
    for case, flavour, fmt in variants:
        if progress is not None:
            progress.update(task, description=f"{case.name}-{flavour}-{fmt}"[:60])
        records += certify.certify_variant(session if case.tier != "reject" else None, case, flavour, fmt,
                                           backends, workdir, artifacts)
        if progress is not None:
            progress.advance(task)
    return records


def _work(names) -> tuple[list[dict], dict]:
    """Certify some suite variants, given as (case name, flavour, format), in a worker process."""
    from harness.catalogue import by_name
    session = _WORKER["session"]
    variants = [(by_name(n), fl, fm) for n, fl, fm in names]
    records = _certify(session, variants, _WORKER["backends"], Path(_WORKER["tmp"].name), _WORKER["artifacts"])
    return records, certify.environment(session)


def _suite(variants, backends, workers, progress, artifacts: Path, console) -> tuple[list[dict], dict]:
    if workers == 1:  # one browser, progress per variant
        from js_runner import BrowserSession
        with BrowserSession(backends=tuple(backends), timeout_s=120.0) as session, \
                tempfile.TemporaryDirectory(prefix="tfjs-certify-") as tmp:
            task = progress.add_task("certifying", total=len(variants))
            records = _certify(session, variants, backends, Path(tmp), artifacts, progress, task)
            return records, certify.environment(session)
    ctx = multiprocessing.get_context("spawn")
    names = [(case.name, fl, fm) for case, fl, fm in variants]
    chunks = [names[i:i + 8] for i in range(0, len(names), 8)]  # small, so progress moves
    records, envs = [], []
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_start_worker,
                                                initargs=(list(backends), str(artifacts),
                                                          str(reference.cache_dir()))) as pool:
        task = progress.add_task(f"certifying in {workers} workers", total=len(variants))
        futures = {pool.submit(_work, chunk): chunk for chunk in chunks}
        for future in concurrent.futures.as_completed(futures):
            try:
                recs, env = future.result()
            except Exception as e:  # a dead worker: its variants become `missing` records
                console.print(f"[red]a worker failed on {len(futures[future])} variant(s):[/red] "
                              f"{reference.one_line(e)}")
                recs, env = [], {}
            records += recs
            envs.append(env)
            progress.advance(task, len(futures[future]))
    return records, certify.merge_environments(envs)


# --- user model files ---------------------------------------------------------------------------------

def user_names(paths: list[Path]) -> list[str]:
    """Readable case names, unique for any list of files: each path relative to the files' common folder
    (`a/model.keras`, `b/model.keras`); a single file is its name."""
    resolved = [p.resolve() for p in paths]
    if len(resolved) == 1:
        return [resolved[0].name]
    common = Path(os.path.commonpath([str(p.parent) for p in resolved]))
    return [p.relative_to(common).as_posix() for p in resolved]


class InputsError(ValueError):
    """A model's inputs file does not fit it."""


def inputs_file(model: Path, given: Path | None) -> Path | None:
    """The inputs for `model`: `--inputs` FILE.npz for every model; or its entry in `--inputs` FILE.json (model
    paths to .npz files, relative to the JSON file); else a `<model stem>.npz` next to it; else None (seeded)."""
    if given is not None and given.suffix != ".json":
        return given
    if given is not None:
        for key, value in json.loads(given.read_text()).items():
            if (given.parent / key).resolve() == model.resolve():
                return given.parent / value
    sibling = model.with_suffix(".npz")
    return sibling if sibling.is_file() else None


def load_inputs(path: Path, model) -> list[np.ndarray]:
    names = [t.name.split(":")[0] for t in model.inputs]
    try:
        data = np.load(path)
    except Exception as e:
        raise InputsError(f"{path}: not a readable .npz file ({reference.one_line(e)})") from None
    if all(n in data.files for n in names):
        return [data[n] for n in names]
    if len(data.files) == len(names):
        return [data[f] for f in data.files]
    raise InputsError(f"{path}: expected arrays named {', '.join(names)} (or {len(names)} arrays in order), "
                      f"found {', '.join(data.files) or 'none'}")


def user_case(name: str, classes=()):
    """A user's model as a case: expected to pass, with the default tolerance policy."""
    return types.SimpleNamespace(name=name, tier="user", layer_classes=tuple(classes), options={},
                                 expect=PASS, tolerance=None)


def certify_model_file(session, path: Path, name: str, backends, inputs_path, workdir: Path,
                       artifacts: Path) -> list[dict]:
    """Certify one user model file: convert, predict in Keras and TF.js, compare. Never raises: an
    unreadable file, inputs that do not fit or a Keras failure become the outcome of its records."""
    from converter import ConversionError
    from converter.reader import read_model_file
    from harness import inputs as inputs_mod
    try:
        with read_model_file(path) as mf:
            major, fmt = mf.keras_major, mf.format
    except ConversionError as e:
        fmt = "keras" if path.suffix == ".keras" else "h5"
        return [certify.failed_record(user_case(name), "unknown", fmt, b, "converter_error", str(e))
                for b in backends]
    flavour = "keras3" if major == 3 else "tf_keras"
    case = user_case(name)
    try:
        k = reference.keras_module(flavour)

        def loader():
            return k.models.load_model(str(path), compile=False)
        model = loader()
        case = user_case(name, sorted({type(layer).__name__ for layer in model.layers}))
        source = inputs_file(path, inputs_path)
        xs = (load_inputs(source, model) if source is not None
              else inputs_mod.make_inputs(inputs_mod.specs_from_model(model), 2, reference.SEED))
        refs = reference.predict(model, xs)
    except InputsError as e:
        return [certify.failed_record(case, flavour, fmt, b, "reference_error", f"inputs: {e}") for b in backends]
    except Exception as e:
        message = f"Keras could not load or run {path}: {reference.one_line(e)}"
        return [certify.failed_record(case, flavour, fmt, b, "reference_error", message) for b in backends]
    prepared = reference.Prepared(name, flavour, path.parent, {fmt: path}, xs, refs, reference.output_names(model),
                                  loader=loader)
    try:
        converted = certify.convert_variant(prepared, fmt, workdir)
        records = []
        for backend in backends:
            info = session.backends.get(backend)
            tol = tolerance.for_backend(backend, getattr(info, "float_precision", None))
            result = (certify.run_backend(session, backend, converted, prepared, tol, timings=True)
                      if converted.status == "ok" else {})
            record = certify.make_record(case, flavour, fmt, backend, converted, result, tol)
            if not record["ok"] and record["outcome"] != "unavailable":
                certify.keep_artifacts(case, flavour, fmt, prepared, converted, record, artifacts)
            records.append(record)
        return records
    except Exception as e:
        message = f"the harness failed on this model: {reference.one_line(e)}"
        return [certify.failed_record(case, flavour, fmt, b, "error", message) for b in backends]


def _models(paths, backends, inputs, progress, artifacts: Path) -> tuple[list[dict], dict]:
    from js_runner import BrowserSession
    records = []
    with BrowserSession(backends=tuple(backends), timeout_s=120.0) as session, \
            tempfile.TemporaryDirectory(prefix="tfjs-certify-") as tmp:
        task = progress.add_task("certifying", total=len(paths))
        for path, name in zip(paths, user_names(paths)):
            progress.update(task, description=str(path)[:60])
            records += certify_model_file(session, path, name, backends, inputs, Path(tmp), artifacts)
            progress.advance(task)
        return records, certify.environment(session)


# --- the command --------------------------------------------------------------------------------------

def run(models, *, backends, select=None, out_dir=Path("reports"), workers=1, inputs=None,
        baseline=None, verbose=False, cases=None) -> int:
    """Certify, write the reports, compare with the baseline; 0 when every record met its expectation
    and nothing regressed. `cases` replaces the reference suite (tests)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.text import Text

    from harness import baseline as gate
    from harness import report
    console = Console(stderr=True)
    _quiet()
    start = time.time()
    out_dir = Path(out_dir)
    artifacts = out_dir / "artifacts"
    columns = (TextColumn("{task.description:<60}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    filters: list[str] = []
    with Progress(*columns, console=console, transient=False) as progress:
        if models:
            paths = list(dict.fromkeys(Path(m) for m in models))
            records, env = _models(paths, backends, inputs, progress, artifacts)
            expected, omitted = None, []
            filters = [f"model files ({len(paths)})"]
        else:
            if cases is None:
                from harness.catalogue import CASES as cases
            variants = _variants(cases, select)
            if not variants:
                raise SystemExit(f"tfjs-certify: no case matches -k {select!r}")
            records, env = _suite(variants, backends, workers, progress, artifacts, console)
            expected = [(c, fl, fm, b) for c, fl, fm in variants for b in backends]
            chosen = list({c.name: c for c, _, _ in variants}.values())
            omitted = certify.omissions(chosen)
            filters = ([f"-k {select}"] if select else []) + (
                [f"--backend {','.join(backends)}"] if set(backends) != set(certify.BACKENDS) else [])
    command = "tfjs-certify certify " + " ".join(sys.argv[2:])
    data = certify.build_report(records, env, duration_s=time.time() - start, command=command.strip(),
                                filters=filters, expected=expected, omitted=omitted)
    paths = report.write_reports(data, out_dir)
    console.print(report.summary_table(data))
    console.print(f"reports: {', '.join(str(p) for p in paths.values())}")
    status = 0 if data["summary"]["not_ok"] == 0 else 1
    for r in data["records"]:
        if not r["ok"]:  # Text, not markup: ids hold brackets (`Dense[units=4]`)
            console.print(Text.assemble(("not ok ", "red"), f"{r['id']}: {r['outcome']}: {(r['message'] or '')[:200]}"))
    if not models and baseline is not None and Path(baseline).exists():
        diff = gate.compare(report.load(baseline), data,
                            only_ids={r["id"] for r in data["records"]} if data["run"]["partial"] else None)
        print(gate.render_diff(diff, terminal=sys.stdout.isatty()))
        if diff.regressions:
            console.print(f"[red]regression against {baseline}[/red]")
            status = 1
    summary = data["summary"]
    console.print(f"{summary['ok']} of {summary['records']} records met their expectation; {summary['not_ok']} did "
                  f"not. Done in {time.time() - start:.1f} s", highlight=False)
    return status
