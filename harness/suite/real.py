"""The `real` tier: small models written as users write them, after Keras's own examples (keras.io/examples):
a Transformer text classifier, a ViT, time-series Transformers, cross-attention, query-value attention over
CNN encodings. Each runs through the lowerings its layers need (it names them) and is held to the ordinary
tolerance. Shapes are small; the architectures are the examples'.

Some go through issue 18 part A's lowerings too: augmentation removed at inference, an adapted Normalization,
GroupNormalization, UnitNormalization.
"""

from __future__ import annotations

from harness.suite.builders import nontrivial_weights
from harness.suite.case import Case, InputSpec
from harness.suite.declare import K3, ONE_FILE_PER_FORMAT, only

MHA = "multi_head_attention"


def _encoder_block(k, x, name: str, heads=2, key_dim=4, ff=16, dropout=0.1):
    """keras.io text_classification_with_transformer's TransformerBlock, post-norm: attention and a
    feed-forward network, each added to its input and layer-normalized."""
    dim = x.shape[-1]
    attn = k.layers.MultiHeadAttention(heads, key_dim, name=f"{name}_mha")(x, x)
    attn = k.layers.Dropout(dropout, name=f"{name}_drop1")(attn)
    x = k.layers.LayerNormalization(epsilon=1e-6, name=f"{name}_ln1")(k.layers.Add(name=f"{name}_res1")([x, attn]))
    y = k.layers.Dense(ff, activation="relu", name=f"{name}_ff1")(x)
    y = k.layers.Dense(dim, name=f"{name}_ff2")(y)
    y = k.layers.Dropout(dropout, name=f"{name}_drop2")(y)
    return k.layers.LayerNormalization(epsilon=1e-6, name=f"{name}_ln2")(k.layers.Add(name=f"{name}_res2")([x, y]))


def text_classifier(k):
    """Token and position embeddings (positions given as an input: a position Embedding without a custom
    layer), a Transformer block, average pooling, dropout, a softmax head."""
    tokens = k.Input((8,), dtype="int32", name="tokens")
    positions = k.Input((8,), dtype="int32", name="positions")
    x = k.layers.Add(name="embed")(
        [k.layers.Embedding(20, 8, name="token_emb")(tokens), k.layers.Embedding(8, 8, name="pos_emb")(positions)]
    )
    x = _encoder_block(k, x, "block")
    x = k.layers.GlobalAveragePooling1D(name="pool")(x)
    x = k.layers.Dropout(0.1, name="drop")(x)
    x = k.layers.Dense(16, activation="relu", name="hidden")(x)
    out = k.layers.Dense(2, activation="softmax", name="head")(x)
    return nontrivial_weights(k.Model([tokens, positions], out, name="text_classifier"))


def vit(k):
    """keras.io image_classification_with_vision_transformer, in small: patches by a strided Conv2D,
    flattened to a sequence, two pre-norm Transformer blocks (MultiHeadAttention, a gelu MLP), a head."""
    image = k.Input((8, 8, 3), name="image")
    x = k.layers.Conv2D(8, 4, strides=4, name="patches")(image)
    x = k.layers.Reshape((4, 8), name="sequence")(x)
    for i in range(2):
        y = k.layers.LayerNormalization(epsilon=1e-6, name=f"b{i}_ln1")(x)
        y = k.layers.MultiHeadAttention(2, 4, dropout=0.1, name=f"b{i}_mha")(y, y)
        x = k.layers.Add(name=f"b{i}_res1")([y, x])
        y = k.layers.LayerNormalization(epsilon=1e-6, name=f"b{i}_ln2")(x)
        y = k.layers.Dense(16, activation="gelu", name=f"b{i}_mlp1")(y)
        y = k.layers.Dense(8, name=f"b{i}_mlp2")(y)
        x = k.layers.Add(name=f"b{i}_res2")([y, x])
    x = k.layers.LayerNormalization(epsilon=1e-6, name="ln")(x)
    x = k.layers.GlobalAveragePooling1D(name="pool")(x)
    return nontrivial_weights(k.Model(image, k.layers.Dense(3, name="head")(x), name="vit"))


def timeseries_classifier(k):
    """keras.io timeseries_classification_transformer, in small: two pre-norm encoder blocks (attention, a
    Conv1D feed-forward), pooling with data_format='channels_first' as the example does, an MLP head."""
    series = k.Input((8, 3), name="series")
    x = series
    for i in range(2):
        y = k.layers.LayerNormalization(epsilon=1e-6, name=f"b{i}_ln1")(x)
        y = k.layers.MultiHeadAttention(2, 4, dropout=0.1, name=f"b{i}_mha")(y, y)
        y = k.layers.Dropout(0.1, name=f"b{i}_drop1")(y)
        res = k.layers.Add(name=f"b{i}_res1")([y, x])
        y = k.layers.LayerNormalization(epsilon=1e-6, name=f"b{i}_ln2")(res)
        y = k.layers.Conv1D(4, 1, activation="relu", name=f"b{i}_ff1")(y)
        y = k.layers.Dropout(0.1, name=f"b{i}_drop2")(y)
        y = k.layers.Conv1D(3, 1, name=f"b{i}_ff2")(y)
        x = k.layers.Add(name=f"b{i}_res2")([y, res])
    x = k.layers.GlobalAveragePooling1D(data_format="channels_first", name="pool")(x)
    x = k.layers.Dense(8, activation="relu", name="mlp")(x)
    x = k.layers.Dropout(0.1, name="drop")(x)
    out = k.layers.Dense(2, activation="softmax", name="head")(x)
    return nontrivial_weights(k.Model(series, out, name="timeseries_classifier"))


def causal_forecaster(k):
    """A decoder-only forecaster: each step attends to the steps before it (use_causal_mask), one value out
    per step."""
    series = k.Input((8, 2), name="series")
    x = k.layers.Dense(8, name="embed")(series)
    y = k.layers.MultiHeadAttention(2, 4, name="mha")(x, x, use_causal_mask=True)
    x = k.layers.LayerNormalization(name="ln1")(k.layers.Add(name="res1")([x, y]))
    y = k.layers.Dense(16, activation="relu", name="ff1")(x)
    x = k.layers.LayerNormalization(name="ln2")(k.layers.Add(name="res2")([x, k.layers.Dense(8, name="ff2")(y)]))
    return nontrivial_weights(k.Model(series, k.layers.Dense(1, name="forecast")(x), name="causal_forecaster"))


def cross_attention(k):
    """A decoder attending to an encoder: queries from one input, keys and values from the other (of another
    length and width), then residual, LayerNormalization and a head."""
    source = k.Input((6, 5), name="source")
    target = k.Input((4, 3), name="target")
    memory = k.layers.LayerNormalization(name="enc_ln")(k.layers.Dense(8, activation="relu", name="enc")(source))
    x = k.layers.Dense(8, name="dec")(target)
    y = k.layers.MultiHeadAttention(2, 4, name="cross_mha")(x, memory)
    x = k.layers.LayerNormalization(name="ln")(k.layers.Add(name="res")([x, y]))
    return nontrivial_weights(k.Model([source, target], k.layers.Dense(2, name="head")(x), name="cross_attention"))


def query_value_attention(k):
    """The example of keras.layers.Attention's documentation: a shared embedding and Conv1D encode query and
    value token sequences, dot-product attention, each pooled, concatenated, a head."""
    query_tokens = k.Input((6,), dtype="int32", name="query_tokens")
    value_tokens = k.Input((8,), dtype="int32", name="value_tokens")
    embedding = k.layers.Embedding(20, 8, name="embedding")
    cnn = k.layers.Conv1D(4, 3, padding="same", name="cnn")
    query = cnn(embedding(query_tokens))
    value = cnn(embedding(value_tokens))
    attended = k.layers.Attention(name="attention")([query, value])
    pooled = [k.layers.GlobalAveragePooling1D(name=f"{n}_pool")(t) for n, t in (("q", query), ("a", attended))]
    out = k.layers.Dense(2, name="head")(k.layers.Concatenate(name="concat")(pooled))
    return nontrivial_weights(k.Model([query_tokens, value_tokens], out, name="query_value_attention"))


def bahdanau_seq2seq(k):
    """An LSTM encoder-decoder with additive (Bahdanau) attention over the encoder's sequence, concatenated
    with the decoder's, then a per-step head."""
    source = k.Input((6, 3), name="source")
    target = k.Input((4, 2), name="target")
    memory, h, c = k.layers.LSTM(8, return_sequences=True, return_state=True, name="encoder")(source)
    x = k.layers.LSTM(8, return_sequences=True, name="decoder")(target, initial_state=[h, c])
    context = k.layers.AdditiveAttention(name="attention")([x, memory])
    x = k.layers.Concatenate(name="concat")([x, context])
    return nontrivial_weights(k.Model([source, target], k.layers.Dense(3, name="head")(x), name="bahdanau_seq2seq"))


# --- preprocessing and normalization layers TF.js lacks, in real models -------------------------------


def augmented_conv_net(k):
    """keras.io image_classification_from_scratch, in small: augmentation (identity at inference) and
    Rescaling in front of a conv net."""
    image = k.Input((8, 8, 3), name="image")
    x = k.layers.RandomFlip("horizontal", name="flip")(image)
    x = k.layers.RandomRotation(0.1, name="rotate")(x)
    x = k.layers.Rescaling(1.0 / 255, name="rescale")(x)
    x = k.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(x)
    x = k.layers.MaxPooling2D(name="pool")(x)
    x = k.layers.GlobalAveragePooling2D(name="gap")(x)
    return nontrivial_weights(k.Model(image, k.layers.Dense(2, name="head")(x), name="augmented_conv_net"))


def tabular_normalization(k):
    """keras.io structured data: a Normalization layer adapted to the training data, then an MLP."""
    import numpy as np

    norm = k.layers.Normalization(name="normalize")
    norm.adapt(np.random.default_rng(0).normal(3.0, 2.0, size=(64, 5)).astype("float32"))
    features = k.Input((5,), name="features")
    x = k.layers.Dense(8, activation="relu", name="hidden")(norm(features))
    return nontrivial_weights(k.Model(features, k.layers.Dense(1, name="head")(x), name="tabular_normalization"))


def groupnorm_residual(k):
    """A residual conv block normalized by GroupNormalization (as in diffusion U-Nets)."""
    image = k.Input((6, 6, 4), name="image")
    y = k.layers.Conv2D(4, 3, padding="same", name="conv1")(image)
    y = k.layers.GroupNormalization(2, name="gn1")(y)
    y = k.layers.Activation("swish", name="act")(y)
    y = k.layers.Conv2D(4, 3, padding="same", name="conv2")(y)
    y = k.layers.GroupNormalization(2, name="gn2")(y)
    return nontrivial_weights(k.Model(image, k.layers.Add(name="res")([image, y]), name="groupnorm_residual"))


def unit_norm_embedding(k):
    """An embedding head for similarity search: an MLP whose output is L2-normalized by UnitNormalization."""
    features = k.Input((6,), name="features")
    x = k.layers.Dense(8, activation="relu", name="hidden")(features)
    x = k.layers.Dense(4, name="project")(x)
    return nontrivial_weights(k.Model(features, k.layers.UnitNormalization(name="l2")(x), name="unit_norm_embedding"))


def real(build, layer_classes: str, lowered: str, inputs=None, **kw) -> Case:
    return Case(
        name=build.__name__,
        tier="real",
        build=build,
        layer_classes=tuple(layer_classes.split()),
        inputs=inputs,
        lowered=tuple(lowered.split()),
        formats=ONE_FILE_PER_FORMAT,
        **kw,
    )


TOKENS = InputSpec((8,), kind="int", low=0, high=20)
TF_KERAS_SHAPES = (
    "tf_keras records no input shape but an Input's, and the {layer} lowering needs its input's static shape: "
    "refused (not_lowerable) in tf_keras"
)
BLOCK = "MultiHeadAttention Dropout Add LayerNormalization Dense"

REAL_CASES = [
    real(
        text_classifier,
        f"Embedding {BLOCK} GlobalAveragePooling1D",
        MHA,
        inputs=(TOKENS, InputSpec((8,), kind="int", low=0, high=8)),
    ),
    real(vit, f"Conv2D Reshape {BLOCK} GlobalAveragePooling1D", MHA),
    real(
        timeseries_classifier,
        f"{BLOCK} Conv1D GlobalAveragePooling1D",
        f"{MHA} global_pooling_1d_channels_first",
    ),
    real(causal_forecaster, BLOCK, MHA),
    real(cross_attention, "Dense LayerNormalization MultiHeadAttention Add", MHA),
    real(
        query_value_attention,
        "Embedding Conv1D Attention GlobalAveragePooling1D Concatenate Dense",
        "attention",
        inputs=(InputSpec((6,), kind="int", low=0, high=20), TOKENS),
    ),
    real(
        bahdanau_seq2seq,
        "LSTM AdditiveAttention Concatenate Dense",
        "additive_attention",
        **only(K3, TF_KERAS_SHAPES.format(layer="AdditiveAttention")),
    ),
    real(
        augmented_conv_net,
        "RandomFlip RandomRotation Rescaling Conv2D MaxPooling2D GlobalAveragePooling2D Dense",
        "augmentation",
    ),
    real(tabular_normalization, "Normalization Dense", "normalization"),
    real(
        groupnorm_residual,
        "Conv2D GroupNormalization Activation Add",
        "group_normalization",
        **only(K3, TF_KERAS_SHAPES.format(layer="GroupNormalization")),
    ),
    real(
        unit_norm_embedding,
        "Dense UnitNormalization",
        "unit_normalization",
        **only(K3, TF_KERAS_SHAPES.format(layer="UnitNormalization")),
    ),
]
