"""Tier 3, `app`: `keras.applications` architectures with random weights (nothing is downloaded)."""

from __future__ import annotations

from harness.suite.declare import K3, TFK, app, only

CONV_BN = "Conv2D BatchNormalization Activation"
# Quantized forms (float16, uint16, uint8, a plan) are certified on the four lighter apps, whose layers cover every
# kind the heavier ones hold (convolutions, depthwise and separable, batch normalization, dense); each form of an
# app costs a conversion, a Keras reference with the dequantized weights and three backend runs: the five heavier
# apps' 20 forms took 220 s of make test (measured), for weights of the same kinds. `--quantize_*` on any model
# is certified the same way (tfjs-certify plan, or a case of your own).
FLOAT32 = ()
APP_CASES = [
    # MobileNet pools with GlobalAveragePooling2D(keepdims=True), which TF.js 4.22 ignores: lowered.
    app(
        "MobileNet",
        "Conv2D BatchNormalization ReLU DepthwiseConv2D GlobalAveragePooling2D Dropout Conv2D Reshape Activation",
        lowered=["global_pooling_keepdims"],
    ),
    # MobileNetV3 computes hard_sigmoid as Keras 3 tensor arithmetic and hard_swish as hard_silu: lowered.
    app(
        "MobileNetV3Small",
        "Rescaling Conv2D BatchNormalization Activation DepthwiseConv2D ReLU GlobalAveragePooling2D Multiply Add "
        "Dropout Flatten",
        lowered=["global_pooling_keepdims", "hard_silu", "scalar_op"],
        **only(K3, "tf_keras writes hard_swish as a Multiply, lowered differently: MobileNetV3Small[flavour=tf_keras]"),
    ),
    app("MobileNetV2", "Conv2D BatchNormalization DepthwiseConv2D ReLU ZeroPadding2D Add GlobalAveragePooling2D Dense"),
    app("ResNet50", f"{CONV_BN} ZeroPadding2D MaxPooling2D Add GlobalAveragePooling2D Dense", quantized=FLOAT32),
    app(
        "DenseNet121", f"{CONV_BN} ZeroPadding2D MaxPooling2D AveragePooling2D Concatenate GlobalAveragePooling2D Dense"
    ),
    app("VGG16", "Conv2D MaxPooling2D Flatten Dense", tolerance=None, quantized=FLOAT32),
    app(
        "NASNetMobile",
        f"{CONV_BN} SeparableConv2D ZeroPadding2D Cropping2D MaxPooling2D AveragePooling2D Add "
        "Concatenate GlobalAveragePooling2D Dense",
        quantized=FLOAT32,
    ),
    app(
        "InceptionV3",
        f"{CONV_BN} MaxPooling2D AveragePooling2D Concatenate GlobalAveragePooling2D Dense",
        (75, 75, 3),
        quantized=FLOAT32,
    ),
    app(
        "Xception",
        f"{CONV_BN} SeparableConv2D MaxPooling2D Add GlobalAveragePooling2D Dense",
        (71, 71, 3),
        quantized=FLOAT32,
    ),
]

# The families the suite lacked (issue 18), in float32 for the reason above.
APP_CASES += [
    app(
        "EfficientNetB0",
        f"Rescaling Normalization ZeroPadding2D {CONV_BN} DepthwiseConv2D GlobalAveragePooling2D Reshape Multiply "
        "Dropout Add Dense",
        lowered=["normalization"],
        quantized=FLOAT32,
    ),
    app(
        "EfficientNetV2B0",
        f"Rescaling Normalization {CONV_BN} DepthwiseConv2D GlobalAveragePooling2D Reshape Multiply Dropout Add Dense",
        lowered=["normalization"],
        quantized=FLOAT32,
    ),
    app(
        "ConvNeXtTiny",
        "Normalization Sequential Conv2D LayerNormalization Dense Activation LayerScale Add GlobalAveragePooling2D",
        lowered=["normalization", "depthwise_conv", "layer_scale", "tensor_op"],
        quantized=FLOAT32,
    ),
    app("ResNet50V2", f"ZeroPadding2D {CONV_BN} MaxPooling2D Add GlobalAveragePooling2D Dense", quantized=FLOAT32),
    # Keras 3 writes MobileNetV3's hard_swish as the hard_silu activation, tf_keras as a Multiply: two cases.
    app(
        "MobileNetV3Large",
        "Rescaling Conv2D BatchNormalization Activation DepthwiseConv2D ReLU GlobalAveragePooling2D Multiply Add "
        "Dropout Flatten",
        lowered=["global_pooling_keepdims", "hard_silu", "scalar_op"],
        quantized=FLOAT32,
        label="flavour=keras3",
        **only(K3, "tf_keras writes hard_swish as a Multiply, lowered differently: MobileNetV3Large[flavour=tf_keras]"),
    ),
    app(
        "MobileNetV3Small",
        "Rescaling Conv2D BatchNormalization TFOpLambda ReLU Multiply DepthwiseConv2D GlobalAveragePooling2D Add "
        "Dropout Flatten",
        lowered=["global_pooling_keepdims", "scalar_op"],
        quantized=FLOAT32,
        label="flavour=tf_keras",
        **only(TFK, "Keras 3 writes hard_swish as the hard_silu activation: MobileNetV3Small[32x32x3]"),
    ),
    app(
        "MobileNetV3Large",
        "Rescaling Conv2D BatchNormalization TFOpLambda ReLU Multiply DepthwiseConv2D GlobalAveragePooling2D Add "
        "Dropout Flatten",
        lowered=["global_pooling_keepdims", "scalar_op"],
        quantized=FLOAT32,
        label="flavour=tf_keras",
        **only(TFK, "Keras 3 writes hard_swish as the hard_silu activation: MobileNetV3Large[flavour=keras3]"),
    ),
    app(
        "InceptionResNetV2",
        f"{CONV_BN} MaxPooling2D AveragePooling2D Concatenate CustomScaleLayer GlobalAveragePooling2D Dense",
        (75, 75, 3),
        lowered=["custom_scale"],
        quantized=FLOAT32,
    ),
    app(
        "RegNetX002",
        "Rescaling Conv2D BatchNormalization ReLU TFOpLambda GlobalAveragePooling2D Dense",
        lowered=["grouped_conv", "tensor_op"],
        quantized=FLOAT32,
        **only(TFK, "Keras 3.15 has no RegNet"),
    ),
]
