"""Layers that return their input unchanged at inference, removed: image augmentation (every Keras 3 and tf_keras
`Random*` layer, MixUp, CutMix, AugMix, RandAugment, Solarization, Equalization; RandomCrop when the input
already has its size), and the regularizers SpatialDropout2D/3D and ActivityRegularization.

Removing them changes what `fit` does (no augmentation, no dropout, no activity loss): a model using one
converts uncompiled (lowering_table: training_exact=False)."""

from __future__ import annotations

from converter.lowering.engine import AUGMENTATION, Refuse, Site, rule

INFERENCE_IDENTITY = ("SpatialDropout2D", "SpatialDropout3D", "ActivityRegularization")


def _removable(site: Site) -> None:
    """Refuse a call Keras runs in training mode, or an input Keras would cast (an integer one).

    tf_keras writes `training` in a node only when the call passed it, and then honours it in `predict` too.
    Keras 3 writes every augmentation call's `training=True` (its call's default) and replaces it with the
    model's own at inference (models/functional.py operation_fn): topology drops it, so it never reaches here."""
    for node in site.entry.get("inbound_nodes") or []:
        if len(node) != 1:
            raise Refuse(f"{site.cls} takes one input")
        if len(node[0]) > 3 and isinstance(node[0][3], dict) and node[0][3].get("training"):
            raise Refuse(f"{site.cls} called with training=True acts at inference too")
    if (site.entry.get("config") or {}).get("dtype") not in (None, "float32"):
        raise Refuse(f"{site.cls} casts to {site.entry['config']['dtype']}, not float32: it is not removed")
    if site.ctx.int_inputs:
        raise Refuse(f"{site.cls} casts an integer input to float, and the model has one: it is not removed")


@rule("augmentation", *AUGMENTATION)
def augmentation(site: Site):
    _removable(site)
    return [], f"{site.cls} -> removed (the input, unchanged, at inference)"


@rule("augmentation", "RandomCrop")
def random_crop(site: Site):
    cfg = site.cfg
    shape = site.shape
    if cfg.get("data_format") == "channels_first":
        size = shape[2:4] if shape is not None and len(shape) == 4 else None
    else:
        size = shape[1:3] if shape is not None and len(shape) == 4 else None
    if size is None or list(size) != [cfg.get("height"), cfg.get("width")]:
        raise Refuse(
            "RandomCrop resizes at inference unless its input already has its height and width, which this "
            f"file does not show (input {shape})"
        )
    _removable(site)
    return [], "RandomCrop -> removed (the input has its size: unchanged at inference)"


@rule("inference_identity", *INFERENCE_IDENTITY)
def inference_identity(site: Site):
    _removable(site)
    return [], f"{site.cls} -> removed (the identity at inference)"
