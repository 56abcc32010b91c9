"""One TensorFlow set-up for every process that computes Keras references, whatever the CPU.

TensorFlow 2.21 turns its oneDNN kernels on by default only on CPUs with AVX-512-class features.
Without them it has no CPU kernel for NCHW convolution and pooling or for dilated transposed
convolution, so the same suite would pass on one machine and crash on another. The harness sets
`TF_ENABLE_ONEDNN_OPTS=1` itself, before TensorFlow is imported, in the main process and in every
worker (pytest-xdist workers and `certify -j` workers import the harness first, and inherit the
variable); the caller's own value is kept for the report, not obeyed.
"""

from __future__ import annotations

import os
import sys

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
