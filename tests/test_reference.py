"""The Keras side's cache key: one case's declaration and builder, not the whole suite's source."""

from __future__ import annotations

import dataclasses

from harness.pipeline import reference
from harness.suite import CASES, builders, by_name
from harness.suite.declare import layer


def test_the_key_is_stable_and_differs_per_case_and_flavour():
    case = by_name("Conv2D[padding=same]")
    assert reference.case_key(case, "keras3") == reference.case_key(case, "keras3")
    assert reference.case_key(case, "keras3") != reference.case_key(case, "tf_keras")
    keys = {reference.case_key(c, "keras3") for c in CASES}
    assert len(keys) == len(CASES)


def test_changing_one_case_changes_its_key_only():
    before = {c.name: reference.case_key(c, "keras3") for c in CASES}
    changed = layer("Dense", {}, (7,))  # Dense on another input shape: same name, other declaration
    assert changed.name == "Dense"
    assert reference.case_key(changed, "keras3") != before["Dense"]
    other = dataclasses.replace(by_name("Dense"), batch=3)
    assert reference.case_key(other, "keras3") != before["Dense"]
    assert {c.name: reference.case_key(c, "keras3") for c in CASES} == before


def test_the_key_follows_the_builder_helpers_it_calls(monkeypatch):
    """A Chain calls nontrivial_weights: its source is part of every Chain case's key."""
    source = reference.builder_source(by_name("Dense").build)
    assert "def nontrivial_weights" in source and "class Spec" in source and "WEIGHT_SEED=" in source
    graph = reference.builder_source(by_name("multi_io").build)
    assert "def multi_io" in graph and "def nontrivial_weights" in graph and "class Spec" not in graph
    before = reference.case_key(by_name("multi_io"), "keras3")
    monkeypatch.setattr(builders, "WEIGHT_SEED", builders.WEIGHT_SEED + 1)
    assert reference.case_key(by_name("multi_io"), "keras3") != before


def test_a_closure_is_part_of_the_key():
    assert reference.builder_source(by_name("embedding_mask_lstm").build) != reference.builder_source(
        by_name("embedding_mask_gru").build
    )


def test_keras_applications_own_layers_are_known_when_a_file_is_loaded(tmp_path):
    """Keras cannot load its own ConvNeXt or InceptionResNetV2 .h5 without being given LayerScale and
    CustomScaleLayer: the harness names them wherever it loads a model file (plans, user files)."""
    import keras
    import pytest
    import tf_keras

    for k, name in ((keras, "k3.h5"), (tf_keras, "tfk.h5")):
        path = tmp_path / name
        builders.application_layers(k).save(path)
        with pytest.raises(ValueError, match="Unknown layer"):
            k.models.load_model(str(path), compile=False)
        assert [type(x).__name__ for x in reference.load_model(k, path).layers][-2:] == [
            "LayerScale",
            "CustomScaleLayer",
        ]


def test_converter_hash_follows_the_lowering_rules(monkeypatch, tmp_path):
    """A cached conversion is kept until the converter's source changes, its lowering/ package included."""
    import converter

    root = tmp_path / "converter"
    (root / "lowering").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "lowering" / "rules.py").write_text("A = 1\n")
    monkeypatch.setattr(converter, "__file__", str(root / "__init__.py"))
    reference.converter_hash.cache_clear()
    before = reference.converter_hash()
    (root / "lowering" / "rules.py").write_text("A = 2\n")
    reference.converter_hash.cache_clear()
    assert reference.converter_hash() != before
    reference.converter_hash.cache_clear()
