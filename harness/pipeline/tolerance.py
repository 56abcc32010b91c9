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
