"""The Keras side of a certification: build a case's model, save it, and compute reference outputs.

Models, inputs and Keras outputs are cached in `.cache/suite/` under the working directory (or
`$TFJS_CERTIFY_CACHE`, or `--cache-dir`), one entry per case and flavour, keyed by what decides its Keras
side: the case's declaration, its builder's source (and the builder helpers it calls), the input
generator, the seeds, the library versions and the TensorFlow policy. Editing one case rebuilds that case
only. A failure on the Keras side (build, inputs, predict, save) is returned as `Prepared.error`, never
raised, and never cached.
"""

from __future__ import annotations

import dataclasses
import fcntl
import functools
import hashlib
import inspect
import json
import os
import re
import shutil
import tempfile
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np

from harness.results.record import jsonable
from harness.suite import builders
from harness.suite import inputs as inputs_mod
from harness.vocabulary import FILE_SUFFIX, FORMATS

SEED = 1234
CACHE_VERSION = 2  # bump when this module changes how references are computed
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


def keras_module(flavour: str):
    from harness import tf_policy

    tf_policy.apply()  # a no-op once the harness is imported; here for callers that import only this module
    with tf_policy.quiet_start():  # TensorFlow's start-up lines, once per process, are nobody's business
        if flavour == "tf_keras":
            import tf_keras

            return tf_keras
        import keras

        return keras


def application_objects(k) -> dict:
    """The layers keras.applications defines outside keras.layers (ConvNeXt's LayerScale, InceptionResNetV2's
    CustomScaleLayer, which tf_keras registers as `Custom>CustomScaleLayer`): Keras must be given them to load
    its own .h5 files of those models (a .keras file names their module)."""
    if k.__name__ == "tf_keras":
        from tf_keras.src.applications import convnext, inception_resnet_v2
    else:
        from keras.src.applications import convnext, inception_resnet_v2
    scale = inception_resnet_v2.CustomScaleLayer
    return {"LayerScale": convnext.LayerScale, "CustomScaleLayer": scale, "Custom>CustomScaleLayer": scale}


def load_model(k, path, custom_objects: dict | None = None):
    """A model file loaded by its own Keras, uncompiled, with keras.applications' own layers known (and the user's
    layer classes, when they opt in: harness/pipeline/custom.py)."""
    return k.models.load_model(
        str(path), compile=False, custom_objects={**application_objects(k), **(custom_objects or {})}
    )


@functools.cache
def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


# --- the cache key -----------------------------------------------------------------------------------


def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _source_closure(obj, module, seen: set[int]) -> list[str]:
    """The source of `obj` and of every function or class of `module` it refers to, transitively."""
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    try:
        parts = [inspect.getsource(obj)]
    except (OSError, TypeError):
        return [repr(obj)]
    codes = (
        [obj.__code__] if inspect.isfunction(obj) else [f.__code__ for f in vars(obj).values() if inspect.isfunction(f)]
    )
    names = set().union(*map(_code_names, codes)) if codes else set()
    if inspect.isclass(obj):  # classes its fields hold (a Chain holds Specs)
        names |= set(re.findall(r"\w+", " ".join(map(str, getattr(obj, "__annotations__", {}).values()))))
    for name in sorted(names):
        value = getattr(module, name, None)
        if (inspect.isfunction(value) or inspect.isclass(value)) and getattr(
            value, "__module__", None
        ) == module.__name__:
            parts += _source_closure(value, module, seen)
    return parts


@functools.cache
def _code_of(target) -> str:
    """The source closure of a builder function or class; read once per process (inspect costs ~50 ms per
    builder, and source does not change while the process runs)."""
    return "\n".join(_source_closure(target, builders, set()))


def builder_source(build) -> str:
    """What a builder computes, as text: its data (a Chain's layers, an App's class), its code, the
    closure it was made with, and the builder helpers it calls (`nontrivial_weights`, `Spec.make`...)."""
    parts = [repr(build) if dataclasses.is_dataclass(build) else ""]
    target: object = type(build) if dataclasses.is_dataclass(build) else build
    parts.append(_code_of(target))
    if inspect.isfunction(build) and build.__closure__:
        parts.append(repr([c.cell_contents for c in build.__closure__]))
    text = "\n".join(parts)
    constants = [
        f"{n}={v!r}"
        for n, v in sorted(vars(builders).items())
        if n.isupper() and isinstance(v, (int, float, str)) and re.search(rf"\b{n}\b", text)
    ]
    return "\n".join([text, *constants])


def case_key(case, flavour: str) -> str:
    """The cache key of one case's Keras side in one flavour."""
    declaration = [
        CACHE_VERSION,
        case.name,
        flavour,
        repr(case.inputs),
        case.batch,
        SEED,
        _version("tf-keras" if flavour == "tf_keras" else "keras"),
        _version("tensorflow"),
        _version("numpy"),
    ]
    from harness import tf_policy

    h = hashlib.sha256(json.dumps(declaration + [f"{tf_policy.VARIABLE}={tf_policy.POLICY}"]).encode())
    h.update(builder_source(case.build).encode())
    h.update(_inputs_source().encode())
    return h.hexdigest()[:20]


@functools.cache
def _inputs_source() -> str:
    return inspect.getsource(inputs_mod)


@functools.cache
def converter_hash() -> str:
    """Changes whenever the converter's source does (its subpackages, converter/lowering/, and the companion module
    it copies into an artifact, included): every cached conversion depends on it."""
    import converter
    from harness.files import tree_sha256

    root = Path(converter.__file__).resolve().parent
    return tree_sha256(root, sorted([*root.rglob("*.py"), *root.rglob("*.js")]))[:16]


# --- Keras ------------------------------------------------------------------------------------------


def build(case, flavour: str):
    k = keras_module(flavour)
    k.utils.set_random_seed(SEED)
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
        result.append((name, cls, values[i : i + n]))
        i += n
    return result


@dataclasses.dataclass
class Prepared:
    """A case's model files, inputs and Keras outputs for one flavour."""

    case: str
    flavour: str
    files: dict[str, Path]  # format -> model file ("h5", "keras"); "api" -> converted artifact dir
    inputs: list[np.ndarray]
    reference: list[np.ndarray]
    output_names: list[str]
    loader: Callable[[], object] | None = None  # builds the Keras model again (layer localisation)
    error: str | None = None  # Keras could not build, feed, run or save the model
    directory: Path | None = None  # the cache entry (None: a user's file, not cached)
    convert_options: dict = dataclasses.field(default_factory=dict)  # converter options (conversion_options)
    scripts: tuple[Path, ...] = ()  # the user's JavaScript the page loads before the model (--custom-js)

    def load_model(self):
        if self.loader is None:
            raise RuntimeError(f"{self.case}: no Keras model to load")
        return self.loader()


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.=," else "_" for c in name)[:120]


def entry(kind: str, case, flavour: str) -> Path:
    """The cache directory of one case's Keras side in one flavour (`kind`: suite, train)."""
    return cache_dir() / kind / f"{_safe(case.name)}-{flavour}-{case_key(case, flavour)}"


def populate_once(directory: Path, ready: Callable[[], bool], populate: Callable[[], str | None]) -> str | None:
    """Run `populate` unless the entry is `ready`, holding a lock (pytest-xdist workers may prepare the same
    case at once); its one-line error, or None."""
    if ready():
        return None
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return None if ready() else populate()


def prepare(case, flavour: str) -> Prepared:
    """Build, save and run the case's model in Keras, or take it from the cache: in the formats the case is
    certified in (Keras 3.15 cannot save some layers to .h5; an `api` conversion nobody certifies is skipped)."""
    formats = tuple(f for f in FORMATS[flavour] if case.formats is None or f in case.formats)
    directory = entry("suite", case, flavour)
    meta = directory / "meta.json"
    api_dir = directory / f"api-{converter_hash()}"
    want_api = "api" in formats
    loader = functools.partial(build, case, flavour)
    options = conversion_options(case)
    error = populate_once(
        directory,
        lambda: meta.exists() and (not want_api or api_dir.exists()),
        lambda: _populate(case, flavour, directory, api_dir if want_api else None, formats),
    )
    if error:
        return Prepared(
            case.name, flavour, {}, [], [], [], loader, error=error, directory=directory, convert_options=options
        )
    info = json.loads(meta.read_text())
    data = np.load(directory / "data.npz")
    xs = [data[f"x{i}"] for i in range(info["n_inputs"])]
    refs = [data[f"y{i}"] for i in range(info["n_outputs"])]
    files = {fmt: directory / f"model{FILE_SUFFIX[fmt]}" for fmt in info["formats"]}
    if want_api:
        files["api"] = api_dir
    return Prepared(
        case.name, flavour, files, xs, refs, info["output_names"], loader, directory=directory, convert_options=options
    )


def _populate(case, flavour, directory: Path, api_dir: Path | None, formats) -> str | None:
    """Build, run and save the model into `directory`; the one-line Keras error, or None."""
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
                suffix = FILE_SUFFIX[fmt]
                tmp = directory / f".model{suffix}.{os.getpid()}.tmp{suffix}"
                model.save(tmp)
                os.replace(tmp, directory / f"model{suffix}")
                saved.append(fmt)
            tmp = directory / f".data.{os.getpid()}.npz"
            arrays = {f"x{i}": x for i, x in enumerate(xs)} | {f"y{i}": y for i, y in enumerate(refs)}
            np.savez(tmp, **arrays)  # type: ignore[arg-type]
            os.replace(tmp, directory / "data.npz")
            _write_meta(
                directory,
                {"n_inputs": len(xs), "n_outputs": len(refs), "formats": saved, "output_names": output_names(model)},
            )
    except Exception as e:  # the case's record says so; the run goes on
        return f"Keras could not {step} the model: {one_line(e)}"
    if api_dir is not None and not api_dir.exists():
        _convert_in_memory(model, directory, api_dir, conversion_options(case))
    return None


def conversion_options(case) -> dict:
    """The converter options a suite case is converted with: the companion module for a case that names
    companion rules (converter/companion_table.py)."""
    return {"companion": True} if case.companion else {}


def _convert_in_memory(model, directory: Path, api_dir: Path, options: dict | None = None) -> None:
    """The `api` format: `save_keras_model` on the live model; its failure is recorded as the outcome."""
    from converter import ConversionError, save_keras_model

    stage: Path | None = Path(tempfile.mkdtemp(prefix=".api.", dir=directory))
    assert stage is not None
    try:
        result = save_keras_model(model, stage / "out", **(options or {}))
        # what the converter made of the training configuration (TF.js ignores an extra file)
        (stage / "out" / "training.json").write_text(json.dumps(training_json(result.training)))
        os.replace(stage / "out", api_dir)
    except Exception as e:
        if isinstance(e, ConversionError):
            issues = [jsonable_issue(i) for i in getattr(e, "issues", [])]
            error = {"kind": "rejected" if issues else "converter_error", "message": str(e), "issues": issues}
        else:
            error = {"kind": "converter_error", "message": one_line(e), "issues": []}
        (stage / "error.json").write_text(json.dumps(error))
        os.replace(stage, api_dir)
        stage = None
    finally:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)


def training_json(training) -> dict:
    """The converter's `Training` as plain data: carried or not, and why not."""
    return {
        "compiled": training.compiled,
        "carried": training.carried,
        "issues": [jsonable_issue(i) for i in training.issues],
    }


def jsonable_issue(issue) -> dict:
    """A converter Issue as a record's reason code."""
    d = dataclasses.asdict(issue) if dataclasses.is_dataclass(issue) and not isinstance(issue, type) else dict(issue)
    d["value"] = jsonable(d.get("value"))
    return d


def _write_meta(directory: Path, info: dict):
    tmp = directory / f".meta.{os.getpid()}.json"
    tmp.write_text(json.dumps(info))
    os.replace(tmp, directory / "meta.json")
