"""The committed baseline and the regression gate.

The baseline (`reports/baseline.json`) holds only what the gate reads: per record its outcome, whether it
met its expectation and its max_abs rounded to one significant digit (all the 10x rule needs), one sorted
line per record; and per layer class its status on each backend, one line per class. A change in results
is then a diff a reviewer can read. `--update-baseline` writes it from a report.

A regression is an outcome downgrade (ok -> not ok, or pass -> anything else), a selected case that left
no record (outcome `missing`), a layer class newly rejected or failing on a backend (full runs), the error
of a passing record grown more than 10x and above 1e-6 (a known failure's error is not compared: TF.js's
wasm Conv3DTranspose, for one, returns different garbage on every run), a new case that is not ok, or a
case that disappeared (full runs).
Improvements are listed, never gate.
"""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import jsonschema

from harness.results.chart import sci
from harness.results.compat import ReportError, read_json

FORMAT = "tfjs-certify baseline 1"
GROWTH = 10.0  # an error must move by this factor to count as grown or shrunk
NOISE_FLOOR = 1e-6  # errors at or below this are float32 noise: growth there is no regression
SCHEMA_PATH = Path(__file__).parent / "schema" / "baseline.schema.json"


def rounded(x: float | None) -> float | None:
    """One significant digit: enough for a 10x rule, and stable across runs."""
    return None if x is None else float(f"{x:.0e}")


@dataclasses.dataclass(frozen=True)
class Entry:
    outcome: str
    ok: bool
    max_abs: float | None


@dataclasses.dataclass
class Baseline:
    """What the gate compares: record id -> Entry, and layer class -> backend -> status."""

    records: dict[str, Entry]
    layers: dict[str, dict[str, str]]

    @classmethod
    def from_report(cls, data: dict) -> Baseline:
        return cls(
            {r.id: Entry(r.outcome, r.ok, rounded(r.max_abs)) for r in data["records"]},
            {c: {b: cell["status"] for b, cell in by_b.items()} for c, by_b in data["layers"].items()},
        )

    def dumps(self) -> str:
        records = ",\n".join(
            f"  {json.dumps(rid)}: {json.dumps([e.outcome, e.ok, e.max_abs])}"
            for rid, e in sorted(self.records.items())
        )
        layers = ",\n".join(
            f"  {json.dumps(c)}: {json.dumps(by_b, sort_keys=True)}" for c, by_b in sorted(self.layers.items())
        )
        return f'{{\n"format": {json.dumps(FORMAT)},\n"records": {{\n{records}\n}},\n"layers": {{\n{layers}\n}}\n}}\n'

    @classmethod
    def load(cls, path) -> Baseline:
        """Read and validate a baseline; ReportError names the file and the problem."""
        data = read_json(path, "baseline")
        with open(SCHEMA_PATH, encoding="utf-8") as f:
            schema = json.load(f)
        error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(data))
        if error is not None:
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
            raise ReportError(f"{path}: {where or '(top level)'}: {error.message}")
        return cls({rid: Entry(*v) for rid, v in data["records"].items()}, data["layers"])


@dataclasses.dataclass(frozen=True)
class Change:
    """One line of the diff; `id` is a record id, or "Class@backend" for a layer-class change."""

    kind: str
    id: str
    before: str
    after: str
    detail: str = ""


@dataclasses.dataclass
class Diff:
    regressions: list[Change] = dataclasses.field(default_factory=list)
    improvements: list[Change] = dataclasses.field(default_factory=list)
    changes: list[Change] = dataclasses.field(default_factory=list)  # neither, but worth showing
    compared: int = 0  # record ids present in both
    partial: bool = False  # compared only some ids (`only_ids`)

    @property
    def ok(self) -> bool:
        return not self.regressions


def _grew(before, after) -> bool:
    return before is not None and after is not None and after > NOISE_FLOOR and after > GROWTH * before


def _state(e: Entry) -> str:
    return f"{e.outcome}{'' if e.ok else ' (not ok)'}"


def compare(base: Baseline, new: dict, *, only_ids=None) -> Diff:
    """Compare a report with the baseline, record by record and (full runs) layer class by layer class.

    With `only_ids` (a subset run), only those record ids are compared, and neither disappeared cases
    nor layer-class statuses (which a subset cannot establish) are reported.
    """
    only = None if only_ids is None else set(only_ids)
    records = {r.id: r for r in new["records"] if only is None or r.id in only}
    after_entries = Baseline.from_report({"records": list(records.values()), "layers": {}}).records
    old = {rid: e for rid, e in base.records.items() if only is None or rid in only}
    diff = Diff(partial=only is not None)
    for rid, after in after_entries.items():
        rec = records[rid]
        before = old.get(rid)
        if after.outcome == "missing":  # selected, never certified: whatever it was before
            diff.regressions.append(
                Change("left no record", rid, _state(before) if before else "—", "missing", rec.message or "")
            )
            diff.compared += before is not None
            continue
        if before is None:
            change = Change("new case", rid, "—", _state(after), rec.message or "")
            (diff.improvements if after.ok else diff.regressions).append(change)
            continue
        diff.compared += 1
        errors = f"max_abs {sci(before.max_abs)} -> {sci(after.max_abs)}"
        if (before.ok and not after.ok) or (before.outcome == "pass" and after.outcome != "pass"):
            diff.regressions.append(
                Change("outcome downgrade", rid, _state(before), _state(after), rec.message or errors)
            )
        elif not before.ok and after.ok:
            diff.improvements.append(Change("now ok", rid, _state(before), _state(after), errors))
        elif before.outcome != after.outcome:
            diff.changes.append(Change("outcome changed", rid, _state(before), _state(after), rec.message or ""))
        if before.outcome != "pass" or after.outcome != "pass":
            continue  # the 10x rule measures a passing error; a known failure's numbers can be garbage
        if _grew(before.max_abs, after.max_abs):
            diff.regressions.append(
                Change(
                    f"error grew >{GROWTH:g}x",
                    rid,
                    sci(before.max_abs),
                    sci(after.max_abs),
                    f"above {NOISE_FLOOR:g}; atol {sci(rec.atol)}",
                )
            )
        elif (
            before.max_abs is not None
            and after.max_abs is not None
            and before.max_abs > NOISE_FLOOR
            and after.max_abs * GROWTH < before.max_abs
        ):
            diff.improvements.append(Change(f"error shrank >{GROWTH:g}x", rid, sci(before.max_abs), sci(after.max_abs)))
    if only is not None:
        return diff
    for rid, before in old.items():
        if rid not in after_entries:
            diff.regressions.append(
                Change("case disappeared", rid, _state(before), "—", "in the baseline, missing from the new report")
            )
    for cls, by_backend in sorted(new["layers"].items()):
        for backend, cell in by_backend.items():
            after_status, before_status = cell["status"], base.layers.get(cls, {}).get(backend, "untested")
            if before_status == after_status:
                continue
            key = f"{cls}@{backend}"
            reasons = "; ".join(cell["reasons"][:3])
            if after_status == "failing":
                diff.regressions.append(Change("layer class newly failing", key, before_status, after_status, reasons))
            elif after_status == "rejected" and before_status == "certified":
                diff.regressions.append(Change("layer class newly rejected", key, before_status, after_status, reasons))
            elif after_status == "certified" and before_status in ("failing", "rejected", "untested"):
                diff.improvements.append(Change("layer class now certified", key, before_status, after_status))
            else:
                diff.changes.append(Change("layer class status", key, before_status, after_status, reasons))
    return diff


# --- showing a diff ----------------------------------------------------------------------------------


def diff_lines(diff: Diff) -> list[str]:
    """One plain line per change, for logs that are not a terminal (CI): grep-able, never wrapped."""
    scope = "subset" if diff.partial else "full"
    lines = [
        f"Baseline comparison ({scope}): {len(diff.regressions)} regression(s), "
        f"{len(diff.improvements)} improvement(s), {diff.compared} records in both reports"
    ]
    for label, changes in (
        ("REGRESSION", diff.regressions),
        ("improved", diff.improvements),
        ("changed", diff.changes),
    ):
        for c in changes:
            line = f"{label} {c.kind}: {c.id}: {c.before} -> {c.after}"
            lines.append(line + (f": {' '.join(c.detail.split())}" if c.detail else ""))
    return lines


def diff_table(diff: Diff):
    """The diff as a rich Table: regressions first, then improvements and other changes."""
    from rich.table import Table
    from rich.text import Text

    scope = "subset" if diff.partial else "full"
    title = (
        f"Baseline comparison ({scope}): {len(diff.regressions)} regression(s), {len(diff.improvements)} improvement(s)"
    )
    table = Table(title=title, caption=f"{diff.compared} records in both reports")
    for name in ("", "change", "record / layer@backend", "before", "after", "detail"):
        table.add_column(name, overflow="fold", no_wrap=name == "record / layer@backend")
    for sign, style, changes in (
        ("✗", "red", diff.regressions),
        ("✓", "green", diff.improvements),
        ("·", "dim", diff.changes),
    ):
        for c in changes:
            # Text, not markup: record ids hold brackets ("Dense[units=4]") rich would eat.
            table.add_row(*(Text(v) for v in (sign, c.kind, c.id, c.before, c.after, c.detail)), style=style)
    return table


def format_diff(diff: Diff, width: int = 160) -> str:
    """The diff table as plain text."""
    from rich.console import Console

    console = Console(width=width, record=True, color_system=None, force_terminal=False, file=io.StringIO())
    console.print(diff_table(diff))
    if not (diff.regressions or diff.improvements or diff.changes):
        console.print("No changes.")
    return console.export_text()


def render_diff(diff: Diff, *, terminal: bool, width: int = 160) -> str:
    """A table for a terminal, plain lines otherwise."""
    return format_diff(diff, width) if terminal else "\n".join(diff_lines(diff))
