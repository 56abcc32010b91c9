"""The Keras side of a certification: build a case's model, save it, and compute reference outputs.

Models, inputs and Keras outputs are cached in `.cache/suite/` under the working directory (or
`$TFJS_CERTIFY_CACHE`, or `--cache-dir`), keyed by the case's spec (the catalogue's source), the Keras
version, the flavour and the TensorFlow policy, so a warm run needs no Keras at all. A failure on the
Keras side (build, inputs, predict, save) is returned as `Prepared.error`, never raised, and never cached.
"""
from __future__ import annotations

import dataclasses
import fcntl
import functools
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from harness import inputs as inputs_mod

ROOT = Path(__file__).resolve().parent.parent
_cache_dir: Path | None = None  # set by --cache-dir


def cache_dir() -> Path:
    """Where models, inputs and reference outputs are cached: never inside the installed package."""
    if _cache_dir is not None:
        return _cache_dir
    return Path(os.environ.get("TFJS_CERTIFY_CACHE") or Path.cwd() / ".cache")


def set_cache_dir(path) -> None:
    global _cache_dir
    _cache_dir = Path(path) if path is not None else None


def one_line(e: BaseException, limit: int = 300) -> str:
    """`Type: message` on one line (TensorFlow's messages span many)."""
    return f"{type(e).__name__}: {' '.join(str(e).split())}"[:limit]
SEED = 1234
SUFFIX = {"h5": ".h5", "keras": ".keras"}


def keras_module(flavour: str):
    from harness import tf_policy
    tf_policy.apply()  # a no-op once the harness is imported; here for callers that import only this module
    if flavour == "tf_keras":
        import tf_keras
        return tf_keras
    import keras
    return keras


def keras_version(flavour: str) -> str:
    from importlib.metadata import version
    return version("tf-keras" if flavour == "tf_keras" else "keras")


@functools.lru_cache(maxsize=None)
def _source_hash(*files: str) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(Path(f).read_bytes())
    return h.hexdigest()[:16]


def spec_hash() -> str:
    """Changes whenever the suite's declarations, builders or input generation change."""
    here = Path(__file__).resolve().parent
    return _source_hash(*(str(here / n) for n in ("catalogue.py", "builders.py", "case.py", "inputs.py",
                                                    "reference.py")))


def converter_hash() -> str:
    import converter
    conv = Path(converter.__file__).resolve().parent
    return _source_hash(*sorted(str(p) for p in conv.glob("*.py")))


def seed_everything(k, seed: int = SEED):
    k.utils.set_random_seed(seed)


def build(case, flavour: str):
    k = keras_module(flavour)
    seed_everything(k)
    return case.build(k)


def predict(model, xs: list[np.ndarray]) -> list[np.ndarray]:
    out = model(xs if len(xs) > 1 else xs[0], training=False)
    out = out if isinstance(out, (list, tuple)) else [out]
    return [np.asarray(o) for o in out]


def output_names(model) -> list[str]:
    return list(getattr(model, "output_names", None) or [f"output_{i}" for i in range(len(model.outputs))])


def layer_outputs(model, xs, flavour: str) -> list[tuple[str, str, list[np.ndarray]]]:
    """(layer name, class, outputs) of every top-level layer with a single call, in topological order."""
    layers, tensors = [], []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        try:
            out = layer.output
        except (AttributeError, ValueError, RuntimeError):
            continue  # a shared layer has no single output
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        layers.append((layer.name, type(layer).__name__, len(outs)))
        tensors.extend(outs)
    if not tensors:
        return []
    values = predict(keras_module(flavour).Model(model.inputs, tensors), xs)
    result, i = [], 0
    for name, cls, n in layers:
        result.append((name, cls, values[i:i + n]))
        i += n
    return result


@dataclasses.dataclass
class Prepared:
    """A case's model files, inputs and Keras outputs for one flavour (all on disk, in the cache)."""

    case: str
    flavour: str
    directory: Path
    files: dict[str, Path]  # format -> model file ("h5", "keras"); "api" -> converted artifact dir
    inputs: list[np.ndarray]
    reference: list[np.ndarray]
    output_names: list[str]
    error: str | None = None  # Keras could not build or save the model
    loader: object = None  # rebuilds the Keras model (user models); None: rebuild from the catalogue


def _key(case, flavour) -> str:
    from harness import tf_policy
    raw = json.dumps([case.name, flavour, keras_version(flavour), spec_hash(),
                      f"{tf_policy.VARIABLE}={tf_policy.POLICY}"])
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.=," else "_" for c in name)[:120]


def prepare(case, flavour: str, formats) -> Prepared:
    """Build, save and run the case's model in Keras, or take it from the cache."""
    from harness.case import FORMATS
    directory = cache_dir() / "suite" / f"{_safe(case.name)}-{flavour}-{_key(case, flavour)}"
    meta = directory / "meta.json"
    api_dir = directory / f"api-{converter_hash()}"
    want_api = "api" in formats
    if not meta.exists() or (want_api and not api_dir.exists()):
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / ".lock", "w") as lock:  # pytest-xdist workers may prepare the same case
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not meta.exists() or (want_api and not api_dir.exists()):
                error = _populate(case, flavour, directory, api_dir if want_api else None, FORMATS[flavour])
                if error:
                    return Prepared(case.name, flavour, directory, {}, [], [], [], error=error)
    info = json.loads(meta.read_text())
    data = np.load(directory / "data.npz")
    xs = [data[f"x{i}"] for i in range(info["n_inputs"])]
    refs = [data[f"y{i}"] for i in range(info["n_outputs"])]
    files = {fmt: directory / f"model{SUFFIX[fmt]}" for fmt in info["formats"]}
    if want_api:
        files["api"] = api_dir
    return Prepared(case.name, flavour, directory, files, xs, refs, info["output_names"])


def _populate(case, flavour, directory: Path, api_dir: Path | None, formats) -> str | None:
    """Build, run and save the model into `directory`; the one-line Keras error, or None."""
    directory.mkdir(parents=True, exist_ok=True)
    step = "build"
    try:
        model = build(case, flavour)
        if not (directory / "meta.json").exists():
            step = "make inputs for"
            specs = case.inputs or inputs_mod.specs_from_model(model)
            xs = inputs_mod.make_inputs(specs, case.batch, seed=SEED)
            step = "predict with"
            refs = predict(model, xs)
            saved = []
            for fmt in formats:
                if fmt == "api":
                    continue
                step = f"save ({fmt})"
                tmp = directory / f".model{SUFFIX[fmt]}.{os.getpid()}.tmp{SUFFIX[fmt]}"
                model.save(tmp)
                os.replace(tmp, directory / f"model{SUFFIX[fmt]}")
                saved.append(fmt)
            tmp = directory / f".data.{os.getpid()}.npz"
            np.savez(tmp, **{f"x{i}": x for i, x in enumerate(xs)}, **{f"y{i}": y for i, y in enumerate(refs)})
            os.replace(tmp, directory / "data.npz")
            _write_meta(directory, {"n_inputs": len(xs), "n_outputs": len(refs), "formats": saved,
                                    "output_names": output_names(model)})
    except Exception as e:  # the case's record says so; the run goes on
        return f"Keras could not {step} the model: {one_line(e)}"
    if api_dir is not None and not api_dir.exists():
        from converter import ConversionError, save_keras_model
        stage = Path(tempfile.mkdtemp(prefix=".api.", dir=directory))
        try:
            save_keras_model(model, stage / "out")
            os.replace(stage / "out", api_dir)
        except Exception as e:  # recorded as the api format's outcome, like a file conversion's
            (stage / "error.json").write_text(json.dumps(
                _error_json(e) if isinstance(e, ConversionError) else
                {"kind": "converter_error", "message": one_line(e), "issues": []}))
            os.replace(stage, api_dir)
            stage = None
        finally:
            if stage is not None:
                shutil.rmtree(stage, ignore_errors=True)
    return None


def _error_json(e) -> dict:
    issues = [dataclasses.asdict(i) for i in getattr(e, "issues", [])]
    for i in issues:
        i["value"] = _jsonable(i["value"])
    return {"kind": "rejected" if issues else "converter_error", "message": str(e), "issues": issues}


def _jsonable(value):
    try:
        json.dumps(value, allow_nan=False)
        return value
    except (TypeError, ValueError):
        return repr(value)


def _write_meta(directory: Path, info: dict):
    tmp = directory / f".meta.{os.getpid()}.json"
    tmp.write_text(json.dumps(info))
    os.replace(tmp, directory / "meta.json")


def load_model(prepared: Prepared):
    """The Keras model again (for layer-by-layer localisation): rebuilt from the case, same seed."""
    if prepared.loader is not None:
        return prepared.loader()
    from harness.catalogue import CASES
    case = next(c for c in CASES if c.name == prepared.case)
    return build(case, prepared.flavour)
