"""One environment from the environments of several processes (xdist workers, certify workers, shards)."""

from __future__ import annotations


def merge(envs: list[dict]) -> dict:
    """The first environment with backends; oneDNN as TensorFlow ran in the processes that imported it (any
    process without it shows as off). `envs` holds at least one environment."""
    if not envs:
        raise ValueError("no environment to merge")
    env = dict(next((e for e in envs if e.get("backends")), envs[0]))
    ran = [e["onednn"] for e in envs if (e.get("onednn") or {}).get("enabled") is not None]
    if ran:
        env["onednn"] = {
            **ran[0],
            "enabled": all(o["enabled"] for o in ran),
            "set_too_late": any(o["set_too_late"] for o in ran),
        }
    return env
