"""harness.results: the compat.json schema, the layer-class rollup and the Markdown/HTML views."""

import copy
import json
import math
import re
import xml.etree.ElementTree as ET

import pytest

from harness.results import compat as report
from harness.results import render
from harness.results.chart import MARKER_R
from harness.results.record import Quantization, Record, SharedRun

TOL = {
    "cpu": {"atol": 1e-4, "rtol": 1e-3, "why": "float32 both sides"},
    "wasm": {"atol": 1e-4, "rtol": 1e-3, "why": "XNNPACK float32"},
    "webgl": {"atol": 5e-3, "rtol": 1e-2, "why": "GPU float32"},
}


def record(
    case,
    backend,
    outcome="pass",
    *,
    classes=None,
    tier="layer",
    expected="pass",
    ok=None,
    max_abs=None,
    message=None,
    reason_codes=(),
    first_divergence=None,
    expected_reason=None,
    expected_code=None,
    timings=None,
    sizes=None,
):
    if ok is None:
        ok = {"pass": outcome == "pass", "reject": outcome == "rejected", "xfail": outcome == "mismatch"}[expected]
    return Record.from_json(
        {
            "id": f"{case}-keras3-h5-{backend}",
            "case": case,
            "tier": tier,
            "layer_classes": list(classes or [case.split("[")[0]]),
            "options": {},
            "flavour": "keras3",
            "format": "h5",
            "backend": backend,
            "expected": expected,
            "expected_reason": expected_reason,
            "expected_code": expected_code,
            "expected_failure": "mismatch" if expected == "xfail" else None,
            "outcome": outcome,
            "ok": ok,
            "message": message,
            "reason_codes": list(reason_codes),
            "metrics": (
                [
                    {
                        "output": "out",
                        "shape": [2, 4],
                        "max_abs": max_abs,
                        "max_rel": None,
                        "mean_abs": None,
                        "cosine": None,
                        "mismatches": 0,
                        "size": 8,
                    }
                ]
                if max_abs is not None
                else []
            ),
            "max_abs": max_abs,
            "tolerance": {"atol": TOL[backend]["atol"], "rtol": TOL[backend]["rtol"], "reason": None},
            "first_divergence": first_divergence,
            "timings_ms": timings or {"convert": 10.0, "load": 50.0, "first_predict": 20.0, "predict_median": 1.5},
            "sizes": sizes or {"model_json_bytes": 900, "weights_bytes": 4096, "shards": 1},
        }
    )


GRU_REASON = {
    "layer": "gru",
    "class_name": "GRU",
    "argument": "reset_after",
    "value": True,
    "code": "unsupported_value",
    "reason": "TF.js implements only reset_after=False",
}
DIVERGENCE = {
    "layer": "layer_norm",
    "class_name": "LayerNormalization",
    "max_abs": 0.02,
    "max_rel": 0.1,
    "preceding": [{"layer": "input_1", "class_name": "InputLayer", "max_abs": 0.0}],
}
APP_TIMINGS = {"convert": 812.0, "load": 1450.0, "first_predict": 640.0, "predict_median": 98.2}
APP_SIZES = {"model_json_bytes": 151_000, "weights_bytes": 14_200_000, "shards": 4}


def records():
    recs = []
    for b in ("cpu", "wasm"):
        recs.append(record("Dense[units=4]", b, max_abs=1e-7 if b == "cpu" else 2e-7))
        recs.append(
            record(
                "GRU[reset_after=True]",
                b,
                "rejected",
                classes=["GRU", "Dense"],
                tier="reject",
                expected="reject",
                expected_reason="no reset_after in TF.js",
                expected_code="unsupported_value",
                reason_codes=[GRU_REASON],
                message="GRU: reset_after=True is not supported",
            )
        )
        recs.append(
            record(
                "MobileNetV2",
                b,
                classes=["Conv2D", "Dense"],
                tier="app",
                max_abs=2e-6 if b == "cpu" else 4e-6,
                timings=APP_TIMINGS,
                sizes=APP_SIZES,
            )
        )
    recs.append(record("LayerNormalization[epsilon=0.001]", "cpu", max_abs=3e-7))
    recs.append(
        record(
            "LayerNormalization[epsilon=0.001]",
            "wasm",
            "mismatch",
            max_abs=0.02,
            message="out: 3/8 values off; max_abs 2.0e-02 > atol 1.0e-04",
            first_divergence=DIVERGENCE,
        )
    )
    recs.append(
        record(
            "Cropping1D[cropping=1]",
            "cpu",
            "mismatch",
            expected="xfail",
            max_abs=0.5,
            expected_reason="TF.js Cropping1D drops the wrong end",
        )
    )
    recs.append(
        record(
            "Embedding[mask_zero=True]",
            "cpu",
            "converter_error",
            message="converter: KeyError 'embeddings_initializer'",
        )
    )
    recs.append(record("Dense[units=4]", "webgl", "unavailable", ok=False, message="webgl: no GPU context"))
    return recs


def compat(recs=None):
    recs = records() if recs is None else recs
    layers, summary = report.rollup(recs, ["cpu", "wasm", "webgl"])
    return {
        "schema_version": report.SCHEMA_VERSION,
        "generated_at": "2026-11-25T14:00:00Z",
        "run": {
            "command": "python -m harness certify",
            "duration_s": 12.5,
            "partial": False,
            "filters": [],
            "selected": len(recs),
        },
        "environment": {
            "python": "3.11.7",
            "platform": "Linux-x86_64",
            "keras": "3.15.1",
            "tf_keras": "2.21.0",
            "tensorflow": "2.21.0",
            "tfjs": "4.22.0",
            "chromium": "156.0.1",
            "playwright": "1.65.2",
            "backends": {
                "cpu": {
                    "available": True,
                    "reason": None,
                    "tfjs_version": "4.22.0",
                    "float_precision": 32,
                    "webgl_renderer": None,
                    "wasm_simd": None,
                    "wasm_threads": None,
                },
                "wasm": {
                    "available": True,
                    "reason": None,
                    "tfjs_version": "4.22.0",
                    "float_precision": 32,
                    "webgl_renderer": None,
                    "wasm_simd": True,
                    "wasm_threads": False,
                },
                "webgl": {
                    "available": False,
                    "reason": "no GPU context",
                    "tfjs_version": None,
                    "float_precision": None,
                    "webgl_renderer": None,
                    "wasm_simd": None,
                    "wasm_threads": None,
                },
            },
        },
        "tolerances": copy.deepcopy(TOL),
        "records": recs,
        "omitted": [{"case": "LeakyReLU[alpha=0.1]", "flavour": "keras3", "reason": "Keras 3 names it negative_slope"}],
        "layers": layers,
        "summary": summary,
    }


# --- schema ----------------------------------------------------------------------------------------


def test_validate_accepts_a_well_formed_report():
    data = compat()
    report.validate(data)
    on_disk = json.loads(report.dumps(data))
    report.validate(on_disk)
    assert report.from_json(on_disk)["records"] == data["records"]  # typed records survive the round trip


def _drop(path):
    def mutate(d):
        *parents, last = path
        for p in parents:
            d = d[p]
        del d[last]

    return mutate


def _set(path, value):
    def mutate(d):
        *parents, last = path
        for p in parents:
            d = d[p]
        d[last] = value

    return mutate


BROKEN = {
    "missing top-level key": (_drop(["summary"]), "summary"),
    "missing record key": (_drop(["records", 0, "outcome"]), "outcome"),
    "bad outcome": (_set(["records", 0, "outcome"], "passed"), "passed"),
    "bad backend": (_set(["records", 1, "backend"], "webgl2"), "webgl2"),
    "bad flavour": (_set(["records", 0, "flavour"], "keras2"), "keras2"),
    "bad format": (_set(["records", 0, "format"], "pb"), "pb"),
    "bad tier": (_set(["records", 0, "tier"], "unit"), "unit"),
    "bad layer status": (_set(["layers", "Dense", "cpu", "status"], "ok"), "ok"),
    "unknown tolerance backend": (_set(["tolerances", "gpu"], TOL["cpu"]), "gpu"),
    "pass without an error": (_set(["records", 0, "max_abs"], None), "max_abs"),
    "reject without a code": (_set(["records", 1, "expected_code"], None), "expected_code"),
    "misspelt record key": (_set(["records", 0, "max_abss"], 1.0), "max_abss"),
    "bad timestamp": (_set(["generated_at"], "yesterday"), "yesterday"),
    "duplicate id": (_set(["records", 1, "id"], "Dense[units=4]-keras3-h5-cpu"), "duplicate"),
    "summary disagrees": (_set(["summary", "ok"], 0), "summary"),
    "NaN error": (_set(["records", 0, "max_abs"], float("nan")), "records[0].max_abs"),
    "infinite metric": (_set(["records", 0, "metrics", 0, "max_abs"], float("inf")), "records[0].metrics[0].max_abs"),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_validate_rejects_a_broken_report(name):
    mutate, mentioned = BROKEN[name]
    data = report.to_json(compat())
    mutate(data)
    with pytest.raises(report.ReportError) as e:
        report.validate(data)
    message = str(e.value)
    assert mentioned in message
    assert "\n" not in message


def test_load_names_the_file(tmp_path):
    bad = tmp_path / "compat.json"
    bad.write_text("{not json")
    with pytest.raises(report.ReportError, match=r"compat\.json: not valid JSON"):
        report.load(bad)
    with pytest.raises(report.ReportError, match=r"missing\.json: no such file"):
        report.load(tmp_path / "missing.json")


# --- rollup ----------------------------------------------------------------------------------------


def test_rollup_statuses():
    layers, _ = report.rollup(records(), ["cpu", "wasm", "webgl"])
    status = {cls: {b: cell["status"] for b, cell in by_b.items()} for cls, by_b in layers.items()}
    # Dense passes alone and inside MobileNetV2; it is a bystander of the GRU rejection.
    assert status["Dense"] == {"cpu": "certified", "wasm": "certified", "webgl": "untested"}
    assert layers["Dense"]["cpu"]["cases"] == 2 and layers["Dense"]["cpu"]["ok"] == 2
    assert status["GRU"] == {"cpu": "rejected", "wasm": "rejected", "webgl": "untested"}
    assert layers["GRU"]["cpu"]["reasons"] == ["reset_after=True: unsupported_value"]
    assert status["Conv2D"] == {"cpu": "certified", "wasm": "certified", "webgl": "untested"}
    assert status["LayerNormalization"] == {"cpu": "certified", "wasm": "failing", "webgl": "untested"}
    assert "layer_norm" in layers["LayerNormalization"]["wasm"]["reasons"][0]
    assert status["Embedding"]["cpu"] == "failing"
    # Only an expected failure (xfail): known not to work, so not certified.
    assert status["Cropping1D"]["cpu"] == "failing"
    assert layers["Cropping1D"]["cpu"]["ok"] == 1


def test_rollup_certified_class_with_a_rejected_option_stays_certified():
    recs = [record("GRU[units=3]", "cpu", max_abs=1e-7)] + [r for r in records() if r.case.startswith("GRU")]
    layers, _ = report.rollup(recs, ["cpu"])
    assert layers["GRU"]["cpu"]["status"] == "certified"
    assert layers["GRU"]["cpu"]["reasons"] == ["reset_after=True: unsupported_value"]


def test_rollup_a_failure_without_a_culprit_blames_every_class():
    recs = [record("Block", "cpu", "load_error", classes=["Conv2D", "ReLU"], tier="graph", message="boom")]
    layers, _ = report.rollup(recs, ["cpu"])
    assert layers["Conv2D"]["cpu"]["status"] == layers["ReLU"]["cpu"]["status"] == "failing"


def test_summary():
    recs = records()
    _, summary = report.rollup(recs, ["cpu", "wasm", "webgl"])
    assert summary["records"] == len(recs) == 11
    assert summary["ok"] == 8 and summary["not_ok"] == 3
    assert summary["by_outcome"] == {"pass": 5, "mismatch": 2, "rejected": 2, "converter_error": 1, "unavailable": 1}
    assert summary["line"] == "Layer classes: 2 certified on cpu and wasm; 1 rejected; 3 failing (webgl: nothing ran)"


def test_summary_line_all_backends():
    recs = [record("Dense[units=4]", b, max_abs=1e-7) for b in ("cpu", "wasm", "webgl")]
    assert (
        report.rollup(recs, ["cpu", "wasm", "webgl"])[1]["line"]
        == "Layer classes: 1 certified on cpu, wasm and webgl; 0 rejected; 0 failing"
    )


# --- views -----------------------------------------------------------------------------------------


def test_markdown(tmp_path):
    paths = render.write_reports(compat(), tmp_path)
    md = paths["md"].read_text(encoding="utf-8")
    assert "**Layer classes: 2 certified on cpu and wasm; 1 rejected; 3 failing (webgl: nothing ran)**" in md
    assert "| Layer class | cpu | wasm | webgl |" in md
    assert "| Dense | ✅ 2/2 | ✅ 2/2 | — |" in md
    assert "| GRU | ⛔ 1/1 | ⛔ 1/1 | — |" in md
    assert "| LayerNormalization | ✅ 1/1 | ❌ 0/1 | — |" in md
    # rejected list: class, triggering argument, code
    assert "| GRU | `reset_after=True` | `unsupported_value` | TF.js implements only reset_after=False |" in md
    # failing list: record and first diverging layer
    failing = md.split("## Failing")[1].split("## Architectures")[0]
    assert "LayerNormalization[epsilon=0.001]-keras3-h5-wasm" in failing
    assert "layer_norm (LayerNormalization)" in failing
    assert "Embedding[mask_zero=True]-keras3-h5-cpu" in failing
    assert "Dense[units=4]-keras3-h5-cpu" not in failing
    assert "Dense[units=4]-keras3-h5-webgl" not in failing  # its backend was unavailable
    assert "1 record(s) did not run: their backend was unavailable" in failing
    # architectures: timings and sizes
    assert "| MobileNetV2-keras3-h5-cpu | ✅ pass | 2.0e-06 | 812 | 1450 | 640 | 98 | 147.5 KiB | 13.5 MiB | 4 |" in md
    assert "| converter_error | 1 |" in md and "| **total** | **11** |" in md
    assert "| webgl | no | — | no GPU context |" in md


def test_a_shared_run_is_said_in_both_views():
    recs = records()
    assert "byte-identical" not in render.render_markdown(compat(recs))
    app = next(r for r in recs if r.case == "MobileNetV2" and r.backend == "wasm")
    app.shared_run = SharedRun("MobileNetV2-keras3-h5-wasm", "0" * 64)
    md = render.render_markdown(compat(recs))
    assert "1 record(s) compare the outputs of an earlier record's TF.js run" in md and "byte-identical" in md
    assert "| MobileNetV2-keras3-h5-wasm | ✅ pass | 4.0e-06 | 812 | shared run | shared run |" in md
    assert 'id="shared-line"' in render.render_html(compat(recs))


def test_markdown_escapes_pipes_in_messages(tmp_path):
    recs = records()
    recs[-2].message = "a | b\nsecond line"
    md = render.render_markdown(compat(recs))
    assert "a \\| b second line" in md


def test_write_reports_is_all_or_nothing(tmp_path):
    render.write_reports(compat(), tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert sorted(before) == ["compat.html", "compat.json", "compat.md"]
    broken = compat()
    broken["records"][0].outcome = "passed"
    with pytest.raises(report.ReportError):
        render.write_reports(broken, tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert json.loads(before["compat.json"]) == report.to_json(compat())


def test_summary_table():
    from rich.console import Console

    console = Console(width=120, record=True, file=open("/dev/null", "w"))
    console.print(render.summary_table(compat()))
    text = console.export_text()
    assert "Layer classes: 2 certified" in text
    assert "mismatch" in text and "converter_error" in text
    assert "5 / 6" in text  # cpu: 5 ok of 6 records


# --- the HTML page, in real headless Chromium ------------------------------------------------------


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    from js_runner.browser import CHROMIUM_FLAGS, find_chromium

    out = tmp_path_factory.mktemp("html")
    path = render.write_reports(compat(), out)["html"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=find_chromium(), args=CHROMIUM_FLAGS, headless=True)
        pg = browser.new_page(viewport={"width": 1280, "height": 900})
        pg.requests, pg.errors = [], []
        pg.on("request", lambda r: pg.requests.append(r.url))
        pg.on("pageerror", lambda e: pg.errors.append(str(e)))
        pg.on("console", lambda m: m.type == "error" and pg.errors.append(m.text))
        pg.goto(path.as_uri())
        yield pg
        browser.close()


def _visible_ids(pg):
    return [t.strip() for t in pg.locator("#cases tbody tr:visible td:first-child").all_inner_texts()]


def _reset(pg):
    pg.fill("#filter", "")
    pg.select_option("#outcome-filter", "")


@pytest.mark.browser
def test_html_is_self_contained_and_shows_every_record(page):
    assert all(url.startswith("file://") for url in page.requests), page.requests
    assert page.errors == []
    assert page.locator("#summary-line").inner_text() == compat()["summary"]["line"]
    assert sorted(_visible_ids(page)) == sorted(r.id for r in records())
    assert page.locator("#matrix tbody tr").count() == len(compat()["layers"])
    assert page.locator("#matrix tbody tr", has_text="GRU").locator("td.s-rejected").count() == 2


@pytest.mark.browser
def test_html_chart_has_one_point_per_error(page):
    chart = page.locator("svg#error-chart")
    assert chart.is_visible()
    with_error = sorted(r.id for r in records() if r.max_abs is not None)
    points = chart.locator("circle.pt")
    assert sorted(points.evaluate_all("ps => ps.map(p => p.dataset.id)")) == with_error
    not_ok = sorted(r.id for r in records() if r.max_abs is not None and not r.ok)
    assert sorted(chart.locator("circle.pt.bad").evaluate_all("ps => ps.map(p => p.dataset.id)")) == not_ok
    assert chart.locator("line.atol").count() == 3  # one tolerance marker per backend lane
    # a larger error sits further right (log axis)
    x = {
        i: float(points.nth(k).get_attribute("cx"))
        for k, i in enumerate(points.evaluate_all("ps => ps.map(p => p.dataset.id)"))
    }
    assert x["LayerNormalization[epsilon=0.001]-keras3-h5-wasm"] > x["Dense[units=4]-keras3-h5-wasm"]


@pytest.mark.browser
def test_html_text_filter(page):
    _reset(page)
    page.fill("#filter", "gru")
    assert sorted(_visible_ids(page)) == ["GRU[reset_after=True]-keras3-h5-cpu", "GRU[reset_after=True]-keras3-h5-wasm"]
    page.fill("#filter", "wasm layernormalization")
    assert _visible_ids(page) == ["LayerNormalization[epsilon=0.001]-keras3-h5-wasm"]
    assert page.locator("#shown").inner_text() == "1 of 11 shown"
    _reset(page)
    assert len(_visible_ids(page)) == 11


@pytest.mark.browser
def test_html_outcome_select(page):
    _reset(page)
    page.select_option("#outcome-filter", "mismatch")
    assert sorted(_visible_ids(page)) == [
        "Cropping1D[cropping=1]-keras3-h5-cpu",
        "LayerNormalization[epsilon=0.001]-keras3-h5-wasm",
    ]
    page.select_option("#outcome-filter", "!ok")
    assert sorted(_visible_ids(page)) == sorted(r.id for r in records() if not r.ok)
    page.fill("#filter", "embedding")
    assert _visible_ids(page) == ["Embedding[mask_zero=True]-keras3-h5-cpu"]
    _reset(page)


@pytest.mark.browser
def test_html_click_header_sorts(page):
    _reset(page)
    header = page.locator("#cases thead th", has_text="max_abs").first
    header.click()
    assert header.get_attribute("aria-sort") == "ascending"
    by_error = sorted((r for r in records() if r.max_abs is not None), key=lambda r: r.max_abs)
    ids = _visible_ids(page)
    assert ids[: len(by_error)] == [r.id for r in by_error]  # records without an error go last
    header.click()
    assert header.get_attribute("aria-sort") == "descending"
    assert _visible_ids(page)[: len(by_error)] == [r.id for r in reversed(by_error)]
    page.locator("#cases thead th", has_text="Record").click()
    assert _visible_ids(page) == sorted(ids, key=str.lower)


def test_options_exercised_per_layer_class():
    """The report says which options each layer's single-layer cases set, and how each ended."""
    recs = [record("Conv2D[padding=same]", b, max_abs=1e-7) for b in ("cpu", "wasm")]
    recs += [
        record(
            "Conv1D[padding=causal]",
            b,
            "rejected",
            tier="reject",
            expected="reject",
            expected_code="unsupported_value",
            expected_reason="no causal",
        )
        for b in ("cpu", "wasm")
    ]
    recs += [record("Dense[units=3]", "cpu", "mismatch", max_abs=0.5)]
    recs[0].options = recs[1].options = {"padding": "same"}
    recs[2].options = recs[3].options = {"padding": "causal"}
    recs[4].options = {"units": 3}
    rows = {r["class_name"]: r["options"] for r in render._options(recs)}
    assert rows == {
        "Conv2D": [{"text": "padding='same'", "status": "certified"}],
        "Conv1D": [{"text": "padding='causal'", "status": "rejected"}],
        "Dense": [{"text": "units=3", "status": "failing"}],
    }


# --- the quantization chart: every form and backend tells apart ------------------------------------


def quantized_records():
    """An app in every form on every backend, the backends' errors all but equal (as TF.js gives them), and
    float16 and uint16 the same size: the points that used to sit on top of each other."""
    recs = []
    forms = {"float32": (1.0, 2e-6), "float16": (0.5, 3e-4), "uint16": (0.5, 2e-5), "uint8": (0.25, 4e-3)}
    for form, (ratio, err) in forms.items():
        for i, b in enumerate(("cpu", "wasm", "webgl")):
            r = record("TinyApp", b, classes=["Conv2D"], tier="app", max_abs=err * (1 + 1e-3 * i))
            r.id = r.id if form == "float32" else r.id.replace(f"-{b}", f"-{form}-{b}")
            if form != "float32":
                q = Quantization(form, int(4096 * ratio), 4096, ratio, 0.5, "dense/kernel")
                q.float32_max_abs = q.keras_max_abs = r.max_abs  # the chart plots the cost of quantization
                r.quantization = q
            recs.append(r)
    return recs


def _quant_svg(tmp_path) -> ET.Element:
    html = render.write_reports(compat(records() + quantized_records()), tmp_path)["html"].read_text()
    charts = re.findall(r'<svg class="quant-chart".*?</svg>', html, re.S)
    assert len(charts) == 1
    return ET.fromstring(charts[0])


def test_quantization_chart_labels_each_form_once_and_separates_every_point(tmp_path):
    svg = _quant_svg(tmp_path)
    ns = "{http://www.w3.org/2000/svg}" if svg.tag.startswith("{") else ""
    labels = [t.text for t in svg.iter(f"{ns}text") if t.get("class") == "qform"]
    assert labels == ["uint8", "float16", "uint16", "float32"]  # once each, smallest weights first
    points = [p for p in svg.iter(f"{ns}path") if p.get("class") == "qpt"]
    assert sorted((p.get("data-form"), p.get("data-backend")) for p in points) == sorted(
        (f, b) for f in ("float32", "float16", "uint16", "uint8") for b in ("cpu", "wasm", "webgl")
    )
    xy = [(float(p.get("data-x")), float(p.get("data-y"))) for p in points]
    closest = min(math.dist(a, b) for i, a in enumerate(xy) for b in xy[i + 1 :])
    assert closest > 2 * MARKER_R  # no marker covers another, though the backends' errors are equal
    shapes = {p.get("data-backend"): p.get("data-shape") for p in points}
    assert len(set(shapes.values())) == 3  # each backend its own shape (and colour)
    assert all(shapes[p.get("data-backend")] == p.get("data-shape") for p in points)
    by_form = {f: {float(p.get("data-x")) for p in points if p.get("data-form") == f} for f in ("float16", "uint16")}
    assert max(by_form["float16"]) < min(by_form["uint16"])  # same size, separate columns
