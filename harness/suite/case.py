"""A certification case, declared as data, and its expansion into variants.

One `Case` names a Keras model (a builder), how to feed it, which Keras flavours and file formats to
certify it from, the tolerance it is held to and the outcome we expect. The tier modules of this package
declare the reference suite as lists of these; a user's model file is a Case too (`harness.pipeline.user`).
`Case.variants()` is the one expansion into (flavour, format) variants that pytest, `certify` and the
report all use.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from typing import Any, Literal

from converter.companion_table import COMPANIONS
from converter.lowering_table import LOWERINGS
from harness.vocabulary import (
    EXPECTATIONS,
    FAILURES,
    FLAVOURS,
    FORMATS,
    QUANTIZATIONS,
    TFJS_STAGES,
    TIERS,
    Tier,
    record_id,
    variant_id,
)


@dataclasses.dataclass(frozen=True)
class ToleranceOverride:
    """A looser tolerance than the per-backend policy (harness/pipeline/tolerance.py); always with a reason."""

    atol: float
    rtol: float
    reason: str

    def __post_init__(self):
        if not self.reason:
            raise ValueError("a tolerance override needs a reason")


@dataclasses.dataclass(frozen=True)
class Expect:
    """The outcome a case must have.

    `pass`: TF.js matches Keras within tolerance. `reject`: the converter refuses the model with reason
    `code` before any browser is involved. `xfail`: a known TF.js bug, declared precisely enough that no other
    failure can pass for it: `fails_with` `load_error` names the runner `stage` where TF.js throws and a
    `message` (a regular expression searched in TF.js's error); `fails_with` `mismatch` names the range
    `max_abs` (low, high) the error lies in (a non-finite error counts as infinite) and, optionally, the layer
    class `diverges_at` where TF.js's outputs first leave tolerance. A pass, or any other failure, fails the
    case. `backends` limits it to some backends (empty: all).
    """

    outcome: Literal["pass", "reject", "xfail"] = "pass"
    reason: str = ""
    code: str | None = None
    backends: tuple[str, ...] = ()
    fails_with: str | None = None
    stage: str | None = None
    message: str | None = None
    max_abs: tuple[float, float] | None = None
    diverges_at: str | None = None

    def __post_init__(self):
        if self.outcome not in EXPECTATIONS:
            raise ValueError(f"unknown expected outcome {self.outcome!r}")
        if self.outcome != "pass" and not self.reason:
            raise ValueError(f"expected outcome {self.outcome!r} needs a reason")
        if self.outcome == "reject" and not self.code:
            raise ValueError("an expected rejection names the converter's reason code")
        if (self.outcome == "xfail") != (self.fails_with is not None):
            raise ValueError("an expected failure, and only one, declares the outcome it fails with")
        if self.fails_with is not None and self.fails_with not in FAILURES:
            raise ValueError(f"fails_with must be one of {FAILURES}, not {self.fails_with!r}")
        if self.fails_with == "load_error":
            if self.stage not in TFJS_STAGES or not self.message:
                raise ValueError(f"a known load_error names the stage ({', '.join(TFJS_STAGES)}) and a message")
            re.compile(self.message)
        elif self.stage is not None or self.message is not None:
            raise ValueError("only a known load_error names a stage and a message")
        if self.fails_with == "mismatch":
            if self.max_abs is None or not 0 <= self.max_abs[0] < self.max_abs[1]:
                raise ValueError("a known mismatch names the range (low, high) of its error, max_abs")
        elif self.max_abs is not None or self.diverges_at is not None:
            raise ValueError("only a known mismatch names an error range and where it diverges")

    def for_backend(self, backend: str) -> Expect:
        if self.outcome == "xfail" and self.backends and backend not in self.backends:
            return PASS
        return self

    def match(self) -> dict | None:
        """What a known failure must match, as a record states it (None for pass and reject)."""
        if self.outcome != "xfail":
            return None
        if self.fails_with == "load_error":
            return {"stage": self.stage, "message": self.message}
        assert self.max_abs is not None
        low, high = self.max_abs
        return {"max_abs": [low, high if math.isfinite(high) else None], "diverges_at": self.diverges_at}

    def misses(self, outcome: str, *, stage=None, message=None, max_abs=None, diverged_at=None) -> str | None:
        """Why a failure is not the declared one, or None when it is (an xfail only)."""
        if outcome != self.fails_with:
            return f"expected {self.fails_with}, got {outcome}"
        if self.fails_with == "load_error":
            if stage != self.stage:
                return f"expected TF.js to fail at stage {self.stage}, it failed at {stage}"
            if not re.search(str(self.message), message or ""):
                return f"the TF.js error does not match /{self.message}/"
            return None
        assert self.max_abs is not None
        error = math.inf if max_abs is None else max_abs
        if not self.max_abs[0] <= error <= self.max_abs[1]:
            return f"max_abs {error:.3g} outside the declared range [{self.max_abs[0]:g}, {self.max_abs[1]:g}]"
        if self.diverges_at is not None and diverged_at != self.diverges_at:
            return f"expected the first divergence at a {self.diverges_at} layer, found {diverged_at}"
        return None


PASS = Expect()


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """How to generate one model input (per-sample shape; the batch dimension is added).

    kind `float`: seeded values in [-range, range] kept at least `margin` away from 0 (activation kinks);
    `int`: integers in [low, high); `bool`: random booleans.
    """

    shape: tuple[int, ...]
    kind: Literal["float", "int", "bool"] = "float"
    low: int = 0
    high: int = 10
    range: float = 2.0
    margin: float = 0.05


@dataclasses.dataclass(frozen=True)
class Omission:
    """A flavour kept out of a case on purpose, with the reason (shown in the report)."""

    flavour: str
    reason: str

    def __post_init__(self):
        if self.flavour not in FLAVOURS or not self.reason:
            raise ValueError(f"an omission names a flavour of {FLAVOURS} and a reason")


@dataclasses.dataclass(frozen=True)
class Case:
    """One model to certify.

    `build(k)` gets the Keras module of the flavour (`keras` or `tf_keras`) and returns a built model;
    builders must be deterministic: the harness seeds Keras before calling them. `inputs` None means
    float inputs shaped like the model's inputs. Every flavour left out of `flavours` is listed in
    `omitted` with its reason. `formats` narrows each flavour's formats to those it names (a user's file
    has one).
    `quantized` lists the quantized forms it is also certified in (from its first variant), with
    `quantized_expect` overriding the expectation of some (a known failure, with its reason).
    """

    name: str
    tier: Tier
    build: Callable[[Any], Any]
    layer_classes: tuple[str, ...]
    options: dict = dataclasses.field(default_factory=dict)
    inputs: tuple[InputSpec, ...] | None = None
    flavours: tuple[str, ...] = FLAVOURS
    batch: int = 2
    tolerance: ToleranceOverride | None = None
    expect: Expect = PASS
    slow: bool = False
    omitted: tuple[Omission, ...] = ()
    formats: tuple[str, ...] | None = None
    quantized: tuple[str, ...] = ()
    quantized_expect: tuple[tuple[str, Expect], ...] = ()
    fit: Any = None  # a `train` case: how it trains (harness.suite.compiled.Fit)
    # Known TF.js failures of some backends besides `expect` (each an xfail naming its backends): a WebGPU
    # bug on a case whose other backends pass, say. They apply to the float32 variants.
    known_failures: tuple[Expect, ...] = ()
    lowered: tuple[str, ...] = ()  # the lowerings (converter/lowering_table.py) the converter must apply
    companion: tuple[str, ...] = ()  # the companion rules (converter/companion_table.py) it converts through

    def __post_init__(self):
        if self.tier not in TIERS:
            raise ValueError(f"{self.name}: unknown tier {self.tier!r}")
        if not set(self.flavours) <= set(FLAVOURS) or not self.flavours:
            raise ValueError(f"{self.name}: flavours must be a subset of {FLAVOURS}")
        if self.batch < 2:
            raise ValueError(f"{self.name}: batch must be >= 2")
        if self.tier == "reject" and self.expect.outcome != "reject":
            raise ValueError(f"{self.name}: a case of tier 'reject' expects a rejection")
        if self.expect.outcome == "reject" and self.tier not in ("reject", "train"):
            raise ValueError(f"{self.name}: only the reject and train tiers expect a rejection")
        if (self.tier == "train") != (self.fit is not None):
            raise ValueError(f"{self.name}: a train case, and only one, says how it trains (fit)")
        left_out = set(FLAVOURS) - set(self.flavours)
        if self.tier != "user" and {o.flavour for o in self.omitted} != left_out:
            raise ValueError(
                f"{self.name}: flavours left out ({', '.join(sorted(left_out)) or 'none'}) "
                f"must each be listed in `omitted` with a reason"
            )
        if self.formats is not None and not any(f in FORMATS[fl] for fl in self.flavours for f in self.formats):
            raise ValueError(f"{self.name}: formats {self.formats} leave no format of {self.flavours}")
        if self.formats is not None and not set(self.formats) <= {f for fs in FORMATS.values() for f in fs}:
            raise ValueError(f"{self.name}: unknown formats among {self.formats}")
        if not set(self.quantized) <= set(QUANTIZATIONS) or (self.tier in ("reject", "user") and self.quantized):
            raise ValueError(f"{self.name}: quantized forms are among {QUANTIZATIONS}, for cases that convert")
        if self.tier == "lowered" and not self.lowered:
            raise ValueError(f"{self.name}: a lowered case names the lowerings it exercises")
        if self.tier == "companion" and not self.companion:
            raise ValueError(f"{self.name}: a companion case names the companion rules it exercises")
        if self.companion and self.tier not in ("companion", "train"):
            raise ValueError(f"{self.name}: only companion and train cases convert with the companion module")
        if not set(self.companion) <= set(COMPANIONS):
            raise ValueError(f"{self.name}: unknown companion rule(s) {sorted(set(self.companion) - set(COMPANIONS))}")
        if not set(self.lowered) <= set(LOWERINGS):
            raise ValueError(f"{self.name}: unknown lowering(s) {sorted(set(self.lowered) - set(LOWERINGS))}")
        if not {form for form, _ in self.quantized_expect} <= set(self.quantized):
            raise ValueError(f"{self.name}: quantized_expect names a form the case is not quantized in")
        for known in self.known_failures:
            if known.outcome != "xfail" or not known.backends:
                raise ValueError(f"{self.name}: a known failure is an xfail naming the backends it fails on")
        claimed = [b for e in (self.expect, *self.known_failures) if e.outcome == "xfail" for b in e.backends]
        if len(claimed) != len(set(claimed)):
            raise ValueError(f"{self.name}: two expected failures claim the same backend")

    def variants(self) -> list[Variant]:
        """The variants this case is certified from: every (flavour, format), then its quantized forms
        from the first of them (quantization acts on the weights, whatever the file they came from)."""
        plain = [
            Variant(self, fl, fm)
            for fl in self.flavours
            for fm in FORMATS[fl]
            if self.formats is None or fm in self.formats
        ]
        return plain + [Variant(self, plain[0].flavour, plain[0].format, q) for q in self.quantized]

    def expect_for(self, quantization: str | None) -> Expect:
        """The expectation of a variant: the case's, or for a quantized form its override (default: pass)."""
        if quantization is None:
            return self.expect
        return dict(self.quantized_expect).get(quantization, PASS)


@dataclasses.dataclass(frozen=True)
class Variant:
    """A case from one Keras flavour, in one format (and maybe one quantized form): one conversion,
    certified on every backend."""

    case: Case
    flavour: str
    format: str
    quantization: str | None = None

    @property
    def id(self) -> str:
        return variant_id(self.case.name, self.flavour, self.format, self.quantization)

    def record_id(self, backend: str) -> str:
        return record_id(self.case.name, self.flavour, self.format, backend, self.quantization)

    @property
    def expect(self) -> Expect:
        return self.case.expect_for(self.quantization)

    def expect_on(self, backend: str) -> Expect:
        """What this variant must do on `backend`: a known failure of that backend, else the case's."""
        if self.quantization is None:
            for known in self.case.known_failures:
                if backend in known.backends:
                    return known
        return self.expect.for_backend(backend)


def expand(cases, backends) -> list[tuple[Variant, str]]:
    """Every (variant, backend) certifying `cases` on `backends` produces: one record each."""
    return [(v, b) for case in cases for v in case.variants() for b in backends]


def certification_params(cases, backends) -> list[tuple[str, Variant, str | None]]:
    """(test id, variant, backend or None) for each certification test: one per backend, except an
    expected rejection, checked once per variant (the converter alone decides, for every backend)."""
    out: list[tuple[str, Variant, str | None]] = []
    for case in cases:
        for v in case.variants():
            if case.expect.outcome == "reject":
                out.append((v.id, v, None))
            else:
                out += [(v.record_id(b), v, b) for b in backends]
    return out
