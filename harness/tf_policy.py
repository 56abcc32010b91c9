"""One TensorFlow set-up for every process that computes Keras references, whatever the CPU.

TensorFlow 2.21 turns its oneDNN kernels on by default only on CPUs with AVX-512-class features.
Without them it has no CPU kernel for NCHW convolution and pooling or for dilated transposed
convolution, so the same suite would pass on one machine and crash on another. The harness sets
`TF_ENABLE_ONEDNN_OPTS=1` itself, before TensorFlow is imported, in the main process and in every
worker (pytest-xdist workers and `certify -j` workers import the harness first, and inherit the
variable); the caller's own value is kept for the report, not obeyed.

TensorFlow's C++ start-up lines ("oneDNN custom operations are on", "Could not find cuda drivers"), once per
process, tell a user nothing to act on. Since TensorFlow 2.19 they are written by absl before its logging is
set up, and `TF_CPP_MIN_LOG_LEVEL` no longer hides them (tensorflow/tensorflow#100442), so `quiet_start`
imports TensorFlow with its stderr filtered: the start-up lines below `TF_CPP_MIN_LOG_LEVEL` (which the
harness sets to 3 unless the caller chose a level) are dropped, everything else is written through.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile

VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
POLICY = "1"
# The caller's value, remembered across worker processes (which inherit the value we set).
_REQUESTED = "TFJS_CERTIFY_ONEDNN_REQUESTED"
_UNSET = "<unset>"
_late: bool = False


def apply() -> None:
    """Set the policy before TensorFlow is imported; idempotent."""
    global _late
    if _REQUESTED not in os.environ:
        os.environ[_REQUESTED] = os.environ.get(VARIABLE, _UNSET)
    if os.environ.get(VARIABLE) != POLICY:
        _late = "tensorflow" in sys.modules  # too late for this process: TensorFlow read it already
        os.environ[VARIABLE] = POLICY
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


# absl's pre-initialisation banner, and its own line format: severity letter, MMDD, time, thread, file:line].
_ABSL_BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_ABSL_LINE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w.-]+:\d+\] ")
_SEVERITY = "IWEF"


def _min_level() -> int:
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


def startup_noise(line: str) -> bool:
    """Whether a line TensorFlow's C++ side wrote while being imported is below `TF_CPP_MIN_LOG_LEVEL`."""
    if line.strip() == _ABSL_BANNER:
        return _min_level() > 0
    m = _ABSL_LINE.match(line)
    return m is not None and _SEVERITY.index(m.group(1)) < _min_level()


@contextlib.contextmanager
def quiet_start():
    """Import TensorFlow (or Keras, which imports it) inside this block: its C++ start-up lines below
    `TF_CPP_MIN_LOG_LEVEL` are dropped from stderr, the rest written through. A no-op once TensorFlow is in."""
    if "tensorflow" in sys.modules:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", "replace")
            kept = [line for line in text.splitlines(keepends=True) if not startup_noise(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def requested() -> str | None:
    """What the caller had set (None: unset)."""
    value = os.environ.get(_REQUESTED, _UNSET)
    return None if value == _UNSET else value


def onednn_enabled() -> bool | None:
    """Whether TensorFlow in this process runs with oneDNN (None: TensorFlow was not imported)."""
    if "tensorflow" not in sys.modules:
        return None
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())


def facts() -> dict:
    """compat.json's `environment.onednn`."""
    return {
        "variable": VARIABLE,
        "policy": POLICY,
        "requested": requested(),
        "enabled": onednn_enabled(),
        "set_too_late": _late,
    }
