"""Certification: every case of the reference suite x flavour x format x backend, in real Chromium.

Ids read like `Conv2D[padding=same,strides=2]-keras3-h5-wasm`. Expected rejections are checked once
per flavour x format, before any browser is involved. Cases live in harness/suite/, the tolerance policy
in harness/pipeline/tolerance.py. The verdict is the record's `ok` (harness.pipeline.verdict.is_ok), the
same rule `tfjs-certify certify` and the regression gate use: an expected failure shows as XFAIL only
when it failed exactly as declared.
"""

from __future__ import annotations

import pytest

from harness.pipeline.certify import certify_variant
from harness.pytest_plugin import selected_backends
from harness.suite import CASES
from harness.suite.case import certification_params
from harness.vocabulary import BACKENDS


def _marks(case):
    marks = [pytest.mark.certify, getattr(pytest.mark, case.tier)]
    if case.tier != "reject":
        marks.append(pytest.mark.browser)
    if case.slow:
        marks.append(pytest.mark.slow)
    return marks


PARAMS = [
    pytest.param(variant, backend, id=tid, marks=_marks(variant.case))
    for tid, variant, backend in certification_params(CASES, BACKENDS)
]


def _explain(record) -> str:
    expected = record.expected + (f" ({record.expected_failure})" if record.expected_failure else "")
    lines = [f"{record.id}: {record.outcome} (expected {expected})", f"  {record.message or ''}"]
    for m in record.metrics:
        lines.append(
            f"  {m.output}: max_abs={m.max_abs} max_rel={m.max_rel} cosine={m.cosine} "
            f"mismatches={m.mismatches}/{m.size}"
        )
    div = record.first_divergence
    if div:
        lines.append(f"  first diverging layer: {div.layer} ({div.class_name}) max_abs={div.max_abs}")
        lines += [f"    before it: {p.layer} ({p.class_name}) max_abs={p.max_abs}" for p in div.preceding]
    lines += [f"  {i.layer} ({i.class_name}) {i.argument}: {i.code}: {i.reason}" for i in record.reason_codes]
    lines.append("  artifacts: reports/artifacts/ (model, converted dir, inputs, outputs)")
    return "\n".join(lines)


@pytest.mark.parametrize("variant,backend", PARAMS)
def test_certify(variant, backend, request, tfjs_records, tfjs_workdir, tfjs_artifacts):
    if backend is None:  # an expected rejection: the converter alone decides, for every backend
        backends = selected_backends(request.config)
        recs = certify_variant(None, variant, backends, tfjs_workdir, tfjs_artifacts)
    else:
        timings = bool(request.config.getoption("--timings"))
        browser = request.getfixturevalue("tfjs_browser")
        recs = certify_variant(browser, variant, [backend], tfjs_workdir, tfjs_artifacts, timings=timings)
    tfjs_records.extend(recs)
    for record in recs:
        if record.outcome == "unavailable":
            pytest.skip(f"not certified: {record.message}")  # reported as unavailable, never as a pass
        assert record.ok, _explain(record)
    if recs[0].expected == "xfail":
        pytest.xfail(f"fails as declared ({recs[0].outcome}): {recs[0].expected_reason}")
