"""The regression gate: what changed between a baseline compat.json and a new one.

A regression is an outcome downgrade (ok -> not ok, or pass -> anything else), a selected case that left
no record (outcome `missing`), a layer class newly rejected or failing on a backend, an error grown more
than 10x and above 1e-6, a new case that is not ok, or a case that disappeared (full comparisons only).
Improvements are listed, never gate.
"""
from __future__ import annotations

import dataclasses

from harness import report

GROWTH = 10.0  # an error must move by this factor to count as grown or shrunk
NOISE_FLOOR = 1e-6  # errors at or below this are float32 noise: growth there is no regression


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


def _state(rec) -> str:
    return f"{rec['outcome']}{'' if rec['ok'] else ' (not ok)'}"


def _layers(data, only_ids):
    """The layer-class rollup to compare: as stored, or recomputed over the compared records only."""
    if only_ids is None:
        return data["layers"]
    records = [r for r in data["records"] if r["id"] in only_ids]
    return report.rollup(records, report.BACKENDS)[0]


def compare(baseline: dict, new: dict, *, only_ids=None) -> Diff:
    """Compare two validated compat reports, record by record and layer class by layer class.

    With `only_ids` (a subset run), only those record ids are compared, the layer rollups are
    recomputed over them on both sides, and cases missing from `new` are not reported.
    """
    only = None if only_ids is None else set(only_ids)
    old_recs = {r["id"]: r for r in baseline["records"] if only is None or r["id"] in only}
    new_recs = {r["id"]: r for r in new["records"] if only is None or r["id"] in only}
    diff = Diff(partial=only is not None)

    for rid, after in new_recs.items():
        before = old_recs.get(rid)
        if after["outcome"] == "missing":  # selected, never certified: whatever it was before
            diff.regressions.append(Change("left no record", rid, _state(before) if before else "—", "missing",
                                           after["message"] or ""))
            diff.compared += before is not None
            continue
        if before is None:
            change = Change("new case", rid, "—", _state(after), after["message"] or "")
            (diff.improvements if after["ok"] else diff.regressions).append(change)
            continue
        diff.compared += 1
        b_err, a_err = before["max_abs"], after["max_abs"]
        errors = f"max_abs {report.sci(b_err)} -> {report.sci(a_err)}"
        downgrade = (before["ok"] and not after["ok"]) or (before["outcome"] == "pass" and after["outcome"] != "pass")
        if downgrade:
            detail = after["message"] or errors
            diff.regressions.append(Change("outcome downgrade", rid, _state(before), _state(after), detail))
        elif not before["ok"] and after["ok"]:
            diff.improvements.append(Change("now ok", rid, _state(before), _state(after), errors))
        elif before["outcome"] != after["outcome"]:
            diff.changes.append(Change("outcome changed", rid, _state(before), _state(after), after["message"] or ""))
        if _grew(b_err, a_err):
            diff.regressions.append(Change(f"error grew >{GROWTH:g}x", rid, report.sci(b_err), report.sci(a_err),
                                           f"above {NOISE_FLOOR:g}; atol {report.sci(after['tolerance']['atol'])}"))
        elif b_err is not None and a_err is not None and b_err > NOISE_FLOOR and a_err * GROWTH < b_err:
            diff.improvements.append(Change(f"error shrank >{GROWTH:g}x", rid, report.sci(b_err), report.sci(a_err)))

    if only is None:
        for rid, before in old_recs.items():
            if rid not in new_recs:
                diff.regressions.append(Change("case disappeared", rid, _state(before), "—",
                                               "in the baseline, missing from the new report"))

    old_layers, new_layers = _layers(baseline, only), _layers(new, only)
    for cls, by_backend in sorted(new_layers.items()):
        for backend, cell in by_backend.items():
            after = cell["status"]
            before = old_layers.get(cls, {}).get(backend, {}).get("status", "untested")
            if before == after:
                continue
            key = f"{cls}@{backend}"
            reasons = "; ".join(cell["reasons"][:3])
            if after == "failing":
                diff.regressions.append(Change("layer class newly failing", key, before, after, reasons))
            elif after == "rejected" and before == "certified":
                diff.regressions.append(Change("layer class newly rejected", key, before, after, reasons))
            elif after == "certified" and before in ("failing", "rejected", "untested"):
                diff.improvements.append(Change("layer class now certified", key, before, after))
            else:
                diff.changes.append(Change("layer class status", key, before, after, reasons))
    return diff


def diff_table(diff: Diff):
    """The diff as a rich Table: regressions first, then improvements and other changes."""
    from rich.table import Table
    from rich.text import Text

    scope = "subset" if diff.partial else "full"
    title = f"Baseline comparison ({scope}): {len(diff.regressions)} regression(s), {len(diff.improvements)} improvement(s)"
    table = Table(title=title, caption=f"{diff.compared} records in both reports")
    for name in ("", "change", "record / layer@backend", "before", "after", "detail"):
        table.add_column(name, overflow="fold", no_wrap=name == "record / layer@backend")
    for sign, style, changes in (("✗", "red", diff.regressions), ("✓", "green", diff.improvements),
                                 ("·", "dim", diff.changes)):
        for c in changes:
            # Text, not markup: record ids hold brackets ("Dense[units=4]") rich would eat.
            table.add_row(*(Text(v) for v in (sign, c.kind, c.id, c.before, c.after, c.detail)), style=style)
    return table


def diff_lines(diff: Diff) -> list[str]:
    """The diff as one plain line per change, for logs that are not a terminal (CI): grep-able, unwrapped."""
    scope = "subset" if diff.partial else "full"
    lines = [f"Baseline comparison ({scope}): {len(diff.regressions)} regression(s), "
             f"{len(diff.improvements)} improvement(s), {diff.compared} records in both reports"]
    for label, changes in (("REGRESSION", diff.regressions), ("improved", diff.improvements),
                           ("changed", diff.changes)):
        for c in changes:
            line = f"{label} {c.kind}: {c.id}: {c.before} -> {c.after}"
            lines.append(line + (f": {' '.join(c.detail.split())}" if c.detail else ""))
    return lines


def render_diff(diff: Diff, *, terminal: bool, width: int = 160) -> str:
    """A table for a terminal, plain lines otherwise."""
    return format_diff(diff, width) if terminal else "\n".join(diff_lines(diff))


def format_diff(diff: Diff, width: int = 160) -> str:
    """The diff table as plain text (for logs and tests)."""
    from rich.console import Console

    console = Console(width=width, record=True, color_system=None, force_terminal=False, file=_Null())
    console.print(diff_table(diff))
    if not (diff.regressions or diff.improvements or diff.changes):
        console.print("No changes.")
    return console.export_text()


class _Null:
    def write(self, _):
        return 0

    def flush(self):
        pass
