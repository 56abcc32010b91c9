"""converter.support: each rule checked on configs real Keras layers write.

Keras 3 configs go through `keras.saving.serialize_keras_object` and a small
simplifier doing what the translator does; tf_keras configs are used as written.
"""

import ast
import inspect
import pathlib
import re
import warnings

import pytest

keras = pytest.importorskip("keras")
tf_keras = pytest.importorskip("tf_keras")
import tensorflow as tf  # noqa: E402

from converter import support, support_table  # noqa: E402
from converter.support import CODES, adapt_layer  # noqa: E402

K3 = keras.layers
K2 = tf_keras.layers
BUNDLE = (
    pathlib.Path(__file__).resolve().parents[1] / "js_runner/node_modules/@tensorflow/tfjs-layers/dist/tf-layers.js"
)


def simplify(obj):
    """Keras 3 serialized objects -> {class_name, config}; DTypePolicy -> its name."""
    if isinstance(obj, dict):
        if "class_name" in obj and "config" in obj and "module" in obj:
            if obj["class_name"] == "DTypePolicy":
                return obj["config"]["name"]
            return {"class_name": obj["class_name"], "config": simplify(obj["config"])}
        return {k: simplify(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [simplify(v) for v in obj]
    return obj


def k3(layer):
    """(class_name, config) of a Keras 3 layer as the translator hands it over."""
    serialized = keras.saving.serialize_keras_object(layer)
    return serialized["class_name"], simplify(serialized["config"])


def k2(layer):
    """(class_name, config) of a tf_keras layer."""
    return type(layer).__name__, layer.get_config()


def adapt(layer):
    flavour = 3 if isinstance(layer, keras.layers.Layer) else 2
    class_name, config = (k3 if flavour == 3 else k2)(layer)
    return adapt_layer(class_name, config, keras=flavour)


def codes(layer):
    return [(i.argument, i.code) for i in adapt(layer)[2]]


# Every class in the table, built with default arguments. GRU's Keras default
# reset_after=True is refused, so the GRU entries set it to False.
DEFAULTS = {
    "InputLayer": lambda L: L.InputLayer(shape=(3,)) if L is K3 else L.InputLayer(input_shape=(3,)),
    "Dense": lambda L: L.Dense(2),
    "Dropout": lambda L: L.Dropout(0.5),
    "SpatialDropout1D": lambda L: L.SpatialDropout1D(0.5),
    "Flatten": lambda L: L.Flatten(),
    "Activation": lambda L: L.Activation("relu"),
    "RepeatVector": lambda L: L.RepeatVector(2),
    "Reshape": lambda L: L.Reshape((2, 2)),
    "Permute": lambda L: L.Permute((2, 1)),
    "Masking": lambda L: L.Masking(),
    "Embedding": lambda L: L.Embedding(10, 3),
    "Conv1D": lambda L: L.Conv1D(2, 3),
    "Conv2D": lambda L: L.Conv2D(2, 3),
    "Conv3D": lambda L: L.Conv3D(2, 3),
    "Conv2DTranspose": lambda L: L.Conv2DTranspose(2, 3),
    "Conv3DTranspose": lambda L: L.Conv3DTranspose(2, 3),
    "SeparableConv2D": lambda L: L.SeparableConv2D(2, 3),
    "DepthwiseConv2D": lambda L: L.DepthwiseConv2D(3),
    "Cropping2D": lambda L: L.Cropping2D(1),
    "UpSampling2D": lambda L: L.UpSampling2D(),
    "ZeroPadding2D": lambda L: L.ZeroPadding2D(),
    "MaxPooling1D": lambda L: L.MaxPooling1D(2),
    "AveragePooling1D": lambda L: L.AveragePooling1D(2),
    "MaxPooling2D": lambda L: L.MaxPooling2D(2),
    "AveragePooling2D": lambda L: L.AveragePooling2D(2),
    "MaxPooling3D": lambda L: L.MaxPooling3D(2),
    "AveragePooling3D": lambda L: L.AveragePooling3D(2),
    "GlobalAveragePooling1D": lambda L: L.GlobalAveragePooling1D(),
    "GlobalMaxPooling1D": lambda L: L.GlobalMaxPooling1D(),
    "GlobalAveragePooling2D": lambda L: L.GlobalAveragePooling2D(),
    "GlobalMaxPooling2D": lambda L: L.GlobalMaxPooling2D(),
    "Add": lambda L: L.Add(),
    "Multiply": lambda L: L.Multiply(),
    "Average": lambda L: L.Average(),
    "Maximum": lambda L: L.Maximum(),
    "Minimum": lambda L: L.Minimum(),
    "Concatenate": lambda L: L.Concatenate(),
    "Dot": lambda L: L.Dot(axes=1),
    "BatchNormalization": lambda L: L.BatchNormalization(),
    "LayerNormalization": lambda L: L.LayerNormalization(),
    "ReLU": lambda L: L.ReLU(),
    "LeakyReLU": lambda L: L.LeakyReLU(),
    "PReLU": lambda L: L.PReLU(),
    "ELU": lambda L: L.ELU(),
    "ThresholdedReLU": lambda L: L.ThresholdedReLU() if L is K2 else None,  # gone in Keras 3
    "Softmax": lambda L: L.Softmax(),
    "SimpleRNN": lambda L: L.SimpleRNN(2),
    "GRU": lambda L: L.GRU(2, reset_after=False),
    "LSTM": lambda L: L.LSTM(2),
    "SimpleRNNCell": lambda L: L.SimpleRNNCell(2),
    "GRUCell": lambda L: L.GRUCell(2, reset_after=False),
    "LSTMCell": lambda L: L.LSTMCell(2),
    "RNN": lambda L: L.RNN(L.LSTMCell(2)),
    "StackedRNNCells": lambda L: L.StackedRNNCells([L.LSTMCell(2)]),
    "ConvLSTM2D": lambda L: L.ConvLSTM2D(2, 3),
    "TimeDistributed": lambda L: L.TimeDistributed(L.Dense(2)),
    "Bidirectional": lambda L: L.Bidirectional(L.LSTM(2)),
    "GaussianNoise": lambda L: L.GaussianNoise(0.1),
    "GaussianDropout": lambda L: L.GaussianDropout(0.1),
    "AlphaDropout": lambda L: L.AlphaDropout(0.1),
    "Rescaling": lambda L: L.Rescaling(0.5),
    "CenterCrop": lambda L: L.CenterCrop(2, 2),
    "CategoryEncoding": lambda L: L.CategoryEncoding(4),
}
FLAVOURS = {"keras3": K3, "tf_keras": K2}


def test_every_table_entry_has_a_default_case():
    assert set(DEFAULTS) == support.SUPPORTED_LAYERS


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
@pytest.mark.parametrize("class_name", sorted(DEFAULTS))
def test_defaults_are_accepted(class_name, flavour):
    layer = DEFAULTS[class_name](FLAVOURS[flavour])
    if layer is None:
        pytest.skip(f"{flavour} has no {class_name}")
    keras_class, config = (k3 if flavour == "keras3" else k2)(layer)
    tfjs_class, out, issues = adapt_layer(keras_class, config, keras=3 if flavour == "keras3" else 2)
    assert issues == []
    assert tfjs_class == class_name
    rules = {**support_table.COMMON, **support_table.LAYERS[class_name]}
    for key, value in out.items():
        rule = rules[key]
        assert rule.kind != "drop"
        if rule.kind == "keep" and key in config and key != "axis":
            assert value == config[key], key
    # Applying the rules to their own output changes nothing.
    assert adapt_layer(tfjs_class, out, keras=3 if flavour == "keras3" else 2) == (tfjs_class, out, [])


# --- the table against the TF.js 4.22 bundle ---


@pytest.fixture(scope="module")
def registered():
    if not BUNDLE.exists():
        pytest.skip("js_runner npm dependencies are not installed")
    return set(re.findall(r"className = '([A-Za-z0-9_]+)'", BUNDLE.read_text()))


def test_table_names_are_registered_in_the_bundle(registered):
    assert registered >= support.SUPPORTED_LAYERS
    assert set(support_table.DIVERGENT_LAYERS) <= registered
    assert set(support_table.CONTAINERS) <= registered
    assert set(support.INITIALIZERS.values()) <= registered
    assert set(support.CONSTRAINTS) <= registered
    assert "L1L2" in registered
    camel = {re.sub(r"_+(\w)", lambda m: m.group(1).upper(), v) for v in support.ACTIVATIONS.values()}
    assert camel <= registered


def test_missing_layers_are_not_registered(registered):
    # TF.js registers an *initializer* named Identity in the same class map.
    assert (support_table.MISSING_LAYERS | support_table.PYTHON_LAYERS) & registered == {"Identity"}
    assert "RandomHeight" not in registered and "MultiHeadAttention" not in registered


@pytest.mark.parametrize("module", [K3, K2], ids=["keras3", "tf_keras"])
def test_every_keras_layer_class_is_classified(module):
    known = (
        support.SUPPORTED_LAYERS
        | support_table.CONTAINERS
        | support_table.PYTHON_LAYERS
        | set(support_table.DIVERGENT_LAYERS)
        | support_table.MISSING_LAYERS
        | set(support_table.CLASS_RENAMES)
    )
    base = K3.Layer if module is K3 else K2.Layer
    names = {obj.__name__ for obj in vars(module).values() if inspect.isclass(obj) and issubclass(obj, base)}
    assert names - known == set()


# --- renames ---


def test_leaky_relu_negative_slope_becomes_alpha():
    _, out, issues = adapt(K3.LeakyReLU(negative_slope=0.2))
    assert issues == [] and out["alpha"] == pytest.approx(0.2) and "negative_slope" not in out
    _, out, _ = adapt(K2.LeakyReLU(alpha=0.2))
    assert out["alpha"] == pytest.approx(0.2)


def test_silu_becomes_swish_from_string_and_function_object():
    _, out, issues = adapt(K3.Dense(2, activation="silu"))
    assert issues == [] and out["activation"] == "swish"
    _, config = k3(K3.Dense(2))
    config["activation"] = keras.saving.serialize_keras_object(keras.activations.silu)
    assert config["activation"]["class_name"] == "function"
    assert adapt_layer("Dense", config, keras=3)[1]["activation"] == "swish"
    assert adapt(K2.Dense(2, activation="swish"))[1]["activation"] == "swish"


@pytest.mark.parametrize(
    "name",
    [
        "relu",
        "relu6",
        "elu",
        "selu",
        "gelu",
        "mish",
        "tanh",
        "sigmoid",
        "softmax",
        "log_softmax",
        "softplus",
        "softsign",
        "linear",
    ],
)
def test_shared_activations_pass_through(name):
    assert adapt(K3.Dense(2, activation=name))[1]["activation"] == name
    assert adapt(K2.Dense(2, activation=name))[1]["activation"] == name


def test_regularizers_become_l1l2():
    _, out, issues = adapt(
        K3.Dense(
            2,
            kernel_regularizer=keras.regularizers.L2(0.02),
            bias_regularizer=keras.regularizers.L1(0.03),
            activity_regularizer=keras.regularizers.L1L2(0.1, 0.2),
        )
    )
    assert issues == []
    assert out["kernel_regularizer"] == {"class_name": "L1L2", "config": {"l1": 0.0, "l2": pytest.approx(0.02)}}
    assert out["bias_regularizer"] == {"class_name": "L1L2", "config": {"l1": pytest.approx(0.03), "l2": 0.0}}
    assert out["activity_regularizer"]["config"] == {"l1": pytest.approx(0.1), "l2": pytest.approx(0.2)}
    _, out, _ = adapt(K2.Dense(2, kernel_regularizer="l2"))
    assert out["kernel_regularizer"] == {"class_name": "L1L2", "config": {"l1": 0.0, "l2": pytest.approx(0.01)}}


@pytest.mark.parametrize(
    "keras_name,tfjs_name",
    [
        ("LecunNormal", "LeCunNormal"),
        ("LecunUniform", "LeCunUniform"),
        ("GlorotUniform", "GlorotUniform"),
        ("HeNormal", "HeNormal"),
        ("Orthogonal", "Orthogonal"),
        ("Identity", "Identity"),
        ("Zeros", "Zeros"),
        ("Ones", "Ones"),
    ],
)
def test_initializer_names(keras_name, tfjs_name):
    for module, layers in ((keras, K3), (tf_keras, K2)):
        init = getattr(module.initializers, keras_name)()
        _, out, issues = adapt(layers.Dense(2, kernel_initializer=init))
        assert issues == [] and out["kernel_initializer"]["class_name"] == tfjs_name


def test_initializer_keeps_only_keys_tfjs_reads():
    init = keras.initializers.VarianceScaling(2.0, mode="fan_avg", distribution="untruncated_normal", seed=3)
    _, out, issues = adapt(K3.Dense(2, kernel_initializer=init))
    assert issues == []
    assert out["kernel_initializer"] == {
        "class_name": "VarianceScaling",
        "config": {"scale": 2.0, "mode": "fan_avg", "distribution": "normal", "seed": 3},
    }
    glorot = adapt(K3.Dense(2))[1]["kernel_initializer"]
    assert glorot == {"class_name": "GlorotUniform", "config": {"seed": None}}  # input_axes dropped


def test_constraints_pass_through():
    _, out, issues = adapt(
        K3.Dense(2, kernel_constraint=keras.constraints.MaxNorm(3), bias_constraint=keras.constraints.NonNeg())
    )
    assert issues == []
    assert out["kernel_constraint"] == {"class_name": "MaxNorm", "config": {"max_value": 3, "axis": 0}}
    assert out["bias_constraint"] == {"class_name": "NonNeg", "config": {}}
    assert adapt(K2.Dense(2, kernel_constraint="unit_norm"))[1]["kernel_constraint"]["class_name"] == "UnitNorm"


def test_input_layer_shapes_and_dtypes():
    _, out, issues = adapt_layer(*k3(K3.InputLayer(shape=(3,))), keras=3)
    assert issues == [] and list(out["batch_input_shape"]) == [None, 3] and "batch_shape" not in out
    assert adapt(K3.InputLayer(shape=(3,), dtype="int32"))[1]["dtype"] == "int32"
    assert adapt(K3.InputLayer(shape=(3,), dtype="int64"))[1]["dtype"] == "int32"
    assert adapt(K2.InputLayer(input_shape=(3,), dtype="int32"))[1]["dtype"] == "int32"


def test_class_renames_and_batchnorm_axis_list():
    layer = K2.BatchNormalization()
    layer.build((None, 4, 4, 3))
    class_name, config = k2(layer)
    assert list(config["axis"]) == [3]
    tfjs_class, out, issues = adapt_layer("BatchNormalizationV1", dict(config, axis=list(config["axis"])), keras=2)
    assert (tfjs_class, out["axis"], issues) == ("BatchNormalization", 3, [])
    _, _, issues = adapt_layer(class_name, dict(config, axis=[1, 3]), keras=2)
    assert [(i.argument, i.code) for i in issues] == [("axis", "unsupported_value")]


def test_containers_are_left_to_the_translator():
    config = {"name": "m", "layers": []}
    for name in ("Sequential", "Functional", "Model"):
        assert adapt_layer(name, config, keras=3) == (name, config, [])


# --- keys TF.js never reads: dropped when neutral, refused otherwise ---

NEUTRAL_VS_NOT = [
    ("lora_rank", lambda: K3.Dense(2), lambda: K3.Dense(2, lora_rank=2)),
    ("synchronized", lambda: K3.BatchNormalization(), lambda: K3.BatchNormalization(synchronized=True)),
    ("renorm", lambda: K2.BatchNormalization(), lambda: K2.BatchNormalization(renorm=True)),
    ("groups", lambda: K3.Conv2D(4, 3), lambda: K3.Conv2D(4, 3, groups=2)),
    ("groups", lambda: K2.Conv1D(4, 3), lambda: K2.Conv1D(4, 3, groups=2)),
    ("negative_slope", lambda: K3.ReLU(), lambda: K3.ReLU(negative_slope=0.1)),
    ("threshold", lambda: K3.ReLU(), lambda: K3.ReLU(threshold=0.5)),
    ("negative_slope", lambda: K2.ReLU(), lambda: K2.ReLU(negative_slope=0.1)),
    ("keepdims", lambda: K3.GlobalAveragePooling1D(), lambda: K3.GlobalAveragePooling1D(keepdims=True)),
    ("keepdims", lambda: K2.GlobalMaxPooling2D(), lambda: K2.GlobalMaxPooling2D(keepdims=True)),
    ("data_format", lambda: K3.GlobalMaxPooling1D(), lambda: K3.GlobalMaxPooling1D(data_format="channels_first")),
    ("data_format", lambda: K2.MaxPooling1D(), lambda: K2.MaxPooling1D(data_format="channels_first")),
    ("data_format", lambda: K3.CenterCrop(2, 2), lambda: K3.CenterCrop(2, 2, data_format="channels_first")),
    ("time_major", lambda: K2.LSTM(2), lambda: K2.LSTM(2, time_major=True)),
    ("zero_output_for_mask", lambda: K3.LSTM(2), lambda: K3.LSTM(2, zero_output_for_mask=True)),
    # (Keras 3 SimpleRNN leaves activity_regularizer out of its config.)
    ("activity_regularizer", lambda: K2.SimpleRNN(2), lambda: K2.SimpleRNN(2, activity_regularizer="l2")),
    (
        "output_padding",
        lambda: K3.Conv2DTranspose(2, 3, strides=2),
        lambda: K3.Conv2DTranspose(2, 3, strides=2, output_padding=1),
    ),
    ("dilation_rate", lambda: K2.Conv2DTranspose(2, 3), lambda: K2.Conv2DTranspose(2, 3, dilation_rate=2)),
    ("dilation_rate", lambda: K3.DepthwiseConv2D(3), lambda: K3.DepthwiseConv2D(3, dilation_rate=2)),
    ("rms_scaling", lambda: K3.LayerNormalization(), lambda: K3.LayerNormalization(rms_scaling=True)),
    ("gamma_constraint", lambda: K2.LayerNormalization(), lambda: K2.LayerNormalization(gamma_constraint="non_neg")),
    (
        "backward_layer",
        lambda: K3.Bidirectional(K3.LSTM(2)),
        lambda: K3.Bidirectional(K3.LSTM(2), backward_layer=K3.LSTM(3, go_backwards=True)),
    ),
]


@pytest.mark.parametrize("key,neutral,other", NEUTRAL_VS_NOT, ids=[f"{c[0]}-{i}" for i, c in enumerate(NEUTRAL_VS_NOT)])
def test_unread_keys(key, neutral, other):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        neutral_layer, other_layer = neutral(), other()
    _, out, issues = adapt(neutral_layer)
    assert issues == [] and key not in out
    assert codes(other_layer) == [(key, "ignored_argument")]


@pytest.mark.parametrize(
    "key,layer",
    [
        ("seed", lambda: K3.GaussianNoise(0.1, seed=3)),
        ("seed", lambda: K3.LSTM(2, seed=3)),
        ("implementation", lambda: K2.GRU(2, reset_after=False, implementation=1)),
        ("kernel_initializer", lambda: K2.SeparableConv2D(2, 3)),
        ("renorm_momentum", lambda: K3.BatchNormalization(renorm_momentum=0.5)),
    ],
)
def test_keys_irrelevant_to_inference_are_dropped_whatever_their_value(key, layer):
    built = layer()
    assert key in (k3 if isinstance(built, K3.Layer) else k2)(built)[1]
    _, out, issues = adapt(built)
    assert issues == [] and key not in out


def test_dropout_seed_is_kept():
    assert adapt(K3.Dropout(0.5, seed=3))[1]["seed"] == 3


def test_unroll_and_stateful_are_kept():
    _, out, issues = adapt(K3.LSTM(2, unroll=True, stateful=True))
    assert issues == [] and out["unroll"] is True and out["stateful"] is True


# --- values TF.js refuses or mis-computes ---


@pytest.mark.parametrize(
    "layer,argument",
    [
        (lambda: K3.GRU(2), "reset_after"),
        (lambda: K2.GRU(2), "reset_after"),
        (lambda: K3.GRUCell(2), "reset_after"),
        (lambda: K3.Conv1D(2, 3, padding="causal"), "padding"),
        (lambda: K2.Conv1D(2, 3, padding="causal"), "padding"),
        (lambda: K3.Conv1D(2, 3, data_format="channels_first"), "data_format"),
        (lambda: K3.ELU(alpha=0.5), "alpha"),
        (lambda: K2.ELU(alpha=0.5), "alpha"),
        (lambda: K3.ConvLSTM2D(2, 3, unroll=True), "unroll"),
        (lambda: K3.UpSampling2D(interpolation="bilinear"), "interpolation"),
        (lambda: K2.UpSampling2D(interpolation="bilinear"), "interpolation"),
        (lambda: K2.CategoryEncoding(4, sparse=True), "sparse"),
        (lambda: K3.InputLayer(shape=(3,), sparse=True), "sparse"),
    ],
)
def test_unsupported_values(layer, argument):
    assert codes(layer()) == [(argument, "unsupported_value")]


@pytest.mark.parametrize("layer", [lambda: K3.Resizing(4, 4), lambda: K2.Resizing(4, 4), lambda: K2.RandomWidth(0.1)])
def test_divergent_layers(layer):
    assert codes(layer()) == [(None, "unsupported_value")]


def test_supported_values_of_checked_arguments():
    for mode in ("concat", "sum", "mul", "ave", None):
        assert adapt(K3.Bidirectional(K3.LSTM(2), merge_mode=mode))[2] == []
    for mode in ("one_hot", "multi_hot", "count"):
        assert adapt(K3.CategoryEncoding(4, output_mode=mode))[2] == []
    assert adapt(K3.Conv2D(2, 3, data_format="channels_first", padding="same"))[2] == []
    assert adapt(K3.Flatten(data_format="channels_first"))[2] == []


# --- activations, initializers, regularizers, constraints TF.js lacks ---


def test_hard_sigmoid_depends_on_keras_version():
    x = tf.constant([-1.0, 1.0])
    # tf_keras computes TF.js's clip(0.2x + 0.5); Keras 3 computes relu6(x + 3) / 6.
    assert tf_keras.activations.hard_sigmoid(x).numpy() == pytest.approx([0.3, 0.7])
    assert keras.ops.convert_to_numpy(keras.activations.hard_sigmoid(x)) == pytest.approx([2 / 6, 4 / 6])
    assert adapt(K2.Dense(2, activation="hard_sigmoid"))[1]["activation"] == "hard_sigmoid"
    assert codes(K3.Dense(2, activation="hard_sigmoid")) == [("activation", "unknown_activation")]


@pytest.mark.parametrize("name", ["leaky_relu", "exponential", "hard_silu", "celu"])
def test_unknown_activations(name):
    assert codes(K3.Dense(2, activation=name)) == [("activation", "unknown_activation")]
    assert codes(K3.Activation(name)) == [("activation", "unknown_activation")]


def test_unknown_initializer_regularizer_constraint():
    @keras.saving.register_keras_serializable(package="support_test")
    class Halves(keras.initializers.Initializer):
        def __call__(self, shape, dtype=None):
            return keras.ops.full(shape, 0.5)

    assert codes(K3.Dense(2, kernel_initializer=Halves())) == [("kernel_initializer", "unknown_initializer")]
    assert codes(K3.Dense(2, kernel_regularizer=keras.regularizers.OrthogonalRegularizer())) == [
        ("kernel_regularizer", "unknown_regularizer")
    ]
    assert codes(K2.Dense(2, kernel_constraint=tf_keras.constraints.RadialConstraint())) == [
        ("kernel_constraint", "unknown_constraint")
    ]


@pytest.mark.parametrize("dtype", ["mixed_float16", "float16", "bfloat16", "mixed_bfloat16"])
def test_unsupported_dtypes(dtype):
    assert codes(K3.Dense(2, dtype=dtype)) == [("dtype", "unsupported_dtype")]


def test_unsupported_dtype_tf_keras():
    assert codes(K2.Dense(2, dtype="float16")) == [("dtype", "unsupported_dtype")]
    assert codes(K3.InputLayer(shape=(3,), dtype="float16")) == [("dtype", "unsupported_dtype")]


# --- whole layers ---


def test_python_code_layers():
    assert codes(K3.Lambda(lambda x: x)) == [(None, "needs_python_code")]
    assert codes(K2.Lambda(lambda x: x)) == [(None, "needs_python_code")]
    x = tf_keras.Input((3,))
    model = tf_keras.Model(x, tf.math.sin(x)[:, :1])
    for layer in model.get_config()["layers"][1:]:
        assert layer["class_name"] in ("TFOpLambda", "SlicingOpLambda")
        issues = adapt_layer(layer["class_name"], layer["config"], keras=2)[2]
        assert [i.code for i in issues] == ["needs_python_code"]

    @keras.saving.register_keras_serializable(package="support_test")
    class Twice(keras.layers.Layer):
        def call(self, x):
            return 2 * x

    serialized = keras.saving.serialize_keras_object(Twice())
    assert [i.code for i in adapt_layer(serialized["registered_name"], serialized["config"], keras=3)[2]] == [
        "needs_python_code"
    ]
    assert [i.code for i in adapt_layer(serialized["class_name"], serialized["config"], keras=3)[2]] == [
        "unknown_layer"
    ]


@pytest.mark.parametrize(
    "layer",
    [
        lambda: K3.Subtract(),
        lambda: K3.Normalization(),
        lambda: K3.Attention(),
        lambda: K3.MultiHeadAttention(2, 4),
        lambda: K3.ZeroPadding1D(),
        lambda: K3.ZeroPadding3D(),
        lambda: K3.Cropping1D(),
        lambda: K3.Cropping3D(),
        lambda: K3.UpSampling1D(),
        lambda: K3.UpSampling3D(),
        lambda: K3.GlobalAveragePooling3D(),
        lambda: K3.GlobalMaxPooling3D(),
        lambda: K3.Conv1DTranspose(2, 3),
        lambda: K3.SeparableConv1D(2, 3),
        lambda: K3.GroupNormalization(1),
        lambda: K2.RandomHeight(0.1),
        lambda: K2.Subtract(),
    ],
)
def test_unknown_standard_layers(layer):
    built = layer()
    issues = adapt(built)[2]
    assert [(i.code, i.class_name) for i in issues] == [("unknown_layer", type(built).__name__)]


def test_unclassified_key_fails_closed():
    class_name, config = k3(K3.Dense(2))
    config["future_option"] = 1
    assert [(i.argument, i.code) for i in adapt_layer(class_name, config, keras=3)[2]] == [
        ("future_option", "unsupported_argument")
    ]


def test_bad_config():
    issues = adapt_layer("Dense", ["not", "a", "dict"], keras=3)[2]
    assert [i.code for i in issues] == ["bad_config"]
    with pytest.raises(ValueError, match="keras must be 2 or 3"):
        adapt_layer("Dense", {}, keras=4)


def test_issue_fields_and_text():
    (issue,) = adapt(K3.GRU(2, name="my_gru"))[2]
    assert (issue.layer, issue.class_name, issue.argument, issue.value) == ("my_gru", "GRU", "reset_after", True)
    assert "my_gru (GRU) reset_after=True" in str(issue) and "\n" not in str(issue)


def _codes_given(package: pathlib.Path) -> set[str]:
    """Every reason code the converter's source gives: the code argument of each Issue(...), _Refused(...),
    _Refuse(...), Refused(...), training.refused(...) and adapt_layer's issue(...) call."""
    positions = {"_Refused": 0, "_Refuse": 0, "Refused": 0, "issue": 2, "refused": 1}
    found = set()
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            args = [kw.value for kw in node.keywords if kw.arg == "code"]
            if name in positions and len(node.args) > positions[name]:
                args.append(node.args[positions[name]])
            found |= {a.value for a in args if isinstance(a, ast.Constant) and isinstance(a.value, str)}
    return found


def test_every_code_given_is_documented_and_every_documented_code_is_given():
    """A code the converter gives without documenting it, or documents without ever giving it, fails."""
    from converter import training_table

    given = _codes_given(pathlib.Path(support.__file__).parent)
    assert given == set(CODES) | set(training_table.CODES)
    assert all(isinstance(v, str) and v for v in [*CODES.values(), *training_table.CODES.values()])
