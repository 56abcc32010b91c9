"""What only JavaScript can run: Keras constructs TF.js 4.22 lacks and no exact lowering reaches, each mapped to a
class of the companion module (`converter/companion/tfjs_certify_companion.js`).

One entry per construct: which Keras construct, which companion class runs it, why TF.js cannot (and why no
rewrite into TF.js layers can), and why the class computes what Keras does (certified by the `companion` tier
of the suite on cpu, wasm and webgl). `converter/companion/__init__.py` applies them. By default a model that
needs one is refused with the reason code `needs_companion`; converting with `--companion` (`companion=True`)
writes the module next to model.json and records the classes the model needs in its userDefinedMetadata.
`training_exact`: a train-tier case showed TF.js trains the class as Keras does, so a compiled model that
uses it converts compiled (otherwise uncompiled, with the reason code `js_layer_for_inference`).

`ARGUMENTS` says, per companion class, which Keras arguments it reads, in the vocabulary of support_table.py.
"""

from __future__ import annotations

import dataclasses

from converter.support_table import (
    CELL,
    CHANNELS,
    GATED,
    KEEP,
    RNN,
    drop_always,
    drop_if,
    one_of,
)

# The module, as the package ships it and as the converter writes it next to model.json.
JS_FILE = "tfjs_certify_companion.js"
VERSION = "0.1.0"  # tfjs_certify_companion.js VERSION


@dataclasses.dataclass(frozen=True)
class Companion:
    construct: str
    js_class: str
    why: str  # why TF.js 4.22 cannot run it, and why no lowering can
    why_exact: str
    training_exact: bool = False


COMPANIONS = {
    "gru_reset_after": Companion(
        "GRU and GRUCell with reset_after=True (the default of every Keras GRU since TF 2.0)",
        "TfjsCertifyGRU (TF.js's RNN layer around TfjsCertifyGRUCell, as TF.js's own GRU); a GRUCell in an RNN: "
        "TfjsCertifyGRUCell",
        "TF.js's GRUCell throws on reset_after=true, and its reset gate multiplies the projected state "
        "r * (h U_h + b'_h), which no weight transform turns into TF.js's (r * h) U_h",
        "Keras's GRUCell.call, gate by gate; TF.js's RNN layer does the rest (sequences, states, backwards, masks, "
        "Bidirectional, stacking) as for its own cells",
        training_exact=True,
    ),
    "resizing": Companion(
        "Resizing, in every interpolation Keras offers (bilinear, nearest, bicubic, area, lanczos3, lanczos5, "
        "gaussian, mitchellcubic), crop_to_aspect_ratio, pad_to_aspect_ratio",
        "TfjsCertifyResizing",
        "TF.js's Resizing samples with align_corners where Keras uses half-pixel centres, cannot crop or pad, and "
        "throws inside predict",
        "tf.image.resize with antialias off: bilinear and nearest are ResizeBilinear / ResizeNearestNeighbor with "
        "half-pixel centres, which TF.js's kernels compute with halfPixelCenters=true; for the others (ResizeBicubic, "
        "ResizeArea, ScaleAndTranslate) the weights TensorFlow's kernels give each input row and column, computed in "
        "their float32 arithmetic and applied as two matrix products; crop and pad sizes in Keras's float32 arithmetic",
    ),
    "upsampling_interpolated": Companion(
        "UpSampling2D with an interpolation other than nearest (bilinear, bicubic, lanczos3, ...)",
        "TfjsCertifyUpSampling2D",
        "TF.js's bilinear UpSampling2D samples without Keras's half-pixel centres, and it has no other interpolation",
        "Keras upsamples with tf.image.resize to size * input size: the same resize as TfjsCertifyResizing",
    ),
    "discretization": Companion(
        "Discretization with bin_boundaries and output_mode='int'",
        "TfjsCertifyDiscretization",
        "TF.js has no Discretization layer, and no activation is a step function at given boundaries",
        "Bucketize: the number of float32 boundaries <= x (a NaN past the last), as an int32",
    ),
}

# --- the arguments each companion class reads (support_table's vocabulary) --------------------------------------

INTERPOLATIONS = ("bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5", "gaussian", "mitchellcubic")
INTERPOLATION = one_of(*INTERPOLATIONS, why=f"the companion resizes with {', '.join(INTERPOLATIONS)}")
GRU_CELL = {**CELL, **GATED, "reset_after": one_of(True, why="reset_after=False is TF.js's own GRUCell")}
ARGUMENTS = {
    "TfjsCertifyGRU": {**RNN, **GRU_CELL},
    "TfjsCertifyGRUCell": GRU_CELL,
    "TfjsCertifyResizing": {
        "height": KEEP,
        "width": KEEP,
        "interpolation": INTERPOLATION,
        "crop_to_aspect_ratio": KEEP,
        "pad_to_aspect_ratio": KEEP,
        "fill_mode": one_of("constant", why="Keras pads with a constant only"),
        "fill_value": KEEP,
        "antialias": one_of(False, why="the companion resizes without antialiasing"),
        "data_format": one_of(*CHANNELS),
    },
    "TfjsCertifyUpSampling2D": {"size": KEEP, "interpolation": INTERPOLATION, "data_format": one_of(*CHANNELS)},
    "TfjsCertifyDiscretization": {
        "bin_boundaries": KEEP,
        "output_mode": one_of("int", why="the companion computes output_mode='int' only"),
        "sparse": one_of(False, why="TF.js has no sparse tensors"),
        "num_bins": drop_always(why="only used by adapt(); bin_boundaries hold its result"),
        "epsilon": drop_always(why="only used by adapt()"),
        # tf_keras writes the output dtype (int64), Keras 3 the compute dtype: the companion outputs int32 indices
        "dtype": drop_if("float32", "int32", "int64", why="Discretization outputs integer bucket indices"),
    },
}
