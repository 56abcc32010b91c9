"""The `train` tier: compiled models whose converted form TF.js must evaluate and train as Keras does.

Each case compiles a small network with a loss, metrics and an optimizer (harness/suite/compiled.py); the
certification loads the converted model, checks it is compiled from the file alone, compares `evaluate`,
then trains the same batches in both and compares every step's loss and the weights after (batch-norm
statistics included). Together the cases cover every loss, metric and optimizer TF.js 4.22 supports;
`pretrain` cases resume from optimizer state carried in the file; the refusals are what the converter
must leave out of the training configuration, with the reason code it must give.
"""

from __future__ import annotations

from harness.suite.case import PASS, Case, Expect
from harness.suite.compiled import Compiled, Fit
from harness.suite.declare import ONE_FILE_PER_FORMAT, fails_at, reject
from harness.suite.inputs import InputSpec

DENSE = ("Dense", "Activation")
CLASSES = {
    "bn": (*DENSE, "BatchNormalization"),
    "frozen_bn": (*DENSE, "BatchNormalization"),
    "conv": ("Conv2D", "GlobalAveragePooling2D", "Dense"),
    "two_heads": ("Dense",),
    "gru": ("GRU", "Dense"),
    "gru_dropout": ("GRU", "Dense"),
}
WASM_NO_CONV_GRADIENT = fails_at(
    "train",
    r"Kernel 'Conv2DBackpropFilter' not registered for backend 'wasm'",
    "TF.js 4.22's wasm backend has no Conv2DBackpropFilter kernel: convolutions cannot train there",
    backends=("wasm",),
)
FROZEN_BN = reject(
    "computes_differently",
    "tfjs-layers normalization.ts BatchNormalization.call uses batch statistics whenever training is "
    "true and updates the moving ones, trainable or not; Keras keeps a frozen layer in inference mode",
)


def _text(value) -> str:
    if isinstance(value, tuple):
        cls, kwargs = value
        return f"{cls}({','.join(f'{k}={_text(v)}' for k, v in kwargs.items())})" if kwargs else cls
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "(" + ",".join(_text(v) for v in value) + ")"
    return str(value)


def trained(
    label: str,
    net: str,
    loss,
    metrics=(),
    optimizer=("SGD", {"learning_rate": 0.1}),
    *,
    fit: Fit,
    expect: Expect = PASS,
    companion: tuple[str, ...] = (),
    **compile_args,
) -> Case:
    build = Compiled(net, loss, metrics, optimizer, **compile_args)
    named = (
        [_text(m) for m in metrics]
        if isinstance(metrics, tuple)
        else [f"{out}:{_text(m)}" for out, ms in metrics.items() for m in ms]
    )
    options = {"loss": _text(loss), "metrics": named, "optimizer": _text(optimizer)}
    options.update({k: _text(v) for k, v in compile_args.items()})
    return Case(
        name=f"train[{label}]",
        tier="train",
        build=build,
        layer_classes=CLASSES.get(net, DENSE),
        options=options,
        inputs=tuple(InputSpec(s) for s in build.input_shapes()),
        expect=expect,
        fit=fit,
        batch=fit.batch,
        companion=companion,
        # The in-memory API saves the live model as `.keras` and converts that: in all 45 keras3 train cases its
        # artifact held the `keras` variant's weights, manifest and training configuration byte for byte
        # (measured), and certifying it again cost ~25 s of make test. It stays certified where the live model
        # holds optimizer state (the `pretrain` cases), and for every graph case.
        formats=None if fit.pretrain else ONE_FILE_PER_FORMAT,
    )


SGD = ("SGD", {"learning_rate": 0.1})
REAL, POSITIVE, ONEHOT, SPARSE = Fit(("real",)), Fit(("positive",)), Fit(("onehot",)), Fit(("sparse",))
TRAIN_CASES = [
    # every loss TF.js has, each with metrics and an optimizer
    trained("mse", "linear", "mse", ("mse", "mae"), ("SGD", {"learning_rate": 0.05}), fit=REAL),
    trained("mae", "softplus", "mean_absolute_error", ("mape",), SGD, fit=POSITIVE),
    trained("mape", "softplus", "mape", ("mae",), ("SGD", {"learning_rate": 0.01}), fit=POSITIVE),
    trained("msle", "softplus", "msle", ("mse",), SGD, fit=POSITIVE),
    trained(
        "categorical_crossentropy",
        "softmax",
        "categorical_crossentropy",
        ("accuracy", "categorical_crossentropy"),
        ("Adam", {"learning_rate": 0.03, "beta_1": 0.85, "beta_2": 0.99}),
        # beta_2 moves Adam's step only once t nears 1 / (1 - beta_2): enough steps for each hyper-parameter
        # to change the result beyond the tolerance (tests/test_training.py checks a wrong one fails)
        fit=Fit(("onehot",), steps=60),
    ),
    trained(
        "sparse_categorical_crossentropy",
        "softmax",
        "sparse_categorical_crossentropy",
        ("accuracy", "sparse_categorical_crossentropy"),
        ("SGD", {"learning_rate": 0.1, "momentum": 0.8}),
        fit=SPARSE,
    ),
    trained(
        "binary_crossentropy",
        "sigmoid1",
        "binary_crossentropy",
        ("accuracy", "binary_accuracy"),
        ("RMSprop", {"learning_rate": 0.01, "rho": 0.8}),
        fit=Fit(("binary",)),
    ),
    trained(
        "binary_crossentropy,multilabel",
        "sigmoid",
        "binary_crossentropy",
        ("accuracy", "binary_crossentropy"),
        SGD,
        fit=Fit(("multilabel",)),
    ),
    trained("categorical_hinge", "softmax", "categorical_hinge", ("categorical_accuracy",), SGD, fit=ONEHOT),
    trained("poisson", "softplus", "poisson", ("mse",), ("Adagrad", {"learning_rate": 0.1}), fit=POSITIVE),
    trained("log_cosh", "linear", "log_cosh", ("mae",), ("Adamax", {"learning_rate": 0.02}), fit=REAL),
    trained("kl_divergence", "softmax", "kl_divergence", ("mse",), SGD, fit=Fit(("probs",))),
    trained("cosine_similarity", "linear", "cosine_similarity", ("mse",), SGD, fit=REAL),
    # every optimizer TF.js has, on one loss
    trained(
        "SGD,nesterov",
        "softmax",
        "categorical_crossentropy",
        ("accuracy",),
        ("SGD", {"learning_rate": 0.1, "momentum": 0.7, "nesterov": True}),
        fit=ONEHOT,
    ),
    trained("Adam", "linear", "mse", (), ("Adam", {"learning_rate": 0.01}), fit=REAL),
    trained("RMSprop,momentum", "linear", "mse", (), ("RMSprop", {"learning_rate": 0.01, "momentum": 0.5}), fit=REAL),
    trained(
        "Adagrad,initial_accumulator_value",
        "linear",
        "mse",
        (),
        ("Adagrad", {"learning_rate": 0.05, "initial_accumulator_value": 0.5}),
        fit=REAL,
    ),
    # layers that train differently
    trained("BatchNormalization", "bn", "categorical_crossentropy", ("accuracy",), SGD, fit=ONEHOT),
    trained(
        "BatchNormalization,trainable=False",
        "frozen_bn",
        "categorical_crossentropy",
        ("accuracy",),
        SGD,
        fit=ONEHOT,
        expect=FROZEN_BN,
    ),
    trained("Conv2D", "conv", "categorical_crossentropy", ("accuracy",), SGD, fit=ONEHOT, expect=WASM_NO_CONV_GRADIENT),
    # per-output losses and metrics, with integer labels for the sparse one
    trained(
        "two_outputs",
        "two_heads",
        {"cls": "sparse_categorical_crossentropy", "reg": "mse"},
        {"cls": ["accuracy"], "reg": ["mae"]},
        ("SGD", {"learning_rate": 0.1, "momentum": 0.5}),
        fit=Fit(("sparse", "real1")),
    ),
    # resuming: Keras trains first, the file carries the optimizer's state, both continue
    *[
        trained(f"resume,{opt[0]}", "linear", "mse", (), opt, fit=Fit(("real",), pretrain=3))
        for opt in (
            ("SGD", {"learning_rate": 0.05, "momentum": 0.9}),
            ("Adam", {"learning_rate": 0.01}),
            ("Adagrad", {"learning_rate": 0.1}),
            ("RMSprop", {"learning_rate": 0.01, "momentum": 0.5}),
        )
    ],
    # what the converter must leave out of the training configuration, with its reason code
    trained("custom_loss", "linear", "custom", fit=REAL, expect=reject("needs_python_code", "a Python loss")),
    # the companion module's GRU trains as Keras's (companion_table: training_exact); with dropout it refuses to
    # train (dropout masks are random in both, and TfjsCertifyGRUCell does not implement them)
    trained(
        "GRU[reset_after=True]",
        "gru",
        "mse",
        ("mae",),
        ("SGD", {"learning_rate": 0.2, "momentum": 0.5}),
        fit=REAL,
        companion=("gru_reset_after",),
    ),
    trained(
        "GRU[reset_after=True,dropout=0.25]",
        "gru_dropout",
        "mse",
        fit=REAL,
        companion=("gru_reset_after",),
        expect=reject("js_layer_for_inference", "TfjsCertifyGRUCell does not implement dropout in training"),
    ),
    trained(
        "hinge",
        "linear",
        "hinge",
        fit=REAL,
        expect=reject("computes_differently", "Keras turns 0/1 labels into -1/+1 for hinge, TF.js does not"),
    ),
    trained("huber", "linear", "huber", fit=REAL, expect=reject("unknown_loss", "TF.js has no Huber loss")),
    trained(
        "label_smoothing",
        "softmax",
        ("CategoricalCrossentropy", {"label_smoothing": 0.1}),
        fit=ONEHOT,
        expect=reject("ignored_argument", "TF.js losses have no label smoothing"),
    ),
    trained(
        "from_logits",
        "linear",
        ("CategoricalCrossentropy", {"from_logits": True}),
        fit=ONEHOT,
        expect=reject("ignored_argument", "TF.js losses take probabilities"),
    ),
    trained(
        "metric_from_logits",
        "linear",
        "categorical_crossentropy",
        (("CategoricalCrossentropy", {"from_logits": True}),),
        fit=ONEHOT,
        expect=reject("ignored_argument", "TF.js metrics take probabilities: evaluate would report another number"),
    ),
    trained(
        "metric_ignore_class",
        "softmax",
        "sparse_categorical_crossentropy",
        (("SparseCategoricalCrossentropy", {"ignore_class": 0}),),
        fit=SPARSE,
        expect=reject("ignored_argument", "TF.js sparse cross-entropy has no ignore_class"),
    ),
    trained(
        "metric_threshold",
        "sigmoid1",
        "binary_crossentropy",
        (("BinaryAccuracy", {"threshold": 0.3}),),
        fit=Fit(("binary",)),
        expect=reject("ignored_argument", "TF.js binary accuracy thresholds at 0.5"),
    ),
    trained(
        "precision",
        "sigmoid1",
        "binary_crossentropy",
        ("precision",),
        fit=Fit(("binary",)),
        expect=reject("computes_differently", "TF.js precision counts only predictions exactly 1"),
    ),
    trained(
        "top_k",
        "softmax",
        "categorical_crossentropy",
        ("top_k_categorical_accuracy",),
        fit=ONEHOT,
        expect=reject("unknown_metric", "TF.js has no top-k accuracy"),
    ),
    trained(
        "Nadam",
        "linear",
        "mse",
        (),
        ("Nadam", {"learning_rate": 0.01}),
        fit=REAL,
        expect=reject("unknown_optimizer", "TF.js has no Nadam"),
    ),
    trained(
        "AdamW",
        "linear",
        "mse",
        (),
        ("AdamW", {"learning_rate": 0.01}),
        fit=REAL,
        expect=reject("unknown_optimizer", "TF.js has no AdamW"),
    ),
    trained(
        "Adadelta",
        "linear",
        "mse",
        (),
        ("Adadelta", {"learning_rate": 1.0}),
        fit=REAL,
        expect=reject("computes_differently", "TF.js Adadelta divides by the previous accumulator"),
    ),
    trained(
        "RMSprop,centered",
        "linear",
        "mse",
        (),
        ("RMSprop", {"learning_rate": 0.01, "centered": True}),
        fit=REAL,
        expect=reject("computes_differently", "TF.js centered RMSProp subtracts epsilon"),
    ),
    trained(
        "Adam,amsgrad",
        "linear",
        "mse",
        (),
        ("Adam", {"learning_rate": 0.01, "amsgrad": True}),
        fit=REAL,
        expect=reject("ignored_argument", "TF.js Adam has no AMSGrad"),
    ),
    trained(
        "clipnorm",
        "linear",
        "mse",
        (),
        ("SGD", {"learning_rate": 0.1, "clipnorm": 1.0}),
        fit=REAL,
        expect=reject("ignored_argument", "TF.js optimizers do not clip gradients"),
    ),
    trained(
        "schedule",
        "linear",
        "mse",
        (),
        (
            "SGD",
            {
                "learning_rate": (
                    "ExponentialDecay",
                    {"initial_learning_rate": 0.1, "decay_steps": 2, "decay_rate": 0.5},
                )
            },
        ),
        fit=REAL,
        expect=reject("unsupported_value", "TF.js optimizers take a constant learning rate"),
    ),
    trained(
        "loss_weights",
        "two_heads",
        {"cls": "sparse_categorical_crossentropy", "reg": "mse"},
        (),
        fit=Fit(("sparse", "real1")),
        loss_weights={"cls": 1.0, "reg": 0.5},
        expect=reject("unsupported_value", "TF.js 4.22 cannot load loss_weights"),
    ),
]
