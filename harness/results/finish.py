"""The end of every run, pytest's and `tfjs-certify certify`'s alike: write the reports, then gate.

`finish` builds the report from the run's records (a selected variant without a record becomes a
`missing` one), writes compat.json, compat.md and compat.html, prints the summary, and compares with the
baseline (or, asked to, rewrites it). Its status is 1 when any record missed its expectation, the
reports could not be written, the baseline is unusable or a regression was found.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from harness.files import write_atomic
from harness.results import baseline as gate
from harness.results import compat, render, shards


def finish(
    records,
    env: dict,
    *,
    tolerances: dict,
    command: str,
    duration_s: float,
    out_dir,
    filters=(),
    expected=None,
    omitted=(),
    baseline: Path | None = None,
    update_baseline: bool = False,
    write: Callable[[str], None] = print,
    shard: dict | None = None,
) -> tuple[int, dict | None]:
    """(exit status, report). `write` prints one line."""
    data = compat.build_report(
        records,
        env,
        tolerances=tolerances,
        duration_s=duration_s,
        command=command,
        filters=filters,
        expected=expected,
        omitted=omitted,
        shard=shard,
    )
    return conclude(data, out_dir, baseline=baseline, update_baseline=update_baseline, write=write)


def write_costs(data: dict, directory: Path) -> Path | None:
    """costs.json (what --shard balances by) beside the baseline, from the same full run; None when the run
    measured nothing (a report from before records were timed)."""
    costs = shards.costs_from_report(data)
    if not costs["variants"]:
        return None
    path = Path(directory) / shards.COSTS.name
    write_atomic(path, json.dumps(costs, indent=0, sort_keys=True) + "\n")
    return path


def conclude(
    data: dict,
    out_dir,
    *,
    stem: str = "compat",
    baseline: Path | None = None,
    update_baseline: bool = False,
    write: Callable[[str], None] = print,
) -> tuple[int, dict | None]:
    """Write a built report's files, print its summary, then gate it (or rewrite the baseline from it)."""
    try:
        paths = render.write_reports(data, out_dir, stem)
    except Exception as e:  # a report that does not validate is a failure of the run
        write(f"tfjs-certify: could not write the reports: {e}")
        return 1, None
    summary = data["summary"]
    missing = summary["by_outcome"].get("missing", 0)
    write(f"tfjs-certify: {summary['line']}")
    write(
        f"tfjs-certify: {summary['ok']} of {summary['records']} records met their expectation; "
        f"{summary['not_ok']} did not" + (f" ({missing} selected but left no record)" if missing else "")
    )
    write(f"tfjs-certify: wrote {', '.join(str(p) for p in paths.values())}")
    status = 1 if summary["not_ok"] else 0
    if baseline is None:
        return status, data
    baseline = Path(baseline)
    if update_baseline:
        if data["run"]["partial"]:
            write(f"tfjs-certify: not updating {baseline} from a partial run ({', '.join(data['run']['filters'])})")
            return 1, data
        baseline.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(baseline, gate.Baseline.from_report(data).dumps())
        write(f"tfjs-certify: baseline updated: {baseline} ({summary['records']} records)")
        costs = write_costs(data, baseline.parent)
        if costs is not None:
            write(f"tfjs-certify: costs for --shard updated: {costs}")
        return status, data
    if not baseline.exists():
        write(f"tfjs-certify: no baseline at {baseline}; nothing to compare")
        return status, data
    try:
        base = gate.Baseline.load(baseline)
    except compat.ReportError as e:
        write(f"tfjs-certify: the baseline is unusable: {e}")
        return 1, data
    diff = gate.compare(base, data, only_ids={r.id for r in data["records"]} if data["run"]["partial"] else None)
    write(gate.render_diff(diff, terminal=sys.stdout.isatty()))
    if diff.regressions:
        write(
            f"tfjs-certify: REGRESSION against {baseline}: {len(diff.regressions)} regression(s); see above "
            f"(accept deliberately with --update-baseline)"
        )
        return 1, data
    return status, data
