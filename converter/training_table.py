"""What TF.js 4.22 can train as Keras does: the one table of losses, metrics and optimizers.

Read from tfjs-layers 4.22 (`engine/training.js` loadTrainingConfig and compile, `losses.js` lossesMap,
`metrics.js` metricsMap) and tfjs-core 4.22 (`optimizers/*`), and measured against Keras 3.15 and tf_keras
2.21 (five training steps from identical weights). Every name is written as TF.js looks it up (camelCase,
which its own camel-casing leaves alone). A `Refused` entry says why a piece is not carried.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Refused:
    code: str
    reason: str


# --- losses: Keras name (every spelling, functions and classes) -> TF.js lossesMap key ---------------
_LOSSES = {
    "meanSquaredError": ("mean_squared_error", "mse", "MeanSquaredError"),
    "meanAbsoluteError": ("mean_absolute_error", "mae", "MeanAbsoluteError"),
    "meanAbsolutePercentageError": ("mean_absolute_percentage_error", "mape", "MeanAbsolutePercentageError"),
    "meanSquaredLogarithmicError": ("mean_squared_logarithmic_error", "msle", "MeanSquaredLogarithmicError"),
    # Keras 3 computes cross-entropy of a softmax/sigmoid output from its logits; TF.js clips probabilities
    # to [1e-7, 1 - 1e-7]. The two agree unless a prediction saturates below 1e-7.
    "categoricalCrossentropy": ("categorical_crossentropy", "CategoricalCrossentropy"),
    "sparseCategoricalCrossentropy": ("sparse_categorical_crossentropy", "SparseCategoricalCrossentropy"),
    "binaryCrossentropy": ("binary_crossentropy", "BinaryCrossentropy"),
    "categoricalHinge": ("categorical_hinge", "CategoricalHinge"),
    "poisson": ("poisson", "Poisson"),
    "logcosh": ("log_cosh", "logcosh", "LogCosh"),
    # Keras multiplies by the clipped y_true, TF.js by the raw one: they differ by ~1e-7 where y_true is 0.
    "kullbackLeiblerDivergence": ("kl_divergence", "kld", "kullback_leibler_divergence", "KLDivergence"),
    "cosineProximity": ("cosine_similarity", "CosineSimilarity"),
}
LOSSES = {keras: tfjs for tfjs, names in _LOSSES.items() for keras in names}
# Keras's own losses TF.js lacks (any other name is a custom loss: Python code).
KERAS_ONLY_LOSSES = frozenset(
    {
        "huber",
        "huber_loss",
        "Huber",
        "ctc",
        "CTC",
        "dice",
        "Dice",
        "tversky",
        "Tversky",
        "circle",
        "Circle",
        "binary_focal_crossentropy",
        "BinaryFocalCrossentropy",
        "categorical_focal_crossentropy",
        "CategoricalFocalCrossentropy",
        "sparse_categorical_hinge",
    }
)
# Keras's own optimizers (tf_keras writes them `Custom>Name`): the ones TF.js lacks are unknown, not custom.
KERAS_OPTIMIZERS = frozenset(
    {
        "SGD",
        "Adam",
        "AdamW",
        "Adamax",
        "Adagrad",
        "Adadelta",
        "RMSprop",
        "Nadam",
        "Ftrl",
        "Lion",
        "Lamb",
        "Adafactor",
        "LossScaleOptimizer",
        "Muon",
    }
)
REFUSED_LOSSES = {
    name: Refused("computes_differently", "Keras turns 0/1 labels into -1/+1 for hinge losses; TF.js does not")
    for name in ("hinge", "squared_hinge", "Hinge", "SquaredHinge")
}
# Loss object arguments TF.js cannot honour (a loss given by name always means these defaults).
LOSS_NEUTRAL = {
    "from_logits": (False, "TF.js losses take probabilities (from_logits=False)"),
    "label_smoothing": (0.0, "TF.js losses have no label smoothing"),
    "ignore_class": (None, "TF.js sparse cross-entropy has no ignore_class"),
    "axis": (-1, "TF.js losses reduce the last axis"),
    "reduction": ("sum_over_batch_size", "TF.js takes the mean over the batch"),
}
# tf_keras writes reduction "auto", which means sum over batch size.
REDUCTION_SYNONYMS = {"auto": "sum_over_batch_size"}
LOSS_IGNORED_KEYS = ("name", "dtype", "fn")

# --- metrics: Keras name -> TF.js metric (or special string) ------------------------------------------
# `accuracy`, `acc`, `crossentropy` and `ce` are resolved by TF.js from the loss: see training.py.
METRICS = {
    "binary_accuracy": "binaryAccuracy",
    "BinaryAccuracy": "binaryAccuracy",
    "categorical_accuracy": "categoricalAccuracy",
    "CategoricalAccuracy": "categoricalAccuracy",
    "mse": "mse",
    "mean_squared_error": "mse",
    "MeanSquaredError": "mse",
    "mae": "mae",
    "mean_absolute_error": "mae",
    "MeanAbsoluteError": "mae",
    "mape": "mape",
    "mean_absolute_percentage_error": "mape",
    "MeanAbsolutePercentageError": "mape",
    "categorical_crossentropy": "categoricalCrossentropy",
    "CategoricalCrossentropy": "categoricalCrossentropy",
    "sparse_categorical_crossentropy": "sparseCategoricalCrossentropy",
    "SparseCategoricalCrossentropy": "sparseCategoricalCrossentropy",
}
# Metric object arguments, and the value TF.js's metric computes with (any other value is refused).
METRIC_NEUTRAL = {
    "from_logits": (False, "TF.js metrics take probabilities (from_logits=False)"),
    "label_smoothing": (0.0, "TF.js metrics have no label smoothing"),
    "ignore_class": (None, "TF.js sparse cross-entropy has no ignore_class"),
    "axis": (-1, "TF.js metrics reduce the last axis"),
    "threshold": (0.5, "TF.js binary accuracy thresholds at 0.5"),
}
METRIC_IGNORED_KEYS = frozenset({"name", "dtype"})
REFUSED_METRICS = {
    "precision": Refused("computes_differently", "TF.js precision counts only predictions exactly 1, per batch"),
    "Precision": Refused("computes_differently", "TF.js precision counts only predictions exactly 1, per batch"),
}

# --- optimizers -------------------------------------------------------------------------------------
# Keras class (Keras 3, tf_keras `Custom>X`, tf_keras legacy X) -> how to write it; see training.py.
OPTIMIZERS = ("SGD", "Adam", "Adamax", "Adagrad", "RMSprop")
# A frozen BatchNormalization (trainable=False, or inside a frozen model): Keras 3 and tf_keras keep it in
# inference mode in fit; TF.js 4.22 (normalization.ts BatchNormalization.call) normalizes with the batch's
# statistics whenever training is true and updates the moving ones. Measured in the train tier (0.6 apart).
FROZEN_BATCH_NORM = Refused(
    "computes_differently",
    "TF.js trains a frozen BatchNormalization with the batch's statistics and updates its moving ones; "
    "Keras keeps it in inference mode",
)
REFUSED_OPTIMIZERS = {
    "Adadelta": Refused(
        "computes_differently",
        "TF.js Adadelta divides by the previous step's gradient accumulator (measured: 0.63 apart after 5 steps)",
    ),
}
# Arguments every Keras optimizer carries, and the value TF.js's behaviour matches (any other value is
# refused as `ignored_argument`, or, for those in OPTIMIZER_DIVERGENT, as `computes_differently`).
OPTIMIZER_DIVERGENT = frozenset({"centered"})
OPTIMIZER_NEUTRAL = {
    "weight_decay": ((None, 0, 0.0), "TF.js optimizers have no weight decay"),
    "clipnorm": ((None,), "TF.js optimizers do not clip gradients"),
    "clipvalue": ((None,), "TF.js optimizers do not clip gradients"),
    "global_clipnorm": ((None,), "TF.js optimizers do not clip gradients"),
    "use_ema": ((False,), "TF.js optimizers keep no moving average of the weights"),
    "loss_scale_factor": ((None, 1, 1.0), "TF.js optimizers do not scale the loss"),
    "gradient_accumulation_steps": ((None, 1), "TF.js optimizers apply every step's gradients"),
    "amsgrad": ((False,), "TF.js Adam has no AMSGrad"),
    "centered": (
        (False,),
        "TF.js centered RMSProp subtracts epsilon where Keras adds it (NaN where a gradient is exactly 0)",
    ),
    "decay": ((None, 0, 0.0), "tf_keras legacy learning-rate decay has no TF.js equivalent"),
}
# Keys that never change what an optimizer computes (ema_* matter only with use_ema, which is refused).
OPTIMIZER_IGNORED_KEYS = frozenset(
    {"name", "ema_momentum", "ema_overwrite_frequency", "jit_compile", "is_legacy_optimizer", "mesh"}
)
# Each optimizer's own hyper-parameters, which training.py writes into TF.js's config (or checks). A key that
# is none of these, nor neutral-checked nor ignored, is refused: a newer Keras may add one TF.js lacks.
OPTIMIZER_HYPERPARAMETERS = {
    "SGD": frozenset({"learning_rate", "momentum", "nesterov"}),
    "Adam": frozenset({"learning_rate", "beta_1", "beta_2", "epsilon"}),
    "Adamax": frozenset({"learning_rate", "beta_1", "beta_2", "epsilon"}),
    "Adagrad": frozenset({"learning_rate", "initial_accumulator_value", "epsilon"}),
    "RMSprop": frozenset({"learning_rate", "rho", "momentum", "epsilon"}),
}
# Adagrad in TF.js has no epsilon: it adds the backend's (1e-7 on float32 backends).
TFJS_EPSILON = 1e-7

NO_STATE = {"Adamax": "TF.js 4.22 Adamax cannot load state (and a model.json holding any fails to load)"}

CODES = {
    "unknown_loss": "TF.js 4.22 has no such loss.",
    "unknown_metric": "TF.js 4.22 has no such metric.",
    "unknown_optimizer": "TF.js 4.22 has no such optimizer.",
    "needs_python_code": "A custom loss, metric or optimizer runs Python code.",
    "ignored_argument": "TF.js would ignore this training argument, and its value is not neutral.",
    "computes_differently": "TF.js computes this piece of training differently from Keras.",
    "unsupported_value": "TF.js cannot take this value (a schedule, loss weights, weighted metrics).",
    "bad_config": "The training configuration is not of the shape Keras writes.",
    "lowered_for_inference": "The model runs in TF.js only through a lowering that trains differently.",
    "js_layer_for_inference": "The model needs a JavaScript layer (a companion class, or the user's port) that is not "
    "certified to train as Keras does.",
}
