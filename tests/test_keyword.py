"""`tfjs-certify certify -k` reads an expression exactly as `pytest -k` does: checked against pytest's own
parser on the suite's ids, and on the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from _pytest.mark.expression import Expression

from harness.pipeline.keyword import compile_expression
from harness.pipeline.run import select_variants
from harness.suite import CASES

ROOT = Path(__file__).resolve().parents[1]
IDS = [v.id for c in CASES for v in c.variants()]
EXPRESSIONS = [
    "Conv2D",
    "conv2d",
    "Conv2D and same",
    "not Dense and not Conv2D",
    "Dense or Conv2D",
    "(Dense or Conv2D) and not keras3",
    "not (Dense and tf_keras)",
    "LSTM and not (go_backwards or return_state) and h5",
    "train and (Adam or SGD) and not resume",
    "uint8 or float16",
    "not not Dense",
    "Conv2D[padding",
    "",
]


def _pytest_matches(expr: str, ident: str) -> bool:
    if not expr.strip():
        return True
    return Expression.compile(expr).evaluate(lambda sub: sub.lower() in ident.lower())


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_selects_what_pytest_would(expr):
    match = compile_expression(expr)
    assert [i for i in IDS if match(i)] == [i for i in IDS if _pytest_matches(expr, i)]
    assert [v.id for v in select_variants(CASES, expr)] == [i for i in IDS if _pytest_matches(expr, i)]


def test_the_cases_the_old_matcher_got_wrong():
    assert compile_expression("Conv2D and same")("Conv2D[padding=same,strides=2]-keras3-h5")
    assert not compile_expression("not Dense and not Conv2D")("Conv2D-keras3-h5")


@pytest.mark.parametrize("expr", ["Dense and", "(Dense", "Dense)", "and Dense", "Dense or or Conv2D", "Dense ="])
def test_a_malformed_expression_is_refused_as_pytest_refuses_it(expr):
    with pytest.raises(ValueError, match="-k"):
        compile_expression(expr)
    with pytest.raises(Exception):  # noqa: B017  (pytest's own ParseError)
        Expression.compile(expr)


@pytest.mark.parametrize(("expr", "problem"), [("zz_no_such_case", "no case"), ("Dense and", "expected ident")])
def test_bad_selection_on_the_command_line_is_exit_2_in_one_line(expr, problem, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "certify", "-k", expr, "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and problem in lines[0] and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []
