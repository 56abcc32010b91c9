"""Comparing TF.js outputs with Keras outputs: exact shapes, then per-output error metrics."""

from __future__ import annotations

import math

import numpy as np

from harness.results.record import Metric, finite_or_none, worst_error


def output_metrics(name: str, ref, got, tol) -> Metric:
    """max_abs, max_rel, mean_abs, cosine similarity and the count of elements outside tolerance.

    NaN and Inf count as matching only where Keras has the same value at the same place."""
    ref = np.asarray(ref, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    same_special = (np.isnan(ref) & np.isnan(got)) | (np.isinf(ref) & (ref == got))
    diff = np.where(same_special, 0.0, np.abs(ref - got))
    diff = np.where(np.isnan(diff), np.inf, diff)
    finite_ref = np.abs(np.where(np.isfinite(ref), ref, 0.0))
    mismatches = int(np.count_nonzero(diff > tol.atol + tol.rtol * finite_ref))
    rel = diff / np.maximum(finite_ref, 1e-12)
    both = np.isfinite(ref) & np.isfinite(got)
    a, b = ref[both], got[both]
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    cosine = float(np.dot(a.ravel(), b.ravel()) / norm) if norm > 0 else (1.0 if not a.any() and not b.any() else 0.0)
    return Metric(
        output=name,
        shape=list(ref.shape),
        max_abs=finite_or_none(float(diff.max())) if diff.size else 0.0,
        max_rel=finite_or_none(float(np.minimum(rel, 1e300).max())) if rel.size else 0.0,
        mean_abs=finite_or_none(float(diff.mean())) if diff.size else 0.0,
        cosine=cosine if math.isfinite(cosine) else 0.0,
        mismatches=mismatches,
        size=int(ref.size),
    )


def compare_outputs(names, refs, gots, tol) -> tuple[bool, list[Metric], str | None]:
    """(all within tolerance, metrics per output, one-line problem or None)."""
    if len(refs) != len(gots):
        return False, [], f"TF.js gave {len(gots)} outputs, Keras {len(refs)}"
    for name, r, g in zip(names, refs, gots):
        if tuple(np.shape(r)) != tuple(np.shape(g)):
            return False, [], f"output {name}: TF.js shape {list(np.shape(g))}, Keras {list(np.shape(r))}"
    metrics = [output_metrics(n, r, g, tol) for n, r, g in zip(names, refs, gots)]
    bad = [m for m in metrics if m.mismatches]
    if not bad:
        return True, metrics, None
    worst = max(bad, key=lambda m: m.max_abs if m.max_abs is not None else math.inf)
    err = "non-finite" if worst.max_abs is None else f"{worst.max_abs:.3g}"
    return (
        False,
        metrics,
        (
            f"output {worst.output}: {worst.mismatches}/{worst.size} elements outside "
            f"atol={tol.atol:g} rtol={tol.rtol:g} (max_abs {err})"
        ),
    )


__all__ = ["compare_outputs", "output_metrics", "worst_error"]
