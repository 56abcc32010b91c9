"""The geometry of the report's SVG charts (the templates only draw what this computes)."""

from __future__ import annotations

import hashlib
import math

CHART = {"width": 1080, "lane": 64, "left": 70, "right": 20, "top": 6, "bottom": 46}
BACKEND_COLOUR = {"cpu": "#2563eb", "wasm": "#7c3aed", "webgl": "#0d9488"}
FAIL_COLOUR = "#dc2626"


def sci(x) -> str:
    if x is None:
        return "—"
    if x == 0:
        return "0"
    return f"{x:.1e}"


def _jitter(key: str) -> float:
    """A stable vertical offset in [-1, 1] so equal errors do not hide each other."""
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF * 2 - 1


def error_chart(data, backends) -> dict:
    """An SVG strip chart: each record's max_abs per backend, on a log axis, against atol.

    One lane per backend; a dot per record that has an error (0 sits at the left edge); the backend's
    policy atol is a dashed line; records that are not ok are red.
    """
    recs = [r for r in data["records"] if r.max_abs is not None]
    c = CHART
    errors = [r.max_abs for r in recs if r.max_abs > 0]
    atols = [t["atol"] for t in data["tolerances"].values() if t["atol"] > 0]
    atols += [r.tolerance.atol for r in recs if r.tolerance.atol > 0]
    lo = math.floor(math.log10(min(errors + atols + [1e-8])))
    hi = math.ceil(math.log10(max(errors + atols + [1e-2])))
    lo = max(lo, hi - 14)  # a 0 is drawn at the floor; keep at most 14 decades
    plot_w = c["width"] - c["left"] - c["right"]

    def x_of(v):
        v = max(v, 10.0**lo)
        return round(c["left"] + (math.log10(v) - lo) / (hi - lo) * plot_w, 1)

    lanes = []
    for i, b in enumerate(backends):
        y0 = c["top"] + i * c["lane"]
        tol = data["tolerances"].get(b)
        info = data["environment"]["backends"].get(b, {})
        lanes.append(
            {
                "note": (
                    f"backend unavailable: {info.get('reason') or 'no reason given'}"
                    if info.get("available") is False
                    else "no record with an error"
                ),
                "backend": b,
                "y0": y0,
                "mid": y0 + c["lane"] / 2,
                "colour": BACKEND_COLOUR.get(b, "#555"),
                "atol_x": x_of(tol["atol"]) if tol and tol["atol"] > 0 else None,
                "atol": sci(tol["atol"]) if tol else None,
                "empty": not any(r.backend == b for r in recs),
            }
        )
    lane_of = {lane["backend"]: lane for lane in lanes}
    points = []
    for r in recs:
        lane = lane_of[r.backend]
        points.append(
            {
                "id": r.id,
                "x": x_of(r.max_abs),
                "y": round(lane["mid"] + _jitter(r.id) * (c["lane"] / 2 - 9), 1),
                "colour": lane["colour"] if r.ok else FAIL_COLOUR,
                "ok": r.ok,
                "hollow": r.ok and r.expected == "xfail",
                "title": f"{r.id}\nmax_abs {sci(r.max_abs)} (atol {sci(r.tolerance.atol)}) — {r.outcome}",
            }
        )
    points.sort(key=lambda p: p["ok"], reverse=True)  # failures drawn last, on top
    height = c["top"] + len(lanes) * c["lane"] + c["bottom"]
    ticks = [{"x": x_of(10.0**e), "label": f"1e{e}"} for e in range(lo, hi + 1)]
    if any(r.max_abs <= 10.0**lo for r in recs):
        ticks[0]["label"] = f"≤1e{lo}"
    return {
        **c,
        "height": height,
        "lanes": lanes,
        "points": points,
        "ticks": ticks,
        "hollow": any(p["hollow"] for p in points),
        "plot_right": c["width"] - c["right"],
        "plot_bottom": height - c["bottom"],
        "zeros": sum(1 for r in recs if r.max_abs == 0),
    }
