"""The `companion` tier: Keras constructs only JavaScript can run, certified as converted with `--companion` and
run by the companion module's classes (converter/companion_table.py, converter/companion/tfjs_certify_companion.js).

Each case names the companion rules it must go through; it passes only if the converter used exactly those and TF.js
then matches Keras within the ordinary tolerance (no case here loosens it). GRU is crossed with the options users
set (its default, reset_after=True, is what every Keras GRU trains with since TF 2.0); single-layer cases come from
the .h5 and .keras files, graph cases also from memory (`save_keras_model`).
"""

from __future__ import annotations

from harness.suite import builders as b
from harness.suite.builders import Spec
from harness.suite.declare import CF, K3, SEQ, TFK, WEBGPU_MASKED_RNN, graph, layer, only, tokens

GRU = "gru_reset_after"
RESIZE = "resizing"
UPSAMPLE = "upsampling_interpolated"
NUMBERS = "discretization"
KERAS3_HARD_SIGMOID = "Keras 3's hard_sigmoid is relu6(x + 3) / 6, which TF.js lacks (refused: unknown_activation)"


def companion(cls, options, shape, rules, **kw):
    return layer(cls, options, shape, tier="companion", companion=rules.split(), **kw)


def gru(options, **kw):
    return companion("GRU", {"reset_after": True, **options}, SEQ, GRU, **kw)


def companion_graph(build, classes, rules, **kw):
    return graph(build, classes, tier="companion", companion=rules.split(), **kw)


COMPANION_CASES = [
    # GRU with reset_after=True, as TF.js's RNN runs TfjsCertifyGRUCell (one case crosses return_sequences,
    # return_state and go_backwards; the graphs below add Bidirectional, stacking, masks, initial states)
    gru({}),
    gru({"return_sequences": True}),
    gru({"return_sequences": True, "return_state": True, "go_backwards": True}),
    gru({"use_bias": False}),
    gru({"activation": "softsign", "recurrent_activation": "tanh"}),
    gru(
        {"activation": "relu", "recurrent_activation": "hard_sigmoid"},
        **only(TFK, KERAS3_HARD_SIGMOID),
    ),
    companion(
        "Masking",
        {},
        (7, 1),
        GRU,
        label="into=GRU[reset_after=True]",
        before=(Spec("ReLU"),),
        after=(Spec("GRU", {"units": 3, "reset_after": True}),),
        known=(WEBGPU_MASKED_RNN,),
    ),
    companion(
        "Bidirectional",
        {"layer": Spec("GRU", {"units": 3, "reset_after": True, "return_sequences": True})},
        SEQ,
        GRU,
        label="GRU,reset_after=True,return_sequences=True",
    ),
    companion(
        "RNN",
        {"cell": Spec("GRUCell", {"units": 3, "reset_after": True}), "return_sequences": True},
        SEQ,
        GRU,
        label="cell=GRUCell[reset_after=True]",
    ),
    companion(
        "RNN",
        {
            "cell": [
                Spec("GRUCell", {"units": 3, "reset_after": True}),
                Spec("GRUCell", {"units": 2, "reset_after": True}),
            ]
        },
        SEQ,
        GRU,
        label="cell=StackedRNNCells(GRUCell[reset_after=True]x2)",
    ),
    companion_graph(b.gru_default_stacked, ["Bidirectional", "GRU", "Dense"], GRU),
    companion_graph(b.gru_default_masked, ["Embedding", "GRU"], GRU, inputs=tokens(7, 12), known=(WEBGPU_MASKED_RNN,)),
    companion_graph(b.gru_default_seq2seq, ["GRU"], GRU),
    companion_graph(b.gru_after_time_distributed, ["TimeDistributed", "Conv2D", "Flatten", "GRU"], GRU),
    # Keras's resizing (half-pixel centres), as TF.js's kernels compute it with halfPixelCenters
    companion("Resizing", {"height": 4, "width": 9}, (5, 7, 3), RESIZE),
    companion("Resizing", {"height": 4, "width": 9, "interpolation": "nearest"}, (5, 7, 3), RESIZE),
    companion("Resizing", {"height": 4, "width": 9, "crop_to_aspect_ratio": True}, (5, 7, 3), RESIZE),
    companion(
        "Resizing",
        {"height": 3, "width": 8, "interpolation": "nearest", "crop_to_aspect_ratio": True},
        (9, 7, 3),
        RESIZE,
    ),
    companion(
        "Resizing",
        {"height": 6, "width": 4, "pad_to_aspect_ratio": True, "fill_value": 0.5},
        (5, 7, 3),
        RESIZE,
        **only(K3, "tf_keras's Resizing has no pad_to_aspect_ratio"),
    ),
    companion(
        "Resizing",
        {"height": 8, "width": 3, "pad_to_aspect_ratio": True},
        (5, 7, 3),
        RESIZE,
        **only(K3, "tf_keras's Resizing has no pad_to_aspect_ratio"),
    ),
    companion(
        "Resizing",
        {"height": 6, "width": 4, "data_format": CF},
        (3, 5, 7),
        RESIZE,
        **only(K3, "tf_keras's Resizing has no data_format"),
    ),
    # the interpolations TF.js lacks: TensorFlow's weights, computed as its kernels do, applied as matrix products
    companion("Resizing", {"height": 4, "width": 9, "interpolation": "bicubic"}, (5, 7, 3), RESIZE),
    companion("Resizing", {"height": 3, "width": 5, "interpolation": "area"}, (9, 7, 3), RESIZE),
    companion("Resizing", {"height": 6, "width": 4, "interpolation": "lanczos3"}, (5, 7, 3), RESIZE),
    companion("Resizing", {"height": 8, "width": 10, "interpolation": "lanczos5"}, (5, 7, 3), RESIZE),
    companion(
        "Resizing",
        {"height": 4, "width": 9, "interpolation": "gaussian"},
        (5, 7, 3),
        RESIZE,
        **only(TFK, "Keras 3 resizes with bilinear, nearest, bicubic, area, lanczos3 and lanczos5 only"),
    ),
    companion(
        "Resizing",
        {"height": 8, "width": 3, "interpolation": "mitchellcubic"},
        (5, 7, 3),
        RESIZE,
        **only(TFK, "Keras 3 resizes with bilinear, nearest, bicubic, area, lanczos3 and lanczos5 only"),
    ),
    companion("UpSampling2D", {"interpolation": "bilinear", "size": (3, 2)}, (3, 4, 2), UPSAMPLE),
    companion("UpSampling2D", {"interpolation": "bicubic", "size": (2, 3)}, (3, 4, 2), UPSAMPLE),
    companion("UpSampling2D", {"interpolation": "lanczos3"}, (3, 4, 2), UPSAMPLE),
    companion("UpSampling2D", {"interpolation": "bilinear", "data_format": CF}, (2, 3, 4), UPSAMPLE),
    companion_graph(b.resize_then_conv, ["Resizing", "Conv2D", "UpSampling2D"], f"{RESIZE} {UPSAMPLE}"),  # size 2
    # Discretization: Bucketize's step function
    companion("Discretization", {"bin_boundaries": [-1.0, -0.25, 0.0, 0.5, 1.25]}, (5,), NUMBERS),
    companion("Discretization", {"bin_boundaries": [0.0]}, (2, 3), NUMBERS),
    companion_graph(b.discretize_then_embed, ["Discretization", "Embedding", "Flatten"], NUMBERS),
]
