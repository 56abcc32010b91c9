"""TF.js runs shared by byte-identical artifacts.

What TF.js computes is a function of the bytes it loads (model.json, the shards, a companion module: every file
of the artifact), the scripts the page runs before building the model, the inputs and the backend. Two artifacts
with the same bytes therefore give the same outputs on one page, and running the second is a repetition, not a
test: Keras 3's `.h5` and `.keras` files of one model convert to byte-identical artifacts (every keras3 case of
the suite does), so a `.keras` record compares its own Keras reference against the outputs of the `.h5` record's
run, and says so (`Record.shared_run`: that record's id and the artifact's sha256).

The same holds for training: a `.keras` train record compares its own Keras evaluation, losses and weights
against what TF.js gave for the `.h5` artifact on the same batches.

Kept in memory, per browser session, for one run: a later run, a changed converter or another TF.js runs again.
Only what was computed is shared; a failure is never reused, and a record whose comparison fails runs on its
own (and, for outputs, localises its divergence).
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import hashlib
import time
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from harness.files import tree_sha256
from harness.results.record import SharedRun

# What one session keeps: enough for every variant of a case on every backend, of any suite order.
_KEPT = 64
# A file's digest is remembered once it was last written this long before it was hashed (artifact_sha256).
_SETTLED_NS = 2_000_000_000


@dataclasses.dataclass(frozen=True)
class RunKey:
    """What decides a run's result (`key`)."""

    kind: str  # predict, or train after N pretraining steps
    backend: str
    artifact_sha256: str
    inputs_sha256: str
    scripts_sha256: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Shared:
    """What one TF.js run gave (outputs; or evaluation, losses and weights), and the run, as a record names it."""

    run: SharedRun
    value: Any


_runs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # session -> OrderedDict(RunKey -> Shared)
_digests: dict[tuple, str] = {}  # (directory, its files' sizes and mtimes) -> sha256


def artifact_sha256(directory: Path) -> str:
    """sha256 over every file under `directory` (harness.files.tree_sha256, in path order).

    Remembered per process for files unchanged since (an app's artifact is hundreds of MB, hashed once per
    worker rather than per record), but only for files last written well before they were hashed: a file
    rewritten within the clock's granularity of an earlier write could keep its size and mtime (git's "racy"
    files), so a recent one is hashed every time."""
    files = sorted(p for p in Path(directory).rglob("*") if p.is_file())
    stats = tuple((str(p), st.st_size, st.st_mtime_ns) for p, st in ((p, p.stat()) for p in files))
    known = _digests.get((str(directory), stats))
    if known is not None:
        return known
    hashed_at = time.time_ns()
    digest = tree_sha256(Path(directory), files)
    if all(mtime < hashed_at - _SETTLED_NS for _, _, mtime in stats):
        _digests[(str(directory), stats)] = digest
    return digest


def _inputs_sha256(inputs) -> str:
    h = hashlib.sha256()
    for array in inputs:
        a = np.ascontiguousarray(array)
        h.update(f"{a.dtype.str}{a.shape}".encode() + a.tobytes())
    return h.hexdigest()


def key(backend: str, artifact: Path, inputs, scripts=(), kind: str = "predict") -> RunKey:
    """What decides a run's result: what it did (`kind`: predict, train), the backend, the artifact's bytes, the
    input arrays (all of them, in order), and the scripts' bytes."""
    scripts_sha256 = tuple(hashlib.sha256(Path(s).read_bytes()).hexdigest() for s in scripts)
    return RunKey(kind, backend, artifact_sha256(artifact), _inputs_sha256(inputs), scripts_sha256)


def lookup(session, run_key: RunKey) -> Shared | None:
    """The earlier run of this session with the same key, or None."""
    kept = _runs.get(session)
    return None if kept is None else kept.get(run_key)


def remember(session, run_key: RunKey, record: str, value) -> None:
    """Keep what `record`'s run gave (a copy) for records to come (the oldest go first)."""
    kept = _runs.setdefault(session, collections.OrderedDict())
    kept[run_key] = Shared(SharedRun(record, run_key.artifact_sha256), copy.deepcopy(value))
    while len(kept) > _KEPT:
        kept.popitem(last=False)
