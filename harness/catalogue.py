"""The reference suite, declared as data: `CASES`.

Tier `layer` crosses every layer class TF.js 4.22 registers with the options users set; `graph` covers
topologies (multi-io, shared layers, nested models, masking, encoder-decoder); `app` builds
`keras.applications` architectures with random weights; `reject` lists models the converter must refuse.
Case names are pytest ids: the class, then the options that differ from the defaults, e.g.
`Conv2D[padding=same,strides=2]`. `CASES` is validated on import.
"""
from __future__ import annotations

import re

from harness import builders as b
from harness.builders import Chain, Spec
from harness.case import FLAVOURS, Case, Expect, InputSpec, Omission, Tolerance

K3 = "keras3"
TFK = "tf_keras"
CF = "channels_first"
NAME_RE = re.compile(r"^[A-Za-z0-9_.\-\[\]=,()]+$")

# Arguments a class needs that are not options under test; they stay out of case names.
REQUIRED = {
    "Dense": {"units": 3},
    "Conv1D": {"filters": 4, "kernel_size": 3},
    "Conv2D": {"filters": 4, "kernel_size": 3},
    "Conv3D": {"filters": 3, "kernel_size": 2},
    "Conv2DTranspose": {"filters": 3, "kernel_size": 3},
    "Conv3DTranspose": {"filters": 2, "kernel_size": 2},
    "SeparableConv2D": {"filters": 4, "kernel_size": 3},
    "DepthwiseConv2D": {"kernel_size": 3},
    "ConvLSTM2D": {"filters": 3, "kernel_size": 3},
    "SimpleRNN": {"units": 4},
    "GRU": {"units": 4, "reset_after": False},  # TF.js rejects the Keras default reset_after=True
    "LSTM": {"units": 4},
    "Embedding": {"input_dim": 10, "output_dim": 4},
    "RepeatVector": {"n": 3},
    "Rescaling": {"scale": 0.5},
    "CenterCrop": {"height": 4, "width": 6},
    "Resizing": {"height": 4, "width": 4},
    "CategoryEncoding": {"num_tokens": 6},
    "Dropout": {"rate": 0.5},
    "SpatialDropout1D": {"rate": 0.5},
    "GaussianNoise": {"stddev": 0.5},
    "GaussianDropout": {"rate": 0.5},
    "AlphaDropout": {"rate": 0.5},
    "Masking": {"mask_value": 0.0},
    "Reshape": {"target_shape": (4, 6)},
    "Permute": {"dims": (2, 1)},
    "RandomWidth": {"factor": (0.5, 0.6)},
    "AveragePooling1D": {"pool_size": 2},  # Keras 3 has no default pool_size for average pooling
    "AveragePooling2D": {"pool_size": 2},
    "AveragePooling3D": {"pool_size": 2},
    "Conv1DTranspose": {"filters": 2, "kernel_size": 3},
    "SeparableConv1D": {"filters": 2, "kernel_size": 3},
    "EinsumDense": {"equation": "ab,bc->ac", "output_shape": 3},
    "GroupNormalization": {"groups": 2},
    "Normalization": {"mean": 0.5, "variance": 2.0},
}

TFJS_SRC = "tfjs-layers v4.22.0 src/"


def fmt(value) -> str:
    """An option value as it reads in a case name: no spaces, tuples as (a,b), layers as their class."""
    if isinstance(value, (tuple, list)):
        return "(" + ",".join(fmt(v) for v in value) + ")"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def case_name(cls: str, options: dict, label: str | None = None) -> str:
    """`Conv2D[padding=same,strides=2]`; a `label` replaces the option list (`Activation[gelu]`)."""
    if label:
        return f"{cls}[{label}]"
    if not options:
        return cls
    return f"{cls}[{','.join(f'{k}={fmt(v)}' for k, v in options.items())}]"


def plain(value):
    """Options as plain data for reports: Specs become their class name."""
    if isinstance(value, Spec):
        return {"class_name": value.cls, **{k: plain(v) for k, v in value.kwargs.items()}}
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def classes_of(specs) -> tuple[str, ...]:
    """Every layer class a chain makes, wrapped layers and cells included, in order, once."""
    out: list[str] = []

    def visit(spec):
        if spec.cls not in out:
            out.append(spec.cls)
        for v in spec.kwargs.values():
            if isinstance(v, list) and "StackedRNNCells" not in out:
                out.append("StackedRNNCells")  # Keras stacks a list of cells
            for item in (v if isinstance(v, list) else [v]):
                if isinstance(item, Spec):
                    visit(item)

    for s in specs:
        visit(s)
    return tuple(out)


def only(flavour: str, reason: str) -> dict:
    """Certify from `flavour` alone; the other flavour is kept out for `reason`, which the report lists."""
    return {"flavours": (flavour,), "omitted": tuple(Omission(f, reason) for f in FLAVOURS if f != flavour)}


def layer(cls: str, options: dict | None = None, shape=(6,), *, label=None, before=(), after=(),
          dtype="float32", inputs=None, flavours=FLAVOURS, omitted=(), expect=Expect(), tolerance=None,
          tier="layer") -> Case:
    """A case around one layer `cls` with `options` on inputs `shape` (a tuple of shapes for merges).

    `before` / `after` are Specs around it (e.g. an RNN after Masking so the mask matters).
    """
    options = dict(options or {})
    shapes = shape if isinstance(shape[0], tuple) else (shape,)
    spec = Spec(cls, {**REQUIRED.get(cls, {}), **options})
    specs = (*before, spec, *after)
    return Case(name=case_name(cls, options, label), tier=tier, build=Chain(shapes, specs, dtype),
                layer_classes=classes_of(specs), options=plain(options), inputs=inputs, flavours=flavours,
                omitted=omitted, expect=expect, tolerance=tolerance)


def activation(name: str, *, label=None, **kw) -> Case:
    return layer("Activation", {"activation": name}, (3, 5), label=label or name, **kw)


# Keras 3.15 itself adds the bias of a channels_first convolution (Conv2D, Conv3D, SeparableConv2D,
# DepthwiseConv2D, Conv2DTranspose, Conv1D) on the wrong axis when the output's last spatial size equals
# the number of output channels (measured against the channels_last twin with the same weights: max_abs
# 0.8-1.9, eagerly and in predict alike; tf_keras is right, and the kernel path does not matter). A reference
# whose Keras output is wrong certifies nothing, so channels_first cases use inputs whose output width
# differs from the channel count (tests/test_catalogue.py checks Keras 3 against tf_keras on each of them).
WASM_CONV3D_TRANSPOSE = Expect(outcome="xfail", fails_with="mismatch", backends=("wasm",),
                               reason="measured: TF.js 4.22 wasm Conv3DTranspose differs from Keras "
                                      "(max_abs ~2.8); cpu and webgl agree")


def xfail(fails_with: str, reason: str) -> Expect:
    return Expect(outcome="xfail", fails_with=fails_with, reason=reason)


def reject(code: str, reason: str) -> Expect:
    return Expect(outcome="reject", code=code, reason=reason)


IMG = (6, 6, 3)       # channels_last image
IMG_CF = (3, 6, 6)    # channels_first image (output width != channels: see the note above)
IMG_CF_CONV = (3, 6, 7)  # for 4-filter 3x3 convolutions: a 6x6 input would give a 4-wide output
SEQ = (6, 3)          # (timesteps, features)
VOL = (4, 4, 4, 2)    # 3D volume, channels_last
VOL_CF = (2, 4, 4, 5)  # a 3-filter 2x2x2 Conv3D gives width 4, not 3


def tokens(length: int, high: int = 10) -> tuple[InputSpec, ...]:
    return (InputSpec((length,), kind="int", low=0, high=high),)


# --- tier 1: one layer per case ---------------------------------------------------------------------------
LAYER_CASES = [
    # core
    layer("Dense", {}, (5,)),
    layer("Dense", {"activation": "relu"}, (5,)),
    layer("Dense", {"use_bias": False}, (5,)),
    layer("Dense", {}, (4, 5), label="rank3_input"),
    layer("Dense", {"kernel_initializer": "lecun_normal"}, (5,)),
    layer("Dense", {"kernel_regularizer": "l2"}, (5,)),
    layer("Dense", {"kernel_regularizer": "l1l2", "kernel_constraint": "max_norm"}, (5,)),
    layer("Flatten", {}, (4, 4, 3)),
    layer("Flatten", {"data_format": CF}, (3, 4, 4)),
    layer("Reshape", {}, (24,)),
    layer("Reshape", {"target_shape": (2, -1)}, (4, 3)),
    layer("Permute", {}, (4, 3)),
    layer("Permute", {"dims": (3, 1, 2)}, (2, 3, 4)),
    layer("RepeatVector", {}, (5,)),
    layer("Embedding", {}, (5,), dtype="int32", inputs=tokens(5)),
    # dropout and noise: identity at inference
    layer("Dropout", {}, (5,)),
    layer("SpatialDropout1D", {}, SEQ),
    layer("GaussianNoise", {}, (5,)),
    layer("GaussianDropout", {}, (5,)),
    layer("AlphaDropout", {}, (5,)),
    # convolution
    layer("Conv1D", {}, (8, 3)),
    layer("Conv1D", {"padding": "same"}, (8, 3)),
    layer("Conv1D", {"strides": 2}, (8, 3)),
    layer("Conv1D", {"dilation_rate": 2, "padding": "same"}, (8, 3)),
    layer("Conv1D", {"use_bias": False, "activation": "relu"}, (8, 3)),
    layer("Conv2D", {}, IMG),
    layer("Conv2D", {"padding": "same"}, IMG),
    layer("Conv2D", {"strides": 2}, (7, 7, 3)),
    layer("Conv2D", {"padding": "same", "strides": 2}, (7, 7, 3)),
    layer("Conv2D", {"strides": (1, 2), "kernel_size": (3, 2)}, IMG),
    layer("Conv2D", {"dilation_rate": 2}, (8, 8, 2)),
    layer("Conv2D", {"use_bias": False}, IMG),
    layer("Conv2D", {"data_format": CF}, IMG_CF_CONV),
    layer("Conv3D", {}, VOL),
    layer("Conv3D", {"padding": "same", "strides": 2}, VOL),
    layer("Conv3D", {"data_format": CF}, VOL_CF),
    layer("Conv2DTranspose", {}, (4, 4, 2)),
    layer("Conv2DTranspose", {"strides": 2}, (4, 4, 2)),
    layer("Conv2DTranspose", {"padding": "same", "strides": 2}, (4, 4, 2)),
    layer("Conv2DTranspose", {"use_bias": False, "activation": "relu"}, (4, 4, 2)),
    layer("Conv2DTranspose", {"data_format": CF}, (2, 4, 4)),
    layer("Conv3DTranspose", {}, (3, 3, 3, 2), expect=WASM_CONV3D_TRANSPOSE),
    layer("Conv3DTranspose", {"padding": "same", "strides": 2}, (3, 3, 3, 2), expect=WASM_CONV3D_TRANSPOSE),
    layer("SeparableConv2D", {}, IMG),
    layer("SeparableConv2D", {"padding": "same", "depth_multiplier": 2}, IMG),
    layer("SeparableConv2D", {"strides": 2}, (7, 7, 3)),
    layer("SeparableConv2D", {"dilation_rate": 2, "use_bias": False}, (8, 8, 2)),
    layer("DepthwiseConv2D", {}, IMG),
    layer("DepthwiseConv2D", {"depth_multiplier": 2}, IMG),
    layer("DepthwiseConv2D", {"padding": "same", "strides": 2}, (7, 7, 3)),
    layer("DepthwiseConv2D", {"use_bias": False, "activation": "relu6"}, IMG,
          **only(K3, "tf_keras has no relu6 activation string")),
    layer("DepthwiseConv2D", {"data_format": CF}, IMG_CF),
    layer("SeparableConv2D", {"data_format": CF}, IMG_CF_CONV, expect=xfail("mismatch",
        f"{TFJS_SRC}layers/convolutional.ts SeparableConv.call adds the bias with dataFormat channelsFirst to "
        "the NHWC result, before transposing back: the bias lands on the height axis")),
    # pooling
    layer("MaxPooling1D", {}, (8, 3)),
    layer("MaxPooling1D", {"pool_size": 3, "strides": 1, "padding": "same"}, (8, 3)),
    layer("MaxPooling2D", {}, IMG),
    layer("MaxPooling2D", {"pool_size": 3, "strides": 2, "padding": "same"}, (7, 7, 3)),
    layer("MaxPooling2D", {"data_format": CF}, IMG_CF),
    layer("MaxPooling3D", {}, VOL),
    layer("MaxPooling3D", {"padding": "same", "pool_size": 3, "strides": 2}, VOL),
    layer("AveragePooling1D", {}, (8, 3)),
    layer("AveragePooling1D", {"pool_size": 3, "strides": 1, "padding": "same"}, (8, 3)),
    layer("AveragePooling2D", {}, IMG),
    layer("AveragePooling2D", {"pool_size": 3, "strides": 1, "padding": "same"}, IMG),
    layer("AveragePooling2D", {"data_format": CF}, IMG_CF),
    layer("AveragePooling3D", {}, VOL),
    layer("AveragePooling3D", {"padding": "same", "pool_size": 3, "strides": 2}, VOL),
    layer("GlobalAveragePooling1D", {}, SEQ),
    layer("GlobalMaxPooling1D", {}, SEQ),
    layer("GlobalAveragePooling2D", {}, IMG),
    layer("GlobalAveragePooling2D", {"data_format": CF}, IMG_CF),
    layer("GlobalMaxPooling2D", {}, IMG),
    layer("GlobalMaxPooling2D", {"data_format": CF}, IMG_CF),
    # reshaping images
    layer("Cropping2D", {"cropping": 1}, IMG),
    layer("Cropping2D", {"cropping": ((1, 2), (0, 1))}, IMG),
    layer("Cropping2D", {"cropping": 1, "data_format": CF}, IMG_CF),
    layer("ZeroPadding2D", {}, (4, 4, 2)),
    layer("ZeroPadding2D", {"padding": ((1, 2), (0, 1))}, (4, 4, 2)),
    layer("ZeroPadding2D", {"data_format": CF}, (2, 4, 4)),
    layer("UpSampling2D", {}, (3, 3, 2)),
    layer("UpSampling2D", {"size": (2, 3)}, (3, 3, 2)),
    layer("UpSampling2D", {"data_format": CF}, (2, 3, 3)),
    # activations
    *[activation(a) for a in ("elu", "selu", "relu", "linear", "sigmoid", "softplus", "softsign", "tanh",
                              "softmax", "gelu", "mish", "swish")],
    activation("relu6", **only(K3, "tf_keras has no relu6 activation string")),
    activation("log_softmax", **only(K3, "tf_keras has no log_softmax activation string")),
    activation("silu", **only(K3, "tf_keras has no silu activation string (Keras 3's name for swish)")),
    activation("hard_sigmoid", **only(TFK, "Keras 3's hard_sigmoid is another function: see the reject tier")),
    layer("ReLU", {}, (3, 5)),
    layer("ReLU", {"max_value": 6.0}, (3, 5)),
    layer("ReLU", {"max_value": 1.0}, (3, 5)),
    layer("LeakyReLU", {}, (3, 5)),
    layer("LeakyReLU", {"negative_slope": 0.1}, (3, 5), **only(K3, "tf_keras names the slope alpha")),
    layer("LeakyReLU", {"alpha": 0.1}, (3, 5), **only(TFK, "Keras 3 names the slope negative_slope")),
    layer("PReLU", {}, (3, 5)),
    layer("PReLU", {"shared_axes": (1, 2)}, IMG),
    layer("ELU", {}, (3, 5)),
    layer("ThresholdedReLU", {}, (3, 5), **only(TFK, "Keras 3 removed ThresholdedReLU")),
    layer("ThresholdedReLU", {"theta": 0.5}, (3, 5), **only(TFK, "Keras 3 removed ThresholdedReLU")),
    layer("Softmax", {}, (3, 5)),
    # normalization
    layer("BatchNormalization", {}, IMG),
    layer("BatchNormalization", {}, (5,), label="rank2_input"),
    layer("BatchNormalization", {"axis": 1}, IMG_CF, expect=Expect(
        outcome="xfail", fails_with="mismatch", backends=("cpu", "wasm"),
        reason="measured: TF.js 4.22 cpu and wasm BatchNormalization over axis 1 of a rank-4 input differs "
               "from Keras (max_abs ~1.9); webgl agrees")),
    layer("BatchNormalization", {"center": False, "scale": False}, IMG),
    layer("BatchNormalization", {"epsilon": 0.1, "momentum": 0.9}, SEQ),
    layer("LayerNormalization", {}, SEQ),
    layer("LayerNormalization", {"axis": (1, 2)}, SEQ, **only(
        K3, "tf_keras 2.21 fails at predict when normalizing over several axes (scale must be 1D tensor)")),
    layer("LayerNormalization", {"center": False, "epsilon": 0.01}, SEQ),
    # recurrent
    layer("SimpleRNN", {}, SEQ),
    layer("SimpleRNN", {"return_sequences": True}, SEQ),
    layer("SimpleRNN", {"go_backwards": True, "activation": "relu"}, SEQ),
    layer("SimpleRNN", {"return_state": True}, SEQ),
    layer("GRU", {}, SEQ),
    layer("GRU", {"return_sequences": True}, SEQ),
    layer("GRU", {"return_state": True}, SEQ),
    layer("GRU", {"go_backwards": True}, SEQ),
    layer("GRU", {"return_sequences": True, "return_state": True, "recurrent_activation": "hard_sigmoid"},
          SEQ, **only(TFK, "Keras 3's hard_sigmoid is another function: see the reject tier")),
    layer("LSTM", {}, SEQ),
    layer("LSTM", {"return_sequences": True}, SEQ),
    layer("LSTM", {"return_state": True}, SEQ),
    layer("LSTM", {"go_backwards": True}, SEQ),
    layer("LSTM", {"return_sequences": True, "go_backwards": True}, SEQ),
    layer("LSTM", {"unit_forget_bias": False, "activation": "relu"}, SEQ),
    layer("LSTM", {"use_bias": False}, SEQ),
    layer("RNN", {"cell": Spec("SimpleRNNCell", {"units": 3})}, SEQ, label="cell=SimpleRNNCell"),
    layer("RNN", {"cell": Spec("LSTMCell", {"units": 3}), "return_sequences": True}, SEQ,
          label="cell=LSTMCell,return_sequences=True"),
    layer("RNN", {"cell": [Spec("GRUCell", {"units": 3, "reset_after": False}),
                           Spec("LSTMCell", {"units": 2})]}, SEQ, label="cell=StackedRNNCells"),
    layer("ConvLSTM2D", {}, (3, 5, 5, 2)),
    layer("ConvLSTM2D", {"return_sequences": True, "padding": "same"}, (3, 5, 5, 2)),
    # masking: ReLU zeroes about half the (1-feature) timesteps, which Masking then masks
    layer("Masking", {}, (7, 1), label="into=LSTM", before=(Spec("ReLU"),), after=(Spec("LSTM", {"units": 3}),)),
    layer("Masking", {}, (7, 1), label="into=GRU", before=(Spec("ReLU"),),
          after=(Spec("GRU", {"units": 3, "reset_after": False}),)),
    layer("Masking", {}, (7, 1), label="into=SimpleRNN,return_sequences", before=(Spec("ReLU"),),
          after=(Spec("SimpleRNN", {"units": 3, "return_sequences": True}),)),
    layer("Masking", {}, (7, 1), label="into=GlobalAveragePooling1D", before=(Spec("ReLU"),),
          after=(Spec("GlobalAveragePooling1D"),), expect=xfail("mismatch",
              f"{TFJS_SRC}layers/pooling.ts GlobalAveragePooling1D has no supportsMasking, so engine/topology.ts "
              "Layer.computeMask throws on a mask; Keras takes the masked mean")),
    # wrappers
    *[layer("Bidirectional", {"layer": Spec("LSTM", {"units": 3}), "merge_mode": m}, SEQ,
            label=f"LSTM,merge_mode={m}") for m in ("concat", "sum", "mul", "ave", None)],
    layer("Bidirectional", {"layer": Spec("GRU", {"units": 3, "reset_after": False, "return_sequences": True})},
          SEQ, label="GRU,return_sequences=True"),
    layer("Bidirectional", {"layer": Spec("SimpleRNN", {"units": 3})}, SEQ, label="SimpleRNN"),
    layer("TimeDistributed", {"layer": Spec("Dense", {"units": 2})}, SEQ, label="Dense"),
    layer("TimeDistributed", {"layer": Spec("Conv2D", {"filters": 2, "kernel_size": 2})}, (3, 4, 4, 2),
          label="Conv2D"),
    # merge
    layer("Add", {}, ((4,), (4,))),
    layer("Add", {}, ((4,), (4,), (4,)), label="three_inputs"),
    layer("Multiply", {}, ((3, 4), (3, 4))),
    layer("Average", {}, ((4,), (4,))),
    layer("Maximum", {}, ((4,), (4,))),
    layer("Minimum", {}, ((4,), (4,))),
    layer("Concatenate", {}, ((3, 4), (3, 2))),
    layer("Concatenate", {"axis": 1}, ((3, 4), (2, 4))),
    layer("Dot", {"axes": 1}, ((4,), (4,))),
    layer("Dot", {"axes": (2, 2)}, ((3, 4), (5, 4))),
    layer("Dot", {"axes": 1, "normalize": True}, ((4,), (4,))),
    # preprocessing
    layer("Rescaling", {}, IMG),
    layer("Rescaling", {"scale": 1 / 127.5, "offset": -1.0}, IMG),
    layer("CenterCrop", {}, (8, 8, 3), expect=xfail("load_error",
        f"{TFJS_SRC}layers/preprocessing/center_crop.ts computeOutputShape writes height/width into the shape "
        "it is given, so a CenterCrop right after the Input rewrites the model's input shape")),
    *[layer("CategoryEncoding", {"output_mode": mode}, (n,), dtype="int32", inputs=tokens(n, 6), expect=xfail("load_error",
        f"{TFJS_SRC}layers/preprocessing/category_encoding.ts computeOutputShape writes num_tokens into the "
        "shape it is given, so a CategoryEncoding right after the Input rewrites the model's input shape"))
      for mode, n in (("one_hot", 1), ("multi_hot", 4), ("count", 4))],
    # Behind a Reshape (which makes a new shape; Rescaling passes its own on) the shape TF.js overwrites is no
    # longer the model input's.
    layer("CategoryEncoding", {"output_mode": "multi_hot"}, (4,), label="output_mode=multi_hot,after=Reshape",
          before=(Spec("Reshape", {"target_shape": (4,)}),), dtype="int32", inputs=tokens(4, 6)),
    layer("CenterCrop", {}, (8, 8, 3), label="after=Reshape", before=(Spec("Reshape", {"target_shape": (8, 8, 3)}),)),
]

# --- tier 2: graphs ---------------------------------------------------------------------------------------


def graph(build, layer_classes, inputs=None, flavours=FLAVOURS, omitted=(), expect=Expect(), name=None,
          tier="graph") -> Case:
    return Case(name=name or build.__name__, tier=tier, build=build, layer_classes=tuple(layer_classes),
                inputs=inputs, flavours=flavours, omitted=omitted, expect=expect)


GRAPH_CASES = [
    graph(b.multi_io, ["Conv2D", "GlobalAveragePooling2D", "Dense", "Concatenate"]),
    graph(b.shared_layer, ["Dense", "Average"]),
    graph(b.shared_layer_chain, ["Dense"]),
    graph(b.nested_sequential, ["Sequential", "Dense"]),
    graph(b.nested_functional, ["Functional", "Dense", "Add"]),
    graph(b.nested_two_levels, ["Sequential", "Functional", "Dense"]),
    graph(b.residual_block, ["Conv2D", "BatchNormalization", "Activation", "Add", "ReLU",
                             "GlobalAveragePooling2D", "Dense"]),
    graph(b.inception_block, ["Conv2D", "MaxPooling2D", "Concatenate", "GlobalMaxPooling2D"]),
    graph(b.squeeze_excite, ["GlobalAveragePooling2D", "Dense", "Reshape", "Multiply"]),
    graph(b.output_is_input_branch, ["Dense"]),
    graph(b.embedding_mask("LSTM"), ["Embedding", "LSTM", "Dense"], inputs=tokens(7, 12)),
    graph(b.embedding_mask("GRU"), ["Embedding", "GRU", "Dense"], inputs=tokens(7, 12)),
    graph(b.embedding_mask("SimpleRNN"), ["Embedding", "SimpleRNN", "Dense"], inputs=tokens(7, 12)),
    graph(b.embedding_mask_bidirectional, ["Embedding", "Bidirectional", "LSTM"], inputs=tokens(6),
          **only(TFK, "Keras 3 zero-fills masked steps here: an expected refusal in the reject tier")),
    graph(b.encoder_decoder, ["LSTM", "TimeDistributed", "Dense"]),
    graph(b.encoder_decoder_gru, ["GRU"]),
    graph(b.stacked_rnn, ["LSTM", "GRU", "SimpleRNN"]),
    graph(b.stacked_bidirectional, ["Bidirectional", "LSTM", "Dense"]),
    graph(b.conv_autoencoder, ["Conv2D", "MaxPooling2D", "Conv2DTranspose", "UpSampling2D"]),
    graph(b.sequential_with_input, ["Sequential", "Conv2D", "MaxPooling2D", "Flatten", "Dropout", "Dense"]),
    graph(b.sequential_built, ["Sequential", "Dense", "BatchNormalization"]),
    graph(b.sequential_input_shape, ["Sequential", "Dense"]),
]

# --- tier 3: keras.applications ---------------------------------------------------------------------------
DEEP = Tolerance(atol=1e-3, rtol=1e-3, reason="dozens of conv/BN layers accumulate float32 rounding "
                                              "differences between TensorFlow and TF.js kernels")


def app(cls: str, layer_classes: str, input_shape=(32, 32, 3), tolerance=DEEP) -> Case:
    """`keras.applications.<cls>` at the smallest input it accepts; `layer_classes` as built (both flavours)."""
    return Case(name=f"{cls}[{'x'.join(map(str, input_shape))}]", tier="app", build=b.App(cls, input_shape),
                layer_classes=tuple(layer_classes.split()), options={"input_shape": input_shape, "classes": 10},
                tolerance=tolerance, slow=True)


CONV_BN = "Conv2D BatchNormalization Activation"
APP_CASES = [
    # MobileNet pools with GlobalAveragePooling2D(keepdims=True), which TF.js 4.22 ignores (its output
    # would lose two dimensions): the converter must refuse it, before any browser.
    Case(name="MobileNet[32x32x3]", tier="reject", build=b.App("MobileNet", (32, 32, 3)),
         layer_classes=("GlobalAveragePooling2D",), options={"input_shape": (32, 32, 3), "classes": 10},
         expect=reject("ignored_argument", "GlobalAveragePooling2D(keepdims=True): TF.js ignores keepdims"),
         slow=True),
    app("MobileNetV2", "Conv2D BatchNormalization DepthwiseConv2D ReLU ZeroPadding2D Add GlobalAveragePooling2D "
                       "Dense"),
    app("ResNet50", f"{CONV_BN} ZeroPadding2D MaxPooling2D Add GlobalAveragePooling2D Dense"),
    app("DenseNet121", f"{CONV_BN} ZeroPadding2D MaxPooling2D AveragePooling2D Concatenate "
                       "GlobalAveragePooling2D Dense"),
    app("VGG16", "Conv2D MaxPooling2D Flatten Dense", tolerance=None),
    app("NASNetMobile", f"{CONV_BN} SeparableConv2D ZeroPadding2D Cropping2D MaxPooling2D AveragePooling2D Add "
                        "Concatenate GlobalAveragePooling2D Dense"),
    app("InceptionV3", f"{CONV_BN} MaxPooling2D AveragePooling2D Concatenate GlobalAveragePooling2D Dense",
        (75, 75, 3)),
    app("Xception", f"{CONV_BN} SeparableConv2D MaxPooling2D Add GlobalAveragePooling2D Dense", (71, 71, 3)),
]

# --- rejects ----------------------------------------------------------------------------------------------


def refused(cls: str, options: dict | None, shape, code: str, reason: str, **kw) -> Case:
    return layer(cls, options, shape, tier="reject", expect=reject(code, reason), **kw)


def refused_graph(build, layer_classes, code: str, reason: str) -> Case:
    return Case(name=build.__name__, tier="reject", build=build, layer_classes=tuple(layer_classes),
                expect=reject(code, reason))


UNKNOWN = "TF.js 4.22 registers no such layer class"
REJECT_CASES = [
    refused_graph(b.lambda_layer, ["Lambda"], "needs_python_code", "a Lambda holds Python bytecode"),
    refused_graph(b.custom_layer, ["Dense", "Scale"], "needs_python_code",
                  "a registered custom layer runs Python code TF.js does not have"),
    refused_graph(b.tensor_op, ["Dense", "TFOpLambda"], "needs_python_code",
                  "`x * 2.0` becomes a TFOpLambda (tf_keras) or a Keras 3 op node serialized as class_name "
                  "'Multiply' from module keras.src.ops.numpy (not the Multiply layer); neither is a TF.js layer"),
    refused_graph(b.attention, ["Attention"], "unknown_layer", UNKNOWN),
    refused_graph(b.mha, ["MultiHeadAttention"], "unknown_layer",
                  "TF.js 4.22 does not export MultiHeadAttention (layers/nlp)"),
    refused("Subtract", {}, ((4,), (4,)), "unknown_layer", UNKNOWN),
    refused("Normalization", {}, (4,), "unknown_layer", UNKNOWN),
    refused("GroupNormalization", {}, (4, 4), "unknown_layer", UNKNOWN),
    refused("UnitNormalization", {}, (4,), "unknown_layer", UNKNOWN),
    refused("EinsumDense", {}, (4,), "unknown_layer", UNKNOWN),
    refused("Identity", {}, (4,), "unknown_layer", UNKNOWN),
    refused("ZeroPadding1D", {}, SEQ, "unknown_layer", UNKNOWN),
    refused("Cropping1D", {}, SEQ, "unknown_layer", UNKNOWN),
    refused("UpSampling1D", {}, SEQ, "unknown_layer", UNKNOWN),
    refused("ZeroPadding3D", {}, VOL, "unknown_layer", UNKNOWN),
    refused("Cropping3D", {}, VOL, "unknown_layer", UNKNOWN),
    refused("UpSampling3D", {}, VOL, "unknown_layer", UNKNOWN),
    refused("GlobalAveragePooling3D", {}, VOL, "unknown_layer", UNKNOWN),
    refused("GlobalMaxPooling3D", {}, VOL, "unknown_layer", UNKNOWN),
    refused("Conv1DTranspose", {}, SEQ, "unknown_layer", UNKNOWN),
    refused("SeparableConv1D", {}, SEQ, "unknown_layer", UNKNOWN),
    refused("GRU", {"reset_after": True}, SEQ, "unsupported_value",
            "TF.js GRUCell throws on reset_after=true (the Keras default)"),
    refused("Conv1D", {"padding": "causal"}, (8, 3), "unsupported_value", "TF.js does not implement causal padding"),
    refused("ELU", {"alpha": 0.5}, (3, 5), "unsupported_value", "TF.js ELU throws on alpha other than 1.0"),
    # TF.js's rank limits cannot be seen in a config (input ranks are not written per layer), so the
    # converter lets these through and TF.js refuses them when it runs: certified as known failures.
    layer("Dot", {"axes": -1}, ((2, 3, 4), (2, 3, 4)),
          expect=xfail("load_error", "tfjs-layers merge.ts: Dot supports inputs of rank <= 3 only (throws at predict)")),
    layer("BatchNormalization", {}, VOL, label="rank5_input",
          expect=xfail("load_error", "tfjs-layers normalization.ts: batchNormalization supports rank <= 4 only")),
    refused("Conv1D", {"data_format": CF}, (3, 8), "unsupported_value",
            "TF.js Conv1D with channels_first transposes the input but not the output back"),
    refused("Softmax", {"axis": 1}, (3, 5), "unsupported_value",
            "TF.js softmax throws for a non-last axis at predict time"),
    refused("ReLU", {"negative_slope": 0.1}, (3, 5), "ignored_argument", "TF.js ReLU ignores negative_slope"),
    refused("ReLU", {"threshold": 0.5}, (3, 5), "ignored_argument", "TF.js ReLU ignores threshold"),
    refused("GlobalAveragePooling2D", {"keepdims": True}, IMG, "ignored_argument",
            "TF.js global pooling ignores keepdims (the output rank would differ)"),
    refused("Conv2D", {"groups": 2}, (6, 6, 6), "ignored_argument",
            "TF.js Conv2D ignores groups"),
    refused("Activation", {"activation": "exponential"}, (3, 5), "unknown_activation",
            "TF.js has no exponential activation", label="exponential"),
    refused("Activation", {"activation": "leaky_relu"}, (3, 5), "unknown_activation",
            "TF.js has no leaky_relu activation function", label="leaky_relu",
            **only(K3, "tf_keras has no leaky_relu activation string")),
    refused("Activation", {"activation": "hard_silu"}, (3, 5), "unknown_activation",
            "TF.js has no hard_silu activation", label="hard_silu",
            **only(K3, "tf_keras has no hard_silu activation string")),
    refused("Activation", {"activation": "hard_sigmoid"}, (3, 5), "unknown_activation",
            f"Keras 3 hard_sigmoid is relu6(x+3)/6; {TFJS_SRC}backend/tfjs_backend.ts hardSigmoid is "
            "clip(0.2x+0.5, 0, 1)", label="hard_sigmoid,flavour=keras3",
            **only(K3, "tf_keras's hard_sigmoid is TF.js's: certified in the layer tier")),
    refused("UpSampling2D", {"interpolation": "bilinear"}, (3, 3, 2), "unsupported_value",
            f"{TFJS_SRC}layers/convolutional.ts UpSampling2D calls image.resizeBilinear without half-pixel "
            "centers; Keras resizes with tf.image.resize (half-pixel centers)"),
    refused("DepthwiseConv2D", {"dilation_rate": 2}, (8, 8, 2), "ignored_argument",
            f"{TFJS_SRC}layers/convolutional_depthwise.ts DepthwiseConv2D.call passes dilationRate null"),
    refused("Conv2DTranspose", {"dilation_rate": 2}, (4, 4, 2), "ignored_argument",
            "TF.js Conv2DTranspose.call never passes dilationRate to conv2dTranspose"),
    refused("Resizing", {}, (8, 8, 2), "unsupported_value",
            f"{TFJS_SRC}layers/preprocessing/image_resizing.ts passes alignCorners=!cropToAspectRatio to "
            "image.resizeBilinear and never crops; Keras resizes with half-pixel centers",
            label="interpolation=bilinear"),
    refused("Resizing", {"interpolation": "nearest"}, (8, 8, 2), "unsupported_value",
            f"{TFJS_SRC}layers/preprocessing/image_resizing.ts resizes nearest with alignCorners=true; "
            "Keras with half-pixel centers"),
    refused("RandomWidth", {}, IMG, "unsupported_value",
            f"{TFJS_SRC}layers/preprocessing/random_width.ts RandomWidth.call resizes whatever `training` is; "
            "Keras returns the input unchanged at inference", **only(TFK, "Keras 3 has no RandomWidth")),
    # Keras 3 Bidirectional forces zero_output_for_mask=True on a wrapped RNN returning sequences; TF.js
    # repeats the last output on masked steps instead.
    graph(b.embedding_mask_bidirectional, ["Embedding", "Bidirectional", "LSTM"], inputs=tokens(6),
          **only(K3, "tf_keras computes this as TF.js does: certified in the graph tier"),
          name="embedding_mask_bidirectional[flavour=keras3]", tier="reject", expect=reject(
              "ignored_argument", "Keras 3 zero-fills masked steps of a Bidirectional RNN's sequence output "
              "(zero_output_for_mask=True); TF.js repeats the last output")),
    Case(name="EfficientNetB0[32x32x3]", tier="reject", build=b.App("EfficientNetB0", (32, 32, 3)),
         layer_classes=("Normalization", "Rescaling"), expect=reject(
             "unknown_layer", "EfficientNet starts with a Normalization layer, which TF.js does not have"),
         slow=True),
]

CASES: tuple[Case, ...] = (*LAYER_CASES, *GRAPH_CASES, *APP_CASES, *REJECT_CASES)


def validate(cases) -> None:
    """Unique names that read as pytest ids; raises ValueError otherwise."""
    seen = set()
    for case in cases:
        if not NAME_RE.match(case.name):
            raise ValueError(f"case name {case.name!r} is not a readable id")
        if case.name in seen:
            raise ValueError(f"duplicate case name {case.name!r}")
        seen.add(case.name)


def by_name(name: str) -> Case:
    """The case called `name`."""
    for case in CASES:
        if case.name == name:
            return case
    raise KeyError(name)


validate(CASES)
