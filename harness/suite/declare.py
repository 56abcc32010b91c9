"""How the reference suite declares cases: `layer(...)`, `graph(...)`, `app(...)`, `refused(...)`.

Case names are pytest ids: the class, then the options that differ from the defaults, e.g.
`Conv2D[padding=same,strides=2]`. The tier modules (`layers`, `graphs`, `apps`, `rejects`) use these
helpers; shapes shared by several cases live here too.
"""

from __future__ import annotations

import math
import re

from harness.suite.builders import App, Attend, Chain, Spec
from harness.suite.case import PASS, Case, Expect, InputSpec, Omission, ToleranceOverride
from harness.vocabulary import FLAVOURS

K3 = "keras3"
TFK = "tf_keras"
CF = "channels_first"
NAME_RE = re.compile(r"^[A-Za-z0-9_.\-\[\]=,()]+$")

# Arguments a class needs that are not options under test; they stay out of case names.
REQUIRED: dict[str, dict] = {
    "Dense": {"units": 3},
    "Conv1D": {"filters": 4, "kernel_size": 3},
    "Conv2D": {"filters": 4, "kernel_size": 3},
    "Conv3D": {"filters": 3, "kernel_size": 2},
    "Conv2DTranspose": {"filters": 3, "kernel_size": 3},
    "Conv3DTranspose": {"filters": 2, "kernel_size": 2},
    "SeparableConv2D": {"filters": 4, "kernel_size": 3},
    "DepthwiseConv2D": {"kernel_size": 3},
    "ConvLSTM2D": {"filters": 3, "kernel_size": 3},
    "SimpleRNN": {"units": 4},
    "GRU": {"units": 4, "reset_after": False},  # TF.js rejects the Keras default reset_after=True
    "LSTM": {"units": 4},
    "Embedding": {"input_dim": 10, "output_dim": 4},
    "RepeatVector": {"n": 3},
    "Rescaling": {"scale": 0.5},
    "CenterCrop": {"height": 4, "width": 6},
    "Resizing": {"height": 4, "width": 4},
    "CategoryEncoding": {"num_tokens": 6},
    "Dropout": {"rate": 0.5},
    "SpatialDropout1D": {"rate": 0.5},
    "GaussianNoise": {"stddev": 0.5},
    "GaussianDropout": {"rate": 0.5},
    "AlphaDropout": {"rate": 0.5},
    "Masking": {"mask_value": 0.0},
    "Reshape": {"target_shape": (4, 6)},
    "Permute": {"dims": (2, 1)},
    "RandomWidth": {"factor": (0.5, 0.6)},
    "AveragePooling1D": {"pool_size": 2},  # Keras 3 has no default pool_size for average pooling
    "AveragePooling2D": {"pool_size": 2},
    "AveragePooling3D": {"pool_size": 2},
    "Conv1DTranspose": {"filters": 2, "kernel_size": 3},
    "SeparableConv1D": {"filters": 2, "kernel_size": 3},
    "EinsumDense": {"equation": "ab,bc->ac", "output_shape": 3},
    "MultiHeadAttention": {"num_heads": 2, "key_dim": 4},
    "GroupNormalization": {"groups": 2},
    "Normalization": {"mean": 0.5, "variance": 2.0},
}

TFJS_SRC = "tfjs-layers v4.22.0 src/"


def fmt(value) -> str:
    """An option value as it reads in a case name: no spaces, tuples as (a,b), layers as their class."""
    if isinstance(value, (tuple, list)):
        return "(" + ",".join(fmt(v) for v in value) + ")"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def case_name(cls: str, options: dict, label: str | None = None) -> str:
    """`Conv2D[padding=same,strides=2]`; a `label` replaces the option list (`Activation[gelu]`)."""
    if label:
        return f"{cls}[{label}]"
    if not options:
        return cls
    return f"{cls}[{','.join(f'{k}={fmt(v)}' for k, v in options.items())}]"


def plain(value):
    """Options as plain data for reports: Specs become their class name."""
    if isinstance(value, Spec):
        return {"class_name": value.cls, **{k: plain(v) for k, v in value.kwargs.items()}}
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def classes_of(specs) -> tuple[str, ...]:
    """Every layer class a chain makes, wrapped layers and cells included, in order, once."""
    out: list[str] = []

    def visit(spec):
        if spec.cls not in out:
            out.append(spec.cls)
        for v in spec.kwargs.values():
            if isinstance(v, list) and "StackedRNNCells" not in out:
                out.append("StackedRNNCells")  # Keras stacks a list of cells
            for item in v if isinstance(v, list) else [v]:
                if isinstance(item, Spec):
                    visit(item)

    for s in specs:
        visit(s)
    return tuple(out)


def only(flavour: str, reason: str) -> dict:
    """Certify from `flavour` alone; the other flavour is kept out for `reason`, which the report lists."""
    return {"flavours": (flavour,), "omitted": tuple(Omission(f, reason) for f in FLAVOURS if f != flavour)}


# The formats single-layer, lowered and app cases are certified in: not `api`. save_keras_model saves a Keras 3
# model as `.keras` and converts that file, so its artifact is the `keras` variant's (the same model.json up to
# auto-generated names, the same weights): certifying it again costs ~1 min of every make test and checks
# nothing new. The in-memory path stays certified by every graph case and the train cases resuming from optimizer
# state (harness/suite/train.py), and refused by every reject.
ONE_FILE_PER_FORMAT = ("h5", "keras")


def layer(
    cls: str,
    options: dict | None = None,
    shape=(6,),
    *,
    label=None,
    before=(),
    after=(),
    dtype="float32",
    inputs=None,
    flavours=FLAVOURS,
    omitted=(),
    expect=PASS,
    tolerance=None,
    quantized=(),
    tier="layer",
    lowered=(),
    companion=(),
    known=(),
) -> Case:
    """A case around one layer `cls` with `options` on inputs `shape` (a tuple of shapes for merges).

    `before` / `after` are Specs around it (e.g. an RNN after Masking so the mask matters); `known`: known
    failures of some backends (harness.suite.case.Case.known_failures).
    """
    options = dict(options or {})
    shapes = shape if isinstance(shape[0], tuple) else (shape,)
    spec = Spec(cls, {**REQUIRED.get(cls, {}), **options})
    specs = (*before, spec, *after)
    return Case(
        name=case_name(cls, options, label),
        tier=tier,
        build=Chain(shapes, specs, dtype),
        layer_classes=classes_of(specs),
        options=plain(options),
        inputs=inputs,
        flavours=flavours,
        omitted=omitted,
        expect=expect,
        tolerance=tolerance,
        quantized=quantized,
        lowered=tuple(lowered),
        companion=tuple(companion),
        formats=None if tier == "reject" else ONE_FILE_PER_FORMAT,
        known_failures=tuple(known),
    )


def attending(cls, options, shapes, rules, call=None, label=None, tier="lowered", **kw) -> Case:
    """A case around one attention layer on inputs `shapes` (query, value, key; one: self-attention), called
    with the keyword arguments `call`."""
    options, call = dict(options or {}), dict(call or {})
    return Case(
        name=case_name(cls, {**options, **call}, label),
        tier=tier,
        build=Attend(tuple(shapes), Spec(cls, {**REQUIRED.get(cls, {}), **options}), tuple(call.items())),
        layer_classes=(cls,),
        options=plain({**options, **call}),
        lowered=tuple(rules.split()),
        formats=None if tier == "reject" else ONE_FILE_PER_FORMAT,
        **kw,
    )


def activation(name: str, *, label=None, **kw) -> Case:
    return layer("Activation", {"activation": name}, (3, 5), label=label or name, **kw)


def fails_at(stage: str, message: str, reason: str, backends=()) -> Expect:
    """A known TF.js failure: TF.js throws at runner `stage` with an error matching `message` (a regex)."""
    return Expect(
        outcome="xfail", fails_with="load_error", stage=stage, message=message, reason=reason, backends=tuple(backends)
    )


def mismatches(max_abs: tuple[float, float], reason: str, diverges_at: str | None = None, backends=()) -> Expect:
    """A known TF.js divergence: its error lies in `max_abs` (low, high), first at a `diverges_at` layer."""
    return Expect(
        outcome="xfail",
        fails_with="mismatch",
        max_abs=max_abs,
        diverges_at=diverges_at,
        reason=reason,
        backends=tuple(backends),
    )


def reject(code: str, reason: str) -> Expect:
    return Expect(outcome="reject", code=code, reason=reason)


IMG = (6, 6, 3)  # channels_last image
IMG_CF = (3, 6, 6)  # channels_first image (output width != channels: see the note above)
IMG_CF_CONV = (3, 6, 7)  # for 4-filter 3x3 convolutions: a 6x6 input would give a 4-wide output
SEQ = (6, 3)  # (timesteps, features)
SEQ_ATTN = (5, 8)  # (sequence length, features) of the attention cases
VOL = (4, 4, 4, 2)  # 3D volume, channels_last
VOL_CF = (2, 4, 4, 5)  # a 3-filter 2x2x2 Conv3D gives width 4, not 3


def tokens(length: int, high: int = 10) -> tuple[InputSpec, ...]:
    return (InputSpec((length,), kind="int", low=0, high=high),)


def graph(
    build,
    layer_classes,
    inputs=None,
    flavours=FLAVOURS,
    omitted=(),
    expect=PASS,
    name=None,
    tier="graph",
    quantized=(),
    lowered=(),
    companion=(),
    formats=None,
    known=(),
) -> Case:
    return Case(
        known_failures=tuple(known),
        formats=formats,
        name=name or build.__name__,
        tier=tier,
        build=build,
        layer_classes=tuple(layer_classes),
        inputs=inputs,
        flavours=flavours,
        omitted=omitted,
        expect=expect,
        quantized=quantized,
        lowered=tuple(lowered),
        companion=tuple(companion),
    )


DEEP = ToleranceOverride(
    atol=1e-3,
    rtol=1e-3,
    reason="dozens of conv/BN layers accumulate float32 rounding differences between TensorFlow and TF.js kernels",
)


# Every app is also certified quantized, in each dtype and with a plan meeting the error budget
# (harness/pipeline/tolerance.py); a sample of the layer and graph cases in each dtype.
QUANTIZED = ("float16", "uint16", "uint8")
QUANTIZED_AND_PLAN = (*QUANTIZED, "plan")


def app(
    cls: str,
    layer_classes: str,
    input_shape=(32, 32, 3),
    tolerance=DEEP,
    lowered=(),
    quantized=QUANTIZED_AND_PLAN,
    label=None,
    **kw,
) -> Case:
    """`keras.applications.<cls>` at the smallest input it accepts; `layer_classes` as built (both flavours
    unless `kw` says otherwise, with `only`); certified quantized in every form unless `quantized` says less.
    `label` tells apart two cases of one architecture (one per flavour, when they lower differently)."""
    return Case(
        **kw,
        lowered=tuple(lowered),
        quantized=tuple(quantized),
        name=f"{cls}[{'x'.join(map(str, input_shape))}{f',{label}' if label else ''}]",
        tier="app",
        build=App(cls, input_shape),
        layer_classes=tuple(layer_classes.split()),
        options={"input_shape": input_shape, "classes": 10},
        tolerance=tolerance,
        slow=True,
        formats=ONE_FILE_PER_FORMAT,
    )


def refused(cls: str, options: dict | None, shape, code: str, reason: str, **kw) -> Case:
    return layer(cls, options, shape, tier="reject", expect=reject(code, reason), **kw)


def refused_graph(build, layer_classes, code: str, reason: str) -> Case:
    return Case(
        name=build.__name__, tier="reject", build=build, layer_classes=tuple(layer_classes), expect=reject(code, reason)
    )


UNKNOWN = "TF.js 4.22 registers no such layer class"

# Known failures of TF.js 4.22's WebGPU backend (measured here on SwiftShader's adapter; cpu, wasm and webgl agree
# with Keras on the same artifacts). A case declares the ones it meets with `known=`.
WEBGPU_MASKED_RNN = mismatches(
    (5e-3, math.inf),
    "measured: TF.js 4.22 webgpu compiles no transpose shader for an int32 or bool tensor (WGSL 'type mismatch "
    "for argument 2 in call to setOutputAtIndex, expected f32, got i32', in the console), and a masked RNN "
    "transposes its mask with one: its steps come out wrong (max_abs 9e-3 to 7)",
    backends=("webgpu",),
)
WEBGPU_INT_CATEGORY_ENCODING = fails_at(
    "predict",
    r"Input values must be between 0 < values <= numTokens",
    "measured: TF.js 4.22 webgpu CategoryEncoding (tfjs-layers preprocessing/category_encoding.ts) rejects "
    "int32 inputs in range, which cpu, wasm and webgl accept",
    backends=("webgpu",),
)
