"""Global pooling TF.js mis-reads (keepdims, a channels_first 1D input) or lacks (3D)."""

from __future__ import annotations

from converter.lowering.engine import Refuse, Site, Step, rule

GLOBAL_POOL = ("GlobalAveragePooling1D", "GlobalMaxPooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling2D")
GLOBAL_POOL_3D = {"GlobalAveragePooling3D": "GlobalAveragePooling", "GlobalMaxPooling3D": "GlobalMaxPooling"}


def _repeat_inner(name: str) -> dict:
    return {"layer": {"class_name": "RepeatVector", "config": {"n": 1, "name": f"{name}__repeat_inner"}}}


@rule("global_pooling_keepdims", *GLOBAL_POOL)
def global_pooling_keepdims(site: Site):
    cfg, cls, cf = site.cfg, site.cls, site.channels_first
    if not cfg.pop("keepdims", False):
        return None
    pool = {**cfg, "keepdims": False}
    steps: list[Step] = []
    if cls.endswith("1D"):
        if cf:
            steps.append(("Permute", {"dims": [2, 1]}, "permute"))
            pool["data_format"] = "channels_last"
        steps.append((cls, pool, "pool"))
        steps.append(("RepeatVector", {"n": 1}, "repeat" if cf else None))
        if cf:
            steps.append(("Permute", {"dims": [2, 1]}, None))
    else:
        steps = [(cls, pool, "pool"), ("RepeatVector", {"n": 1}, "repeat")]
        if cf:
            steps.append(("Permute", {"dims": [2, 1]}, "permute"))
        steps.append(("TimeDistributed", _repeat_inner(site.name), None))
    return site.chain(steps), f"{cls}(keepdims=True) -> " + " + ".join(s[0] for s in steps)


@rule("global_pooling_1d_channels_first", "GlobalAveragePooling1D", "GlobalMaxPooling1D")
def global_pooling_1d_channels_first(site: Site):
    if not site.channels_first:
        return None
    steps: list[Step] = [
        ("Permute", {"dims": [2, 1]}, "permute"),
        (site.cls, {**site.cfg, "keepdims": False, "data_format": "channels_last"}, None),
    ]
    return site.chain(steps), f"{site.cls}(channels_first) -> Permute + {site.cls}"


@rule("global_pooling_3d", *GLOBAL_POOL_3D)
def global_pooling_3d(site: Site):
    kind = GLOBAL_POOL_3D[site.cls]
    if site.cfg.get("keepdims"):
        raise Refuse(f"{site.cls}(keepdims=True) is not lowered (a rank-5 result from rank-2 pooling)")
    cf = site.channels_first
    inner = {
        "class_name": f"{kind}2D",
        "config": {"name": f"{site.name}__pool2d", "data_format": "channels_first" if cf else "channels_last"},
    }
    steps: list[Step] = [("TimeDistributed", {"layer": inner}, "per_slice")]
    if cf:
        steps.append(("Permute", {"dims": [2, 1]}, "permute"))
    steps.append((f"{kind}1D", {}, None))
    return site.chain(steps), f"{site.cls} -> TimeDistributed({kind}2D) + {kind}1D"
