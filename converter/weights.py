"""Which weights a model has, in which order, and under which names TF.js looks for them.

TF.js matches every manifest entry to a variable by name, `<layer>/<weight>` (container.ts
`loadWeights`; `<layer>/<cell>/<weight>` also matches, the middle part being dropped on a miss). We
write the names tf_keras writes, which the official converter copies and TF.js is known to load:

- tf_keras `.h5`: the file's own `weight_names`, without the `:0` suffix;
- Keras 3 `.h5`: the same, without the model-name prefix Keras 3 puts on weights inside Sequential
  models (`seq/dense/kernel` -> `dense/kernel`);
- Keras 3 `.keras`: the file has no names, only object paths (`layers/dense/vars/0`); names come
  from the config and `WEIGHT_NAMES`, in the order each layer creates its weights.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence

import h5py

from converter.errors import ConversionError

# Weights each layer class creates, in creation order, with the config flag that must be true for it
# to exist (`!key`: the key must be unset; a (key, value) pair: the config must hold it). The single place to
# add a layer with weights.
Flag = str | tuple[str, str] | None
WEIGHT_NAMES: dict[str, tuple[tuple[str, Flag], ...]] = {
    "Dense": (("kernel", None), ("bias", "use_bias")),
    "Conv1D": (("kernel", None), ("bias", "use_bias")),
    "Conv2D": (("kernel", None), ("bias", "use_bias")),
    "Conv3D": (("kernel", None), ("bias", "use_bias")),
    "Conv2DTranspose": (("kernel", None), ("bias", "use_bias")),
    "Conv3DTranspose": (("kernel", None), ("bias", "use_bias")),
    "SeparableConv2D": (("depthwise_kernel", None), ("pointwise_kernel", None), ("bias", "use_bias")),
    "SeparableConv1D": (("depthwise_kernel", None), ("pointwise_kernel", None), ("bias", "use_bias")),
    "Conv1DTranspose": (("kernel", None), ("bias", "use_bias")),
    "DepthwiseConv2D": (("depthwise_kernel", None), ("bias", "use_bias")),
    "BatchNormalization": (("gamma", "scale"), ("beta", "center"), ("moving_mean", None), ("moving_variance", None)),
    "LayerNormalization": (("gamma", "scale"), ("beta", "center")),
    "GroupNormalization": (("gamma", "scale"), ("beta", "center")),
    "RMSNormalization": (("scale", None),),
    "Normalization": (("mean", "!mean"), ("variance", "!mean"), ("count", "!mean")),  # adapted: no mean in config
    "LayerScale": (("gamma", None),),  # keras.applications.convnext
    "Embedding": (("embeddings", None),),
    "PReLU": (("alpha", None),),
    "SimpleRNNCell": (("kernel", None), ("recurrent_kernel", None), ("bias", "use_bias")),
    "GRUCell": (("kernel", None), ("recurrent_kernel", None), ("bias", "use_bias")),
    "LSTMCell": (("kernel", None), ("recurrent_kernel", None), ("bias", "use_bias")),
    "ConvLSTM2DCell": (("kernel", None), ("recurrent_kernel", None), ("bias", "use_bias")),
    "EinsumDense": (("kernel", None), ("bias", "bias_axes")),
    "Attention": (("scale", "use_scale"), ("concat_score_weight", ("score_mode", "concat"))),
    "AdditiveAttention": (("scale", "use_scale"),),
}
# Layers that keep their weights in sublayers: (object-path group, name in `.h5` files, config flag), in
# creation order. MultiHeadAttention's projections are EinsumDense layers: `mha/query/kernel`, ...
SUBLAYERS: dict[str, tuple[tuple[str, str, str | None], ...]] = {
    "MultiHeadAttention": (
        ("query_dense", "query", None),
        ("key_dense", "key", None),
        ("gate_dense", "gate", "use_gate"),
        ("value_dense", "value", None),
        ("output_dense", "attention_output", None),
    ),
}
# Recurrent layers keep their weights in a cell; the cell's name is the one tf_keras gives it.
RNN_CELLS = {
    "SimpleRNN": ("SimpleRNNCell", "simple_rnn_cell"),
    "GRU": ("GRUCell", "gru_cell"),
    "LSTM": ("LSTMCell", "lstm_cell"),
    "ConvLSTM2D": ("ConvLSTM2DCell", None),
}  # None: `convlstm/kernel`
CONTAINERS = ("Functional", "Model", "Sequential")


@dataclasses.dataclass
class Weight:
    """One weight: the name TF.js will look for, and the dataset holding its value."""

    name: str
    dataset: h5py.Dataset
    layer: str = ""  # the top-level layer it belongs to (for --split_weights_by_layer)

    @property
    def shape(self):
        return tuple(self.dataset.shape)


def snake_case(name: str) -> str:
    """Keras' object-path naming of a class (`Conv2D` -> `conv2d`, `InputLayer` -> `input_layer`)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def layer_weight_names(class_name: str, config: dict) -> list[str]:
    return [w for w, flag in WEIGHT_NAMES.get(class_name, ()) if _present(config, flag)]


def sublayers(class_name: str, config: dict) -> list[tuple[str, str]]:
    """(object-path group, name) of each weight-holding sublayer of a layer, in creation order."""
    return [(group, name) for group, name, flag in SUBLAYERS.get(class_name, ()) if _present(config, flag)]


def _present(config: dict, flag: Flag) -> bool:
    if flag is None:
        return True
    if isinstance(flag, tuple):
        return config.get(flag[0]) == flag[1]
    if flag.startswith("!"):
        return config.get(flag[1:]) is None
    return bool(config.get(flag, True))


class UnnamedWeights(ConversionError):
    """A layer holds weights the converter cannot name (a custom layer, in a `.keras` file)."""


def model_weights(
    model_file, model_config: dict, skipped: list[UnnamedWeights] | None = None, custom: Custom | None = None
) -> list[Weight]:
    """Every weight of the model in manifest order, named for TF.js. `model_config` is the file's
    config with envelopes cleaned (see `topology.clean`), before translation. A top-level layer whose weights
    cannot be named raises `UnnamedWeights`; with `skipped`, it is left out and the error appended there, so
    that every other layer's weights are still named (the caller refuses that layer anyway). `custom`: the user's
    custom classes ported to JavaScript, with the names of their weights (see `custom_weights`)."""
    custom = custom or {}
    if model_file.layout == "h5_layers":
        weights = _h5_weights(model_file, model_config, custom)
    else:
        weights = _object_weights(model_file, model_config, skipped, custom)
    check_shapes(model_file.path, weights, model_config)
    return weights


# --- custom layers ------------------------------------------------------------------------------------------------

# A custom class the user ported to JavaScript -> the names of its weights, in the order the layer stores them
# (None: take them from an .h5 file).
Custom = Mapping[str, "Sequence[str] | None"]
CUSTOM_CONVENTION = (
    "a custom layer's weights are written as <layer>/<name>, the JavaScript port creating each with "
    "addWeight(name, ...); a .keras file stores a layer's variables by position only (vars/0, vars/1, ...: its "
    "trainable variables in creation order, then its non-trainable ones, as Keras's Layer.save_own_variables "
    "does), so the names come with the class, in that order (--custom_class 'Class:name0,name1'); an .h5 file "
    "records them, and names given with the class must agree"
)


def custom_weights(path, layer: str, cls: str, names: Sequence[str] | None, group) -> list[tuple[str, h5py.Dataset]]:
    """(TF.js name, dataset) of each weight of a custom layer in a .keras file, by position (CUSTOM_CONVENTION)."""
    if group is not None:
        nested = [k for k in group if k != "vars" and _holds_vars(group[k])]
        if nested:
            raise ConversionError(
                path,
                f"the custom layer {layer!r} ({cls}) holds other layers' weights ({', '.join(nested)}): only a "
                "custom layer's own weights can be named",
            )
    count = len(group["vars"]) if group is not None and "vars" in group else 0
    if names is None and count:
        raise ConversionError(
            path,
            f"the custom layer {layer!r} ({cls}) has {count} weight(s), which a .keras file stores by position "
            "only (the layer's trainable variables in creation order, then its non-trainable ones): name them in "
            f"that order, as your JavaScript port's addWeight names them: --custom_class '{cls}:"
            f"{','.join(f'w{i}' for i in range(count))}'",
        )
    names = list(names or [])
    if len(names) != count:
        raise ConversionError(
            path, f"the custom layer {layer!r} ({cls}) has {count} weight(s) in the file, {len(names)} named"
        )
    return [(f"{layer}/{n}", group["vars"][str(i)]) for i, n in enumerate(names)]


def _holds_vars(node) -> bool:
    if not isinstance(node, h5py.Group):
        return False
    if "vars" in node and len(node["vars"]) > 0:
        return True
    return any(_holds_vars(node[k]) for k in node if k != "vars")


def _custom_layers(cfg: dict, custom: Custom) -> dict[str, str]:
    """{layer name: class} of every layer of a custom class the user ported."""
    out: dict[str, str] = {}
    inner = cfg.get("config") or {}
    for layer in inner.get("layers", []) if isinstance(inner, dict) else []:
        cls, lcfg = layer.get("class_name"), layer.get("config") or {}
        if cls in CONTAINERS:
            out |= _custom_layers(layer, custom)
        elif cls in custom:
            out[str(lcfg.get("name"))] = str(cls)
    return out


# --- .h5: names from the file -------------------------------------------------------------------


def _sequential_names(cfg: dict) -> set[str | None]:
    """Names of every Sequential container in the model, the model itself included."""
    names = set()
    if cfg.get("class_name") == "Sequential":
        names.add((cfg.get("config") or {}).get("name"))
    inner = cfg.get("config") or {}
    for layer in inner.get("layers", []) if isinstance(inner, dict) else inner:
        if layer.get("class_name") in CONTAINERS:
            names |= _sequential_names(layer)
    return names


def _stacked_cell_renames(cfg: dict) -> dict[tuple[str, str], str]:
    """TF.js names the cells of a StackedRNNCells `RNNCell_<i>`, where Keras writes
    `<rnn>/stacked_rnn_cells[_n]/<cell name>` (the official converter's names do not load).
    Keyed by (rnn layer, cell name): the middle part is numbered by how many were built before."""
    renames: dict[tuple[str, str], str] = {}
    inner = cfg.get("config") or {}
    for layer in inner.get("layers", []) if isinstance(inner, dict) else []:
        lcfg = layer.get("config") or {}
        cell = lcfg.get("cell") if isinstance(lcfg, dict) else None
        if layer.get("class_name") in CONTAINERS:
            renames |= _stacked_cell_renames(layer)
        elif isinstance(cell, dict) and cell.get("class_name") == "StackedRNNCells":
            for i, c in enumerate(cell["config"]["cells"]):
                renames[(lcfg["name"], c["config"]["name"])] = f"{lcfg['name']}/RNNCell_{i}"
    return renames


def _keras3_h5_fixes(cfg: dict, middles=None, depthwise=None):
    """Where Keras 3 `.h5` names differ from tf_keras': ({layer: middle part to drop}, {DepthwiseConv2D
    layers}). Keras 3 writes `td/inner/kernel` for TimeDistributed, `convlstm/conv_lstm_cell/kernel`
    for ConvLSTM2D and `dw/kernel` for DepthwiseConv2D (TF.js only loads `dw/depthwise_kernel`)."""
    middles = {} if middles is None else middles
    depthwise = set() if depthwise is None else depthwise
    inner = cfg.get("config") or {}
    for layer in inner.get("layers", []) if isinstance(inner, dict) else []:
        cls, lcfg = layer.get("class_name"), layer.get("config") or {}
        if cls in CONTAINERS:
            _keras3_h5_fixes(layer, middles, depthwise)
        elif cls == "TimeDistributed" and isinstance(lcfg.get("layer"), dict):
            middles[lcfg.get("name")] = (lcfg["layer"].get("config") or {}).get("name")
        elif cls == "ConvLSTM2D":
            middles[lcfg.get("name")] = "conv_lstm_cell"
        elif cls == "DepthwiseConv2D":
            depthwise.add(lcfg.get("name"))
    return middles, depthwise


def _h5_weights(model_file, model_config, custom: Custom) -> list[Weight]:
    group = model_file.weights
    ported = _custom_layers(model_config, custom)
    prefixes = _sequential_names(model_config) if model_file.keras_major == 3 else set()
    middles, depthwise = _keras3_h5_fixes(model_config) if model_file.keras_major == 3 else ({}, set())
    renames = _stacked_cell_renames(model_config)
    out = []
    layer_names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs.get("layer_names", [])]
    if model_file.keras_major == 2:
        # The official converter walks the weight groups in HDF5 order (by name): same manifest, same shards.
        layer_names = sorted(layer_names)
    for layer_name in layer_names:
        if layer_name not in group:
            raise ConversionError(model_file.path, f"weights of layer {layer_name!r} are missing")
        layer_group = group[layer_name]
        for raw in layer_group.attrs.get("weight_names", []):
            raw = raw.decode() if isinstance(raw, bytes) else raw
            if raw not in layer_group:
                raise ConversionError(model_file.path, f"weight {raw!r} of layer {layer_name!r} is missing")
            name = raw[:-2] if raw.endswith(":0") else raw
            parts = name.split("/")
            if len(parts) == 1:  # created outside the layer's name scope (a Normalization adapted before its call)
                parts = [layer_name, *parts]
            while len(parts) > 2 and parts[0] in prefixes:
                parts = parts[1:]
            if model_file.keras_major == 3 and layer_name in parts[1:-1]:
                # Keras 3 puts name scopes (keras.applications' NASNet blocks) before the layer name.
                parts = parts[parts.index(layer_name) :]
            if len(parts) > 2 and middles.get(parts[0]) == parts[1]:
                del parts[1]
            if len(parts) == 2 and parts[0] in depthwise and parts[1] == "kernel":
                parts[1] = "depthwise_kernel"
            if len(parts) == 4 and parts[1].startswith("stacked_rnn_cells") and (parts[0], parts[2]) in renames:
                parts = [renames[(parts[0], parts[2])], parts[3]]
            name = "/".join(parts)
            out.append(Weight(name, layer_group[raw], layer_name))
        if layer_name in ported:
            _check_custom_names(model_file.path, layer_name, ported[layer_name], custom, out)
    return out


def _check_custom_names(path, layer: str, cls: str, custom: Custom, weights: list[Weight]):
    """Names given with a custom class must be the ones the .h5 file records for its layer."""
    given = custom.get(cls)
    recorded = [w.name.rpartition("/")[2] for w in weights if w.layer == layer]
    if given is not None and list(given) != recorded:
        raise ConversionError(
            path,
            f"the custom layer {layer!r} ({cls}) has the weights {recorded} in the file, not {list(given)} as given",
        )


# --- .keras: names from the config, values from object paths -------------------------------------


def _vars(group: h5py.Group | None, path, expected: int, what: str) -> list[h5py.Dataset]:
    datasets = []
    if group is not None and "vars" in group:
        v = group["vars"]
        datasets = [v[str(i)] for i in range(len(v))]
    if len(datasets) != expected:
        raise ConversionError(path, f"{what} has {len(datasets)} weights in the file, the config says {expected}")
    return datasets


def _object_weights(
    model_file, model_config, skipped: list[UnnamedWeights] | None = None, custom: Custom | None = None
) -> list[Weight]:
    out: list[Weight] = []
    entries = (model_config.get("config") or {}).get("layers") or []
    sequential = model_config.get("class_name") == "Sequential"
    for entry, sub in _layer_groups(entries, model_file.weights, skip_input=sequential):
        start = len(out)
        try:
            _walk_layer(entry, sub, model_file.path, out, custom=custom)
        except UnnamedWeights as e:
            if skipped is None:
                raise
            del out[start:]
            skipped.append(e)
        for w in out[start:]:
            w.layer = (entry.get("config") or {}).get("name", "")
    return out


def _layer_groups(entries: list[dict], group: h5py.Group | None, skip_input: bool):
    """Pair each config layer with its object-path group: by the `name` attribute Keras writes on
    `vars` when present, else by Keras' own path naming (snake_case class name, `_1`, `_2` on repeats)."""
    layers_group = group["layers"] if group is not None and "layers" in group else None
    by_attr = {}
    if layers_group is not None:
        for sub in layers_group.values():
            name = sub["vars"].attrs.get("name") if "vars" in sub else None
            if name is not None:
                by_attr[name.decode() if isinstance(name, bytes) else name] = sub
    used: dict[str, int] = {}
    for entry in entries:
        cls = entry.get("class_name")
        if skip_input and cls == "InputLayer":
            continue
        path = snake_case(str(cls))
        if path in used:
            used[path] += 1
            path = f"{path}_{used[path]}"
        else:
            used[path] = 0
        name = (entry.get("config") or {}).get("name")
        sub = by_attr.get(name)
        if sub is None and layers_group is not None and path in layers_group:
            sub = layers_group[path]
        yield entry, sub


def _walk_container(cfg: dict, group, path, out: list, custom: Custom):
    inner = cfg.get("config") or {}
    entries = inner.get("layers") or []
    for entry, sub in _layer_groups(entries, group, skip_input=cfg.get("class_name") == "Sequential"):
        _walk_layer(entry, sub, path, out, custom=custom)


def _walk_layer(entry: dict, group, path, out: list, name: str | None = None, custom: Custom | None = None):
    cls = entry.get("class_name")
    cfg = entry.get("config") or {}
    name = name or cfg.get("name")
    if cls in CONTAINERS:
        _walk_container(entry, group, path, out, custom or {})
    elif custom and cls in custom:
        out += [Weight(n, d) for n, d in custom_weights(path, str(name), str(cls), custom[str(cls)], group)]
    elif cls == "Bidirectional":
        inner = cfg["layer"]
        base = inner["config"]["name"]
        base = base[len("forward_") :] if base.startswith("forward_") else base
        for side in ("forward", "backward"):
            sub = group[f"{side}_layer"] if group is not None and f"{side}_layer" in group else None
            _walk_layer(inner, sub, path, out, name=f"{name}/{side}_{base}")
    elif cls == "TimeDistributed":
        # tf_keras names the wrapped layer's weights after the wrapper: `td/kernel`.
        inner = cfg["layer"]
        sub = group["layer"] if group is not None and "layer" in group else None
        _walk_layer(inner, sub, path, out, name=name)
    elif cls in RNN_CELLS:
        cell_cls, cell_name = RNN_CELLS[cls]
        sub = group["cell"] if group is not None and "cell" in group else None
        _add(out, path, f"{name}/{cell_name}" if cell_name else name, cell_cls, cfg, sub)
    elif cls == "RNN":
        cell = cfg["cell"]
        sub = group["cell"] if group is not None and "cell" in group else None
        if cell["class_name"] == "StackedRNNCells":
            cells = cell["config"]["cells"]
            used: dict[str, int] = {}
            for i, c in enumerate(cells):
                key = snake_case(c["class_name"])
                used[key] = used.get(key, -1) + 1
                key = key if used[key] == 0 else f"{key}_{used[key]}"
                csub = sub["cells"][key] if sub is not None and "cells" in sub and key in sub["cells"] else None
                _add(out, path, f"{name}/RNNCell_{i}", c["class_name"], c["config"], csub)
        else:
            _add(out, path, f"{name}/{cell['config']['name']}", cell["class_name"], cell["config"], sub)
    elif cls in SUBLAYERS:
        projection = {"bias_axes": "bias" if cfg.get("use_bias", True) else None}
        for key, sub_name in sublayers(cls, cfg):
            sub = group[key] if group is not None and key in group else None
            _add(out, path, f"{name}/{sub_name}", "EinsumDense", projection, sub)
    else:
        _add(out, path, name, cls, cfg, group)


def _add(out: list, path, prefix, cls, cfg: dict, group):
    names = layer_weight_names(cls, cfg)
    has_vars = group is not None and "vars" in group and len(group["vars"]) > 0
    if cls not in WEIGHT_NAMES and has_vars:
        raise UnnamedWeights(path, f"layer {prefix!r} ({cls}) has weights the converter cannot name")
    if not names:
        return
    for weight, dataset in zip(names, _vars(group, path, len(names), f"layer {prefix!r} ({cls})")):
        out.append(Weight(f"{prefix}/{weight}", dataset))


# --- Shapes the config implies -------------------------------------------------------------------


def _owners(entry: dict, name: str | None = None):
    """(weight-name prefix, class, config) of each weight-owning layer, named as above."""
    cls = entry.get("class_name")
    cfg = entry.get("config") or {}
    name = name or cfg.get("name")
    if cls in CONTAINERS:
        for layer in cfg.get("layers") or [] if isinstance(cfg, dict) else []:
            yield from _owners(layer)
    elif cls == "Bidirectional" and isinstance(cfg.get("layer"), dict):
        base = (cfg["layer"].get("config") or {}).get("name", "")
        base = base[len("forward_") :] if base.startswith("forward_") else base
        for side in ("forward", "backward"):
            yield from _owners(cfg["layer"], f"{name}/{side}_{base}")
    elif cls == "TimeDistributed" and isinstance(cfg.get("layer"), dict):
        yield from _owners(cfg["layer"], name)
    elif cls in RNN_CELLS:
        cell_cls, cell_name = RNN_CELLS[cls]
        yield (f"{name}/{cell_name}" if cell_name else name), cell_cls, cfg
    elif cls == "RNN" and isinstance(cfg.get("cell"), dict):
        cell = cfg["cell"]
        if cell.get("class_name") == "StackedRNNCells":
            for i, c in enumerate((cell.get("config") or {}).get("cells") or []):
                yield f"{name}/RNNCell_{i}", c.get("class_name"), c.get("config") or {}
        else:
            cell_cfg = cell.get("config") or {}
            yield f"{name}/{cell_cfg.get('name')}", cell.get("class_name"), cell_cfg
    elif cls in SUBLAYERS:
        for _, sub_name in sublayers(cls, cfg):
            yield f"{name}/{sub_name}", f"{cls}/{sub_name}", cfg
    else:
        yield name, cls, cfg


def _expected_shape(cls: str, cfg: dict, weight: str, ndim: int):
    """The shape `weight` must have, None standing for a size the config does not fix; or None."""

    def size(key, times=1):
        v = cfg.get(key)
        return v * times if isinstance(v, int) and not isinstance(v, bool) else None

    def kernel_size(n):
        k = cfg.get("kernel_size")
        k = tuple(k) if isinstance(k, (list, tuple)) else (k,) * n
        return tuple(v if isinstance(v, int) else None for v in k)

    gates = {"SimpleRNNCell": 1, "GRUCell": 3, "LSTMCell": 4}
    if cls.startswith("MultiHeadAttention/"):
        heads, key_dim = size("num_heads"), size("key_dim")
        value_dim = size("value_dim") or key_dim
        per_head = {"query": key_dim, "key": key_dim, "gate": value_dim, "value": value_dim}.get(cls.split("/")[1])
        if per_head is not None:
            return {"kernel": (None, heads, per_head), "bias": (heads, per_head)}.get(weight)
        return {"kernel": (heads, value_dim) + (None,) * (ndim - 2), "bias": (None,) * ndim}.get(weight)
    if cls == "Attention":
        return {"scale": (), "concat_score_weight": ()}.get(weight)
    if cls == "Dense":
        return {"kernel": (None, size("units")), "bias": (size("units"),)}.get(weight)
    if cls in ("Conv1D", "Conv2D", "Conv3D"):
        return {"kernel": kernel_size(ndim - 2) + (None, size("filters")), "bias": (size("filters"),)}.get(weight)
    if cls in ("Conv2DTranspose", "Conv3DTranspose"):
        return {"kernel": kernel_size(ndim - 2) + (size("filters"), None), "bias": (size("filters"),)}.get(weight)
    if cls in ("DepthwiseConv2D", "SeparableConv2D"):
        return {
            "depthwise_kernel": kernel_size(2) + (None, size("depth_multiplier")),
            "pointwise_kernel": (1, 1, None, size("filters")),
            "bias": (size("filters"),) if cls == "SeparableConv2D" else None,
        }.get(weight)
    if cls == "Embedding":
        return {"embeddings": (size("input_dim"), size("output_dim"))}.get(weight)
    if cls in gates:
        units, g = size("units"), size("units", gates[cls])
        bias: tuple[int | None, ...] = (g,)
        if cls == "GRUCell" and cfg.get("reset_after"):
            bias = (2, g)
        elif cls == "GRUCell" and "reset_after" not in cfg:
            bias = (None,) * ndim
        return {"kernel": (None, g), "recurrent_kernel": (units, g), "bias": bias}.get(weight)
    if cls == "ConvLSTM2DCell":
        f, g = size("filters"), size("filters", 4)
        return {"kernel": kernel_size(2) + (None, g), "recurrent_kernel": kernel_size(2) + (f, g), "bias": (g,)}.get(
            weight
        )
    return None


def check_shapes(path, weights: list[Weight], model_config: dict):
    """Refuse weights whose shapes disagree with what their layer's config implies (units, filters,
    kernel_size, Embedding dims, RNN gates; BatchNormalization/LayerNormalization parameters alike)."""
    owners = {prefix: (cls, cfg) for prefix, cls, cfg in _owners(model_config)}
    alike: dict[str, list[Weight]] = {}
    for w in weights:
        prefix, _, weight = w.name.rpartition("/")
        if prefix not in owners:
            continue
        cls, cfg = owners[prefix]
        shape = w.shape
        want = _expected_shape(cls, cfg, weight, len(shape))
        if want is not None and (len(want) != len(shape) or any(e is not None and e != s for e, s in zip(want, shape))):
            text = "(" + ", ".join("?" if e is None else str(e) for e in want) + ("," if len(want) == 1 else "") + ")"
            raise ConversionError(
                path, f"weight {w.name} has shape {shape}; the config of layer {prefix!r} ({cls}) implies {text}"
            )
        if cls in ("BatchNormalization", "LayerNormalization"):
            alike.setdefault(prefix, []).append(w)
    for prefix, ws in alike.items():
        if len({w.shape for w in ws}) > 1:
            shapes = ", ".join(f"{w.name} {w.shape}" for w in ws)
            raise ConversionError(path, f"the weights of layer {prefix!r} should have one shape: {shapes}")
