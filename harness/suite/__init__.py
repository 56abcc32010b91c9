"""The reference suite, declared as data: `CASES`, one list per tier.

- `layers`: tier 1, every layer class TF.js 4.22 registers, crossed with the options users set;
- `lowered`: constructs TF.js lacks or mis-computes, run as the converter lowers them;
- `companion`: constructs only JavaScript can run, run by the companion module (converted with `--companion`);
- `graphs`: tier 2, topologies (multi-io, shared layers, nested models, masking, encoder-decoder);
- `apps`: tier 3, `keras.applications` architectures with random weights;
- `real`: small models written as users write them, after Keras's examples (Transformers, ViT, attention);
- `rejects`: models the converter must refuse;
- `train`: compiled models TF.js must evaluate and train as Keras does (and training set-ups it must not carry).

How a case is declared: `declare.py`; what a case is: `case.py`. `CASES` is validated on import.
"""

from __future__ import annotations

from harness.suite.apps import APP_CASES
from harness.suite.case import Case
from harness.suite.companion import COMPANION_CASES
from harness.suite.declare import NAME_RE
from harness.suite.graphs import GRAPH_CASES
from harness.suite.layers import LAYER_CASES
from harness.suite.lowered import LOWERED_CASES
from harness.suite.real import REAL_CASES
from harness.suite.rejects import REJECT_CASES
from harness.suite.train import TRAIN_CASES

CASES: tuple[Case, ...] = (
    *LAYER_CASES,
    *LOWERED_CASES,
    *COMPANION_CASES,
    *GRAPH_CASES,
    *APP_CASES,
    *REAL_CASES,
    *REJECT_CASES,
    *TRAIN_CASES,
)


def validate(cases) -> None:
    """Unique names that read as pytest ids; raises ValueError otherwise."""
    seen = set()
    for case in cases:
        if not NAME_RE.match(case.name):
            raise ValueError(f"case name {case.name!r} is not a readable id")
        if case.name in seen:
            raise ValueError(f"duplicate case name {case.name!r}")
        seen.add(case.name)


def by_name(name: str) -> Case:
    """The case called `name`."""
    for case in CASES:
        if case.name == name:
            return case
    raise KeyError(name)


validate(CASES)
