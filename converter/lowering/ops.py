"""tf_keras's TFOpLambda and SlicingOpLambda layers (a TensorFlow function applied to a Keras tensor: `x + 3.0`,
`tf.math.multiply(x, y)`, `tf.nn.silu(x)`, `tf.reshape(x, ...)`, `x[:, 1:]`) as the TF.js layers computing the
same. The config names the function and the call's node holds its constant arguments: data, never code. Only
the functions in these tables are lowered; any other is refused by `support`, by name.

(Keras 3 writes tensor arithmetic as op nodes instead: `topology._lower_op`.)
"""

from __future__ import annotations

import math

import numpy as np

from converter.lowering.engine import TF_OPS_RANK_KEEP, Refuse, Site, Step, f32, make_entry, rule
from converter.lowering.layers import SEQUENCE_2D
from converter.lowering.normalization import static_dims

ARITHMETIC = {
    "__operators__.add": "add",
    "math.add": "add",
    "math.subtract": "subtract",
    "math.multiply": "multiply",
    "math.truediv": "divide",
    "math.divide": "divide",
}
# TensorFlow function -> the TF.js activation computing it (tf.nn.silu is x * sigmoid(x), TF.js's swish).
ACTIVATIONS = {
    "nn.relu": "relu",
    "nn.relu6": "relu6",
    "math.sigmoid": "sigmoid",
    "nn.sigmoid": "sigmoid",
    "math.tanh": "tanh",
    "nn.tanh": "tanh",
    "nn.silu": "swish",
    "nn.swish": "swish",
    "nn.gelu": "gelu",
    "nn.softmax": "softmax",
    "nn.elu": "elu",
    "nn.selu": "selu",
    "math.softplus": "softplus",
    "nn.softplus": "softplus",
    "math.softsign": "softsign",
    "nn.softsign": "softsign",
}
# Keyword arguments an activation may carry, with the only value TF.js's activation computes.
ACTIVATION_KWARGS = {"approximate": False, "axis": -1}
RESHAPES = ("reshape",)
TRANSPOSES = ("transpose", "compat.v1.transpose")
CONCATS = ("concat",)
CONSTANT = "_CONSTANT_VALUE"  # tf_keras's marker of a constant first argument in a TFOpLambda's node
TF_OPS_RANK_KEEP.update(ARITHMETIC, ACTIVATIONS, CONCATS)  # for rank inference (engine.out_rank)


def _call(site: Site) -> tuple[list, dict]:
    """The one call's input refs (without their keyword arguments) and the keyword arguments of the first."""
    nodes = site.entry.get("inbound_nodes") or []
    if len(nodes) != 1 or not nodes[0]:
        raise Refuse(f"{site.name} ({site.cfg.get('function')}) is called {len(nodes)} times")
    node = nodes[0]
    kwargs = dict(node[0][3]) if len(node[0]) > 3 and isinstance(node[0][3], dict) else {}
    kwargs.pop("name", None)  # the op's name in the TensorFlow graph
    return [list(ref[:3]) + [{}] for ref in node], kwargs


def _no_more(site: Site, kwargs: dict) -> None:
    if kwargs:
        raise Refuse(f"{site.cfg.get('function')} with argument(s) {', '.join(sorted(kwargs))} is not lowered")


def _is_ref(value) -> bool:
    return isinstance(value, list) and len(value) == 3 and isinstance(value[0], str)


def _entry(site: Site, cls: str, config: dict, inputs: list) -> dict:
    return make_entry(cls, config, site.name, [inputs])


def _per_channel(site: Site, value) -> float | list:
    """A constant operand as a Rescaling argument: a number, or a list over the last axis, when broadcasting it
    against the input leaves the input's shape (TF.js's layer keeps its input's static shape)."""
    c = np.asarray(value, dtype=np.float32)
    if c.ndim == 0:
        return float(c)
    rank = site.rank
    if rank is None or c.ndim > rank or any(d != 1 for d in c.shape[:-1]):
        raise Refuse(f"a constant of shape {c.shape} may broadcast the input to another shape")
    if c.size == 1:
        return float(c.reshape(()))
    last = site.shape[-1] if site.shape else None
    if last != c.shape[-1]:
        raise Refuse(
            f"a constant over the last axis ({c.shape[-1]} values) needs the input's last dimension to be "
            f"{c.shape[-1]}, which this file {'contradicts' if last else 'does not record'}"
        )
    return c.reshape(-1).astype(np.float64).tolist()


def _scaled(values, fn) -> float | list:
    return fn(values) if isinstance(values, float) else [fn(v) for v in values]


def _operands(site: Site):
    """(op, x ref, y) of an arithmetic TFOpLambda; x may be tf_keras's constant marker, y a ref or a constant."""
    fn = str(site.cfg.get("function"))
    refs, kwargs = _call(site)
    if "y" not in kwargs or len(refs) != 1:
        raise Refuse(f"tf.{fn} is lowered with two operands only")
    x, y = refs[0], kwargs.pop("y")
    _no_more(site, kwargs)
    return ARITHMETIC[fn], x, y


@rule("tensor_op", "TFOpLambda")
def tf_tensor_op(site: Site):
    """tf_keras's arithmetic of two tensors, as Keras 3's op nodes of it (topology._lower_op)."""
    fn = site.cfg.get("function")
    if fn not in ARITHMETIC:
        return None
    op, x, y = _operands(site)
    if x[0] == CONSTANT or not _is_ref(y):
        return None  # with a constant: scalar_op
    other = [*y, {}]
    if op in ("add", "multiply"):
        cls = "Add" if op == "add" else "Multiply"
        return [_entry(site, cls, {}, [x, other])], f"tf.{fn} of two tensors -> {cls}"
    if op == "subtract":
        negate = make_entry("Rescaling", {"scale": -1.0, "offset": 0.0}, f"{site.name}__negate", [[other]])
        add = _entry(site, "Add", {}, [x, [f"{site.name}__negate", 0, 0, {}]])
        return [negate, add], f"tf.{fn} of two tensors -> Rescaling(scale=-1) + Add"
    raise Refuse(f"tf.{fn} of two tensors: no TF.js layer divides")


@rule("scalar_op", "TFOpLambda")
def tf_scalar_op(site: Site):
    """tf_keras's arithmetic of a tensor and a constant (a number, or one per channel) as a Rescaling."""
    fn = site.cfg.get("function")
    if fn not in ARITHMETIC:
        return None
    op, x, y = _operands(site)
    constant_first = x[0] == CONSTANT
    if constant_first and not _is_ref(y):
        raise Refuse(f"tf.{fn} of two constants is not lowered")
    tensor = [*y, {}] if constant_first else x
    c = _per_channel(site, x[2] if constant_first else y)
    scale: float | list
    offset: float | list
    if op == "add":
        scale, offset = 1.0, c
    elif op == "subtract":
        scale, offset = (-1.0, c) if constant_first else (1.0, _scaled(c, lambda v: -v))
    elif op == "multiply":
        scale, offset = c, 0.0
    elif constant_first or 0.0 in (c if isinstance(c, list) else [c]):
        raise Refuse(f"tf.{fn} of a constant by a tensor, or by zero: no TF.js layer computes it")
    else:
        scale, offset = _scaled(c, lambda v: f32(1.0 / v)), 0.0
    return [_entry(site, "Rescaling", {"scale": scale, "offset": offset}, [tensor])], (
        f"tf.{fn} with a constant -> Rescaling(scale, offset)"
    )


@rule("tf_op_lambda", "TFOpLambda")
def tf_op_lambda(site: Site):
    """tf_keras's activations, reshape, transpose and concat of tensors."""
    fn = str(site.cfg.get("function"))
    if fn in ACTIVATIONS:
        refs, kwargs = _call(site)
        for key, want in ACTIVATION_KWARGS.items():
            if key in kwargs and kwargs.pop(key) != want:
                raise Refuse(f"{fn} with {key} other than {want} has no TF.js activation")
        _no_more(site, kwargs)
        return [_entry(site, "Activation", {"activation": ACTIVATIONS[fn]}, refs[:1])], (
            f"tf.{fn} -> Activation({ACTIVATIONS[fn]})"
        )
    if fn in RESHAPES:
        return _reshape(site)
    if fn in TRANSPOSES:
        refs, kwargs = _call(site)
        perm, conjugate = kwargs.pop("perm", None), kwargs.pop("conjugate", False)
        _no_more(site, kwargs)
        if not isinstance(perm, list) or not perm or perm[0] != 0 or conjugate:
            raise Refuse(f"tf.{fn} with perm={perm} (the batch axis moved) is not lowered")
        return [_entry(site, "Permute", {"dims": perm[1:]}, refs[:1])], f"tf.{fn} -> Permute({perm[1:]})"
    if fn in CONCATS:
        refs, kwargs = _call(site)
        axis = kwargs.pop("axis", None)
        _no_more(site, kwargs)
        if not isinstance(axis, int) or axis == 0:
            raise Refuse(f"tf.concat over axis {axis} is not lowered")
        return [_entry(site, "Concatenate", {"axis": axis}, refs)], f"tf.concat(axis={axis}) -> Concatenate"
    return None  # support refuses it, naming the function


def _reshape(site: Site):
    refs, kwargs = _call(site)
    shape = kwargs.pop("shape", None)
    _no_more(site, kwargs)
    if (
        not isinstance(shape, list)
        or not shape
        or shape[0] not in (-1, None)
        or not all(isinstance(d, int) for d in shape[1:])
    ):
        raise Refuse(f"tf.reshape to {shape} (not a batch of a fixed shape) is not lowered")
    target = list(shape[1:])
    if -1 in target:  # resolved from the static input shape: TF.js keeps a -1 in its static shape
        dims = static_dims(site)
        known = math.prod(d for d in target if d != -1)
        if dims is None or target.count(-1) > 1 or not known or math.prod(dims) % known:
            raise Refuse(f"tf.reshape to {shape} needs the input's static shape, which this file does not record")
        target[target.index(-1)] = math.prod(dims) // known
    return [_entry(site, "Reshape", {"target_shape": target}, refs[:1])], f"tf.reshape -> Reshape({target})"


@rule("tf_op_slice", "SlicingOpLambda")
def tf_op_slice(site: Site):
    """`x[:, a:b]` (rank 3) and `x[:, a:b, c:d]` (rank 4, channels_last): a crop of the time or spatial axes."""
    refs, kwargs = _call(site)
    spec = kwargs.pop("slice_spec", None)
    _no_more(site, kwargs)
    rank, dims = site.rank, static_dims(site)
    if site.cfg.get("function") != "__operators__.getitem" or not isinstance(spec, list) or rank not in (3, 4):
        raise Refuse(f"the slice {spec} of a rank-{rank} tensor is not lowered")
    spec = spec + [{"start": None, "stop": None, "step": None}] * (rank - len(spec))
    if len(spec) != rank or not all(isinstance(s, dict) and s.get("step") in (None, 1) for s in spec):
        raise Refuse(f"the slice {spec} (an index, a step or an ellipsis) is not lowered")
    if any(s.get("start") is not None or s.get("stop") is not None for s in (spec[0], spec[-1])):
        raise Refuse(f"the slice {spec} of the batch or the last axis is not lowered")
    crops = [_crop(s, None if dims is None else dims[i], spec) for i, s in enumerate(spec[1:-1])]
    if rank == 4:
        steps: list[Step] = [("Cropping2D", {"cropping": crops, "data_format": "channels_last"}, None)]
        return site.chain(steps, first_inputs=[refs[:1]]), "tf slice -> Cropping2D"
    inner_expand = {"class_name": "RepeatVector", "config": {"n": 1, "name": f"{site.name}__expand_inner"}}
    inner_squeeze = {"class_name": "Flatten", "config": {"name": f"{site.name}__squeeze_inner"}}
    steps = [
        ("TimeDistributed", {"layer": inner_expand}, "expand"),
        (SEQUENCE_2D["Cropping1D"], {"cropping": [crops[0], [0, 0]], "data_format": "channels_last"}, "crop"),
        ("TimeDistributed", {"layer": inner_squeeze}, None),
    ]
    return site.chain(steps, first_inputs=[refs[:1]]), "tf slice -> Cropping2D on the time axis"


def _crop(s: dict, size: int | None, spec) -> list[int]:
    """(cropped at the start, cropped at the end) of one axis sliced [start:stop]."""
    start, stop = s.get("start"), s.get("stop")
    if not all(v is None or isinstance(v, int) for v in (start, stop)):
        raise Refuse(f"the slice {spec} has bounds that are not integers")
    if (start is not None and start < 0) or (stop is not None and stop >= 0):
        if size is None:
            raise Refuse(f"the slice {spec} needs the input's static shape, which this file does not record")
        start = None if start is None else start % size if start < 0 else start
        stop = None if stop is None else stop - size if stop >= 0 else stop
    head, tail = start or 0, -(stop or 0)
    if head < 0 or tail < 0 or (size is not None and head + tail >= size):
        raise Refuse(f"the slice {spec} is empty or out of range")
    return [head, tail]
