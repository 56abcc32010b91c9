"""compat.json, the report of one run: built from records, rolled up per layer class, validated, read back.

In memory a report is a dict shaped like compat.json whose `records` are typed `Record`s; `to_json` gives
the file's form, which `schema/compat.schema.json` validates, and `load` reads one back. Every view
(harness.results.render) and the regression gate (harness.results.baseline) start from it.
"""

from __future__ import annotations

import datetime
import functools
import json
import math
from collections import Counter
from pathlib import Path

import jsonschema

from harness.results.record import Record, unfinished
from harness.suite.case import Variant
from harness.vocabulary import BACKENDS, OUTCOMES

SCHEMA_VERSION = 4
SCHEMA_PATH = Path(__file__).parent / "schema" / "compat.schema.json"
MISSING = "selected but left no record: the run crashed or stopped before certifying it"


class ReportError(ValueError):
    """compat.json does not have the shape the views and the regression gate rely on."""


# --- building ------------------------------------------------------------------------------------


def with_missing(records: list[Record], expected: list[tuple[Variant, str]]) -> list[Record]:
    """`records`, plus a not-ok `missing` record for every expected (variant, backend) that never came."""
    out, have = list(records), {r.id for r in records}
    for variant, backend in expected:
        if variant.record_id(backend) not in have:
            out.append(unfinished(variant, backend, "missing", MISSING))
            have.add(out[-1].id)
    return out


def omissions(cases) -> list[dict]:
    """Flavours kept out of the suite on purpose, with their reasons (compat.json's `omitted`)."""
    return [{"case": c.name, "flavour": o.flavour, "reason": o.reason} for c in cases for o in c.omitted]


def build_report(
    records: list[Record],
    env: dict,
    *,
    tolerances: dict,
    duration_s: float,
    command: str,
    filters=(),
    expected=None,
    omitted=(),
    shard=None,
    merged_from=None,
) -> dict:
    """A report from a run's records. `expected`: the (variant, backend) pairs the run selected (each one
    without a record becomes a `missing` record); `filters`: what narrowed the selection (none: a full run);
    `shard`: which shard of a split run this is (harness.results.shards.shard_info); `merged_from`: the shard
    reports a merged report joins; `tolerances`: the policy the run's records were held to, per backend."""
    if expected is not None:
        records = with_missing(records, expected)
    backends = [b for b in BACKENDS if any(r.backend == b for r in records)] or list(BACKENDS)
    layers, summary = rollup(records, backends)
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "run": {
            "command": command,
            "duration_s": round(duration_s, 2),
            "partial": bool(filters),
            "filters": list(filters),
            "selected": len(records),
            "shard": dict(shard) if shard is not None else None,
            **({"merged_from": list(merged_from)} if merged_from else {}),
        },
        "environment": env,
        "tolerances": dict(tolerances),
        "records": sorted(records, key=lambda r: r.id),
        "omitted": list(omitted),
        "layers": layers,
        "summary": summary,
    }


# --- the rollup the gate depends on ---------------------------------------------------------------


def fmt_value(value) -> str:
    return repr(value) if not isinstance(value, str) else f"'{value}'"


def rejection_reasons(rec: Record) -> list[tuple[str | None, str]]:
    """(class_name, "argument=value: code") for each reason the converter gave."""
    out = []
    for rc in rec.reason_codes:
        what = f"{rc.argument}={fmt_value(rc.value)}: {rc.code}" if rc.argument else rc.code
        out.append((rc.class_name, what))
    if not out and rec.expected_code:
        out.append((None, rec.expected_code))
    return out


def _blamed_classes(rec: Record) -> list[str]:
    """The layer classes a record tells us something about.

    A rejection or a divergence that names its layer class concerns that class only: a Dense next to
    an unsupported GRU is not itself rejected, and the layers before the first divergence matched.
    Anything else concerns every class the model uses.
    """
    named: set[str] = set()
    if rec.outcome in ("rejected", "converter_error"):
        named = {rc.class_name for rc in rec.reason_codes if rc.class_name}
    elif not rec.ok and rec.first_divergence and rec.first_divergence.class_name:
        named = {rec.first_divergence.class_name}
    classes = list(dict.fromkeys(rec.layer_classes))
    if named & set(classes):
        return [c for c in classes if c in named]
    return classes + sorted(named - set(classes))


def _failure_reason(rec: Record) -> str:
    where = ""
    fd = rec.first_divergence
    if fd:
        where = f" (first diverging layer {fd.layer}" + (f" [{fd.class_name}]" if fd.class_name else "") + ")"
    message = (rec.message or "").strip()
    return f"{rec.id}: {rec.outcome}" + (f": {message}" if message else "") + where


def _status(recs: list[Record]) -> dict:
    if not recs:
        return {"status": "untested", "cases": 0, "ok": 0, "reasons": []}
    reasons = []
    for rec in recs:
        if not rec.ok:
            reasons.append(_failure_reason(rec))
        elif rec.expected == "reject":
            reasons.extend(what for _, what in rejection_reasons(rec))
        elif rec.expected == "xfail" and rec.expected_reason:
            reasons.append(f"xfail: {rec.expected_reason}")
    n_ok = sum(r.ok for r in recs)
    if n_ok < len(recs):
        status = "failing"
    elif any(r.outcome == "pass" for r in recs):
        status = "certified"
    elif any(r.expected == "reject" for r in recs):
        status = "rejected"
    else:  # every record is an expected failure (xfail): known not to work
        status = "failing"
    return {"status": status, "cases": len(recs), "ok": n_ok, "reasons": sorted(set(reasons))}


def _join(words) -> str:
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def rollup(records: list[Record], backends=BACKENDS) -> tuple[dict, dict]:
    """Compute the `layers` and `summary` sections from the records.

    Per layer class and backend: `certified` when every record exercising it is ok and one passed,
    `rejected` when its records are all expected rejections, `failing` when any is not ok (or it only
    has expected failures), `untested` when none ran (a backend that was unavailable tests nothing).
    """
    backends = list(dict.fromkeys(list(backends) + [r.backend for r in records]))
    backends.sort(key=lambda b: BACKENDS.index(b) if b in BACKENDS else len(BACKENDS))
    by_key: dict[tuple[str, str], list] = {}
    classes: set[str] = set()
    for rec in records:
        if rec.quantization is not None or rec.tier == "train":  # layer statuses: float32 inference
            continue
        classes.update(rec.layer_classes)
        if rec.outcome == "unavailable":
            continue
        for cls in _blamed_classes(rec):
            classes.add(cls)
            by_key.setdefault((cls, rec.backend), []).append(rec)
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
    n_ok = sum(r.ok for r in records)
    counts = Counter(r.outcome for r in records)
    summary = {
        "records": len(records),
        "ok": n_ok,
        "not_ok": len(records) - n_ok,
        "by_outcome": {o: counts[o] for o in OUTCOMES if counts[o]},
        "line": line,
    }
    return layers, summary


# --- validating, reading, writing -----------------------------------------------------------------


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


def to_json(data: dict) -> dict:
    """The report in compat.json's form (records as plain dicts)."""
    if not isinstance(data, dict) or not isinstance(data.get("records"), list):
        return data  # not a report: validation says why
    return {**data, "records": [r.to_json() if isinstance(r, Record) else r for r in data["records"]]}


def validate(data) -> None:
    """Raise ReportError (one line: where and what) unless `data` is a well-formed compat report.

    Beyond the schema: record ids are unique and the summary counts agree with the records.
    """
    data = to_json(data)
    validator = jsonschema.Draft202012Validator(schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is not None:
        raise ReportError(f"{_where(error)}: {error.message}")
    bad = _non_finite(data)
    if bad:
        raise ReportError(
            f"{bad}: NaN or infinity has no JSON form; report a non-finite error as a mismatch "
            "with max_abs null and say so in the message"
        )
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


def dumps(data: dict) -> str:
    return json.dumps(to_json(data), indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def read_json(path, what: str = "JSON file"):
    """Parse a JSON file; ReportError names the file and the problem."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ReportError(f"{path}: is a directory, not a {what}") from None
    except json.JSONDecodeError as e:
        raise ReportError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ReportError(f"{path}: cannot read ({e})") from None


def from_json(data: dict) -> dict:
    """A validated compat.json document, its records typed."""
    try:
        validate(data)
    except ReportError as e:
        raise ReportError(str(e)) from None
    return {**data, "records": [Record.from_json(r) for r in data["records"]]}


def load(path) -> dict:
    """Read and validate a compat.json; ReportError names the file and the problem."""
    data = read_json(path, "compat.json")
    try:
        return from_json(data)
    except ReportError as e:
        raise ReportError(f"{path}: {e}") from None
