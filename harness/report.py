"""The compatibility report: validating compat.json and rendering its views.

`reports/compat.json` (built by `harness/certify.py`) is the single source of every view: this module
checks it against `schema/compat.schema.json`, rolls records up per layer class and backend, and
renders `compat.md` and a self-contained `compat.html` from Jinja2 templates. It never builds records.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import tempfile
from collections import Counter
from pathlib import Path

import jinja2
import jsonschema

BACKENDS = ("cpu", "wasm", "webgl")
OUTCOMES = ("pass", "mismatch", "load_error", "rejected", "converter_error", "reference_error", "unavailable",
            "error", "missing")
STATUSES = ("certified", "rejected", "failing", "untested")
STATUS_MARK = {"certified": "✅", "rejected": "⛔", "failing": "❌", "untested": "—"}
# The HTML page uses text glyphs: colour emoji are missing from many fonts (headless Chromium on Linux).
HTML_MARK = {"certified": "✓", "rejected": "⊘", "failing": "✗", "untested": "—"}

SCHEMA_PATH = Path(__file__).parent / "schema" / "compat.schema.json"
TEMPLATES = Path(__file__).parent / "templates"


class ReportError(ValueError):
    """compat.json does not have the shape the views and the regression gate rely on."""


@functools.lru_cache(maxsize=1)
def schema() -> dict:
    with open(SCHEMA_PATH, encoding="utf-8") as f:
        return json.load(f)


def _where(error) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return path.lstrip(".") or "(top level)"


def _non_finite(value, where=""):
    """The path of the first NaN/inf float in `value`, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return where or "(top level)"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _non_finite(item, f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}".lstrip("."))
        if found:
            return found
    return None


def validate(data) -> None:
    """Raise ReportError (one line: where and what) unless `data` is a well-formed compat report.

    Beyond the schema: record ids are unique and the summary counts agree with the records.
    """
    validator = jsonschema.Draft202012Validator(schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is not None:
        raise ReportError(f"{_where(error)}: {error.message}")
    bad = _non_finite(data)
    if bad:
        raise ReportError(f"{bad}: NaN or infinity has no JSON form; report a non-finite error as a mismatch "
                          "with max_abs null and say so in the message")
    seen = set()
    for i, rec in enumerate(data["records"]):
        if rec["id"] in seen:
            raise ReportError(f"records[{i}].id: duplicate record id {rec['id']!r}")
        seen.add(rec["id"])
    summary, n_ok = data["summary"], sum(r["ok"] for r in data["records"])
    if (summary["records"], summary["ok"], summary["not_ok"]) != (len(seen), n_ok, len(seen) - n_ok):
        raise ReportError(
            f"summary: counts records={summary['records']} ok={summary['ok']} not_ok={summary['not_ok']} "
            f"disagree with the {len(seen)} records ({n_ok} ok)"
        )


# --- rollup ----------------------------------------------------------------------------------------


def _fmt_value(value) -> str:
    return repr(value) if not isinstance(value, str) else f"'{value}'"


def _rejection_reasons(rec) -> list[tuple[str | None, str]]:
    """(class_name, "argument=value: code") for each reason the converter gave."""
    out = []
    for rc in rec["reason_codes"]:
        what = f"{rc['argument']}={_fmt_value(rc.get('value'))}: {rc['code']}" if rc.get("argument") else rc["code"]
        out.append((rc.get("class_name"), what))
    if not out and rec.get("expected_code"):
        out.append((None, rec["expected_code"]))
    return out


def _blamed_classes(rec) -> list[str]:
    """The layer classes a record tells us something about.

    A rejection or a divergence that names its layer class concerns that class only: a Dense next to
    an unsupported GRU is not itself rejected, and the layers before the first divergence matched.
    Anything else concerns every class the model uses.
    """
    named = set()
    if rec["outcome"] in ("rejected", "converter_error"):
        named = {rc["class_name"] for rc in rec["reason_codes"] if rc.get("class_name")}
    elif not rec["ok"] and rec["first_divergence"] and rec["first_divergence"].get("class_name"):
        named = {rec["first_divergence"]["class_name"]}
    classes = list(dict.fromkeys(rec["layer_classes"]))
    if named & set(classes):
        return [c for c in classes if c in named]
    return classes + sorted(named - set(classes))


def _failure_reason(rec) -> str:
    where = ""
    if rec["first_divergence"]:
        fd = rec["first_divergence"]
        where = f" (first diverging layer {fd['layer']}" + (f" [{fd['class_name']}]" if fd.get("class_name") else "") + ")"
    message = (rec["message"] or "").strip()
    return f"{rec['id']}: {rec['outcome']}" + (f": {message}" if message else "") + where


def _status(recs) -> dict:
    if not recs:
        return {"status": "untested", "cases": 0, "ok": 0, "reasons": []}
    reasons = []
    for rec in recs:
        if not rec["ok"]:
            reasons.append(_failure_reason(rec))
        elif rec["expected"] == "reject":
            reasons.extend(what for _, what in _rejection_reasons(rec))
        elif rec["expected"] == "xfail" and rec["expected_reason"]:
            reasons.append(f"xfail: {rec['expected_reason']}")
    n_ok = sum(r["ok"] for r in recs)
    if n_ok < len(recs):
        status = "failing"
    elif any(r["outcome"] == "pass" for r in recs):
        status = "certified"
    elif any(r["expected"] == "reject" for r in recs):
        status = "rejected"
    else:  # every record is an expected failure (xfail): known not to work
        status = "failing"
    return {"status": status, "cases": len(recs), "ok": n_ok, "reasons": sorted(set(reasons))}


def _join(words) -> str:
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def rollup(records, backends=BACKENDS) -> tuple[dict, dict]:
    """Compute the `layers` and `summary` sections of compat.json from its records.

    Per layer class and backend: `certified` when every record exercising it is ok and one passed,
    `rejected` when its records are all expected rejections, `failing` when any is not ok (or it only
    has expected failures), `untested` when none ran (a backend that was unavailable tests nothing).
    """
    backends = list(dict.fromkeys(list(backends) + [r["backend"] for r in records]))
    backends.sort(key=lambda b: BACKENDS.index(b) if b in BACKENDS else len(BACKENDS))
    by_key: dict[tuple[str, str], list] = {}
    classes: set[str] = set()
    for rec in records:
        for cls in rec["layer_classes"]:
            classes.add(cls)
        if rec["outcome"] == "unavailable":
            continue
        for cls in _blamed_classes(rec):
            classes.add(cls)
            by_key.setdefault((cls, rec["backend"]), []).append(rec)
    layers = {cls: {b: _status(by_key.get((cls, b), [])) for b in backends} for cls in sorted(classes)}

    tested = [b for b in backends if any(layers[c][b]["status"] != "untested" for c in layers)]
    statuses = {cls: {layers[cls][b]["status"] for b in tested} for cls in layers}
    failing = [c for c, s in statuses.items() if "failing" in s]
    rejected = [c for c, s in statuses.items() if "rejected" in s and "failing" not in s]
    certified = [c for c, s in statuses.items() if s == {"certified"}]
    partial = len(layers) - len(failing) - len(rejected) - len(certified)
    line = f"Layer classes: {len(certified)} certified on {_join(tested) if tested else 'no backend'}"
    line += f"; {len(rejected)} rejected; {len(failing)} failing"
    if partial:
        line += f"; {partial} untested on some backend"
    untested_backends = [b for b in backends if b not in tested]
    if untested_backends:
        line += f" ({_join(untested_backends)}: nothing ran)"

    n_ok = sum(r["ok"] for r in records)
    counts = Counter(r["outcome"] for r in records)
    summary = {
        "records": len(records),
        "ok": n_ok,
        "not_ok": len(records) - n_ok,
        "by_outcome": {o: counts[o] for o in OUTCOMES if counts[o]},
        "line": line,
    }
    return layers, summary


# --- view model ------------------------------------------------------------------------------------


def sci(x) -> str:
    if x is None:
        return "—"
    if x == 0:
        return "0"
    return f"{x:.1e}"


def _ms(x) -> str:
    return "—" if x is None else (f"{x:.0f}" if x >= 10 else f"{x:.1f}")


def _bytes(n) -> str:
    if n is None:
        return "—"
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _backends_of(data) -> list[str]:
    present = set(data["environment"]["backends"]) | set(data["tolerances"])
    present |= {r["backend"] for r in data["records"]}
    for by_backend in data["layers"].values():
        present |= set(by_backend)
    return [b for b in BACKENDS if b in present]


def _rejected_list(data) -> list[dict]:
    """One entry per (layer class, reason): the arguments that make the converter refuse it."""
    entries: dict[tuple, dict] = {}
    for rec in data["records"]:
        if rec["expected"] != "reject" or not rec["ok"]:
            continue
        for cls, what in _rejection_reasons(rec):
            cls = cls or ", ".join(rec["layer_classes"]) or rec["case"]
            rc = next((rc for rc in rec["reason_codes"] if rc.get("class_name") in (cls, None)), None)
            key = (cls, what)
            entry = entries.setdefault(key, {
                "class_name": cls,
                "argument": (f"{rc['argument']}={_fmt_value(rc.get('value'))}" if rc and rc.get("argument") else "—"),
                "code": rc["code"] if rc else (rec["expected_code"] or "—"),
                "reason": (rc["reason"] if rc and rc.get("reason") else rec["expected_reason"]) or "",
                "cases": set(),
                "backends": set(),
            })
            entry["cases"].add(rec["case"])
            entry["backends"].add(rec["backend"])
    out = []
    for entry in sorted(entries.values(), key=lambda e: (e["class_name"], e["argument"])):
        entry["cases"] = sorted(entry["cases"])
        entry["backends"] = [b for b in BACKENDS if b in entry["backends"]]
        out.append(entry)
    return out


def _failing_list(data) -> list[dict]:
    out = []
    for rec in data["records"]:
        if rec["ok"] or rec["outcome"] == "unavailable":  # the backend failed, not the model
            continue
        fd = rec["first_divergence"]
        out.append({
            "id": rec["id"],
            "outcome": rec["outcome"],
            "expected": rec["expected"],
            "message": rec["message"] or "",
            "max_abs": sci(rec["max_abs"]),
            "atol": sci(rec["tolerance"]["atol"]),
            "divergence": (f"{fd['layer']} ({fd['class_name']})" if fd and fd.get("class_name")
                           else (fd["layer"] if fd else "—")),
            "divergence_error": sci(fd["max_abs"]) if fd else "—",
            "preceding": ", ".join(f"{p['layer']} {sci(p['max_abs'])}" for p in (fd["preceding"] if fd else [])[-3:]),
        })
    return out


def _apps(data) -> list[dict]:
    out = []
    order = {b: i for i, b in enumerate(BACKENDS)}
    for rec in sorted(data["records"], key=lambda r: (r["case"], order.get(r["backend"], 9), r["id"])):
        if rec["tier"] != "app":
            continue
        t, s = rec["timings_ms"], rec["sizes"]
        out.append({
            "id": rec["id"], "case": rec["case"], "backend": rec["backend"], "outcome": rec["outcome"],
            "ok": rec["ok"], "max_abs": sci(rec["max_abs"]),
            "convert": _ms(t.get("convert")), "load": _ms(t.get("load")),
            "first_predict": _ms(t.get("first_predict")), "predict_median": _ms(t.get("predict_median")),
            "model_json": _bytes(s.get("model_json_bytes")), "weights": _bytes(s.get("weights_bytes")),
            "shards": "—" if s.get("shards") is None else s["shards"],
        })
    return out


# --- the error chart ---------------------------------------------------------------------------------

CHART = {"width": 1080, "lane": 64, "left": 70, "right": 20, "top": 6, "bottom": 46}
BACKEND_COLOUR = {"cpu": "#2563eb", "wasm": "#7c3aed", "webgl": "#0d9488"}
FAIL_COLOUR = "#dc2626"


def _jitter(key: str) -> float:
    """A stable vertical offset in [-1, 1] so equal errors do not hide each other."""
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF * 2 - 1


def error_chart(data) -> dict:
    """Geometry of an SVG strip chart: each record's max_abs per backend, on a log axis, against atol.

    One lane per backend; a dot per record that has an error (0 sits at the left edge); the backend's
    policy atol is a dashed line; records that are not ok are red.
    """
    recs = [r for r in data["records"] if r["max_abs"] is not None]
    backends = _backends_of(data)
    c = CHART
    errors = [r["max_abs"] for r in recs if r["max_abs"] > 0]
    atols = [t["atol"] for t in data["tolerances"].values() if t["atol"] > 0]
    atols += [r["tolerance"]["atol"] for r in recs if r["tolerance"]["atol"] > 0]
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
        mid = y0 + c["lane"] / 2
        tol = data["tolerances"].get(b)
        info = data["environment"]["backends"].get(b, {})
        lanes.append({
            "note": (f"backend unavailable: {info.get('reason') or 'no reason given'}" if info.get("available") is False
                     else "no record with an error"),
            "backend": b, "y0": y0, "mid": mid, "colour": BACKEND_COLOUR.get(b, "#555"),
            "atol_x": x_of(tol["atol"]) if tol and tol["atol"] > 0 else None,
            "atol": sci(tol["atol"]) if tol else None,
        })
    lane_of = {lane["backend"]: lane for lane in lanes}
    for lane in lanes:
        lane["empty"] = not any(r["backend"] == lane["backend"] for r in recs)
    points = []
    for r in recs:
        lane = lane_of[r["backend"]]
        points.append({
            "id": r["id"], "x": x_of(r["max_abs"]),
            "y": round(lane["mid"] + _jitter(r["id"]) * (c["lane"] / 2 - 9), 1),
            "colour": lane["colour"] if r["ok"] else FAIL_COLOUR, "ok": r["ok"],
            "hollow": r["ok"] and r["expected"] == "xfail",
            "title": f"{r['id']}\nmax_abs {sci(r['max_abs'])} (atol {sci(r['tolerance']['atol'])}) — {r['outcome']}",
        })
    points.sort(key=lambda p: p["ok"], reverse=True)  # failures drawn last, on top
    height = c["top"] + len(lanes) * c["lane"] + c["bottom"]
    ticks = [{"x": x_of(10.0**e), "label": f"1e{e}"} for e in range(lo, hi + 1)]
    if any(r["max_abs"] <= 10.0**lo for r in recs):
        ticks[0]["label"] = f"≤1e{lo}"
    return {**c, "height": height, "lanes": lanes, "points": points, "ticks": ticks,
            "hollow": any(p["hollow"] for p in points),
            "plot_right": c["width"] - c["right"], "plot_bottom": height - c["bottom"],
            "zeros": sum(1 for r in recs if r["max_abs"] == 0)}


def _cell(status) -> dict:
    """A matrix cell; `rejected_options` counts the arguments rejected in a class otherwise certified."""
    cell = dict(status or {"status": "untested", "cases": 0, "ok": 0, "reasons": []})
    cell["rejected_options"] = 0
    # failing although every record met its expectation: only expected failures (xfail) ran
    cell["known_failure"] = cell["status"] == "failing" and cell["ok"] == cell["cases"] > 0
    if cell["status"] == "certified":
        cell["rejected_options"] = sum(1 for r in cell["reasons"] if not r.startswith("xfail:"))
    return cell


def _backend_info(data) -> list[dict]:
    out = []
    for name, info in data["environment"]["backends"].items():
        details = []
        if info.get("reason"):
            details.append(info["reason"])
        if info.get("tfjs_version"):
            details.append(f"TF.js {info['tfjs_version']}")
        if info.get("webgl_renderer"):
            details.append(f"renderer {info['webgl_renderer']}")
        if info.get("wasm_simd") is not None:
            details.append(f"SIMD {'on' if info['wasm_simd'] else 'off'}")
        if info.get("wasm_threads") is not None:
            details.append(f"threads {'on' if info['wasm_threads'] else 'off'}")
        out.append({"name": name, "available": info["available"], "details": "; ".join(details) or "—",
                    "precision": f"float{info['float_precision']}" if info.get("float_precision") else "—"})
    return out


def _options(data) -> list[dict]:
    """Per layer class, every option value its single-layer cases exercised, with a status: `certified`
    (every record passed), `rejected` (refused by the converter, as expected), `xfail` (a known TF.js
    failure, as expected) or `failing` (some record missed its expectation)."""
    seen: dict[str, dict[str, list]] = {}
    for r in data["records"]:
        if r["tier"] not in ("layer", "reject") or not r["layer_classes"] or not r["options"]:
            continue
        for key, value in r["options"].items():
            text = f"{key}={_fmt_value(value)}"
            seen.setdefault(r["layer_classes"][0], {}).setdefault(text, []).append(r)

    def status(recs):
        if not all(r["ok"] for r in recs):
            return "failing"
        if any(r["outcome"] in ("mismatch", "load_error") for r in recs):
            return "xfail"
        return "certified" if any(r["outcome"] == "pass" for r in recs) else "rejected"
    return [{"class_name": cls, "options": [{"text": t, "status": status(recs)} for t, recs in sorted(opts.items())]}
            for cls, opts in sorted(seen.items())]


def _onednn_text(facts) -> str | None:
    if not facts:
        return None
    text = f"{facts['variable']}={facts['policy']} (set by tfjs-certify"
    text += f"; the caller had {facts['requested']})" if facts["requested"] is not None else ")"
    state = {True: "oneDNN on", False: "oneDNN OFF", None: "TensorFlow not imported (references from the cache)"}
    text += f"; {state[facts['enabled']]}"
    if facts["set_too_late"]:
        text += "; TensorFlow was imported before the policy could be set"
    return text


def view(data) -> dict:
    """Everything the templates show, computed once from compat.json."""
    backends = _backends_of(data)
    records = sorted(data["records"], key=lambda r: (r["ok"], r["id"]))
    rows = [{
        **r,
        "max_abs_text": sci(r["max_abs"]),
        "atol_text": sci(r["tolerance"]["atol"]),
        "ratio": (r["max_abs"] / r["tolerance"]["atol"]) if r["max_abs"] is not None and r["tolerance"]["atol"] else None,
    } for r in records]
    overrides = sorted({(r["case"], r["tolerance"]["atol"], r["tolerance"]["rtol"], r["tolerance"]["reason"])
                        for r in data["records"] if r["tolerance"].get("reason")})
    return {
        "data": data,
        "env": data["environment"],
        "backend_info": _backend_info(data),
        "backends": backends,
        "matrix": [{"class_name": cls, "cells": [_cell(by_b.get(b)) for b in backends]}
                   for cls, by_b in sorted(data["layers"].items())],
        "marks": STATUS_MARK,
        "html_marks": HTML_MARK,
        "rejected": _rejected_list(data),
        "failing": _failing_list(data),
        "unavailable": sum(r["outcome"] == "unavailable" for r in data["records"]),
        "missing": sum(r["outcome"] == "missing" for r in data["records"]),
        "onednn": _onednn_text(data["environment"].get("onednn")),
        "apps": _apps(data),
        "options": _options(data),
        "overrides": [{"case": o[0], "atol": sci(o[1]), "rtol": sci(o[2]), "reason": o[3]} for o in overrides],
        "outcomes": [(o, data["summary"]["by_outcome"].get(o, 0)) for o in OUTCOMES],
        "rows": rows,
        "chart": error_chart(data),
        "sci": sci,
    }


# --- rendering ---------------------------------------------------------------------------------------


def _md_cell(text) -> str:
    """Text safe inside a Markdown table cell: one line, pipes escaped."""
    return " ".join(str("" if text is None else text).split()).replace("|", "\\|")


@functools.lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = _md_cell
    env.filters["sci"] = sci
    return env


def render_markdown(data) -> str:
    return _env().get_template("compat.md.j2").render(**view(data))


def render_html(data) -> str:
    return _env().get_template("compat.html.j2").render(**view(data))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` in one step, with the user's normal file mode (mkstemp's is 0600)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_reports(data, out_dir) -> dict[str, Path]:
    """Validate `data`, then write compat.json, compat.md and compat.html into `out_dir`.

    Every view is rendered before anything is written, and each file is replaced atomically, so a
    failure leaves the previous reports intact.
    """
    validate(data)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = {
        "json": json.dumps(data, indent=1, ensure_ascii=False, allow_nan=False) + "\n",
        "md": render_markdown(data),
        "html": render_html(data),
    }
    paths = {}
    for ext, text in texts.items():
        paths[ext] = out / f"compat.{ext}"
        write_atomic(paths[ext], text)
    return paths


def load(path) -> dict:
    """Read and validate a compat.json; ReportError names the file and the problem."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ReportError(f"{path}: is a directory, not a compat.json") from None
    except json.JSONDecodeError as e:
        raise ReportError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ReportError(f"{path}: cannot read ({e})") from None
    try:
        validate(data)
    except ReportError as e:
        raise ReportError(f"{path}: {e}") from None
    return data


def summary_table(data):
    """A rich Table for the console: outcome counts per backend, then the summary line as caption."""
    from rich.table import Table
    from rich.text import Text

    backends = _backends_of(data)
    table = Table(title="tfjs-certify", caption=Text(data["summary"]["line"]), show_footer=True)
    table.add_column("outcome", footer="ok / total")
    counts = Counter((r["outcome"], r["backend"]) for r in data["records"])
    for b in backends:
        recs = [r for r in data["records"] if r["backend"] == b]
        table.add_column(b, justify="right", footer=f"{sum(r['ok'] for r in recs)} / {len(recs)}")
    styles = {"pass": "green", "rejected": "yellow", "unavailable": "dim"}
    for outcome in OUTCOMES:
        if any(counts[(outcome, b)] for b in backends):
            table.add_row(outcome, *(str(counts[(outcome, b)]) for b in backends),
                          style=styles.get(outcome, "red"))
    return table


__all__ = ["validate", "rollup", "write_reports", "summary_table", "load", "render_markdown",
           "render_html", "ReportError", "STATUS_MARK", "BACKENDS", "OUTCOMES"]
