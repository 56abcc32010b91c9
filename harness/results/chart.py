"""The geometry of the report's SVG charts (the templates only draw what this computes)."""

from __future__ import annotations

import hashlib
import math

CHART = {"width": 1080, "lane": 64, "left": 70, "right": 20, "top": 6, "bottom": 46}
BACKEND_COLOUR = {"cpu": "#2563eb", "wasm": "#7c3aed", "webgl": "#0d9488", "webgpu": "#b45309"}
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


QUANT_CHART = {"width": 420, "height": 262, "left": 58, "right": 14, "top": 12, "bottom": 74}
FORMS = ("float32", "float16", "uint16", "uint8", "plan")
# A backend is told by its shape as well as its colour: a failing point is red, and stays its backend's shape.
BACKEND_SHAPE = {"cpu": "circle", "wasm": "square", "webgl": "triangle", "webgpu": "diamond"}
MARKER_R = 4.5
BACKEND_GAP = 13  # px between a form's backends: more than a marker's width, so none hides another


def marker(shape: str, x: float, y: float, r: float = MARKER_R) -> str:
    """An SVG path of `shape` centred on (x, y)."""
    if shape == "square":
        return f"M{x - r:.1f},{y - r:.1f}h{2 * r:.1f}v{2 * r:.1f}h{-2 * r:.1f}Z"
    if shape == "diamond":
        return f"M{x:.1f},{y - r * 1.2:.1f}L{x + r:.1f},{y:.1f}L{x:.1f},{y + r * 1.2:.1f}L{x - r:.1f},{y:.1f}Z"
    if shape == "triangle":
        return f"M{x:.1f},{y - r * 1.2:.1f}L{x + r * 1.1:.1f},{y + r * 0.8:.1f}L{x - r * 1.1:.1f},{y + r * 0.8:.1f}Z"
    return f"M{x - r:.1f},{y:.1f}a{r},{r} 0 1,0 {2 * r:.1f},0a{r},{r} 0 1,0 {-2 * r:.1f},0Z"


def error_size_chart(rows: list[dict], backends) -> dict:
    """A small SVG chart of one model's forms: one column per form, smallest weights left (each labelled
    once, with its size as a fraction of float32), output error (max_abs, log axis) up, and each backend
    side by side in its column with a shape and colour of its own. Forms of the same size (float16 and
    uint16) and backends with the same error never overlap."""
    c = QUANT_CHART
    pts = [r for r in rows if r["max_abs"] is not None and r["ratio"] is not None]
    errors = [r["max_abs"] for r in pts if r["max_abs"] > 0]
    lo = math.floor(math.log10(min(errors + [1e-7])))
    hi = math.ceil(math.log10(max(errors + [1e-3])))
    hi = hi if hi > lo else lo + 1
    plot_w, plot_h = c["width"] - c["left"] - c["right"], c["height"] - c["top"] - c["bottom"]

    def y_of(err):
        err = max(err, 10.0**lo)
        return round(c["top"] + (hi - math.log10(err)) / (hi - lo) * plot_h, 1)

    ratio = {r["form"]: r["ratio"] for r in pts}
    forms = sorted(ratio, key=lambda f: (ratio[f], FORMS.index(f) if f in FORMS else len(FORMS)))
    width = plot_w / max(len(forms), 1)
    centre = {f: round(c["left"] + width * (i + 0.5), 1) for i, f in enumerate(forms)}
    shown = [b for b in backends if any(r["backend"] == b for r in pts)]
    offset = {b: (i - (len(shown) - 1) / 2) * BACKEND_GAP for i, b in enumerate(shown)}
    points = []
    for r in pts:
        x, y = round(centre[r["form"]] + offset.get(r["backend"], 0.0), 1), y_of(r["max_abs"])
        shape = BACKEND_SHAPE.get(r["backend"], "circle")
        points.append(
            {
                "x": x,
                "y": y,
                "d": marker(shape, x, y),
                "shape": shape,
                "backend": r["backend"],
                "form": r["form"],
                "colour": BACKEND_COLOUR.get(r["backend"], "#555") if r["ok"] else FAIL_COLOUR,
                "title": f"{r['form']} on {r['backend']}: max_abs {sci(r['max_abs'])}, "
                f"{r['ratio']:.2f} of float32" + ("" if r["ok"] else " (not ok)"),
            }
        )
    plot_bottom = c["height"] - c["bottom"]
    legend_w = (c["width"] - c["left"]) / max(len(backends), 1)
    return {
        **c,
        "points": points,
        "columns": [
            {"form": f, "x": centre[f], "ratio": f"{ratio[f]:.2f}", "x0": round(centre[f] - width / 2, 1)}
            for f in forms
        ],
        "column_w": round(width, 1),
        "backends": [
            {
                "name": b,
                "colour": BACKEND_COLOUR.get(b, "#555"),
                "d": marker(BACKEND_SHAPE.get(b, "circle"), c["left"] + i * legend_w + 6, c["height"] - 12),
                "x": round(c["left"] + i * legend_w + 15, 1),
            }
            for i, b in enumerate(backends)
        ],
        "yticks": [{"y": y_of(10.0**e), "label": f"1e{e}"} for e in range(lo, hi + 1)],
        "plot_right": c["width"] - c["right"],
        "plot_bottom": plot_bottom,
    }
