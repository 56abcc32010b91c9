"""Writing the TF.js Layers artifact: `model.json` and little-endian weight shards.

Shards are streamed: one weight is in memory at a time, so peak memory stays near the largest weight.
Everything goes to a temporary directory beside the target and is moved into place only when complete.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from converter.errors import ConversionError

DEFAULT_SHARD_SIZE = 4 * 1024 * 1024
QUANTIZE_DTYPES = {"float16": np.float16, "uint8": np.uint8, "uint16": np.uint16}
# What TF.js decodes, and the dtype each numpy kind is written as (as the official converter does).
_WRITE_DTYPE = {"f": "float32", "i": "int32", "u": "int32", "b": "bool"}


@dataclasses.dataclass
class WrittenFile:
    name: str
    bytes: int


def tfjs_dtype(array: np.ndarray) -> str:
    if array.dtype.kind not in _WRITE_DTYPE:
        raise ValueError(f"dtype {array.dtype} has no TF.js equivalent")
    return _WRITE_DTYPE[array.dtype.kind]


FLOAT16_MAX = 65504.0
PLAN_DTYPES = ("float32", "float16", "uint16", "uint8")


def quantization_for(
    name: str, quantize: dict[str, list[str] | None], plan: dict[str, str] | None = None
) -> str | None:
    """The quantization dtype a weight gets (None: float32). `plan` names each weight's dtype exactly;
    `quantize` maps a dtype to name patterns (None: all). A weight two patterns claim is an error."""
    if plan is not None and name in plan:
        return None if plan[name] == "float32" else plan[name]
    matches = [
        d for d, patterns in quantize.items() if patterns is None or any(fnmatch.fnmatchcase(name, p) for p in patterns)
    ]
    if len(matches) > 1:
        raise ValueError(f"matches both --quantize_{matches[0]} and --quantize_{matches[1]}")
    return matches[0] if matches else None


def quantize(data: np.ndarray, dtype: str) -> tuple[np.ndarray, dict]:
    """Encode float32 `data` as TF.js reads it back: float16 halves, or affine uint8/uint16 with 0 exact."""
    if dtype == "float16":
        finite = np.abs(data[np.isfinite(data)])
        if finite.size and float(finite.max()) > FLOAT16_MAX:
            raise ValueError(
                f"values up to {float(finite.max()):.6g} overflow float16 (largest {FLOAT16_MAX:g}); "
                "quantize this weight to uint16 or keep it float32"
            )
        return data.astype("<f2"), {"dtype": "float16", "original_dtype": "float32"}
    target = QUANTIZE_DTYPES[dtype]
    qmax = int(np.iinfo(target).max)  # type: ignore[type-var]
    lo, hi = (float(data.min()), float(data.max())) if data.size else (0.0, 0.0)
    if hi == lo:
        q, scale = np.zeros(data.shape, dtype=target), 1.0
    else:
        scale = (hi - lo) / qmax
        if lo <= 0 <= hi:  # nudge the range so that 0.0 is exactly representable
            lo = -round(-lo / scale) * scale
        q = np.clip(np.round((data - lo) / scale), 0, qmax).astype(target)
    meta = {"dtype": dtype, "min": float(lo), "scale": float(scale), "original_dtype": "float32"}
    return q.astype(q.dtype.newbyteorder("<")), meta


class ShardWriter:
    """Cuts a byte stream into `group{g}-shard{k}of{n}.bin` files of `shard_size` bytes."""

    def __init__(self, directory: Path, group: int, shard_size: int):
        self.directory, self.group, self.shard_size = directory, group, shard_size
        self._names: list[str] = []
        self._file: BinaryIO | None = None
        self._room = 0

    def write(self, data: bytes):
        view = memoryview(data)
        while len(view):
            if self._room == 0:
                self._open_next()
            n = min(self._room, len(view))
            assert self._file is not None
            self._file.write(view[:n])
            view, self._room = view[n:], self._room - n

    def _open_next(self):
        if self._file:
            self._file.close()
        name = f"group{self.group}-shard{len(self._names) + 1}.tmp"
        self._names.append(name)
        self._file = open(self.directory / name, "wb")
        self._room = self.shard_size

    def close(self) -> list[str]:
        """Rename shards to their final `…of{n}.bin` names; returns them in order."""
        if self._file:
            self._file.close()
        n = len(self._names)
        final = []
        for k, tmp in enumerate(self._names, 1):
            name = f"group{self.group}-shard{k}of{n}.bin"
            os.replace(self.directory / tmp, self.directory / name)
            final.append(name)
        return final


def write_weights(
    directory: Path, groups: list[list], *, shard_size: int, quantize_map: dict, plan: dict[str, str] | None = None
) -> tuple[list[dict], list[WrittenFile]]:
    """Stream every weight group into shards; returns the weights manifest and the files written.

    `groups` is a list of lists of (name, loader) pairs, `loader()` returning the numpy value, or of
    (name, loader, extra) triples whose `extra` keys go into the manifest entry (an optimizer weight's
    `group`); those are never quantized.
    """
    manifest, files = [], []
    for g, group in enumerate(groups, 1):
        writer = ShardWriter(directory, g, shard_size)
        entries = []
        for item in group:
            name, load = item[0], item[1]
            extra = item[2] if len(item) > 2 else {}
            array = np.asarray(load())
            try:
                dtype = tfjs_dtype(array)
            except ValueError as e:
                raise ConversionError(None, f"weight {name}: {e}") from e
            array = array.astype(dtype, copy=False)
            entry = {"name": name, "shape": list(array.shape), "dtype": dtype, **extra}
            try:
                qdtype = quantization_for(name, quantize_map, plan) if dtype == "float32" and not extra else None
                if qdtype:
                    array, entry["quantization"] = quantize(array, qdtype)
            except ValueError as e:
                raise ConversionError(None, f"weight {name}: {e}") from e
            writer.write(np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes())
            entries.append(entry)
        paths = writer.close()
        manifest.append({"paths": paths, "weights": entries})
        files += [WrittenFile(p, (directory / p).stat().st_size) for p in paths]
    return manifest, files


@contextlib.contextmanager
def staged_directory(out_dir: Path, *, overwrite: bool):
    """A temporary directory beside `out_dir`, moved into its place only if the block succeeds."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConversionError(out_dir, "exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise ConversionError(out_dir, "exists and is not empty (use --overwrite to replace it)")
    parent = out_dir.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=parent))
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    old = None
    if out_dir.exists():
        old = parent / f".{out_dir.name}.old-{os.getpid()}"
        os.replace(out_dir, old)
    os.replace(stage, out_dir)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def write_model_json(directory: Path, model_json: dict) -> WrittenFile:
    text = json.dumps(model_json, separators=(",", ":"), allow_nan=False)
    (directory / "model.json").write_text(text, encoding="utf-8")
    return WrittenFile("model.json", len(text.encode("utf-8")))
