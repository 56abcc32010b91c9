"""The lowering stage: rewrite Keras constructs TF.js 4.22 lacks or computes wrongly into layers it runs as
Keras does.

- `converter/lowering_table.py`: every rewrite, and why it is exact (the data);
- `engine.py`: what a rule sees (`Site`), how it builds a replacement chain, the registry (`rule`), and how
  the rules are applied to a container's layers;
- one module per family of rules, one small function per rule: `pooling.py`, `layers.py` (layers TF.js lacks,
  axes it mis-reads, preprocessing), `convolution.py`, `activations.py`, `normalization.py` (Normalization,
  Group-, Unit- and RMSNormalization), `preprocessing.py` (layers that are the identity at inference:
  augmentation, spatial dropout), `applications.py` (keras.applications' own LayerScale and CustomScaleLayer),
  `ops.py` (tf_keras's TFOpLambda and SlicingOpLambda), `attention.py` (MultiHeadAttention, Attention,
  AdditiveAttention, EinsumDense).

A rule replaces one layer by a chain (or a small branch): the layer holding the user's weights keeps the
user's name, the others are named `<name>__<role>`, and every reference to the user's layer is redirected to
the layer now holding its output. A rule that needs a shape or rank the file does not record refuses the
model with `not_lowerable` instead of guessing.
"""

from converter.lowering import (  # noqa: F401  (they register rules)
    activations,
    applications,
    attention,
    convolution,
    layers,
    normalization,
    ops,
    pooling,
    preprocessing,
)
from converter.lowering.engine import (
    RULES,
    Applied,
    Context,
    Derived,
    Refuse,
    Written,
    f32,
    lower_functional,
    lower_sequential,
    metadata,
    out_rank,
    rule,
    written,
)
from converter.lowering_table import LOWERINGS

__all__ = [
    "LOWERINGS",
    "RULES",
    "Applied",
    "Context",
    "Derived",
    "Refuse",
    "Written",
    "f32",
    "lower_functional",
    "lower_sequential",
    "metadata",
    "out_rank",
    "rule",
    "written",
]
