"""The typed record, the vocabulary and the schemas agree; the committed baseline matches the suite."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from harness import vocabulary
from harness.results import baseline, compat, record
from harness.suite import CASES
from harness.suite.sample import suite_records

ROOT = Path(__file__).resolve().parents[1]
DEFS = compat.schema()["$defs"]


def _schema_fields(definition: dict) -> tuple[set, set]:
    return set(definition["properties"]), set(definition.get("required", []))


def _required(cls) -> set:
    return {
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }


@pytest.mark.parametrize(
    "cls, definition",
    [
        (record.Record, DEFS["record"]),
        (record.Metric, DEFS["metric"]),
        (record.Step, DEFS["divergence_step"]),
        (record.ReasonCode, DEFS["reason_code"]),
        (record.AppliedTolerance, DEFS["record"]["properties"]["tolerance"]["oneOf"][1]),
        (record.Timings, DEFS["record"]["properties"]["timings_ms"]),
        (record.Sizes, DEFS["record"]["properties"]["sizes"]),
        (record.Divergence, DEFS["record"]["properties"]["first_divergence"]["oneOf"][1]),
        (record.Quantization, DEFS["record"]["properties"]["quantization"]["oneOf"][1]),
    ],
    ids=lambda x: getattr(x, "__name__", ""),
)
def test_the_schema_describes_the_dataclass(cls, definition):
    properties, required = _schema_fields(definition)
    assert properties == {f.name for f in dataclasses.fields(cls)}
    assert _required(cls) <= required


def test_every_record_field_is_required_in_compat_json():
    """compat.json always writes every field, so the schema can insist on all of them."""
    properties, required = _schema_fields(DEFS["record"])
    assert required == properties


def test_the_vocabulary_is_the_schemas():
    props = DEFS["record"]["properties"]
    assert tuple(DEFS["outcome"]["enum"]) == vocabulary.OUTCOMES
    assert tuple(DEFS["backend"]["enum"]) == vocabulary.BACKENDS
    assert tuple(DEFS["stage"]["enum"]) == vocabulary.STAGES
    assert props["flavour"]["enum"] == [*vocabulary.FLAVOURS, vocabulary.UNKNOWN_FLAVOUR]
    assert set(props["format"]["enum"]) == {f for fs in vocabulary.FORMATS.values() for f in fs}
    assert tuple(props["tier"]["enum"]) == vocabulary.TIERS
    assert tuple(props["expected"]["enum"]) == vocabulary.EXPECTATIONS
    assert [v for v in props["expected_failure"]["enum"] if v] == list(vocabulary.FAILURES)
    assert tuple(props["quantization"]["oneOf"][1]["properties"]["dtype"]["enum"]) == vocabulary.QUANTIZATIONS
    assert tuple(DEFS["layer_status"]["properties"]["status"]["enum"]) == vocabulary.STATUSES
    with open(baseline.SCHEMA_PATH) as f:
        base_schema = json.load(f)
    layer_status = base_schema["properties"]["layers"]["additionalProperties"]
    assert tuple(layer_status["propertyNames"]["enum"]) == vocabulary.BACKENDS
    assert (
        tuple(base_schema["properties"]["records"]["additionalProperties"]["prefixItems"][0]["enum"])
        == vocabulary.OUTCOMES
    )


def test_a_record_survives_json():
    r = record.Record.from_json(
        {
            "id": "x-keras3-h5-cpu",
            "case": "x",
            "tier": "layer",
            "layer_classes": ["Dense"],
            "options": {},
            "flavour": "keras3",
            "format": "h5",
            "backend": "cpu",
            "expected": "pass",
            "expected_reason": None,
            "expected_code": None,
            "expected_failure": None,
            "outcome": "mismatch",
            "ok": False,
            "message": "m",
            "reason_codes": [{"code": "c", "reason": "r"}],
            "metrics": [{"output": "o", "shape": [2], "max_abs": 0.5}],
            "max_abs": 0.5,
            "tolerance": {"atol": 1e-4, "rtol": 1e-3, "reason": None},
            "first_divergence": {
                "layer": "d",
                "class_name": "Dense",
                "max_abs": 0.5,
                "preceding": [{"layer": "in", "class_name": None, "max_abs": 0.0}],
            },
            "timings_ms": {"load": 1.0},
            "sizes": {"shards": 1},
        }
    )
    assert isinstance(r.first_divergence.preceding[0], record.Step) and r.metrics[0].output == "o"
    assert record.Record.from_json(json.loads(json.dumps(r.to_json()))) == r


def test_the_committed_baseline_has_one_record_per_suite_variant_and_backend():
    """A renamed, added or dropped case shows here, without a full run: update the baseline with it."""
    base = baseline.Baseline.load(ROOT / "reports" / "baseline.json")
    suite = {v.record_id(b) for v, b in suite_records(CASES)}
    assert sorted(suite - set(base.records)) == [], "cases the baseline lacks (run the suite, --update-baseline)"
    assert sorted(set(base.records) - suite) == [], "baseline records no case produces any more"


def test_the_committed_baseline_is_small_and_readable():
    path = ROOT / "reports" / "baseline.json"
    assert path.stat().st_size < 400_000  # ~70 bytes a record (4,440 records): a diff a reviewer can read
    text = path.read_text()
    assert text == baseline.Baseline.load(path).dumps()  # one sorted line per record, as written
