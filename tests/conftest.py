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
import sys
import time
from pathlib import Path

import pytest

import harness  # noqa: F401  (sets up TensorFlow, harness.tf_policy, before any test imports it)

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports"
BACKENDS = ("cpu", "wasm", "webgl")
RECORDS = pytest.StashKey[list]()
_run: dict = {"records": [], "envs": [], "selected": None, "config": None}
_started = time.time()


def pytest_addoption(parser):
    group = parser.getgroup("tfjs-certify")
    group.addoption("--backend", action="append", default=None, metavar="NAME[,NAME]",
                    help="certify on these TF.js backends only (default: cpu,wasm,webgl)")
    group.addoption("--baseline", default=str(REPORTS / "baseline.json"),
                    help="the baseline the run is compared with (default: reports/baseline.json)")
    group.addoption("--reports", default=str(REPORTS), help="where compat.json/md/html (and artifacts/) go")


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


def pytest_collection_modifyitems(config, items):
    backends = set(selected_backends(config))
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("backend") if callspec else None
        (drop if backend is not None and backend not in backends else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


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
        from harness.certify import environment
        report.tfjs_records = json.dumps(item.stash[RECORDS])
        report.tfjs_env = json.dumps(environment(_run.get("browser")))


def pytest_runtest_logreport(report):
    config = _run["config"]
    if config is None or _is_worker(config) or not hasattr(report, "tfjs_records"):
        return
    _run["records"].extend(json.loads(report.tfjs_records))
    _run["envs"].append(json.loads(report.tfjs_env))


def pytest_sessionfinish(session, exitstatus):
    if _is_worker(session.config) or session.config.option.collectonly or exitstatus == pytest.ExitCode.USAGE_ERROR:
        return
    expected, filters, cases = _selection(session.config)
    if not expected and not _run["records"]:
        return  # no certification test was selected: no report
    _finish(session, expected, filters, cases)


def _selection(config):
    """(expected records, filters, selected cases) from the selected certification tests."""
    from harness.catalogue import CASES
    from harness.certify import certification_params, expected_variants
    backends = selected_backends(config)
    params = {f"tests/test_certify.py::test_certify[{tid}]": (case, fl, fm, b)
              for tid, case, fl, fm, b in certification_params(CASES)}
    chosen = [params[n] for n in _run["selected"] or [] if n in params]
    expected = [(case, fl, fm, b) for case, fl, fm, b0 in chosen for b in ([b0] if b0 else backends)]
    everything = expected_variants(CASES, BACKENDS)
    filters = []
    if len({(c.name, fl, fm, b) for c, fl, fm, b in expected}) < len(everything):
        opt = config.option
        if getattr(opt, "keyword", ""):
            filters.append(f"-k {opt.keyword}")
        if getattr(opt, "markexpr", ""):
            filters.append(f"-m {opt.markexpr}")
        if config.getoption("--backend"):
            filters.append(f"--backend {','.join(backends)}")
        filters = filters or [f"a selection of tests ({' '.join(config.args)})"]
    cases = list({id(c): c for c, *_ in expected}.values())
    return expected, filters, cases


def _finish(session, expected, filters, cases):
    from harness import baseline, report
    from harness.certify import build_report, merge_environments, omissions
    config = session.config
    command = "pytest " + " ".join(shlex.quote(a) for a in config.invocation_params.args)
    from harness.certify import environment
    env = merge_environments(_run["envs"]) or environment(None)
    data = build_report(_run["records"], env, duration_s=time.time() - _started,
                        command=command, filters=filters, expected=expected, omitted=omissions(cases))
    tr = config.pluginmanager.get_plugin("terminalreporter")
    write = (lambda s: tr.write_line(s)) if tr else print
    try:
        paths = report.write_reports(data, config.getoption("--reports"))
    except Exception as e:  # a report that does not validate is a failure of the run
        write(f"tfjs-certify: could not write the reports: {e}")
        session.exitstatus = 1
        return
    summary = data["summary"]
    write(f"tfjs-certify: {summary['line']}")
    missing = summary["by_outcome"].get("missing", 0)
    write(f"tfjs-certify: {summary['ok']} of {summary['records']} records met their expectation; "
          f"{summary['not_ok']} did not" + (f" ({missing} selected but left no record)" if missing else ""))
    write(f"tfjs-certify: wrote {', '.join(str(p) for p in paths.values())}")
    if summary["not_ok"]:
        session.exitstatus = 1
    base_path = Path(config.getoption("--baseline"))
    if not base_path.exists():
        write(f"tfjs-certify: no baseline at {base_path}; nothing to compare")
        return
    try:
        base = report.load(base_path)
    except report.ReportError as e:
        write(f"tfjs-certify: the baseline is unusable: {e}")
        session.exitstatus = 1
        return
    diff = baseline.compare(base, data, only_ids={r["id"] for r in data["records"]} if data["run"]["partial"]
                            else None)
    write(baseline.render_diff(diff, terminal=sys.stdout.isatty()))
    if diff.regressions:
        write(f"tfjs-certify: REGRESSION against {base_path}: {len(diff.regressions)} regression(s); "
              f"see above (update deliberately with `python -m harness compare {base_path} "
              f"reports/compat.json --update-baseline`)")
        session.exitstatus = 1
