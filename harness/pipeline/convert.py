"""Running our converter on a prepared model: the artifact, or why there is none."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from harness.pipeline import reference
from harness.results.record import Lowered, Quantization, ReasonCode, Sizes


@dataclasses.dataclass
class Converted:
    """The converter's result for one variant."""

    status: str  # "ok", or the outcome every record of the variant then has: rejected, converter_error...
    artifact: Path | None = None
    quantization: Quantization | None = None  # a quantized conversion: bytes, and the plan if any
    source: Path | None = None  # the model file converted
    training: dict | None = None  # what the converter made of the training configuration (training_json)
    message: str | None = None
    issues: list[ReasonCode] = dataclasses.field(default_factory=list)
    convert_ms: float | None = None
    sizes: Sizes = dataclasses.field(default_factory=Sizes)
    lowerings: list[Lowered] = dataclasses.field(default_factory=list)
    companion: list[str] = dataclasses.field(default_factory=list)  # companion rules the converter applied


def _lowering_metadata(directory: Path) -> dict:
    meta = json.loads((directory / "model.json").read_text()).get("userDefinedMetadata") or {}
    return meta.get("tfjs_certify") or {}


def lowerings_of(directory: Path) -> list[Lowered]:
    """The lowerings the converter recorded in the artifact's model.json (converter/lowering.py metadata)."""
    return [Lowered(**x) for x in _lowering_metadata(directory).get("lowerings", [])]


def companion_rules(directory: Path) -> list[str]:
    """The companion rules (converter/companion_table.py) the converter recorded in model.json, sorted, once."""
    layers = (_lowering_metadata(directory).get("companion") or {}).get("layers", [])
    return sorted({x["rule"] for x in layers})


def lowered_outputs(directory: Path | None) -> dict[str, str]:
    """User's layer -> the TF.js layer holding its output, where a lowering moved it."""
    if directory is None:
        return {}
    return dict(_lowering_metadata(directory).get("outputs", {}))


def artifact_sizes(directory: Path) -> Sizes:
    model_json = directory / "model.json"
    shards = sorted(directory.glob("*.bin"))
    return Sizes(
        model_json.stat().st_size if model_json.exists() else None, sum(p.stat().st_size for p in shards), len(shards)
    )


def convert_variant(
    prepared: reference.Prepared,
    fmt: str,
    workdir: Path,
    *,
    quantization: str | None = None,
    plan: dict[str, str] | None = None,
) -> Converted:
    """Run our converter on the prepared model file (the API format was converted when prepared);
    `quantization` converts every float weight to that dtype, or, for "plan", each as `plan` says."""
    if prepared.error:
        return Converted("reference_error", message=prepared.error)
    if fmt == "api" and not quantization:
        api = prepared.files["api"]
        if (api / "error.json").exists():
            err = json.loads((api / "error.json").read_text())
            return Converted(err["kind"], message=err["message"], issues=[ReasonCode(**i) for i in err["issues"]])
        training = api / "training.json"
        return Converted(
            "ok",
            artifact=api,
            sizes=artifact_sizes(api),
            lowerings=lowerings_of(api),
            companion=companion_rules(api),
            training=json.loads(training.read_text()) if training.exists() else None,
        )
    source = prepared.files.get(fmt) or prepared.files.get("keras") or prepared.files["h5"]
    options: dict = dict(getattr(prepared, "convert_options", None) or {})
    if quantization == "plan":
        options["quantize_plan"] = plan
    elif quantization:
        options["quantize"] = {quantization: None}
    directory = getattr(prepared, "directory", None)
    if directory is None:  # a user's file: converted for this run
        out = workdir / f"{reference._safe(prepared.case)}-{prepared.flavour}-{fmt}-{quantization or 'float32'}"
        return _finish(_convert(source, out / "tfjs", options), out / "tfjs", source, quantization, plan)
    # A suite case: its model file is fixed by its cache key, so the conversion is a function of that file,
    # the options and the converter's source; it is done once and kept beside the Keras side, for every
    # backend, worker and run (reference.converter_hash changes whenever the converter does).
    from harness.files import write_atomic

    out = directory / f"tfjs-{fmt}-{quantization or 'float32'}-{_conversion_key(options)}"
    reference.populate_once(
        out,
        lambda: (out / "converted.json").exists(),
        lambda: write_atomic(out / "converted.json", json.dumps(_convert(source, out / "tfjs", options))),
    )
    return _finish(json.loads((out / "converted.json").read_text()), out / "tfjs", source, quantization, plan)


def _conversion_key(options: dict) -> str:
    import hashlib

    h = hashlib.sha256(json.dumps(options, sort_keys=True).encode())
    h.update(f"{reference.converter_hash()} h5py={reference._version('h5py')}".encode())
    return h.hexdigest()[:16]


def _convert(source: Path, out: Path, options: dict) -> dict:
    """Run the converter: what it said, as JSON (the artifact is left in `out` when it converted)."""
    from converter import ConversionError, UnsupportedModelError, convert

    start = time.perf_counter()
    try:
        result = convert(source, out, overwrite=True, **options)
    except UnsupportedModelError as e:
        return {"status": "rejected", "message": str(e), "issues": [reference.jsonable_issue(i) for i in e.issues]}
    except ConversionError as e:
        return {"status": "converter_error", "message": str(e)}
    except Exception as e:  # a converter crash is a converter error, with its type
        return {"status": "converter_error", "message": reference.one_line(e, 500)}
    return {
        "status": "ok",
        "convert_ms": (time.perf_counter() - start) * 1000,
        "training": reference.training_json(result.training),
    }


def _finish(said: dict, out: Path, source: Path, quantization: str | None, plan) -> Converted:
    if said["status"] != "ok":
        return Converted(
            said["status"], message=said.get("message"), issues=[ReasonCode(**i) for i in said.get("issues", [])]
        )
    sizes = artifact_sizes(out)
    quantized = None
    if quantization:
        manifest = json.loads((out / "model.json").read_text())["weightsManifest"]
        specs = [w for group in manifest for w in group["weights"]]
        float32 = sum(4 * _count(w["shape"]) for w in specs)
        quantized = Quantization(
            quantization,
            sizes.weights_bytes or 0,
            float32,
            (sizes.weights_bytes or 0) / float32 if float32 else 1.0,
            None,
            None,
            plan=dict(plan) if plan is not None else None,
        )
    return Converted(
        "ok",
        artifact=out,
        convert_ms=said["convert_ms"],
        sizes=sizes,
        quantization=quantized,
        source=source,
        training=said["training"],
        lowerings=lowerings_of(out),
        companion=companion_rules(out),
    )


def _count(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n
