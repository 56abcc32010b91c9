"""The tolerance policy: one per backend, written once. Per-case overrides live on the case, with a reason.

An element matches when |tfjs - keras| <= atol + rtol * |keras| (numpy.isclose's rule).

- cpu and wasm compute in float32 like Keras on the CPU; differences come from summation order and
  transcendental approximations, so 1e-4 absolute / 1e-3 relative leaves room for deep models while
  catching any real divergence (a wrong weight, a mis-read argument gives errors of 1e-2 and more).
- webgl computes in float32 on SwiftShader here but with GPU-style exp/log/tanh approximations and
  texture packing: 1e-3 / 1e-3, TF.js's own test tolerance for float32 (tfjs-core test_util).
- webgl at 16-bit float precision (a device without float32 textures): 1e-1 / 1e-1, as TF.js's own
  tests loosen it.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float
    why: str
    reason: str | None = None  # set only for a per-case override


POLICY = {
    "cpu": Tolerance(1e-4, 1e-3, "float32 on the CPU, like Keras: summation order and libm differences"),
    "wasm": Tolerance(1e-4, 1e-3, "float32 in WebAssembly (XNNPACK): summation order and libm differences"),
    "webgl": Tolerance(
        1e-3, 1e-3, "float32 textures with GPU-style transcendental approximations (TF.js's own float32 test tolerance)"
    ),
}
WEBGL_16BIT = Tolerance(1e-1, 1e-1, "16-bit float textures (TF.js's own tests loosen to 1e-1)")


def for_backend(backend: str, float_precision: int | None = None, override=None) -> Tolerance:
    """The tolerance a case is held to on `backend`; an override (suite.case.ToleranceOverride) wins only
    where it is looser, and carries its reason into the record."""
    base = POLICY[backend]
    if backend == "webgl" and float_precision == 16:
        base = WEBGL_16BIT
    if override is None:
        return base
    return Tolerance(max(base.atol, override.atol), max(base.rtol, override.rtol), base.why, override.reason)


def policy_json(float_precision: dict | None = None) -> dict:
    """The policy as compat.json's `tolerances` section."""
    out = {}
    for backend in POLICY:
        tol = for_backend(backend, (float_precision or {}).get(backend))
        out[backend] = {"atol": tol.atol, "rtol": tol.rtol, "why": tol.why}
    return out


# --- quantized weights ---------------------------------------------------------------------------------
# A quantized conversion moves every weight by up to one quantization step, and the output moves with the
# weights, so its bound is stated relative to the size of the output (max |keras| over the outputs): the
# per-dtype fractions below are documented bounds, set from the suite's measurements (see the README's
# quantization table), not from the weights' steps. A plan is held to the budget it was built for.
QUANTIZED_RELATIVE = {
    "float16": (1e-2, "float16 keeps 11 significant bits per weight (relative rounding 2^-11)"),
    "uint16": (1e-2, "uint16 keeps 16 bits over each tensor's range; outliers widen the step"),
    "uint8": (
        2.5e-1,
        "uint8 keeps 8 bits over each tensor's range; outliers (batch-norm variances, "
        "depthwise kernels) make the step coarse for every other weight",
    ),
}


# A plan's error budget, as a fraction of the output's size: the suite's plans must meet it.
PLAN_BUDGET = 2e-3  # between uint16's and uint8's measured errors, so a plan has to mix them


def for_quantization(
    backend: str, dtype: str, output_scale: float, float_precision: int | None = None, budget: float | None = None
) -> Tolerance:
    """The tolerance a quantized record is held to: float32's, widened by the dtype's documented bound
    (a fraction of the output's size) or, for a plan, by its error budget."""
    base = for_backend(backend, float_precision)
    if dtype == "plan":
        if budget is None:
            raise ValueError("a plan is held to its budget")
        return Tolerance(max(base.atol, budget), base.rtol, base.why, f"plan: its error budget {budget:.3g}")
    fraction, why = QUANTIZED_RELATIVE[dtype]
    atol = max(base.atol, fraction * output_scale)
    return Tolerance(atol, base.rtol, base.why, f"{dtype}: {fraction:g} x max|output| ({why})")


# --- training ------------------------------------------------------------------------------------------
# After a few steps the weights carry every step's float32 differences; the optimizers TF.js carries apply
# Keras's update rule (measured 3e-8 to 1.2e-7 apart after 5 steps, cpu). The bound is tighter than for
# inference, relative error included, so that a wrong hyper-parameter shows: Adam's beta_2 at 0.999 instead
# of 0.99 moves the weights by 1.4e-4 over 40 steps. Adam also differs by Keras's "epsilon hat" (it adds
# epsilon / sqrt(1 - beta_2^t), TF.js epsilon), measured at 1.4e-5 over the same 40 steps.
TRAINING = {
    "cpu": Tolerance(5e-5, 1e-4, "float32 steps on the CPU: measured up to 1.5e-5 (Adam's epsilon hat included)"),
    "wasm": Tolerance(5e-5, 1e-4, "float32 steps in WebAssembly: measured up to 1.5e-5"),
    "webgl": Tolerance(1e-3, 1e-3, "float32 textures with GPU-style approximations: measured up to 1.6e-4"),
}


ADAM_EPSILON_HAT = 2e-4  # measured up to 9.5e-5 (default betas, 12 steps, a weight whose gradient vanishes)


def for_training(backend: str, optimizer: str | None, float_precision: int | None = None) -> Tolerance:
    """The tolerance of a train record (`optimizer`: the TF.js class): the backend's, and for Adam at least its
    epsilon-hat bound."""
    base = WEBGL_16BIT if backend == "webgl" and float_precision == 16 else TRAINING[backend]
    if optimizer != "Adam":
        return Tolerance(
            base.atol, base.rtol, base.why, f"training with {optimizer}: {base.why}" if optimizer else None
        )
    return Tolerance(
        max(base.atol, ADAM_EPSILON_HAT),
        base.rtol,
        base.why,
        "Adam: Keras adds epsilon / sqrt(1 - beta_2^t) where TF.js adds epsilon, up to 9.5e-5 measured",
    )
