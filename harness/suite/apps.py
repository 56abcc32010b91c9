"""Tier 3, `app`: `keras.applications` architectures with random weights (nothing is downloaded)."""

from __future__ import annotations

from harness.suite.builders import App
from harness.suite.case import Case
from harness.suite.declare import app, reject

CONV_BN = "Conv2D BatchNormalization Activation"
APP_CASES = [
    # MobileNet pools with GlobalAveragePooling2D(keepdims=True), which TF.js 4.22 ignores (its output
    # would lose two dimensions): the converter must refuse it, before any browser.
    Case(
        name="MobileNet[32x32x3]",
        tier="reject",
        build=App("MobileNet", (32, 32, 3)),
        layer_classes=("GlobalAveragePooling2D",),
        options={"input_shape": (32, 32, 3), "classes": 10},
        expect=reject("ignored_argument", "GlobalAveragePooling2D(keepdims=True): TF.js ignores keepdims"),
        slow=True,
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
