"""A record: what happened to one variant of one case on one backend. The unit of every report and of the gate.

Typed, so that the pipeline that builds records and the reports and gate that read them agree on one
definition; `to_json` / `from_json` give compat.json's form, which `schema/compat.schema.json` validates
(tests/test_record.py checks the two list the same fields).
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any


@dataclasses.dataclass
class Metric:
    """The comparison of one output: errors, cosine similarity, elements outside tolerance."""

    output: str
    shape: list[int]
    max_abs: float | None  # None: the difference is not finite (NaN or Inf where Keras has another value)
    max_rel: float | None = None
    mean_abs: float | None = None
    cosine: float | None = None
    mismatches: int | None = None
    size: int | None = None


@dataclasses.dataclass
class Step:
    """One layer on the way to the first divergence."""

    layer: str
    class_name: str | None
    max_abs: float | None
    max_rel: float | None = None


@dataclasses.dataclass
class Divergence:
    """The first layer, in topological order, whose TF.js output leaves tolerance."""

    layer: str
    class_name: str | None
    max_abs: float | None
    max_rel: float | None = None
    preceding: list[Step] = dataclasses.field(default_factory=list)
    note: str | None = None  # why it could not be localised


@dataclasses.dataclass
class ReasonCode:
    """One reason the converter gave for refusing a model (converter.support.Issue)."""

    code: str
    reason: str
    layer: str | None = None
    class_name: str | None = None
    argument: str | None = None
    value: Any = None


@dataclasses.dataclass
class AppliedTolerance:
    """The tolerance a record was held to; `reason` is set when a case overrides the policy."""

    atol: float
    rtol: float
    reason: str | None = None


@dataclasses.dataclass
class Timings:
    convert: float | None = None
    load: float | None = None
    first_predict: float | None = None
    predict_median: float | None = None
    total: float | None = None  # the variant's wall time, shared equally among its records (--shard balances by it)


@dataclasses.dataclass
class Sizes:
    model_json_bytes: int | None = None
    weights_bytes: int | None = None
    shards: int | None = None


@dataclasses.dataclass
class Quantization:
    """What a quantized conversion did to the weights: bytes against float32, and how far TF.js's
    dequantized weights moved, in units of their quantization step (<= 1: every weight within its step)."""

    dtype: str
    weights_bytes: int
    float32_bytes: int
    ratio: float
    dequant_steps: float | None  # max over weights of max |loaded - original| / step; None: not checked
    worst_weight: str | None
    budget: float | None = None  # a plan's output error budget
    plan: dict | None = None  # a plan's dtype per weight
    # The cost of quantization, beside the record's own error (TF.js against Keras with the same dequantized
    # weights): how far the outputs moved from the float32 model's, in TF.js and in Keras alone.
    float32_max_abs: float | None = None
    keras_max_abs: float | None = None


@dataclasses.dataclass
class Lowered:
    """A lowering the converter applied (converter/lowering_table.py): the rule, the user's layer, what
    replaced it."""

    rule: str
    layer: str
    detail: str


@dataclasses.dataclass
class SharedRun:
    """Whose TF.js run a record's outputs come from when its artifact is byte-identical to an earlier record's
    (harness/pipeline/shared_run.py): that record's id, and the sha256 of the artifact both loaded."""

    record: str
    artifact_sha256: str


@dataclasses.dataclass
class Record:
    """One case x flavour x format x backend. `ok`: the outcome met the expectation (pipeline.certify.is_ok)."""

    id: str
    case: str
    tier: str
    layer_classes: list[str]
    options: dict
    flavour: str
    format: str
    backend: str
    expected: str
    expected_reason: str | None
    expected_code: str | None
    expected_failure: str | None
    outcome: str
    ok: bool
    message: str | None = None
    expected_match: dict | None = None  # what a known failure must match: stage and message, or error range
    stage: str | None = None  # where in the browser it failed (js_runner/stages.py), when it did
    reason_codes: list[ReasonCode] = dataclasses.field(default_factory=list)
    metrics: list[Metric] = dataclasses.field(default_factory=list)
    max_abs: float | None = None
    tolerance: AppliedTolerance | None = None  # None: the record never got as far as a comparison
    first_divergence: Divergence | None = None
    timings_ms: Timings = dataclasses.field(default_factory=Timings)
    sizes: Sizes = dataclasses.field(default_factory=Sizes)
    quantization: Quantization | None = None
    lowerings: list[Lowered] = dataclasses.field(default_factory=list)
    shared_run: SharedRun | None = None  # None: the outputs compared are this record's own run (or there were none)

    @property
    def atol(self) -> float | None:
        """The absolute tolerance it was held to (None: it never got as far as a comparison)."""
        return self.tolerance.atol if self.tolerance is not None else None

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Record:
        d = dict(data)
        d["reason_codes"] = [ReasonCode(**r) for r in d.get("reason_codes", [])]
        d["metrics"] = [Metric(**m) for m in d.get("metrics", [])]
        d["tolerance"] = AppliedTolerance(**d["tolerance"]) if d.get("tolerance") is not None else None
        fd = d.get("first_divergence")
        if fd is not None:
            fd = dict(fd)
            fd["preceding"] = [Step(**s) for s in fd.get("preceding", [])]
            d["first_divergence"] = Divergence(**fd)
        d["timings_ms"] = Timings(**d.get("timings_ms", {}))
        d["sizes"] = Sizes(**d.get("sizes", {}))
        if d.get("quantization") is not None:
            d["quantization"] = Quantization(**d["quantization"])
        d["lowerings"] = [Lowered(**x) for x in d.get("lowerings", [])]
        d["shared_run"] = SharedRun(**d["shared_run"]) if d.get("shared_run") is not None else None
        return cls(**d)


def jsonable(value):
    """`value` if JSON can hold it, else its repr (a record's options and reason-code values)."""
    try:
        json.dumps(value, allow_nan=False)
        return value
    except (TypeError, ValueError):
        return repr(value)


def for_variant(variant, backend: str, outcome: str, **fields) -> Record:
    """A record of `variant` (harness.suite.case.Variant) on `backend`: what the case declares, the outcome, and
    `fields`; not ok until judged (harness.pipeline.verdict)."""
    case = variant.case
    expect = variant.expect_on(backend)
    return Record(
        id=variant.record_id(backend),
        case=case.name,
        tier=case.tier,
        layer_classes=list(case.layer_classes),
        options=jsonable(dict(case.options)),
        flavour=variant.flavour,
        format=variant.format,
        backend=backend,
        expected=expect.outcome,
        expected_reason=expect.reason or None,
        expected_code=expect.code,
        expected_failure=expect.fails_with,
        expected_match=expect.match(),
        outcome=outcome,
        ok=False,
        **fields,
    )


def unfinished(variant, backend: str, outcome: str, message: str) -> Record:
    """The record of a variant that never got as far as a comparison: `missing` (selected, never certified),
    `error`, `converter_error`, `reference_error`. Never ok: no expectation is met by a run that did not
    happen."""
    return for_variant(variant, backend, outcome, message=message)


def finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def worst_error(metrics: list[Metric]) -> float | None:
    """The largest max_abs over outputs; None when any is not finite or there are none."""
    values = [m.max_abs for m in metrics]
    if not values or any(v is None for v in values):
        return None
    return max(v for v in values if v is not None)
