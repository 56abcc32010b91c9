"""What a run ran on: Python, Keras, TensorFlow and its oneDNN set-up, TF.js, Chromium and each backend."""

from __future__ import annotations

import functools
import platform
from importlib.metadata import PackageNotFoundError, version


@functools.cache
def _v(package: str):
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def environment(session) -> dict:
    """compat.json's `environment` as this process sees it (`session`: its browser, or None)."""
    from harness import tf_policy

    backends = {}
    for name, info in session.backends.items() if session is not None else []:
        backends[name] = {
            "available": info.available,
            "reason": info.reason,
            "tfjs_version": info.tfjs_version,
            "float_precision": info.float_precision,
            "webgl_renderer": info.webgl_renderer,
            "wasm_simd": info.wasm_simd,
            "wasm_threads": info.wasm_threads,
            "webgpu_adapter": info.webgpu_adapter,
        }
    tfjs = next((b["tfjs_version"] for b in backends.values() if b["tfjs_version"]), None)
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "keras": _v("keras"),
        "tf_keras": _v("tf-keras"),
        "tensorflow": _v("tensorflow"),
        "onednn": tf_policy.facts(),
        "tfjs": tfjs or _package_tfjs(),
        "chromium": getattr(session, "browser_version", None),
        "playwright": _v("playwright"),
        "backends": backends,
    }


@functools.lru_cache(maxsize=1)
def _package_tfjs() -> str:
    """The TF.js version js_runner pins, for a run that started no browser."""
    import json
    from pathlib import Path

    import js_runner

    package = Path(js_runner.__file__).parent / "package.json"
    return json.loads(package.read_text())["dependencies"]["@tensorflow/tfjs"]


def merge_environments(envs) -> dict:
    """One environment from several processes' (harness.results.environment.merge); this process's own when
    none reported one."""
    from harness.results.environment import merge

    envs = [e for e in envs if e]
    return merge(envs) if envs else environment(None)
