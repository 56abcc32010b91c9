"""The one rule, and the one record constructor every kind of certification uses.

`is_ok` is the verdict pytest, `tfjs-certify certify` and the gate share: the record's outcome is the one its
case declares, and a known failure failed exactly as declared (its stage and message, or its error range and
where it diverges). `record` turns what happened on one backend (`Run`) into a typed `Record`.
"""

from __future__ import annotations

import dataclasses

from harness.pipeline.convert import Converted
from harness.results.record import AppliedTolerance, Divergence, Record, SharedRun, Timings, for_variant, worst_error
from harness.suite.case import Expect, Variant
from harness.vocabulary import TFJS_STAGES


@dataclasses.dataclass
class Run:
    """What happened to one variant on one backend, before it is judged."""

    outcome: str
    message: str | None = None
    stage: str | None = None  # the runner stage a browser failure happened at
    metrics: list = dataclasses.field(default_factory=list)
    divergence: Divergence | None = None
    timings: dict = dataclasses.field(default_factory=dict)
    quantized: dict = dataclasses.field(default_factory=dict)  # fields of the record's Quantization
    shared_run: SharedRun | None = None  # the outputs are those of a byte-identical artifact's earlier run


def from_runner_error(error) -> Run:
    """A `js_runner.RunnerError` as a run: TF.js threw (a load or call stage) is `load_error`; the browser
    failing (no backend, a hang, a crash, a lost model) is the harness's `error`."""
    outcome = "load_error" if error.stage in TFJS_STAGES else "error"
    return Run(outcome, message=" ".join(str(error.message).split())[:500], stage=error.stage)


def misses(expect: Expect, record: Record) -> str | None:
    """Why `record` does not meet `expect`, or None when it does."""
    if expect.outcome == "pass":
        return None if record.outcome == "pass" else f"expected pass, got {record.outcome}"
    if expect.outcome == "reject":
        codes = [rc.code for rc in record.reason_codes]
        if record.outcome == "rejected" and expect.code in codes:
            return None
        return f"expected a refusal with code {expect.code}, got {record.outcome} {codes or ''}".strip()
    divergence = record.first_divergence.class_name if record.first_divergence else None
    return expect.misses(
        record.outcome, stage=record.stage, message=record.message, max_abs=record.max_abs, diverged_at=divergence
    )


def is_ok(expect: Expect, record: Record) -> bool:
    """The one rule: did the record meet its expectation?"""
    return misses(expect, record) is None


def record(variant: Variant, backend: str, converted: Converted, tolerance, run: Run | None = None) -> Record:
    """The record of `variant` on `backend`: what the converter said and, when it converted, what the run gave.
    A case that declares lowerings (companion rules) must have been converted through exactly those."""
    case = variant.case
    expect = variant.expect_on(backend)
    run = run or Run(converted.status)
    message = run.message or converted.message or None
    rules = sorted({x.rule for x in converted.lowerings})
    wrong = []
    if converted.status == "ok" and case.lowered and rules != sorted(case.lowered):
        wrong.append(f"converted through lowerings {rules or 'none'}, but the case declares {sorted(case.lowered)}")
    if converted.status == "ok" and case.companion and converted.companion != sorted(set(case.companion)):
        wrong.append(
            f"run by companion rules {converted.companion or 'none'}, but the case declares {sorted(case.companion)}"
        )
    if wrong:
        message = "; ".join(m for m in (*wrong, message) if m)
    result = for_variant(
        variant,
        backend,
        run.outcome,
        message=message,
        stage=run.stage,
        reason_codes=list(converted.issues),
        metrics=list(run.metrics),
        max_abs=worst_error(list(run.metrics)) if run.metrics else None,
        tolerance=AppliedTolerance(tolerance.atol, tolerance.rtol, tolerance.reason) if tolerance else None,
        first_divergence=run.divergence,
        timings_ms=Timings(convert=converted.convert_ms, **run.timings),
        sizes=converted.sizes,
        quantization=dataclasses.replace(converted.quantization, **run.quantized) if converted.quantization else None,
        lowerings=list(converted.lowerings),
        shared_run=run.shared_run,
    )
    result.ok = not wrong and is_ok(expect, result)
    return result
