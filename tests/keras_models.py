"""Small Keras models built the same way by Keras 3 and tf_keras, and an artifact reader.

Every builder takes the Keras module (`keras` or `tf_keras`) and names every layer, so that the
two flavours give the same layer and weight names. Used by tests/test_converter.py and benchmarks/.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def mlp(k):
    x = k.Input((4,), name="x")
    y = k.layers.Dense(8, activation="relu", name="d1")(x)
    return k.Model(x, k.layers.Dense(3, name="d2")(y), name="mlp")


def sequential(k):
    return k.Sequential(
        [
            k.Input((4,)),
            k.layers.Dense(5, name="d"),
            k.layers.BatchNormalization(name="bn"),
            k.layers.Dense(2, name="out"),
        ],
        name="seq",
    )


def sequential_built(k):
    """A Sequential model without an Input, given its input shape by build()."""
    model = k.Sequential([k.layers.Dense(5, name="d"), k.layers.Dense(2, name="out")], name="built")
    model.build((None, 4))
    return model


def nested(k):
    inner = k.Sequential([k.Input((6,)), k.layers.Dense(4, name="inner_d")], name="inner")
    x = k.Input((6,), name="x")
    return k.Model(x, k.layers.Dense(2, name="head")(inner(x)), name="outer")


def cnn(k):
    x = k.Input((8, 8, 3), name="x")
    y = k.layers.Conv2D(4, 3, name="conv")(x)
    y = k.layers.BatchNormalization(name="bn")(y)
    y = k.layers.GlobalAveragePooling2D(name="gap")(y)
    return k.Model(x, k.layers.Dense(2, name="out")(y), name="cnn")


def lstm(k):
    x = k.Input((5, 3), name="x")
    return k.Model(x, k.layers.LSTM(4, name="lstm")(x), name="lstm_model")


def gru(k):
    x = k.Input((5, 3), name="x")
    return k.Model(x, k.layers.GRU(4, reset_after=False, name="gru")(x), name="gru_model")


def bidirectional(k):
    x = k.Input((5, 3), name="x")
    y = k.layers.Bidirectional(k.layers.LSTM(4, name="lstm"), name="bidi")(x)
    return k.Model(x, k.layers.Dense(2, name="out")(y), name="bidi_model")


def time_distributed(k):
    x = k.Input((4, 3), name="x")
    y = k.layers.TimeDistributed(k.layers.Dense(2, name="inner"), name="td")(x)
    return k.Model(x, y, name="td_model")


def stacked(k):
    x = k.Input((5, 3), name="x")
    cells = [k.layers.LSTMCell(4, name="c0"), k.layers.GRUCell(3, reset_after=False, name="c1")]
    return k.Model(x, k.layers.RNN(cells, name="rnn")(x), name="stacked")


def embedding_mask(k):
    x = k.Input((5,), dtype="int32", name="tok")
    y = k.layers.Embedding(10, 4, mask_zero=True, name="emb")(x)
    y = k.layers.LSTM(3, name="lstm")(y)
    return k.Model(x, k.layers.Dense(2, name="out")(y), name="masked")


def masking(k):
    x = k.Input((5, 3), name="x")
    y = k.layers.Masking(name="mk")(x)
    return k.Model(x, k.layers.LSTM(3, name="lstm")(y), name="masking")


def initial_state(k):
    x, h, c = k.Input((5, 3), name="x"), k.Input((4,), name="h"), k.Input((4,), name="c")
    y = k.layers.LSTM(4, name="lstm")(x, initial_state=[h, c])
    return k.Model([x, h, c], y, name="init_state")


def conv_variety(k):
    x = k.Input((6, 6, 3), name="x")
    y = k.layers.SeparableConv2D(4, 3, depth_multiplier=2, name="sep")(x)
    y = k.layers.DepthwiseConv2D(3, depth_multiplier=2, name="dw")(y)
    y = k.layers.Conv2DTranspose(3, 2, name="tconv")(y)
    y = k.layers.BatchNormalization(center=False, name="bn")(y)
    y = k.layers.LayerNormalization(name="ln")(y)
    y = k.layers.PReLU(name="prelu")(y)
    y = k.layers.Reshape((9, 3), name="reshape")(y)
    y = k.layers.Conv1D(2, 3, name="conv1d")(y)
    return k.Model(x, y, name="conv_variety")


def rnn_variety(k):
    x = k.Input((3, 4, 4, 2), name="x")
    y = k.layers.ConvLSTM2D(2, 3, name="convlstm")(x)
    y = k.layers.Reshape((4, 2), name="reshape")(y)
    y = k.layers.SimpleRNN(3, return_sequences=True, name="srnn")(y)
    y = k.layers.RNN(k.layers.LSTMCell(2, name="cell"), name="rnn")(y)
    return k.Model(x, y, name="rnn_variety")


BUILDERS = {
    f.__name__: f
    for f in (
        mlp,
        sequential,
        sequential_built,
        nested,
        cnn,
        lstm,
        gru,
        bidirectional,
        time_distributed,
        stacked,
        embedding_mask,
        masking,
        initial_state,
        conv_variety,
        rnn_variety,
    )
}


def randomize(model, seed=0):
    """Give every weight distinct random values (positive ones for variances)."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        value = rng.standard_normal(tuple(w.shape)).astype("float32")
        name = getattr(w, "path", None) or w.name
        w.assign(np.abs(value) + 0.1 if "variance" in name else value)


def copy_weights(src, dst):
    """Copy weights layer by layer, by layer name (nested models recursed)."""
    for layer in src.layers:
        target = dst.get_layer(layer.name)
        if hasattr(layer, "layers"):
            copy_weights(layer, target)
        else:
            target.set_weights(layer.get_weights())


def keras2_weights(model) -> dict[str, np.ndarray]:
    """{TF.js name: value} of a tf_keras model; StackedRNNCells cells become `RNNCell_<i>`."""
    out = {}
    stacked = {}
    for layer in model.layers:
        cell = getattr(layer, "cell", None)
        if cell is not None and type(cell).__name__ == "StackedRNNCells":
            # the middle part is `stacked_rnn_cells_<n>` when others were built earlier in the process
            stacked |= {
                f"{layer.name}/{cell.name}/{c.name}/": f"{layer.name}/RNNCell_{i}/" for i, c in enumerate(cell.cells)
            }
    for w in model.weights:
        name = w.name[:-2] if w.name.endswith(":0") else w.name
        for old, new in stacked.items():
            name = name.replace(old, new)
        out[name] = w.numpy()
    return out


_DTYPES = {"float32": "<f4", "int32": "<i4", "bool": "?", "float16": "<f2", "uint8": "u1", "uint16": "<u2"}


def read_artifact(out_dir, dequantize: bool = True) -> dict[str, np.ndarray]:
    """{name: array} from a TF.js Layers artifact, shards concatenated per group as TF.js does."""
    out_dir = Path(out_dir)
    model = json.loads((out_dir / "model.json").read_text())
    weights = {}
    for group in model["weightsManifest"]:
        data = b"".join((out_dir / p).read_bytes() for p in group["paths"])
        offset = 0
        for entry in group["weights"]:
            q = entry.get("quantization")
            dtype = np.dtype(_DTYPES[q["dtype"] if q else entry["dtype"]])
            n = int(np.prod(entry["shape"], dtype=np.int64))
            array = np.frombuffer(data, dtype, n, offset).reshape(entry["shape"])
            offset += n * dtype.itemsize
            if q and dequantize:
                # As TF.js io_utils does: JavaScript (float64) arithmetic, stored as float32.
                array = (
                    array.astype("float32")
                    if q["dtype"] == "float16"
                    else (array * q["scale"] + q["min"]).astype("float32")
                )
            weights[entry["name"]] = array
        assert offset == len(data), f"{out_dir}: {len(data) - offset} bytes of the shards unaccounted for"
    return weights
