"""A user's own code, certified only when the user opts in: the Python module that defines their custom layers
(`--custom-objects`, imported to build the Keras reference) and the JavaScript that ports them (`--custom-js`,
loaded by the page before the model on every backend).

The converter still never runs code: it is told which classes the JavaScript registers and the names of their
weights in the order Keras stores them (converter/weights.py CUSTOM_CONVENTION), which this module reads from the
Keras model the user's module built.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import inspect
import sys
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class UserCode:
    """What the user opted into for their model files."""

    python: Path | None = None  # --custom-objects: a module defining the custom layer classes
    scripts: tuple[Path, ...] = ()  # --custom-js: the JavaScript ports, loaded before the model
    companion: bool = False  # --companion: convert with the companion module


@functools.cache
def _module(path: Path):
    """The user's module, imported once per process under a name of its own."""
    name = f"tfjs_certify_user_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def custom_objects(path: Path | None, k) -> dict[str, type]:
    """The layer classes of the user's module for Keras `k` (keras or tf_keras), by class name and by the name
    Keras registered them under (`package>Class`), as `load_model(custom_objects=...)` takes them."""
    if path is None:
        return {}
    out: dict[str, type] = {}
    for _, cls in inspect.getmembers(_module(Path(path).resolve()), inspect.isclass):
        if issubclass(cls, k.layers.Layer) and not cls.__module__.startswith(("keras", "tf_keras")):
            out[cls.__name__] = cls
            out[k.saving.get_registered_name(cls)] = cls
    return out


def _layers(model):
    """Every layer, those of nested models included."""
    for layer in model.layers:
        yield layer
        if isinstance(getattr(layer, "layers", None), list):
            yield from _layers(layer)


def custom_classes(model, k, objects: dict[str, type]) -> dict[str, tuple[str, ...]]:
    """{name the converter sees (Keras's registered name): the names of its weights, in the order Keras stores
    them} for every layer of the model whose class the user's module defines."""
    ours = set(objects.values())
    out: dict[str, tuple[str, ...]] = {}
    for layer in _layers(model):
        if type(layer) in ours:
            weights = layer.trainable_weights + layer.non_trainable_weights
            names = tuple(w.name.split("/")[-1].split(":")[0] for w in weights)
            out[k.saving.get_registered_name(type(layer))] = names
    return out
