"""Splitting one run across machines: deterministic shards, balanced by measured cost.

The unit is a variant (every backend of a case x flavour x format stays together: one conversion serves
them all) or, for users' models, a file; the variants that can share TF.js runs (a case's float32 formats in one
flavour: harness/pipeline/shared_run.py) go to one shard together. Costs come from `reports/costs.json`, the
seconds each variant took in the run the baseline was taken from (written with the baseline); a variant it does
not know costs the median of its tier. Files cost their size. Units go, most expensive first, to the shard with
the least cost so far (ties: the lower index; equal costs: by id), so every machine computes the same split from
the same suite and costs file, and `tfjs-certify merge` can check the shards fit together again.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable
from pathlib import Path

from harness.results.shards import COSTS, Shard, shard_info, unit_of

__all__ = [
    "COSTS",
    "Shard",
    "load_costs",
    "pick",
    "select_files",
    "select_variants",
    "shard_info",
    "share_group",
    "split",
    "unit_of",
    "variant_costs",
]


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


def share_group(variant) -> str:
    """The variants that may share TF.js runs, kept in one shard so that they do: a case's float32 formats in
    one flavour (Keras 3's .h5 and .keras convert to the same bytes); a quantized form on its own."""
    if variant.quantization is not None:
        return variant.id
    return f"{variant.case.name}-{variant.flavour} (float32)"


def select_variants(variants: Iterable, shard: Shard | None, measured: dict[str, float] | None = None) -> list:
    """The variants of `shard` (all of them when None), in their original order."""
    variants = list(variants)
    if shard is None:
        return variants
    costs = variant_costs(variants, load_costs() if measured is None else measured)
    groups: dict[str, float] = {}
    group_of = {v.id: share_group(v) for v in variants}
    for v in variants:
        groups[group_of[v.id]] = groups.get(group_of[v.id], 0.0) + costs[v.id]
    chosen = pick(groups, shard)
    return [v for v in variants if group_of[v.id] in chosen]


def select_files(paths: list[Path], shard: Shard | None) -> list[Path]:
    """The model files of `shard`, balanced by file size (a model's cost grows with its weights)."""
    if shard is None:
        return list(paths)
    chosen = pick({str(p): float(p.stat().st_size) + 1.0 for p in paths}, shard)
    return [p for p in paths if str(p) in chosen]
