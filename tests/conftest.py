"""pytest plugin: one browser per session, and reports/compat.json written by every certification run.

Certification tests hand their records to `records`; under pytest-xdist each worker ships its records
to the controller (`workeroutput`), which writes the reports and runs the regression gate against
reports/baseline.json, so a converter change that breaks a model fails the run.
"""
from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports"
BACKENDS = ("cpu", "wasm", "webgl")
_records: list[dict] = []
_env: dict = {}
_started = time.time()


def pytest_addoption(parser):
    group = parser.getgroup("tfjs-certify")
    group.addoption("--backend", action="append", default=None, metavar="NAME[,NAME]",
                    help="certify on these TF.js backends only (default: cpu,wasm,webgl)")
    group.addoption("--baseline", default=str(REPORTS / "baseline.json"),
                    help="the baseline the run is compared with (default: reports/baseline.json)")
    group.addoption("--reports", default=str(REPORTS), help="where compat.json/md/html go")


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


@pytest.fixture(scope="session")
def browser(request):
    """One headless Chromium for the whole session (per xdist worker)."""
    from harness.certify import environment
    from js_runner import BrowserSession
    session = BrowserSession(backends=tuple(selected_backends(request.config)), timeout_s=120.0)
    _env.update(environment(session))
    yield session
    session.close()


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("converted")


@pytest.fixture
def records():
    """Certification tests append their compat.json records here."""
    return _records


def pytest_sessionfinish(session, exitstatus):
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: ship records to the controller
        workeroutput["tfjs_records"] = json.dumps(_records)
        workeroutput["tfjs_env"] = json.dumps(_env)
        return
    if not _records:
        return
    _finish(session)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    out = getattr(node, "workeroutput", {}) or {}
    _records.extend(json.loads(out.get("tfjs_records", "[]")))
    env = json.loads(out.get("tfjs_env", "{}"))
    if env and not _env:
        _env.update(env)


def _all_record_ids() -> set[str]:
    """The id of every record a full run produces (an expected rejection gives one per backend)."""
    from harness.case import FORMATS
    from harness.catalogue import CASES
    return {f"{c.name}-{fl}-{fm}-{b}" for c in CASES for fl in c.flavours for fm in FORMATS[fl] for b in BACKENDS}


def _finish(session):
    from harness import baseline, report
    from harness.certify import build_report
    config = session.config
    # Complete when every case ran on every backend (counted from the records, which also holds under
    # pytest-xdist, where the controller collects nothing).
    complete = _all_record_ids() <= {r["id"] for r in _records}
    command = "pytest " + " ".join(shlex.quote(a) for a in config.invocation_params.args)
    data = build_report(_records, _env, duration_s=time.time() - _started, complete=complete, command=command)
    tr = config.pluginmanager.get_plugin("terminalreporter")
    write = (lambda s: tr.write_line(s)) if tr else print
    try:
        paths = report.write_reports(data, config.getoption("--reports"))
    except Exception as e:  # a report that does not validate is a failure of the run
        write(f"tfjs-certify: could not write the reports: {e}")
        session.exitstatus = 1
        return
    write(f"tfjs-certify: {data['summary']['line']}")
    write(f"tfjs-certify: wrote {', '.join(str(p) for p in paths.values())}")
    base_path = Path(config.getoption("--baseline"))
    if not base_path.exists():
        write(f"tfjs-certify: no baseline at {base_path}; nothing to compare")
        return
    base = json.loads(base_path.read_text())
    diff = baseline.compare(base, data, only_ids=None if complete else {r["id"] for r in _records})
    write(baseline.format_diff(diff))
    if diff.regressions:
        write(f"tfjs-certify: REGRESSION against {base_path}: {len(diff.regressions)} regression(s); "
              f"see above (update deliberately with `python -m harness compare {base_path} "
              f"reports/compat.json --update-baseline`)")
        session.exitstatus = 1
