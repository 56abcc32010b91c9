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
    atols += [r.atol for r in recs if r.atol]
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
                "title": f"{r.id}\nmax_abs {sci(r.max_abs)} (atol {sci(r.atol)}) — {r.outcome}",
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


QUANT_CHART = {"width": 420, "height": 230, "left": 58, "right": 14, "top": 12, "bottom": 40}


def error_size_chart(rows: list[dict], backends) -> dict:
    """A small SVG scatter of one model's forms: weight size (fraction of float32) across, output error
    (max_abs, log axis) up, one colour per backend, each point labelled with its form."""
    c = QUANT_CHART
    pts = [r for r in rows if r["max_abs"] is not None and r["ratio"] is not None]
    errors = [r["max_abs"] for r in pts if r["max_abs"] > 0]
    lo = math.floor(math.log10(min(errors + [1e-7])))
    hi = math.ceil(math.log10(max(errors + [1e-3])))
    hi = hi if hi > lo else lo + 1
    plot_w, plot_h = c["width"] - c["left"] - c["right"], c["height"] - c["top"] - c["bottom"]

    def x_of(ratio):
        return round(c["left"] + min(max(ratio, 0.0), 1.05) / 1.05 * plot_w, 1)

    def y_of(err):
        err = max(err, 10.0**lo)
        return round(c["top"] + (hi - math.log10(err)) / (hi - lo) * plot_h, 1)

    order = {b: i for i, b in enumerate(backends)}
    points = [
        {
            "x": round(x_of(r["ratio"]) + (order.get(r["backend"], 0) - 1) * 4, 1),
            "y": y_of(r["max_abs"]),
            "colour": BACKEND_COLOUR.get(r["backend"], "#555") if r["ok"] else FAIL_COLOUR,
            "label": r["form"],
            "title": f"{r['form']} on {r['backend']}: max_abs {sci(r['max_abs'])}, "
            f"{r['ratio']:.2f} of float32" + ("" if r["ok"] else " (not ok)"),
        }
        for r in pts
    ]
    return {
        **c,
        "points": points,
        "backends": [{"name": b, "colour": BACKEND_COLOUR.get(b, "#555")} for b in backends],
        "xticks": [{"x": x_of(v), "label": f"{v:g}"} for v in (0.25, 0.5, 1.0)],
        "yticks": [{"y": y_of(10.0**e), "label": f"1e{e}"} for e in range(lo, hi + 1)],
        "plot_right": c["width"] - c["right"],
        "plot_bottom": c["height"] - c["bottom"],
    }
