"""Certification throughput: wall time per record, and a full `make test`.

    .venv/bin/python benchmarks/throughput.py [--tier layer] [--backends cpu,wasm,webgl] [--make-test]

Per record: every variant of the tier is certified on every backend in this one process with one browser
(one worker), as `make test` does it (one call per record: `per-record`) and as `tfjs-certify certify`
does it (one call per variant, all its backends: `per-variant`). A first pass warms the caches (Keras
references, conversions); the second is timed. Each record's wall time is the time from the end of the
previous record to its end, so everything between records counts (Python, the browser round trips, the
comparison, bookkeeping). Prints the median, 90th percentile and mean per record.

`--make-test` then times `make test` (the README's command, warm caches) in a subprocess.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _per_record(session, variants, backends, workdir, artifacts, certify) -> list[float]:
    times, last = [], time.perf_counter()
    for v in variants:
        for b in [None] if v.case.tier == "reject" else backends:
            certify.certify_variant(
                None if b is None else session, v, backends if b is None else [b], workdir, artifacts, timings=False
            )
            now = time.perf_counter()
            times.append((now - last) * 1000)
            last = now
    return times


def _per_variant(session, variants, backends, workdir, artifacts, certify) -> list[float]:
    times, last = [], time.perf_counter()
    for v in variants:
        recs = certify.certify_variant(session, v, backends, workdir, artifacts, timings=False)
        now = time.perf_counter()
        times += [(now - last) * 1000 / len(recs)] * len(recs)
        last = now
    return times


def _row(name, times) -> str:
    q = statistics.quantiles(times, n=10)
    return (
        f"| {name} | {len(times)} | {statistics.median(times):.0f} | {q[-1]:.0f} | {statistics.fmean(times):.0f} "
        f"| {sum(times) / 1000:.1f} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tier", default="layer", help="the suite tier to time (default: layer)")
    parser.add_argument("--backends", default="cpu,wasm,webgl")
    parser.add_argument("--make-test", action="store_true", help="also time a full `make test`")
    args = parser.parse_args()

    import harness  # noqa: F401  (TensorFlow policy first)
    from harness.pipeline import certify, run
    from harness.suite import CASES
    from js_runner import BrowserSession

    run.quiet()
    backends = args.backends.split(",")
    variants = [v for c in CASES if c.tier == args.tier for v in c.variants()]
    print(f"{args.tier} tier: {len(variants)} variants on {', '.join(backends)}", flush=True)
    rows = []
    with BrowserSession(backends=tuple(backends), timeout_s=120) as session, tempfile.TemporaryDirectory() as tmp:
        work, artifacts = Path(tmp) / "work", Path(tmp) / "artifacts"
        work.mkdir()
        start = time.perf_counter()
        _per_variant(session, variants, backends, work, artifacts, certify)  # warm-up: caches filled
        print(f"warm-up pass: {time.perf_counter() - start:.0f} s", flush=True)
        rows.append(_row("per-record (make test)", _per_record(session, variants, backends, work, artifacts, certify)))
        rows.append(_row("per-variant (certify)", _per_variant(session, variants, backends, work, artifacts, certify)))
    print("\n| mode | records | median ms | p90 ms | mean ms | total s |\n|---|---|---|---|---|---|")
    print("\n".join(rows))
    if args.make_test:
        start = time.perf_counter()
        done = subprocess.run(["make", "test"], cwd=ROOT, capture_output=True, text=True)
        took = time.perf_counter() - start
        tail = [line for line in done.stdout.splitlines() if " passed" in line or " failed" in line][-1:]
        print(f"\nmake test: exit {done.returncode}, {took / 60:.1f} min wall; {' '.join(tail)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
