"""js_runner: runs TF.js Layers models in headless Chromium.

`BrowserSession` owns one browser with a page per backend (cpu, wasm, webgl)
and loads, runs and times models there. It never imports TensorFlow.

The names below are imported on first use, so that `python -m js_runner.browser`
runs without importing its own module twice.
"""

__all__ = ["BackendInfo", "BrowserSession", "ModelHandle", "RunnerError", "TensorSpec", "find_chromium"]


def __getattr__(name):
    if name == "find_chromium":
        from js_runner.browser import find_chromium

        return find_chromium
    if name in __all__:
        from js_runner import session

        return getattr(session, name)
    raise AttributeError(f"module 'js_runner' has no attribute {name!r}")
