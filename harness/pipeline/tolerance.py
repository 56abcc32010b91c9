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
    reason: str | None = None  # set only for a per-case override (a case's ToleranceOverride)


POLICY = {
    "cpu": Tolerance(1e-4, 1e-3, "float32 on the CPU, like Keras: summation order and libm differences"),
    "wasm": Tolerance(1e-4, 1e-3, "float32 in WebAssembly (XNNPACK): summation order and libm differences"),
    "webgl": Tolerance(
        1e-3, 1e-3, "float32 textures with GPU-style transcendental approximations (TF.js's own float32 test tolerance)"
    ),
    "webgpu": Tolerance(
        1e-3,
        1e-3,
        "float32 compute shaders with GPU-style transcendental approximations, which differ by adapter (SwiftShader "
        "here: sin 1.9e-4 from cpu); TF.js's own float32 test tolerance, as webgl. Measured here: at most 1.3e-6 "
        "over 832 layer, lowered, graph and real records, 6.1e-5 over the apps (--backend webgpu)",
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


def policy_json(env: dict | None = None) -> dict:
    """The policy as compat.json's `tolerances` section, for the backends of a run's environment `env`
    (their float precision decides webgl's)."""
    backends = (env or {}).get("backends") or {}
    out = {}
    for backend in POLICY:
        tol = for_backend(backend, (backends.get(backend) or {}).get("float_precision"))
        out[backend] = {"atol": tol.atol, "rtol": tol.rtol, "why": tol.why}
    return out


# --- quantized weights ---------------------------------------------------------------------------------
# A quantized conversion is held to the float32 policy above, against Keras run with the same dequantized
# weights (harness/pipeline/quantized.py): it computes exactly when TF.js does what Keras does with the weights
# it holds. How far quantization moves the outputs from the float32 model is its cost, reported, not judged.

# A plan's error budget, as a fraction of the output's size: the suite's plans must meet it.
PLAN_BUDGET = 2e-3  # between uint16's and uint8's measured errors, so a plan has to mix them


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
    "webgpu": Tolerance(
        1e-3,
        1e-3,
        "float32 compute shaders with GPU-style approximations, as webgl: measured up to 3.1e-5 (Adam aside)",
    ),
}


ADAM_EPSILON_HAT = 2e-4  # measured up to 9.5e-5 (default betas, 12 steps, a weight whose gradient vanishes)


def for_training(backend: str, optimizer: str | None, float_precision: int | None = None) -> Tolerance:
    """The tolerance of a train record (`optimizer`: the TF.js class): the backend's, and for Adam at least its
    epsilon-hat bound."""
    base = WEBGL_16BIT if backend == "webgl" and float_precision == 16 else TRAINING[backend]
    if optimizer != "Adam":
        return base
    return Tolerance(
        max(base.atol, ADAM_EPSILON_HAT),
        base.rtol,
        f"{base.why}; Adam: Keras adds epsilon / sqrt(1 - beta_2^t) where TF.js adds epsilon (up to 9.5e-5 measured)",
    )
