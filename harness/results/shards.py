"""What a shard's report says of the split it belongs to, and the costs a split is balanced by.

`harness/pipeline/shard.py` splits a selection into shards; a shard's compat.json carries `shard_info`, so
that `harness/results/merge.py` can check the shards fit together again (`unit_of` names what was split),
and a full run's report gives the costs the next split is balanced by (`costs_from_report`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

COSTS = Path(__file__).resolve().parents[2] / "reports" / "costs.json"


@dataclasses.dataclass(frozen=True)
class Shard:
    """Shard `index` (1-based) of `count`."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`I/N`, as given to --shard; ValueError with a one-line reason otherwise."""
        try:
            index, count = (int(part) for part in str(text).split("/"))
        except ValueError:
            raise ValueError(f"--shard expects I/N (shard I of N, from 1), got {text!r}") from None
        if count < 1 or not 1 <= index <= count:
            raise ValueError(f"--shard {text}: I must be between 1 and N")
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def to_json(self) -> dict:
        return {"index": self.index, "count": self.count}


def shard_info(shard: Shard, units: Iterable[str], records: int) -> dict:
    """What a shard's report says of its split: which shard, and the whole selection (every shard together):
    its units' digest and its number of records, so `merge` can tell the shards of one split from a mix, and
    see a shard or a record missing."""
    import hashlib

    digest = hashlib.sha256("\n".join(sorted(set(units))).encode()).hexdigest()[:16]
    return {**shard.to_json(), "total": records, "selection": digest}


def unit_of(record) -> str:
    """The unit a record was split with: its variant, or for a user's model, its file's case name."""
    if record.tier == "user":
        return record.case
    suffix = f"-{record.backend}"
    if not record.id.endswith(suffix):
        raise ValueError(f"record id {record.id} does not end with its backend")
    return record.id[: -len(suffix)]  # a record's id is its variant's id and its backend


def costs_from_report(data: dict) -> dict:
    """costs.json from a full run's report: each variant's seconds, summed over its records."""
    seconds: dict[str, float] = {}
    for r in data["records"]:
        total = r.timings_ms.total
        if total is not None and r.tier != "user":
            seconds[unit_of(r)] = seconds.get(unit_of(r), 0.0) + total / 1000
    return {
        "about": "seconds each variant took in the run the baseline was taken from; --shard balances by them "
        "(harness/pipeline/shard.py, harness/results/shards.py)",
        "variants": {k: round(v, 2) for k, v in sorted(seconds.items())},
    }
