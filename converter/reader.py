"""Reading Keras model files (`.h5` and `.keras`) as data, never as code.

Only JSON and HDF5 datasets are read: no Keras deserialization, no pickle, no Lambda bytecode. The
format is told by the file's signature, not its name.
"""

from __future__ import annotations

import dataclasses
import io
import json
import posixpath
import zipfile
from pathlib import Path

import h5py
import numpy as np

from converter.errors import ConversionError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURE = b"PK\x03\x04"
# Zip members we read, with the most we accept uncompressed (a guard against zip bombs).
KERAS_ZIP_MEMBERS = {
    "config.json": 64 * 2**20,
    "metadata.json": 1 * 2**20,
    "model.weights.h5": 16 * 2**30,
}


@dataclasses.dataclass
class ModelFile:
    """What a Keras model file holds, as plain data.

    `weights` is a `h5py.Group`: for an `.h5` file its `model_weights` group (one sub-group per layer
    with a `weight_names` attribute); for a `.keras` file the root of `model.weights.h5` (object paths
    such as `layers/dense/vars/0`). `layout` says which.
    """

    path: Path
    format: str  # "h5" or "keras"
    layout: str  # "h5_layers" or "keras_objects"
    keras_version: str
    backend: str
    model_config: dict
    training_config: dict | None
    weights: h5py.Group
    compile_config: dict | None = None  # a .keras file's Keras 3 compile_config
    _handles: list = dataclasses.field(default_factory=list, repr=False)

    @property
    def keras_major(self) -> int:
        return 3 if self.keras_version.split(".")[0] == "3" else 2

    def close(self):
        for handle in reversed(self._handles):
            handle.close()
        self._handles.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def detect_format(path: Path) -> str:
    """`h5` or `keras`, from the file's first bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except IsADirectoryError:
        raise ConversionError(
            path,
            "is a directory, not a Keras model file "
            "(a SavedModel directory is not supported; save with model.save('m.keras'))",
        ) from None
    except OSError as e:
        raise ConversionError(path, f"cannot be read: {e.strerror or e}") from e
    if head.startswith(HDF5_SIGNATURE):
        return "h5"
    if head.startswith(ZIP_SIGNATURE):
        return "keras"
    if not head:
        raise ConversionError(path, "is empty")
    raise ConversionError(path, "is neither an HDF5 (.h5) nor a zip (.keras) Keras model file")


def read_model_file(path) -> ModelFile:
    """Open a Keras model file; the caller closes the result."""
    path = Path(path)
    if not path.exists():
        raise ConversionError(path, "does not exist")
    fmt = detect_format(path)
    return _read_h5(path) if fmt == "h5" else _read_keras_zip(path)


def _json_attr(path, value, what):
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    try:
        data = json.loads(value)
    except (TypeError, ValueError) as e:
        raise ConversionError(path, f"{what} is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise ConversionError(path, f"{what} is not a JSON object")
    return data


def _model_config(path, config: dict, what: str) -> dict:
    """`config` if it describes a model (a class and its config; a Sequential or functional model's layers),
    else ConversionError: a file that describes no model is refused, never converted into an empty one."""
    cls, inner = config.get("class_name"), config.get("config")
    if not isinstance(cls, str) or not isinstance(inner, (dict, list)):
        raise ConversionError(path, f"{what} does not describe a model (no class_name and config)")
    layers = inner if isinstance(inner, list) else inner.get("layers")
    if cls in ("Sequential", "Functional", "Model") and (not isinstance(layers, list) or not layers):
        raise ConversionError(path, f"{what} describes a {cls} model without layers")
    return config


def _str_attr(attrs, key, default=""):
    value = attrs.get(key, default)
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _read_h5(path: Path) -> ModelFile:
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ConversionError(path, f"is not a readable HDF5 file (truncated or corrupt?): {e}") from e
    try:
        if "model_config" not in f.attrs and ("layer_names" in f.attrs or "model_weights" not in f):
            raise ConversionError(
                path,
                "is a weights-only file (no model_config): save the whole model with model.save(), not save_weights()",
            )
        config = _model_config(path, _json_attr(path, f.attrs["model_config"], "model_config"), "model_config")
        training = None
        if "training_config" in f.attrs:
            training = _json_attr(path, f.attrs["training_config"], "training_config")
        if "model_weights" not in f:
            raise ConversionError(path, "has a model_config but no model_weights group")
        return ModelFile(
            path=path,
            format="h5",
            layout="h5_layers",
            keras_version=_str_attr(f.attrs, "keras_version", "2"),
            backend=_str_attr(f.attrs, "backend", "tensorflow"),
            model_config=config,
            training_config=training,
            weights=f["model_weights"],
            _handles=[f],
        )
    except ConversionError:
        f.close()
        raise
    except (OSError, KeyError, RuntimeError) as e:
        f.close()
        raise ConversionError(path, f"is a corrupt HDF5 file: {e}") from e


def _safe_member_name(name: str) -> bool:
    norm = posixpath.normpath(name)
    return not (
        name.startswith(("/", "\\"))
        or ":" in name.split("/")[0]
        or norm.startswith("..")
        or "\\" in name
        or norm != name.rstrip("/")
    )


def _read_member(path, zf: zipfile.ZipFile, name: str) -> bytes:
    limit = KERAS_ZIP_MEMBERS[name]
    info = zf.getinfo(name)
    if info.file_size > limit:
        raise ConversionError(path, f"zip member {name} is {info.file_size} bytes, over the {limit}-byte limit")
    with zf.open(info) as member:
        data = member.read(limit + 1)  # the header's size may lie
    if len(data) > limit:
        raise ConversionError(path, f"zip member {name} expands past the {limit}-byte limit")
    return data


def _read_keras_zip(path: Path) -> ModelFile:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise ConversionError(path, f"is not a readable .keras (zip) file: {e}") from e
    with zf:
        names = zf.namelist()
        bad = [n for n in names if not _safe_member_name(n)]
        if bad:
            raise ConversionError(path, f"zip member with an unsafe name refused: {bad[0]!r}")
        missing = [n for n in ("config.json", "model.weights.h5") if n not in names]
        if missing:
            raise ConversionError(path, f"is not a Keras .keras archive: missing {', '.join(missing)}")
        try:
            config = _model_config(
                path, _json_attr(path, _read_member(path, zf, "config.json"), "config.json"), "config.json"
            )
            metadata = {}
            if "metadata.json" in names:
                metadata = _json_attr(path, _read_member(path, zf, "metadata.json"), "metadata.json")
            info = zf.getinfo("model.weights.h5")
            if info.file_size > KERAS_ZIP_MEMBERS["model.weights.h5"]:
                raise ConversionError(
                    path,
                    f"zip member model.weights.h5 is {info.file_size} bytes, over the "
                    f"{KERAS_ZIP_MEMBERS['model.weights.h5']}-byte limit",
                )
            # Keras stores the weights uncompressed: read them in place, one dataset at a time, instead
            # of holding the whole member in memory.
            weights_file = (
                _StoredMember(path, info)
                if info.compress_type == zipfile.ZIP_STORED
                else io.BytesIO(_read_member(path, zf, "model.weights.h5"))
            )
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise ConversionError(path, f"is a corrupt .keras archive: {e}") from e
    try:
        h = h5py.File(weights_file, "r")
    except OSError as e:
        weights_file.close()
        raise ConversionError(path, f"model.weights.h5 inside is not readable HDF5: {e}") from e
    # A .keras file keeps Keras 3's `compile_config` (converter.training reads either form).
    compile_config = config.get("compile_config")
    return ModelFile(
        path=path,
        format="keras",
        layout="keras_objects",
        keras_version=str(metadata.get("keras_version", "3")),
        backend="tensorflow",
        model_config=config,
        training_config=None,
        compile_config=compile_config if isinstance(compile_config, dict) else None,
        weights=h,
        _handles=[weights_file, h],
    )


class _StoredMember(io.RawIOBase):
    """A read-only, seekable window onto an uncompressed zip member, for h5py to read in place."""

    def __init__(self, path: Path, info: zipfile.ZipInfo):
        super().__init__()
        self._file = open(path, "rb")
        self._file.seek(info.header_offset)
        header = self._file.read(30)
        if len(header) != 30 or header[:4] != ZIP_SIGNATURE:
            self._file.close()
            raise zipfile.BadZipFile("bad local header for model.weights.h5")
        name_len, extra_len = int.from_bytes(header[26:28], "little"), int.from_bytes(header[28:30], "little")
        self._start = info.header_offset + 30 + name_len + extra_len
        self._size = info.file_size
        if self._start + self._size > path.stat().st_size:
            self._file.close()
            raise EOFError("model.weights.h5 runs past the end of the archive (truncated?)")
        self._pos = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self._pos

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer):
        n = max(0, min(len(buffer), self._size - self._pos))
        self._file.seek(self._start + self._pos)
        got = self._file.readinto(memoryview(buffer)[:n])
        self._pos += got
        return got

    def close(self):
        if not self.closed:
            self._file.close()
        super().close()


def read_array(dataset: h5py.Dataset) -> np.ndarray:
    """One weight as a little-endian numpy array."""
    return np.asarray(dataset[()])
