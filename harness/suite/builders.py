"""Model builders for the reference suite.

Every builder is a callable `build(k) -> model` taking the Keras module of a flavour (`keras` for Keras 3,
`tf_keras` for Keras 2); the two share the API used here. Builders are small frozen dataclasses (or plain
functions) so a case reads as data and its builder prints readably. The harness seeds Keras before calling
a builder; `nontrivial_weights` then replaces the weights Keras initialises to constants (biases, batch-norm
statistics, PReLU alphas) with seeded random values, so a check on them means something.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import numpy as np

WEIGHT_SEED = 1234


def snake(cls: str) -> str:
    """`Conv2DTranspose` -> `conv2d_transpose`: the layer name a builder gives an instance of `cls`."""
    s = re.sub(r"([a-z])([A-Z])", r"\1_\2", cls)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    return s.lower()


def nontrivial_weights(model, seed: int = WEIGHT_SEED):
    """Replace every constant float weight (zeros, ones) with seeded random values; returns `model`.

    Biases are always replaced (an LSTM bias is mostly zeros). Variances and scales (names with `variance`,
    `gamma`) stay positive so batch and layer norms remain well-conditioned. Other weights are left as the
    (seeded) initialisers made them.
    """
    rng = np.random.default_rng(seed)
    for v in model.weights:
        value = np.asarray(v.numpy())
        if value.dtype.kind != "f" or value.size == 0 or "seed" in v.name:
            continue
        constant = np.all(value == value.flat[0]) and (value.size > 1 or value.flat[0] in (0.0, 1.0))
        if not constant and "bias" not in v.name:
            continue
        if "variance" in v.name or "gamma" in v.name:
            new = rng.uniform(0.5, 1.5, value.shape)
        else:
            new = rng.uniform(-0.5, 0.5, value.shape)
        v.assign(new.astype(value.dtype))
    return model


@dataclasses.dataclass(frozen=True)
class Spec:
    """A layer to make: its class name and keyword arguments.

    An argument may itself be a Spec (the layer a wrapper wraps, an RNN cell) or a list of Specs.
    """

    cls: str
    kwargs: dict = dataclasses.field(default_factory=dict)

    def make(self, k, name: str):
        kwargs = {key: _make(value, k, f"{name}_{key}") for key, value in self.kwargs.items()}
        return getattr(k.layers, self.cls)(name=name, **kwargs)

    def __str__(self):
        return self.cls


def _make(value, k, name):
    if isinstance(value, Spec):
        return value.make(k, name)
    if isinstance(value, list) and value and all(isinstance(v, Spec) for v in value):
        return [v.make(k, f"{name}_{i}") for i, v in enumerate(value)]
    return value


@dataclasses.dataclass(frozen=True)
class Chain:
    """Inputs shaped `shapes` fed through `layers` in turn; with several inputs the first layer gets them all.

    The last layer's output (or list of outputs) is the model's output. Layers are named after their class
    (`conv2d`, `lstm`), numbered only when a class repeats, so divergence reports read well.
    """

    shapes: tuple[tuple[int, ...], ...]
    layers: tuple[Spec, ...]
    dtype: str = "float32"

    def __call__(self, k):
        inputs = [k.Input(shape=s, dtype=self.dtype, name=f"input_{i}") for i, s in enumerate(self.shapes)]
        x = inputs if len(inputs) > 1 else inputs[0]
        names = [snake(s.cls) for s in self.layers]
        for i, (spec, name) in enumerate(zip(self.layers, names)):
            x = spec.make(k, name if names.count(name) == 1 else f"{name}_{i}")(x)
        return nontrivial_weights(k.Model(inputs, x, name="model"))


@dataclasses.dataclass(frozen=True)
class Attend:
    """An attention layer on inputs shaped `shapes` (query, value, key; one shape: self-attention), called with
    the keyword arguments `call`: MultiHeadAttention takes its inputs as arguments, Attention and
    AdditiveAttention as one list. Several outputs (returned scores) become the model's outputs."""

    shapes: tuple[tuple[int, ...], ...]
    spec: Spec
    call: tuple[tuple[str, Any], ...] = ()

    def __call__(self, k):
        inputs = [k.Input(shape=s, name=n) for s, n in zip(self.shapes, ("query", "value", "key"))]
        tensors = inputs if len(inputs) > 1 else [inputs[0], inputs[0]]
        layer = self.spec.make(k, snake(self.spec.cls))
        if self.spec.cls == "MultiHeadAttention":
            out = layer(*tensors, **dict(self.call))
        else:
            out = layer(tensors, **dict(self.call))
        out = list(out) if isinstance(out, tuple) else out
        return nontrivial_weights(k.Model(inputs, out, name="model"))


@dataclasses.dataclass(frozen=True)
class App:
    """A `keras.applications` architecture, random weights (nothing is downloaded), logits out."""

    cls: str
    input_shape: tuple[int, ...]
    classes: int = 10

    def __call__(self, k):
        build = getattr(k.applications, self.cls)
        model = build(weights=None, input_shape=self.input_shape, classes=self.classes, classifier_activation=None)
        return refreshed(nontrivial_weights(model))


def refreshed(model):
    """`model` once every layer that caches tensors derived from its weights has recomputed them: a Normalization
    reads its mean and variance into constants when built (`finalize_state`), so weights assigned later reach
    its saved file but not its own outputs, and the reference would disagree with the file (EfficientNet)."""
    stack = list(model.layers)
    while stack:
        layer = stack.pop()
        stack.extend(getattr(layer, "layers", []))
        if type(layer).__name__ == "Normalization" and layer.weights:
            layer.finalize_state()
    return model


# Custom layers are defined per Keras module on first use: each flavour registers its own class.
_CUSTOM: dict[str, Any] = {}


def custom_layer_class(k):
    """A registered subclass (`tfjs_certify>Scale`) of the flavour's Layer: TF.js cannot run its Python call."""
    if k.__name__ not in _CUSTOM:
        register = (
            k.saving.register_keras_serializable
            if hasattr(k, "saving") and hasattr(k.saving, "register_keras_serializable")
            else k.utils.register_keras_serializable
        )

        @register(package="tfjs_certify")
        class Scale(k.layers.Layer):  # type: ignore[name-defined]
            """Multiplies by a learned scalar."""

            def build(self, input_shape):
                self.scale = self.add_weight(name="scale", shape=(), initializer="ones")

            def call(self, x):
                return x * self.scale

        _CUSTOM[k.__name__] = Scale
    return _CUSTOM[k.__name__]


# --- tier 2: graphs -------------------------------------------------------------------------------------


def multi_io(k):
    """Two inputs, two outputs: a dense branch and a conv branch meeting in a Concatenate."""
    img = k.Input((8, 8, 3), name="image")
    vec = k.Input((5,), name="features")
    x = k.layers.Conv2D(4, 3, activation="relu", name="conv")(img)
    x = k.layers.GlobalAveragePooling2D(name="gap")(x)
    y = k.layers.Dense(4, activation="tanh", name="dense_features")(vec)
    z = k.layers.Concatenate(name="concat")([x, y])
    out1 = k.layers.Dense(3, activation="softmax", name="class_head")(z)
    out2 = k.layers.Dense(1, name="regression_head")(z)
    return nontrivial_weights(k.Model([img, vec], [out1, out2], name="multi_io"))


def shared_layer(k):
    """One Dense layer called on three inputs (three inbound nodes), results averaged."""
    dense = k.layers.Dense(4, activation="relu", name="shared_dense")
    inputs = [k.Input((6,), name=f"input_{i}") for i in range(3)]
    out = k.layers.Average(name="average")([dense(x) for x in inputs])
    return nontrivial_weights(k.Model(inputs, out, name="shared_layer"))


def shared_layer_chain(k):
    """A Dense layer applied twice in sequence on its own output (node index 1 feeds the output)."""
    inp = k.Input((4,), name="input")
    dense = k.layers.Dense(4, activation="tanh", name="shared_dense")
    out = dense(dense(inp))
    return nontrivial_weights(k.Model(inp, out, name="shared_chain"))


def nested_sequential(k):
    """A Sequential model used as a layer inside a functional model."""
    inner = k.Sequential(
        [
            k.Input((6,)),
            k.layers.Dense(5, activation="relu", name="inner_dense1"),
            k.layers.Dense(3, name="inner_dense2"),
        ],
        name="inner_seq",
    )
    inp = k.Input((6,), name="input")
    x = k.layers.Dense(6, activation="tanh", name="pre")(inp)
    out = k.layers.Dense(2, name="post")(inner(x))
    return nontrivial_weights(k.Model(inp, out, name="outer"))


def nested_functional(k):
    """A functional model used as a layer, twice (shared), inside another functional model."""
    i = k.Input((4,), name="inner_input")
    inner = k.Model(i, k.layers.Dense(4, activation="relu", name="inner_dense")(i), name="inner_model")
    a, b = k.Input((4,), name="a"), k.Input((4,), name="b")
    out = k.layers.Add(name="add")([inner(a), inner(b)])
    return nontrivial_weights(k.Model([a, b], out, name="outer"))


def nested_two_levels(k):
    """Sequential inside functional inside Sequential."""
    seq = k.Sequential([k.Input((4,)), k.layers.Dense(4, activation="relu", name="deep_dense")], name="deep_seq")
    i = k.Input((4,), name="mid_input")
    mid = k.Model(i, k.layers.Dense(3, name="mid_dense")(seq(i)), name="mid_model")
    outer = k.Sequential([k.Input((4,)), mid, k.layers.Dense(2, name="top_dense")], name="outer_seq")
    return nontrivial_weights(outer)


def residual_block(k):
    """Two ResNet-style blocks: conv-BN-relu-conv-BN + identity shortcut, then a projection shortcut."""
    inp = k.Input((8, 8, 4), name="input")
    x = inp
    for i, (filters, stride) in enumerate([(4, 1), (6, 2)]):
        y = k.layers.Conv2D(filters, 3, strides=stride, padding="same", name=f"b{i}_conv1")(x)
        y = k.layers.BatchNormalization(name=f"b{i}_bn1")(y)
        y = k.layers.Activation("relu", name=f"b{i}_relu1")(y)
        y = k.layers.Conv2D(filters, 3, padding="same", name=f"b{i}_conv2")(y)
        y = k.layers.BatchNormalization(name=f"b{i}_bn2")(y)
        shortcut = (
            x
            if stride == 1 and filters == x.shape[-1]
            else k.layers.Conv2D(filters, 1, strides=stride, name=f"b{i}_proj")(x)
        )
        x = k.layers.ReLU(name=f"b{i}_out")(k.layers.Add(name=f"b{i}_add")([y, shortcut]))
    out = k.layers.Dense(3, name="head")(k.layers.GlobalAveragePooling2D(name="gap")(x))
    return nontrivial_weights(k.Model(inp, out, name="resnet_blocks"))


def embedding_mask(rnn: str):
    """Embedding(mask_zero=True) -> `rnn`: token 0 is padding, the mask must reach the RNN."""

    def build(k):
        inp = k.Input((7,), dtype="int32", name="tokens")
        x = k.layers.Embedding(12, 4, mask_zero=True, name="embedding")(inp)
        kwargs = {"reset_after": False} if rnn == "GRU" else {}
        x = getattr(k.layers, rnn)(5, name=snake(rnn), **kwargs)(x)
        out = k.layers.Dense(2, name="head")(x)
        return nontrivial_weights(k.Model(inp, out, name=f"embedding_mask_{snake(rnn)}"))

    build.__name__ = f"embedding_mask_{snake(rnn)}"
    return build


def embedding_mask_bidirectional(k):
    """Embedding(mask_zero=True) -> Bidirectional(LSTM, return_sequences) -> LSTM."""
    inp = k.Input((6,), dtype="int32", name="tokens")
    x = k.layers.Embedding(10, 4, mask_zero=True, name="embedding")(inp)
    x = k.layers.Bidirectional(k.layers.LSTM(3, return_sequences=True, name="lstm1"), name="bidi")(x)
    x = k.layers.LSTM(4, name="lstm2")(x)
    return nontrivial_weights(k.Model(inp, x, name="embedding_mask_bidi"))


def encoder_decoder(k):
    """Seq2seq: encoder LSTM's states are the decoder LSTM's `initial_state`."""
    enc_in = k.Input((5, 3), name="encoder_input")
    dec_in = k.Input((4, 2), name="decoder_input")
    _, h, c = k.layers.LSTM(6, return_state=True, name="encoder")(enc_in)
    x = k.layers.LSTM(6, return_sequences=True, name="decoder")(dec_in, initial_state=[h, c])
    out = k.layers.TimeDistributed(k.layers.Dense(3, name="proj"), name="td_proj")(x)
    return nontrivial_weights(k.Model([enc_in, dec_in], out, name="seq2seq"))


def encoder_decoder_gru(k):
    """Seq2seq with GRU (reset_after=False): the one encoder state initialises the decoder."""
    enc_in = k.Input((5, 3), name="encoder_input")
    dec_in = k.Input((4, 2), name="decoder_input")
    _, h = k.layers.GRU(6, return_state=True, reset_after=False, name="encoder")(enc_in)
    out = k.layers.GRU(6, return_sequences=True, reset_after=False, name="decoder")(dec_in, initial_state=h)
    return nontrivial_weights(k.Model([enc_in, dec_in], out, name="seq2seq_gru"))


def stacked_rnn(k):
    """LSTM -> GRU -> SimpleRNN, each returning sequences to the next."""
    inp = k.Input((6, 3), name="input")
    x = k.layers.LSTM(5, return_sequences=True, name="lstm")(inp)
    x = k.layers.GRU(4, return_sequences=True, reset_after=False, name="gru")(x)
    x = k.layers.SimpleRNN(3, name="simple_rnn")(x)
    return nontrivial_weights(k.Model(inp, x, name="stacked_rnn"))


def stacked_bidirectional(k):
    """Two Bidirectional LSTMs (concat then sum) and a Dense head."""
    inp = k.Input((6, 3), name="input")
    x = k.layers.Bidirectional(k.layers.LSTM(4, return_sequences=True, name="l1"), name="bidi1")(inp)
    x = k.layers.Bidirectional(k.layers.LSTM(3, name="l2"), merge_mode="sum", name="bidi2")(x)
    out = k.layers.Dense(2, name="head")(x)
    return nontrivial_weights(k.Model(inp, out, name="stacked_bidi"))


def conv_autoencoder(k):
    """Conv encoder (strided conv, pooling) and decoder (Conv2DTranspose, UpSampling2D) back to the input shape."""
    inp = k.Input((8, 8, 2), name="input")
    x = k.layers.Conv2D(4, 3, padding="same", activation="relu", name="enc_conv1")(inp)
    x = k.layers.MaxPooling2D(name="enc_pool")(x)
    x = k.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu", name="enc_conv2")(x)
    x = k.layers.Conv2DTranspose(4, 3, strides=2, padding="same", activation="relu", name="dec_deconv")(x)
    x = k.layers.UpSampling2D(name="dec_upsample")(x)
    out = k.layers.Conv2D(2, 3, padding="same", activation="sigmoid", name="dec_out")(x)
    return nontrivial_weights(k.Model(inp, out, name="autoencoder"))


def sequential_with_input(k):
    """A plain Sequential model starting with an explicit Input."""
    model = k.Sequential(
        [
            k.Input((8, 8, 1)),
            k.layers.Conv2D(4, 3, activation="relu", name="conv"),
            k.layers.MaxPooling2D(name="pool"),
            k.layers.Flatten(name="flatten"),
            k.layers.Dropout(0.3, name="dropout"),
            k.layers.Dense(3, activation="softmax", name="dense"),
        ],
        name="seq",
    )
    return nontrivial_weights(model)


def sequential_built(k):
    """A Sequential model without an Input, built afterwards with `model.build(input_shape)`."""
    model = k.Sequential(
        [
            k.layers.Dense(6, activation="relu", name="dense1"),
            k.layers.BatchNormalization(name="bn"),
            k.layers.Dense(2, name="dense2"),
        ],
        name="seq_built",
    )
    model.build((None, 5))
    return nontrivial_weights(model)


def sequential_input_shape(k):
    """A Sequential model whose first layer carries `input_shape=` (the Keras 2 idiom)."""
    model = k.Sequential(
        [k.layers.Dense(4, activation="tanh", input_shape=(5,), name="dense1"), k.layers.Dense(2, name="dense2")],
        name="seq_input_shape",
    )
    return nontrivial_weights(model)


def inception_block(k):
    """Parallel 1x1 / 3x3 / pooled branches concatenated on channels, as in Inception."""
    inp = k.Input((8, 8, 3), name="input")
    a = k.layers.Conv2D(2, 1, padding="same", activation="relu", name="branch_1x1")(inp)
    b = k.layers.Conv2D(3, 3, padding="same", activation="relu", name="branch_3x3")(inp)
    c = k.layers.MaxPooling2D(3, strides=1, padding="same", name="branch_pool")(inp)
    c = k.layers.Conv2D(2, 1, name="branch_pool_proj")(c)
    x = k.layers.Concatenate(name="concat")([a, b, c])
    out = k.layers.GlobalMaxPooling2D(name="gmp")(x)
    return nontrivial_weights(k.Model(inp, out, name="inception_block"))


def output_is_input_branch(k):
    """An intermediate tensor is both a model output and feeds further layers."""
    inp = k.Input((6,), name="input")
    h = k.layers.Dense(4, activation="relu", name="hidden")(inp)
    out = k.layers.Dense(2, name="head")(h)
    return nontrivial_weights(k.Model(inp, [h, out], name="two_outputs"))


def squeeze_excite(k):
    """Squeeze-and-excitation: channel gates from GAP -> Dense -> Dense(sigmoid) -> Reshape, multiplied back."""
    inp = k.Input((6, 6, 4), name="input")
    s = k.layers.GlobalAveragePooling2D(name="squeeze")(inp)
    s = k.layers.Dense(2, activation="relu", name="reduce")(s)
    s = k.layers.Dense(4, activation="sigmoid", name="expand")(s)
    s = k.layers.Reshape((1, 1, 4), name="reshape")(s)
    out = k.layers.Multiply(name="excite")([inp, s])
    return nontrivial_weights(k.Model(inp, out, name="squeeze_excite"))


# --- rejects that need more than a Spec -------------------------------------------------------------------


def lambda_layer(k):
    """A Lambda: its Python function cannot run in TF.js."""
    inp = k.Input((4,), name="input")
    out = k.layers.Lambda(lambda x: x * 2.0 + 1.0, name="lambda")(inp)
    return k.Model(inp, out, name="lambda_model")


def custom_layer(k):
    """A registered custom layer subclass."""
    inp = k.Input((4,), name="input")
    x = k.layers.Dense(3, name="dense")(inp)
    out = custom_layer_class(k)(name="scale")(x)
    return k.Model(inp, out, name="custom_model")


def keras_ops(k):
    """Keras 3 tensor arithmetic: with constants (both sides), between tensors, and ops.relu6."""
    inp = k.Input((4,), name="input")
    x = k.layers.Dense(3, name="dense_x")(inp)
    y = k.layers.Dense(3, name="dense_y")(inp)
    scaled = (x * 2.0 + 1.0) / 4.0 - 0.5
    flipped = 3.0 - y
    out = scaled * flipped + (x - y)
    return k.Model(inp, k.ops.relu6(out), name="keras_ops")


def keras_op_unlowerable(k):
    """An activation function applied to a symbolic tensor: an op with no TF.js layer."""
    inp = k.Input((4,), name="input")
    return k.Model(inp, k.activations.exponential(k.layers.Dense(3, name="dense")(inp)), name="keras_op_exp")


def relu_slope_sequential(k):
    """A ReLU with both a slope and a threshold in a Sequential model."""
    return k.Sequential(
        [k.Input((5,)), k.layers.Dense(4, name="dense"), k.layers.ReLU(negative_slope=0.1, threshold=0.3, name="relu")],
        name="relu_slope_sequential",
    )


def relu_slope_shared(k):
    """A ReLU with a slope and a threshold called on two tensors: the lowering's branch serves both calls."""
    inp = k.Input((5,), name="input")
    relu = k.layers.ReLU(negative_slope=0.1, threshold=0.3, name="relu")
    a = relu(k.layers.Dense(4, name="dense_a")(inp))
    c = relu(k.layers.Dense(4, name="dense_b")(inp))
    return k.Model(inp, [a, k.layers.Dense(2, name="head")(c)], name="relu_slope_shared")


def mha_masked(k):
    """Self-attention over embedded tokens with mask_zero: MultiHeadAttention applies the mask to its scores."""
    inp = k.Input((5,), dtype="int32", name="tokens")
    x = k.layers.Embedding(10, 8, mask_zero=True, name="embedding")(inp)
    out = k.layers.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")(x, x)
    return k.Model(inp, out, name="mha_masked")


# --- nested models whose outputs are the model's -----------------------------------------------------


def _encoder(k, name="encoder"):
    i = k.Input((6,), name=f"{name}_input")
    return k.Model(i, k.layers.Dense(3, activation="tanh", name=f"{name}_dense")(i), name=name)


def autoencoder(k):
    """Model(x, decoder(encoder(x))): the output is a nested Functional model's."""
    enc = _encoder(k)
    j = k.Input((3,), name="decoder_input")
    dec = k.Model(j, k.layers.Dense(6, name="decoder_dense")(j), name="decoder")
    x = k.Input((6,), name="x")
    return nontrivial_weights(k.Model(x, dec(enc(x)), name="autoencoder"))


def nested_output_two_levels(k):
    """A Functional inside a Functional inside the model, the innermost producing the output."""
    enc = _encoder(k)
    i = k.Input((6,), name="mid_input")
    mid = k.Model(i, enc(i), name="mid")
    x = k.Input((6,), name="x")
    return nontrivial_weights(k.Model(x, mid(x), name="two_levels"))


def nested_output_shared(k):
    """One nested Functional called on two inputs, both calls being outputs (nodes 1 and 2)."""
    enc = _encoder(k)
    a, b = k.Input((6,), name="a"), k.Input((6,), name="b")
    return nontrivial_weights(k.Model([a, b], [enc(a), enc(b)], name="shared_outputs"))


def nested_output_mixed(k):
    """A nested Sequential and a nested Functional, each producing an output."""
    enc = _encoder(k)
    seq = k.Sequential([k.Input((6,)), k.layers.Dense(2, name="seq_dense")], name="seq")
    x = k.Input((6,), name="x")
    return nontrivial_weights(k.Model(x, [enc(x), seq(x)], name="mixed_outputs"))


# --- small versions of real models the converter once got wrong -----------------------------------


def temporal_conv_net(k):
    """A temporal convolutional network: the first difference of the series (a Subtract of two Cropping1Ds),
    three residual blocks of dilated causal Conv1Ds, the last step kept (Cropping1D), Flatten and Dense. Its
    lowered causal convolutions once reshaped to -1, which TF.js keeps in the static shape: the Dense was built
    with a negative size and the model did not load."""
    steps = 47
    inp = k.Input((steps, 3), name="series")
    now = k.layers.Cropping1D((1, 0), name="now")(inp)
    before = k.layers.Cropping1D((0, 1), name="before")(inp)
    x = k.layers.Subtract(name="difference")([now, before])
    for i, d in enumerate((1, 2, 4)):
        y = k.layers.Conv1D(8, 3, padding="causal", dilation_rate=d, activation="relu", name=f"block{i}_a")(x)
        y = k.layers.Conv1D(8, 3, padding="causal", dilation_rate=d, activation="relu", name=f"block{i}_b")(y)
        if i == 0:
            x = k.layers.Conv1D(8, 1, name="block0_skip")(x)
        x = k.layers.Add(name=f"block{i}_add")([x, y])
    x = k.layers.Cropping1D((steps - 2, 0), name="last_step")(x)
    x = k.layers.Flatten(name="flatten")(x)
    return nontrivial_weights(k.Model(inp, k.layers.Dense(6, name="head")(x), name="temporal_conv_net"))


def segmentation_channels_first(k):
    """A small channels_first U-Net ending in a per-pixel Softmax over the channel axis. In a tf_keras file only
    the input's shape is written: the Softmax's rank must be followed from it through every layer (the
    BatchNormalization over axis 1 is itself lowered to a chain)."""
    cf = "channels_first"
    inp = k.Input((3, 8, 8), name="image")
    x = k.layers.Conv2D(4, 3, padding="same", data_format=cf, name="down_conv")(inp)
    x = k.layers.BatchNormalization(axis=1, name="down_bn")(x)
    skip = k.layers.Activation("relu", name="down_relu")(x)
    x = k.layers.MaxPooling2D(2, data_format=cf, name="pool")(skip)
    x = k.layers.Conv2D(8, 3, padding="same", activation="relu", data_format=cf, name="bottom_conv")(x)
    x = k.layers.SpatialDropout2D(0.2, data_format=cf, name="bottom_dropout")(x)
    x = k.layers.Conv2DTranspose(4, 2, strides=2, data_format=cf, name="up_conv")(x)
    x = k.layers.Concatenate(axis=1, name="merge")([x, skip])
    x = k.layers.Conv2D(3, 1, data_format=cf, name="classes")(x)
    return nontrivial_weights(k.Model(inp, k.layers.Softmax(axis=1, name="per_pixel")(x), name="segmentation"))


# --- lowered tier: layers TF.js lacks, as real models use them ------------------------------------


def normalization_adapted(k):
    """Tabular features standardised by an adapted Normalization, and a Normalization(invert=True) scaling a
    prediction back, one of its channels of zero variance (Keras multiplies by its floor 1e-7). (Dividing by
    that floor gives outputs near 1e7 whose rounding would fill the report: tests/test_lowering.py checks it.)"""
    rng = np.random.default_rng(WEIGHT_SEED)
    mean, std = [100.0, -3.0, 0.5, 7.0, 1.0], [20.0, 0.1, 1.0, 3.0, 0.5]
    norm = k.layers.Normalization(name="standardize")
    norm.adapt(rng.normal(mean, std, size=(64, 5)).astype("float32"))
    inp = k.Input((5,), name="features")
    x = k.layers.Dense(3, name="dense")(norm(inp))
    out = k.layers.Normalization(mean=[1.0, -2.0, 0.5], variance=[4.0, 0.25, 0.0], invert=True, name="unscale")(x)
    return nontrivial_weights(k.Model(inp, out, name="normalization_adapted"))


def _application_modules(k):
    """keras.applications' convnext and inception_resnet_v2 modules, where LayerScale and CustomScaleLayer live."""
    if k.__name__ == "tf_keras":
        from tf_keras.src.applications import convnext, inception_resnet_v2
    else:
        from keras.src.applications import convnext, inception_resnet_v2
    return convnext, inception_resnet_v2


def application_layers(k):
    """ConvNeXt's LayerScale and InceptionResNetV2's CustomScaleLayer, the classes keras.applications defines."""
    convnext, inception_resnet_v2 = _application_modules(k)
    inp = k.Input((4, 4, 6), name="image")
    x = k.layers.Conv2D(6, 1, name="branch")(inp)
    x = convnext.LayerScale(0.5, 6, name="layer_scale")(x)
    out = inception_resnet_v2.CustomScaleLayer(0.17, name="custom_scale")([inp, x])
    return nontrivial_weights(k.Model(inp, out, name="application_layers"))


def augmentation_in_model(k):
    """Image augmentation inside the model, as TensorFlow's image-classification and transfer-learning tutorials
    write it: a RandomCrop to the input's own size, then a nested Sequential of random layers, all the identity
    at inference."""
    layers = k.layers
    inp = k.Input((8, 8, 3), name="image")
    x = layers.RandomCrop(8, 8, name="crop")(inp)
    random = [
        layers.RandomFlip("horizontal", name="flip"),
        layers.RandomRotation(0.1, name="rotate"),
        layers.RandomZoom(0.1, name="zoom"),
        layers.RandomTranslation(0.1, 0.1, name="translate"),
        layers.RandomContrast(0.2, name="contrast"),
    ]
    if k.__name__ == "tf_keras":  # Keras 3 has no RandomHeight, RandomWidth (RandomBrightness: augmentation_keras3)
        random += [
            layers.RandomBrightness(0.2, name="brightness"),
            layers.RandomHeight(0.2, name="height"),
            layers.RandomWidth(0.2, name="width"),
        ]
    x = k.Sequential([k.Input((8, 8, 3)), *random], name="augment")(x)
    x = layers.Rescaling(1.0 / 255, name="rescale")(x)
    x = layers.Conv2D(4, 3, activation="relu", name="conv")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return nontrivial_weights(k.Model(inp, layers.Dense(2, name="head")(x), name="augmentation_in_model"))


def augmentation_keras3(k):
    """Keras 3's other augmentation layers in a row (each the identity at inference), before a convolution.
    (Equalization is left out: Keras 3.15 returns its very input tensor when building, so a model holding it after
    another layer does not build.)"""
    layers = k.layers
    inp = k.Input((8, 8, 3), name="image")
    x = inp
    for cls, kwargs in (
        ("RandAugment", {}),
        ("MixUp", {}),
        ("CutMix", {}),
        ("AugMix", {}),
        ("Solarization", {"addition_factor": 0.2, "threshold_factor": 0.5}),
        ("RandomGrayscale", {}),
        ("RandomHue", {"factor": 0.2}),
        ("RandomSaturation", {"factor": 0.2}),
        ("RandomSharpness", {"factor": 0.2}),
        ("RandomShear", {"x_factor": 0.2}),
        ("RandomPerspective", {}),
        ("RandomErasing", {}),
        ("RandomGaussianBlur", {}),
        ("RandomColorJitter", {"brightness_factor": 0.2}),
        ("RandomColorDegeneration", {"factor": 0.2}),
        ("RandomInvert", {}),
        ("RandomPosterization", {"factor": 4}),
        ("RandomElasticTransform", {}),
        ("RandomBrightness", {"factor": 0.2}),
    ):
        x = getattr(layers, cls)(**kwargs, name=snake(cls))(x)
    x = layers.Conv2D(2, 3, name="conv")(x)
    return nontrivial_weights(k.Model(inp, x, name="augmentation_keras3"))


def tf_ops(k):
    """TensorFlow functions applied to tf_keras tensors (TFOpLambda, SlicingOpLambda), as MobileNetV3
    (`x + 3.0`, `* (1/6)`), RegNet (`tf.math.multiply(x, y)`, `tf.nn.silu`) and EfficientNet's ImageNet
    preprocessing (a per-channel multiply) write them, with activations, reshapes, transposes, concatenation
    and slices."""
    import tensorflow as tf

    inp = k.Input((4, 6), name="series")
    a = tf.math.multiply(inp, tf.reshape([0.5, 1.0, 1.5, 2.0, 2.5, 3.0], [1, 1, 6]))
    a = k.layers.ReLU(6.0, name="relu6")(a + 3.0) * (1.0 / 6.0)
    b = 2.0 - k.layers.Dense(6, name="dense")(inp) / 4.0
    c = tf.math.multiply(a, b) + (a - b)
    d = tf.concat([tf.nn.silu(c), tf.math.sigmoid(c), tf.math.tanh(c), tf.nn.gelu(c), tf.nn.softplus(c)], axis=-1)
    e = tf.reshape(tf.transpose(tf.nn.relu6(d - 0.5), [0, 2, 1]), [-1, 120])
    image = tf.reshape(inp, [-1, 2, 12, 1])
    crop = image[:, 1:, 2:-3]
    return nontrivial_weights(k.Model(inp, [e, tf.nn.softmax(d), inp[:, 1:-1], crop], name="tf_ops"))


def group_normalization_after_dense(k):
    """A GroupNormalization whose input shape a tf_keras file does not record (it follows a Dense)."""
    inp = k.Input((6, 6, 4), name="image")
    x = k.layers.Dense(4, name="dense")(inp)
    return nontrivial_weights(k.Model(inp, k.layers.GroupNormalization(2, name="group_norm")(x), name="gn"))


def augmentation_in_training_mode(k):
    """A RandomWidth called with training=True: it resizes at inference too, so it is not removed."""
    inp = k.Input((6, 6, 3), name="image")
    return k.Model(inp, k.layers.RandomWidth(0.5, name="width")(inp, training=True), name="augment_always")


# --- the companion tier: what only the companion module's JavaScript runs -----------------------------------------


def gru_default_stacked(k):
    """The GRU a user trains with defaults (reset_after=True): Bidirectional, then stacked, then a head."""
    inp = k.Input((6, 3), name="input")
    x = k.layers.Bidirectional(k.layers.GRU(4, return_sequences=True, name="gru1"), name="bidi")(inp)
    x = k.layers.GRU(3, name="gru2")(x)
    return nontrivial_weights(k.Model(inp, k.layers.Dense(2, name="head")(x), name="gru_default_stacked"))


def gru_default_masked(k):
    """Embedding(mask_zero=True) -> GRU with defaults: padded steps must be skipped."""
    inp = k.Input((7,), dtype="int32", name="tokens")
    x = k.layers.Embedding(12, 4, mask_zero=True, name="embedding")(inp)
    x = k.layers.GRU(5, return_sequences=True, name="gru1")(x)
    x = k.layers.GRU(3, name="gru2")(x)
    return nontrivial_weights(k.Model(inp, x, name="gru_default_masked"))


def gru_default_seq2seq(k):
    """Seq2seq with default GRUs: the encoder's state is the decoder's initial_state."""
    enc_in = k.Input((5, 3), name="encoder_input")
    dec_in = k.Input((4, 2), name="decoder_input")
    _, h = k.layers.GRU(6, return_state=True, name="encoder")(enc_in)
    out = k.layers.GRU(6, return_sequences=True, name="decoder")(dec_in, initial_state=h)
    return nontrivial_weights(k.Model([enc_in, dec_in], out, name="gru_default_seq2seq"))


def gru_after_time_distributed(k):
    """A GRU reading a TimeDistributed convolution's per-frame features, as a video model does."""
    inp = k.Input((4, 5, 5, 2), name="frames")
    x = k.layers.TimeDistributed(k.layers.Conv2D(3, 3, activation="relu", name="conv"), name="td_conv")(inp)
    x = k.layers.TimeDistributed(k.layers.Flatten(name="flatten"), name="td_flatten")(x)
    return nontrivial_weights(k.Model(inp, k.layers.GRU(4, name="gru")(x), name="gru_after_time_distributed"))


def resize_then_conv(k):
    """Resizing inside a small image model, between a convolution and bilinear upsampling."""
    inp = k.Input((9, 7, 3), name="image")
    x = k.layers.Resizing(6, 6, name="resize")(inp)
    x = k.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(x)
    x = k.layers.UpSampling2D(2, interpolation="bilinear", name="upsample")(x)
    return nontrivial_weights(k.Model(inp, k.layers.Conv2D(2, 1, name="head")(x), name="resize_then_conv"))


def discretize_then_embed(k):
    """Discretization feeding an Embedding, as a bucketized numeric feature does."""
    inp = k.Input((5,), name="feature")
    x = k.layers.Discretization(bin_boundaries=[-1.0, -0.25, 0.0, 0.5, 1.25], name="buckets")(inp)
    x = k.layers.Embedding(6, 3, name="embedding")(x)
    return nontrivial_weights(k.Model(inp, k.layers.Flatten(name="flatten")(x), name="discretize_then_embed"))
