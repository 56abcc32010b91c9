"""Layers `keras.applications` defines outside `keras.layers`: ConvNeXt's LayerScale (x * gamma) and
InceptionResNetV2's CustomScaleLayer (x + scale * y), as the Rescaling and Add layers that compute them.

Keras writes them under their class names (tf_keras registers CustomScaleLayer as `Custom>CustomScaleLayer`). A
`.keras` file also records the module that defines them, and `topology.clean` refuses a class of one of these
names from any other module (a user's own layer); an `.h5` file records no module, so there the class name and
its exact config keys identify it."""

from __future__ import annotations

import copy

from converter.lowering.engine import Refuse, Site, f32, make_entry, rule
from converter.lowering.normalization import constant

# The modules that define them, in Keras 3 and tf_keras.
MODULES = {
    "LayerScale": ("keras.src.applications.convnext", "tf_keras.src.applications.convnext"),
    "CustomScaleLayer": ("keras.src.applications.inception_resnet_v2", "tf_keras.src.applications.inception_resnet_v2"),
}


@rule("layer_scale", "LayerScale")
def layer_scale(site: Site):
    cfg = site.expect("init_values", "projection_dim")
    weights = site.weights
    if len(weights) != 1 or site.ctx.weight_shapes[weights[0]] != (cfg.get("projection_dim"),):
        raise Refuse(f"LayerScale should hold one weight of shape ({cfg.get('projection_dim')},): it has {weights}")
    gamma = site.fold(weights[0])
    return site.chain([("Rescaling", {"scale": constant(gamma, gamma.shape), "offset": 0.0}, None)]), (
        "LayerScale -> Rescaling(scale=gamma)"
    )


@rule("custom_scale", "CustomScaleLayer", "Custom>CustomScaleLayer")  # tf_keras registers it under "Custom"
def custom_scale(site: Site):
    cfg = site.expect("scale")
    scale = cfg.get("scale")
    if not isinstance(scale, (int, float)) or isinstance(scale, bool):
        raise Refuse(f"CustomScaleLayer with scale {scale!r} (not a number) is not lowered")
    nodes = site.entry.get("inbound_nodes") or []
    if not site.functional or any(len(node) != 2 for node in nodes):
        raise Refuse("CustomScaleLayer takes exactly two inputs, in a functional model")
    name = site.name
    scaled = make_entry(
        "Rescaling",
        {"scale": f32(scale), "offset": 0.0},
        f"{name}__scaled",
        [[copy.deepcopy(node[1])] for node in nodes],
    )
    add = make_entry(
        "Add", {}, name, [[copy.deepcopy(node[0]), [f"{name}__scaled", k, 0, {}]] for k, node in enumerate(nodes)]
    )
    return [scaled, add], f"CustomScaleLayer(scale={scale:g}) -> Rescaling(scale) on the residual + Add"
