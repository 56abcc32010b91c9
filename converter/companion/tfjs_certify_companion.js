// tfjs-certify companion module: Keras layers TF.js 4.22 cannot express, as TF.js layer classes.
//
// The converter writes this file next to model.json when a model needs it (`tfjs-convert --companion`) and
// records the classes the model uses in model.json's userDefinedMetadata.tfjs_certify.companion. Load it
// after TF.js and before tf.loadLayersModel:
//
//   <script src="tf.min.js"></script>
//   <script src="model/tfjs_certify_companion.js"></script>      <!-- registers on the global tf -->
//
// or, where TF.js is an ES module (a bundler, or <script type="module">):
//
//   import * as tf from '@tensorflow/tfjs';
//   import './model/tfjs_certify_companion.js';                  // defines globalThis.tfjsCertifyCompanion
//   tfjsCertifyCompanion.install(tf);                            // registers on *your* tf instance
//
// Every class is named `TfjsCertify<...>`, a name TF.js never uses: registering a name TF.js has (`GRU`,
// `Resizing`) would replace TF.js's own class for every model on the page. Each computes what Keras computes,
// certified by tfjs-certify's `companion` tier on the cpu, wasm and webgl backends of TF.js 4.22; which Keras
// construct maps to which class, and why only JavaScript can run it, is converter/companion_table.py.
// Depends on nothing but TF.js 4.22.
(function (root) {
  'use strict';

  const VERSION = '0.1.0';
  const TFJS_VERSION = '4.22';
  const CLASS_NAMES = [
    'TfjsCertifyGRU',
    'TfjsCertifyGRUCell',
    'TfjsCertifyResizing',
    'TfjsCertifyUpSampling2D',
    'TfjsCertifyDiscretization',
  ];
  const installed = new WeakSet();

  function install(tf) {
    if (!tf || !tf.layers || !tf.serialization) {
      throw new Error('tfjs-certify companion: install(tf) needs the TF.js module (tf.layers, tf.serialization)');
    }
    if (installed.has(tf)) return CLASS_NAMES.slice();
    if (!String(tf.version && tf.version.tfjs).startsWith(TFJS_VERSION)) {
      console.warn(`tfjs-certify companion ${VERSION} is certified with TF.js ${TFJS_VERSION}, ` +
                   `not ${tf.version && tf.version.tfjs}`);
    }
    for (const cls of classes(tf)) tf.serialization.registerClass(cls);
    installed.add(tf);
    return CLASS_NAMES.slice();
  }

  function classes(tf) {
    const registry = () => tf.serialization.SerializationMap.getMap().classNameMap;

    // A Keras object as TF.js reads it ({className, config}, or a registered name), built by TF.js's own class:
    // the same initializers, regularizers, constraints and activations TF.js's layers use.
    function build(spec, what) {
      if (spec == null) return null;
      const named = typeof spec === 'string' ? {className: spec, config: {}} : spec;
      const entry = registry()[named.className];
      if (!entry) throw new Error(`tfjs-certify companion: TF.js has no ${what} ${JSON.stringify(named.className)}`);
      const [cls, fromConfig] = entry;
      return fromConfig ? fromConfig(cls, Object.assign({}, named.config || {})) : new cls(named.config || {});
    }

    function activation(name) {
      const act = build(name, 'activation');
      if (!act || typeof act.apply !== 'function') {
        throw new Error(`tfjs-certify companion: ${JSON.stringify(name)} is not a TF.js activation`);
      }
      return act;
    }

    function one(inputs) {
      if (Array.isArray(inputs)) {
        if (inputs.length !== 1) throw new Error(`expected one input tensor, got ${inputs.length}`);
        return inputs[0];
      }
      return inputs;
    }

    function oneShape(shape) {
      return Array.isArray(shape[0]) ? shape[0] : shape;
    }

    // A config for getConfig: the arguments as TF.js passed them, without what TF.js adds on the way in.
    function plain(args, keys) {
      const out = {};
      for (const k of keys) if (args[k] !== undefined) out[k] = args[k];
      return out;
    }

    // ---- GRU with reset_after=True --------------------------------------------------------------------------
    // Keras (gru.py GRUCell.call), gates in the order [z | r | h], bias [input; recurrent] of shape [2, 3 units]:
    //   z = σ(x·W_z + b_z + h·U_z + b'_z),  r = σ(x·W_r + b_r + h·U_r + b'_r)
    //   ĥ = act(x·W_h + b_h + r ⊙ (h·U_h + b'_h)),  h_t = z ⊙ h_{t-1} + (1 − z) ⊙ ĥ
    // The reset gate multiplies the *projected* state: no weight transform turns this into TF.js's GRUCell
    // ((r ⊙ h)·U_h). TF.js's own RNN layer runs it (TfjsCertifyGRU below, or an RNN whose cell it is), and supplies
    // return_sequences, return_state, go_backwards, stateful, masking, Bidirectional and stacking as for its own
    // cells.
    const GRU_KEYS = [
      'units', 'activation', 'recurrentActivation', 'useBias', 'kernelInitializer', 'recurrentInitializer',
      'biasInitializer', 'kernelRegularizer', 'recurrentRegularizer', 'biasRegularizer', 'kernelConstraint',
      'recurrentConstraint', 'biasConstraint', 'dropout', 'recurrentDropout', 'resetAfter',
    ];

    class TfjsCertifyGRUCell extends tf.layers.RNNCell {
      constructor(args) {
        super(args);
        if (args.resetAfter === false) {
          throw new Error('TfjsCertifyGRUCell computes reset_after=True; TF.js\'s GRUCell computes reset_after=False');
        }
        if (!(Number.isInteger(args.units) && args.units > 0)) {
          throw new Error(`TfjsCertifyGRUCell: units must be a positive integer, got ${args.units}`);
        }
        this.args = plain(args, GRU_KEYS);
        this.units = args.units;
        this.stateSize = this.units;
        this.activation = activation(args.activation == null ? 'tanh' : args.activation);
        this.recurrentActivation = activation(args.recurrentActivation == null ? 'sigmoid' : args.recurrentActivation);
        this.useBias = args.useBias == null ? true : args.useBias;
        this.dropout = args.dropout || 0;
        this.recurrentDropout = args.recurrentDropout || 0;
      }

      build(inputShape) {
        const shape = oneShape(inputShape);
        const inputDim = shape[shape.length - 1];
        const a = this.args;
        const weight = (name, shape_, init, fallback, reg, con) => this.addWeight(
            name, shape_, null, build(a[init], 'initializer') || tf.initializers[fallback]({}), build(a[reg], 'regularizer'),
            true, build(a[con], 'constraint'));
        this.kernel = weight('kernel', [inputDim, 3 * this.units], 'kernelInitializer', 'glorotUniform',
                             'kernelRegularizer', 'kernelConstraint');
        this.recurrentKernel = weight('recurrent_kernel', [this.units, 3 * this.units], 'recurrentInitializer',
                                      'orthogonal', 'recurrentRegularizer', 'recurrentConstraint');
        this.bias = this.useBias ?
            weight('bias', [2, 3 * this.units], 'biasInitializer', 'zeros', 'biasRegularizer', 'biasConstraint') :
            null;
        this.built = true;
      }

      call(inputs, kwargs) {
        return tf.tidy(() => {
          if (!Array.isArray(inputs) || inputs.length !== 2) {
            throw new Error(`TfjsCertifyGRUCell expects [input, state], got ${Array.isArray(inputs) ? inputs.length : 1}`);
          }
          if (kwargs && kwargs.training && (this.dropout > 0 || this.recurrentDropout > 0)) {
            throw new Error('TfjsCertifyGRUCell does not implement dropout in training');
          }
          const [x, hPrev] = inputs;
          let matrixX = tf.matMul(x, this.kernel.read());
          let matrixInner = tf.matMul(hPrev, this.recurrentKernel.read());
          if (this.bias != null) {
            const [inputBias, recurrentBias] = tf.unstack(this.bias.read());
            matrixX = tf.add(matrixX, inputBias);
            matrixInner = tf.add(matrixInner, recurrentBias);
          }
          const [xZ, xR, xH] = tf.split(matrixX, 3, -1);
          const [recZ, recR, recH] = tf.split(matrixInner, 3, -1);
          const z = this.recurrentActivation.apply(tf.add(xZ, recZ));
          const r = this.recurrentActivation.apply(tf.add(xR, recR));
          const hh = this.activation.apply(tf.add(xH, tf.mul(r, recH)));
          const h = tf.add(tf.mul(z, hPrev), tf.mul(tf.sub(1, z), hh));
          return [h, h];
        });
      }

      getConfig() {
        return Object.assign({}, super.getConfig(), this.args, {resetAfter: true});
      }
    }
    TfjsCertifyGRUCell.className = 'TfjsCertifyGRUCell';

    // A Keras GRU layer: TF.js's RNN around TfjsCertifyGRUCell, built as TF.js builds its own GRU (the layer's
    // config holds the cell's arguments). A plain RNN with a `cell` config would do inside a model, but not inside
    // TF.js 4.22's Bidirectional: RNN.fromConfig replaces the cell config with the cell it built, in the very
    // config Bidirectional then reuses for the backward copy.
    class TfjsCertifyGRU extends tf.layers.RNN {
      constructor(args) {
        super(Object.assign({}, args, {cell: new TfjsCertifyGRUCell(args)}));
      }

      static fromConfig(cls, config) {
        return new cls(config);
      }
    }
    TfjsCertifyGRU.className = 'TfjsCertifyGRU';

    // ---- Keras image resizing ---------------------------------------------------------------------------------
    // tf.image.resize (Keras's Resizing and UpSampling2D, antialias off) samples at half-pixel centres. TF.js's
    // Resizing layer passes alignCorners instead (and cannot crop or pad); its UpSampling2D has no half-pixel
    // centres. TF.js's kernels with halfPixelCenters=true compute TensorFlow's bilinear and nearest; TF.js has no
    // other resizing, so for those the weights TensorFlow's kernel gives each input row (column) are computed here,
    // in its float32 arithmetic, and applied as two matrix products (rows, then columns, as TensorFlow sums).
    const f32 = Math.fround;
    const FLT_MIN = 1.1754943508222875e-38;
    const rint = v => {  // lrintf: to nearest, ties to even
      const r = Math.round(v);
      return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
    };
    const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

    // resize_bicubic_op.cc (half_pixel_centers): Keys' cubic, a = -0.5, from a 1024-step table; taps outside the
    // image get no weight and the others are renormalised.
    let keysTable = null;
    function keys() {
      if (keysTable === null) {
        const a = -0.5;
        keysTable = new Float32Array(2 * 1025);
        for (let i = 0; i <= 1024; i++) {
          let x = f32(i / 1024);
          keysTable[2 * i] = ((a + 2) * x - (a + 3)) * x * x + 1;
          x = f32(x + 1);
          keysTable[2 * i + 1] = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
        }
      }
      return keysTable;
    }

    function bicubicWeights(inSize, outSize) {
      const table = keys();
      const scale = f32(inSize / outSize);
      const w = new Float32Array(outSize * inSize);
      for (let o = 0; o < outSize; o++) {
        const at = f32(f32(f32(o + 0.5) * scale) - 0.5);
        const base = Math.floor(at);
        const offset = rint(f32(at - base) * 1024);
        const coeffs = [table[offset * 2 + 1], table[offset * 2], table[(1024 - offset) * 2],
                        table[(1024 - offset) * 2 + 1]];
        const taps = coeffs.map((c, k) => (base - 1 + k >= 0 && base - 1 + k < inSize ? c : 0));
        const sum = f32(f32(f32(taps[0] + taps[1]) + taps[2]) + taps[3]);
        const norm = Math.abs(sum) >= 1000 * FLT_MIN ? f32(1 / sum) : 1;
        taps.forEach((t, k) => {
          if (t !== 0) w[o * inSize + base - 1 + k] = f32(t * norm);
        });
      }
      return w;
    }

    // resize_area_op.cc: each output cell averages the input cells it covers, in proportion to the overlap.
    function areaWeights(inSize, outSize) {
      const scale = f32(inSize / outSize);
      const w = new Float32Array(outSize * inSize);
      const part = (v, lo, hi) => v < lo ? (v + 1 > hi ? scale : f32(v + 1 - lo)) : (v + 1 > hi ? f32(hi - v) : 1);
      for (let o = 0; o < outSize; o++) {
        const lo = f32(o * scale);
        const hi = f32((o + 1) * scale);
        const start = Math.floor(lo);
        const end = Math.ceil(hi);
        for (let v = start; v < end; v++) {
          const weight = v === start ? part(start, lo, hi) : v === end - 1 ? part(end - 1, lo, hi) : 1;
          w[o * inSize + clamp(v, 0, inSize - 1)] += weight;
        }
      }
      return w;
    }

    // scale_and_translate_op.cc (antialias off), with sampling_kernels.h's kernels: the weights of the input
    // samples within the kernel's radius of each output sample, renormalised.
    const PI = f32(3.14159265359);
    const lanczos = r => x => {
      if (x > r) return 0;
      if (x <= 1e-3) return 1;
      const px = f32(PI * x);
      return f32(f32(f32(r * f32(Math.sin(px))) * f32(Math.sin(f32(px / r)))) / f32(f32(f32(PI * PI) * x) * x));
    };
    const KERNELS = {
      lanczos3: [3, lanczos(3)],
      lanczos5: [5, lanczos(5)],
      gaussian: [1.5, x => (x >= 1.5 ? 0 : f32(Math.exp(f32(-x * x) / (2 * 0.5 * 0.5))))],
      mitchellcubic: [2, x => {
        const mul = (u, v) => f32(u * v);
        const add = (u, v) => f32(u + v);
        if (x >= 2) return 0;
        if (x >= 1) return add(mul(add(mul(add(mul(f32(-7 / 18), x), 2), x), -f32(10 / 3)), x), f32(16 / 9));
        return add(mul(mul(add(mul(f32(7 / 6), x), -2), x), x), f32(8 / 9));
      }],
    };

    function spanWeights(kind) {
      const [radius, kernel] = KERNELS[kind];
      return (inSize, outSize) => {
        const invScale = f32(1 / f32(outSize / inSize));
        const w = new Float32Array(outSize * inSize);
        for (let o = 0; o < outSize; o++) {
          const sample = f32(f32(o + 0.5) * invScale);
          if (sample < 0 || sample > inSize) continue;
          const start = clamp(Math.ceil(f32(f32(sample - radius) - 0.5)), 0, inSize - 1);
          const end = clamp(Math.floor(f32(f32(sample + radius) - 0.5)), 0, inSize - 1) + 1;
          const taps = [];
          let total = 0;
          for (let s = start; s < end; s++) {
            const weight = kernel(Math.abs(f32(f32(s + 0.5) - sample)));
            total = f32(total + weight);
            taps.push(weight);
          }
          if (Math.abs(total) >= 1000 * FLT_MIN) {
            const norm = f32(1 / total);
            taps.forEach((t, j) => { w[o * inSize + start + j] = f32(t * norm); });
          }
        }
        return w;
      };
    }

    // y[b, i, j, c] = Σ_h Σ_w rows[i, h] cols[j, w] x[b, h, w, c], rows first; `after` scales the result.
    function separable(weights, after) {
      return (x, size) => {
        const [b, h, w, c] = x.shape;
        const rows = tf.tensor2d(weights(h, size[0]), [size[0], h]);
        const cols = tf.tensor2d(weights(w, size[1]), [size[1], w]);
        const byRow = tf.matMul(rows, tf.reshape(tf.transpose(x, [1, 0, 2, 3]), [h, b * w * c]));
        const t = tf.transpose(tf.reshape(byRow, [size[0], b, w, c]), [2, 1, 0, 3]);  // [w, b, rows, c]
        const byCol = tf.matMul(cols, tf.reshape(t, [w, b * size[0] * c]));
        const y = tf.transpose(tf.reshape(byCol, [size[1], b, size[0], c]), [1, 2, 0, 3]);
        return after ? tf.mul(y, after(h, w, size)) : y;
      };
    }

    const INTERPOLATIONS = {
      bilinear: (x, size) => tf.image.resizeBilinear(x, size, false, true),
      nearest: (x, size) => tf.image.resizeNearestNeighbor(x, size, false, true),
      bicubic: separable(bicubicWeights),
      // ResizeArea multiplies its sums by 1 / (height scale * width scale) last
      area: separable(areaWeights, (h, w, size) => f32(1 / f32(f32(h / size[0]) * f32(w / size[1])))),
      lanczos3: separable(spanWeights('lanczos3')),
      lanczos5: separable(spanWeights('lanczos5')),
      gaussian: separable(spanWeights('gaussian')),
      mitchellcubic: separable(spanWeights('mitchellcubic')),
    };

    function resize(x, size, interpolation) {
      const fn = INTERPOLATIONS[interpolation];
      if (!fn) throw new Error(`tfjs-certify companion: no ${JSON.stringify(interpolation)} interpolation`);
      if (x.dtype !== 'float32') {
        throw new Error(`tfjs-certify companion: resizing takes float32 images, got ${x.dtype}`);
      }
      return fn(x, size);
    }

    function toChannelsLast(x, dataFormat) {
      if (x.rank !== 4) throw new Error(`tfjs-certify companion: expected a batch of images (rank 4), got rank ${x.rank}`);
      return dataFormat === 'channelsFirst' ? tf.transpose(x, [0, 2, 3, 1]) : x;
    }

    function fromChannelsLast(x, dataFormat) {
      return dataFormat === 'channelsFirst' ? tf.transpose(x, [0, 3, 1, 2]) : x;
    }

    // int32(float32(a) / b), as Keras computes crop and pad sizes (float32 arithmetic, truncation).
    const ratio = (a, b) => Math.trunc(Math.fround(Math.fround(a) / Math.fround(b)));

    // keras/src/backend/tensorflow/image.py resize (tf_keras's smart_resize crops alike).
    function cropToAspect(x, targetH, targetW) {
      const [, h, w] = x.shape;
      const cropH = Math.max(Math.min(h, ratio(w * targetH, targetW)), 1);
      const cropW = Math.max(Math.min(w, ratio(h * targetW, targetH)), 1);
      const top = ratio(h - cropH, 2);
      const left = ratio(w - cropW, 2);
      return tf.slice(x, [0, top, left, 0], [-1, cropH, cropW, -1]);
    }

    function padToAspect(x, targetH, targetW, fillValue) {
      const [b, h, w, c] = x.shape;
      const top = ratio(Math.max(h, ratio(w * targetH, targetW)) - h, 2);
      const left = ratio(Math.max(w, ratio(h * targetW, targetH)) - w, 2);
      let y = x;
      if (top > 0) {
        const band = tf.fill([b, top, w, c], fillValue);
        y = tf.concat([band, y, band], 1);
      }
      if (left > 0) {
        const band = tf.fill([b, y.shape[1], left, c], fillValue);
        y = tf.concat([band, y, band], 2);
      }
      return y;
    }

    const RESIZING_KEYS = [
      'height', 'width', 'interpolation', 'cropToAspectRatio', 'padToAspectRatio', 'fillValue', 'dataFormat',
    ];

    class TfjsCertifyResizing extends tf.layers.Layer {
      constructor(args) {
        super(args);
        this.args = plain(args, RESIZING_KEYS);
        this.height = args.height;
        this.width = args.width;
        this.interpolation = args.interpolation || 'bilinear';
        this.cropToAspectRatio = !!args.cropToAspectRatio;
        this.padToAspectRatio = !!args.padToAspectRatio;
        this.fillValue = args.fillValue == null ? 0 : args.fillValue;
        this.dataFormat = args.dataFormat || 'channelsLast';
        if (!INTERPOLATIONS[this.interpolation]) {
          throw new Error(`TfjsCertifyResizing: no ${JSON.stringify(this.interpolation)} interpolation`);
        }
        if (this.cropToAspectRatio && this.padToAspectRatio) {
          throw new Error('TfjsCertifyResizing: crop_to_aspect_ratio and pad_to_aspect_ratio exclude each other');
        }
      }

      computeOutputShape(inputShape) {
        const s = oneShape(inputShape);
        return this.dataFormat === 'channelsFirst' ? [s[0], s[1], this.height, this.width] :
                                                     [s[0], this.height, this.width, s[3]];
      }

      call(inputs) {
        return tf.tidy(() => {
          let x = toChannelsLast(one(inputs), this.dataFormat);
          if (this.cropToAspectRatio) x = cropToAspect(x, this.height, this.width);
          if (this.padToAspectRatio) x = padToAspect(x, this.height, this.width, this.fillValue);
          return fromChannelsLast(resize(x, [this.height, this.width], this.interpolation), this.dataFormat);
        });
      }

      getConfig() {
        return Object.assign({}, super.getConfig(), this.args);
      }
    }
    TfjsCertifyResizing.className = 'TfjsCertifyResizing';

    class TfjsCertifyUpSampling2D extends tf.layers.Layer {
      constructor(args) {
        super(args);
        this.args = plain(args, ['size', 'interpolation', 'dataFormat']);
        this.size = Array.isArray(args.size) ? args.size : [args.size, args.size];
        this.interpolation = args.interpolation;
        this.dataFormat = args.dataFormat || 'channelsLast';
        if (!INTERPOLATIONS[this.interpolation]) {
          throw new Error(`TfjsCertifyUpSampling2D: no ${JSON.stringify(this.interpolation)} interpolation`);
        }
      }

      computeOutputShape(inputShape) {
        const s = oneShape(inputShape).slice();
        const [hAxis, wAxis] = this.dataFormat === 'channelsFirst' ? [2, 3] : [1, 2];
        s[hAxis] = s[hAxis] == null ? null : s[hAxis] * this.size[0];
        s[wAxis] = s[wAxis] == null ? null : s[wAxis] * this.size[1];
        return s;
      }

      call(inputs) {
        return tf.tidy(() => {
          const x = toChannelsLast(one(inputs), this.dataFormat);
          const size = [x.shape[1] * this.size[0], x.shape[2] * this.size[1]];
          return fromChannelsLast(resize(x, size, this.interpolation), this.dataFormat);
        });
      }

      getConfig() {
        return Object.assign({}, super.getConfig(), this.args);
      }
    }
    TfjsCertifyUpSampling2D.className = 'TfjsCertifyUpSampling2D';

    // ---- Discretization ---------------------------------------------------------------------------------------
    // Keras buckets with tf.raw_ops.Bucketize: the index of x is the number of (float32) boundaries <= x, and a
    // NaN falls past the last boundary. No TF.js activation is such a step function.
    class TfjsCertifyDiscretization extends tf.layers.Layer {
      constructor(args) {
        super(args);
        this.args = plain(args, ['binBoundaries', 'outputMode']);
        this.binBoundaries = args.binBoundaries;
        if (!Array.isArray(this.binBoundaries) || !this.binBoundaries.every(b => typeof b === 'number')) {
          throw new Error('TfjsCertifyDiscretization needs bin_boundaries, a list of numbers');
        }
        if ((args.outputMode || 'int') !== 'int') {
          throw new Error(`TfjsCertifyDiscretization computes output_mode='int' only, not ${args.outputMode}`);
        }
      }

      computeOutputShape(inputShape) {
        return oneShape(inputShape);
      }

      call(inputs) {
        return tf.tidy(() => {
          const x = tf.cast(one(inputs), 'float32');
          const n = this.binBoundaries.length;
          if (n === 0) return tf.zerosLike(x).toInt();
          const bounds = tf.tensor1d(this.binBoundaries, 'float32');
          const below = tf.sum(tf.cast(tf.greaterEqual(tf.expandDims(x, -1), bounds), 'int32'), -1);
          return tf.where(tf.isNaN(x), tf.fill(x.shape, n, 'int32'), below);
        });
      }

      getConfig() {
        return Object.assign({}, super.getConfig(), this.args);
      }
    }
    TfjsCertifyDiscretization.className = 'TfjsCertifyDiscretization';

    return [TfjsCertifyGRU, TfjsCertifyGRUCell, TfjsCertifyResizing, TfjsCertifyUpSampling2D, TfjsCertifyDiscretization];
  }

  const api = {install, VERSION, CLASS_NAMES: CLASS_NAMES.slice()};
  root.tfjsCertifyCompanion = api;
  if (root.tf && root.tf.layers) install(root.tf);
  if (typeof module === 'object' && module && module.exports) module.exports = api;
})(typeof globalThis !== 'undefined' ? globalThis : self);
