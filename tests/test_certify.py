"""Certification: every case of the reference suite x flavour x format x backend, in real Chromium.

Ids read like `Conv2D[padding=same,strides=2]-keras3-h5-wasm`. Expected rejections are checked once
per flavour x format, before any browser is involved. Cases live in harness/catalogue.py, the
tolerance policy in harness/tolerance.py.
"""
from __future__ import annotations

import pytest

from harness.case import FORMATS
from harness.catalogue import CASES
from harness.certify import BACKENDS, certify_variant


def _marks(case, backend=None):
    marks = [pytest.mark.certify, getattr(pytest.mark, case.tier)]
    if case.tier != "reject":
        marks.append(pytest.mark.browser)
    if case.slow:
        marks.append(pytest.mark.slow)
    expect = case.expect.for_backend(backend) if backend else case.expect
    if expect.outcome == "xfail":
        marks.append(pytest.mark.xfail(strict=True, reason=expect.reason))
    return marks


PARAMS = [
    pytest.param(case, flavour, fmt, backend, id=f"{case.name}-{flavour}-{fmt}-{backend}",
                 marks=_marks(case, backend))
    for case in CASES if case.tier != "reject"
    for flavour in case.flavours for fmt in FORMATS[flavour] for backend in BACKENDS
] + [
    pytest.param(case, flavour, fmt, None, id=f"{case.name}-{flavour}-{fmt}", marks=_marks(case))
    for case in CASES if case.tier == "reject"
    for flavour in case.flavours for fmt in FORMATS[flavour]
]


def _explain(record) -> str:
    lines = [f"{record['id']}: {record['outcome']} (expected {record['expected']})",
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
def test_certify(case, flavour, fmt, backend, request, records, workdir):
    if backend is None:  # an expected rejection: the converter alone decides, for every backend
        from tests.conftest import selected_backends
        recs = certify_variant(None, case, flavour, fmt, selected_backends(request.config), workdir)
    else:
        session = request.getfixturevalue("browser")
        recs = certify_variant(session, case, flavour, fmt, [backend], workdir)
    records.extend(recs)
    record = recs[0]
    if record["outcome"] == "unavailable":
        pytest.skip(f"not certified: {record['message']}")  # reported as unavailable, never as a pass
    if case.expect.for_backend(backend or "cpu").outcome == "xfail":
        assert record["outcome"] == "pass", _explain(record)  # the strict xfail mark decides
    else:
        assert record["ok"], _explain(record)
