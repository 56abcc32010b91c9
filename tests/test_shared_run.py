"""Runs shared by byte-identical artifacts (harness/pipeline/shared_run.py).

The digest covers every byte and every file name of an artifact. In real Chromium: a suite case's `.keras`
record compares its own Keras reference against the outputs of its `.h5` record's run, loading nothing, and
names that record and the artifact's sha256; another backend, a changed byte, or outputs that fail the record's
own comparison run on their own.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil

import numpy as np
import pytest

from harness.pipeline import inference, reference, shared_run, tolerance
from harness.pipeline.certify import certify_variant
from harness.pipeline.convert import convert_variant
from harness.suite import CASES

CASE = next(c for c in CASES if c.name == "Dense[activation=relu]")


def test_the_digest_covers_every_byte_and_every_name(tmp_path):
    a = tmp_path / "a"
    a.mkdir()
    (a / "model.json").write_text('{"format": "layers-model"}')
    (a / "group1-shard1of1.bin").write_bytes(bytes(range(256)) * 8)
    b = tmp_path / "b"
    shutil.copytree(a, b)
    assert shared_run.artifact_sha256(a) == shared_run.artifact_sha256(b)
    data = bytearray((b / "group1-shard1of1.bin").read_bytes())
    data[1000] ^= 1
    (b / "group1-shard1of1.bin").write_bytes(bytes(data))
    assert shared_run.artifact_sha256(a) != shared_run.artifact_sha256(b)
    shutil.rmtree(b)
    shutil.copytree(a, b)
    (b / "group1-shard1of1.bin").rename(b / "group1-shard1of2.bin")
    assert shared_run.artifact_sha256(a) != shared_run.artifact_sha256(b)
    shutil.rmtree(b)
    shutil.copytree(a, b)
    (b / "companion.js").write_text("// a companion module is part of what TF.js runs")
    assert shared_run.artifact_sha256(a) != shared_run.artifact_sha256(b)


class _Counting:
    """The real browser session, counting the models it loads (a new object: a memory of its own)."""

    def __init__(self, session):
        self._session = session
        self.loads = self.localised = 0

    def load(self, *args, **kwargs):
        self.loads += 1
        return self._session.load(*args, **kwargs)

    def layer_outputs(self, *args, **kwargs):
        self.localised += 1
        return self._session.layer_outputs(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._session, name)


@pytest.mark.browser
def test_a_keras_record_compares_the_h5_runs_outputs_and_names_it(tfjs_browser, tfjs_workdir, tmp_path):
    session = _Counting(tfjs_browser)
    h5, keras = (v for v in CASE.variants() if v.flavour == "keras3" and v.quantization is None)
    assert (h5.format, keras.format) == ("h5", "keras")
    (first,) = certify_variant(session, h5, ["cpu"], tfjs_workdir, tmp_path / "artifacts")
    assert first.outcome == "pass" and first.shared_run is None and session.loads == 1
    (second,) = certify_variant(session, keras, ["cpu"], tfjs_workdir, tmp_path / "artifacts")
    assert second.ok and second.outcome == "pass" and session.loads == 1
    assert second.shared_run is not None and second.shared_run.record == first.id
    prepared = reference.prepare(CASE, "keras3")
    artifact = convert_variant(prepared, "keras", tfjs_workdir).artifact
    assert second.shared_run.artifact_sha256 == shared_run.artifact_sha256(artifact)
    assert second.timings_ms.load is None  # nothing was loaded for it
    assert json.loads(json.dumps(second.to_json()))["shared_run"]["record"] == first.id

    (other,) = certify_variant(session, keras, ["wasm"], tfjs_workdir, tmp_path / "artifacts")
    assert other.outcome == "pass" and other.shared_run is None and session.loads == 2  # another backend runs


@pytest.mark.browser
def test_a_changed_byte_or_a_failing_comparison_runs_on_its_own(tfjs_browser, tfjs_workdir, tmp_path):
    session = _Counting(tfjs_browser)
    prepared = reference.prepare(CASE, "keras3")
    converted = convert_variant(prepared, "h5", tfjs_workdir)
    tol = tolerance.for_backend("cpu", None, CASE.tolerance)
    run = inference.run_backend(session, "cpu", converted, prepared, tol, timings=False, record_id="a")
    assert run.outcome == "pass" and session.loads == 1

    # a weight changed by 1.0: another artifact, its own run, a mismatch
    changed = tmp_path / "changed"
    shutil.copytree(converted.artifact, changed)
    shard = sorted(changed.glob("*.bin"))[0]
    weights = np.frombuffer(shard.read_bytes(), "<f4").copy()
    weights[0] += 1.0
    shard.write_bytes(weights.tobytes())
    run = inference.run_backend(
        session, "cpu", dataclasses.replace(converted, artifact=changed), prepared, tol, timings=False, record_id="b"
    )
    assert run.outcome == "mismatch" and run.shared_run is None and session.loads == 2

    # the same artifact against a reference its outputs do not meet: loaded again, to localise the divergence
    moved = dataclasses.replace(prepared, reference=[r + 1.0 for r in prepared.reference])
    localised = session.localised
    run = inference.run_backend(session, "cpu", converted, moved, tol, timings=False, record_id="c")
    assert run.outcome == "mismatch" and run.shared_run is None and session.loads == 3
    assert session.localised == localised + 1


@pytest.mark.browser
def test_a_keras_train_record_judges_the_h5_runs_training_and_names_it(tfjs_browser, tfjs_workdir, tmp_path):
    session = _Counting(tfjs_browser)
    case = next(c for c in CASES if c.name == "train[Adam]")
    h5, keras = (v for v in case.variants() if v.flavour == "keras3")
    (first,) = certify_variant(session, h5, ["cpu"], tfjs_workdir, tmp_path / "artifacts")
    (second,) = certify_variant(session, keras, ["cpu"], tfjs_workdir, tmp_path / "artifacts")
    assert first.outcome == second.outcome == "pass" and session.loads == 1
    assert first.shared_run is None and second.shared_run is not None and second.shared_run.record == first.id
    assert [m.output for m in second.metrics] == [m.output for m in first.metrics]  # evaluation, losses, weights


def test_a_file_rewritten_at_once_with_its_size_and_mtime_kept_is_hashed_again(tmp_path):
    """A rewrite within the clock's granularity can leave size and mtime as they were: the digest of a file
    written just now is never taken from memory."""
    a = tmp_path / "a"
    a.mkdir()
    shard = a / "group1-shard1of1.bin"
    shard.write_bytes(b"\0" * 64)
    before = shared_run.artifact_sha256(a)
    stat = shard.stat()
    shard.write_bytes(b"\1" * 64)
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as a write in the same clock tick leaves it
    assert shared_run.artifact_sha256(a) != before
