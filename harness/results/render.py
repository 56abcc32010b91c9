"""The report's views: compat.md and a self-contained compat.html (Jinja2), and the console table.

`view` computes everything the templates show, once, from a report (harness.results.compat); the
templates in `templates/` only lay it out. `write_reports` renders every view before writing any, and
replaces each file atomically.
"""

from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path
from typing import Any

import jinja2

from harness.files import write_atomic
from harness.results import compat
from harness.results.chart import error_chart, error_size_chart, sci
from harness.results.record import Record
from harness.vocabulary import BACKENDS, OUTCOMES

TEMPLATES = Path(__file__).parent / "templates"
STATUS_MARK = {"certified": "✅", "rejected": "⛔", "failing": "❌", "untested": "—"}
# The HTML page uses text glyphs: colour emoji are missing from many fonts (headless Chromium on Linux).
HTML_MARK = {"certified": "✓", "rejected": "⊘", "failing": "✗", "untested": "—"}


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


def backends_of(data) -> list[str]:
    present = set(data["environment"]["backends"]) | set(data["tolerances"])
    present |= {r.backend for r in data["records"]}
    for by_backend in data["layers"].values():
        present |= set(by_backend)
    return [b for b in BACKENDS if b in present]


def _rejected_list(records: list[Record]) -> list[dict]:
    """One entry per (layer class, reason): the arguments that make the converter refuse it."""
    entries: dict[tuple, dict] = {}
    for rec in records:
        if rec.expected != "reject" or not rec.ok:
            continue
        for cls, what in compat.rejection_reasons(rec):
            cls = cls or ", ".join(rec.layer_classes) or rec.case
            rc = next((rc for rc in rec.reason_codes if rc.class_name in (cls, None)), None)
            entry = entries.setdefault(
                (cls, what),
                {
                    "class_name": cls,
                    "argument": f"{rc.argument}={compat.fmt_value(rc.value)}" if rc and rc.argument else "—",
                    "code": rc.code if rc else (rec.expected_code or "—"),
                    "reason": (rc.reason if rc and rc.reason else rec.expected_reason) or "",
                    "cases": set(),
                    "backends": set(),
                },
            )
            entry["cases"].add(rec.case)
            entry["backends"].add(rec.backend)
    out = []
    for entry in sorted(entries.values(), key=lambda e: (e["class_name"], e["argument"])):
        entry["cases"] = sorted(entry["cases"])
        entry["backends"] = [b for b in BACKENDS if b in entry["backends"]]
        out.append(entry)
    return out


def _failing_list(records: list[Record]) -> list[dict]:
    out = []
    for rec in records:
        if rec.ok or rec.outcome == "unavailable":  # the backend failed, not the model
            continue
        fd = rec.first_divergence
        out.append(
            {
                "id": rec.id,
                "outcome": rec.outcome,
                "expected": rec.expected,
                "message": rec.message or "",
                "max_abs": sci(rec.max_abs),
                "atol": sci(rec.atol),
                "divergence": (f"{fd.layer} ({fd.class_name})" if fd and fd.class_name else (fd.layer if fd else "—")),
                "divergence_error": sci(fd.max_abs) if fd else "—",
                "preceding": ", ".join(f"{p.layer} {sci(p.max_abs)}" for p in (fd.preceding if fd else [])[-3:]),
            }
        )
    return out


def _apps(records: list[Record]) -> list[dict]:
    out = []
    order = {b: i for i, b in enumerate(BACKENDS)}
    for rec in sorted(records, key=lambda r: (r.case, order.get(r.backend, 9), r.id)):
        if rec.tier not in ("app", "user"):
            continue
        t, s = rec.timings_ms, rec.sizes
        out.append(
            {
                "id": rec.id,
                "case": rec.case,
                "backend": rec.backend,
                "outcome": rec.outcome,
                "ok": rec.ok,
                "max_abs": sci(rec.max_abs),
                "convert": _ms(t.convert),
                "load": "shared run" if rec.shared_run else _ms(t.load),
                "first_predict": "shared run" if rec.shared_run else _ms(t.first_predict),
                "predict_median": _ms(t.predict_median),
                "model_json": _bytes(s.model_json_bytes),
                "weights": _bytes(s.weights_bytes),
                "shards": "—" if s.shards is None else s.shards,
            }
        )
    return out


def _quantization(records: list[Record], backends) -> list[dict]:
    """Per quantized model: each form (float32 first) on each backend, its error against Keras with the same
    dequantized weights (what is judged), its cost (error against the float32 Keras model, in TF.js and in Keras
    alone) and its weight bytes; and the chart of cost against size."""
    quantized = {(r.case, r.flavour, r.format) for r in records if r.quantization is not None}
    out = []
    for case, flavour, fmt in sorted(quantized):
        rows: list[dict[str, Any]] = []
        for r in records:
            if (r.case, r.flavour, r.format) != (case, flavour, fmt):
                continue
            q = r.quantization
            rows.append(
                {
                    "form": q.dtype if q else "float32",
                    "backend": r.backend,
                    "ok": r.ok,
                    "outcome": r.outcome,
                    "max_abs": r.max_abs,
                    "atol": r.atol,
                    "cost": q.float32_max_abs if q else None,
                    "keras_cost": q.keras_max_abs if q else None,
                    "id": r.id,
                    "bytes": q.weights_bytes if q else r.sizes.weights_bytes,
                    "ratio": q.ratio if q else (1.0 if r.sizes.weights_bytes else None),
                    "dequant": q.dequant_steps if q else None,
                    "budget": q.budget if q else None,
                }
            )
        forms = ["float32", "float16", "uint16", "uint8", "plan"]
        rows.sort(
            key=lambda x: (forms.index(x["form"]), backends.index(x["backend"]) if x["backend"] in backends else 9)
        )
        table = []
        for form in forms:
            mine = [x for x in rows if x["form"] == form]
            if not mine:
                continue
            by_b = {x["backend"]: x for x in mine}
            table.append(
                {
                    "form": form,
                    "bytes": _bytes(mine[0]["bytes"]),
                    "ratio": "—" if mine[0]["ratio"] is None else f"{mine[0]['ratio']:.2f}",
                    "cells": [
                        {
                            "max_abs": sci(by_b[b]["max_abs"]) if b in by_b else "—",
                            "cost": sci(by_b[b]["cost"]) if b in by_b and form != "float32" else "",
                            "ok": by_b[b]["ok"] if b in by_b else None,
                        }
                        for b in backends
                    ],
                    "atol": sci(max((x["atol"] for x in mine if x["atol"] is not None), default=None)),
                    "keras_cost": sci(mine[0]["keras_cost"]) if form != "float32" else "—",
                    "dequant": "—" if mine[0]["dequant"] is None else f"{max(x['dequant'] or 0 for x in mine):.2f}",
                    "budget": sci(mine[0]["budget"]) if mine[0]["budget"] is not None else "",
                }
            )
        # the chart plots what quantization costs: each form's error against the float32 model
        costs = [{**x, "max_abs": x["cost"]} if x["form"] != "float32" else x for x in rows]
        out.append(
            {"case": case, "variant": f"{flavour} {fmt}", "table": table, "chart": error_size_chart(costs, backends)}
        )
    return out


def _pieces(record: Record) -> list[tuple[str, str]]:
    """The pieces of training a train record says something about: for a refusal, the refused piece; for
    anything else, its loss, each metric and its optimizer."""
    if record.outcome == "rejected" and record.reason_codes:
        rc = record.reason_codes[0]
        kind = {"loss": "loss", "metrics": "metric", "optimizer": "optimizer"}.get(rc.argument or "", "argument")
        name = str(rc.value) if kind != "argument" else f"{rc.argument}={compat.fmt_value(rc.value)}"
        return [(kind, name)]
    opts = record.options
    metrics = opts.get("metrics") or []
    return [
        ("loss", str(opts.get("loss"))),
        *(("metric", str(m)) for m in metrics),
        ("optimizer", str(opts.get("optimizer"))),
    ]


def _training(records: list[Record], backends) -> list[dict]:
    """Per loss, metric, optimizer (and refused argument): on each backend, certified (every train record
    using it passed), not carried (refused by the converter, with its code), a known failure, or failing;
    with the largest error measured (evaluate, step losses and weights after training)."""
    cells: dict[tuple[str, str], dict[str, list[Record]]] = {}
    for r in records:
        if r.tier == "train":
            for piece in _pieces(r):
                cells.setdefault(piece, {}).setdefault(r.backend, []).append(r)
    order = {"loss": 0, "metric": 1, "optimizer": 2, "argument": 3}
    rows = []
    for (kind, name), by_b in sorted(cells.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])):
        row_cells, notes = [], set()
        for b in backends:
            recs = by_b.get(b, [])
            errors = [r.max_abs for r in recs if r.max_abs is not None and r.outcome == "pass"]
            if not recs:
                status = "untested"
            elif not all(r.ok for r in recs):
                status = "failing"
            elif all(r.outcome == "rejected" for r in recs):
                status = "not carried"
                notes |= {f"{rc.code}: {rc.reason}" for r in recs for rc in r.reason_codes[:1]}
            elif any(r.outcome == "pass" for r in recs):
                status = "certified"
            else:
                status = "known failure"
                notes |= {r.expected_reason or "" for r in recs}
            row_cells.append({"status": status, "max_abs": sci(max(errors)) if errors else "—", "records": len(recs)})
        rows.append({"kind": kind, "name": name, "cells": row_cells, "note": "; ".join(sorted(notes))})
    return rows


def _lowerings(records: list[Record], backends) -> list[dict]:
    """Per lowering (converter/lowering_table.py): on each backend, certified (every float32 record converted
    through it met its expectation, and one passed), failing, or untested; with the largest error measured."""
    from converter.lowering_table import LOWERINGS

    by_rule: dict[str, dict[str, list[Record]]] = {}
    for r in records:
        if r.quantization is None:
            for rule in {x.rule for x in r.lowerings}:
                by_rule.setdefault(rule, {}).setdefault(r.backend, []).append(r)
    rows = []
    for rule, lowering in LOWERINGS.items():
        cells = []
        for b in backends:
            recs = by_rule.get(rule, {}).get(b, [])
            errors = [r.max_abs for r in recs if r.max_abs is not None and r.outcome == "pass"]
            if not recs:
                status = "untested"
            elif not all(r.ok for r in recs):
                status = "failing"
            else:
                status = "certified" if errors else "known failure"
            cells.append({"status": status, "max_abs": sci(max(errors)) if errors else "—", "records": len(recs)})
        cases = sorted({r.case for by_b in by_rule.get(rule, {}).values() for r in by_b})
        rows.append(
            {
                "rule": rule,
                "construct": lowering.construct,
                "replacement": lowering.replacement,
                "cells": cells,
                "cases": len(cases),
                "training": "exact" if lowering.training_exact else "inference only",
            }
        )
    return rows


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
        out.append(
            {
                "name": name,
                "available": info["available"],
                "details": "; ".join(details) or "—",
                "precision": f"float{info['float_precision']}" if info.get("float_precision") else "—",
            }
        )
    return out


def _options(records: list[Record]) -> list[dict]:
    """Per layer class, every option value its single-layer cases exercised, with a status: `certified`
    (every record passed), `rejected` (refused by the converter, as expected), `xfail` (a known TF.js
    failure, as expected) or `failing` (some record missed its expectation)."""
    seen: dict[str, dict[str, list]] = {}
    for r in records:
        if r.tier not in ("layer", "reject") or not r.layer_classes or not r.options:
            continue
        for key, value in r.options.items():
            seen.setdefault(r.layer_classes[0], {}).setdefault(f"{key}={compat.fmt_value(value)}", []).append(r)

    def status(recs):
        if not all(r.ok for r in recs):
            return "failing"
        if any(r.outcome in ("mismatch", "load_error") for r in recs):
            return "xfail"
        return "certified" if any(r.outcome == "pass" for r in recs) else "rejected"

    return [
        {"class_name": cls, "options": [{"text": t, "status": status(recs)} for t, recs in sorted(opts.items())]}
        for cls, opts in sorted(seen.items())
    ]


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
    """Everything the templates show, computed once from a report."""
    backends = backends_of(data)
    records: list[Record] = data["records"]
    rows = [
        {
            **r.to_json(),
            "max_abs_text": sci(r.max_abs),
            "atol_text": sci(r.atol),
            "ratio": (r.max_abs / r.atol) if r.max_abs is not None and r.atol else None,
        }
        for r in sorted(records, key=lambda r: (r.ok, r.id))
    ]
    overrides = sorted(
        {
            (r.case, r.tolerance.atol, r.tolerance.rtol, r.tolerance.reason)
            for r in records
            if r.tolerance is not None and r.tolerance.reason
        }
    )
    return {
        "data": data,
        "env": data["environment"],
        "backend_info": _backend_info(data),
        "backends": backends,
        "matrix": [
            {"class_name": cls, "cells": [_cell(by_b.get(b)) for b in backends]}
            for cls, by_b in sorted(data["layers"].items())
        ],
        "marks": STATUS_MARK,
        "html_marks": HTML_MARK,
        "rejected": _rejected_list(records),
        "failing": _failing_list(records),
        "unavailable": sum(r.outcome == "unavailable" for r in records),
        "missing": sum(r.outcome == "missing" for r in records),
        "shared": sum(r.shared_run is not None for r in records),
        "onednn": _onednn_text(data["environment"].get("onednn")),
        "apps": _apps(records),
        "quantization": _quantization(records, backends),
        "training": _training(records, backends),
        "lowerings": _lowerings(records, backends),
        "options": _options(records),
        "overrides": [{"case": o[0], "atol": sci(o[1]), "rtol": sci(o[2]), "reason": o[3]} for o in overrides],
        "outcomes": [(o, data["summary"]["by_outcome"].get(o, 0)) for o in OUTCOMES],
        "rows": rows,
        "chart": error_chart(data, backends),
        "sci": sci,
    }


# --- rendering and writing ------------------------------------------------------------------------


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


def write_reports(data, out_dir, stem: str = "compat") -> dict[str, Path]:
    """Validate `data`, then write compat.json, compat.md and compat.html (`stem`.*) into `out_dir`.

    Every view is rendered before anything is written, and each file is replaced atomically, so a
    failure leaves the previous reports intact.
    """
    compat.validate(data)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = {"json": compat.dumps(data), "md": render_markdown(data), "html": render_html(data)}
    paths = {}
    for ext, text in texts.items():
        paths[ext] = out / f"{stem}.{ext}"
        write_atomic(paths[ext], text)
    return paths


def summary_table(data):
    """A rich Table for the console: outcome counts per backend, then the summary line as caption."""
    from rich.table import Table
    from rich.text import Text

    backends = backends_of(data)
    table = Table(title="tfjs-certify", caption=Text(data["summary"]["line"]), show_footer=True)
    table.add_column("outcome", footer="ok / total")
    counts = Counter((r.outcome, r.backend) for r in data["records"])
    for b in backends:
        recs = [r for r in data["records"] if r.backend == b]
        table.add_column(b, justify="right", footer=f"{sum(r.ok for r in recs)} / {len(recs)}")
    styles = {"pass": "green", "rejected": "yellow", "unavailable": "dim"}
    for outcome in OUTCOMES:
        if any(counts[(outcome, b)] for b in backends):
            table.add_row(outcome, *(str(counts[(outcome, b)]) for b in backends), style=styles.get(outcome, "red"))
    return table
