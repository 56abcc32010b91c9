"""`tfjs-certify certify`: the reference suite or a user's own model files, with progress and a summary.

The same pipeline as pytest, run outside pytest: optionally in parallel worker processes (one browser
each), then `results.finish` writes the reports and runs the gate. One variant or one model file never
stops the run: whatever fails becomes the outcome of its records, and a variant a dead worker never
certified becomes a `missing` record.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.pipeline import certify, reference, tolerance, user
from harness.pipeline import shard as sharding
from harness.pipeline.environment import environment, merge_environments
from harness.pipeline.keyword import compile_expression
from harness.results.record import Record
from harness.suite.case import Variant
from harness.suite.sample import backends_for, sample
from harness.vocabulary import BACKENDS, DEFAULT_BACKENDS

TIMEOUT_S = 120.0
PROGRESS_INTERVAL_S = 30.0  # how often a run whose output is no terminal (CI, a log file) says how far it is


def select_variants(cases, select: str | None) -> list[Variant]:
    """The variants whose id `-k select` matches, with pytest's grammar (harness.pipeline.keyword)."""
    match = compile_expression(select or "")
    return [v for case in cases for v in case.variants() if match(v.id)]


def quiet():
    """Keras and TensorFlow chatter (retracing, input-structure warnings) is not the user's business."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)


def certify_variants(
    session, variants, backends: dict[str, list[str]], workdir: Path, artifacts: Path, progress=None, task=None
) -> list[Record]:
    """Certify suite variants with one browser (expected rejections need none); `backends`: each variant's, by
    id (harness.suite.sample.backends_for)."""
    records = []
    for v in variants:
        if progress is not None:
            progress.update(task, description=v.id[:60])
        records += certify.certify_variant(
            session if v.case.tier != "reject" else None, v, backends[v.id], workdir, artifacts
        )
        if progress is not None:
            progress.advance(task)
    return records


@dataclasses.dataclass
class _Task:
    description: str
    total: int
    start: float
    done: int = 0
    said_at: float = 0.0
    said: int | None = None


class PlainProgress:
    """Progress for output that is no terminal (CI, a log file), where rich's live bar draws nothing: a plain
    line every `interval_s` seconds, and one at the end. It takes the calls rich's `Progress` takes."""

    def __init__(self, write, interval_s: float = PROGRESS_INTERVAL_S, clock=time.monotonic):
        self.write, self.interval_s, self.clock = write, interval_s, clock
        self.tasks: list[_Task] = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for task in self.tasks:
            if task.said != task.done:
                self._say(task)

    def add_task(self, description: str, total: int) -> int:
        now = self.clock()
        self.tasks.append(_Task(description, total, start=now, said_at=now))
        return len(self.tasks) - 1

    def update(self, task: int, description: str | None = None) -> None:
        pass  # the item being certified: a live bar shows it, in a log it would be one line per item

    def advance(self, task: int, n: int = 1) -> None:
        t = self.tasks[task]
        t.done += n
        if self.clock() - t.said_at >= self.interval_s:
            self._say(t)

    def _say(self, t: _Task) -> None:
        now = self.clock()
        t.said_at, t.said = now, t.done
        elapsed = now - t.start
        line = f"{t.description}: {t.done}/{t.total} ({t.done / max(t.total, 1):.0%}) in {elapsed:.0f} s"
        if 0 < t.done < t.total:
            line += f", about {elapsed / t.done * (t.total - t.done):.0f} s left"
        self.write(line)


# --- worker processes (-j N) -------------------------------------------------------------------------

_WORKER: dict = {}


def _start_worker(backends, artifacts, cache):
    """A worker process's own browser, reused by every chunk it certifies."""
    import atexit

    from js_runner import BrowserSession

    quiet()
    reference.set_cache_dir(cache)
    session = BrowserSession(backends=tuple(backends), timeout_s=TIMEOUT_S)
    atexit.register(session.close)
    _WORKER.update(
        session=session,
        backends=backends,
        artifacts=Path(artifacts),
        tmp=tempfile.TemporaryDirectory(prefix="tfjs-certify-"),
    )


def _work(chunk: dict[str, list[str]]) -> tuple[list[dict], dict]:
    """Certify some suite variants, given by id with their backends, in a worker process."""
    from harness.suite import CASES

    by_id = {v.id: v for c in CASES for v in c.variants()}
    session = _WORKER["session"]
    records = certify_variants(
        session, [by_id[i] for i in chunk], chunk, Path(_WORKER["tmp"].name), _WORKER["artifacts"]
    )
    return [r.to_json() for r in records], environment(session)


def run_suite(
    variants, plan: dict[str, list[str]], workers, progress, artifacts: Path, console
) -> tuple[list[Record], dict]:
    """Certify `variants`, each on its backends in `plan` (by id), in one browser or in worker processes."""
    # Chunks of 8 variants: small, so progress moves; no more workers than chunks (each starts TensorFlow and a
    # browser of its own).
    workers = min(workers, -(-len(variants) // 8))
    backends = [b for b in BACKENDS if any(b in bs for bs in plan.values())]
    if workers <= 1:  # one browser, progress per variant
        from js_runner import BrowserSession

        with (
            BrowserSession(backends=tuple(backends), timeout_s=TIMEOUT_S) as session,
            tempfile.TemporaryDirectory(prefix="tfjs-certify-") as tmp,
        ):
            task = progress.add_task("certifying", total=len(variants))
            records = certify_variants(session, variants, plan, Path(tmp), artifacts, progress, task)
            return records, environment(session)
    ids = [v.id for v in variants]
    chunks = [{i: plan[i] for i in ids[k : k + 8]} for k in range(0, len(ids), 8)]
    collected: list[Record] = []
    envs = []
    with concurrent.futures.ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(backends, str(artifacts), str(reference.cache_dir())),
    ) as pool:
        task = progress.add_task(f"certifying in {workers} workers", total=len(variants))
        futures = {pool.submit(_work, chunk): chunk for chunk in chunks}
        for future in concurrent.futures.as_completed(futures):
            try:
                recs, env = future.result()
            except Exception as e:  # a dead worker: its variants become `missing` records
                console.print(
                    f"a worker failed on {len(futures[future])} variant(s): {reference.one_line(e)}",
                    style="red",
                    markup=False,
                )
                recs, env = [], {}
            collected += [Record.from_json(r) for r in recs]
            envs.append(env)
            progress.advance(task, len(futures[future]))
    return collected, merge_environments(envs)


def run_files(paths, names, backends, inputs, progress, artifacts: Path, code=None) -> tuple[list[Record], dict]:
    from js_runner import BrowserSession

    records = []
    with (
        BrowserSession(backends=tuple(backends), timeout_s=TIMEOUT_S) as session,
        tempfile.TemporaryDirectory(prefix="tfjs-certify-") as tmp,
    ):
        task = progress.add_task("certifying", total=len(paths))
        for path, name in zip(paths, names):
            progress.update(task, description=str(path)[:60])
            records += user.certify_file(session, path, name, backends, inputs, Path(tmp), artifacts, code)
            progress.advance(task)
        return records, environment(session)


# --- the command --------------------------------------------------------------------------------------


def run(
    models,
    *,
    backends=None,
    select=None,
    out_dir=Path("reports"),
    workers=1,
    inputs=None,
    baseline=None,
    update_baseline=False,
    cases=None,
    shard: sharding.Shard | None = None,
    progress_interval_s: float = PROGRESS_INTERVAL_S,
    code: user.custom.UserCode | None = None,
) -> int:
    """Certify, write the reports, compare with the baseline; 0 when every record met its expectation
    and nothing regressed. `backends`: the backends named (None: the default, DEFAULT_BACKENDS for model files;
    for the suite, those and the sampled backends on the suite's sample, harness.suite.sample). `cases` replaces
    the reference suite (tests); `shard` certifies one shard of the selection (harness.pipeline.shard); `code`:
    the user's own code for their model files (custom layers' Python and JavaScript, the companion module).
    Progress is a live bar on a terminal, else a line every `progress_interval_s` seconds."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.text import Text

    from harness.results.compat import omissions
    from harness.results.finish import finish
    from harness.results.render import summary_table
    from js_runner import browser, install

    browser.find_chromium()  # a missing Chromium or TF.js is one line (install.Missing), before any worker starts
    install.find()
    console = Console(stderr=True)
    quiet()
    start = time.time()
    out_dir = Path(out_dir)
    artifacts = out_dir / "artifacts"
    columns = (TextColumn("{task.description:<60}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    progress: Any = (
        Progress(*columns, console=console, transient=False)
        if console.is_terminal
        else PlainProgress(lambda line: console.print(line, markup=False, highlight=False), progress_interval_s)
    )
    with progress:
        info = None
        if models:
            backends = list(backends or DEFAULT_BACKENDS)
            paths = list(dict.fromkeys(Path(m) for m in models))
            names = dict(zip(paths, user.case_names(paths)))  # from every file, so a shard names them alike
            mine = sharding.select_files(paths, shard)
            if shard is not None:
                info = sharding.shard_info(shard, names.values(), len(paths) * len(backends))
            records, env = run_files(mine, [names[p] for p in mine], backends, inputs, progress, artifacts, code)
            expected, omitted, filters = None, [], [f"model files ({len(paths)})"]
            baseline = None  # the baseline is the reference suite's
        else:
            if cases is None:
                from harness.suite import CASES as cases
            variants = select_variants(cases, select)
            sampled = sample(cases)
            named = backends is not None
            plan = {v.id: backends_for(v, backends or BACKENDS, sampled, named) for v in variants}
            if shard is not None:
                info = sharding.shard_info(shard, [v.id for v in variants], sum(len(b) for b in plan.values()))
                variants = sharding.select_variants(variants, shard)
            records, env = run_suite(variants, plan, workers, progress, artifacts, console)
            chosen = list({v.case.name: v.case for v in variants}.values())
            expected = [(v, b) for v in variants for b in plan[v.id]]
            omitted = omissions(chosen)
            filters = ([f"-k {select}"] if select else []) + ([f"--backend {','.join(backends)}"] if named else [])
        if shard is not None:
            filters.append(f"--shard {shard}")
    command = ("tfjs-certify certify " + " ".join(sys.argv[2:])).strip()
    status, data = finish(
        records,
        env,
        tolerances=tolerance.policy_json(env),
        command=command,
        duration_s=time.time() - start,
        out_dir=out_dir,
        filters=filters,
        expected=expected,
        omitted=omitted,
        baseline=baseline,
        update_baseline=update_baseline,
        write=print,
        shard=info,
    )
    if data is not None:
        console.print(summary_table(data))
        for r in data["records"]:
            if not r.ok:  # Text, not markup: ids hold brackets (`Dense[units=4]`)
                div = r.first_divergence
                where = f" (first diverging layer: {div.layer} ({div.class_name}))" if div and div.class_name else ""
                console.print(
                    Text.assemble(("not ok ", "red"), f"{r.id}: {r.outcome}{where}: {(r.message or '')[:200]}")
                )
    console.print(f"done in {time.time() - start:.1f} s", highlight=False)
    return status
