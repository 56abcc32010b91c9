"""Tier 3, `app`: `keras.applications` architectures with random weights (nothing is downloaded)."""

from __future__ import annotations

from harness.suite.declare import K3, app, only

CONV_BN = "Conv2D BatchNormalization Activation"
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
        **only(K3, "tf_keras writes MobileNetV3's `x + 3.0` and `* (1/6)` as TFOpLambda layers, Python TF.js lacks"),
    ),
    app("MobileNetV2", "Conv2D BatchNormalization DepthwiseConv2D ReLU ZeroPadding2D Add GlobalAveragePooling2D Dense"),
    app("ResNet50", f"{CONV_BN} ZeroPadding2D MaxPooling2D Add GlobalAveragePooling2D Dense"),
    app(
        "DenseNet121", f"{CONV_BN} ZeroPadding2D MaxPooling2D AveragePooling2D Concatenate GlobalAveragePooling2D Dense"
    ),
    app("VGG16", "Conv2D MaxPooling2D Flatten Dense", tolerance=None),
    app(
        "NASNetMobile",
        f"{CONV_BN} SeparableConv2D ZeroPadding2D Cropping2D MaxPooling2D AveragePooling2D Add "
        "Concatenate GlobalAveragePooling2D Dense",
    ),
    app(
        "InceptionV3", f"{CONV_BN} MaxPooling2D AveragePooling2D Concatenate GlobalAveragePooling2D Dense", (75, 75, 3)
    ),
    app("Xception", f"{CONV_BN} SeparableConv2D MaxPooling2D Add GlobalAveragePooling2D Dense", (71, 71, 3)),
]
