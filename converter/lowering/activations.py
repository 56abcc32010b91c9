"""Activations TF.js lacks (leaky_relu, hard_silu) or computes another way (Keras 3's hard_sigmoid), and
ReLU's arguments TF.js ignores (negative_slope, threshold)."""

from __future__ import annotations

import copy

from converter.lowering.engine import (
    Refuse,
    Site,
    Step,
    activation_name,
    chain,
    f32,
    make_entry,
    output_name,
    rule,
)


@rule("relu_slope", "ReLU")
def relu_slope(site: Site):
    cfg = site.cfg
    s = float(cfg.get("negative_slope") or 0)
    t = float(cfg.get("threshold") or 0)
    m = cfg.get("max_value")
    if s == 0 and t == 0:
        return None
    if s != 0 and t == 0 and m is None:
        return site.chain(
            [("LeakyReLU", {"alpha": f32(s)}, None)]
        ), f"ReLU(negative_slope={s:g}) -> LeakyReLU(alpha={s:g})"
    pos: list[Step] = (
        [("ThresholdedReLU", {"theta": f32(t)}, "positive")] if t != 0 else [("ReLU", {"max_value": m}, "positive")]
    )
    if t != 0 and m is not None:
        pos.append(("ReLU", {"max_value": m}, "positive_max"))
    if s == 0:
        pos[-1] = (pos[-1][0], pos[-1][1], None)
        return site.chain(pos), f"ReLU(threshold={t:g}) -> " + " + ".join(p[0] for p in pos)
    if not site.functional:
        raise Refuse("ReLU with both a slope and a threshold or maximum needs a functional model")
    positive = site.chain(pos)
    negative = site.chain(
        [
            ("Rescaling", {"scale": -1.0, "offset": f32(t)}, "shift"),
            ("ReLU", {}, "negative"),
            ("Rescaling", {"scale": f32(-s), "offset": 0.0}, "scale"),
        ]
    )
    nodes = site.entry.get("inbound_nodes") or []
    add = make_entry(
        "Add",
        {},
        site.name,
        [[[output_name(positive), k, 0, {}], [output_name(negative), k, 0, {}]] for k in range(len(nodes))],
    )
    return (
        [*positive, *negative, add],
        f"ReLU(negative_slope={s:g}, threshold={t:g}, max_value={m}) -> positive part + (-slope) * relu(threshold - x)",
    )


def _hard_sigmoid_steps(prefix: str) -> list[Step]:
    return [
        ("Rescaling", {"scale": 1.0, "offset": 3.0}, f"{prefix}plus3"),
        ("ReLU", {"max_value": 6.0}, f"{prefix}relu6"),
        ("Rescaling", {"scale": f32(1.0 / 6.0), "offset": 0.0}, f"{prefix}div6"),
    ]


def _split(site: Site):
    """(entries computing the layer linearly, the inputs of the activation, the activation's role prefix).
    An Activation layer is replaced whole; any other layer keeps its name and weights, computing linearly,
    and the activation follows it."""
    nodes = site.entry.get("inbound_nodes") or []
    if site.cls == "Activation":
        return [], nodes, None
    linear = site.chain([(site.cls, {**site.cfg, "activation": "linear"}, None)])
    return linear, [[[site.name, k, 0, {}]] for k in range(len(nodes))], "act"


@rule("leaky_relu_activation", activation=True)
def leaky_relu_activation(site: Site):
    if activation_name(site.cfg.get("activation")) != "leaky_relu":
        return None
    linear, inputs, role = _split(site)
    tail = chain(site.entry, [("LeakyReLU", {"alpha": f32(0.2)}, role)], first_inputs=inputs)
    return linear + tail, "activation leaky_relu -> LeakyReLU(alpha=0.2)"


@rule("hard_sigmoid_keras3", activation=True)
def hard_sigmoid_keras3(site: Site):
    if activation_name(site.cfg.get("activation")) != "hard_sigmoid" or site.ctx.keras != 3:
        return None
    linear, inputs, role = _split(site)
    steps = _hard_sigmoid_steps("" if role is None else "act_")
    steps[-1] = (steps[-1][0], steps[-1][1], role)
    tail = chain(site.entry, steps, first_inputs=inputs)
    return linear + tail, "activation hard_sigmoid -> Rescaling(+3) + ReLU(6) + Rescaling(/6)"


@rule("hard_silu", activation=True)
def hard_silu(site: Site):
    act = activation_name(site.cfg.get("activation"))
    if act not in ("hard_silu", "hard_swish"):
        return None
    if not site.functional:
        raise Refuse(f"the {act} activation needs a functional model to be lowered")
    linear, inputs, role = _split(site)
    branch = chain(site.entry, _hard_sigmoid_steps("" if role is None else "act_"), first_inputs=inputs)
    nodes = site.entry.get("inbound_nodes") or []
    mul = make_entry(
        "Multiply",
        {},
        site.name if role is None else f"{site.name}__act",
        [[copy.deepcopy(inputs[k][0]), [output_name(branch), k, 0, {}]] for k in range(len(nodes))],
    )
    return linear + branch + [mul], f"activation {act} -> x * (Rescaling(+3) + ReLU(6) + Rescaling(/6))"
