"""The attention family TF.js 4.22 lacks: MultiHeadAttention, Attention, AdditiveAttention, and EinsumDense (the
layer MultiHeadAttention's projections are made of).

Attention becomes Dense, Dot, Softmax and Rescaling layers on rank-3 tensors, which TF.js's Dot takes (it throws
above rank 3); MultiHeadAttention is split head by head, each head's projections being a slice of the stored
kernels (derived weights, `Context.derive`). What changes the computation and is not lowered is refused by
name: masks (an `attention_mask`, a Keras mask reaching the inputs), returned attention scores, other attention
axes, a causal mask over lengths the file does not fix.
"""

from __future__ import annotations

import math
import re

import numpy as np

from converter.lowering.engine import Refuse, Site, Step, f32, make_entry, rule

INFERENCE_NEUTRAL = {
    "kernel_initializer",
    "bias_initializer",
    "kernel_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "kernel_constraint",
    "bias_constraint",
    "seed",
    "dropout",  # identity at inference
}
MHA_KEYS = {
    "num_heads",
    "key_dim",
    "value_dim",
    "use_bias",
    "output_shape",
    "attention_axes",
    "use_gate",
    "sliding_window",
    "flash_attention",  # how Keras 3 schedules the computation on some backends, not what it computes
    "query_shape",  # tf_keras records the shapes it was built with
    "key_shape",
    "value_shape",
    "softmax_robust_masking",  # how tf_keras applies a mask: no mask is lowered
}
ATTENTION_KEYS = {"use_scale", "score_mode", "causal"}
EINSUM_KEYS = {"output_shape", "equation", "activation", "bias_axes", "quantization_config"}
CALL_KEYS = {"use_causal_mask", "return_attention_scores", "attention_mask", "training"}
# What Keras adds to a masked attention score (keras/src/backend/tensorflow/nn.py _get_large_negative, used by
# Keras 3's dot_product_attention; -1e9 in tf_keras's masked softmax, Keras 3's Softmax and Attention layers).
KERAS3_DOT_PRODUCT_NEGATIVE = f32(-0.7 * 3.38953e38)
MASK_NEGATIVE = -1e9


def _call(site: Site) -> tuple[list[list], dict]:
    """The refs of the layer's one call, and its keyword arguments; refuses what changes the computation."""
    nodes = site.entry.get("inbound_nodes") or []
    if not site.functional or len(nodes) != 1:
        raise Refuse(f"{site.cls} is lowered when called once, in a functional model")
    refs = [[r[0], r[1], r[2], {}] for r in nodes[0]]
    kwargs = dict(nodes[0][0][3]) if nodes[0] and len(nodes[0][0]) > 3 else {}
    unknown = sorted(set(kwargs) - CALL_KEYS)
    if unknown:
        raise Refuse(f"{site.cls} called with {', '.join(unknown)}, which is not lowered")
    if kwargs.get("attention_mask"):
        raise Refuse(f"{site.cls} called with an attention_mask: masks are not lowered")
    if kwargs.get("return_attention_scores"):
        raise Refuse(f"{site.cls} returning its attention scores is not lowered (TF.js layers have one output)")
    if kwargs.get("training"):
        raise Refuse(f"{site.cls} called with training=True (dropout at inference) is not lowered")
    if site.masked:
        raise Refuse(
            f"an input of {site.cls} may carry a Keras mask (Embedding(mask_zero=True) or Masking upstream), "
            "which it applies to the scores: masks are not lowered"
        )
    return refs, kwargs


def _shape(site: Site, i: int, fallback=None) -> list | None:
    shapes = site.shapes
    shape = shapes[i] if i < len(shapes) else None
    return list(shape) if shape is not None else (list(fallback) if isinstance(fallback, list) else None)


def _static(shape: list | None, axis: int, what: str, site: Site) -> int:
    size = shape[axis] if shape is not None and len(shape) > axis else None
    if not isinstance(size, int):
        raise Refuse(f"{site.cls} {what} needs the {_axis_name(axis)} of its inputs, which the file does not fix")
    return size


def _axis_name(axis: int) -> str:
    return "sequence length" if axis == 1 else "feature size"


class Graph:
    """The layers replacing one call of the user's layer: `add` names each `<name>__<role>` (role None: the
    user's name, on the last) and takes refs to its inputs; it returns a ref to its output."""

    def __init__(self, site: Site):
        self.site, self.name = site, site.name
        self.entries: list[dict] = []

    def add(self, cls: str, config: dict, role: str | None, *inputs: list) -> list:
        name = self.name if role is None else f"{self.name}__{role}"
        self.entries.append(make_entry(cls, config, name, [[list(i) for i in inputs]]))
        return [name, 0, 0, {}]

    def dense(self, role: str | None, x: list, units: int, use_bias: bool, activation="linear") -> list:
        return self.add("Dense", {"units": int(units), "activation": activation, "use_bias": use_bias}, role, x)

    def per_step_reshape(self, role: str | None, x: list, length: int | None, target: list) -> list:
        """[B, length, ...] -> [B, length, *target]: a Reshape to the static length when the file fixes it,
        else TimeDistributed(Reshape(target)), which keeps the length TF.js infers (a -1 would leave it
        unknown in TF.js's static shape, which a later Flatten or Dense over it cannot build on)."""
        if length is not None:
            return self.add("Reshape", {"target_shape": [length, *target]}, role, x)
        inner = {"class_name": "Reshape", "config": {"target_shape": list(target), "name": f"{self.name}__{role}_step"}}
        return self.add("TimeDistributed", {"layer": inner}, role, x)

    def rescale(self, role: str, x: list, scale: float) -> list:
        return self.add("Rescaling", {"scale": f32(scale), "offset": 0.0}, role, x)

    def constant(self, layer: str, weight: str, value: np.ndarray):
        value = np.asarray(value, dtype=np.float32)
        self.site.ctx.derive(f"{self.name}__{layer}/{weight}", self.name, value.shape, lambda: value)

    def causal_bias(self, scores: list, t: int, s: int, negative: float) -> list:
        """A [T, S] bias, `negative` above the diagonal and 0 elsewhere, from constant Dense layers on the
        (finite) scores: column index s minus row index t, clipped to [0, 1] by ReLU(max_value=1), scaled."""
        col = self.dense("causal_col", scores, s, True)  # [t, s] = s
        self.constant("causal_col", "kernel", np.zeros((s, s)))
        self.constant("causal_col", "bias", np.arange(s))
        rows = self.add("Permute", {"dims": [2, 1]}, "causal_scores_t", scores)
        row = self.dense("causal_row", rows, t, True)  # [s, t] = -t
        self.constant("causal_row", "kernel", np.zeros((t, t)))
        self.constant("causal_row", "bias", -np.arange(t))
        row = self.add("Permute", {"dims": [2, 1]}, "causal_row_t", row)
        ahead = self.add("Add", {}, "causal_ahead", col, row)  # s - t
        step = self.add("ReLU", {"max_value": 1.0}, "causal_step", ahead)  # 1 where s > t, else 0
        return self.rescale("causal_bias", step, negative)

    def attend(self, scores: list, values: list, role: str | None, bias: list | None, tag: str = "") -> list:
        """softmax(scores [+ bias]) . values."""
        if bias is not None:
            scores = self.add("Add", {}, f"s{tag}_masked", scores, bias)
        weights = self.add("Softmax", {"axis": -1}, f"p{tag}", scores)
        return self.add("Dot", {"axes": [2, 1], "normalize": False}, role, weights, values)


def _causal(site: Site, kwargs: dict) -> bool:
    return bool(kwargs.get("use_causal_mask") or site.cfg.get("causal"))


# --- MultiHeadAttention --------------------------------------------------------------------------------


@rule("multi_head_attention", "MultiHeadAttention")
def multi_head_attention(site: Site):
    site.expect(*INFERENCE_NEUTRAL, *MHA_KEYS)
    cfg, ctx, name = site.cfg, site.ctx, site.name
    refs, kwargs = _call(site)
    if cfg.get("use_gate"):
        raise Refuse("MultiHeadAttention with use_gate (gated attention) is not lowered")
    if cfg.get("sliding_window") is not None:
        raise Refuse("MultiHeadAttention with a sliding_window mask is not lowered")
    query, value = refs[0], refs[1]
    key = refs[2] if len(refs) > 2 else value
    q_shape = _shape(site, 0, cfg.get("query_shape"))
    if q_shape is None:
        raise Refuse("MultiHeadAttention needs the rank of its query, which the file does not record")
    if len(q_shape) != 3:
        raise Refuse(f"MultiHeadAttention on a rank-{len(q_shape)} query: TF.js's Dot takes rank <= 3")
    axes = cfg.get("attention_axes")
    axes = [axes] if isinstance(axes, int) else axes
    if axes is not None and [a % 3 for a in axes] != [1]:
        raise Refuse(f"MultiHeadAttention over attention_axes {axes} is not lowered (only the sequence axis)")
    wq, wk, wv, wo = (site.kernel(f"{p}/kernel") for p in ("query", "key", "value", "attention_output"))
    heads, key_dim, value_dim = wq[1], wq[2], wv[2]
    if (heads, key_dim) != (cfg.get("num_heads"), cfg.get("key_dim")) or wk[1:] != wq[1:] or wo[:2] != wv[1:]:
        raise Refuse("MultiHeadAttention's weights do not match its num_heads and key_dim")
    out_shape = list(wo[2:])
    use_bias = bool(cfg.get("use_bias", True))
    causal = _causal(site, kwargs)
    # Keras 3 without dropout runs ops.dot_product_attention: the scores are scaled; otherwise the query is.
    scaled_scores = ctx.keras == 3 and not cfg.get("dropout")
    negative = KERAS3_DOT_PRODUCT_NEGATIVE if scaled_scores else MASK_NEGATIVE
    scale = 1.0 / math.sqrt(float(key_dim))

    g = Graph(site)
    bias = None
    if causal:
        v_shape = _shape(site, 1, cfg.get("value_shape"))
        t, s = _static(q_shape, 1, "with a causal mask", site), _static(v_shape, 1, "with a causal mask", site)
    outputs = []
    for h in range(heads):
        q = g.dense(f"q{h}", query, key_dim, use_bias)
        k = g.dense(f"k{h}", key, key_dim, use_bias)
        v = g.dense(f"v{h}", value, value_dim, use_bias)
        for role, stored in ((f"q{h}", "query"), (f"k{h}", "key"), (f"v{h}", "value")):
            _derive_head(ctx, name, role, stored, h, use_bias)
        if not scaled_scores:
            q = g.rescale(f"q{h}_scaled", q, scale)
        scores = g.add("Dot", {"axes": [2, 2], "normalize": False}, f"s{h}", q, k)
        if causal and bias is None:
            bias = g.causal_bias(scores, t, s, negative)
        if scaled_scores:
            scores = g.rescale(f"s{h}_scaled", scores, scale)
        outputs.append(g.attend(scores, v, f"o{h}", bias, str(h)))
    heads_out = g.add("Concatenate", {"axis": -1}, "heads", *outputs) if heads > 1 else outputs[0]
    units = int(np.prod(out_shape))
    reshape = len(out_shape) > 1
    g.dense("output" if reshape else None, heads_out, units, use_bias)
    out_layer = f"{name}__output" if reshape else name
    ctx.derive(f"{out_layer}/kernel", name, (heads * value_dim, units), _flat, f"{name}/attention_output/kernel")
    ctx.replace(f"{name}/attention_output/kernel")
    if use_bias:
        ctx.derive(f"{out_layer}/bias", name, (units,), np.ravel, f"{name}/attention_output/bias")
        ctx.replace(f"{name}/attention_output/bias")
    if reshape:
        length = q_shape[1] if isinstance(q_shape[1], int) else None
        g.per_step_reshape(None, [out_layer, 0, 0, {}], length, out_shape)
    return g.entries, (
        f"MultiHeadAttention({heads} heads of {key_dim}{'' if value_dim == key_dim else f'/{value_dim}'}"
        f"{', causal' if causal else ''}) -> per head Dense q/k/v + Dot + Softmax + Dot; Concatenate + Dense"
    )


def _flat(w: np.ndarray) -> np.ndarray:
    """[heads, value_dim, *output] -> [heads * value_dim, prod(output)]: the concatenated heads' kernel."""
    return w.reshape(w.shape[0] * w.shape[1], -1)


def _derive_head(ctx, name: str, role: str, stored: str, h: int, use_bias: bool):
    kernel, bias = f"{name}/{stored}/kernel", f"{name}/{stored}/bias"
    shape = ctx.weight_shapes[kernel]
    ctx.derive(f"{name}__{role}/kernel", name, (shape[0], shape[2]), lambda w: w[:, h, :], kernel)
    ctx.replace(kernel)
    if use_bias:
        ctx.derive(f"{name}__{role}/bias", name, (shape[2],), lambda b: b[h, :], bias)
        ctx.replace(bias)


# --- Attention, AdditiveAttention ---------------------------------------------------------------------


def _length(site: Site) -> int | None:
    """The query's length, when the file fixes it."""
    shape = _shape(site, 0)
    return shape[1] if shape is not None and isinstance(shape[1], int) else None


def _broadcast_sum(g: Graph, site: Site, query: list, key: list, dim: int, s: int) -> list:
    """q[:, :, None] + k[:, None]: [B, T, S, D] from q as [T, 1, D], k as [1, S, D], and a broadcast Add."""
    q4 = g.per_step_reshape("query_4d", query, _length(site), [1, dim])
    k4 = g.add("Reshape", {"target_shape": [1, s, dim]}, "key_4d", key)
    return g.add("Add", {}, "sum", q4, k4)


@rule("attention", "Attention")
def attention(site: Site):
    site.expect(*INFERENCE_NEUTRAL, *ATTENTION_KEYS)
    cfg, name = site.cfg, site.name
    refs, kwargs = _call(site)
    query, value = refs[0], refs[1]
    key = refs[2] if len(refs) > 2 else value
    mode = cfg.get("score_mode", "dot")
    if mode not in ("dot", "concat"):
        raise Refuse(f"Attention score_mode {mode!r} is not lowered")
    causal = _causal(site, kwargs)
    g = Graph(site)
    if mode == "dot":
        scores = g.add("Dot", {"axes": [2, 2], "normalize": False}, "scores", query, key)
        raw = scores
        if cfg.get("use_scale"):
            scores = g.rescale("scaled", scores, float(site.fold(f"{name}/scale")))
    else:
        q_shape, k_shape = _shape(site, 0), _shape(site, 2 if len(refs) > 2 else 1)
        dim = _static(q_shape, 2, "with score_mode='concat'", site)
        s = _static(k_shape, 1, "with score_mode='concat'", site)
        x = _broadcast_sum(g, site, query, key, dim, s)
        if cfg.get("use_scale"):
            x = g.rescale("scaled", x, float(site.fold(f"{name}/scale")))
        x = g.add("Activation", {"activation": "tanh"}, "tanh", x)
        x = g.dense("reduce", x, 1, False)
        g.constant("reduce", "kernel", np.ones((dim, 1)))
        raw = g.per_step_reshape("scores", x, _length(site), [s])
        scores = g.rescale("weighted", raw, float(site.fold(f"{name}/concat_score_weight")))
    bias = _causal_bias(g, site, raw, refs, causal)
    g.attend(scores, value, None, bias)
    how = "Dot" if mode == "dot" else "broadcast Add + tanh + Dense(1)"
    return g.entries, f"Attention(score_mode={mode}{', causal' if causal else ''}) -> {how} + Softmax + Dot"


def _causal_bias(g: Graph, site: Site, raw: list, refs: list, causal: bool) -> list | None:
    """Keras's causal mask (Attention, AdditiveAttention: -1e9 added to the masked scores, in both flavours)."""
    if not causal:
        return None
    t = _static(_shape(site, 0), 1, "with a causal mask", site)
    s = _static(_shape(site, 1), 1, "with a causal mask", site)
    return g.causal_bias(raw, t, s, MASK_NEGATIVE)


@rule("additive_attention", "AdditiveAttention")
def additive_attention(site: Site):
    site.expect(*INFERENCE_NEUTRAL, *ATTENTION_KEYS)
    cfg, ctx, name = site.cfg, site.ctx, site.name
    refs, kwargs = _call(site)
    query, value = refs[0], refs[1]
    key = refs[2] if len(refs) > 2 else value
    causal = _causal(site, kwargs)
    k_shape = _shape(site, 2 if len(refs) > 2 else 1)
    s = _static(k_shape, 1, "(its scores are reshaped to [T, S])", site)
    g = Graph(site)
    if cfg.get("use_scale", True):
        (dim,) = site.kernel("scale")
        ctx.derive(f"{name}__reduce/kernel", name, (dim, 1), lambda w: w.reshape(-1, 1), f"{name}/scale")
        ctx.replace(f"{name}/scale")
    else:
        dim = _static(_shape(site, 0), 2, "without use_scale", site)
        g.constant("reduce", "kernel", np.ones((dim, 1)))
    x = _broadcast_sum(g, site, query, key, dim, s)
    x = g.add("Activation", {"activation": "tanh"}, "tanh", x)
    x = g.dense("reduce", x, 1, False)
    scores = g.per_step_reshape("scores", x, _length(site), [s])
    g.attend(scores, value, None, _causal_bias(g, site, scores, refs, causal))
    what = "AdditiveAttention(causal)" if causal else "AdditiveAttention"
    return g.entries, f"{what} -> broadcast Add + tanh + Dense(1) + Softmax + Dot"


# --- EinsumDense ---------------------------------------------------------------------------------------

EQUATION = re.compile(r"(\.\.\.)?([a-zA-Z]+),([a-zA-Z]+)->(\.\.\.)?([a-zA-Z]+)")


@rule("einsum_dense", "EinsumDense")
def einsum_dense(site: Site):
    site.expect(*INFERENCE_NEUTRAL, *EINSUM_KEYS)
    cfg, ctx, name = site.cfg, site.ctx, site.name
    if cfg.get("quantization_config") is not None:
        raise Refuse("a quantized EinsumDense is not lowered")
    equation = str(cfg.get("equation"))
    parsed = _contraction(equation)
    if parsed is None:
        raise Refuse(f"EinsumDense equation {equation!r} is not lowered (only a contraction of the input's last axis)")
    ellipsis, mid, c, kernel_letters, out = parsed
    bias_axes = cfg.get("bias_axes") or ""
    rest = [x for x in out if x in kernel_letters]
    if not set(bias_axes) <= set(rest):
        raise Refuse(f"EinsumDense bias_axes {bias_axes!r} include an input axis: not lowered")
    kernel = site.kernel()
    sizes = dict(zip(kernel_letters, kernel))
    units = int(np.prod([sizes[x] for x in rest]))
    perm = [kernel_letters.index(x) for x in (c, *rest)]
    ctx.transforms[f"{name}/kernel"] = lambda w: np.transpose(w, perm).reshape(w.shape[perm[0]], -1)
    if bias_axes:
        ctx.transforms[f"{name}/bias"] = lambda b: _einsum_bias(b, out, bias_axes, rest, sizes)
    steps: list[Step] = []
    if len(rest) > 1:
        steps.append(_einsum_reshape(site, ellipsis, mid, [sizes[x] for x in rest]))
    order = [*mid, *rest]
    if order != out:
        steps.append(("Permute", {"dims": [order.index(x) + 1 for x in out]}, "permute"))
    dense: Step = (
        "Dense",
        {"units": units, "activation": cfg.get("activation") or "linear", "use_bias": bool(bias_axes)},
        None,
    )
    return (
        site.chain([dense, *steps]),
        f"EinsumDense({equation}) -> Dense({units})" + "".join(f" + {cls}" for cls, _, _ in steps),
    )


def _contraction(equation: str):
    """(ellipsis, mid letters, contracted letter, kernel letters, output letters, batch excluded) when the
    equation contracts the input's last axis alone, keeps the batch axis first and every other input axis,
    and moves no input axis with an ellipsis; else None."""
    m = EQUATION.fullmatch(equation.replace(" ", ""))
    if m is None or bool(m.group(1)) != bool(m.group(4)):
        return None
    ellipsis = bool(m.group(1))
    inp, kernel, out = list(m.group(2)), list(m.group(3)), list(m.group(5))
    if not ellipsis:
        if len(inp) < 2 or not out or inp[0] != out[0]:
            return None
        inp, out = inp[1:], out[1:]
    c, mid = inp[-1], inp[:-1]
    rest = [x for x in kernel if x != c]
    if (
        any(len(set(x)) != len(x) for x in (inp, kernel, out))
        or c not in kernel
        or c in out
        or set(out) != set(mid) | set(rest)
        or set(rest) & set(mid)
        or (ellipsis and out != [*mid, *[x for x in out if x in rest]])
    ):
        return None
    return ellipsis, mid, c, kernel, out


def _einsum_reshape(site: Site, ellipsis: bool, mid: list, tail: list[int]) -> Step:
    """The Dense's last axis split into the kernel's output axes: a Reshape to the input's other axes (static
    sizes) and `tail`; with one input axis of unknown size (a sequence), TimeDistributed(Reshape(tail))."""
    shape = site.shape
    if ellipsis or len(mid) > 1:
        if shape is None or any(d is None for d in shape[1:-1]):
            raise Refuse("an EinsumDense producing several axes needs its input's sizes, which the file does not fix")
        return ("Reshape", {"target_shape": [*shape[1:-1], *tail]}, "reshape")
    if not mid:
        return ("Reshape", {"target_shape": tail}, "reshape")
    length = shape[1] if shape is not None and isinstance(shape[1], int) else None
    if length is not None:
        return ("Reshape", {"target_shape": [length, *tail]}, "reshape")
    inner = {"class_name": "Reshape", "config": {"target_shape": tail, "name": f"{site.name}__reshape_step"}}
    return ("TimeDistributed", {"layer": inner}, "reshape")


def _einsum_bias(b: np.ndarray, out: list, bias_axes: str, rest: list, sizes: dict) -> np.ndarray:
    """Keras's bias (over the output axes from the first bias axis on, 1 where not a bias axis) as the Dense's:
    broadcast over the kernel's output axes in output order, flattened."""
    first = min(out.index(x) for x in bias_axes)
    tail = out[first:]
    kept = [x for x in tail if x in rest]  # a suffix of `rest`
    b = b.reshape([b.shape[tail.index(x)] for x in kept])
    b = b.reshape([1] * (len(rest) - len(kept)) + list(b.shape))
    return np.broadcast_to(b, [sizes[x] for x in rest]).reshape(-1)
