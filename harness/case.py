"""A certification case, declared as data.

One `Case` names a Keras model (a builder), how to feed it, which Keras flavours and file formats to
certify it from, the tolerance it is held to and the outcome we expect. `harness/catalogue.py` declares
the reference suite as a list of these; `tests/` turns each into pytest cases.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Literal

FLAVOURS = ("keras3", "tf_keras")
# Keras 3 models are certified from a `.h5`, a `.keras` and the in-memory API (`save_keras_model`);
# tf_keras models from a `.h5` (what the official converter reads).
FORMATS = {"keras3": ("h5", "keras", "api"), "tf_keras": ("h5",)}
TIERS = ("layer", "graph", "app", "reject")
OUTCOMES = ("pass", "reject", "xfail")


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """An override of the per-backend tolerance policy (harness/tolerance.py); always with a reason."""

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
    `code` before any browser is involved. `xfail`: a known TF.js bug, strict (an unexpected pass fails);
    `backends` limits it to some backends (empty: all).
    """

    outcome: Literal["pass", "reject", "xfail"] = "pass"
    reason: str = ""
    code: str | None = None
    backends: tuple[str, ...] = ()

    def __post_init__(self):
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown expected outcome {self.outcome!r}")
        if self.outcome != "pass" and not self.reason:
            raise ValueError(f"expected outcome {self.outcome!r} needs a reason")
        if self.outcome == "reject" and not self.code:
            raise ValueError("an expected rejection names the converter's reason code")

    def for_backend(self, backend: str) -> "Expect":
        if self.outcome == "xfail" and self.backends and backend not in self.backends:
            return PASS
        return self


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
class Case:
    """One model of the reference suite.

    `build(k)` gets the Keras module of the flavour (`keras` or `tf_keras`) and returns a built model;
    builders must be deterministic: the harness seeds Keras before calling them. `inputs` None means
    float inputs shaped like the model's inputs.
    """

    name: str
    tier: Literal["layer", "graph", "app", "reject"]
    build: Callable[[Any], Any]
    layer_classes: tuple[str, ...]
    options: dict = dataclasses.field(default_factory=dict)
    inputs: tuple[InputSpec, ...] | None = None
    flavours: tuple[str, ...] = FLAVOURS
    batch: int = 2
    tolerance: Tolerance | None = None
    expect: Expect = PASS
    slow: bool = False

    def __post_init__(self):
        if self.tier not in TIERS:
            raise ValueError(f"{self.name}: unknown tier {self.tier!r}")
        if not set(self.flavours) <= set(FLAVOURS) or not self.flavours:
            raise ValueError(f"{self.name}: flavours must be a subset of {FLAVOURS}")
        if self.batch < 2:
            raise ValueError(f"{self.name}: batch must be >= 2")
        if (self.tier == "reject") != (self.expect.outcome == "reject"):
            raise ValueError(f"{self.name}: tier 'reject' and expected outcome 'reject' go together")

    def variants(self):
        """(flavour, format) pairs this case is certified from."""
        return [(fl, fm) for fl in self.flavours for fm in FORMATS[fl]]
