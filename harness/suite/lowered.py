"""The `lowered` tier: Keras constructs TF.js 4.22 lacks or computes wrongly, which the converter rewrites
into layers TF.js runs as Keras does (converter/lowering_table.py). Each case names the lowerings it must
go through; it passes only if the converter applied exactly those and TF.js then matches Keras within the
ordinary tolerance (no case here loosens it)."""

from __future__ import annotations

from harness.suite import builders as b
from harness.suite.builders import Spec
from harness.suite.declare import (
    CF,
    IMG,
    IMG_CF,
    IMG_CF_CONV,
    K3,
    QUANTIZED,
    SEQ,
    SEQ_ATTN,
    TFK,
    VOL,
    VOL_CF,
    WEBGPU_INT_CATEGORY_ENCODING,
    activation,
    attending,
    graph,
    layer,
    only,
    tokens,
)


def lowered(cls, options, shape, rules, **kw):
    return layer(cls, options, shape, tier="lowered", lowered=rules.split(), **kw)


def einsum(equation: str, output_shape, bias_axes=None, shape=SEQ_ATTN, label="", **kw):
    options = {"equation": equation, "output_shape": output_shape, "bias_axes": bias_axes}
    label = equation.replace("->", "_to_") + (f",bias_axes={bias_axes}" if bias_axes else "") + label
    return lowered("EinsumDense", options, shape, "einsum_dense", label=label, **kw)


KERAS3_ACTIVATION = "tf_keras has no such activation string"

LOWERED_CASES = [
    # global pooling
    lowered("GlobalAveragePooling2D", {"keepdims": True}, IMG, "global_pooling_keepdims"),
    lowered("GlobalMaxPooling2D", {"keepdims": True, "data_format": CF}, IMG_CF, "global_pooling_keepdims"),
    lowered("GlobalAveragePooling1D", {"keepdims": True}, SEQ, "global_pooling_keepdims"),
    lowered("GlobalMaxPooling1D", {"keepdims": True, "data_format": CF}, (3, 6), "global_pooling_keepdims"),
    lowered("GlobalAveragePooling1D", {"data_format": CF}, (3, 6), "global_pooling_1d_channels_first"),
    lowered("GlobalAveragePooling3D", {}, VOL, "global_pooling_3d"),
    lowered("GlobalMaxPooling3D", {}, VOL, "global_pooling_3d"),
    lowered("GlobalAveragePooling3D", {"data_format": CF}, VOL_CF, "global_pooling_3d"),
    # layers TF.js lacks
    lowered("Subtract", {}, ((4,), (4,)), "subtract"),
    lowered("Identity", {}, (4,), "identity"),
    lowered("ZeroPadding1D", {}, SEQ, "sequence_2d"),
    lowered("ZeroPadding1D", {"padding": (1, 2)}, SEQ, "sequence_2d"),
    lowered("Cropping1D", {"cropping": (2, 1)}, SEQ, "sequence_2d"),
    lowered("UpSampling1D", {"size": 3}, SEQ, "sequence_2d"),
    lowered("SeparableConv1D", {}, (8, 3), "conv_1d_as_2d", quantized=QUANTIZED),
    lowered("SeparableConv1D", {"strides": 2, "padding": "same", "depth_multiplier": 2}, (8, 3), "conv_1d_as_2d"),
    lowered("SeparableConv1D", {"dilation_rate": 2}, (8, 3), "conv_1d_as_2d"),
    lowered("Conv1DTranspose", {}, (5, 3), "conv_1d_as_2d"),
    lowered("Conv1DTranspose", {"strides": 2, "padding": "same"}, (5, 3), "conv_1d_as_2d"),
    # arguments TF.js rejects or ignores
    lowered("Conv1D", {"padding": "causal"}, (8, 3), "causal_conv_1d"),
    lowered("Conv1D", {"padding": "causal", "dilation_rate": 2}, (8, 3), "causal_conv_1d"),
    lowered("Conv1D", {"padding": "causal", "strides": 2}, (9, 3), "causal_conv_1d"),
    lowered("Conv1D", {"data_format": CF}, (3, 9), "channels_first_conv"),
    lowered("SeparableConv2D", {"data_format": CF}, IMG_CF_CONV, "channels_first_conv"),
    lowered("Conv2D", {"groups": 2}, (6, 6, 6), "grouped_conv"),
    lowered("Conv1D", {"groups": 3, "filters": 6}, (8, 6), "grouped_conv"),
    lowered("DepthwiseConv2D", {"dilation_rate": 2}, (8, 8, 2), "dilated_kernel"),
    lowered("Conv2DTranspose", {"dilation_rate": 2}, (4, 4, 2), "dilated_kernel"),
    lowered("Softmax", {"axis": 1}, (3, 5), "softmax_axis"),
    lowered("Softmax", {"axis": 2}, (3, 4, 5), "softmax_axis"),
    lowered("BatchNormalization", {"axis": 1}, IMG_CF, "batch_norm_axis"),
    lowered("BatchNormalization", {"axis": 1}, (3, 5), "batch_norm_axis", label="axis=1,rank3_input"),
    lowered("BatchNormalization", {}, VOL, "batch_norm_rank5", label="rank5_input"),
    lowered("BatchNormalization", {"axis": 1}, VOL_CF, "batch_norm_rank5", label="axis=1,rank5_input"),
    # activations
    lowered("ReLU", {"negative_slope": 0.1}, (3, 5), "relu_slope"),
    lowered("ReLU", {"threshold": 0.5}, (3, 5), "relu_slope"),
    lowered("ReLU", {"negative_slope": 0.1, "threshold": 0.5}, (3, 5), "relu_slope"),
    lowered("ReLU", {"negative_slope": 0.2, "max_value": 1.5}, (3, 5), "relu_slope"),
    lowered("ReLU", {"threshold": 0.5, "max_value": 1.5}, (3, 5), "relu_slope"),
    activation("leaky_relu", tier="lowered", lowered=["leaky_relu_activation"], **only(K3, KERAS3_ACTIVATION)),
    activation("hard_silu", tier="lowered", lowered=["hard_silu"], **only(K3, KERAS3_ACTIVATION)),
    activation(
        "hard_sigmoid",
        label="hard_sigmoid,flavour=keras3",
        tier="lowered",
        lowered=["hard_sigmoid_keras3"],
        **only(K3, "tf_keras's hard_sigmoid is TF.js's: certified in the layer tier"),
    ),
    lowered("Dense", {"activation": "hard_silu"}, (5,), "hard_silu", **only(K3, KERAS3_ACTIVATION)),
    lowered("Conv2D", {"activation": "leaky_relu"}, IMG, "leaky_relu_activation", **only(K3, KERAS3_ACTIVATION)),
    # preprocessing layers TF.js runs on a tensor it then rewrites the shape of
    lowered("CenterCrop", {}, (8, 8, 3), "center_crop"),
    lowered("CenterCrop", {"height": 5, "width": 5}, (8, 6, 3), "center_crop"),
    *[
        lowered(
            "CategoryEncoding",
            {"output_mode": mode},
            (n,),
            "category_encoding_copy",
            dtype="int32",
            inputs=tokens(n, 6),
            known=(WEBGPU_INT_CATEGORY_ENCODING,),
        )
        for mode, n in (("one_hot", 1), ("multi_hot", 4), ("count", 4))
    ],
    # attention (sequence length 5, features 8, 2 heads)
    attending("MultiHeadAttention", {}, [SEQ_ATTN], "multi_head_attention", label="self"),
    attending("MultiHeadAttention", {"value_dim": 3, "output_shape": 6}, [SEQ_ATTN, (4, 6)], "multi_head_attention"),
    attending(
        "MultiHeadAttention",
        {"num_heads": 3, "key_dim": 2, "use_bias": False, "output_shape": (2, 3)},
        [SEQ_ATTN, (4, 6), (4, 5)],
        "multi_head_attention",
        label="key,use_bias=False,output_shape=(2,3)",
    ),
    attending("MultiHeadAttention", {}, [SEQ_ATTN], "multi_head_attention", {"use_causal_mask": True}),
    # Keras 3 with dropout computes without dot_product_attention: the query is scaled, the mask is -1e9
    attending("MultiHeadAttention", {"dropout": 0.1}, [SEQ_ATTN], "multi_head_attention", {"use_causal_mask": True}),
    attending("Attention", {}, [SEQ_ATTN, (4, 8)], "attention"),
    attending("Attention", {"use_scale": True}, [SEQ_ATTN, (4, 6), (4, 8)], "attention", label="use_scale=True,key"),
    attending("Attention", {"use_scale": True}, [SEQ_ATTN], "attention", {"use_causal_mask": True}),
    attending("Attention", {"score_mode": "concat", "use_scale": True}, [SEQ_ATTN, (4, 8)], "attention"),
    attending("Attention", {"score_mode": "concat"}, [SEQ_ATTN], "attention", {"use_causal_mask": True}),
    attending("AdditiveAttention", {}, [SEQ_ATTN, (4, 8)], "additive_attention"),
    attending("AdditiveAttention", {"use_scale": False}, [SEQ_ATTN], "additive_attention", {"use_causal_mask": True}),
    einsum("ab,bc->ac", 3, shape=(8,)),
    einsum("abc,cd->abd", (None, 3), "d"),
    einsum("abc,cde->abde", (None, 2, 3), "de"),
    einsum("abc,ced->adbe", (3, None, 2), "e"),
    einsum("...b,bc->...c", 4, "c"),
    # after a Dense, tf_keras records no sequence length: the split is per step, and Flatten still builds
    einsum(
        "abc,cde->abde",
        (None, 2, 3),
        label=",between_dense_and_flatten",
        before=(b.Spec("Dense", {"units": 8}),),
        after=(b.Spec("Flatten"),),
    ),
    # Keras 3 tensor arithmetic (tf_keras writes a TFOpLambda: refused in the reject tier)
    graph(
        b.keras_ops,
        ["Dense", "Rescaling", "Add", "Multiply", "ReLU"],
        tier="lowered",
        lowered=["scalar_op", "tensor_op", "subtract"],
        **only(K3, "tf_keras writes tensor arithmetic as TFOpLambda layers, which the reject tier refuses"),
    ),
    # normalization layers TF.js lacks: statistics and scales from the file become Rescaling constants
    graph(b.normalization_adapted, ["Normalization", "Dense"], tier="lowered", lowered=["normalization"]),
    lowered("Normalization", {"mean": (0.5, -1.0, 2.0), "variance": (4.0, 1.0, 0.25)}, IMG, "normalization"),
    lowered(
        "Normalization",
        {"axis": (1, 2), "mean": (1.0, 2.0, 3.0), "variance": (1.0, 4.0, 9.0)},
        (4, 3, 2),
        "normalization",
    ),
    lowered("GroupNormalization", {}, (6, 6, 4), "group_normalization"),
    lowered("GroupNormalization", {"axis": 1}, (4, 3, 5), "group_normalization"),
    lowered("GroupNormalization", {"groups": 3}, (5, 6), "group_normalization"),
    lowered("UnitNormalization", {}, (3, 5), "unit_normalization"),
    lowered("UnitNormalization", {}, (6,), "unit_normalization", label="rank2_input"),
    lowered("RMSNormalization", {}, (3, 5), "rms_normalization", **only(K3, "tf_keras has no RMSNormalization")),
    graph(
        b.application_layers,
        ["Conv2D", "LayerScale", "CustomScaleLayer"],
        tier="lowered",
        lowered=["layer_scale", "custom_scale"],
    ),
    # layers that are the identity at inference, removed
    graph(
        b.augmentation_in_model,
        ["RandomCrop", "Sequential", "RandomFlip", "RandomRotation", "RandomWidth", "Rescaling", "Conv2D", "Dense"],
        tier="lowered",
        lowered=["augmentation"],
    ),
    graph(
        b.augmentation_keras3,
        ["RandAugment", "MixUp", "CutMix", "AugMix", "Solarization", "RandomBrightness", "Conv2D"],
        tier="lowered",
        lowered=["augmentation"],
        formats=("keras",),  # Keras 3.15 cannot save RandomBrightness, Solarization and others to .h5 (pickle)
        **only(K3, "tf_keras has none of these layers (its own are in augmentation_in_model)"),
    ),
    lowered(
        "SpatialDropout2D",
        {"rate": 0.5},
        IMG,
        "inference_identity",
        after=(Spec("Conv2D", {"filters": 2, "kernel_size": 1}),),
    ),
    lowered("SpatialDropout3D", {"rate": 0.5}, VOL, "inference_identity", after=(Spec("Dense", {"units": 2}),)),
    lowered("ActivityRegularization", {"l1": 0.01}, (4,), "inference_identity", after=(Spec("Dense", {"units": 2}),)),
    # a grouped convolution with one channel per group: a DepthwiseConv2D, not a channels-times larger kernel
    lowered("Conv2D", {"groups": 4, "filters": 8}, (6, 6, 4), "depthwise_conv"),
    # tf_keras TensorFlow functions on tensors (Keras 3's op nodes: keras_ops below)
    graph(
        b.tf_ops,
        ["TFOpLambda", "SlicingOpLambda", "ReLU", "Dense"],
        tier="lowered",
        lowered=["scalar_op", "tensor_op", "tf_op_lambda", "tf_op_slice"],
        **only(TFK, "Keras 3 writes tensor arithmetic as op nodes (keras_ops), not TFOpLambda layers"),
    ),
    # held-out models: a lowered chain inside a real network must leave shapes TF.js can build the rest from
    graph(
        b.temporal_conv_net,
        ["Cropping1D", "Subtract", "Conv1D", "Add", "Flatten", "Dense"],
        tier="lowered",
        lowered=["sequence_2d", "subtract", "causal_conv_1d"],
    ),
    graph(
        b.segmentation_channels_first,
        ["Conv2D", "BatchNormalization", "SpatialDropout2D", "Conv2DTranspose", "Concatenate", "Softmax"],
        tier="lowered",
        lowered=["batch_norm_axis", "inference_identity", "softmax_axis"],
    ),
    graph(
        b.relu_slope_shared,
        ["Dense", "ReLU"],
        tier="lowered",
        lowered=["relu_slope"],
        **only(K3, "tf_keras's ReLU has negative_slope too, but this case is about reuse: one flavour is enough"),
    ),
]
