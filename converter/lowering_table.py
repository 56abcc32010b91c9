"""Exact lowerings: Keras constructs TF.js 4.22 lacks or computes wrongly, rewritten into layers it runs right.

One entry per construct: what it is, what replaces it, and why the replacement computes the same function
(up to float32 rounding, measured by the reference suite on cpu, wasm and webgl). `converter/lowering.py`
applies them; `training_exact` says whether gradients also flow the same way (a rewrite that adds zero
weights trains them, so a model that uses one converts uncompiled, with a reason). Names: the user's layer
keeps its name on the layer that holds its weights (or on the last of the chain); the layers added are
called `<name>__<role>`, and the report traces each back to the user's layer.
"""

from __future__ import annotations

import dataclasses

ZERO_WEIGHTS = "it adds weights held at zero that training would move"


@dataclasses.dataclass(frozen=True)
class Lowering:
    construct: str
    replacement: str
    why_exact: str
    training_exact: bool = True
    why_not_for_training: str = ""  # when training_exact is False: what TF.js would train differently


LOWERINGS = {
    "global_pooling_keepdims": Lowering(
        "GlobalAveragePooling1D/2D, GlobalMaxPooling1D/2D with keepdims=True (TF.js ignores keepdims)",
        "the same pooling, then RepeatVector(1) (1D); RepeatVector(1) + TimeDistributed(RepeatVector(1)) (2D)",
        "the pooled values are moved into size-1 axes: no arithmetic",
    ),
    "global_pooling_3d": Lowering(
        "GlobalAveragePooling3D, GlobalMaxPooling3D (no TF.js class)",
        "TimeDistributed(GlobalPooling2D) over the first spatial axis, then GlobalPooling1D",
        "max is the max of maxes; the mean of equal-size means is the mean (float32 rounding only)",
    ),
    "global_pooling_1d_channels_first": Lowering(
        "GlobalAveragePooling1D/GlobalMaxPooling1D with data_format=channels_first (TF.js pools axis 1)",
        "Permute([2, 1]), then the channels_last pooling",
        "the same values are reduced, after a transpose",
    ),
    "subtract": Lowering(
        "Subtract (no TF.js class)",
        "Rescaling(scale=-1) on the second input, then Add",
        "IEEE 754 defines a - b as a + (-b), and x * -1 + 0 is exactly -x",
    ),
    "identity": Lowering("Identity (no TF.js class)", "Activation('linear')", "linear returns its input"),
    "sequence_2d": Lowering(
        "ZeroPadding1D, Cropping1D, UpSampling1D (no TF.js class)",
        "TimeDistributed(RepeatVector(1)), the 2D layer on the time axis, TimeDistributed(Flatten)",
        "padding, cropping and nearest repeats move data without arithmetic",
    ),
    "conv_1d_as_2d": Lowering(
        "SeparableConv1D, Conv1DTranspose (no TF.js class)",
        "Reshape to (time, 1, channels), the 2D convolution with a (k, 1) kernel, Reshape back",
        "the same sums over the same taps; the kernels gain a size-1 axis",
    ),
    "causal_conv_1d": Lowering(
        "Conv1D with padding='causal' (TF.js throws)",
        "ZeroPadding2D of dilation * (kernel - 1) steps on the left of the time axis, then Conv1D 'valid'",
        "Keras pads exactly so before a valid convolution",
    ),
    "channels_first_conv": Lowering(
        "Conv1D channels_first (TF.js returns channels_last), SeparableConv2D channels_first (TF.js adds the "
        "bias on the height axis)",
        "Permute to channels_last, the channels_last convolution, Permute back",
        "the same convolution of transposed data",
    ),
    "relu_slope": Lowering(
        "ReLU with negative_slope or threshold (TF.js ignores both)",
        "LeakyReLU(alpha); or ThresholdedReLU / ReLU(max_value) plus a Rescaling-ReLU-Rescaling branch, added",
        "Keras's own formula, term by term: relu part - slope * relu(-x + threshold)",
    ),
    "leaky_relu_activation": Lowering(
        "the leaky_relu activation (no TF.js activation; Keras's slope is 0.2, TF.js LeakyReLU's default 0.3)",
        "a LeakyReLU layer with alpha float32(0.2) after the layer",
        "the same function, with the slope rounded to float32 as Keras's",
    ),
    "hard_sigmoid_keras3": Lowering(
        "Keras 3's hard_sigmoid activation, relu6(x + 3) / 6 (TF.js's hard_sigmoid is clip(0.2x + 0.5))",
        "Rescaling(offset=3), ReLU(max_value=6), Rescaling(scale=1/6)",
        "the same operations; x * (1/6) equals Keras's x / 6 as its graph computes it (measured bitwise)",
    ),
    "hard_silu": Lowering(
        "the hard_silu (hard_swish) activation (no TF.js activation)",
        "x multiplied by the hard_sigmoid chain above",
        "x * hard_sigmoid(x), within 2 ulp of Keras's own graph, which reassociates",
    ),
    "softmax_axis": Lowering(
        "Softmax over an axis other than the last (TF.js throws)",
        "Permute the axis last, Softmax(-1), Permute back",
        "TensorFlow's softmax transposes the same way",
    ),
    "dilated_kernel": Lowering(
        "DepthwiseConv2D and Conv2DTranspose with dilation_rate > 1 (TF.js ignores dilation)",
        "the same layer with the kernel dilated: zeros inserted between its taps",
        "a dilated convolution is the convolution with the dilated kernel; the added products are 0 * x",
        training_exact=False,
        why_not_for_training=ZERO_WEIGHTS,
    ),
    "grouped_conv": Lowering(
        "Conv1D/2D/3D with groups > 1 (TF.js ignores groups)",
        "the same convolution with a block-diagonal kernel",
        "each group sees only its channels; the added products are 0 * x",
        training_exact=False,
        why_not_for_training=ZERO_WEIGHTS,
    ),
    "batch_norm_axis": Lowering(
        "BatchNormalization over an axis other than the last (TF.js cpu and wasm cycle its parameters over "
        "the flat data)",
        "Permute the axis last, BatchNormalization(axis=-1), Permute back",
        "the same normalization of transposed data",
    ),
    "batch_norm_rank5": Lowering(
        "BatchNormalization on a rank-5 input (TF.js throws)",
        "TimeDistributed(BatchNormalization) over the first spatial axis (a Permute first when channels_first)",
        "each slice is normalized with the same per-channel parameters",
    ),
    "center_crop": Lowering(
        "CenterCrop (TF.js rewrites the shape of the tensor it is given, and crops one column off when the "
        "width difference is 1)",
        "Cropping2D with Keras's offsets",
        "the same slice",
    ),
    "category_encoding_copy": Lowering(
        "CategoryEncoding (TF.js rewrites the shape of the tensor it is given)",
        "an identity Permute before it, so it gets a tensor of its own",
        "the identity transpose copies; nothing is computed",
    ),
    "depthwise_conv": Lowering(
        "Conv2D with one input channel per group (groups = input channels; ConvNeXt's 7x7 convolutions)",
        "DepthwiseConv2D(depth_multiplier=filters/groups), the kernel (kh, kw, 1, F) reshaped to (kh, kw, C, F/C)",
        "group g's filters g*m..g*m+m-1 see channel g alone, as depthwise output channel g*m+j does: the same "
        "products and sums (a block-diagonal kernel, grouped_conv, would be C times larger)",
        training_exact=False,
        why_not_for_training="its kernel is written reshaped, for a DepthwiseConv2D",
    ),
    "normalization": Lowering(
        "Normalization (no TF.js class): (x - mean) / max(sqrt(var), 1e-7), or with invert=True "
        "mean + x * max(sqrt(var), 1e-7); mean and variance from its weights (adapted) or its config",
        "Rescaling(scale=1, offset=-mean), then Rescaling(scale=1/std); invert: Rescaling(scale=std, offset=mean); "
        "per-channel lists (nested over the kept axes) TF.js broadcasts as Keras does",
        "x * 1 + (-mean) is Keras's x - mean bit for bit, and x * float32(1/std) is within an ulp of x / std "
        "(std = max(sqrt(var), 1e-7) in float32, a zero-variance channel included); invert is Keras's own two "
        "operations. A BatchNormalization(epsilon=0, moving_mean=mean, moving_variance=1, gamma=1/std) is as "
        "close (both measured within 1.1e-7 relative of Keras on cpu, wasm and webgl), but holds weights that "
        "TF.js's fit would normalize with batch statistics: the Rescaling form holds none",
        training_exact=False,
        why_not_for_training="its statistics become constants of Rescaling layers",
    ),
    "group_normalization": Lowering(
        "GroupNormalization (no TF.js class)",
        "Reshape to (spatial, groups, channels/group), LayerNormalization over all but the groups axis "
        "(TF.js takes an axis list), Reshape back, Rescaling(scale=gamma, offset=beta) per channel; "
        "channels_first: (groups, channels/group x spatial), normalized over the last axis",
        "the same mean and variance per (sample, group), (x - mean) * rsqrt(var + eps), then gamma and beta: "
        "Keras folds them into one multiply-add, which reassociates within float32 rounding. Needs the static "
        "input shape (refused otherwise)",
        training_exact=False,
        why_not_for_training="its gamma and beta become constants of a Rescaling",
    ),
    "unit_normalization": Lowering(
        "UnitNormalization (no TF.js class): x * rsqrt(sum(x^2)) over the last axis",
        "LayerNormalization (no center, no scale) of Concatenate(x, -x), the first half kept (Reshape, "
        "Cropping2D, Reshape), then Rescaling(1/sqrt(C))",
        "concat(x, -x) has mean 0 and variance mean(x^2) = sum(x^2)/C, so LayerNormalization gives "
        "x * rsqrt(sum(x^2)/C + eps); with eps = 1e-24/C and 1/sqrt(C) that is x * rsqrt(sum(x^2) + 1e-24). "
        "Keras clamps instead (Keras 3: rsqrt at 1e12; tf_keras: the sum at 1e-12): the two differ only for "
        "inputs of norm below 1e-8 (Keras 3) or 1e-6 (tf_keras). Needs the static input shape",
        training_exact=False,
        why_not_for_training="it is computed through Concatenate(x, -x) and a LayerNormalization, whose gradients "
        "are not certified",
    ),
    "rms_normalization": Lowering(
        "RMSNormalization (no TF.js class): x * rsqrt(mean(x^2) + eps) * scale over the last axis",
        "LayerNormalization (no center, no scale, the same eps) of Concatenate(x, -x), the first half kept, "
        "then Rescaling(scale) per channel",
        "concat(x, -x) has mean 0 and variance mean(x^2): LayerNormalization computes Keras's formula with "
        "its own epsilon, term by term. Needs the static input shape",
        training_exact=False,
        why_not_for_training="its scale becomes a constant of a Rescaling",
    ),
    "layer_scale": Lowering(
        "ConvNeXt's LayerScale (keras.applications.convnext; TF.js has no such class): x * gamma",
        "Rescaling(scale=gamma) per channel, gamma read from the file",
        "the same product over the last axis",
        training_exact=False,
        why_not_for_training="gamma becomes a constant of a Rescaling",
    ),
    "custom_scale": Lowering(
        "InceptionResNetV2's CustomScaleLayer (keras.applications.inception_resnet_v2): x + y * scale",
        "Rescaling(scale) on y, then Add",
        "the same product, then the same sum",
        training_exact=False,
        why_not_for_training="its gradients through Rescaling and Add are not certified",
    ),
    "augmentation": Lowering(
        "image augmentation layers TF.js lacks (every Random* layer of Keras 3 and tf_keras, AugMix, CutMix, "
        "Equalization, MixUp, RandAugment, Solarization)",
        "removed; RandomCrop only when the file shows its input already has its height and width",
        "each returns its input, cast to float, when called with training=False (checked in Keras 3.15 and "
        "tf_keras 2.21); a call with training=True, or a model with an integer input, is refused. AutoContrast "
        "acts at inference and stays refused; RandomWidth is never mapped to TF.js's, which resizes",
        training_exact=False,
        why_not_for_training="the layers are removed, where Keras augments while training",
    ),
    "inference_identity": Lowering(
        "SpatialDropout2D, SpatialDropout3D, ActivityRegularization (no TF.js class)",
        "removed",
        "the identity at inference (dropout only drops, and the activity loss only adds to the loss, in training)",
        training_exact=False,
        why_not_for_training="the layers are removed, where Keras drops out or adds the activity loss while training",
    ),
    "tf_op_lambda": Lowering(
        "tf_keras TFOpLambda layers of a TensorFlow function other than arithmetic (RegNet's `tf.nn.silu`); the "
        "config names the function, as data (arithmetic: scalar_op and tensor_op)",
        "relu, relu6, sigmoid, tanh, silu, gelu, softmax, elu, selu, softplus, softsign: Activation; reshape: "
        "Reshape; transpose keeping the batch axis: Permute; concat: Concatenate. Any other function is refused, "
        "by name",
        "the same function (tf.nn.silu is TF.js's swish, x * sigmoid(x)); a reshape's -1 is resolved from the "
        "static shape, never written (TF.js would keep it in its static shape)",
        training_exact=False,
        why_not_for_training="no train case certifies gradients through these Activation, Reshape, Permute "
        "and Concatenate layers in place of TensorFlow's functions",
    ),
    "tf_op_slice": Lowering(
        "tf_keras SlicingOpLambda `x[:, a:b]` (rank 3) and `x[:, a:b, c:d]` (rank 4): contiguous slices of the "
        "axes between the batch and the last",
        "Cropping2D (rank 4), or the sequence_2d chain around Cropping2D (rank 3)",
        "the same elements, moved without arithmetic; bounds counted from the end need the static shape",
        training_exact=False,
        why_not_for_training="its gradients through Cropping2D are not certified",
    ),
    "scalar_op": Lowering(
        "Keras 3 tensor arithmetic with a constant (x + c, x - c, x * c, x / c; as in MobileNetV3's hard_sigmoid), "
        "and tf_keras's TFOpLambda of it, whose constant may also be one per channel (EfficientNet's ImageNet "
        "preprocessing)",
        "Rescaling(scale, offset), with lists over the last axis for a per-channel constant",
        "x * 1 + c and x * c + 0 are exactly x + c and x * c; x / c becomes x * (1/c), as Keras's graph computes. "
        "A per-channel constant needs the input's last dimension (one that would broadcast the input to another "
        "shape is refused)",
    ),
    "multi_head_attention": Lowering(
        "MultiHeadAttention on rank-3 inputs, without masks or returned scores (TF.js 4.22 registers no such "
        "class): self- and cross-attention, a separate key, use_bias, output_shape, dropout (identity at "
        "inference), use_causal_mask with static lengths",
        "per head: Dense projections with the head's slice of the query, key and value kernels, Dot(axes=[2, 2]) "
        "for the scores, Rescaling(1/sqrt(key_dim)), Softmax, Dot(axes=[2, 1]) with the values; Concatenate "
        "over heads, then a Dense with the output kernel reshaped from [heads, value_dim, E] to "
        "[heads*value_dim, E]; a causal mask as a constant bias added to the scores",
        "the same products and sums as Keras's einsums, head by head; the scale is applied where Keras applies "
        "it (tf_keras, and Keras 3 with dropout: the query; Keras 3 otherwise: the scores); a masked score gets "
        "Keras's large negative (-1e9, or Keras 3's -0.7 * float32 max), whose exp the softmax makes exactly 0 "
        "as Keras's does",
        training_exact=False,
        why_not_for_training="its kernels are split per head and its causal mask is built from constant "
        "weights, which TF.js would train",
    ),
    "attention": Lowering(
        "Attention (Luong) without masks or returned scores, score_mode dot or concat, use_scale; "
        "use_causal_mask with static lengths (TF.js 4.22 has no such class)",
        "dot: Dot(axes=[2, 2]), Rescaling(scale); concat: Reshape query and key to [T, 1, D] and [1, S, D], Add "
        "(broadcast), Rescaling(scale), tanh, a Dense(1) of ones, Reshape to [T, S], Rescaling(concat weight); "
        "then Softmax and Dot(axes=[2, 1]) with the values",
        "Keras's formula term by term; its scalar weights become the Rescaling's constants; a causal mask is "
        "Keras's -1e9 added to the masked scores",
        training_exact=False,
        why_not_for_training="its scalar weights become constants of the config, which TF.js does not train",
    ),
    "additive_attention": Lowering(
        "AdditiveAttention (Bahdanau) without masks or returned scores; use_causal_mask with static lengths "
        "(TF.js 4.22 has no such class)",
        "Reshape query and key to [T, 1, D] and [1, S, D], Add (broadcast), tanh, a Dense(1) whose kernel is the "
        "scale vector (ones without use_scale), Reshape to [T, S], Softmax, Dot(axes=[2, 1]) with the values",
        "sum(scale * tanh(q + k)) is the Dense's dot product of tanh(q + k) with the scale vector",
        training_exact=False,
        why_not_for_training="the layer's weight becomes a Dense kernel, and without use_scale a constant one "
        "TF.js would train",
    ),
    "einsum_dense": Lowering(
        "EinsumDense whose equation contracts only the input's last axis with one kernel axis ('ab,bc->ac', "
        "'abc,cd->abd', '...b,bc->...c', 'abc,cde->abde'), bias over kernel axes only (TF.js 4.22 has no such "
        "class)",
        "Dense with the kernel transposed and reshaped to [input dim, product of the other kernel axes] (bias "
        "broadcast and flattened alike), then Reshape and Permute to the equation's output axes",
        "the same products summed over the same axis; reshaping and permuting move values without arithmetic",
        training_exact=False,
        why_not_for_training="a bias over some output axes is written broadcast, as separate weights TF.js "
        "would train apart",
    ),
    "tensor_op": Lowering(
        "Keras 3 arithmetic of two tensors (x + y, x - y, x * y), and keras.ops.relu6; tf_keras's TFOpLambda of "
        "the same arithmetic (ConvNeXt's and RegNet's `x + skip`, RegNet's `tf.math.multiply(x, y)`)",
        "Add, Add with Rescaling(-1), Multiply; ReLU(max_value=6)",
        "the same operations",
    ),
}
