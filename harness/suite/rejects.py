"""The `reject` tier: models the converter must refuse, each with the reason code it must give."""

from __future__ import annotations

from harness.suite import builders as b
from harness.suite.builders import Spec
from harness.suite.case import Case
from harness.suite.declare import (
    IMG,
    K3,
    SEQ,
    SEQ_ATTN,
    TFJS_SRC,
    TFK,
    UNKNOWN,
    VOL,
    attending,
    graph,
    only,
    refused,
    refused_graph,
    reject,
    tokens,
)

NEEDS_COMPANION = "needs_companion"
REJECT_CASES = [
    refused_graph(b.lambda_layer, ["Lambda"], "needs_python_code", "a Lambda holds Python bytecode"),
    refused_graph(
        b.custom_layer,
        ["Dense", "Scale"],
        "needs_python_code",
        "a registered custom layer runs Python code TF.js does not have",
    ),
    refused_graph(
        b.keras_op_unlowerable,
        ["Dense", "TFOpLambda"],
        "needs_python_code",
        "exponential of a tensor: a TFOpLambda (tf_keras) or a Keras 3 op node (Exp) no TF.js layer computes",
    ),
    refused("ZeroPadding3D", {}, VOL, "unknown_layer", UNKNOWN),
    refused("Cropping3D", {}, VOL, "unknown_layer", UNKNOWN),
    refused("UpSampling3D", {}, VOL, "unknown_layer", UNKNOWN),
    # what only the companion module runs is refused by default, naming the option (the companion tier certifies
    # each converted with it)
    refused(
        "GRU",
        {"reset_after": True},
        SEQ,
        NEEDS_COMPANION,
        "TF.js GRUCell throws on reset_after=true (the Keras default); the companion module runs it",
        label="reset_after=True,without_companion",
    ),
    refused("ELU", {"alpha": 0.5}, (3, 5), "unsupported_value", "TF.js ELU throws on alpha other than 1.0"),
    # constructs the lowering stage covers, in forms it does not lower (converter/lowering.py refuses)
    refused("Conv1DTranspose", {"dilation_rate": 2}, (5, 3), "not_lowerable", "a dilated Conv1DTranspose"),
    refused("GlobalMaxPooling3D", {"keepdims": True}, VOL, "not_lowerable", "keepdims of a rank-5 pooling"),
    # attention in the forms the lowering does not cover (converter/lowering/attention.py refuses them by name)
    refused_graph(
        b.mha_masked,
        ["Embedding", "MultiHeadAttention"],
        "not_lowerable",
        "a Keras mask (Embedding(mask_zero=True)) reaches MultiHeadAttention, which applies it to its scores",
    ),
    attending(
        "MultiHeadAttention",
        {},
        [SEQ_ATTN],
        "",
        {"return_attention_scores": True},
        tier="reject",
        expect=reject("not_lowerable", "returned attention scores: a second output no TF.js layer computes"),
    ),
    refused(
        "EinsumDense",
        {"equation": "abc,bd->acd", "output_shape": (8, 3)},
        SEQ_ATTN,
        "not_lowerable",
        "an EinsumDense contracting an axis other than the input's last",
        label="abc,bd_to_acd",
    ),
    refused(
        "RandomCrop",
        {"height": 4, "width": 4},
        IMG,
        "not_lowerable",
        "RandomCrop resizes a 6x6 input to 4x4 at inference: not the identity the lowering removes",
    ),
    refused(
        "AutoContrast",
        {},
        IMG,
        "unknown_layer",
        "AutoContrast is not random: it rescales every image to its own range at inference too",
        **only(K3, "tf_keras has no AutoContrast"),
    ),
    Case(
        name="augmentation_in_training_mode",
        tier="reject",
        build=b.augmentation_in_training_mode,
        layer_classes=("RandomWidth",),
        expect=reject(
            "not_lowerable",
            "an augmentation layer called with training=True augments at inference too; the converter removes "
            "augmentation only where Keras passes the input through (and never maps to TF.js's RandomWidth, "
            f"which resizes whatever `training` is: {TFJS_SRC}layers/preprocessing/random_width.ts)",
        ),
        **only(TFK, "Keras 3 has no RandomWidth"),
    ),
    Case(
        name="group_normalization_after_dense",
        tier="reject",
        build=b.group_normalization_after_dense,
        layer_classes=("Dense", "GroupNormalization"),
        expect=reject(
            "not_lowerable",
            "the lowering reshapes to the input's static shape, which a tf_keras file records only for an input",
        ),
        **only(TFK, "a Keras 3 file records every layer's input shape: lowered (GroupNormalization cases)"),
    ),
    refused_graph(
        b.relu_slope_sequential,
        ["ReLU"],
        "not_lowerable",
        "ReLU(negative_slope, threshold) lowers to two branches added, which a Sequential cannot hold",
    ),
    # TF.js's rank limits: the converter follows ranks from the inputs and refuses what TF.js would throw on
    refused(
        "Dot",
        {"axes": -1},
        ((2, 3, 4), (2, 3, 4)),
        "rank_limit",
        "tfjs-layers merge.ts: Dot supports inputs of rank <= 3 only (TF.js throws at predict)",
    ),
    # a mask reaching a layer TF.js computes without it (converter/masks.py)
    refused(
        "Masking",
        {},
        (7, 1),
        "ignores_mask",
        f"{TFJS_SRC}layers/pooling.ts GlobalAveragePooling1D ignores the mask: it averages every step where "
        "Keras averages the unmasked ones (measured: max_abs 0.8)",
        label="into=GlobalAveragePooling1D",
        before=(Spec("ReLU"),),
        after=(Spec("GlobalAveragePooling1D"),),
    ),
    refused(
        "Activation",
        {"activation": "exponential"},
        (3, 5),
        "unknown_activation",
        "TF.js has no exponential activation",
        label="exponential",
    ),
    refused(
        "UpSampling2D",
        {"interpolation": "bilinear"},
        (3, 3, 2),
        NEEDS_COMPANION,
        f"{TFJS_SRC}layers/convolutional.ts UpSampling2D calls image.resizeBilinear without half-pixel "
        "centers; Keras resizes with tf.image.resize (half-pixel centers); the companion module runs it",
        label="interpolation=bilinear,without_companion",
    ),
    refused(
        "Resizing",
        {},
        (8, 8, 2),
        NEEDS_COMPANION,
        f"{TFJS_SRC}layers/preprocessing/image_resizing.ts passes alignCorners=!cropToAspectRatio to "
        "image.resizeBilinear and never crops; Keras resizes with half-pixel centers; the companion module runs it",
        label="interpolation=bilinear,without_companion",
    ),
    refused(
        "Resizing",
        {"interpolation": "nearest"},
        (8, 8, 2),
        NEEDS_COMPANION,
        f"{TFJS_SRC}layers/preprocessing/image_resizing.ts resizes nearest with alignCorners=true; "
        "Keras with half-pixel centers; the companion module runs it",
        label="interpolation=nearest,without_companion",
    ),
    refused(
        "Resizing",
        {"antialias": True},
        (8, 8, 2),
        "unsupported_value",
        "neither TF.js nor the companion module resizes with antialiasing",
        **only(K3, "tf_keras's Resizing has no antialias"),
    ),
    refused(
        "Discretization",
        {"bin_boundaries": [0.0, 1.0]},
        (4,),
        NEEDS_COMPANION,
        "TF.js has no Discretization layer; the companion module runs it",
        label="without_companion",
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
]
