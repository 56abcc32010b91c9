"""Seeded model inputs: batch >= 2, integers in range, floats kept away from activation kinks."""

from __future__ import annotations

from typing import Literal

import numpy as np

from harness.suite.case import InputSpec


def generate(spec: InputSpec, batch: int, rng: np.random.Generator) -> np.ndarray:
    shape = (batch, *spec.shape)
    if spec.kind == "int":
        return rng.integers(spec.low, spec.high, size=shape).astype("int32")
    if spec.kind == "bool":
        return rng.integers(0, 2, size=shape).astype(bool)
    # |x| in [margin, range]: away from 0, where relu, abs-like and threshold kinks sit.
    magnitude = rng.uniform(spec.margin, spec.range, size=shape)
    return (magnitude * rng.choice([-1.0, 1.0], size=shape)).astype("float32")


def specs_from_model(model) -> tuple[InputSpec, ...]:
    """Float inputs (int inputs in [0, 10)) shaped like the model's inputs."""
    specs = []
    for tensor in model.inputs:
        dims = tuple(tensor.shape)[1:]
        if any(d is None for d in dims):
            raise ValueError(
                f"input {getattr(tensor, 'name', '?')} has an unknown dimension {dims}; declare the case's inputs"
            )
        dtype = str(getattr(tensor, "dtype", "float32"))
        kind: Literal["float", "int", "bool"] = "int" if "int" in dtype else "bool" if "bool" in dtype else "float"
        specs.append(InputSpec(shape=tuple(int(d) for d in dims), kind=kind))
    return tuple(specs)


def make_inputs(specs, batch: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [generate(spec, batch, rng) for spec in specs]
