"""Certification: every case of the reference suite x flavour x format x backend, in real Chromium.

Ids read like `Conv2D[padding=same,strides=2]-keras3-h5-wasm`. Expected rejections are checked once
per flavour x format, before any browser is involved. Cases live in harness/catalogue.py, the
tolerance policy in harness/tolerance.py. The verdict is the record's `ok` (harness.certify.is_ok), the
same rule `tfjs-certify certify` and the regression gate use: an expected failure shows as XFAIL only
when it failed exactly as declared.
"""
from __future__ import annotations

import pytest

from harness.catalogue import CASES
from harness.certify import certification_params, certify_variant


def _marks(case, backend=None):
    marks = [pytest.mark.certify, getattr(pytest.mark, case.tier)]
    if case.tier != "reject":
        marks.append(pytest.mark.browser)
    if case.slow:
        marks.append(pytest.mark.slow)
    return marks


PARAMS = [pytest.param(case, flavour, fmt, backend, id=tid, marks=_marks(case, backend))
          for tid, case, flavour, fmt, backend in certification_params(CASES)]


def _explain(record) -> str:
    expected = record["expected"] + (f" ({record['expected_failure']})" if record["expected_failure"] else "")
    lines = [f"{record['id']}: {record['outcome']} (expected {expected})",
             f"  {record['message'] or ''}"]
    for m in record["metrics"]:
        lines.append(f"  {m['output']}: max_abs={m['max_abs']} max_rel={m['max_rel']} "
                     f"cosine={m['cosine']:.6f} mismatches={m['mismatches']}/{m['size']}")
    div = record.get("first_divergence")
    if div:
        lines.append(f"  first diverging layer: {div['layer']} ({div['class_name']}) max_abs={div['max_abs']}")
        for p in div.get("preceding", []):
            lines.append(f"    before it: {p['layer']} ({p['class_name']}) max_abs={p['max_abs']}")
    if record["reason_codes"]:
        lines += [f"  {i['layer']} ({i['class_name']}) {i['argument']}: {i['code']}: {i['reason']}"
                  for i in record["reason_codes"]]
    lines.append("  artifacts: reports/artifacts/ (model, converted dir, inputs, outputs)")
    return "\n".join(lines)


@pytest.mark.parametrize("case,flavour,fmt,backend", PARAMS)
def test_certify(case, flavour, fmt, backend, request, records, workdir, artifacts):
    if backend is None:  # an expected rejection: the converter alone decides, for every backend
        from tests.conftest import selected_backends
        recs = certify_variant(None, case, flavour, fmt, selected_backends(request.config), workdir, artifacts)
    else:
        session = request.getfixturevalue("browser")
        recs = certify_variant(session, case, flavour, fmt, [backend], workdir, artifacts)
    records.extend(recs)
    for record in recs:
        if record["outcome"] == "unavailable":
            pytest.skip(f"not certified: {record['message']}")  # reported as unavailable, never as a pass
        assert record["ok"], _explain(record)
    if recs[0]["expected"] == "xfail":
        pytest.xfail(f"fails as declared ({recs[0]['outcome']}): {recs[0]['expected_reason']}")
