"""Compiled models for the `train` tier: a small network, a loss, metrics and an optimizer, and the data
it trains on.

`Compiled(net, loss, metrics, optimizer)` builds like any builder, then compiles; a loss or metric is a
name, or `(ClassName, kwargs)` for a Keras object (the refusals need arguments such as label_smoothing),
and an optimizer is `(ClassName, kwargs)`, where a learning rate may itself be `(ScheduleClass, kwargs)`.
`Fit` says what labels each output trains on, in how many batches, and how many steps Keras trains
before the model is saved (so that the file holds optimizer state).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from harness.suite.builders import nontrivial_weights


@dataclasses.dataclass(frozen=True)
class Fit:
    """How a train case is exercised: per output, the kind of labels; then batches and steps.

    Target kinds: `real` (uniform in [-1, 1]), `positive` (in [0.1, 2]), `onehot` and `sparse` (one of
    `classes`), `binary` (0/1, one column), `multilabel` (0/1 per class), `probs` (rows summing to 1).
    """

    targets: tuple[str, ...]
    classes: int = 3
    batch: int = 8
    steps: int = 12
    pretrain: int = 0

    def data(self, input_shapes, seed: int):
        """`steps + 1 + pretrain` batches of (inputs, targets): the first to evaluate, then the pretraining
        steps, then the certified steps."""
        rng = np.random.default_rng(seed)
        batches = []
        for _ in range(self.steps + 1 + self.pretrain):
            xs = [rng.uniform(-1.0, 1.0, (self.batch, *s)).astype(np.float32) for s in input_shapes]
            batches.append((xs, [self._target(kind, rng) for kind in self.targets]))
        return batches

    def _target(self, kind, rng):
        n, c = self.batch, self.classes
        if kind == "real":
            return rng.uniform(-1.0, 1.0, (n, c)).astype(np.float32)
        if kind == "real1":
            return rng.uniform(-1.0, 1.0, (n, 1)).astype(np.float32)
        if kind == "positive":
            return rng.uniform(0.1, 2.0, (n, c)).astype(np.float32)
        if kind == "onehot":
            return np.eye(c, dtype=np.float32)[rng.integers(0, c, n)]
        if kind == "sparse":
            return rng.integers(0, c, n).astype(np.int32)
        if kind == "binary":
            return rng.integers(0, 2, (n, 1)).astype(np.float32)
        if kind == "multilabel":
            return rng.integers(0, 2, (n, c)).astype(np.float32)
        if kind == "probs":
            p = rng.uniform(0.05, 1.0, (n, c))
            return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)
        raise ValueError(f"unknown target kind {kind!r}")


# --- networks: input (6,) unless said; `classes` outputs ------------------------------------------


def _dense_net(k, head_units: int, activation, *, bn: str | None = None):
    x = k.Input((6,), name="x")
    h = k.layers.Dense(8, name="hidden")(x)
    if bn is not None:
        h = k.layers.BatchNormalization(name="bn", trainable=bn != "frozen")(h)
    h = k.layers.Activation("tanh", name="tanh")(h)
    return k.Model(x, k.layers.Dense(head_units, activation=activation, name="out")(h), name="net")


NETS: dict[str, Any] = {
    "softmax": lambda k: _dense_net(k, 3, "softmax"),
    "linear": lambda k: _dense_net(k, 3, None),
    "sigmoid1": lambda k: _dense_net(k, 1, "sigmoid"),
    "sigmoid": lambda k: _dense_net(k, 3, "sigmoid"),
    "softplus": lambda k: _dense_net(k, 3, "softplus"),
    "bn": lambda k: _dense_net(k, 3, "softmax", bn="training"),
    "frozen_bn": lambda k: _dense_net(k, 3, "softmax", bn="frozen"),
}


def conv_net(k):
    x = k.Input((6, 6, 2), name="x")
    h = k.layers.Conv2D(3, 3, activation="tanh", name="conv")(x)
    h = k.layers.GlobalAveragePooling2D(name="gap")(h)
    return k.Model(x, k.layers.Dense(3, activation="softmax", name="out")(h), name="conv_net")


def two_heads(k):
    x = k.Input((6,), name="x")
    h = k.layers.Dense(8, activation="tanh", name="hidden")(x)
    cls = k.layers.Dense(3, activation="softmax", name="cls")(h)
    reg = k.layers.Dense(1, name="reg")(h)
    return k.Model(x, [cls, reg], name="two_heads")


def gru_net(k, dropout: float = 0.0):
    """A GRU with Keras's defaults (reset_after=True): TF.js runs it only with the companion module."""
    x = k.Input((5, 3), name="x")
    h = k.layers.GRU(4, dropout=dropout, name="gru")(x)
    return k.Model(x, k.layers.Dense(3, name="out")(h), name="gru_net")


NETS.update(conv=conv_net, two_heads=two_heads, gru=gru_net, gru_dropout=lambda k: gru_net(k, dropout=0.25))
INPUTS = {"conv": [(6, 6, 2)], "gru": [(5, 3)], "gru_dropout": [(5, 3)]}


def _object(k, spec, family: str):
    """A name stays a name; (ClassName, kwargs) becomes the Keras object of `family` (losses, metrics...)."""
    if isinstance(spec, str):
        return spec
    cls, kwargs = spec
    kwargs = {key: _object(k, v, "optimizers.schedules") if isinstance(v, tuple) else v for key, v in kwargs.items()}
    module = k
    for part in family.split("."):
        module = getattr(module, part)
    return getattr(module, cls)(**kwargs)


def _structure(k, value, family):
    if isinstance(value, dict):
        return {out: _structure(k, v, family) for out, v in value.items()}
    if isinstance(value, list):
        return [_structure(k, v, family) for v in value]
    return _object(k, value, family)


def custom_loss(y_true, y_pred):
    """A loss written in Python: no TF.js equivalent."""
    return (y_true - y_pred) ** 2


@dataclasses.dataclass(frozen=True)
class Compiled:
    """A network from NETS compiled with `loss`, `metrics`, `optimizer` (see the module docstring)."""

    net: str
    loss: Any
    metrics: Any = ()
    optimizer: tuple = ("SGD", {"learning_rate": 0.1})
    loss_weights: Any = None
    weighted_metrics: Any = None

    def __call__(self, k):
        model = nontrivial_weights(NETS[self.net](k))
        loss = custom_loss if self.loss == "custom" else _structure(k, self.loss, "losses")
        metrics = _structure(k, list(self.metrics) if isinstance(self.metrics, tuple) else self.metrics, "metrics")
        kwargs = {}
        if self.loss_weights is not None:
            kwargs["loss_weights"] = self.loss_weights
        if self.weighted_metrics is not None:
            kwargs["weighted_metrics"] = list(self.weighted_metrics)
        model.compile(optimizer=_object(k, self.optimizer, "optimizers"), loss=loss, metrics=metrics, **kwargs)
        return model

    def input_shapes(self):
        return INPUTS.get(self.net, [(6,)])
