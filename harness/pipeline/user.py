"""A user's own model file, certified like any case: a `Case` of tier `user` whose builder loads the file.

Its inputs come from `--inputs` (one .npz for every model, or a .json mapping model paths to .npz
files), else a `<model stem>.npz` beside the file, else seeded inputs shaped like the model's. An
unreadable file, inputs that do not fit or a Keras failure become the outcome of the file's records.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from harness.files import write_atomic
from harness.pipeline import certify, custom, reference
from harness.results.record import Record, unfinished
from harness.suite import inputs as inputs_mod
from harness.suite.case import Case, Variant
from harness.vocabulary import UNKNOWN_FLAVOUR


@dataclasses.dataclass(frozen=True)
class ModelFile:
    """A builder that loads a user's file with its own Keras (compile=False), with the layer classes of the user's
    module when they opted in (`--custom-objects`)."""

    path: Path
    custom_objects: Path | None = None

    def __call__(self, k):
        return reference.load_model(k, self.path, custom.custom_objects(self.custom_objects, k))


def case_names(paths: list[Path]) -> list[str]:
    """Readable case names, unique for any list of files: each path relative to the files' common folder
    (`a/model.keras`, `b/model.keras`); a single file is its name."""
    resolved = [p.resolve() for p in paths]
    if len(resolved) == 1:
        return [resolved[0].name]
    common = Path(os.path.commonpath([str(p.parent) for p in resolved]))
    return [p.relative_to(common).as_posix() for p in resolved]


def user_case(
    name: str, path: Path, flavour: str = "keras3", fmt: str = "h5", classes=(), python: Path | None = None
) -> Case:
    return Case(
        name=name,
        tier="user",
        build=ModelFile(path, python),
        layer_classes=tuple(classes),
        flavours=(flavour,),
        formats=(fmt,),
    )


class InputsError(ValueError):
    """A model's inputs file does not fit it."""


def inputs_file(model: Path, given: Path | None) -> Path | None:
    """The inputs for `model`: `--inputs` FILE.npz for every model; or its entry in `--inputs` FILE.json (model
    paths to .npz files, relative to the JSON file); else a `<model stem>.npz` next to it; else None (seeded)."""
    if given is not None and given.suffix != ".json":
        return given
    if given is not None:
        for key, value in json.loads(given.read_text()).items():
            if (given.parent / key).resolve() == model.resolve():
                return given.parent / value
    sibling = model.with_suffix(".npz")
    return sibling if sibling.is_file() else None


def load_inputs(path: Path, model) -> list[np.ndarray]:
    names = [t.name.split(":")[0] for t in model.inputs]
    try:
        data = np.load(path)
    except Exception as e:
        raise InputsError(f"{path}: not a readable .npz file ({reference.one_line(e)})") from None
    if all(n in data.files for n in names):
        return [data[n] for n in names]
    if len(data.files) == len(names):
        return [data[f] for f in data.files]
    raise InputsError(
        f"{path}: expected arrays named {', '.join(names)} (or {len(names)} arrays in order), "
        f"found {', '.join(data.files) or 'none'}"
    )


def certify_file(
    session,
    path: Path,
    name: str,
    backends,
    inputs: Path | None,
    workdir: Path,
    artifacts: Path,
    code: custom.UserCode | None = None,
) -> list[Record]:
    """Certify one user model file on `backends`, with the user's own code where they opted in (`code`: their
    custom layers' Python module and JavaScript ports, the companion module). Never raises."""
    code = code or custom.UserCode()
    from converter import ConversionError
    from converter.reader import read_model_file

    try:
        with read_model_file(path) as mf:
            flavour, fmt = ("keras3" if mf.keras_major == 3 else "tf_keras"), mf.format
    except ConversionError as e:
        fmt = "keras" if path.suffix == ".keras" else "h5"
        variant = Variant(user_case(name, path, fmt=fmt), UNKNOWN_FLAVOUR, fmt)
        return [unfinished(variant, b, "converter_error", str(e)) for b in backends]
    variant = Variant(user_case(name, path, flavour, fmt, python=code.python), flavour, fmt)
    try:
        k = reference.keras_module(flavour)
        model = variant.case.build(k)
        classes = sorted({type(x).__name__ for x in model.layers})
        variant = Variant(user_case(name, path, flavour, fmt, classes, code.python), flavour, fmt)
        ported = custom.custom_classes(model, k, custom.custom_objects(code.python, k))
        source = inputs_file(path, inputs)
        xs = (
            load_inputs(source, model)
            if source is not None
            else inputs_mod.make_inputs(inputs_mod.specs_from_model(model), 2, reference.SEED)
        )
        refs = reference.predict(model, xs)
    except InputsError as e:
        return [unfinished(variant, b, "reference_error", f"inputs: {e}") for b in backends]
    except Exception as e:
        message = f"Keras could not load or run {path}: {reference.one_line(e)}"
        return [unfinished(variant, b, "reference_error", message) for b in backends]
    options: dict = {"companion": True} if code.companion else {}
    if ported:
        options["custom_classes"] = ported
    prepared = reference.Prepared(
        name,
        flavour,
        {fmt: path},
        xs,
        refs,
        reference.output_names(model),
        loader=lambda: variant.case.build(k),
        convert_options=options,
        scripts=code.scripts,
    )
    try:
        return certify.certify_prepared(session, variant, prepared, backends, workdir, artifacts)
    except Exception as e:
        message = f"the harness failed on this model: {reference.one_line(e)}"
        return [unfinished(variant, b, "error", message) for b in backends]


def plan_file(
    session,
    path: Path,
    out_dir: Path,
    max_error: float,
    backends,
    inputs: Path | None,
    overwrite: bool = False,
    say=print,
) -> int:
    """`tfjs-certify plan`: the smallest per-weight quantization of a user's model whose output error stays
    within `max_error` (max_abs against its float32 Keras outputs, on its inputs) on every backend. Searches
    in Keras, converts with the plan, certifies it in TF.js, and writes the plan with the measured errors
    to OUT/quantization_plan.json. Keras is searched at a budget below `max_error` (float32 differences
    between TensorFlow and TF.js use the rest); a backend over budget halves it and searches again."""
    from converter import convert
    from harness.pipeline import compare as cmp
    from harness.pipeline import quantize, tolerance

    flavour = _flavour(path)
    k = reference.keras_module(flavour)
    model = reference.load_model(k, path)
    source = inputs_file(path, inputs)
    xs = (
        load_inputs(source, model)
        if source is not None
        else inputs_mod.make_inputs(inputs_mod.specs_from_model(model), 2, reference.SEED)
    )
    refs = reference.predict(model, xs)
    names = reference.output_names(model)
    planner = quantize.Planner(model, xs, refs)
    search_budget = max_error / 2
    for attempt in range(4):
        plan = planner.plan(search_budget)
        convert(path, out_dir, quantize_plan=plan.weights, overwrite=overwrite or attempt > 0)
        dequantized = planner.outputs(plan.weights)  # what Keras computes with the weights TF.js will hold
        measured: dict[str, float | None] = {}
        exact: dict[str, float | None] = {}
        for backend in backends:
            tol = tolerance.for_backend(backend)
            handle = session.load(out_dir, backend)
            try:
                outs = session.predict(handle, xs)
            finally:
                session.dispose(handle)
            _, metrics, _ = cmp.compare_outputs(names, refs, outs, tol)
            measured[backend] = cmp.worst_error(metrics)
            same, metrics, _ = cmp.compare_outputs(names, dequantized, outs, tol)
            exact[backend] = cmp.worst_error(metrics) if same else None
        within = all(e is not None and e <= max_error for e in measured.values())
        if within or attempt == 3 or any(e is None for e in exact.values()):
            break
        say(f"a backend exceeded {max_error:g} (measured {measured}); searching again at {search_budget / 2:g}")
        search_budget /= 2
    faithful = all(e is not None for e in exact.values())
    report = {
        **plan.to_json(),
        "max_error": max_error,
        "search_budget": search_budget,
        "inputs": str(source) if source else "seeded",
        "tfjs_max_abs": measured,
        "tfjs_vs_dequantized_keras": exact,
        "certified": within and faithful,
    }
    write_atomic(out_dir / "quantization_plan.json", json.dumps(report, indent=1) + "\n")
    counts = {d: list(plan.weights.values()).count(d) for d in ("uint8", "uint16", "float16", "float32")}
    say(
        f"{path}: plan {counts}, weights {plan.weights_bytes} bytes ({plan.weights_bytes / plan.float32_bytes:.2f} of "
        f"float32; float16: {plan.float16_bytes / plan.float32_bytes:.2f})"
    )
    for backend, err in measured.items():
        say(measured_line(backend, err, max_error, exact[backend] is not None))
    say(f"wrote {out_dir} (plan in {out_dir / 'quantization_plan.json'})")
    return 0 if within and faithful else 1


def measured_line(backend: str, err: float | None, max_error: float, faithful: bool) -> str:
    """One backend's line of `tfjs-certify plan`: its error against the budget (None: not finite)."""
    text = "not finite" if err is None else f"{err:.3g}"
    sign = "<=" if err is not None and err <= max_error else ">"
    note = "" if faithful else " (TF.js does not compute what Keras does with these weights)"
    return f"  {backend}: max_abs {text} {sign} {max_error:g}{note}"


def _flavour(path: Path) -> str:
    from converter.reader import read_model_file

    with read_model_file(path) as mf:
        return "keras3" if mf.keras_major == 3 else "tf_keras"
