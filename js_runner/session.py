"""BrowserSession: one headless Chromium running TF.js, one page per backend.

Playwright's async API runs on an event loop in a background thread; the
public methods are synchronous and wait on it. Every browser call is bounded
by `asyncio.wait_for`, which works even when the page's JS thread is stuck in
a synchronous loop: on a timeout, crash or TF.js error the backend's browser
context is closed (which kills its renderer) and a fresh page is opened with
the backend set again, so one bad model never stops a run.

Each backend gets its own browser context, and so its own renderer process:
a page that hangs cannot block the other backends.
"""

import asyncio
import atexit
import base64
import concurrent.futures
import dataclasses
import itertools
import os
import threading
from typing import Any

import numpy as np

from js_runner.browser import CHROMIUM_FLAGS, find_chromium
from js_runner.server import StaticServer

# Extra seconds the caller's thread waits beyond a call's own timeout, to let
# the page be replaced before giving up on the event loop itself.
_GRACE_S = 30.0


class RunnerError(Exception):
    """A failure in the browser, with the stage where it happened (js_runner.stages) and the page's console."""

    def __init__(self, stage, message, console=None):
        self.stage = stage
        self.message = message
        self.console = list(console or [])
        super().__init__(stage, message)

    def __str__(self):
        return f"[{self.stage}] " + " ".join(str(self.message).split())


@dataclasses.dataclass
class BackendInfo:
    """What a backend is on this browser, or why it could not start."""

    name: str
    available: bool
    reason: str | None = None
    tfjs_version: str | None = None
    float_precision: int | None = None
    webgl_renderer: str | None = None
    wasm_simd: bool | None = None
    wasm_threads: bool | None = None
    webgpu_adapter: str | None = None
    details: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class TensorSpec:
    name: str
    shape: list
    dtype: str


@dataclasses.dataclass
class ModelHandle:
    """A model loaded on one backend's page."""

    id: str
    backend: str
    model_dir: str
    inputs: list
    outputs: list
    layers: list
    load_ms: float


@dataclasses.dataclass
class _Slot:
    """One backend's browser context and page."""

    name: str
    info: BackendInfo | None = None
    context: object = None
    page: object = None
    console: list = dataclasses.field(default_factory=list)
    live: set = dataclasses.field(default_factory=set)
    lost: set = dataclasses.field(default_factory=set)
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)


def _encode(array):
    """One input array as the page expects it: base64 of its little-endian bytes."""
    a = np.asarray(array)
    if a.dtype == np.bool_:
        dtype, data = "bool", a.astype(np.uint8)
    elif np.issubdtype(a.dtype, np.floating):
        dtype, data = "float32", a.astype("<f4")
    elif np.issubdtype(a.dtype, np.integer):
        if a.size and (a.min() < np.iinfo(np.int32).min or a.max() > np.iinfo(np.int32).max):
            raise ValueError("integer input does not fit in int32")
        dtype, data = "int32", a.astype("<i4")
    else:
        raise ValueError(f"unsupported input dtype {a.dtype}: use float, integer or bool arrays")
    data = np.ascontiguousarray(data)
    return {"data": base64.b64encode(data.tobytes()).decode("ascii"), "shape": list(a.shape), "dtype": dtype}


_DECODE = {"float32": "<f4", "int32": "<i4", "bool": "u1"}


def _decode(out):
    raw = bytearray(base64.b64decode(out["data"]))
    a = np.frombuffer(raw, dtype=_DECODE[out["dtype"]]).reshape(out["shape"])
    return a.astype(bool) if out["dtype"] == "bool" else a


def _one_line(text):
    return " ".join(str(text).split())


class BrowserSession:
    """One headless Chromium with a page per TF.js backend.

    Use as a context manager; the browser is closed at exit in any case.
    """

    def __init__(self, backends=("cpu", "wasm", "webgl"), timeout_s=60.0, chromium_path=None):
        """`backends`: any of cpu, wasm, webgl, webgpu; a backend that cannot start is reported unavailable, with
        the reason, in `backends`."""
        self.timeout_s = float(timeout_s)
        self.chromium_path = chromium_path or find_chromium()
        self.browser_version = None
        self._slots = {name: _Slot(name) for name in backends}
        self._ids = itertools.count(1)
        self._closed = False
        self._pw: Any = None
        self._browser: Any = None
        self._server = StaticServer()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="js_runner-browser", daemon=True)
        self._thread.start()
        atexit.register(self.close)
        try:
            self._run(self._start(), self.timeout_s * (1 + len(self._slots)))
        except BaseException:
            self.close()
            raise

    # ---- public API ----

    @property
    def backends(self):
        return {name: slot.info for name, slot in self._slots.items()}

    def load(self, model_dir, backend, timeout_s=None, scripts=()):
        """Load the model.json in `model_dir` (or a path to a .json file) on `backend`. Before TF.js builds it, the
        page runs `scripts` (JavaScript files registering the user's ported layers) and the companion module when
        model.json's metadata names it (from the model's directory); a script that fails is stage `script`."""
        model_dir = os.fspath(model_dir)
        if os.path.isfile(model_dir):
            directory, filename = os.path.split(os.path.abspath(model_dir))
        else:
            directory, filename = model_dir, "model.json"
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"model directory not found: {model_dir}")
        url = self._server.register(directory) + filename
        urls = []
        for script in map(os.fspath, scripts):
            if not os.path.isfile(script):
                raise FileNotFoundError(f"script not found: {script}")
            folder, name = os.path.split(os.path.abspath(script))
            urls.append(self._server.register(folder) + name)
        model_id = f"{backend}-{next(self._ids)}"
        value = self._call(backend, "load", [model_id, url, urls], timeout_s)
        self._slot(backend).live.add(model_id)
        spec = lambda s: TensorSpec(s["name"], list(s["shape"]), s["dtype"])
        return ModelHandle(
            id=model_id,
            backend=backend,
            model_dir=directory,
            inputs=[spec(s) for s in value["inputs"]],
            outputs=[spec(s) for s in value["outputs"]],
            layers=list(value["layers"]),
            load_ms=float(value["load_ms"]),
        )

    def predict(self, handle, inputs, timeout_s=None):
        """Run the model; returns its outputs in model output order."""
        encoded = self._inputs(handle, inputs)
        outs = self._call(handle.backend, "predict", [handle.id, encoded], timeout_s, handle)
        return [_decode(o) for o in outs]

    def layer_outputs(self, handle, inputs, layer_names, timeout_s=None):
        """Activations of the named layers: {name: [one array per layer output]}."""
        names = [layer_names] if isinstance(layer_names, str) else list(layer_names)
        unknown = [n for n in names if n not in handle.layers]
        if unknown:
            raise ValueError(f"model {handle.id} has no layer named {', '.join(unknown)}")
        encoded = self._inputs(handle, inputs)
        value = self._call(handle.backend, "layerOutputs", [handle.id, encoded, names], timeout_s, handle)
        return {name: [_decode(o) for o in value[name]] for name in names}

    def time_predict(self, handle, inputs, k=5, timeout_s=None):
        """First-predict time and the median of `k` steady predicts, in ms."""
        encoded = self._inputs(handle, inputs)
        value = self._call(handle.backend, "timePredict", [handle.id, encoded, int(k)], timeout_s, handle)
        return {
            "first_predict_ms": float(value["first_predict_ms"]),
            "predict_median_ms": float(value["predict_median_ms"]),
            "runs_ms": [float(x) for x in value["runs_ms"]],
        }

    def weights(self, handle, timeout_s=None):
        """Every weight as TF.js holds it after loading (quantized weights dequantized): {name: array}."""
        value = self._call(handle.backend, "weights", [handle.id], timeout_s, handle)
        return {w["name"]: _decode(w) for w in value}

    def dequant_check(self, handle, timeout_s=None):
        """{quantized weight: max |TF.js's loaded value - the value its manifest entry encodes|} (None: NaN)."""
        return dict(self._call(handle.backend, "dequantCheck", [handle.id], timeout_s, handle))

    def training_info(self, handle, timeout_s=None):
        """{compiled, optimizer, optimizer_config, metrics_names, optimizer_weights} of the loaded model."""
        return self._call(handle.backend, "trainingInfo", [handle.id], timeout_s, handle)

    def evaluate(self, handle, inputs, targets, batch_size, timeout_s=None):
        """`model.evaluate` in TF.js: (its scalars, model.metricsNames)."""
        value = self._call(
            handle.backend,
            "evaluate",
            [handle.id, self._inputs(handle, inputs), [_encode(t) for t in targets], int(batch_size)],
            timeout_s,
            handle,
        )
        return [float(v) for v in value["values"]], list(value["names"])

    def train_steps(self, handle, batches, timeout_s=None):
        """`trainOnBatch` on each (inputs, targets) batch in turn: (per-step scalars, {weight: array})."""
        encoded = [{"inputs": self._inputs(handle, xs), "targets": [_encode(t) for t in ys]} for xs, ys in batches]
        value = self._call(handle.backend, "trainSteps", [handle.id, encoded], timeout_s, handle)
        return [[float(v) for v in step] for step in value["steps"]], {w["name"]: _decode(w) for w in value["weights"]}

    def dispose(self, handle):
        """Free the model's tensors in the page."""
        slot = self._slot(handle.backend)
        if handle.id in slot.live:
            self._call(handle.backend, "dispose", [handle.id], None)
            slot.live.discard(handle.id)

    def close(self):
        """Close the browser, the server and the event loop; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        try:
            if self._loop.is_running():
                future = asyncio.run_coroutine_threadsafe(self._stop(), self._loop)
                try:
                    future.result(timeout=30)
                except Exception:
                    pass
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(timeout=10)
        finally:
            self._server.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- the synchronous side ----

    def _run(self, coro, timeout):
        if self._closed:
            coro.close()
            raise RunnerError("crash", "the browser session is closed")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout=timeout + _GRACE_S)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise RunnerError("timeout", f"the browser did not answer within {timeout + _GRACE_S:.0f}s") from None

    def _slot(self, backend):
        try:
            return self._slots[backend]
        except KeyError:
            raise RunnerError(
                "backend", f"backend {backend!r} is not in this session ({', '.join(self._slots)})"
            ) from None

    def _call(self, backend, fn, args, timeout_s, handle=None):
        slot = self._slot(backend)
        if not slot.info.available:
            raise RunnerError("backend", f"backend {backend} is unavailable: {slot.info.reason}")
        if handle is not None and handle.id not in slot.live:
            if handle.id in slot.lost:
                raise RunnerError(
                    "lost",
                    f"model {handle.id} was lost when the {backend} page "
                    "was replaced after an earlier error; load it again",
                )
            raise RunnerError("lost", f"model {handle.id} is not loaded (disposed?)")
        timeout = self.timeout_s if timeout_s is None else float(timeout_s)
        return self._run(self._call_async(slot, fn, args, timeout), timeout)

    def _inputs(self, handle, inputs):
        names = [s.name for s in handle.inputs]
        if isinstance(inputs, dict):
            missing = [n for n in names if n not in inputs]
            extra = [n for n in inputs if n not in names]
            if missing or extra:
                raise ValueError(f"model {handle.id} inputs are {names}; missing {missing}, unexpected {extra}")
            arrays = [inputs[n] for n in names]
        elif isinstance(inputs, (list, tuple)):
            arrays = list(inputs)
        else:
            arrays = [inputs]
        if len(arrays) != len(names):
            raise ValueError(f"model {handle.id} takes {len(names)} input(s) {names}, got {len(arrays)}")
        encoded = []
        for spec, array in zip(handle.inputs, arrays):
            array = np.asarray(array)
            expected = spec.shape
            # Rank only: TF.js checks the dimensions itself, and some layers (CenterCrop) leave a wrong
            # shape on model.inputs that TF.js's own check does not use.
            if len(expected) != array.ndim:
                raise ValueError(
                    f"input {spec.name} of model {handle.id} has shape {list(array.shape)}, expected {expected}"
                )
            encoded.append(_encode(array))
        return encoded

    # ---- the event-loop side ----

    async def _start(self):
        from playwright.async_api import async_playwright

        self._pw = await async_playwright().start()
        self._browser = await self._pw.chromium.launch(
            executable_path=self.chromium_path,
            args=CHROMIUM_FLAGS,
            headless=True,
            timeout=self.timeout_s * 1000,
        )
        self.browser_version = self._browser.version
        for slot in self._slots.values():
            await self._open(slot)

    async def _stop(self):
        try:
            if self._browser is not None:
                await asyncio.wait_for(self._browser.close(), 20)
        except Exception:
            pass
        try:
            if self._pw is not None:
                await asyncio.wait_for(self._pw.stop(), 10)
        except Exception:
            pass

    async def _open(self, slot):
        """A fresh context and page for `slot`, with its backend set."""
        slot.console = []
        slot.context = await self._browser.new_context()
        slot.page = page = await slot.context.new_page()
        lines = slot.console
        page.on("console", lambda msg: lines.append(f"{msg.type}: {msg.text}"))
        page.on("pageerror", lambda err: lines.append(f"pageerror: {err}"))
        page.on("crash", lambda _: lines.append("crash: the page crashed"))
        try:
            await asyncio.wait_for(page.goto(self._server.page_url), self.timeout_s)
            result = await asyncio.wait_for(
                page.evaluate("([n, d]) => window.runner.setBackend(n, d)", [slot.name, self._server.wasm_url]),
                self.timeout_s,
            )
        except asyncio.TimeoutError:
            result = {"ok": False, "message": f"the page did not start within {self.timeout_s:.0f}s"}
        except Exception as e:
            result = {"ok": False, "message": _one_line(e)}
        if result["ok"]:
            facts = dict(result["value"])
            slot.info = BackendInfo(
                name=slot.name,
                available=True,
                tfjs_version=facts.pop("tfjs_version"),
                float_precision=facts.pop("float_precision"),
                webgl_renderer=facts.pop("webgl_renderer"),
                wasm_simd=facts.pop("wasm_simd"),
                wasm_threads=facts.pop("wasm_threads"),
                webgpu_adapter=facts.pop("webgpu_adapter"),
                details=facts,
            )
        else:
            slot.info = BackendInfo(name=slot.name, available=False, reason=result["message"])

    async def _replace(self, slot):
        """Throw away the slot's context (killing a stuck renderer) and open a fresh one."""
        slot.lost |= slot.live
        slot.live = set()
        try:
            await asyncio.wait_for(slot.context.close(), 20)
        except Exception:
            pass
        try:
            if not self._browser.is_connected():  # the whole browser died: start another
                self._browser = await self._pw.chromium.launch(
                    executable_path=self.chromium_path,
                    args=CHROMIUM_FLAGS,
                    headless=True,
                    timeout=self.timeout_s * 1000,
                )
            await self._open(slot)
        except Exception as e:
            slot.info = BackendInfo(
                name=slot.name, available=False, reason=f"could not reopen the page: {_one_line(e)}"
            )

    async def _call_async(self, slot, fn, args, timeout):
        async with slot.lock:  # one call at a time per page; backends run independently
            return await self._call_locked(slot, fn, args, timeout)

    async def _call_locked(self, slot, fn, args, timeout):
        from playwright.async_api import Error as PlaywrightError

        if not slot.info.available:
            raise RunnerError("backend", f"backend {slot.name} is unavailable: {slot.info.reason}")
        start = len(slot.console)
        console = slot.console
        try:
            result = await asyncio.wait_for(slot.page.evaluate(f"(args) => window.runner.{fn}(...args)", args), timeout)
        except asyncio.TimeoutError:
            lines = console[start:]
            await self._replace(slot)
            raise RunnerError(
                "timeout", f"{fn} did not finish within {timeout:.0f}s; the page was replaced", lines
            ) from None
        except PlaywrightError as e:
            lines = console[start:]
            await self._replace(slot)
            raise RunnerError("crash", f"{fn}: {_one_line(e.message)}", lines) from None
        if not result["ok"]:
            lines = console[start:]
            await self._replace(slot)
            raise RunnerError(result["stage"], result["message"], lines)
        return result["value"]
