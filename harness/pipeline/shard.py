"""Splitting one run across machines: deterministic shards, balanced by measured cost.

The unit is a variant (every backend of a case x flavour x format stays together: one conversion serves
them all) or, for users' models, a file. Costs come from `reports/costs.json`, the seconds each variant took
in the run the baseline was taken from (written with the baseline); a variant it does not know costs the
median of its tier. Files cost their size. Units go, most expensive first, to the shard with the least cost
so far (ties: the lower index; equal costs: by id), so every machine computes the same split from the same
suite and costs file, and `tfjs-certify merge` can check the shards fit together again.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
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


def split(costs: dict[str, float], count: int) -> list[list[str]]:
    """The units of `costs` in `count` shards: longest processing time first onto the least-loaded shard."""
    shards: list[list[str]] = [[] for _ in range(count)]
    loads = [0.0] * count
    for unit in sorted(costs, key=lambda u: (-costs[u], u)):
        i = min(range(count), key=lambda k: (loads[k], k))
        shards[i].append(unit)
        loads[i] += costs[unit]
    return shards


def pick(costs: dict[str, float], shard: Shard) -> set[str]:
    """The units of shard `shard`."""
    return set(split(costs, shard.count)[shard.index - 1])


# --- what a unit costs ---------------------------------------------------------------------------------


def load_costs(path: Path = COSTS) -> dict[str, float]:
    """Measured seconds per variant id; empty when there is no costs file (every unit then costs its tier's
    default, 1 s: still a deterministic split, by count)."""
    try:
        return {k: float(v) for k, v in json.loads(Path(path).read_text())["variants"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def variant_costs(variants: Iterable, measured: dict[str, float]) -> dict[str, float]:
    """Each variant's cost: as measured, else the median measured cost of its tier, else 1 s."""
    variants = list(variants)
    tier_of = {v.id: v.case.tier for v in variants}
    by_tier: dict[str, list[float]] = {}
    for vid, seconds in measured.items():
        if vid in tier_of:
            by_tier.setdefault(tier_of[vid], []).append(seconds)
    default = {tier: statistics.median(values) for tier, values in by_tier.items()}
    return {v.id: measured.get(v.id, default.get(v.case.tier, 1.0)) for v in variants}


def select_variants(variants: Iterable, shard: Shard | None, measured: dict[str, float] | None = None) -> list:
    """The variants of `shard` (all of them when None), in their original order."""
    variants = list(variants)
    if shard is None:
        return variants
    chosen = pick(variant_costs(variants, load_costs() if measured is None else measured), shard)
    return [v for v in variants if v.id in chosen]


def select_files(paths: list[Path], shard: Shard | None) -> list[Path]:
    """The model files of `shard`, balanced by file size (a model's cost grows with its weights)."""
    if shard is None:
        return list(paths)
    chosen = pick({str(p): float(p.stat().st_size) + 1.0 for p in paths}, shard)
    return [p for p in paths if str(p) in chosen]


def costs_from_report(data: dict) -> dict:
    """costs.json from a full run's report: each variant's seconds, summed over its records."""
    seconds: dict[str, float] = {}
    for r in data["records"]:
        total = r.timings_ms.total
        if total is not None and r.tier != "user":
            seconds[unit_of(r)] = seconds.get(unit_of(r), 0.0) + total / 1000
    return {
        "about": "seconds each variant took in the run the baseline was taken from; --shard balances by them "
        "(harness/pipeline/shard.py)",
        "variants": {k: round(v, 2) for k, v in sorted(seconds.items())},
    }
