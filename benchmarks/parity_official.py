"""Weight parity with the official converter (tensorflowjs 4.22) on tf_keras `.h5` models.

    python benchmarks/parity_official.py --install   # once: benchmarks/.work/official-venv (big download)
    python benchmarks/parity_official.py

Each model of `MODELS` (tests/keras_models.py builders, random weights) is saved by tf_keras into the
git-ignored benchmarks/.work/parity/ and converted by both converters on the command line. The
weights manifests are compared entry by entry, paired by name as TF.js loads them (names, order,
shapes, dtypes), and the decoded values with np.array_equal. Expected and intended: StackedRNNCells
names (the official converter
writes `rnn/stacked_rnn_cells/<cell>/kernel`, which TF.js cannot load; we write `rnn/RNNCell_<i>/kernel`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / ".work"
VENV = WORK / "official-venv"
OFFICIAL = VENV / "bin" / "tensorflowjs_converter"
PYTHON = sys.executable
sys.path.insert(0, str(ROOT / "tests"))
import keras_models as km  # noqa: E402

MODELS = [
    "mlp",
    "cnn",
    "lstm",
    "gru",
    "bidirectional",
    "time_distributed",
    "nested",
    "embedding_mask",
    "stacked",
    "conv_variety",
    "rnn_variety",
]
GENERATE = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
sys.path.insert(0, {tests!r})
import tf_keras, keras_models as km
for i, name in enumerate({names!r}):
    model = km.BUILDERS[name](tf_keras)
    km.randomize(model, seed=i)
    model.save(os.path.join({out!r}, name + ".h5"))
"""


def install():
    """The official converter in its own venv (it pins TensorFlow 2.19)."""
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [str(VENV / "bin" / "pip"), "install", "--quiet", "tensorflowjs", "ydf<0.16"], check=True, timeout=1200
    )


def run(cmd) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=900, env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"}
    )
    if proc.returncode:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}): {proc.stderr[-1500:]}")
    return time.perf_counter() - start


def manifest(out: Path) -> list[tuple[str, list, str]]:
    model = json.loads((out / "model.json").read_text())
    return [(w["name"], w["shape"], w["dtype"]) for g in model["weightsManifest"] for w in g["weights"]]


def compare(name: str, src: Path) -> dict:
    theirs_dir, ours_dir = WORK / "parity" / f"{name}-official", WORK / "parity" / f"{name}-ours"
    for d in (theirs_dir, ours_dir):
        subprocess.run(["rm", "-rf", str(d)], check=True)
    t_official = run([str(OFFICIAL), "--input_format", "keras", str(src), str(theirs_dir)])
    t_ours = run([PYTHON, "-m", "converter", str(src), str(ours_dir)])
    theirs, ours = manifest(theirs_dir), manifest(ours_dir)
    t_names, o_names = [n for n, _, _ in theirs], [n for n, _, _ in ours]
    only_t = [n for n in t_names if n not in o_names]
    only_o = [n for n in o_names if n not in t_names]
    # TF.js loads by name, so entries are paired by name; renamed ones (only one side) in order.
    pairs = [(n, n) for n in t_names if n in o_names] + list(zip(only_t, only_o))
    spec_t, spec_o = {n: (s, d) for n, s, d in theirs}, {n: (s, d) for n, s, d in ours}
    a, b = km.read_artifact(theirs_dir), km.read_artifact(ours_dir)
    notes = []
    if only_t or only_o:
        notes.append(f"official only: {', '.join(only_t) or '-'}; ours only: {', '.join(only_o) or '-'}")
    if t_names != o_names and not (only_t or only_o):
        notes.append("same entries, other order (the official converter sorts layers by name)")
    bad_specs = [t for t, o in pairs if spec_t[t] != spec_o[o]]
    bad_values = [t for t, o in pairs if a[t].shape != b[o].shape or not np.array_equal(a[t], b[o])]
    if bad_specs:
        notes.append(f"shape/dtype differ: {', '.join(bad_specs)}")
    if bad_values:
        notes.append(f"values differ: {', '.join(bad_values)}")
    return {
        "model": name,
        "weights": len(theirs),
        "names": not (only_t or only_o),
        "order": t_names == o_names,
        "specs": len(pairs) == len(theirs) == len(ours) and not bad_specs,
        "values": len(pairs) == len(theirs) == len(ours) and not bad_values,
        "official": t_official,
        "ours": t_ours,
        "notes": "; ".join(notes),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--install", action="store_true", help="create the official converter's venv")
    parser.add_argument("models", nargs="*", default=MODELS)
    args = parser.parse_args(argv)
    if args.install:
        install()
    if not OFFICIAL.exists():
        sys.exit(f"{OFFICIAL} is missing: run with --install first")
    os.chdir(ROOT)
    out = WORK / "parity"
    out.mkdir(parents=True, exist_ok=True)
    missing = [m for m in args.models if not (out / f"{m}.h5").exists()]
    if missing:
        code = GENERATE.format(tests=str(ROOT / "tests"), names=missing, out=str(out))
        subprocess.run([PYTHON, "-c", code], check=True, timeout=900, stderr=subprocess.DEVNULL)
    rows = [compare(m, out / f"{m}.h5") for m in args.models]
    yes = {True: "yes", False: "**no**"}
    print(
        "| model | weights | same names? | same order? | same shapes+dtypes? | same values? | official s | ours s "
        "| difference |"
    )
    print("|---|---:|---|---|---|---|---:|---:|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['weights']} | {yes[r['names']]} | {yes[r['order']]} | {yes[r['specs']]} | "
            f"{yes[r['values']]} | "
            f"{r['official']:.2f} | {r['ours']:.2f} | {r['notes']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
