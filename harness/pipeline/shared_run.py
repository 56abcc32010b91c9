"""TF.js runs shared by byte-identical artifacts.

What TF.js computes is a function of the bytes it loads (model.json, the shards, a companion module: every file
of the artifact), the scripts the page runs before building the model, the inputs and the backend. Two artifacts
with the same bytes therefore give the same outputs on one page, and running the second is a repetition, not a
test: Keras 3's `.h5` and `.keras` files of one model convert to byte-identical artifacts (every keras3 case of
the suite does), so a `.keras` record compares its own Keras reference against the outputs of the `.h5` record's
run, and says so (`Record.shared_run`: that record's id and the artifact's sha256).

Kept in memory, per browser session, for one run: a later run, a changed converter or another TF.js runs again.
Only outputs that were computed are shared; a failure is never reused, and a record whose comparison fails
runs on its own (and localises its divergence).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import os
import weakref
from pathlib import Path

import numpy as np

# What one session keeps: enough for every variant of a case on every backend, of any suite order.
_KEPT = 64


@dataclasses.dataclass(frozen=True)
class Shared:
    """The outputs of one TF.js run, and the record and artifact they came from."""

    record: str
    artifact_sha256: str
    outputs: tuple[np.ndarray, ...]


_runs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # session -> OrderedDict(key -> Shared)
_digests: dict[tuple, str] = {}  # (directory, its files' sizes and mtimes) -> sha256


def artifact_sha256(directory: Path) -> str:
    """sha256 over every file under `directory`: each relative path and its contents' sha256, in path order.
    Computed once per process for unchanged files (an app's artifact is hundreds of MB)."""
    files = sorted(p for p in Path(directory).rglob("*") if p.is_file())
    stats = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    known = _digests.get((str(directory), stats))
    if known is not None:
        return known
    h = hashlib.sha256()
    for path in files:
        with path.open("rb") as f:
            contents = hashlib.file_digest(f, "sha256").digest()
        h.update(os.fsencode(path.relative_to(directory).as_posix()) + b"\0" + contents)
    _digests[(str(directory), stats)] = digest = h.hexdigest()
    return digest


def _inputs_sha256(inputs) -> str:
    h = hashlib.sha256()
    for array in inputs:
        a = np.ascontiguousarray(array)
        h.update(f"{a.dtype.str}{a.shape}".encode() + a.tobytes())
    return h.hexdigest()


def key(backend: str, artifact: Path, inputs, scripts=()) -> tuple[str, ...]:
    """What decides a run's outputs: the backend, the artifact's bytes, the inputs, and the scripts' bytes."""
    script_digests = tuple(hashlib.sha256(Path(s).read_bytes()).hexdigest() for s in scripts)
    return (backend, artifact_sha256(artifact), _inputs_sha256(inputs), *script_digests)


def lookup(session, run_key: tuple) -> Shared | None:
    """The earlier run of this session with the same key, or None."""
    kept = _runs.get(session)
    return None if kept is None else kept.get(run_key)


def remember(session, run_key: tuple, record: str, outputs) -> None:
    """Keep a run's outputs for records to come (the oldest go first)."""
    kept = _runs.setdefault(session, collections.OrderedDict())
    kept[run_key] = Shared(record, run_key[1], tuple(np.array(o, copy=True) for o in outputs))
    while len(kept) > _KEPT:
        kept.popitem(last=False)
