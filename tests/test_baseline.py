"""harness.results.baseline and `python -m harness compare`: the compact baseline and the regression gate."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.results import baseline
from harness.results import compat as report
from harness.results.record import Record

ROOT = Path(__file__).resolve().parents[1]


def record(
    case, backend="cpu", outcome="pass", *, max_abs=1e-7, classes=None, expected="pass", ok=None, reason_codes=()
):
    if ok is None:
        ok = outcome == ("rejected" if expected == "reject" else "pass")
    return {
        "id": f"{case}-keras3-h5-{backend}",
        "case": case,
        "tier": "reject" if expected == "reject" else "layer",
        "layer_classes": list(classes or [case.split("[")[0]]),
        "options": {},
        "flavour": "keras3",
        "format": "h5",
        "backend": backend,
        "expected": expected,
        "expected_reason": "unsupported" if expected != "pass" else None,
        "expected_code": "unsupported_value" if expected == "reject" else None,
        "expected_failure": "mismatch" if expected == "xfail" else None,
        "outcome": outcome,
        "ok": ok,
        "message": None if outcome == "pass" else f"{outcome} happened",
        "reason_codes": list(reason_codes),
        "metrics": [],
        "max_abs": max_abs if outcome in ("pass", "mismatch") else None,
        "tolerance": {"atol": 1e-4, "rtol": 1e-3, "reason": None},
        "first_divergence": None,
        "timings_ms": {},
        "sizes": {},
    }


GRU_REJECT = record(
    "GRU[reset_after=True]",
    outcome="rejected",
    expected="reject",
    reason_codes=[
        {
            "layer": "gru",
            "class_name": "GRU",
            "argument": "reset_after",
            "value": True,
            "code": "unsupported_value",
            "reason": "TF.js has only reset_after=False",
        }
    ],
)


def compat(recs, complete=True):
    recs = [Record.from_json(r) for r in copy.deepcopy(recs)]
    layers, summary = report.rollup(recs, ["cpu", "wasm"])
    data = {
        "schema_version": report.SCHEMA_VERSION,
        "generated_at": "2026-11-25T14:00:00Z",
        "run": {
            "command": "python -m harness certify",
            "duration_s": 1.0,
            "partial": not complete,
            "filters": [] if complete else ["-k x"],
            "selected": len(recs),
        },
        "environment": {
            "python": "3.11",
            "platform": "linux",
            "tfjs": "4.22.0",
            "chromium": "156",
            "playwright": "1.65.2",
            "backends": {},
        },
        "tolerances": {"cpu": {"atol": 1e-4, "rtol": 1e-3, "why": "float32"}},
        "records": recs,
        "omitted": [],
        "layers": layers,
        "summary": summary,
    }
    report.validate(data)
    return data


def base(recs):
    """The baseline a full run of `recs` would write."""
    return baseline.Baseline.from_report(compat(recs))


def base_records():
    return [
        record("Dense[units=4]"),
        record("Dense[units=4]", "wasm", max_abs=2e-7),
        record("GRU[units=3]", max_abs=5e-6),
        copy.deepcopy(GRU_REJECT),
        record("Conv2D[padding=same]", max_abs=1e-9),
        record("LSTM[units=2]", "cpu", "mismatch", max_abs=0.3, ok=False),
    ]


def kinds(changes):
    return sorted((c.kind, c.id) for c in changes)


def replace(recs, rid, **fields):
    out = copy.deepcopy(recs)
    for r in out:
        if r["id"] == rid:
            r.update(fields)
    return out


def test_identical_reports_have_no_changes():
    diff = baseline.compare(base(base_records()), compat(base_records()))
    assert diff.ok
    assert diff.regressions == diff.improvements == diff.changes == []
    assert diff.compared == 6


def test_outcome_downgrade_and_newly_failing_class():
    new = replace(base_records(), "Dense[units=4]-keras3-h5-cpu", outcome="mismatch", ok=False, max_abs=2e-7)
    diff = baseline.compare(base(base_records()), compat(new))
    assert not diff.ok
    assert kinds(diff.regressions) == [
        ("layer class newly failing", "Dense@cpu"),
        ("outcome downgrade", "Dense[units=4]-keras3-h5-cpu"),
    ]
    assert diff.regressions[0].before == "pass"


def test_pass_to_anything_else_is_a_downgrade_even_if_ok():
    # an xfail-expected record still counts: pass -> mismatch is a downgrade
    new = replace(
        base_records(),
        "Dense[units=4]-keras3-h5-wasm",
        outcome="mismatch",
        expected="xfail",
        expected_reason="known",
        expected_failure="mismatch",
        ok=True,
    )
    diff = baseline.compare(base(base_records()), compat(new))
    assert ("outcome downgrade", "Dense[units=4]-keras3-h5-wasm") in kinds(diff.regressions)


def test_newly_rejected_class():
    new = [r for r in base_records() if r["case"] != "GRU[units=3]"]
    diff = baseline.compare(base(base_records()), compat(new))
    assert ("layer class newly rejected", "GRU@cpu") in kinds(diff.regressions)
    assert ("case disappeared", "GRU[units=3]-keras3-h5-cpu") in kinds(diff.regressions)


def test_a_new_rejection_case_for_a_new_class_is_no_regression():
    mha = record(
        "MultiHeadAttention",
        outcome="rejected",
        expected="reject",
        reason_codes=[
            {
                "layer": "mha",
                "class_name": "MultiHeadAttention",
                "argument": None,
                "value": None,
                "code": "unsupported_layer",
                "reason": "no such TF.js layer",
            }
        ],
    )
    diff = baseline.compare(base(base_records()), compat(base_records() + [mha]))
    assert diff.ok
    assert kinds(diff.improvements) == [("new case", "MultiHeadAttention-keras3-h5-cpu")]


@pytest.mark.parametrize(
    "before, after, regression",
    [
        (5e-6, 6e-5, True),  # 12x and above 1e-6
        (2e-7, 5e-6, True),  # 25x, crosses 1e-6
        (0.0, 2e-6, True),  # from exact to above the floor
        (1e-9, 5e-7, False),  # 500x but still float32 noise
        (0.0, 9e-7, False),  # below 1e-6
        (5e-6, 4e-5, False),  # only 8x
    ],
)
def test_error_growth(before, after, regression):
    rid = "GRU[units=3]-keras3-h5-cpu"
    diff = baseline.compare(
        base(replace(base_records(), rid, max_abs=before)), compat(replace(base_records(), rid, max_abs=after))
    )
    grew = [c for c in diff.regressions if c.kind.startswith("error grew")]
    assert [c.id for c in grew] == ([rid] if regression else [])
    assert diff.ok is not regression


def test_disappeared_case_only_in_a_full_comparison():
    new = [r for r in base_records() if r["id"] != "Conv2D[padding=same]-keras3-h5-cpu"]
    full = baseline.compare(base(base_records()), compat(new))
    assert kinds(full.regressions) == [("case disappeared", "Conv2D[padding=same]-keras3-h5-cpu")]
    subset = baseline.compare(base(base_records()), compat(new), only_ids=[r["id"] for r in new])
    assert subset.ok and subset.partial


def test_a_subset_comparison_compares_its_records_only():
    # A run of only the GRU rejection case: nothing else is compared, and layer statuses (which a subset
    # cannot establish) are not reported.
    subset = [copy.deepcopy(GRU_REJECT)]
    diff = baseline.compare(base(base_records()), compat(subset, complete=False), only_ids=[GRU_REJECT["id"]])
    assert diff.ok and diff.compared == 1
    assert diff.changes == diff.improvements == []
    # ...while a real downgrade inside the subset is still caught
    broken = replace(base_records(), "Dense[units=4]-keras3-h5-cpu", outcome="load_error", ok=False)
    diff = baseline.compare(base(base_records()), compat(broken), only_ids=["Dense[units=4]-keras3-h5-cpu"])
    assert kinds(diff.regressions) == [("outcome downgrade", "Dense[units=4]-keras3-h5-cpu")]


def test_improvements():
    fixed = replace(base_records(), "LSTM[units=2]-keras3-h5-cpu", outcome="pass", ok=True, max_abs=1e-7)
    fixed = replace(fixed, "GRU[units=3]-keras3-h5-cpu", max_abs=1e-7)
    fixed.append(record("Flatten"))
    diff = baseline.compare(base(base_records()), compat(fixed))
    assert diff.ok
    assert kinds(diff.improvements) == [
        ("error shrank >10x", "GRU[units=3]-keras3-h5-cpu"),
        ("layer class now certified", "Flatten@cpu"),
        ("layer class now certified", "LSTM@cpu"),
        ("new case", "Flatten-keras3-h5-cpu"),
        ("now ok", "LSTM[units=2]-keras3-h5-cpu"),
    ]


def test_a_new_case_that_fails_is_a_regression():
    new = base_records() + [record("Flatten", outcome="load_error", ok=False)]
    diff = baseline.compare(base(base_records()), compat(new))
    assert ("new case", "Flatten-keras3-h5-cpu") in kinds(diff.regressions)


def test_format_diff_lists_every_change():
    new = replace(base_records(), "Dense[units=4]-keras3-h5-cpu", outcome="mismatch", ok=False)
    text = baseline.format_diff(baseline.compare(base(base_records()), compat(new)))
    assert "2 regression(s), 0 improvement(s)" in text
    assert "outcome downgrade" in text and "Dense[units=4]-keras3-h5-cpu" in text
    assert "layer class newly failing" in text and "Dense@cpu" in text
    assert "No changes." in baseline.format_diff(baseline.compare(base(base_records()), compat(base_records())))


def test_the_baseline_is_one_sorted_line_per_record_with_rounded_errors():
    recs = base_records() + [record("Flatten", max_abs=1.2345e-7)]
    text = base(recs).dumps()
    lines = [line for line in text.splitlines() if line.startswith('  "') and "-keras3-h5-" in line]
    assert len(lines) == len(recs) and lines == sorted(lines)
    assert '"Flatten-keras3-h5-cpu": ["pass", true, 1e-07]' in text
    assert '"LSTM[units=2]-keras3-h5-cpu": ["mismatch", false, 0.3]' in text
    assert '"Dense": {"cpu": "certified", "wasm": "certified"}' in text
    assert "timings" not in text and "message" not in text


def test_the_baseline_reads_back(tmp_path):
    path = tmp_path / "baseline.json"
    path.write_text(base(base_records()).dumps())
    assert baseline.Baseline.load(path) == base(base_records())
    path.write_text(
        json.dumps({"format": "tfjs-certify baseline 1", "records": {"x": ["passed", True, 0]}, "layers": {}})
    )
    with pytest.raises(report.ReportError, match=r"baseline.json: records.x\[0\]"):
        baseline.Baseline.load(path)


# --- the command ---------------------------------------------------------------------------------------


def run(*args):
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    return subprocess.run(
        [sys.executable, "-m", "harness", "compare", *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def write(path, data):
    """A compat.json (a report dict) or a baseline (a Baseline) on disk."""
    path.write_text(data.dumps() if isinstance(data, baseline.Baseline) else report.dumps(data))
    return path


def test_cli_exit_0_without_regressions(tmp_path):
    old = write(tmp_path / "baseline.json", base(base_records()))
    new = write(tmp_path / "new.json", compat(base_records() + [record("Flatten")]))
    r = run(old, new)
    assert r.returncode == 0, r.stderr
    assert "Flatten-keras3-h5-cpu" in r.stdout and "no regressions" in r.stdout


def test_cli_exit_1_on_a_regression(tmp_path):
    old = write(tmp_path / "baseline.json", base(base_records()))
    new = write(tmp_path / "new.json", compat(replace(base_records(), "GRU[units=3]-keras3-h5-cpu", max_abs=1e-3)))
    r = run(old, new)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "GRU[units=3]-keras3-h5-cpu" in r.stdout and "1 regression(s)" in r.stdout


def test_cli_subset_run_does_not_report_missing_cases(tmp_path):
    old = write(tmp_path / "baseline.json", base(base_records()))
    new = write(tmp_path / "new.json", compat(base_records()[:2], complete=False))
    r = run(old, new)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "subset" in r.stdout


@pytest.mark.parametrize(
    "problem, content, message",
    [
        ("missing", None, "no such file"),
        ("not json", "{oops", "not valid JSON"),
        ("wrong shape", json.dumps({"schema_version": 1}), "(top level)"),
    ],
)
def test_cli_exit_2_on_a_bad_file(tmp_path, problem, content, message):
    good_baseline = write(tmp_path / "baseline.json", base(base_records()))
    good_report = write(tmp_path / "compat.json", compat(base_records()))
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    for args in ((good_baseline, bad), (bad, good_report)):
        r = run(*args)
        assert r.returncode == 2, r.stdout + r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and str(bad) in lines[0] and message in lines[0], r.stderr
        assert "Traceback" not in r.stderr


def test_cli_update_baseline(tmp_path):
    old = write(tmp_path / "baseline.json", base(base_records()))
    regressed = compat(replace(base_records(), "Dense[units=4]-keras3-h5-cpu", outcome="error", ok=False))
    new = write(tmp_path / "new.json", regressed)
    assert run(old, new).returncode == 1
    r = run(old, new, "--update-baseline")
    assert r.returncode == 0, r.stdout + r.stderr
    assert old.read_text() == baseline.Baseline.from_report(regressed).dumps()
    assert "baseline updated" in r.stdout
    assert run(old, new).returncode == 0
    # a fresh baseline: the file need not exist yet
    fresh = tmp_path / "sub" / "baseline.json"
    assert run(fresh, new, "--update-baseline").returncode == 0
    assert fresh.read_text() == old.read_text()


def test_cli_update_baseline_refuses_an_invalid_or_partial_report(tmp_path):
    old = write(tmp_path / "baseline.json", base(base_records()))
    before = old.read_bytes()
    broken = report.to_json(compat(base_records()))
    broken["records"][0]["outcome"] = "passed"
    new = tmp_path / "new.json"
    new.write_text(json.dumps(broken))
    r = run(old, new, "--update-baseline")
    assert r.returncode == 2 and "new.json" in r.stderr and "passed" in r.stderr
    partial = write(tmp_path / "partial.json", compat(base_records()[:2], complete=False))
    r = run(old, partial, "--update-baseline")
    assert r.returncode == 2 and "partial run" in r.stderr
    assert old.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["baseline.json", "new.json", "partial.json"]


def test_a_known_failures_error_is_not_compared():
    """TF.js 4.22's wasm Conv3DTranspose returns different garbage each run (measured: 3.0, then 1e21)."""
    rid = "LSTM[units=2]-keras3-h5-cpu"  # a mismatch in both
    diff = baseline.compare(base(base_records()), compat(replace(base_records(), rid, max_abs=1e21)))
    assert diff.ok and diff.improvements == []
