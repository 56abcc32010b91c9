"""The `tfjs-certify` command (also `python -m harness`).

    tfjs-certify setup
    tfjs-certify certify [MODEL_FILE|DIR ...] [--backend cpu,wasm] [-k EXPR] [--shard I/N] [--out DIR] ...
    tfjs-certify merge SHARD.json ... -o OUT.json [--baseline FILE]
    tfjs-certify plan MODEL_FILE OUT_DIR --max-error E [--inputs FILE] [--backend ...]
    tfjs-certify compare BASELINE NEW [--update-baseline]

Exit codes: 0 fine, 1 certification failed or a regression was found, 2 bad input (one line naming
the file and the problem) or a missing prerequisite (one line naming it and the command that fixes it),
3 an internal error. Tracebacks only with --verbose.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from harness.vocabulary import BACKENDS, DEFAULT_BACKENDS

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit code 2."""


def _backends(values) -> list[str]:
    """`--backend` values, repeatable and comma-separated, deduplicated in order (none: DEFAULT_BACKENDS)."""
    out = []
    for value in values or [",".join(DEFAULT_BACKENDS)]:
        for name in filter(None, (v.strip().lower() for v in value.split(","))):
            if name not in BACKENDS:
                raise UsageError(f"--backend: unknown backend {name!r} (choose from {', '.join(BACKENDS)})")
            if name not in out:
                out.append(name)
    if not out:
        raise UsageError("--backend: no backend given")
    return out


def cores() -> int:
    """The CPUs this process may run on (`-j`'s default)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


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


def _inputs_arg(path: str) -> Path:
    """`--inputs`: one .npz for every model, or a .json mapping each model path to its .npz."""
    p = _existing_file(path, "inputs file")
    if p.suffix == ".npz":
        return p
    if p.suffix != ".json":
        raise UsageError(f"{path}: --inputs expects a .npz file, or a .json mapping model files to .npz files")
    try:
        mapping = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"{path}: not a readable JSON mapping ({e})") from None
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
        raise UsageError(f"{path}: expected a JSON object mapping model paths to .npz paths")
    for value in mapping.values():
        _existing_file(str(p.parent / value), f"inputs file (named in {path})")
    return p


MODEL_SUFFIXES = (".h5", ".keras", ".hdf5")


def _models(args) -> list[Path]:
    """The model files named, a directory standing for every .h5/.keras file under it (sorted)."""
    out: list[Path] = []
    for m in args:
        p = Path(m)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in MODEL_SUFFIXES)
            if not found:
                raise UsageError(f"{m}: no .h5 or .keras model file in this directory")
            out += found
        else:
            out.append(_existing_file(m, "model file"))
    return out


def cmd_certify(args) -> int:
    models = _models(args.models)
    shard = None
    if args.shard is not None:
        from harness.pipeline.shard import Shard

        try:
            shard = Shard.parse(args.shard)
        except ValueError as e:
            raise UsageError(str(e)) from None
    inputs = None
    if args.inputs is not None:
        if not models:
            raise UsageError("--inputs applies to model files; the reference suite generates its own inputs")
        inputs = _inputs_arg(args.inputs)
    if args.update_baseline and (models or args.select or args.backend or shard):
        raise UsageError(
            "--update-baseline needs a full run of the reference suite (no files, -k, --backend or --shard; "
            "for a split run, merge the shards, then tfjs-certify compare --update-baseline)"
        )
    code = _user_code(args, models)
    backends = _backends(args.backend) if args.backend else None  # None: the default, sample included
    if models:  # a user's file always runs in the browser: say what is missing before Keras loads anything
        from js_runner import install

        install.find()
    from harness.pipeline import reference, run

    if not models:
        from harness.suite import CASES

        try:
            selected = run.select_variants(CASES, args.select)
        except ValueError as e:  # a malformed -k expression
            raise UsageError(str(e)) from None
        if not selected:
            raise UsageError(f"no case of the reference suite matches -k {args.select!r}")
    if args.cache_dir:
        reference.set_cache_dir(Path(args.cache_dir))
    return run.run(
        models,
        backends=backends,
        select=args.select,
        out_dir=Path(args.out),
        workers=args.workers,
        inputs=inputs,
        baseline=Path(args.baseline) if args.baseline else None,
        update_baseline=args.update_baseline,
        shard=shard,
        progress_interval_s=args.progress_interval,
        code=code,
    )


def cmd_setup(args) -> int:
    """Install what certifying needs outside Python, once: TF.js (npm ci, into the user cache) and a Chromium;
    then start Chromium with TF.js on every backend. Exit 1 when a default backend does not start; WebGPU,
    which needs an adapter some machines lack, is reported either way."""
    from js_runner import browser, install

    try:
        where = install.find()
        print(f"TF.js {install.version()}: {where}")
    except install.Missing:
        where = install.install()
        print(f"TF.js {install.version()}: installed in {where}")
    print(f"Chromium: {browser.ensure()}")
    if args.no_check:
        return EXIT_OK
    from harness.pipeline.run import TIMEOUT_S
    from js_runner import BrowserSession

    with BrowserSession(backends=tuple(BACKENDS), timeout_s=TIMEOUT_S) as session:
        print(f"Chromium {session.browser_version} runs TF.js on:")
        for name, info in session.backends.items():
            optional = "" if name in DEFAULT_BACKENDS else " (certified only when named: --backend " + name + ")"
            state = f"ok (TF.js {info.tfjs_version})" if info.available else f"UNAVAILABLE: {info.reason}"
            print(f"  {name}: {state}{optional if not info.available else ''}")
        needed = [info for name, info in session.backends.items() if name in DEFAULT_BACKENDS]
        return EXIT_OK if all(info.available for info in needed) else EXIT_FAILED


def _user_code(args, models):
    """--companion, --custom-objects, --custom-js: options of the user's model files only."""
    given = args.companion or args.custom_objects or args.custom_js
    if not given:
        return None
    if not models:
        raise UsageError("--companion, --custom-objects and --custom-js apply to model files, not the reference suite")
    if bool(args.custom_objects) != bool(args.custom_js):
        raise UsageError("a custom layer needs its Python (--custom-objects) and its JavaScript port (--custom-js)")
    python = _existing_file(args.custom_objects, "Python module") if args.custom_objects else None
    if python is not None and python.suffix != ".py":
        raise UsageError(f"{args.custom_objects}: --custom-objects expects a .py file")
    scripts = tuple(_existing_file(p, "JavaScript file").resolve() for p in args.custom_js or [])
    for p in scripts:
        if p.suffix not in (".js", ".mjs"):
            raise UsageError(f"{p}: --custom-js expects a .js file")
    from harness.pipeline.custom import UserCode

    return UserCode(python.resolve() if python else None, scripts, bool(args.companion))


def cmd_merge(args) -> int:
    from harness.results import merge
    from harness.results.finish import conclude

    reports = [_existing_file(p, "shard report") for p in args.reports]
    out = Path(args.output)
    if out.suffix != ".json":
        raise UsageError(f"-o {args.output}: give the merged report's path, ending in .json")
    command = ("tfjs-certify merge " + " ".join(sys.argv[2:])).strip()
    data = merge.merge(reports, command=command)
    print(f"merged {len(reports)} shards: {len(data['records'])} records")
    status, _ = conclude(data, out.parent, stem=out.stem, baseline=Path(args.baseline) if args.baseline else None)
    return status


def cmd_plan(args) -> int:
    model = _existing_file(args.model, "model file")
    inputs = _inputs_arg(args.inputs) if args.inputs else None
    if args.max_error <= 0:
        raise UsageError(f"--max-error must be positive, got {args.max_error:g}")
    out = Path(args.out_dir)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise UsageError(f"{out}: exists and is not empty (use --overwrite to replace it)")
    backends = _backends(args.backend)
    from converter import ConversionError
    from harness.pipeline import run, user
    from js_runner import BrowserSession

    run.quiet()
    try:
        with BrowserSession(backends=tuple(backends), timeout_s=run.TIMEOUT_S) as session:
            return user.plan_file(session, model, out, args.max_error, backends, inputs, overwrite=args.overwrite)
    except ConversionError as e:
        raise UsageError(str(e)) from e


def cmd_compare(args) -> int:
    from harness.files import write_atomic
    from harness.results import baseline as gate
    from harness.results import compat

    new = compat.load(args.new)
    if args.update_baseline:
        if new["run"]["partial"]:
            raise UsageError(f"{args.new}: a partial run ({', '.join(new['run']['filters'])}) cannot be the baseline")
        path = Path(args.baseline)
        if path.is_file():
            try:
                _print_diff(gate, gate.compare(gate.Baseline.load(path), new))
            except compat.ReportError as e:
                print(f"(previous baseline unreadable, replacing it: {e})")
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, gate.Baseline.from_report(new).dumps())
        print(f"baseline updated: {args.baseline} <- {args.new} ({len(new['records'])} records)")
        from harness.results.finish import write_costs

        costs = write_costs(new, path.parent)
        if costs is not None:
            print(f"costs for --shard updated: {costs}")
        return EXIT_OK
    old = gate.Baseline.load(args.baseline)
    only_ids = [r.id for r in new["records"]] if new["run"]["partial"] else None
    diff = gate.compare(old, new, only_ids=only_ids)
    _print_diff(gate, diff)
    if diff.regressions:
        print(f"{len(diff.regressions)} regression(s) against {args.baseline}")
        return EXIT_FAILED
    print(
        f"no regressions against {args.baseline}" + (" (subset run: compared only its records)" if diff.partial else "")
    )
    return EXIT_OK


def _print_diff(gate, diff) -> None:
    if diff.regressions or diff.improvements or diff.changes:
        print(gate.render_diff(diff, terminal=sys.stdout.isatty()))
    else:
        print(f"no changes in the {diff.compared} records both reports share")


def _tfjs_version() -> str:
    from js_runner import install

    return install.version()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfjs-certify",
        description="Convert Keras models to TF.js Layers and certify them in headless Chromium.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{setup,certify,merge,plan,compare}")

    s = sub.add_parser(
        "setup",
        help="install TF.js and find (or install) Chromium, once; then check every backend starts",
        description=f"Install TF.js {_tfjs_version()} with `npm ci` (pinned, every package checked against "
        "package-lock.json's hashes) into $TFJS_CERTIFY_TFJS_DIR, else the user cache "
        "($XDG_CACHE_HOME/tfjs-certify, ~/.cache by default), unless a clone's js_runner/node_modules already "
        "holds it; find a Chromium ($CHROMIUM_PATH, Playwright's, /usr/bin/chromium, chromium-browser, google-chrome; "
        "as root on Debian it installs the chromium package); then start it with TF.js on cpu, wasm and webgl. "
        "Exit 1 when a backend does not start.",
    )
    s.add_argument("--no-check", action="store_true", help="install only; do not start the browser")
    s.add_argument("--verbose", action="store_true", help="tracebacks on errors")
    s.set_defaults(func=cmd_setup)

    c = sub.add_parser(
        "certify",
        help="certify model files, or the reference suite when none are given",
        description="Certify Keras model files (none: the reference suite) and write "
        "compat.json, compat.md and compat.html.",
    )
    c.add_argument(
        "models",
        nargs="*",
        metavar="MODEL_FILE|DIR",
        help=".h5 or .keras files, or directories of them (default: the reference suite)",
    )
    c.add_argument(
        "--backend",
        action="append",
        metavar="NAME[,NAME]",
        help="TF.js backend(s) to certify on, of cpu, wasm, webgl, webgpu; repeatable or comma list (default: "
        "cpu, wasm and webgl, and for the reference suite webgpu on a sample of it)",
    )
    c.add_argument(
        "-k",
        dest="select",
        metavar="EXPR",
        help="run only the cases whose id matches EXPR, read as pytest reads -k: case-insensitive substrings "
        "joined with and, or, not and parentheses",
    )
    c.add_argument(
        "--shard",
        metavar="I/N",
        help="certify shard I of N only: the suite's variants (balanced by reports/costs.json) or the model "
        "files (by size), split the same way on every machine; join the reports with tfjs-certify merge",
    )
    c.add_argument("--out", default="reports", metavar="DIR", help="where reports go (default: reports/)")
    c.add_argument(
        "-j",
        "--workers",
        type=_positive_int,
        default=cores(),
        metavar="N",
        help=f"parallel worker processes for the reference suite, one browser each (default: one per core, {cores()})",
    )
    c.add_argument(
        "--progress-interval",
        type=float,
        default=30.0,
        metavar="S",
        help="when output is no terminal (CI, a log), print how far the run is every S seconds (default: 30)",
    )
    c.add_argument(
        "--inputs",
        metavar="FILE",
        help="inputs for the model files: one .npz (arrays by input name or order) for all, or a .json "
        "mapping each model path to its .npz (default: MODEL.npz next to a model, else seeded)",
    )
    c.add_argument(
        "--companion",
        action="store_true",
        help="convert the model files with the companion module (what TF.js cannot express: GRU reset_after=True, "
        "Keras resizing, ...), which the page loads before each model",
    )
    c.add_argument(
        "--custom-objects",
        metavar="FILE.py",
        help="your Python module defining the model files' custom layer classes: imported (opt-in) to build the "
        "Keras reference; their configs are converted as they are",
    )
    c.add_argument(
        "--custom-js",
        action="append",
        metavar="FILE.js",
        help="your JavaScript registering the ported classes (tf.serialization.registerClass, className = the "
        "Keras registered name), loaded by the page before each model on every backend; repeatable",
    )
    c.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="where Keras models and references are cached (default: $TFJS_CERTIFY_CACHE or ./.cache)",
    )
    c.add_argument(
        "--baseline",
        default=os.path.join("reports", "baseline.json"),
        metavar="FILE",
        help="baseline compared after a full suite run (default: reports/baseline.json)",
    )
    c.add_argument(
        "--update-baseline",
        action="store_true",
        help="after a full suite run, write the baseline from its results (a deliberate acceptance)",
    )
    c.add_argument("--verbose", action="store_true", help="more output; tracebacks on errors")
    c.set_defaults(func=cmd_certify)

    m = sub.add_parser(
        "merge",
        help="join the compat.json of every shard of a split run into one report (then gated like one run)",
        description="Join the compat.json of the N shards of one run (certify --shard I/N, or pytest --shard I/N) "
        "into one report: validated, its rollup recomputed. Refuses, naming the files, a missing or duplicate "
        "shard, shards of different splits, or a record in two shards. Exit 1 when a record missed its "
        "expectation or, with --baseline, on a regression.",
    )
    m.add_argument("reports", nargs="+", metavar="SHARD.json")
    m.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT.json",
        help="the merged report (OUT.md and OUT.html are written beside it)",
    )
    m.add_argument("--baseline", metavar="FILE", help="gate the merged report against this baseline")
    m.add_argument("--verbose", action="store_true", help="tracebacks on errors")
    m.set_defaults(func=cmd_merge)

    q = sub.add_parser(
        "plan",
        help="quantize a model per weight as small as an output error budget allows, and certify it",
        description="Pick, per weight, the smallest of uint8, uint16, float16 and float32 that keeps the model's "
        "output error (max_abs against its float32 Keras outputs, on its inputs) within --max-error; convert "
        "with that plan, certify it in TF.js, and write OUT_DIR/quantization_plan.json. Exit 1 when a backend "
        "exceeds the budget. Apply a plan again with `tfjs-convert --quantize_plan`.",
    )
    q.add_argument("model", metavar="MODEL_FILE")
    q.add_argument("out_dir", metavar="OUT_DIR")
    q.add_argument("--max-error", type=float, required=True, metavar="E", help="the output error budget (max_abs)")
    q.add_argument(
        "--inputs", metavar="FILE", help="inputs (.npz, or a .json mapping; default: MODEL.npz, else seeded)"
    )
    q.add_argument(
        "--backend", action="append", metavar="NAME[,NAME]", help="backends to certify on (default: cpu, wasm, webgl)"
    )
    q.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT_DIR")
    q.add_argument("--verbose", action="store_true", help="tracebacks on errors")
    q.set_defaults(func=cmd_plan)

    g = sub.add_parser(
        "compare",
        help="compare a compat.json against a baseline; exit 1 on a regression",
        description="Print what changed between BASELINE and NEW compat.json; exit 1 on a "
        "regression. A subset run (run.partial true) is compared on its records only.",
    )
    g.add_argument("baseline", metavar="BASELINE")
    g.add_argument("new", metavar="NEW")
    g.add_argument(
        "--update-baseline",
        action="store_true",
        help="validate NEW and write BASELINE from it (a deliberate acceptance); exit 0",
    )
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
        from harness.results.compat import ReportError
        from js_runner.install import Missing

        if isinstance(e, (UsageError, ReportError, Missing)):
            print(f"tfjs-certify {args.command}: error: {e}", file=sys.stderr)
            return EXIT_BAD_INPUT
        print(
            f"tfjs-certify {args.command}: internal error: {type(e).__name__}: {e} (--verbose for the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
