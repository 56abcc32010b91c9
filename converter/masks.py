"""Where Keras masks flow, and the layers TF.js 4.22 would compute differently given one.

A mask starts at `Masking` and `Embedding(mask_zero=True)`. In Keras a layer that supports masking passes its
input's mask on (recurrent layers only when they return sequences); any other layer drops it. Most layers
that receive a mask compute the same in TF.js (recurrent layers honour it, the others ignore it in both), but
a few use it in Keras and ignore it in TF.js: there the outputs differ without a word, so the converter
refuses the model (code `ignores_mask`). The analysis runs on the translated (Keras 2 form) config, after the
lowering stage.
"""

from __future__ import annotations

from converter.support import Issue

# Layers that pass their (first) input's mask on unchanged (Keras's supports_masking with the default
# compute_mask), and merges, which combine their inputs' masks.
PASS_ON = frozenset(
    {
        "Dense",
        "Activation",
        "ReLU",
        "LeakyReLU",
        "PReLU",
        "ELU",
        "ThresholdedReLU",
        "Dropout",
        "SpatialDropout1D",
        "GaussianNoise",
        "GaussianDropout",
        "AlphaDropout",
        "BatchNormalization",
        "LayerNormalization",
        "Rescaling",
        "TimeDistributed",
        "Add",
        "Multiply",
        "Average",
        "Maximum",
        "Minimum",
        "Concatenate",
    }
)
RECURRENT = frozenset({"SimpleRNN", "GRU", "LSTM", "RNN", "Bidirectional", "ConvLSTM2D"})
# Layers whose Keras call uses the mask and whose TF.js 4.22 counterpart ignores it.
IGNORES_MASK = {
    "GlobalAveragePooling1D": "Keras averages the unmasked steps only; TF.js 4.22 averages every step",
    "Softmax": "Keras gives masked positions a large negative logit; TF.js 4.22 ignores the mask",
}


def _makes_mask(layer: dict) -> bool:
    cfg = layer.get("config") or {}
    return layer.get("class_name") == "Masking" or (
        layer.get("class_name") == "Embedding" and bool(cfg.get("mask_zero"))
    )


def _masked_output(layer: dict, inputs_masked: list[bool]) -> bool:
    cls, cfg = layer.get("class_name"), layer.get("config") or {}
    if _makes_mask(layer):
        return True
    if cls == "InputLayer":  # a nested model's input carries the mask of the tensor it is called on
        return any(inputs_masked)
    if not any(inputs_masked):
        return False
    if cls in RECURRENT:
        inner = (cfg.get("layer") or {}).get("config", {}) if cls == "Bidirectional" else cfg
        return bool(inner.get("return_sequences"))
    return cls in PASS_ON


def _issue(layer: dict) -> Issue:
    cls = str(layer.get("class_name"))
    return Issue(
        layer=str((layer.get("config") or {}).get("name")),
        class_name=cls,
        argument="mask",
        value=None,
        code="ignores_mask",
        reason=f"a mask reaches this layer: {IGNORES_MASK[cls]}",
    )


def refusals(model: dict) -> list[Issue]:
    """An issue for every layer of the (translated) model that a mask reaches and TF.js would ignore it in."""
    issues: list[Issue] = []
    _container(model, False, issues)
    return issues


def _container(model: dict, input_masked: bool, issues: list[Issue]) -> bool:
    """Walk a Sequential or functional config; whether its (first) output is masked."""
    cfg = model.get("config") or {}
    layers = cfg.get("layers") or [] if isinstance(cfg, dict) else []
    if model.get("class_name") == "Sequential":
        masked = input_masked
        for layer in layers:
            masked = _visit(layer, [masked], issues)
        return masked
    masked_by_name: dict[str, bool] = {}
    for layer in layers:
        name = layer.get("name") or (layer.get("config") or {}).get("name")
        nodes = layer.get("inbound_nodes") or []
        inputs = [masked_by_name.get(ref[0], False) for node in nodes for ref in node if isinstance(ref, list)]
        masked_by_name[str(name)] = _visit(layer, inputs or [input_masked], issues)
    outputs = cfg.get("output_layers") or []
    return any(masked_by_name.get(ref[0], False) for ref in outputs if isinstance(ref, list))


def _visit(layer: dict, inputs_masked: list[bool], issues: list[Issue]) -> bool:
    cls = layer.get("class_name")
    if cls in ("Sequential", "Functional", "Model"):
        return _container(layer, any(inputs_masked), issues)
    if cls in IGNORES_MASK and any(inputs_masked):
        issues.append(_issue(layer))
    return _masked_output(layer, inputs_masked)
