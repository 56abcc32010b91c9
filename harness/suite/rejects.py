"""The `reject` tier: models the converter must refuse, each with the reason code it must give."""

from __future__ import annotations

from harness.suite import builders as b
from harness.suite.builders import App
from harness.suite.case import Case
from harness.suite.declare import (
    CF,
    IMG,
    K3,
    SEQ,
    TFJS_SRC,
    TFK,
    UNKNOWN,
    VOL,
    graph,
    layer,
    only,
    refused,
    refused_graph,
    reject,
    tokens,
    xfail,
)

REJECT_CASES = [
    refused_graph(b.lambda_layer, ["Lambda"], "needs_python_code", "a Lambda holds Python bytecode"),
    refused_graph(
        b.custom_layer,
        ["Dense", "Scale"],
        "needs_python_code",
        "a registered custom layer runs Python code TF.js does not have",
    ),
    refused_graph(
        b.tensor_op,
        ["Dense", "TFOpLambda"],
        "needs_python_code",
        "`x * 2.0` becomes a TFOpLambda (tf_keras) or a Keras 3 op node serialized as class_name "
        "'Multiply' from module keras.src.ops.numpy (not the Multiply layer); neither is a TF.js layer",
    ),
    refused_graph(b.attention, ["Attention"], "unknown_layer", UNKNOWN),
    refused_graph(
        b.mha, ["MultiHeadAttention"], "unknown_layer", "TF.js 4.22 does not export MultiHeadAttention (layers/nlp)"
    ),
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
    refused(
        "GRU",
        {"reset_after": True},
        SEQ,
        "unsupported_value",
        "TF.js GRUCell throws on reset_after=true (the Keras default)",
    ),
    refused("Conv1D", {"padding": "causal"}, (8, 3), "unsupported_value", "TF.js does not implement causal padding"),
    refused("ELU", {"alpha": 0.5}, (3, 5), "unsupported_value", "TF.js ELU throws on alpha other than 1.0"),
    # TF.js's rank limits cannot be seen in a config (input ranks are not written per layer), so the
    # converter lets these through and TF.js refuses them when it runs: certified as known failures.
    layer(
        "Dot",
        {"axes": -1},
        ((2, 3, 4), (2, 3, 4)),
        expect=xfail("load_error", "tfjs-layers merge.ts: Dot supports inputs of rank <= 3 only (throws at predict)"),
    ),
    layer(
        "BatchNormalization",
        {},
        VOL,
        label="rank5_input",
        expect=xfail("load_error", "tfjs-layers normalization.ts: batchNormalization supports rank <= 4 only"),
    ),
    refused(
        "Conv1D",
        {"data_format": CF},
        (3, 8),
        "unsupported_value",
        "TF.js Conv1D with channels_first transposes the input but not the output back",
    ),
    refused(
        "Softmax", {"axis": 1}, (3, 5), "unsupported_value", "TF.js softmax throws for a non-last axis at predict time"
    ),
    refused("ReLU", {"negative_slope": 0.1}, (3, 5), "ignored_argument", "TF.js ReLU ignores negative_slope"),
    refused("ReLU", {"threshold": 0.5}, (3, 5), "ignored_argument", "TF.js ReLU ignores threshold"),
    refused(
        "GlobalAveragePooling2D",
        {"keepdims": True},
        IMG,
        "ignored_argument",
        "TF.js global pooling ignores keepdims (the output rank would differ)",
    ),
    refused("Conv2D", {"groups": 2}, (6, 6, 6), "ignored_argument", "TF.js Conv2D ignores groups"),
    refused(
        "Activation",
        {"activation": "exponential"},
        (3, 5),
        "unknown_activation",
        "TF.js has no exponential activation",
        label="exponential",
    ),
    refused(
        "Activation",
        {"activation": "leaky_relu"},
        (3, 5),
        "unknown_activation",
        "TF.js has no leaky_relu activation function",
        label="leaky_relu",
        **only(K3, "tf_keras has no leaky_relu activation string"),
    ),
    refused(
        "Activation",
        {"activation": "hard_silu"},
        (3, 5),
        "unknown_activation",
        "TF.js has no hard_silu activation",
        label="hard_silu",
        **only(K3, "tf_keras has no hard_silu activation string"),
    ),
    refused(
        "Activation",
        {"activation": "hard_sigmoid"},
        (3, 5),
        "unknown_activation",
        f"Keras 3 hard_sigmoid is relu6(x+3)/6; {TFJS_SRC}backend/tfjs_backend.ts hardSigmoid is clip(0.2x+0.5, 0, 1)",
        label="hard_sigmoid,flavour=keras3",
        **only(K3, "tf_keras's hard_sigmoid is TF.js's: certified in the layer tier"),
    ),
    refused(
        "UpSampling2D",
        {"interpolation": "bilinear"},
        (3, 3, 2),
        "unsupported_value",
        f"{TFJS_SRC}layers/convolutional.ts UpSampling2D calls image.resizeBilinear without half-pixel "
        "centers; Keras resizes with tf.image.resize (half-pixel centers)",
    ),
    refused(
        "DepthwiseConv2D",
        {"dilation_rate": 2},
        (8, 8, 2),
        "ignored_argument",
        f"{TFJS_SRC}layers/convolutional_depthwise.ts DepthwiseConv2D.call passes dilationRate null",
    ),
    refused(
        "Conv2DTranspose",
        {"dilation_rate": 2},
        (4, 4, 2),
        "ignored_argument",
        "TF.js Conv2DTranspose.call never passes dilationRate to conv2dTranspose",
    ),
    refused(
        "Resizing",
        {},
        (8, 8, 2),
        "unsupported_value",
        f"{TFJS_SRC}layers/preprocessing/image_resizing.ts passes alignCorners=!cropToAspectRatio to "
        "image.resizeBilinear and never crops; Keras resizes with half-pixel centers",
        label="interpolation=bilinear",
    ),
    refused(
        "Resizing",
        {"interpolation": "nearest"},
        (8, 8, 2),
        "unsupported_value",
        f"{TFJS_SRC}layers/preprocessing/image_resizing.ts resizes nearest with alignCorners=true; "
        "Keras with half-pixel centers",
    ),
    refused(
        "RandomWidth",
        {},
        IMG,
        "unsupported_value",
        f"{TFJS_SRC}layers/preprocessing/random_width.ts RandomWidth.call resizes whatever `training` is; "
        "Keras returns the input unchanged at inference",
        **only(TFK, "Keras 3 has no RandomWidth"),
    ),
    # Keras 3 Bidirectional forces zero_output_for_mask=True on a wrapped RNN returning sequences; TF.js
    # repeats the last output on masked steps instead.
    graph(
        b.embedding_mask_bidirectional,
        ["Embedding", "Bidirectional", "LSTM"],
        inputs=tokens(6),
        **only(K3, "tf_keras computes this as TF.js does: certified in the graph tier"),
        name="embedding_mask_bidirectional[flavour=keras3]",
        tier="reject",
        expect=reject(
            "ignored_argument",
            "Keras 3 zero-fills masked steps of a Bidirectional RNN's sequence output "
            "(zero_output_for_mask=True); TF.js repeats the last output",
        ),
    ),
    Case(
        name="EfficientNetB0[32x32x3]",
        tier="reject",
        build=App("EfficientNetB0", (32, 32, 3)),
        layer_classes=("Normalization", "Rescaling"),
        expect=reject("unknown_layer", "EfficientNet starts with a Normalization layer, which TF.js does not have"),
        slow=True,
    ),
]
