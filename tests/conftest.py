"""pytest plugin: one browser per session, every certification record collected, then reports and the gate.

Certification tests attach their compat.json records to their own test report (`tfjs_records`), which
pytest-xdist ships to the controller as each test ends: a worker that crashes loses nothing it already
certified. The controller knows what was selected (its own collection, or the workers' under xdist); a
selected record that never arrives becomes a `missing` record, not ok, which the report counts and the
regression gate against reports/baseline.json fails on.
"""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import pytest

import harness  # noqa: F401  (sets up TensorFlow, harness.tf_policy, before any test imports it)

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports"
BACKENDS = ("cpu", "wasm", "webgl")
RECORDS = pytest.StashKey[list]()
SHARD = pytest.StashKey[dict]()
_run: dict = {"records": [], "envs": [], "selected": None, "config": None, "shard": None}
_started = time.time()


def pytest_addoption(parser):
    group = parser.getgroup("tfjs-certify")
    group.addoption(
        "--backend",
        action="append",
        default=None,
        metavar="NAME[,NAME]",
        help="certify on these TF.js backends only (default: cpu,wasm,webgl)",
    )
    group.addoption(
        "--baseline",
        default=str(REPORTS / "baseline.json"),
        help="the baseline the run is compared with (default: reports/baseline.json)",
    )
    group.addoption("--reports", default=str(REPORTS), help="where compat.json/md/html (and artifacts/) go")
    group.addoption(
        "--shard",
        default=None,
        metavar="I/N",
        help="run shard I of N of the certification tests (a case's backends stay together; balanced by "
        "reports/costs.json) and, in shard 1 only, the other tests; join the shards' compat.json with "
        "`tfjs-certify merge`",
    )
    group.addoption(
        "--timings",
        action="store_true",
        help="also time 5 predictions per app record (the report's predict median; `tfjs-certify certify` always does)",
    )
    group.addoption(
        "--update-baseline",
        action="store_true",
        help="after a full run, rewrite the baseline from its results instead of gating on it",
    )


def pytest_configure(config):
    _run["config"] = config


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


def selected_backends(config) -> list[str]:
    values = config.getoption("--backend") or []
    names = [n.strip() for v in values for n in v.split(",") if n.strip()] or list(BACKENDS)
    unknown = [n for n in names if n not in BACKENDS]
    if unknown:
        raise pytest.UsageError(f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(BACKENDS)}")
    return names


def _shard(config):
    from harness.pipeline.shard import Shard

    text = config.getoption("--shard")
    if text is None:
        return None
    try:
        return Shard.parse(text)
    except ValueError as e:
        raise pytest.UsageError(str(e)) from None


def _variant(item):
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("variant") if callspec else None


@pytest.hookimpl(trylast=True)  # after -k and -m: a shard is a part of what they selected
def pytest_collection_modifyitems(config, items):
    backends = set(selected_backends(config))
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("backend") if callspec and "variant" in callspec.params else None
        (drop if backend is not None and backend not in backends else keep).append(item)
    shard = _shard(config)
    if shard is not None:
        from harness.pipeline import shard as sharding

        variants = list({v.id: v for v in map(_variant, keep) if v is not None}.values())
        mine = {v.id for v in sharding.select_variants(variants, shard)}
        n_records = sum(1 if item.callspec.params["backend"] else len(backends) for item in keep if _variant(item))
        config.stash[SHARD] = sharding.shard_info(shard, [v.id for v in variants], n_records)
        kept = []
        for item in keep:
            v = _variant(item)
            ours = v.id in mine if v is not None else shard.index == 1  # other tests: shard 1 runs them
            (kept if ours else drop).append(item)
        keep = kept
    if drop:
        config.hook.pytest_deselected(items=drop)
    # Longest first (runs nested in a subprocess, then apps): pytest-xdist then fits the many short tests
    # around them, instead of leaving one worker alone with a 40-second test at the end.
    items[:] = sorted(keep, key=lambda it: (not it.get_closest_marker("slow"), bool(it.get_closest_marker("certify"))))


def pytest_collection_finish(session):
    if not _is_worker(session.config):  # without xdist, the selection is this process's own
        _run["selected"] = [item.nodeid for item in session.items]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids):
    if _run["selected"] is None:  # every worker collects the same tests
        _run["selected"] = list(ids)


@pytest.fixture(scope="session")
def browser(request):
    """One headless Chromium for the whole session (per xdist worker)."""
    from js_runner import BrowserSession

    session = BrowserSession(backends=tuple(selected_backends(request.config)), timeout_s=120.0)
    _run["browser"] = session
    yield session
    _run["browser"] = None
    session.close()


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("converted")


@pytest.fixture(scope="session")
def artifacts(request) -> Path:
    """Where a failing case keeps its model, converted directory, inputs and outputs."""
    return Path(request.config.getoption("--reports")) / "artifacts"


@pytest.fixture
def records(request):
    """Certification tests append their compat.json records here; they travel with the test's report."""
    return request.node.stash.setdefault(RECORDS, [])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if call.when == "call" and RECORDS in item.stash:
        from harness.pipeline.environment import environment

        report.tfjs_records = json.dumps([r.to_json() for r in item.stash[RECORDS]])
        report.tfjs_env = json.dumps(environment(_run.get("browser")))
        if SHARD in item.config.stash:
            report.tfjs_shard = json.dumps(item.config.stash[SHARD])


def pytest_runtest_logreport(report):
    config = _run["config"]
    if config is None or _is_worker(config) or not hasattr(report, "tfjs_records"):
        return
    _run["records"].extend(json.loads(report.tfjs_records))
    _run["envs"].append(json.loads(report.tfjs_env))
    if hasattr(report, "tfjs_shard"):
        _run["shard"] = json.loads(report.tfjs_shard)


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if _is_worker(config) or config.option.collectonly or exitstatus == pytest.ExitCode.USAGE_ERROR:
        return
    expected, filters, cases = _selection(config)
    if not expected and not _run["records"]:
        return  # no certification test was selected: no report
    from harness.pipeline import tolerance
    from harness.pipeline.environment import merge_environments
    from harness.results.compat import omissions
    from harness.results.finish import finish
    from harness.results.record import Record

    tr = config.pluginmanager.get_plugin("terminalreporter")
    command = "pytest " + " ".join(shlex.quote(a) for a in config.invocation_params.args)
    env = merge_environments(_run["envs"])
    status, _ = finish(
        [Record.from_json(r) for r in _run["records"]],
        env,
        tolerances=tolerance.policy_json(env),
        command=command,
        duration_s=time.time() - _started,
        out_dir=config.getoption("--reports"),
        filters=filters,
        expected=expected,
        omitted=omissions(cases),
        baseline=Path(config.getoption("--baseline")),
        update_baseline=config.getoption("--update-baseline"),
        write=(lambda line: tr.write_line(line)) if tr else print,
        shard=_run["shard"] or config.stash.get(SHARD, None),
    )
    if status:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _selection(config):
    """(expected (variant, backend) pairs, filters, selected cases) from the selected certification tests."""
    from harness.suite import CASES
    from harness.suite.case import certification_params, expand

    backends = selected_backends(config)
    params = {
        f"tests/test_certify.py::test_certify[{tid}]": (v, b) for tid, v, b in certification_params(CASES, BACKENDS)
    }
    chosen = [params[n] for n in _run["selected"] or [] if n in params]
    expected = [(v, b) for v, b0 in chosen for b in ([b0] if b0 else backends)]
    filters = []
    if len(expected) < len(expand(CASES, BACKENDS)):
        opt = config.option
        if getattr(opt, "keyword", ""):
            filters.append(f"-k {opt.keyword}")
        if getattr(opt, "markexpr", ""):
            filters.append(f"-m {opt.markexpr}")
        if config.getoption("--backend"):
            filters.append(f"--backend {','.join(backends)}")
        if config.getoption("--shard"):
            filters.append(f"--shard {config.getoption('--shard')}")
        filters = filters or [f"a selection of tests ({' '.join(config.args)})"]
    cases = list({v.case.name: v.case for v, _ in expected}.values())
    return expected, filters, cases
