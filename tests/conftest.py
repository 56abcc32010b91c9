"""The reference suite on the `tfjs_certify` pytest plugin (harness/pytest_plugin.py).

The plugin does the work every project's run needs: one browser per session, each test's records carried
with its report to the controller (under pytest-xdist too), compat.json/md/html and the regression gate at the
end. What is specific to the reference suite lives here: its option names (`--backend`, `--baseline`,
`--reports`, `--update-baseline` are the plugin's `--tfjs-*` options under the names this repository has
always used), `--shard` and `--timings`, the order tests run in, and which records a selection of
tests/test_certify.py stands for, so that a selected record that never arrives becomes `missing`.
"""

from __future__ import annotations

import pytest

import harness  # noqa: F401  (sets up TensorFlow, harness.tf_policy, before any test imports it)
from harness import pytest_plugin as plugin


def pytest_addhooks(pluginmanager):
    """Installed, the package registers the plugin itself (entry point `tfjs_certify`); run from a checkout on
    PYTHONPATH alone, register it here."""
    if not pluginmanager.has_plugin("tfjs_certify") and not pluginmanager.is_blocked("tfjs_certify"):
        pluginmanager.register(plugin, "tfjs_certify")


def pytest_addoption(parser):
    group = parser.getgroup("tfjs-certify")
    group.addoption(
        "--backend",
        action="append",
        dest="tfjs_backend",
        default=None,
        metavar="NAME[,NAME]",
        help="certify on these TF.js backends only (default: cpu,wasm,webgl); the plugin's --tfjs-backend",
    )
    group.addoption(
        "--baseline",
        dest="tfjs_baseline",
        default=None,
        metavar="FILE",
        help="the baseline the run is compared with (default: reports/baseline.json); the plugin's --tfjs-baseline",
    )
    group.addoption(
        "--reports",
        dest="tfjs_reports",
        default=None,
        metavar="DIR",
        help="where compat.json/md/html (and artifacts/) go (default: reports/); the plugin's --tfjs-reports",
    )
    group.addoption(
        "--update-baseline",
        dest="tfjs_update_baseline",
        action="store_true",
        help="after a full run, rewrite the baseline from its results instead of gating on it",
    )
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


def _suite_sample() -> frozenset[str]:
    from harness.suite import CASES
    from harness.suite.sample import sample

    return sample(CASES)


@pytest.hookimpl(trylast=True)  # after -k and -m: a shard is a part of what they selected
def pytest_collection_modifyitems(config, items):
    from harness.suite.sample import backends_for

    backends = plugin.selected_backends(config)
    named, sampled = plugin.named_backends(config), _suite_sample()
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("backend") if callspec and "variant" in callspec.params else None
        # a sampled backend (webgpu) certifies the suite's sample unless named: harness/suite/sample.py
        wanted = backend is None or backend in backends_for(callspec.params["variant"], backends, sampled, named)
        (keep if wanted else drop).append(item)
    shard = _shard(config)
    if shard is not None:
        from harness.pipeline import shard as sharding

        variants = list({v.id: v for v in map(_variant, keep) if v is not None}.values())
        mine = {v.id for v in sharding.select_variants(variants, shard)}
        n_records = sum(1 if item.callspec.params["backend"] else len(backends) for item in keep if _variant(item))
        config.stash[plugin.SHARD] = sharding.shard_info(shard, [v.id for v in variants], n_records)
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


def pytest_tfjs_certify_selection(config, nodeids):
    """The (variant, backend) records the selected tests of tests/test_certify.py stand for."""
    from harness.results.compat import omissions
    from harness.suite import CASES
    from harness.suite.case import certification_params
    from harness.suite.sample import suite_records

    backends = plugin.selected_backends(config)
    params = {
        f"tests/test_certify.py::test_certify[{tid}]": (v, b)
        for tid, v, b in certification_params(CASES, plugin.BACKENDS)
    }
    chosen = [params[n] for n in nodeids if n in params]
    expected = [(v, b) for v, b0 in chosen for b in ([b0] if b0 else backends)]
    filters = []
    if plugin.named_backends(config) or len(expected) < len(suite_records(CASES)):
        opt = config.option
        if getattr(opt, "keyword", ""):
            filters.append(f"-k {opt.keyword}")
        if getattr(opt, "markexpr", ""):
            filters.append(f"-m {opt.markexpr}")
        if config.getoption("tfjs_backend"):
            filters.append(f"--backend {','.join(backends)}")
        if config.getoption("--shard"):
            filters.append(f"--shard {config.getoption('--shard')}")
        filters = filters or [f"a selection of tests ({' '.join(config.args)})"]
    cases = list({v.case.name: v.case for v, _ in expected}.values())
    return plugin.Selection(expected=expected, filters=filters, omitted=omissions(cases))
