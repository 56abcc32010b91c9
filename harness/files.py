"""Files every layer of the harness writes, written so that a reader (another worker, a later run) never sees
half of one: into a unique temporary file beside the target, then renamed over it in one step."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: Path, data: str | bytes) -> None:
    """Replace `path` with `data` in one step, with the user's normal file mode (mkstemp's is 0600)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def save_npz_atomic(path: Path, arrays: dict) -> None:
    """numpy's `savez` of `arrays` to `path`, atomically."""
    import numpy as np

    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=path.parent)
    os.close(fd)
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def tree_sha256(root: Path, paths) -> str:
    """sha256 over `paths` (files under `root`), in the order given: each one's path relative to `root`, a NUL,
    and its contents' sha256, so that no two trees of different names or contents give one digest."""
    import hashlib

    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            contents = hashlib.file_digest(f, "sha256").digest()
        h.update(os.fsencode(Path(path).relative_to(root).as_posix()) + b"\0" + contents)
    return h.hexdigest()
