"""The words every part of the harness shares, defined once: backends, flavours, formats, tiers,
expectations, outcomes, and how a record is named.

`compat.schema.json` spells the same enumerations; tests/test_record.py checks they agree.
"""

from __future__ import annotations

from typing import Literal

from js_runner import stages

# TF.js backends a record can be certified on, in report order.
BACKENDS = ("cpu", "wasm", "webgl", "webgpu")
Backend = Literal["cpu", "wasm", "webgl", "webgpu"]
# What a run certifies on when it names no backend: a user's models on these; the reference suite on these,
# every variant, and on the sampled backends, a sample of the suite (harness/suite/sample.py): WebGPU runs on
# SwiftShader here, 5 to 10 times slower than cpu. Naming a backend certifies everything on it.
DEFAULT_BACKENDS = ("cpu", "wasm", "webgl")
SAMPLED_BACKENDS = ("webgpu",)

# Keras flavours: Keras 3 (`keras`) and Keras 2 (`tf_keras`).
FLAVOURS = ("keras3", "tf_keras")
Flavour = Literal["keras3", "tf_keras"]
# A user's file the converter could not read has no known flavour.
UNKNOWN_FLAVOUR = "unknown"

# How a model reaches the converter, per flavour: Keras 3 from a `.h5`, a `.keras` and the in-memory API
# (`save_keras_model`); tf_keras from a `.h5` (what the official converter reads).
FORMATS: dict[str, tuple[str, ...]] = {"keras3": ("h5", "keras", "api"), "tf_keras": ("h5",)}
FILE_SUFFIX = {"h5": ".h5", "keras": ".keras"}

# Quantized forms a variant can be certified in (`plan`: per-weight dtypes meeting an error budget);
# None is float32, as converted by default.
QUANTIZATIONS = ("float16", "uint16", "uint8", "plan")
# What the reference suite certifies its quantized forms on when a run names no backend. TF.js dequantizes a
# quantized weight to float32 in its io module (tfjs-core io_utils `decodeWeight`), on the CPU, before any backend
# holds it: what a form adds to its float32 variant (the stored bytes and their dequantization) is the same on
# every backend, and on webgl a form runs the float32 variant's kernels. The 67 quantized records on webgl took 57 s of
# make test (measured); naming a backend (`--backend webgl`) certifies them there too. A user's own quantized
# model is certified on every backend the run has.
QUANTIZED_BACKENDS = ("cpu", "wasm")

# Tiers of the reference suite (`lowered`: constructs TF.js runs only as the converter rewrites them;
# `companion`: constructs only the companion module's JavaScript runs; `real`: small models written as users write
# them; `train`: compiled models TF.js must evaluate and train as Keras does), plus `user` for a user's own file.
TIERS = ("layer", "lowered", "companion", "graph", "app", "real", "reject", "train", "user")
Tier = Literal["layer", "lowered", "companion", "graph", "app", "real", "reject", "train", "user"]

# What a case is declared to do.
EXPECTATIONS = ("pass", "reject", "xfail")
Expectation = Literal["pass", "reject", "xfail"]
# The outcomes a known failure (xfail) may be declared to fail with; any other outcome fails the case.
FAILURES = ("mismatch", "load_error")
# Where in the browser a record failed (js_runner/stages.py). A known `load_error` names one of TFJS_STAGES;
# a failure at another stage, or at a BROWSER_STAGE (the page hung or died), is not the declared one.
TFJS_STAGES = stages.TFJS
BROWSER_STAGES = stages.BROWSER
STAGES = stages.ALL

# What happened to one record.
OUTCOMES = (
    "pass",  # TF.js matches Keras within tolerance
    "mismatch",  # TF.js ran but its outputs leave tolerance
    "load_error",  # TF.js could not load the model, or built it but could not run it
    "rejected",  # the converter refused the model, with reason codes
    "converter_error",  # the converter failed (or could not read the file)
    "reference_error",  # the Keras side could not build, load, feed, run or save the model
    "unavailable",  # the backend could not start in this browser
    "error",  # anything else, the harness itself included
    "missing",  # selected, but the run left no record (a crash, a dead worker)
)
Outcome = Literal[
    "pass",
    "mismatch",
    "load_error",
    "rejected",
    "converter_error",
    "reference_error",
    "unavailable",
    "error",
    "missing",
]

# Per layer class and backend, in the report's rollup.
STATUSES = ("certified", "rejected", "failing", "untested")


def variant_id(case: str, flavour: str, fmt: str, quantization: str | None = None) -> str:
    """`Conv2D[padding=same]-keras3-h5`: one case, from one flavour, in one format (`...-h5-uint8` quantized)."""
    return f"{case}-{flavour}-{fmt}" + (f"-{quantization}" if quantization else "")


def record_id(case: str, flavour: str, fmt: str, backend: str, quantization: str | None = None) -> str:
    """`Conv2D[padding=same]-keras3-h5-wasm`: a variant on one backend; unique in a report."""
    return f"{variant_id(case, flavour, fmt, quantization)}-{backend}"
