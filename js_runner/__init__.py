"""js_runner: runs TF.js Layers models in headless Chromium.

`BrowserSession` owns one browser with a page per backend (cpu, wasm, webgl)
and loads, runs and times models there. It never imports TensorFlow.
"""

from js_runner.browser import find_chromium
from js_runner.session import BackendInfo, BrowserSession, ModelHandle, RunnerError, TensorSpec

__all__ = ["BrowserSession", "BackendInfo", "ModelHandle", "TensorSpec", "RunnerError", "find_chromium"]
