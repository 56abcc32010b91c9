"""What a backend certified on a sample covers by default.

WebGPU runs on SwiftShader here, 5 to 10 times slower than cpu (a new shader for every layer shape), so
`make test` certifies it on a sample of the suite: every layer class once per flavour — a greedy cover of
the float32 variants of the layer, lowered, graph and real tiers, fewest variants first — and one app. Naming
the backend (`--backend webgpu`) certifies every variant on it. The sample is a function of the suite alone,
so pytest, `tfjs-certify certify` and the baseline agree on it.
"""

from __future__ import annotations

from collections.abc import Iterable

from harness.suite.case import Case, Variant
from harness.vocabulary import BACKENDS, DEFAULT_BACKENDS, FLAVOURS, QUANTIZED_BACKENDS, SAMPLED_BACKENDS

COVERED_TIERS = ("layer", "lowered", "graph", "real", "companion")
APP = "MobileNetV2[32x32x3]"  # the app certified on a sampled backend by default: small, and every common layer


def sample(cases: Iterable[Case]) -> frozenset[str]:
    """The ids of the variants a sampled backend certifies by default."""
    cases = list(cases)
    chosen: set[str] = set()
    for flavour in FLAVOURS:
        pool = [
            v
            for c in cases
            if c.tier in COVERED_TIERS
            for v in c.variants()
            if v.flavour == flavour
            and v.quantization is None
            and all(v.expect_on(b).outcome == "pass" for b in SAMPLED_BACKENDS)
        ]
        left = {cls for v in pool for cls in v.case.layer_classes}
        while left:
            best = max(pool, key=lambda v: len(left & set(v.case.layer_classes)))
            chosen.add(best.id)
            left -= set(best.case.layer_classes)
    apps = [v for c in cases if c.name == APP for v in c.variants() if v.quantization is None]
    chosen.update(v.id for v in apps[:1])
    return frozenset(chosen)


def backends_for(variant: Variant, backends: Iterable[str], sampled: frozenset[str], named: bool) -> list[str]:
    """The backends among `backends` that certify `variant`: all of them when the run named its backends
    (`named`), and always for an expected refusal (decided by the converter alone, for every backend).
    Otherwise a sampled backend (webgpu) certifies only the variants `sampled` holds, and a quantized form only
    QUANTIZED_BACKENDS (harness/vocabulary.py says why)."""
    if named or variant.case.expect.outcome == "reject":
        return list(backends)
    if variant.quantization is not None:
        return [b for b in backends if b in QUANTIZED_BACKENDS]
    return [b for b in backends if b not in SAMPLED_BACKENDS or variant.id in sampled]


def suite_records(cases) -> list[tuple[Variant, str]]:
    """Every (variant, backend) a full run of `cases` certifies when it names no backend: each variant on
    DEFAULT_BACKENDS (a quantized form on QUANTIZED_BACKENDS), the sample on SAMPLED_BACKENDS too, and an
    expected refusal on every backend."""
    cases = list(cases)
    sampled = sample(cases)
    backends = [b for b in BACKENDS if b in DEFAULT_BACKENDS or b in SAMPLED_BACKENDS]
    return [(v, b) for c in cases for v in c.variants() for b in backends_for(v, backends, sampled, named=False)]
