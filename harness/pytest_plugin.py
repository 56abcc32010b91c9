"""The pytest plugin `tfjs_certify`: certify Keras models in TF.js from a project's own tests.

    def test_classifier_in_tfjs(tfjs_certify):
        result = tfjs_certify("models/classifier.keras", inputs="models/sample.npz", backends=["cpu", "wasm"])
        assert result.ok, result.summary

Installed with the package (a `pytest11` entry point), it gives every test session one headless Chromium per
process (per pytest-xdist worker), reused by every test; the `tfjs_certify` fixture converts a model file (or
an in-memory Keras model), runs it there on each backend and compares it with Keras, as
`tfjs-certify certify` does. Each test's records travel with its test report to the controller, so a worker
that crashes loses nothing it already certified; at the end of the session the controller writes
compat.json, compat.md and compat.html (`--tfjs-reports`), then gates the run against a baseline of the
project's choosing (`--tfjs-baseline`; `--tfjs-update-baseline` rewrites it from a full run).

The repository's own suite (tests/conftest.py) runs through this plugin too: it parametrizes tests by suite
variant and answers `pytest_tfjs_certify_selection`, which tells the plugin which records the run selected, so
that a selected record that never arrives becomes a `missing` one.

The plugin imports nothing heavy until a test asks for it: a session that certifies nothing writes nothing.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import shlex
import time
from pathlib import Path
from typing import Any

import pytest

BACKENDS = ("cpu", "wasm", "webgl", "webgpu")  # harness.vocabulary.BACKENDS, without importing the harness
DEFAULT_BACKENDS = "cpu,wasm,webgl"  # harness.vocabulary.DEFAULT_BACKENDS
RECORDS = pytest.StashKey[list]()  # a test's records, on its item
SHARD = pytest.StashKey[dict]()  # which shard of a split run this is (harness.pipeline.shard.shard_info)
STATE = pytest.StashKey["_Session"]()
DEFAULT_REPORTS = "tfjs-reports"


@dataclasses.dataclass
class Selection:
    """What a run selected, as a suite's `pytest_tfjs_certify_selection` tells it."""

    expected: list | None  # the (Variant, backend) pairs selected, each without a record `missing`; None: unknown
    filters: list[str]  # what narrowed the selection (none: a full run)
    omitted: list = dataclasses.field(default_factory=list)  # variants left out on purpose, with reasons


class Hooks:
    @pytest.hookspec(firstresult=True)
    def pytest_tfjs_certify_selection(self, config: pytest.Config, nodeids: list[str]) -> Selection | None:
        """The records the run selected, from the selected tests' node ids (the controller's view under
        pytest-xdist); None when the run is no suite's (then records are reported as they come)."""


def pytest_addhooks(pluginmanager):
    pluginmanager.add_hookspecs(Hooks)


def pytest_addoption(parser):
    group = parser.getgroup("tfjs-certify", "tfjs-certify: Keras models certified in TF.js")
    group.addoption(
        "--tfjs-backend",
        action="append",
        dest="tfjs_backend",
        default=None,
        metavar="NAME[,NAME]",
        help="certify on these TF.js backends, of cpu, wasm, webgl, webgpu (default: ini tfjs_backends, else "
        f"{DEFAULT_BACKENDS})",
    )
    group.addoption(
        "--tfjs-reports",
        dest="tfjs_reports",
        default=None,
        metavar="DIR",
        help=f"where compat.json/md/html (and artifacts/ of failing models) go (default: ini tfjs_reports, else "
        f"{DEFAULT_REPORTS}/ under the rootdir)",
    )
    group.addoption(
        "--tfjs-baseline",
        dest="tfjs_baseline",
        default=None,
        metavar="FILE",
        help="compare the run's records with this baseline and fail on a regression (default: ini tfjs_baseline)",
    )
    group.addoption(
        "--tfjs-update-baseline",
        dest="tfjs_update_baseline",
        action="store_true",
        help="after a full run, rewrite the baseline from its results instead of gating on it",
    )
    parser.addini("tfjs_reports", "where tfjs-certify writes its reports (relative to the rootdir)", default=None)
    parser.addini(
        "tfjs_backends", "the TF.js backends a run certifies on unless --tfjs-backend names some", default=None
    )
    parser.addini("tfjs_baseline", "the baseline tfjs-certify gates on (relative to the rootdir)", default=None)


def pytest_configure(config):
    selected_backends(config)  # a wrong --tfjs-backend is a usage error before anything runs
    if config.getoption("tfjs_update_baseline") and baseline_path(config) is None:
        raise pytest.UsageError("--tfjs-update-baseline: give the baseline with --tfjs-baseline FILE")
    config.stash[STATE] = session = _Session(config)
    config.pluginmanager.register(session, "tfjs_certify-session")


def named_backends(config) -> bool:
    """Whether the run named its backends (--tfjs-backend), rather than taking the default."""
    return bool(config.getoption("tfjs_backend"))


def selected_backends(config) -> list[str]:
    values = config.getoption("tfjs_backend") or [config.getini("tfjs_backends") or DEFAULT_BACKENDS]
    names = [n.strip() for v in values for n in v.split(",") if n.strip()] or DEFAULT_BACKENDS.split(",")
    unknown = [n for n in names if n not in BACKENDS]
    if unknown:
        raise pytest.UsageError(f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(BACKENDS)}")
    return list(dict.fromkeys(names))


def _path_option(config, option: str, ini: str, default: str | None) -> Path | None:
    value = config.getoption(option) or config.getini(ini) or default
    if not value:
        return None
    path = Path(value)
    if config.getoption(option):  # a command-line path is the shell's, an ini path the rootdir's
        return path if path.is_absolute() else Path(config.invocation_params.dir) / path
    return path if path.is_absolute() else config.rootpath / path


def reports_dir(config) -> Path:
    path = _path_option(config, "tfjs_reports", "tfjs_reports", DEFAULT_REPORTS)
    assert path is not None
    return path


def baseline_path(config) -> Path | None:
    return _path_option(config, "tfjs_baseline", "tfjs_baseline", None)


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


# --- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tfjs_browser(request):
    """One headless Chromium with TF.js on the selected backends, for the whole session (per xdist worker).
    A missing Chromium or TF.js fails the tests that need it, in one line naming the command that fixes it."""
    from js_runner import BrowserSession
    from js_runner.install import Missing

    try:
        browser = BrowserSession(backends=tuple(selected_backends(request.config)), timeout_s=120.0)
    except Missing as e:
        pytest.fail(f"tfjs-certify: {e}", pytrace=False)
    state = request.config.stash[STATE]
    state.browser = browser
    yield browser
    state.browser = None
    browser.close()


@pytest.fixture(scope="session")
def tfjs_workdir(tmp_path_factory) -> Path:
    """Where models are converted."""
    return tmp_path_factory.mktemp("tfjs-converted")


@pytest.fixture(scope="session")
def tfjs_artifacts(request) -> Path:
    """Where a failing model keeps its file, converted directory, inputs and outputs."""
    return reports_dir(request.config) / "artifacts"


@pytest.fixture
def tfjs_records(request) -> list:
    """A test's compat.json records: certifying appends to it, and they travel with the test's report."""
    return request.node.stash.setdefault(RECORDS, [])


@dataclasses.dataclass
class Certification:
    """What `tfjs_certify` found: one record per backend."""

    records: list

    @property
    def ok(self) -> bool:
        """Every backend computes what Keras computes, within the backend's tolerance."""
        return bool(self.records) and all(r.ok for r in self.records)

    @property
    def max_abs(self) -> dict[str, float | None]:
        """The largest |TF.js - Keras| over the outputs, per backend (None: nothing was compared)."""
        return {r.backend: r.max_abs for r in self.records}

    @property
    def summary(self) -> str:
        """One line per backend, and for a failure what went wrong: readable as an assertion message."""
        lines = []
        for r in self.records:
            error = "" if r.max_abs is None else f", max_abs {r.max_abs:.2e} (atol {r.tolerance.atol:.0e})"
            lines.append(f"{r.id}: {r.outcome}{error}")
            if not r.ok:
                lines += [f"  {line}" for line in _explain(r)]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Certification(ok={self.ok}, {', '.join(f'{r.backend}: {r.outcome}' for r in self.records)})"


def _explain(record) -> list[str]:
    lines = [record.message] if record.message else []
    for m in record.metrics:
        lines.append(f"{m.output}: max_abs={m.max_abs} max_rel={m.max_rel} mismatches={m.mismatches}/{m.size}")
    div = record.first_divergence
    if div:
        lines.append(f"first diverging layer: {div.layer} ({div.class_name}) max_abs={div.max_abs}")
    lines += [f"{i.layer} ({i.class_name}) {i.argument}: {i.code}: {i.reason}" for i in record.reason_codes]
    return lines


@pytest.fixture
def tfjs_certify(request, tfjs_records, tfjs_workdir, tfjs_artifacts, tmp_path):
    """`tfjs_certify(model, inputs=None, *, backends=None, name=None) -> Certification`.

    `model`: a .keras or .h5 file (relative paths are the rootdir's), or an in-memory Keras model.
    `inputs`: a .npz file (arrays by input name or in order), a dict or list of arrays, or None: a
    `<model>.npz` beside the file, else seeded inputs shaped like the model's.
    `backends`: a subset of cpu, wasm, webgl (default: those of the run, `--tfjs-backend`).
    `name`: the records' name in the reports (default: the file's path from the rootdir, or the model's name).
    """
    config = request.config

    def certify(model: Any, inputs: Any = None, *, backends=None, name: str | None = None) -> Certification:
        from harness.pipeline import user

        run_backends = selected_backends(config)
        wanted = [backends] if isinstance(backends, str) else list(backends or run_backends)
        unknown = [b for b in wanted if b not in BACKENDS]
        if unknown:
            pytest.fail(f"tfjs_certify: unknown backend(s) {', '.join(unknown)}", pytrace=False)
        chosen = [b for b in dict.fromkeys(wanted) if b in run_backends]
        if not chosen:
            pytest.skip(f"tfjs_certify: {', '.join(wanted)} not among the run's backends (--tfjs-backend)")
        path, name = _model_file(config, model, name, tmp_path)
        records = user.certify_file(
            request.getfixturevalue("tfjs_browser"),
            path,
            name,
            chosen,
            _inputs_file(config, inputs, tmp_path),
            tfjs_workdir,
            tfjs_artifacts,
        )
        tfjs_records.extend(records)
        return Certification(records)

    return certify


def _model_file(config, model, name: str | None, tmp_path: Path) -> tuple[Path, str]:
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        path = path if path.is_absolute() else config.rootpath / path
        if not path.is_file():
            pytest.fail(f"tfjs_certify: {model}: no such model file (relative paths are the rootdir's)", pytrace=False)
        try:
            default = path.resolve().relative_to(config.rootpath.resolve()).as_posix()
        except ValueError:
            default = path.name
        return path, name or default
    if not hasattr(model, "save"):
        pytest.fail(f"tfjs_certify: expected a model file or a Keras model, got {type(model).__name__}", pytrace=False)
    name = name or getattr(model, "name", None) or "model"
    path = tmp_path / f"{Path(name).name}.keras"
    model.save(path)
    return path, name


def _inputs_file(config, inputs, tmp_path: Path) -> Path | None:
    """The inputs as a .npz file: `certify_file` reads the arrays from one."""
    if inputs is None:
        return None
    if isinstance(inputs, (str, os.PathLike)):
        path = Path(inputs)
        path = path if path.is_absolute() else config.rootpath / path
        if not path.is_file():
            pytest.fail(f"tfjs_certify: {inputs}: no such inputs file", pytrace=False)
        return path
    import numpy as np

    arrays = inputs if isinstance(inputs, dict) else {f"arr_{i}": a for i, a in enumerate(_as_list(inputs))}
    path = tmp_path / "tfjs_certify_inputs.npz"
    named: dict[str, Any] = {str(k): np.asarray(v) for k, v in arrays.items()}
    np.savez(path, **named)
    return path


def _as_list(inputs) -> list:
    return list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]


# --- the session: records in, reports and the gate out ------------------------------------------------


class _Session:
    """One pytest session's records, its browser, and its end."""

    def __init__(self, config):
        self.config = config
        self.records: list[dict] = []
        self.envs: list[dict] = []
        self.selected: list[str] | None = None
        self.shard: dict | None = None
        self.browser: Any = None
        self.started = time.time()

    def pytest_collection_finish(self, session):
        if not _is_worker(self.config):  # without xdist, the selection is this process's own
            self.selected = [item.nodeid for item in session.items]

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids):
        if self.selected is None:  # every worker collects the same tests
            self.selected = list(ids)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        if call.when == "call" and RECORDS in item.stash:
            from harness.pipeline.environment import environment

            report.tfjs_records = json.dumps([r.to_json() for r in item.stash[RECORDS]])
            report.tfjs_env = json.dumps(environment(self.browser))
            if SHARD in item.config.stash:
                report.tfjs_shard = json.dumps(item.config.stash[SHARD])

    def pytest_runtest_logreport(self, report):
        if _is_worker(self.config) or not hasattr(report, "tfjs_records"):
            return
        self.records.extend(json.loads(report.tfjs_records))
        self.envs.append(json.loads(report.tfjs_env))
        if hasattr(report, "tfjs_shard"):
            self.shard = json.loads(report.tfjs_shard)

    def pytest_sessionfinish(self, session, exitstatus):
        config = self.config
        if _is_worker(config) or config.option.collectonly or exitstatus == pytest.ExitCode.USAGE_ERROR:
            return
        selection = config.hook.pytest_tfjs_certify_selection(config=config, nodeids=self.selected or [])
        if selection is None:
            selection = Selection(expected=None, filters=self._filters())
        if not selection.expected and not self.records:
            return  # nothing was certified: no report
        from harness.pipeline import tolerance
        from harness.pipeline.environment import merge_environments
        from harness.results.finish import finish
        from harness.results.record import Record

        tr = config.pluginmanager.get_plugin("terminalreporter")
        write = (lambda line: tr.write_line(line)) if tr else print
        records = [Record.from_json(r) for r in self.records]
        twice = sorted(i for i, n in collections.Counter(r.id for r in records).items() if n > 1)
        if twice:
            write(f"tfjs-certify: records certified by more than one test: {', '.join(twice)}; give each a name=")
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            return
        env = merge_environments(self.envs)
        status, _ = finish(
            records,
            env,
            tolerances=tolerance.policy_json(env),
            command="pytest " + " ".join(shlex.quote(a) for a in config.invocation_params.args),
            duration_s=time.time() - self.started,
            out_dir=reports_dir(config),
            filters=selection.filters,
            expected=selection.expected,
            omitted=selection.omitted,
            baseline=baseline_path(config),
            update_baseline=config.getoption("tfjs_update_baseline"),
            write=write,
            shard=self.shard or config.stash.get(SHARD, None),
        )
        if status:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _filters(self) -> list[str]:
        """What narrowed a project's run to a part of its tests: a partial run is gated on its own records only,
        and never rewrites the baseline."""
        config, opt = self.config, self.config.option
        filters = [f"-k {opt.keyword}"] if getattr(opt, "keyword", "") else []
        filters += [f"-m {opt.markexpr}"] if getattr(opt, "markexpr", "") else []
        if config.getoption("tfjs_backend"):
            filters.append(f"--tfjs-backend {','.join(selected_backends(config))}")
        if getattr(opt, "deselect", None) or getattr(opt, "lf", False):
            filters.append("--deselect/--lf")
        source = getattr(config, "args_source", None)  # pytest >= 7.3: tests named on the command line, or not
        if source is not None and source.name == "ARGS":
            filters.append(f"a selection of tests ({' '.join(config.args)})")
        return filters
