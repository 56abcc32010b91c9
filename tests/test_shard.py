"""Sharding (harness/pipeline/shard.py) and merging shard reports (harness/results/merge.py).

The split and the merge's refusals are checked on small reports built from suite variants. In real
Chromium, a suite selection is split three ways (`tfjs-certify certify --shard 1/3` and `3/3`, `pytest --shard
2/3`) and merged, and a directory of user models is split in two: every merge gives the unsplit run's records
and verdicts.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.pipeline import tolerance
from harness.pipeline.environment import environment
from harness.pipeline.run import select_variants as select_variants_by_keyword
from harness.pipeline.shard import (
    Shard,
    select_files,
    select_variants,
    shard_info,
    share_group,
    split,
    unit_of,
    variant_costs,
)
from harness.results import compat, merge, render
from harness.results.compat import ReportError
from harness.results.record import unfinished
from harness.suite import CASES

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = [v for c in CASES for v in c.variants()]


def test_shard_parse():
    assert Shard.parse("2/3") == Shard(2, 3) and str(Shard(2, 3)) == "2/3"
    for bad in ("0/3", "4/3", "1/0", "x", "1/2/3", ""):
        with pytest.raises(ValueError, match="--shard"):
            Shard.parse(bad)


def test_split_is_a_deterministic_partition_balanced_longest_first():
    costs = {"a": 5.0, "b": 4.0, "c": 3.0, "d": 3.0, "e": 3.0}
    shards = split(costs, 2)
    assert shards == split(dict(reversed(costs.items())), 2)  # the order given does not matter
    assert sorted(u for s in shards for u in s) == sorted(costs)
    assert sorted(sum(costs[u] for u in s) for s in shards) == [8.0, 10.0]


def test_the_suite_splits_into_disjoint_shards_covering_it_all():
    measured = {v.id: float(len(v.id) % 7 + 1) for v in VARIANTS}
    parts = [select_variants(VARIANTS, Shard(i, 3), measured) for i in (1, 2, 3)]
    ids = [v.id for part in parts for v in part]
    assert len(ids) == len(set(ids)) == len(VARIANTS)
    loads = [sum(measured[v.id] for v in part) for part in parts]
    groups: dict[str, float] = {}
    for v in VARIANTS:
        groups[share_group(v)] = groups.get(share_group(v), 0.0) + measured[v.id]
    assert max(loads) - min(loads) <= max(groups.values())  # within one unit of each other


def test_the_variants_that_share_runs_stay_in_one_shard():
    """A case's .h5 and .keras in Keras 3 convert to one artifact (harness/pipeline/shared_run.py): split apart,
    both shards would run it."""
    measured = {v.id: 1.0 for v in VARIANTS}
    parts = [select_variants(VARIANTS, Shard(i, 3), measured) for i in (1, 2, 3)]
    where = {v.id: i for i, part in enumerate(parts) for v in part}
    pairs = 0
    for case in CASES:
        float32 = [v for v in case.variants() if v.flavour == "keras3" and v.quantization is None]
        if len(float32) > 1:
            pairs += 1
            assert len({where[v.id] for v in float32}) == 1, [v.id for v in float32]
    assert pairs > 300
    quantized = [v for v in VARIANTS if v.quantization is not None]
    assert len({where[v.id] for v in quantized}) == 3  # a quantized form is a unit of its own


def test_an_unmeasured_variant_costs_its_tiers_median():
    app = next(v for v in VARIANTS if v.case.tier == "app")
    layer = next(v for v in VARIANTS if v.case.tier == "layer")
    others = [v for v in VARIANTS if v.case.tier == "app" and v is not app][:3]
    costs = variant_costs([app, layer, *others], {o.id: 10.0 * (i + 1) for i, o in enumerate(others)})
    assert costs[app.id] == 20.0 and costs[layer.id] == 1.0


def test_files_split_by_size(tmp_path):
    paths = []
    for i, size in enumerate([900, 100, 500, 500]):
        paths.append(tmp_path / f"m{i}.h5")
        paths[-1].write_bytes(b"x" * size)
    one, two = select_files(paths, Shard(1, 2)), select_files(paths, Shard(2, 2))
    assert sorted(one + two) == sorted(paths) and not set(one) & set(two)
    assert {p.name for p in one} == {"m0.h5", "m1.h5"}


# --- merge: reports built from suite variants (records of outcome `error`, which is all merge looks at) --


def _shard_reports(tmp_path, variants, n, *, backends=("cpu",), skip=()):
    units = [v.id for v in variants]
    paths = []
    for i in range(1, n + 1):
        shard = Shard(i, n)
        mine = select_variants(variants, shard, {v.id: 1.0 for v in variants})
        records = [unfinished(v, b, "error", "x") for v in mine for b in backends]
        data = compat.build_report(
            records,
            environment(None),
            tolerances=tolerance.policy_json(),
            duration_s=1.0,
            command="test",
            filters=[f"--shard {shard}"],
            shard=shard_info(shard, units, len(variants) * len(backends)),
        )
        if i not in skip:
            render.write_reports(data, tmp_path / f"s{i}")
            paths.append(tmp_path / f"s{i}" / "compat.json")
    return paths


def test_merged_shards_hold_every_record_once_and_read_as_one_run(tmp_path):
    variants = VARIANTS[:9]
    data = merge.merge(_shard_reports(tmp_path, variants, 3), command="merge")
    assert sorted(r.id for r in data["records"]) == sorted(v.record_id("cpu") for v in variants)
    assert data["run"]["partial"] is False and data["run"]["shard"] is None
    assert len(data["run"]["merged_from"]) == 3
    assert data["summary"]["records"] == 9  # the rollup is recomputed
    render.write_reports(data, tmp_path / "merged")  # and it validates
    assert {unit_of(r) for r in data["records"]} == {v.id for v in variants}


def test_merge_refuses_a_missing_shard(tmp_path):
    with pytest.raises(ReportError, match=r"shard\(s\) 2/3 missing"):
        merge.merge(_shard_reports(tmp_path, VARIANTS[:9], 3, skip=(2,)), command="merge")


def test_merge_refuses_a_shard_given_twice(tmp_path):
    paths = _shard_reports(tmp_path, VARIANTS[:9], 3)
    with pytest.raises(ReportError, match="both shard 1/3"):
        merge.merge([paths[0], paths[0], paths[2]], command="merge")


def test_merge_refuses_shards_of_different_splits(tmp_path):
    a = _shard_reports(tmp_path / "a", VARIANTS[:9], 2)
    b = _shard_reports(tmp_path / "b", VARIANTS[:10], 2)
    with pytest.raises(ReportError, match="different splits"):
        merge.merge([a[0], b[1]], command="merge")


def test_merge_refuses_a_report_that_is_no_shard(tmp_path):
    records = [unfinished(VARIANTS[0], "cpu", "error", "x")]
    render.write_reports(
        compat.build_report(records, environment(None), tolerances=tolerance.policy_json(), duration_s=1, command="t"),
        tmp_path,
    )
    with pytest.raises(ReportError, match="not a shard"):
        merge.merge([tmp_path / "compat.json"], command="merge")


def test_merge_refuses_a_record_in_two_shards(tmp_path):
    paths = _shard_reports(tmp_path, VARIANTS[:4], 2)
    first, second = compat.load(paths[0]), compat.load(paths[1])
    run = second["run"]
    rebuilt = compat.build_report(
        second["records"] + first["records"][:1],
        second["environment"],
        tolerances=second["tolerances"],
        duration_s=1,
        command="t",
        filters=run["filters"],
        shard=run["shard"],
    )
    render.write_reports(rebuilt, paths[1].parent)
    with pytest.raises(ReportError, match="is in both"):
        merge.merge(paths, command="merge")


def test_merge_cli_is_one_line_on_bad_input(tmp_path):
    paths = _shard_reports(tmp_path, VARIANTS[:4], 2)
    cli = [sys.executable, "-m", "harness", "merge"]
    done = subprocess.run([*cli, str(paths[0]), "-o", str(tmp_path / "m.json")], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "2/2 missing" in done.stderr
    done = subprocess.run([*cli, *map(str, paths), "-o", str(tmp_path / "m")], capture_output=True, text=True)
    assert done.returncode == 2 and "ending in .json" in done.stderr
    assert not (tmp_path / "m").exists()


# --- real shards in Chromium ----------------------------------------------------------------------------


def _ids(path: Path) -> dict[str, tuple[str, bool]]:
    return {r["id"]: (r["outcome"], r["ok"]) for r in json.loads(path.read_text())["records"]}


@pytest.mark.browser
@pytest.mark.slow
def test_three_shards_merged_give_the_records_of_one_run(tmp_path):
    """Shards 1 and 3 from `certify --shard`, shard 2 from `pytest --shard`, merge into the records one run of the
    selection gives, every one meeting its expectation: the merge refuses a record in two shards and a missing
    one, so pytest's shard 2 is the one `certify` makes."""
    select = "Identity or Subtract or ZeroPadding3D or Dense[use_bias"  # passes, lowerings and rejects
    # two backends: a variant's stay together in its shard; webgl and webgpu would add start-up time to each of
    # the three runs, and nothing of the split or the merge depends on which backends ran
    backends = "cpu,wasm"
    variants = select_variants_by_keyword(CASES, select)
    one_run = {v.record_id(b) for v in variants for b in backends.split(",")}
    assert len(variants) == 13
    env = {**os.environ, "TFJS_CERTIFY_CACHE": os.environ.get("TFJS_CERTIFY_CACHE", str(ROOT / ".cache"))}
    certify = [sys.executable, "-m", "harness", "certify", "-k", select, "--backend", backends]
    for i in (1, 3):
        done = subprocess.run(
            [*certify, "--shard", f"{i}/3", "--out", str(tmp_path / f"c{i}")], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-2000:]
        # its output is no terminal, as in CI: a progress line, and none of TensorFlow's start-up lines from the
        # worker processes
        n = len({r.rsplit("-", 1)[0] for r in _ids(tmp_path / f"c{i}" / "compat.json")})
        assert re.search(rf"^certifying( in \d workers)?: {n}/{n} \(100%\) in \d+ s$", done.stderr, re.M), done.stderr
        assert "oneDNN custom operations" not in done.stderr and "absl::InitializeLog" not in done.stderr
    pytest_args = ["tests/test_certify.py", "-q", "-p", "no:cacheprovider", "-k", select, "--backend", backends]
    pytest_args += ["--shard", "2/3"]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *pytest_args,
            "--reports",
            str(tmp_path / "p2"),
            "--baseline",
            str(tmp_path / "none.json"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    shards = ("c1", "p2", "c3")
    shard_sizes = [len(_ids(tmp_path / s / "compat.json")) for s in shards]
    assert all(shard_sizes) and sum(shard_sizes) == len(one_run)
    for s in shards:  # a variant's backends stay in its shard
        ids = _ids(tmp_path / s / "compat.json")
        assert {r.removesuffix("-cpu") for r in ids if r.endswith("-cpu")} == {
            r.removesuffix("-wasm") for r in ids if r.endswith("-wasm")
        }
    out = tmp_path / "merged.json"
    paths = [str(tmp_path / s / "compat.json") for s in shards]
    done = subprocess.run(
        [sys.executable, "-m", "harness", "merge", *paths, "-o", str(out)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    merged = _ids(out)
    assert set(merged) == one_run and all(ok for _, ok in merged.values()), merged
    assert json.loads(out.read_text())["run"]["filters"] == [f"-k {select}", f"--backend {backends}"]


def _save(keras, path: Path, units: int) -> None:
    x = keras.Input((3,), name="in0")
    keras.Model(x, keras.layers.Dense(units, name="dense")(x)).save(path)


@pytest.mark.browser
@pytest.mark.slow
def test_a_directory_of_user_models_splits_and_merges_like_one_run(tmp_path):
    """`certify DIR --shard I/2` splits the files under DIR by size; merged, the shards are the records one run
    of DIR gives, a file that fails to convert included (it is a record like any other)."""
    import keras

    zoo = tmp_path / "zoo"
    (zoo / "vision").mkdir(parents=True)
    for units, path in enumerate(
        [zoo / "a.keras", zoo / "vision" / "b.keras", zoo / "vision" / "c.h5", zoo / "d.keras"]
    ):
        _save(keras, path, units=2 + 40 * units)
    (zoo / "broken.h5").write_bytes(b"not a model at all")
    certify = [sys.executable, "-m", "harness", "certify", str(zoo), "--backend", "cpu"]

    def run(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([*args], cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert done.returncode in (0, 1) and "Traceback" not in done.stderr, done.stderr[-2000:]
        return done

    one_run = {
        "a.keras-keras3-keras-cpu": ("pass", True),
        "vision/b.keras-keras3-keras-cpu": ("pass", True),
        "vision/c.h5-keras3-h5-cpu": ("pass", True),
        "d.keras-keras3-keras-cpu": ("pass", True),
        "broken.h5-unknown-h5-cpu": ("converter_error", False),
    }
    parts = []
    for i in (1, 2):
        done = run(*certify, "--shard", f"{i}/2", "--out", str(tmp_path / f"s{i}"))
        parts.append(_ids(tmp_path / f"s{i}" / "compat.json"))
        assert done.returncode == int("broken.h5-unknown-h5-cpu" in parts[-1])  # a shard fails by its own records
    assert all(parts) and not set(parts[0]) & set(parts[1])
    merged = run(
        sys.executable, "-m", "harness", "merge", *(str(tmp_path / f"s{i}" / "compat.json") for i in (1, 2)),
        "-o", str(tmp_path / "merged.json"),
    )  # fmt: skip
    assert merged.returncode == 1  # broken.h5 is not ok
    assert _ids(tmp_path / "merged.json") == one_run
