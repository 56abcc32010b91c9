"""An honest verdict: no case stops a run, nothing missing reads as clean, known failures fail exactly as
declared, and the result does not depend on the CPU (issue: the same verdict on every x86-64 machine)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness import tf_policy
from harness.pipeline import reference, tolerance, verdict
from harness.results import baseline, compat, render
from harness.results.record import Divergence, unfinished
from harness.suite import CASES
from harness.suite.case import Case, Expect, Omission, Variant, expand
from harness.suite.declare import fails_at, layer, mismatches

ROOT = Path(__file__).resolve().parents[1]


def _raise(k):
    raise RuntimeError("this builder is broken on purpose")


BROKEN = Case(name="broken_builder", tier="graph", build=_raise, layer_classes=("Dense",))
GOOD = layer("Dense", {"units": 2}, (3,))


# --- the one rule -----------------------------------------------------------------------------------


def _judged(expect, outcome, **fields):
    """A record of outcome `outcome` (with `fields`), judged against `expect`."""
    record = unfinished(Variant(GOOD, "keras3", "h5"), "wasm", outcome, fields.pop("message", ""))
    for key, value in fields.items():
        setattr(record, key, value)
    return verdict.is_ok(expect, record)


KERNEL_MISSING = fails_at("train", r"Kernel 'Conv2DBackpropFilter' not registered", "no gradient kernel on wasm")
GARBAGE = mismatches((1.0, math.inf), "wasm garbage", diverges_at="Conv3DTranspose")


def test_a_known_load_error_must_fail_at_its_stage_with_its_message():
    message = "Kernel 'Conv2DBackpropFilter' not registered for backend 'wasm'"
    assert _judged(KERNEL_MISSING, "load_error", stage="train", message=message)
    # a bug in another runner call (predict, evaluate) or in the page cannot pass for the declared failure
    assert not _judged(KERNEL_MISSING, "load_error", stage="predict", message=message)
    assert not _judged(KERNEL_MISSING, "load_error", stage="evaluate", message=message)
    assert not _judged(KERNEL_MISSING, "load_error", stage="train", message="x.shape is undefined")
    for other in ("pass", "mismatch", "converter_error", "reference_error", "error", "missing"):
        assert not _judged(KERNEL_MISSING, other, stage="train", message=message), other


def test_a_known_mismatch_must_lie_in_its_range_and_diverge_where_declared():
    divergence = Divergence("conv3d_transpose", "Conv3DTranspose", 3.0)
    assert _judged(GARBAGE, "mismatch", max_abs=3.0, first_divergence=divergence)
    assert _judged(GARBAGE, "mismatch", max_abs=None, first_divergence=divergence)  # not finite: infinite
    assert not _judged(GARBAGE, "mismatch", max_abs=2e-3, first_divergence=divergence)  # a small drift
    elsewhere = Divergence("dense", "Dense", 3.0)
    assert not _judged(GARBAGE, "mismatch", max_abs=3.0, first_divergence=elsewhere)
    assert not _judged(GARBAGE, "load_error", stage="predict", message="boom")


def test_an_expected_failure_declares_what_it_must_match():
    with pytest.raises(ValueError, match="declares the outcome"):
        Expect(outcome="xfail", reason="no declared outcome")
    with pytest.raises(ValueError, match="fails_with"):
        Expect(outcome="xfail", fails_with="converter_error", reason="not a TF.js failure")
    with pytest.raises(ValueError, match="stage"):
        Expect(outcome="xfail", fails_with="load_error", reason="no stage", message="x")
    with pytest.raises(ValueError, match="stage"):
        Expect(
            outcome="xfail", fails_with="load_error", reason="a stage TF.js never fails at", stage="crash", message="x"
        )
    with pytest.raises(ValueError, match="range"):
        Expect(outcome="xfail", fails_with="mismatch", reason="no range")
    with pytest.raises(ValueError, match="only a known mismatch"):
        Expect(outcome="xfail", fails_with="load_error", reason="r", stage="train", message="x", max_abs=(1.0, 2.0))


def test_a_left_out_flavour_needs_a_reason():
    with pytest.raises(ValueError, match="omitted"):
        Case(name="x", tier="layer", build=_raise, layer_classes=(), flavours=("keras3",))
    case = Case(
        name="x",
        tier="layer",
        build=_raise,
        layer_classes=(),
        flavours=("keras3",),
        omitted=(Omission("tf_keras", "tf_keras lacks it"),),
    )
    assert compat.omissions([case]) == [{"case": "x", "flavour": "tf_keras", "reason": "tf_keras lacks it"}]


# --- missing records --------------------------------------------------------------------------------


def _report(records, expected=None, filters=()):
    return compat.build_report(
        records,
        {"python": "3", "platform": "x", "tfjs": "4.22.0", "chromium": None, "playwright": None, "backends": {}},
        tolerances=tolerance.policy_json(),
        duration_s=1.0,
        command="test",
        filters=filters,
        expected=expected,
    )


def _passed(variant, backend):
    record = unfinished(variant, backend, "pass", "")
    record.ok, record.max_abs = True, 0.0
    return record


def test_a_selected_variant_without_a_record_is_missing_and_not_ok(tmp_path):
    expected = expand([GOOD], ["cpu", "wasm"])
    data = _report([_passed(*expected[0])], expected=expected)
    compat.validate(data)
    missing = [r for r in data["records"] if r.outcome == "missing"]
    assert len(missing) == len(expected) - 1 and not any(r.ok for r in missing)
    assert data["summary"]["not_ok"] == len(missing)
    assert data["run"]["partial"] is False and data["run"]["selected"] == len(expected)
    paths = render.write_reports(data, tmp_path)
    md, html = paths["md"].read_text(), paths["html"].read_text()
    assert f"{len(missing)} selected record(s) left no record" in md and "Partial run" not in md
    assert "left no record" in html and "Partial run" not in html
    assert f"{data['summary']['ok']} of {data['summary']['records']} records met their expectation" in md


def test_partial_only_when_a_filter_selected_a_subset(tmp_path):
    data = _report([], filters=["-k Dense"])
    assert data["run"]["partial"] and "Partial run: a filter selected a subset (-k Dense)" in render.render_markdown(
        data
    )


def test_the_gate_fails_on_a_selected_case_without_a_record():
    expected = expand([GOOD], ["cpu"])
    ok = [_passed(v, b) for v, b in expected]
    before = baseline.Baseline.from_report(_report(ok, expected=expected))
    after = _report(ok[1:], expected=expected)
    diff = baseline.compare(before, after)
    assert [(c.kind, c.id) for c in diff.regressions if c.kind == "left no record"] == [("left no record", ok[0].id)]
    lines = baseline.diff_lines(diff)
    assert any(line.startswith(f"REGRESSION left no record: {ok[0].id}: pass -> missing") for line in lines)


def test_plain_gate_lines_are_not_wrapped():
    diff = baseline.Diff(
        regressions=[
            baseline.Change(
                "outcome downgrade",
                "Conv2D[padding=same,strides=2]-keras3-h5-wasm",
                "pass",
                "mismatch (not ok)",
                "output conv2d: " + "x" * 300,
            )
        ]
    )
    text = baseline.render_diff(diff, terminal=False)
    assert (
        "REGRESSION outcome downgrade: Conv2D[padding=same,strides=2]-keras3-h5-wasm: pass -> mismatch (not ok)"
        in text.splitlines()[1]
    )


# --- set-up that does not break -----------------------------------------------------------------------


def test_reports_get_the_users_file_mode(tmp_path):
    paths = render.write_reports(_report([]), tmp_path)
    mask = os.umask(0)
    os.umask(mask)
    for path in paths.values():
        assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_the_cache_lives_under_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("TFJS_CERTIFY_CACHE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert reference.cache_dir() == tmp_path / ".cache"
    monkeypatch.setenv("TFJS_CERTIFY_CACHE", str(tmp_path / "elsewhere"))
    assert reference.cache_dir() == tmp_path / "elsewhere"


def test_apt_get_waits_for_the_dpkg_lock(tmp_path, monkeypatch):
    """A fake apt-get that finds the lock held twice, then succeeds."""
    from js_runner import browser

    count = tmp_path / "count"
    fake = tmp_path / "apt-get"
    fake.write_text(
        f"#!/bin/sh\nn=$(cat {count} 2>/dev/null || echo 0); echo $((n+1)) > {count}\n"
        "if [ $n -lt 2 ]; then echo 'E: Could not get lock /var/lib/dpkg/lock-frontend'; exit 100; fi\n"
        'echo "ok $*"\n'
    )
    fake.chmod(0o755)
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}")
    assert browser.apt_get(["apt-get", "install", "-y", "chromium"], env, pause_s=0.01) == 0
    assert count.read_text().strip() == "3"
    fake.write_text("#!/bin/sh\necho 'E: Unable to locate package chromium'; exit 100\n")
    assert browser.apt_get(["apt-get", "install", "-y", "chromium"], env, pause_s=0.01) == 100


# --- the TensorFlow policy -------------------------------------------------------------------------------


def test_the_policy_is_set_before_tensorflow():
    assert os.environ[tf_policy.VARIABLE] == tf_policy.POLICY
    assert tf_policy.facts()["set_too_late"] is False


CPU_SENSITIVE = [
    c
    for c in CASES
    if c.tier in ("layer", "reject")
    and any(
        (k == "data_format" and v == "channels_first") or (k == "dilation_rate" and v != 1)
        for k, v in c.options.items()
    )
]


@pytest.mark.slow
def test_channels_first_and_dilated_references_build_with_onednn_off_requested(tmp_path):
    """With TF_ENABLE_ONEDNN_OPTS=0 (a CPU without AVX-512), every case whose Keras side needs NCHW or dilated
    transposed kernels still gets its reference: the harness sets the policy before TensorFlow loads."""
    names = [c.name for c in CPU_SENSITIVE]
    assert len(names) >= 15
    script = (
        "import json, sys\n"
        "from harness import suite, tf_policy\n"
        "from harness.pipeline import reference\n"
        "errors = {}\n"
        "for name in json.loads(sys.argv[1]):\n"
        "    case = suite.by_name(name)\n"
        "    for flavour in case.flavours:\n"
        "        p = reference.prepare(case, flavour)\n"
        "        if p.error: errors[f'{name}-{flavour}'] = p.error\n"
        "print(json.dumps({'errors': errors, 'onednn': tf_policy.facts()}))\n"
    )
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="0", TFJS_CERTIFY_CACHE=str(tmp_path / "cache"))
    env.pop("TFJS_CERTIFY_ONEDNN_REQUESTED", None)
    proc = subprocess.run(
        [sys.executable, "-c", script, json.dumps(names)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["errors"] == {}
    assert result["onednn"] == {
        "variable": "TF_ENABLE_ONEDNN_OPTS",
        "policy": "1",
        "requested": "0",
        "enabled": True,
        "set_too_late": False,
    }


# --- one case never stops the run (real Chromium) ------------------------------------------------------


@pytest.mark.browser
def test_a_keras_failure_is_the_records_outcome_and_the_run_goes_on(tmp_path, monkeypatch):
    from harness.pipeline import run

    monkeypatch.setenv("TFJS_CERTIFY_CACHE", str(tmp_path / "cache"))
    status = run.run([], backends=["cpu"], out_dir=tmp_path / "out", cases=[BROKEN, GOOD], baseline=None)
    assert status == 1
    data = compat.load(tmp_path / "out" / "compat.json")
    by_case: dict = {}
    for r in data["records"]:
        by_case.setdefault(r.case, []).append(r)
    assert {r.outcome for r in by_case["broken_builder"]} == {"reference_error"}
    assert all("this builder is broken on purpose" in r.message for r in by_case["broken_builder"])
    assert all(r.ok and r.outcome == "pass" for r in by_case[GOOD.name])
    assert data["summary"]["not_ok"] == len(by_case["broken_builder"]) == 4  # 3 Keras 3 formats, 1 tf_keras
    md = (tmp_path / "out" / "compat.md").read_text()
    assert "broken_builder-keras3-h5-cpu" in md and "did not" in md


def _save(k, path: Path, inputs: int = 1):
    xs = [k.Input((3,), name=f"in{i}") for i in range(inputs)]
    x = xs[0] if inputs == 1 else k.layers.Concatenate(name="cat")(xs)
    k.Model(xs, k.layers.Dense(2, name="dense")(x)).save(path)


@pytest.mark.browser
@pytest.mark.slow
def test_user_models_one_bad_file_and_unfitting_inputs_do_not_stop_the_run(tmp_path):
    import keras

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _save(keras, tmp_path / "a" / "model.keras")
    _save(keras, tmp_path / "b" / "model.keras", inputs=2)
    _save(keras, tmp_path / "c.keras")
    (tmp_path / "broken.h5").write_bytes(b"not a model at all")
    np.savez(tmp_path / "a_inputs.npz", in0=np.ones((2, 3), "float32"))
    np.savez(tmp_path / "c.npz", wrong=np.ones((2, 3), "float32"), other=np.ones((2, 3), "float32"))
    (tmp_path / "inputs.json").write_text(json.dumps({"a/model.keras": "a_inputs.npz"}))
    models = [
        tmp_path / "a" / "model.keras",
        tmp_path / "b" / "model.keras",
        tmp_path / "c.keras",
        tmp_path / "broken.h5",
    ]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "certify",
            *map(str, models),
            "--backend",
            "cpu",
            "--inputs",
            str(tmp_path / "inputs.json"),
            "--out",
            str(tmp_path / "out"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    data = compat.load(tmp_path / "out" / "compat.json")
    records = {r.id: r for r in data["records"]}
    assert set(records) == {
        "a/model.keras-keras3-keras-cpu",
        "b/model.keras-keras3-keras-cpu",
        "c.keras-keras3-keras-cpu",
        "broken.h5-unknown-h5-cpu",
    }
    assert records["a/model.keras-keras3-keras-cpu"].outcome == "pass"
    assert records["b/model.keras-keras3-keras-cpu"].outcome == "pass"  # seeded inputs, two of them
    c = records["c.keras-keras3-keras-cpu"]
    assert c.outcome == "reference_error" and "c.npz" in c.message and "in0" in c.message
    bad = records["broken.h5-unknown-h5-cpu"]
    assert bad.outcome == "converter_error" and "broken.h5" in bad.message
    assert data["summary"]["not_ok"] == 2
    assert "broken.h5-unknown-h5-cpu" in (tmp_path / "out" / "compat.md").read_text()


_CRASH_PLUGIN = """
import os
import harness.pipeline.certify as certify

_real = certify.certify_variant


def crashing(session, variant, backends, workdir, artifacts, **kw):
    if variant.id == "Dense[activation=relu]-keras3-h5":
        os._exit(3)  # the worker dies, as a segfault would
    if variant.id == "Conv3DTranspose-keras3-h5":
        import converter
        real = converter.convert

        def boom(*args, **kwargs):
            raise RuntimeError("converter crash")
        converter.convert = boom
        try:
            return _real(session, variant, backends, workdir, artifacts, **kw)
        finally:
            converter.convert = real
    return _real(session, variant, backends, workdir, artifacts, **kw)


certify.certify_variant = crashing
import tests.test_certify as tc
tc.certify_variant = crashing
"""


@pytest.mark.browser
@pytest.mark.slow
def test_a_crashed_worker_leaves_missing_records_and_a_wrong_failure_fails(tmp_path):
    """A real pytest-xdist run where one worker dies mid-case and an xfail case crashes the converter:
    the crashed case is a `missing` record, the xfail case FAILS (not XFAIL), and the run fails."""
    (tmp_path / "crash_plugin.py").write_text(_CRASH_PLUGIN)
    # a cache of its own: a conversion cached by an earlier run would never reach the crashing converter
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}", TFJS_CERTIFY_CACHE=str(tmp_path / "cache"))
    reports_dir = tmp_path / "reports"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "crash_plugin",
            "-p",
            "no:cacheprovider",
            "-n",
            "2",
            "-q",
            "tests/test_certify.py",
            "-k",
            "(Dense and activation and relu and keras3 and h5) or (Conv3DTranspose and not same and keras3 and h5)",
            "--backend",
            "wasm",
            "--reports",
            str(reports_dir),
            "--baseline",
            str(tmp_path / "none.json"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-4000:]
    assert "FAILED tests/test_certify.py::test_certify[Conv3DTranspose-keras3-h5-wasm]" in out, out[-4000:]
    data = compat.load(reports_dir / "compat.json")
    records = {r.id: r for r in data["records"]}
    crashed = records["Dense[activation=relu]-keras3-h5-wasm"]
    assert crashed.outcome == "missing" and not crashed.ok
    wrong = records["Conv3DTranspose-keras3-h5-wasm"]
    assert wrong.outcome == "converter_error" and wrong.expected_failure == "mismatch" and not wrong.ok
    assert data["run"]["partial"] is True  # -k and --backend selected a subset
    assert "left no record" in (reports_dir / "compat.md").read_text()
