// The in-browser half of js_runner: loads TF.js Layers models and runs them.
//
// Python calls `window.runner.<fn>(...)` through Playwright's page.evaluate.
// Every function resolves to {ok: true, value} or {ok: false, stage, message}
// so that the failing stage crosses the boundary intact: loading has the stages
// fetch, parse and weights; every other call has its own (predict,
// layer_outputs, time_predict, read_weights, dequant_check, training_info,
// evaluate, train, backend), so that a declared failure of one cannot be
// satisfied by a failure of another. Tensors cross it as base64 of their typed array, so
// large arrays are cheap and NaN/Inf survive.
'use strict';

(function () {
  const models = new Map();  // id -> {model, firstPredictMs, subModels}
  let currentLoad = null;    // {stage} of the load in progress

  class StageError extends Error {
    constructor(stage, message) {
      super(message);
      this.stage = stage;
    }
  }

  // Mark the start of the weights stage: loadLayersModel calls loadWeights
  // right after the topology is built.
  (function markWeightsStage() {
    let proto = tf.LayersModel.prototype;
    while (proto && !Object.prototype.hasOwnProperty.call(proto, 'loadWeights')) {
      proto = Object.getPrototypeOf(proto);
    }
    const original = proto.loadWeights;
    proto.loadWeights = function (...args) {
      if (currentLoad) currentLoad.stage = 'weights';
      return original.apply(this, args);
    };
  })();

  function message(e) {
    return (e && e.message) ? e.message : String(e);
  }

  async function wrap(stage, fn) {
    try {
      return {ok: true, value: await fn()};
    } catch (e) {
      return {ok: false, stage: (e && e.stage) || stage, message: message(e)};
    }
  }

  // ---- tensors across the boundary ----

  function toBase64(typed) {
    const bytes = new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
    const parts = [];
    for (let i = 0; i < bytes.length; i += 0x8000) {
      parts.push(String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000)));
    }
    return btoa(parts.join(''));
  }

  function fromBase64(b64) {
    const s = atob(b64);
    const bytes = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
    return bytes.buffer;
  }

  const ARRAYS = {float32: Float32Array, int32: Int32Array, bool: Uint8Array};

  function toTensor(spec) {
    const Array_ = ARRAYS[spec.dtype];
    if (!Array_) throw new Error(`unsupported input dtype ${spec.dtype}`);
    return tf.tensor(new Array_(fromBase64(spec.data)), spec.shape, spec.dtype);
  }

  function encode(tensor, data) {
    if (!ARRAYS[tensor.dtype]) {
      throw new Error(`unsupported output dtype ${tensor.dtype}`);
    }
    return {data: toBase64(data), shape: tensor.shape, dtype: tensor.dtype};
  }

  // Run `model` on decoded inputs; return [outputs as tensors' data, ms].
  async function run(model, xs) {
    const t0 = performance.now();
    let ys = model.predict(xs.length === 1 ? xs[0] : xs);
    ys = Array.isArray(ys) ? ys : [ys];
    try {
      const datas = [];
      for (const y of ys) datas.push(await y.data());
      return [ys.map((y, i) => encode(y, datas[i])), performance.now() - t0];
    } finally {
      tf.dispose(ys);
    }
  }

  function entry(id) {
    const e = models.get(id);
    if (!e) throw new Error(`no loaded model with id ${id}`);
    return e;
  }

  // ---- backend ----

  async function backendFacts(name) {
    const backend = tf.backend();
    const facts = {
      tfjs_version: tf.version.tfjs,
      float_precision: backend.floatPrecision(),
      webgl_renderer: null,
      webgl_version: null,
      webgl_render_float32: null,
      wasm_simd: null,
      wasm_threads: null,
      webgpu_adapter: null,
      cross_origin_isolated: self.crossOriginIsolated === true,
    };
    if (name === 'webgl') {
      facts.webgl_version = tf.env().getNumber('WEBGL_VERSION');
      facts.webgl_render_float32 = tf.env().getBool('WEBGL_RENDER_FLOAT32_ENABLED');
      // TF.js 4.22's floatPrecision() answers 16 whenever float32 rendering is
      // enabled (and so epsilon() is 1e-4); textures then hold float32, so
      // report 32 and keep TF.js's own answer beside it.
      facts.backend_float_precision = facts.float_precision;
      if (facts.webgl_render_float32) facts.float_precision = 32;
      const gl = backend.gpgpu.gl;
      const info = gl.getExtension('WEBGL_debug_renderer_info');
      facts.webgl_renderer = info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) :
                                    gl.getParameter(gl.RENDERER);
    }
    if (name === 'wasm') {
      facts.wasm_simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
      facts.wasm_threads = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
    }
    if (name === 'webgpu') {
      const adapter = await navigator.gpu.requestAdapter();
      const info = (adapter && adapter.info) || {};
      facts.webgpu_adapter = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') ||
          'unnamed adapter';
      facts.webgpu_fallback = info.isFallbackAdapter === true || adapter.isFallbackAdapter === true;
      facts.webgpu_shader_f16 = adapter.features.has('shader-f16');
    }
    return facts;
  }

  // Why WebGPU cannot start here, in words a user can act on; null when it can.
  async function webgpuMissing() {
    if (typeof tf.findBackendFactory !== 'function' || !tf.findBackendFactory('webgpu')) {
      return 'the page did not load tf-backend-webgpu';
    }
    if (!navigator.gpu) {
      return 'navigator.gpu is undefined: this browser exposes no WebGPU (Chromium needs --enable-unsafe-webgpu ' +
          'where WebGPU is not enabled by default)';
    }
    if (!(await navigator.gpu.requestAdapter())) {
      return 'navigator.gpu.requestAdapter() returned null: no WebGPU adapter on this machine';
    }
    return null;
  }

  // Activate backend `name`; when it cannot start, fail with the browser's own words.
  async function setBackend(name, wasmDir) {
    return wrap('backend', async () => {
      const warnings = [];
      const warn = console.warn;
      console.warn = (...args) => {
        warnings.push(args.map(String).join(' '));
        warn.apply(console, args);
      };
      if (name === 'webgpu') {
        const missing = await webgpuMissing();
        if (missing) throw new StageError('backend', missing);
      }
      let ok;
      try {
        if (name === 'wasm') tf.wasm.setWasmPaths(wasmDir);
        ok = await tf.setBackend(name);
        await tf.ready();
      } finally {
        console.warn = warn;
      }
      if (!ok || tf.getBackend() !== name) {
        throw new StageError('backend', warnings.join(' | ') ||
            `tf.setBackend('${name}') failed; active backend is ${tf.getBackend()}`);
      }
      return backendFacts(name);
    });
  }

  // ---- loading ----

  // Read each response body fully before resolving. TF.js awaits every shard's
  // response before reading any body, which deadlocks over HTTP/1.x once a
  // model has more shards than Chromium's 6 connections per host.
  async function fetchFully(url, init) {
    let response;
    try {
      response = await fetch(url, init);
    } catch (e) {
      throw new StageError('fetch', `fetch ${url} failed: ${message(e)}`);
    }
    if (!response.ok) {
      throw new StageError('fetch', `HTTP ${response.status} for ${url}`);
    }
    const body = await response.arrayBuffer();
    return new Response(body, {status: response.status, headers: response.headers});
  }

  const BYTES = {float32: 4, int32: 4, bool: 1, complex64: 8, uint8: 1, uint16: 2, float16: 2};

  // Fail early, in the weights stage, when the shards hold fewer bytes than the manifest needs.
  function checkWeightBytes(artifacts) {
    const specs = artifacts.weightSpecs || [];
    let needed = 0;
    for (const spec of specs) {
      const dtype = spec.quantization ? spec.quantization.dtype : spec.dtype;
      if (!(dtype in BYTES)) return;  // strings have no fixed size
      needed += spec.shape.reduce((a, b) => a * b, 1) * BYTES[dtype];
    }
    const data = artifacts.weightData;
    const buffers = data == null ? [] : (Array.isArray(data) ? data : [data]);
    const held = buffers.reduce((a, b) => a + b.byteLength, 0);
    if (held < needed) {
      throw new StageError('weights',
          `the weights manifest needs ${needed} bytes but the shards hold ${held}`);
    }
  }

  function tensorSpecs(tensors, names) {
    // Sequential models leave inputNames/outputNames empty: fall back to the layer.
    return tensors.map((t, i) => ({
      name: (names && names[i]) || t.sourceLayer.name,
      shape: t.shape,
      dtype: t.dtype,
    }));
  }

  // Run a script before the model is built: as a module, imported afresh for every load (`?load=<id>`), so that
  // each load registers its own classes (two ports may register one className) and top-level declarations of
  // different scripts never collide. Plain scripts that register on the global `tf` run as modules too.
  async function runScript(url, id) {
    try {
      await import(`${url}${url.includes('?') ? '&' : '?'}load=${encodeURIComponent(id)}`);
    } catch (e) {
      throw new StageError('script', `${url}: ${message(e)}`);
    }
  }

  // The companion module model.json's metadata asks for (converter/companion), beside model.json.
  function companionUrl(artifacts, modelUrl) {
    const meta = ((artifacts.userDefinedMetadata || {}).tfjs_certify || {}).companion;
    return meta && meta.file ? new URL(meta.file, new URL(modelUrl, location.href)).href : null;
  }

  async function load(id, url, scripts) {
    return wrap('parse', async () => {
      if (models.has(id)) dispose(id);
      const t0 = performance.now();
      const http = tf.io.http(url, {fetchFunc: fetchFully});
      const state = {stage: 'fetch'};
      const handler = {
        load: async () => {
          let artifacts;
          try {
            artifacts = await http.load();
          } catch (e) {
            const parseError = /parse model JSON|contains neither/.test(message(e));
            throw new StageError(e.stage || (parseError ? 'parse' : 'fetch'), message(e));
          }
          state.stage = 'script';
          const companion = companionUrl(artifacts, url);
          for (const script of [...(companion ? [companion] : []), ...(scripts || [])]) {
            await runScript(script, id);
          }
          state.stage = 'parse';
          checkWeightBytes(artifacts);
          state.artifacts = artifacts;
          return artifacts;
        },
      };
      let model;
      currentLoad = state;
      try {
        model = await tf.loadLayersModel(handler, {strict: true});
      } catch (e) {
        throw new StageError(e.stage || state.stage, message(e));
      } finally {
        currentLoad = null;
      }
      const loadMs = performance.now() - t0;
      models.set(id, {model, firstPredictMs: null, subModels: new Map(), artifacts: state.artifacts});
      return {
        id,
        load_ms: loadMs,
        inputs: tensorSpecs(model.inputs, model.inputNames),
        outputs: tensorSpecs(model.outputs, model.outputNames),
        layers: model.layers.map(l => l.name),
      };
    });
  }

  // ---- running ----

  async function predict(id, inputs) {
    return wrap('predict', async () => {
      const e = entry(id);
      const xs = inputs.map(toTensor);
      try {
        const [outputs, ms] = await run(e.model, xs);
        if (e.firstPredictMs == null) e.firstPredictMs = ms;
        return outputs;
      } finally {
        tf.dispose(xs);
      }
    });
  }

  function layerTensors(model, name) {
    const layer = model.getLayer(name);
    let outs;
    try {
      outs = layer.output;
    } catch (e) {  // a shared layer: every call's outputs
      outs = layer.inboundNodes.flatMap(node => node.outputTensors);
    }
    return Array.isArray(outs) ? outs : [outs];
  }

  async function layerOutputs(id, inputs, names) {
    return wrap('layer_outputs', async () => {
      const e = entry(id);
      const key = JSON.stringify(names);
      let sub = e.subModels.get(key);
      if (!sub) {
        const outputs = [];
        const counts = [];
        for (const name of names) {
          const tensors = layerTensors(e.model, name);
          counts.push(tensors.length);
          outputs.push(...tensors);
        }
        sub = {model: tf.model({inputs: e.model.inputs, outputs}), counts};
        e.subModels.set(key, sub);
      }
      const xs = inputs.map(toTensor);
      try {
        const [flat] = await run(sub.model, xs);
        const result = {};
        let at = 0;
        names.forEach((name, i) => {
          result[name] = flat.slice(at, at + sub.counts[i]);
          at += sub.counts[i];
        });
        return result;
      } finally {
        tf.dispose(xs);
      }
    });
  }

  async function timePredict(id, inputs, k) {
    return wrap('time_predict', async () => {
      const e = entry(id);
      const xs = inputs.map(toTensor);
      try {
        const time = async () => {
          const t0 = performance.now();
          let ys = e.model.predict(xs.length === 1 ? xs[0] : xs);
          ys = Array.isArray(ys) ? ys : [ys];
          for (const y of ys) await y.data();
          tf.dispose(ys);
          return performance.now() - t0;
        };
        if (e.firstPredictMs == null) e.firstPredictMs = await time();
        const runs = [];
        for (let i = 0; i < k; i++) runs.push(await time());
        const sorted = runs.slice().sort((a, b) => a - b);
        const mid = Math.floor(sorted.length / 2);
        const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
        return {first_predict_ms: e.firstPredictMs, predict_median_ms: median, runs_ms: runs};
      } finally {
        tf.dispose(xs);
      }
    });
  }

  // ---- weights and training ----

  // Every weight as TF.js holds it after loading (dequantized), by the name it was loaded under.
  async function weights(id) {
    return wrap('read_weights', async () => {
      const e = entry(id);
      const out = [];
      for (const v of e.model.weights) {
        const t = v.read();
        out.push({name: v.originalName, ...encode(t, await t.data())});
      }
      return out;
    });
  }

  // float16 bits -> number (IEEE 754 half precision).
  function halfToFloat(h) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) return sign * Math.pow(2, -14) * (frac / 1024);
    if (exp === 31) return frac ? NaN : sign * Infinity;
    return sign * Math.pow(2, exp - 15) * (1 + frac / 1024);
  }

  // Every float16 bit pattern's value, built on first use: a lookup, not a Math.pow per weight (ResNet50 has
  // 23M of them).
  let halfTable = null;
  function halves() {
    if (halfTable === null) {
      halfTable = new Float32Array(65536);
      for (let h = 0; h < 65536; h++) halfTable[h] = halfToFloat(h);
    }
    return halfTable;
  }

  // For each quantized weight, max |TF.js's loaded value - the value its manifest entry encodes|:
  // how faithfully TF.js decoded the shards (0 when it computed value * scale + min, or the half, exactly).
  function dequantCheck(id) {
    return wrap('dequant_check', async () => {
      const e = entry(id);
      const specs = e.artifacts.weightSpecs || [];
      const data = e.artifacts.weightData;
      const buffers = Array.isArray(data) ? data : [data];
      const total = buffers.reduce((a, b) => a + b.byteLength, 0);
      const bytes = new Uint8Array(total);
      let at = 0;
      for (const b of buffers) { bytes.set(new Uint8Array(b), at); at += b.byteLength; }
      const loaded = new Map(e.model.weights.map(v => [v.originalName, v]));
      const out = {};
      let offset = 0;
      for (const spec of specs) {
        const n = spec.shape.reduce((a, b) => a * b, 1);
        const q = spec.quantization;
        const dtype = q ? q.dtype : spec.dtype;
        const size = n * BYTES[dtype];
        // TF.js's own fallback (engine/container.js loadWeights): the second-to-last part is dropped,
        // so `layer/cell/weight` loads into `layer/weight`.
        const parts = spec.name.split('/');
        const key = loaded.has(spec.name) ? spec.name : parts.slice(0, -2).concat(parts.slice(-1)).join('/');
        if (q && loaded.has(key)) {
          const raw = bytes.slice(offset, offset + size).buffer;
          const codes = dtype === 'uint8' ? new Uint8Array(raw) : new Uint16Array(raw);
          const got = await loaded.get(key).read().data();
          const half = dtype === 'float16' ? halves() : null;
          let max = 0;
          for (let i = 0; i < n; i++) {
            const want = half !== null ? half[codes[i]] : Math.fround(codes[i] * q.scale + q.min);
            const d = Math.abs(got[i] - want);
            if (!(d <= max)) max = d;  // NaN counts as the worst
          }
          out[spec.name] = Number.isNaN(max) ? null : max;
        }
        offset += size;
      }
      return out;
    });
  }

  // Whether the file compiled the model, and how: TF.js compiles only from a top-level trainingConfig.
  function trainingInfo(id) {
    return wrap('training_info', async () => {
      const m = entry(id).model;
      const opt = m.optimizer;
      return {
        compiled: opt != null && m.lossFunctions != null,
        optimizer: opt ? opt.getClassName() : null,
        optimizer_config: opt ? opt.getConfig() : null,
        metrics_names: m.metricsNames || [],
        optimizer_weights: opt ? await optimizerWeightNames(opt) : [],
      };
    });
  }

  async function optimizerWeightNames(opt) {
    try {
      return (await opt.getWeights()).map(w => w.name);
    } catch (e) {  // Adamax: "getWeights() is not implemented for Adamax yet"
      return null;
    }
  }

  // Numbers, or scalar tensors read asynchronously: a synchronous read (dataSync) on TF.js 4.22's webgpu backend
  // leaves the WebGPU instance unusable in Chromium ("A valid external Instance reference no longer exists").
  async function scalars(result) {
    const list = Array.isArray(result) ? result : [result];
    const out = [];
    for (const x of list) out.push(typeof x === 'number' ? x : (await x.data())[0]);
    return out;
  }

  // model.evaluate on one batch of the given size; its scalars in metricsNames order.
  async function evaluate(id, inputs, targets, batchSize) {
    return wrap('evaluate', async () => {
      const m = entry(id).model;
      const xs = inputs.map(toTensor);
      const ys = targets.map(toTensor);
      try {
        const result = m.evaluate(xs.length === 1 ? xs[0] : xs, ys.length === 1 ? ys[0] : ys,
                                  {batchSize});
        const values = await scalars(result);
        tf.dispose(result);
        return {values, names: m.metricsNames};
      } finally {
        tf.dispose([...xs, ...ys]);
      }
    });
  }

  // trainOnBatch over the batches in turn: the loss (and metrics) after each step, then the weights.
  async function trainSteps(id, batches) {
    return wrap('train', async () => {
      const m = entry(id).model;
      const steps = [];
      for (const batch of batches) {
        const xs = batch.inputs.map(toTensor);
        const ys = batch.targets.map(toTensor);
        try {
          steps.push(await scalars(await m.trainOnBatch(xs.length === 1 ? xs[0] : xs, ys.length === 1 ? ys[0] : ys)));
        } finally {
          tf.dispose([...xs, ...ys]);
        }
      }
      const out = [];
      for (const v of m.weights) {
        const t = v.read();
        out.push({name: v.originalName, ...encode(t, await t.data())});
      }
      return {steps, weights: out};
    });
  }

  function dispose(id) {
    const e = models.get(id);
    if (e) {
      models.delete(id);
      e.model.dispose();
    }
    return {ok: true, value: tf.memory().numTensors};
  }

  window.runner = {setBackend, load, predict, layerOutputs, timePredict, weights, dequantCheck, trainingInfo,
                   evaluate, trainSteps, dispose};
})();
