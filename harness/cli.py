"""The `tfjs-certify` command (also `python -m harness`).

    tfjs-certify certify [MODEL_FILE ...] [--backend cpu,wasm] [-k EXPR] [--out DIR] ...
    tfjs-certify compare BASELINE NEW [--update-baseline]

Exit codes: 0 fine, 1 certification failed or a regression was found, 2 bad input (one line naming
the file and the problem), 3 an internal error. Tracebacks only with --verbose.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

BACKENDS = ("cpu", "wasm", "webgl")
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit code 2."""


def _backends(values) -> list[str]:
    """`--backend` values, repeatable and comma-separated, deduplicated in order."""
    out = []
    for value in values or [",".join(BACKENDS)]:
        for name in filter(None, (v.strip().lower() for v in value.split(","))):
            if name not in BACKENDS:
                raise UsageError(f"--backend: unknown backend {name!r} (choose from {', '.join(BACKENDS)})")
            if name not in out:
                out.append(name)
    if not out:
        raise UsageError("--backend: no backend given")
    return out


def _positive_int(text) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def _existing_file(path, what) -> Path:
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{path}: no such {what}")
    if not p.is_file():
        raise UsageError(f"{path}: not a file")
    return p


def cmd_certify(args) -> int:
    models = [_existing_file(m, "model file") for m in args.models]
    if args.inputs is not None:
        if not models:
            raise UsageError("--inputs applies to model files; the reference suite generates its own inputs")
        _existing_file(args.inputs, "inputs file")
        if not args.inputs.endswith(".npz"):
            raise UsageError(f"{args.inputs}: --inputs expects a .npz file")
    backends = _backends(args.backend)
    from harness import run
    return run.run(
        models,
        backends=backends,
        select=args.select,
        out_dir=Path(args.out),
        workers=args.workers,
        inputs=Path(args.inputs) if args.inputs else None,
        baseline=Path(args.baseline) if args.baseline else None,
        verbose=args.verbose,
    )


def _copy_atomic(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        os.unlink(tmp)
        raise


def _print_diff(console, gate, diff) -> None:
    if diff.regressions or diff.improvements or diff.changes:
        console.print(gate.diff_table(diff))
    else:
        console.print(f"no changes in the {diff.compared} records both reports share")


def cmd_compare(args) -> int:
    from rich.console import Console

    from harness import baseline as gate
    from harness import report

    # Logs (not a terminal) get a wide table so record ids stay on one line and can be grepped.
    console = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200)
    new = report.load(args.new)
    if args.update_baseline:
        old_path = Path(args.baseline)
        if old_path.is_file():
            try:
                _print_diff(console, gate, gate.compare(report.load(old_path), new))
            except report.ReportError as e:
                console.print(f"(previous baseline unreadable, replacing it: {e})")
        _copy_atomic(Path(args.new), old_path)
        print(f"baseline updated: {args.baseline} <- {args.new} ({len(new['records'])} records)")
        return EXIT_OK
    old = report.load(args.baseline)
    only_ids = None if new["run"]["complete"] else [r["id"] for r in new["records"]]
    diff = gate.compare(old, new, only_ids=only_ids)
    _print_diff(console, gate, diff)
    if diff.regressions:
        print(f"{len(diff.regressions)} regression(s) against {args.baseline}")
        return EXIT_FAILED
    print(f"no regressions against {args.baseline}" + (" (subset run: compared only its records)" if diff.partial else ""))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfjs-certify",
        description="Convert Keras models to TF.js Layers and certify them in headless Chromium.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{certify,compare}")

    c = sub.add_parser("certify", help="certify model files, or the reference suite when none are given",
                       description="Certify Keras model files (none: the reference suite) and write "
                                   "compat.json, compat.md and compat.html.")
    c.add_argument("models", nargs="*", metavar="MODEL_FILE", help=".h5 or .keras files (default: the reference suite)")
    c.add_argument("--backend", action="append", metavar="NAME[,NAME]",
                   help="TF.js backend(s) to certify on; repeatable or comma list (default: cpu,wasm,webgl)")
    c.add_argument("-k", dest="select", metavar="EXPR",
                   help="run only cases matching EXPR (substring; 'and', 'or', 'not' as in pytest -k)")
    c.add_argument("--out", default="reports", metavar="DIR", help="where reports go (default: reports/)")
    c.add_argument("-j", "--workers", type=_positive_int, default=1, metavar="N", help="parallel workers (default: 1)")
    c.add_argument("--inputs", metavar="FILE.npz", help="inputs to feed the model files (arrays by input name or order)")
    c.add_argument("--baseline", default=os.path.join("reports", "baseline.json"), metavar="FILE",
                   help="baseline compared after a full suite run (default: reports/baseline.json)")
    c.add_argument("--verbose", action="store_true", help="more output; tracebacks on errors")
    c.set_defaults(func=cmd_certify)

    g = sub.add_parser("compare", help="compare a compat.json against a baseline; exit 1 on a regression",
                       description="Print what changed between BASELINE and NEW compat.json; exit 1 on a "
                                   "regression. A subset run (run.complete false) is compared on its records only.")
    g.add_argument("baseline", metavar="BASELINE")
    g.add_argument("new", metavar="NEW")
    g.add_argument("--update-baseline", action="store_true",
                   help="validate NEW and copy it onto BASELINE (a deliberate acceptance); exit 0")
    g.add_argument("--verbose", action="store_true", help="tracebacks on errors")
    g.set_defaults(func=cmd_compare)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("tfjs-certify: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # one line unless --verbose
        if args.verbose:
            raise
        from harness.report import ReportError

        if isinstance(e, (UsageError, ReportError)):
            print(f"tfjs-certify {args.command}: error: {e}", file=sys.stderr)
            return EXIT_BAD_INPUT
        print(f"tfjs-certify {args.command}: internal error: {type(e).__name__}: {e} (--verbose for the traceback)",
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
