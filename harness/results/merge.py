"""Joining the compat.json of the N shards of one split run (`--shard I/N`) into one report.

Each shard's report says which shard it is and what the whole selection was (a count and a digest of its
record ids, harness.results.shards.shard_info). The merge refuses, naming the files, anything that would
make the joined report lie: a report that is no shard, shards of different splits or selections, a shard
given twice, a shard missing, a record in two shards, or a union that is not the whole selection. The
joined report is built again from the records (rollup and summary recomputed), so it validates and gates
exactly like a single run of the same selection.
"""

from __future__ import annotations

from pathlib import Path

from harness.results import compat
from harness.results.compat import ReportError
from harness.results.environment import merge as merge_environments
from harness.results.shards import Shard, shard_info, unit_of


def _shard_filter(text: str) -> bool:
    return text.startswith("--shard ")


def merge(paths: list[Path], *, command: str) -> dict:
    """The report joining the shard reports at `paths` (ReportError when they do not fit together)."""
    if not paths:
        raise ReportError("nothing to merge: give the compat.json of every shard")
    reports = [(Path(p), compat.load(p)) for p in paths]
    shards: list[tuple[Path, dict]] = []
    for path, data in reports:
        info = data["run"].get("shard")
        if not info:
            raise ReportError(f"{path}: not a shard's report (its run had no --shard)")
        shards.append((path, info))
    first_path, first = shards[0]
    for path, info in shards:
        for key in ("count", "total", "selection"):
            if info[key] != first[key]:
                raise ReportError(
                    f"{path} and {first_path} are shards of different splits ({key}: {info[key]} vs {first[key]})"
                )
    seen: dict[int, Path] = {}
    for path, info in shards:
        if info["index"] in seen:
            raise ReportError(f"{seen[info['index']]} and {path} are both shard {info['index']}/{info['count']}")
        seen[info["index"]] = path
    missing = sorted(set(range(1, first["count"] + 1)) - set(seen))
    if missing:
        n = first["count"]
        raise ReportError(f"shard(s) {', '.join(f'{i}/{n}' for i in missing)} missing: give all {n}")
    filters = [[f for f in data["run"]["filters"] if not _shard_filter(f)] for _, data in reports]
    if any(f != filters[0] for f in filters):
        raise ReportError(f"the shards ran different selections: {sorted({' '.join(f) for f in filters})}")
    records: list = []
    owner: dict[str, Path] = {}
    for path, data in reports:
        for record in data["records"]:
            if record.id in owner:
                raise ReportError(f"record {record.id} is in both {owner[record.id]} and {path}")
            owner[record.id] = path
            records.append(record)
    union = shard_info(Shard(1, 1), [unit_of(r) for r in records], len(records))
    if (union["total"], union["selection"]) != (first["total"], first["selection"]):
        raise ReportError(
            f"the shards' {union['total']} records are not the {first['total']} of their selection "
            "(shards split with different costs files?)"
        )
    omitted = {(o["case"], o["flavour"]): o for _, data in reports for o in data["omitted"]}
    return compat.build_report(
        records,
        merge_environments([data["environment"] for _, data in reports]),
        tolerances=reports[0][1]["tolerances"],
        duration_s=max(data["run"]["duration_s"] for _, data in reports),
        command=command,
        filters=filters[0],
        omitted=list(omitted.values()),
        merged_from=[str(p) for p, _ in reports],
    )
