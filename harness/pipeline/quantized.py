"""Certifying a quantized conversion exactly: TF.js against Keras with the same dequantized weights.

A quantized artifact is correct when TF.js computes what Keras computes with the weights TF.js decodes from
it, so each backend is held to the ordinary float32 tolerance against that reference
(`quantize.dequantized_reference`): no tolerance is fitted to the quantization. Two more checks decide: every
weight TF.js decoded lies within one quantization step of its float32 value (the encoding's bound), and a
plan keeps its promise (its output error against the float32 model within its budget, plus the backend's
float32 tolerance). The cost of quantization — the outputs' distance from the float32 model's, in TF.js and
in Keras alone — is reported beside the record's own error, never judged by a loosened bound.
"""

from __future__ import annotations

import json

from harness.files import write_atomic
from harness.pipeline import compare as cmp
from harness.pipeline import inference, quantize, tolerance, verdict
from harness.pipeline.convert import Converted, convert_variant
from harness.results.record import Record, worst_error
from harness.suite.case import Variant


def dequantization(loaded: dict, encoded: dict) -> dict:
    """How far TF.js's decoded weights lie from the float32 originals, in quantization steps: what the
    encoding moved each weight (`encoded`, quantize.encoding_errors), plus how far TF.js's loaded value lies
    from the value its manifest entry encodes (`loaded`, measured in the page), for the worst weight."""
    worst, worst_name = 0.0, None
    for name, enc in encoded.items():
        if name not in loaded:
            return {"dequant_steps": None, "worst_weight": f"{name} (not checked in TF.js)"}
        drift = loaded[name]
        steps = float("inf") if drift is None else enc.steps + drift / enc.min_bound
        if worst_name is None or steps > worst:
            worst, worst_name = steps, name
    return {"dequant_steps": worst if worst_name else 0.0, "worst_weight": worst_name}


def encoding(converted: Converted) -> dict[str, quantize.Encoded]:
    """What the quantized conversion's encoding did to each weight (quantize.encoding_errors), computed once
    per artifact and kept beside it (a function of the source's weights and the dtypes, as the artifact is)."""
    assert converted.artifact is not None and converted.quantization is not None
    kept = converted.artifact.parent / "encoding.json"
    if kept.exists():
        return {n: quantize.Encoded(*v) for n, v in json.loads(kept.read_text()).items()}
    weights = quantize.float32_weights(converted.source)  # as written, under the names TF.js loads
    encoded = quantize.encoding_errors(weights, quantize.manifest_dtypes(converted.artifact))
    write_atomic(kept, json.dumps({n: [e.steps, e.min_bound] for n, e in encoded.items()}))
    return encoded


def run_backend(session, backend, converted, prepared, reference, tol, originals, budget) -> verdict.Run:
    """Load the quantized artifact on one backend; compare with the dequantized reference at float32 tolerance,
    measure the cost against the float32 outputs, and check TF.js's decoded weights."""
    from js_runner import RunnerError

    try:
        with inference.loaded(session, converted.artifact, backend) as handle:
            times = {"load": handle.load_ms}
            outs = session.predict(handle, prepared.inputs)
            loaded = session.dequant_check(handle)
        ok, metrics, message = cmp.compare_outputs(prepared.output_names, reference.outputs, outs, tol)
        _, cost_metrics, _ = cmp.compare_outputs(prepared.output_names, prepared.reference, outs, tol)
        cost = worst_error(cost_metrics) if cost_metrics else None
        quantized = dequantization(loaded, originals)
        quantized |= {"float32_max_abs": cost, "keras_max_abs": reference.keras_max_abs}
        problems = [message] if message else []
        steps = quantized["dequant_steps"]
        if steps is None or steps > 1.0:
            moved = f" moved {steps:.3g} steps (at most 1)" if steps is not None else ""
            problems.insert(0, f"dequantization: weight {quantized['worst_weight']}{moved}")
        if budget is not None and (cost is None or cost > budget + tol.atol):
            problems.append(f"the plan's output error {cost} exceeds its budget {budget:.3g} (+ atol {tol.atol:g})")
        outcome = "pass" if ok and not problems else "mismatch"
        return verdict.Run(outcome, "; ".join(problems) or None, None, metrics, None, times, quantized)
    except RunnerError as e:
        return verdict.from_runner_error(e)


def certify(session, variant: Variant, prepared, backends, workdir) -> list[tuple[Record, Converted]]:
    """The records of a quantized variant (`variant.quantization`: float16, uint16, uint8, or plan)."""
    form = variant.quantization
    assert form is not None
    budget = plan = None
    if form == "plan" and not prepared.error:
        budget = tolerance.PLAN_BUDGET * quantize.output_scale(prepared.reference)
        plan = quantize.cached_plan(prepared, prepared.files[variant.format], budget).weights
    converted = convert_variant(prepared, variant.format, workdir, quantization=form, plan=plan)
    reference = originals = None
    if converted.status == "ok":
        assert converted.quantization is not None and converted.artifact is not None and converted.source
        converted.quantization.budget = budget
        originals = encoding(converted)
        reference = quantize.dequantized_reference(prepared, converted.source, form, plan, converted.artifact)
    out = []
    for backend in backends:
        info = session.backends.get(backend) if session is not None else None
        tol = tolerance.for_backend(backend, getattr(info, "float_precision", None), variant.case.tolerance)
        if converted.status != "ok":
            run = None
        elif reference is not None and reference.problem:
            run = verdict.Run("error", f"no exact reference for this quantized form: {reference.problem}")
        else:
            run = inference.unavailable(session, backend) or run_backend(
                session, backend, converted, prepared, reference, tol, originals, budget
            )
        out.append((verdict.record(variant, backend, converted, tol, run), converted))
    return out
