"""Certifying one variant: Keras file -> converter -> artifact -> runner -> outputs -> comparison -> records.

`certify_variant` produces the records of one case x flavour x format on every backend; pytest
(tests/test_certify.py) and `tfjs-certify certify` (harness.pipeline.run) both call it. It never raises:
a failure anywhere becomes the outcome of the records it touched. Each kind of certification has its module:
`inference.py` (float32 outputs), `quantized.py` (a quantized form against Keras with the same dequantized
weights), `training.py` (evaluate and train steps); `verdict.py` holds the one rule and the record constructor.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

from harness.pipeline import inference, quantized, reference, training
from harness.pipeline.convert import Converted
from harness.pipeline.verdict import is_ok
from harness.results.record import Record, unfinished
from harness.suite.case import Variant

__all__ = ["certify_prepared", "certify_variant", "is_ok", "keep_artifacts"]


def keep_artifacts(variant: Variant, prepared, converted: Converted, record: Record, artifacts: Path) -> Path:
    """A failing case keeps its model file, converted directory, inputs and both outputs."""
    dest = Path(artifacts) / reference._safe(variant.id)
    dest.mkdir(parents=True, exist_ok=True)
    src = prepared.files.get(variant.format)
    if src is not None and src.is_file():
        shutil.copy2(src, dest / src.name)
    if converted.artifact is not None and converted.artifact.exists():
        shutil.copytree(converted.artifact, dest / "tfjs", dirs_exist_ok=True)
    if prepared.inputs:
        np.savez(dest / "inputs.npz", *prepared.inputs)
        if prepared.reference:
            np.savez(dest / "keras_outputs.npz", *prepared.reference)
    (dest / f"record-{record.backend}.json").write_text(json.dumps(record.to_json(), indent=1))
    return dest


def _kept(variant: Variant, prepared, judged: list[tuple[Record, Converted]], artifacts: Path) -> list[Record]:
    """The records, each failing one with its artifacts kept (the verdict stands if they cannot be)."""
    records = []
    for record, converted in judged:
        if not record.ok and record.outcome != "unavailable":
            try:
                keep_artifacts(variant, prepared, converted, record, artifacts)
            except OSError as e:
                record.message = f"{record.message or ''} (artifacts not kept: {e})".strip()
        records.append(record)
    return records


def certify_prepared(
    session, variant: Variant, prepared, backends, workdir: Path, artifacts: Path, *, timings: bool | None = None
) -> list[Record]:
    """The records of a variant whose Keras side is `prepared`, float32 or quantized. `timings`: also time 5
    more predictions (default: for apps and users' models, whose speed is worth reporting)."""
    if variant.quantization is not None:
        judged = quantized.certify(session, variant, prepared, backends, workdir)
    else:
        timed = variant.case.tier in ("app", "user") if timings is None else timings
        judged = inference.certify(session, variant, prepared, backends, workdir, timings=timed)
    return _kept(variant, prepared, judged, artifacts)


def certify_variant(
    session, variant: Variant, backends, workdir: Path, artifacts: Path, *, timings: bool | None = None
) -> list[Record]:
    """Every record of one case x flavour x format. Never raises: a failure anywhere in the pipeline
    becomes the outcome of the records it touched (`error`, with the exception on one line)."""
    start = time.perf_counter()
    try:
        if variant.case.fit is not None:
            trained = training.prepare(variant.case, variant.flavour)
            records = _kept(variant, trained, training.certify(session, variant, trained, backends, workdir), artifacts)
        else:
            prepared = reference.prepare(variant.case, variant.flavour)
            records = certify_prepared(session, variant, prepared, backends, workdir, artifacts, timings=timings)
    except Exception as e:
        message = f"the harness failed on this variant: {reference.one_line(e)}"
        records = [unfinished(variant, b, "error", message) for b in backends]
    share = (time.perf_counter() - start) * 1000 / max(len(records), 1)
    for record in records:
        record.timings_ms.total = share
    return records
