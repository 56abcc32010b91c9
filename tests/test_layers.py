"""The harness's layers do not leak: `suite` imports neither `pipeline` nor `results`, `results` never imports
`pipeline`, and the converter depends on nothing but h5py and numpy (and itself). Read from the source, so a
new import anywhere in a module (a function's lazy import included) is caught."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imports(package: str) -> dict[str, set[str]]:
    """{module file: every module it imports, at the top or inside a function}."""
    out = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        out[str(path.relative_to(ROOT))] = names
    return out


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("harness/suite", ("harness.pipeline", "harness.results")),
        ("harness/results", ("harness.pipeline",)),
        ("converter", ("harness", "js_runner", "tensorflow", "keras", "tf_keras")),
        ("js_runner", ("harness", "converter", "tensorflow", "keras")),
    ],
)
def test_a_layer_imports_nothing_above_it(package, forbidden):
    leaks = {
        module: sorted(
            n for n in names if n.split(".")[0] in {f.split(".")[0] for f in forbidden} and n.startswith(forbidden)
        )
        for module, names in _imports(package).items()
    }
    assert {m: n for m, n in leaks.items() if n} == {}


def test_the_converter_needs_only_h5py_and_numpy():
    allowed = {"h5py", "numpy", "converter", "__future__"}
    import sys

    stdlib = set(sys.stdlib_module_names)
    third_party = {
        n.split(".")[0] for names in _imports("converter").values() for n in names if n.split(".")[0] not in stdlib
    }
    assert third_party <= allowed
