"""`tfjs-convert` / `python -m converter`: the command line, with the official converter's flags.

Exit codes: 0 done, 1 conversion failure, 2 usage, 3 unsupported model. Errors are one line naming the
file and the problem; `--verbose` adds the traceback.
"""

from __future__ import annotations

import argparse
import sys
import traceback

from converter import api
from converter.companion import script_tag, tfjs_class_name
from converter.companion_table import JS_FILE
from converter.errors import EXIT_OK, EXIT_UNSUPPORTED, EXIT_USAGE, ConversionError, UnsupportedModelError

INPUT_FORMATS = ("keras", "keras_keras", "keras_saved_model_v3")


def _names(value: str | None):
    """`--quantize_uint8` alone means every weight; with a value, comma-separated name patterns."""
    return None if value is None or value == "*" else [v for v in value.split(",") if v]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tfjs-convert",
        description="Convert a Keras 2 or Keras 3 model (.h5 or .keras) to the TF.js Layers format, "
        "refusing what TF.js 4.22 cannot run as Keras does.",
    )
    p.add_argument("input_path", help="a Keras model file (.h5 or .keras; the format is read from the file)")
    p.add_argument("output_path", nargs="?", help="the output directory (model.json + weight shards)")
    p.add_argument(
        "--input_format",
        choices=INPUT_FORMATS,
        default=None,
        help="accepted for compatibility with tensorflowjs_converter; the file's signature decides",
    )
    p.add_argument("--output_format", choices=("tfjs_layers_model",), default="tfjs_layers_model")
    p.add_argument("--weight_shard_size_bytes", type=int, default=api.DEFAULT_SHARD_SIZE, metavar="N")
    for dtype in ("float16", "uint8", "uint16"):
        p.add_argument(
            f"--quantize_{dtype}",
            nargs="?",
            const="*",
            default=None,
            metavar="NAMES",
            help=f"quantize float32 weights to {dtype} (all, or comma-separated names; `*` allowed)",
        )
    p.add_argument(
        "--quantize_plan",
        metavar="PLAN.json",
        help="a per-weight plan ({'weights': {name: float32|float16|uint16|uint8}}), as `tfjs-certify plan` writes",
    )
    p.add_argument("--split_weights_by_layer", action="store_true", help="one weight group per layer")
    p.add_argument(
        "--check", action="store_true", help="print the support analysis and exit: 0 supported, 3 not (writes nothing)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty output directory")
    p.add_argument(
        "--require_training",
        action="store_true",
        help="fail (exit 3) unless the model's training configuration is carried, so TF.js loads it compiled",
    )
    p.add_argument(
        "--companion",
        action="store_true",
        help="run what TF.js cannot express (GRU reset_after=True, Keras resizing, ...) with the companion module, "
        "written next to model.json; the web app loads it after TF.js (converter/companion_table.py)",
    )
    p.add_argument(
        "--custom_class",
        action="append",
        default=None,
        metavar="CLASS[:W0,W1]",
        help="a custom layer class your JavaScript registers (its Keras registered name, e.g. 'my_pkg>Scale'), "
        "written as it is; a .keras file needs its weight names, in the order the layer stores them (repeatable)",
    )
    p.add_argument("--verbose", action="store_true", help="show tracebacks")
    return p


def _class_names(custom_layers) -> str:
    """The className each port registers: TF.js camel-cases class names (converter.companion.tfjs_class_name)."""
    names = sorted({cls for _, cls in custom_layers})
    return "register your ports as " + ", ".join(
        f"static className = '{tfjs_class_name(cls)}'" + ("" if tfjs_class_name(cls) == cls else f" (for {cls})")
        for cls in names
    )


def _custom_classes(values) -> dict[str, tuple[str, ...] | None] | None:
    """`--custom_class CLASS[:W0,W1]`, repeatable: {class: weight names, or None}."""
    if not values:
        return None
    out: dict[str, tuple[str, ...] | None] = {}
    for value in values:
        cls, sep, names = value.partition(":")
        if not cls:
            raise ConversionError(None, f"--custom_class {value!r}: give the class name")
        out[cls] = tuple(n for n in names.split(",") if n) if sep else None
    return out


def _read_plan(path: str) -> dict[str, str]:
    """The {weight: dtype} of a plan file; ConversionError names the file and the problem."""
    import json

    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConversionError(path, f"is not a readable quantization plan: {e}") from e
    weights = data.get("weights") if isinstance(data, dict) else None
    if not isinstance(weights, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in weights.items()):
        raise ConversionError(path, 'expected {"weights": {weight name: dtype}}')
    return weights


def _issue_table(issues, out):
    rows = [("layer", "class", "argument", "code", "reason")]
    for i in issues:
        arg = "" if i.argument is None else f"{i.argument}={i.value!r}"
        rows.append((i.layer, i.class_name, arg[:40], i.code, i.reason))
    widths = [max(len(str(r[c])) for r in rows) for c in range(4)]
    for r in rows:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in range(4)) + "  " + r[4], file=out)


def print_check(analysis, out=sys.stdout):
    print(
        f"{analysis.path}: Keras {analysis.keras_version} ({analysis.format}), {len(analysis.layers)} layers", file=out
    )
    if analysis.lowerings:
        print(f"lowered: {len(analysis.lowerings)} layer(s) rewritten into layers TF.js runs as Keras does", file=out)
        for applied in analysis.lowerings:
            print(f"  {applied}", file=out)
    if analysis.supported:
        print(
            "supported: TF.js 4.22 can run every layer as Keras does"
            + (" (with the companion module)" if analysis.companion else "")
            + (" (custom layers: as your JavaScript ports compute them)" if analysis.custom_layers else ""),
            file=out,
        )
    else:
        _issue_table(analysis.issues, out)
        print(f"not supported: {len(analysis.issues)} issue(s)", file=out)
    if analysis.companion:
        print(f"companion: {len(analysis.companion)} layer(s) run by the companion module ({JS_FILE})", file=out)
        for use in analysis.companion:
            print(f"  {use}", file=out)
    if analysis.needs_companion:
        layers = ", ".join(f"{i.layer} ({i.class_name})" for i in analysis.needs_companion)
        print(
            f"needs the companion module: {len(analysis.needs_companion)} layer(s), {layers}: convert with --companion",
            file=out,
        )
    if analysis.custom_layers:
        layers = ", ".join(f"{layer} ({cls})" for layer, cls in analysis.custom_layers)
        print(f"custom: {len(analysis.custom_layers)} layer(s) your JavaScript registers: {layers}", file=out)
        print(f"  {_class_names(analysis.custom_layers)}", file=out)
    train = analysis.training
    if not train.compiled:
        print("training: the model is not compiled (it will load uncompiled in TF.js)", file=out)
    elif train.carried:
        s = train.summary
        state = (
            f"optimizer state carried ({len(train.state)} tensors)"
            if train.state
            else (
                f"optimizer state not carried: {train.state_note}" if train.state_note else "no optimizer state saved"
            )
        )
        print(
            f"training: carried: loss {s['loss']}, metrics {s['metrics'] or []}, optimizer {s['optimizer']} "
            f"{s['optimizer_config']}; {state}",
            file=out,
        )
    else:
        print("training: not carried (the model converts for inference, uncompiled):", file=out)
        _issue_table(train.issues, out)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        custom = _custom_classes(args.custom_class)
        if args.check:
            analysis = api.check(args.input_path, companion=args.companion, custom_classes=custom)
            print_check(analysis)
            return EXIT_OK if analysis.supported else EXIT_UNSUPPORTED
        if not args.output_path:
            parser.print_usage(sys.stderr)
            print("tfjs-convert: error: OUTPUT_PATH is required (or use --check)", file=sys.stderr)
            return EXIT_USAGE
        quantize = {
            d: _names(getattr(args, f"quantize_{d}"))
            for d in ("float16", "uint8", "uint16")
            if getattr(args, f"quantize_{d}") is not None
        }
        plan = _read_plan(args.quantize_plan) if args.quantize_plan else None
        result = api.convert(
            args.input_path,
            args.output_path,
            input_format=args.input_format,
            shard_size=args.weight_shard_size_bytes,
            quantize=quantize,
            quantize_plan=plan,
            split_weights_by_layer=args.split_weights_by_layer,
            overwrite=args.overwrite,
            require_training=args.require_training,
            companion=args.companion,
            custom_classes=custom,
        )
    except UnsupportedModelError as e:
        print(f"error: {e}", file=sys.stderr)
        for issue in e.issues:
            print(f"  {issue}", file=sys.stderr)
        if args.verbose:
            traceback.print_exc()
        return e.exit_code
    except ConversionError as e:
        print(f"error: {e}", file=sys.stderr)
        if args.verbose:
            traceback.print_exc()
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # an unexpected failure is still one line unless --verbose
        if args.verbose:
            traceback.print_exc()
        print(f"error: {args.input_path}: conversion failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    for issue in result.training.issues:
        print(f"warning: {args.input_path}: training configuration not carried: {issue}", file=sys.stderr)
    if result.training.carried and result.training.state_note:
        print(f"warning: {args.input_path}: optimizer state not carried: {result.training.state_note}", file=sys.stderr)
    print(
        f"wrote {result.out_dir}: {len(result.files)} files, {result.weights} weights, "
        f"{result.weight_bytes} bytes in {result.shards} shard(s)"
        + (", compiled" if result.training.carried else "")
        + (f", {len(result.lowerings)} layer(s) lowered (see --check)" if result.lowerings else "")
    )
    if result.custom_layers:
        print(_class_names(result.custom_layers))
    if result.companion_file is not None:
        print(f"load the companion module after TF.js, before tf.loadLayersModel: {script_tag(result.out_dir)}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
