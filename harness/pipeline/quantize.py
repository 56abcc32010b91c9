"""Weight quantization: what TF.js reads back, how far each weight may move, and a plan that meets a budget.

The converter encodes a float32 weight as float16 (a cast) or as affine uint8/uint16 (per tensor, range
nudged so that 0 is exact; `converter.writer.quantize`); TF.js decodes it to float32 on load
(`value * scale + min`). `dequantized` reproduces that decode, `step` is the largest error a weight may
then carry (one quantization step for uint8/uint16, since the nudged range can leave the top value a step
off; half a float16 spacing for float16), and `plan` picks, per weight, the smallest of uint8, uint16,
float16 and float32 that keeps the model's output error within a budget, measured in Keras with the
dequantized weights.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from converter.writer import quantize as encode
from harness.files import write_atomic

BYTES = {"float32": 4, "float16": 2, "uint16": 2, "uint8": 1}


def dequantized(w: np.ndarray, dtype: str) -> np.ndarray:
    """The float32 values TF.js holds after loading `w` quantized to `dtype`."""
    w = np.asarray(w, dtype=np.float32)
    if dtype == "float32":
        return w
    q, meta = encode(w, dtype)
    if dtype == "float16":
        return q.astype(np.float32)
    # TF.js computes value * scale + min in doubles, then stores float32
    return (q.astype(np.float64) * meta["scale"] + meta["min"]).astype(np.float32)


def step(w: np.ndarray, dtype: str) -> np.ndarray:
    """Per element, the largest error quantizing `w` to `dtype` may leave (the dequantization bound)."""
    w = np.asarray(w, dtype=np.float32)
    if dtype == "float32":
        return np.zeros_like(w)
    if dtype == "float16":
        return 0.5 * np.spacing(np.abs(w).astype(np.float16)).astype(np.float32)
    _, meta = encode(w, dtype)
    return np.full_like(w, meta["scale"])


def _bound(original: np.ndarray, dtype: str) -> np.ndarray:
    """One step, plus float32 rounding of the decode itself (|w| * 2^-23)."""
    return step(original, dtype).astype(np.float64) + np.abs(original) * 2.0**-23 + 1e-30


def dequantization_error(original: np.ndarray, loaded: np.ndarray, dtype: str) -> float:
    """max |loaded - original| / bound over the weight's elements (<= 1: within its quantization step)."""
    original = np.asarray(original, dtype=np.float64)
    diff = np.abs(np.asarray(loaded, dtype=np.float64) - original)
    return float(np.max(diff / _bound(original, dtype))) if diff.size else 0.0


@dataclasses.dataclass(frozen=True)
class Encoded:
    """How far the encoding moves one weight: max |decoded - original| / bound, and its smallest bound."""

    steps: float
    min_bound: float


def encoding_errors(originals: dict[str, np.ndarray], dtypes: dict[str, str]) -> dict[str, Encoded]:
    """Per quantized weight, what the encoding alone does to it (the decode being value * scale + min)."""
    out = {}
    for name, w in originals.items():
        dtype = dtypes.get(name, "float32")
        if dtype == "float32" or np.asarray(w).dtype.kind != "f" or not np.size(w):
            continue
        original = np.asarray(w, dtype=np.float64)
        out[name] = Encoded(
            dequantization_error(original, dequantized(w, dtype), dtype), float(np.min(_bound(original, dtype)))
        )
    return out


def weight_bytes(shapes: dict[str, tuple[int, ...]], dtypes: dict[str, str]) -> int:
    return sum(int(np.prod(shape)) * BYTES[dtypes.get(name, "float32")] for name, shape in shapes.items())


# --- Keras variables under the names TF.js gives them -----------------------------------------------


def keras_variables(model) -> dict[str, Any]:
    """{manifest weight name: the model's Keras variable}, by saving the model as `.h5` and reading it
    back with the converter: every layer group lists its weights in `layer.weights` order."""
    from converter import topology
    from converter.reader import read_model_file
    from converter.weights import model_weights

    with tempfile.TemporaryDirectory(prefix="tfjs-certify-plan-") as tmp:
        path = Path(tmp) / "model.h5"
        model.save(path)
        with read_model_file(path) as mf:
            out = {}
            for w in model_weights(mf, topology.clean(mf.model_config)):
                parts = w.dataset.name.strip("/").split("/")  # model_weights/<layer>/...
                group = mf.weights[parts[1]]
                names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
                index = names.index("/".join(parts[2:]))
                out[w.name] = model.get_layer(parts[1]).weights[index]
            return out


# --- the plan ------------------------------------------------------------------------------------


@dataclasses.dataclass
class Plan:
    """Which dtype each weight gets, and what Keras measured with the dequantized weights."""

    budget: float
    weights: dict[str, str]
    keras_max_abs: float
    weights_bytes: int
    float16_bytes: int
    float32_bytes: int
    evaluations: int

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def _as_list(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


class Planner:
    """Measures a model's output error in Keras when some of its weights are quantized."""

    def __init__(self, model, inputs: list[np.ndarray], reference: list[np.ndarray]):
        from harness.pipeline import reference as ref

        self._predict = lambda: ref.predict(model, inputs)
        self._call = lambda: _as_list(model(inputs if len(inputs) > 1 else inputs[0], training=False))
        self.reference = reference
        self.variables = keras_variables(model)
        self.values = {name: np.asarray(v.numpy()) for name, v in self.variables.items()}
        self.evaluations = 0

    def outputs(self, dtypes: dict[str, str]) -> list[np.ndarray]:
        """The model's outputs with each weight dequantized from its dtype (missing: float32): what Keras
        computes with the weights TF.js holds after loading that quantized conversion."""
        self.evaluations += 1
        changed = {n: d for n, d in dtypes.items() if d != "float32" and self.values[n].dtype.kind == "f"}
        try:
            for name, dtype in changed.items():
                self.variables[name].assign(dequantized(self.values[name], dtype))
            return [np.asarray(o) for o in self._predict()]
        finally:
            for name in changed:
                self.variables[name].assign(self.values[name])

    def error(self, dtypes: dict[str, str]) -> float:
        """max_abs of the outputs with each weight dequantized from its dtype, against the float32 outputs."""
        return max_abs(self.outputs(dtypes), self.reference)

    def sixteen_bit(self, name: str) -> str:
        """uint16 or float16, whichever moves this weight less (float16 cannot hold values past 65504)."""
        w = self.values[name]
        if np.max(np.abs(w), initial=0.0) > 65504:
            return "uint16"
        err16 = np.max(np.abs(dequantized(w, "float16") - w), initial=0.0)
        erru = np.max(np.abs(dequantized(w, "uint16") - w), initial=0.0)
        return "float16" if err16 <= erru else "uint16"

    def sensitivity(self, dtypes: dict[str, str]) -> dict[str, float]:
        """Per weight, a first-order estimate of how much quantizing it to `dtypes[name]` moves the output:
        sum |d(s . y)/dw| * |dequantized(w) - w| for a fixed random sign pattern s over the outputs. One
        backward pass, where measuring each weight alone would take one prediction per weight."""
        import tensorflow as tf

        rng = np.random.default_rng(0)
        signs = [tf.constant(rng.choice([-1.0, 1.0], size=np.shape(r)), dtype=tf.float32) for r in self.reference]
        tensors = {n: getattr(v, "value", v) for n, v in self.variables.items() if n in dtypes}
        with tf.GradientTape() as tape:
            for t in tensors.values():
                tape.watch(t)
            outputs = self._call()
            loss = tf.add_n([tf.reduce_sum(tf.cast(o, tf.float32) * s) for o, s in zip(outputs, signs)])
        grads = tape.gradient(loss, list(tensors.values()))
        out = {}
        for (name, _), g in zip(tensors.items(), grads):
            w = self.values[name]
            moved = np.abs(dequantized(w, dtypes[name]) - w)
            out[name] = float(np.sum(np.abs(np.asarray(g)) * moved)) if g is not None else 0.0
        return out

    def plan(self, budget: float) -> Plan:
        """The smallest per-weight dtypes whose output error stays within `budget`.

        Weights are ranked by their estimated output damage (`sensitivity`) per byte quantizing them saves;
        the least damaging are kept at uint8 and the rest raised to 16 bits, with a binary search on how many
        stay at uint8 (a measured prediction per step). If 16 bits everywhere still exceeds the budget, the
        most damaging are raised to float32 the same way.
        """
        names = [n for n, v in self.values.items() if v.dtype.kind == "f" and v.size]
        shapes = {n: self.values[n].shape for n in self.values}
        wide = {n: self.sixteen_bit(n) for n in names}
        plan = self._lowest({n: "uint8" for n in names}, wide, budget, saved=3)
        if self.error(plan) > budget:
            plan = self._lowest(wide, {n: "float32" for n in names}, budget, saved=2)
        float16 = {n: "float16" if np.max(np.abs(self.values[n]), initial=0) <= 65504 else "float32" for n in names}
        return Plan(
            budget=budget,
            weights=plan,
            keras_max_abs=self.error(plan),
            weights_bytes=weight_bytes(shapes, plan),
            float16_bytes=weight_bytes(shapes, float16),
            float32_bytes=weight_bytes(shapes, {}),
            evaluations=self.evaluations,
        )

    def _lowest(self, low: dict, high: dict, budget: float, saved: int) -> dict:
        """Keep as many weights at `low` as the budget allows (the least damage per byte first), the rest
        at `high`. `saved`: bytes per element that `low` saves over float32 (to weigh the damage)."""
        damage = self.sensitivity(low)
        order = sorted(low, key=lambda n: damage[n] / (self.values[n].size * saved))

        def keeping(k):
            return {n: (low[n] if i < k else high[n]) for i, n in enumerate(order)}

        if self.error(keeping(len(order))) <= budget:
            return keeping(len(order))
        lo, hi = 0, len(order)  # error(keeping(lo)) within budget is assumed; keeping(hi) is not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.error(keeping(mid)) <= budget:
                lo = mid
            else:
                hi = mid
        return keeping(lo)


def float32_weights(path) -> dict[str, np.ndarray]:
    """Every weight a conversion of the model file writes, in float32, under the name TF.js loads it by (a
    lowering's transformed, renamed and derived weights included): what a quantized conversion encodes."""
    from converter.api import tfjs_weights

    return tfjs_weights(path)


def manifest_dtypes(directory: Path) -> dict[str, str]:
    """Each weight's dtype in a converted artifact's manifest: its quantization's, else float32."""
    model = json.loads((Path(directory) / "model.json").read_text())
    return {
        spec["name"]: (spec.get("quantization") or {}).get("dtype", "float32")
        for group in model["weightsManifest"]
        for spec in group["weights"]
    }


def max_abs(outputs, reference) -> float:
    """The largest |output - reference| over every output (inf where they are not finite alike)."""
    errors = [
        float(np.max(np.abs(np.asarray(o, np.float64) - np.asarray(r, np.float64))))
        for o, r in zip(outputs, reference)
        if np.size(r)
    ]
    worst = max(errors, default=0.0)
    return worst if np.isfinite(worst) else float("inf")


def decoded_artifact(directory: Path) -> dict[str, np.ndarray]:
    """Every model weight of a converted artifact (optimizer state left out) as TF.js decodes it on load
    (tfjs-core io_utils decodeWeight): float16 halves widened, uint8/uint16 codes as `code * scale + min`
    computed in double then stored float32."""
    directory = Path(directory)
    model = json.loads((directory / "model.json").read_text())
    sizes = {"float32": 4, "int32": 4, "float16": 2, "uint16": 2, "uint8": 1}
    out: dict[str, np.ndarray] = {}
    for group in model["weightsManifest"]:
        data = b"".join((directory / p).read_bytes() for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            q = spec.get("quantization") or {}
            dtype = q.get("dtype", spec["dtype"])
            n = int(np.prod(spec["shape"])) if spec["shape"] else 1
            raw = np.frombuffer(
                data,
                dtype={"float32": "<f4", "int32": "<i4", "float16": "<f2", "uint16": "<u2", "uint8": "u1"}[dtype],
                count=n,
                offset=offset,
            )
            offset += n * sizes[dtype]
            if dtype == "float16":
                value = raw.astype(np.float32)
            elif dtype in ("uint8", "uint16"):
                value = (raw.astype(np.float64) * q["scale"] + q["min"]).astype(np.float32)
            else:
                value = raw.copy()
            if spec.get("group") != "optimizer":
                out[spec["name"]] = value.reshape(spec["shape"])
    return out


def output_scale(reference: list[np.ndarray]) -> float:
    """The size of a model's outputs, max |y|, which quantized tolerances and budgets are fractions of."""
    return max((float(np.max(np.abs(r))) for r in reference if np.size(r)), default=0.0)


def _load(k, source, native):
    """The model in `source`; Keras 3.15 cannot load its own legacy .h5 of a model with op nodes taking a
    constant (`x + 3.0`: "Only input tensors may be passed as positional arguments"), so then the same
    model's native .keras file (same layers, same names, same weights)."""
    from harness.pipeline.reference import load_model

    try:
        return load_model(k, source)
    except ValueError:
        if native is None or Path(native) == Path(source):
            raise
        return load_model(k, native)


def cached_plan(prepared, source, budget: float) -> Plan:
    """The plan for the model file `source` of a prepared suite case at `budget`, computed once and kept in
    its cache entry. The model is loaded from the file, so the plan names its weights as the file does
    (a rebuilt model would number Keras's automatic layer names on from the last build)."""
    from harness.pipeline.reference import converter_hash, keras_module

    path = None
    if prepared.directory is not None:
        path = prepared.directory / f"plan-{budget:.6g}-{Path(source).suffix[1:]}-{converter_hash()}.json"
        if path.exists():
            return Plan(**json.loads(path.read_text()))
    model = _load(keras_module(prepared.flavour), source, prepared.files.get("keras"))
    plan = Planner(model, prepared.inputs, prepared.reference).plan(budget)
    if path is not None:
        write_atomic(path, json.dumps(plan.to_json()))
    return plan


# --- the reference a quantized conversion is certified against ------------------------------------


@dataclasses.dataclass
class DequantizedReference:
    """What Keras computes with the weights a quantized artifact holds once TF.js has decoded it."""

    outputs: list[np.ndarray]
    keras_max_abs: float  # against the float32 outputs: the cost of quantization, in Keras alone
    problem: str | None = None  # why these are not exactly the artifact's weights (then nothing is certified)


def _same_weights(planner: Planner, dtypes: dict[str, str], artifact: Path) -> str | None:
    """None when the float weights TF.js decodes from the artifact are exactly the values the Keras side was
    given, as a whole: the same non-zero values, bitwise (a lowering may rename a weight, add an axis to it or
    pad it with zeros; names can differ between a file and Keras's own re-save). A lowering that derives new
    weights from a stored one, or folds one into a layer's config, leaves no exact reference: said so."""
    decoded = [v for v in decoded_artifact(artifact).values() if v.dtype.kind == "f"]
    given = [dequantized(v, dtypes.get(name, "float32")) for name, v in planner.values.items() if v.dtype.kind == "f"]

    def nonzero(arrays):
        flat = np.concatenate([np.ravel(a).astype(np.float32) for a in arrays]) if arrays else np.zeros(0, np.float32)
        return np.sort(flat[flat != 0])

    if np.array_equal(nonzero(decoded), nonzero(given), equal_nan=True):
        return None
    return (
        "the artifact's weights are not the dequantized weights of the Keras model (a lowering derived weights "
        "from a stored one or folded one into a layer's config)"
    )


def dequantized_reference(prepared, source: Path, form: str, plan: dict | None, artifact: Path) -> DequantizedReference:
    """Keras's outputs with every weight dequantized as `form` (float16, uint16, uint8) or as `plan` says, for
    the model file `source` of a prepared case, checked against the `artifact` converted from it; computed once
    and kept in the case's cache entry (its key follows the converter's source)."""
    import hashlib

    from harness.files import save_npz_atomic
    from harness.pipeline.reference import converter_hash, keras_module

    key = hashlib.sha256(json.dumps([form, sorted((plan or {}).items()), converter_hash()]).encode()).hexdigest()[:16]
    path = None
    if prepared.directory is not None:
        path = prepared.directory / f"dequantized-{Path(source).suffix[1:]}-{form}-{key}.npz"
        if path.exists():
            data = np.load(path)
            n = int(data["n"])
            problem = str(data["problem"]) or None
            return DequantizedReference([data[f"y{i}"] for i in range(n)], float(data["keras_max_abs"]), problem)
    model = _load(keras_module(prepared.flavour), source, prepared.files.get("keras"))
    planner = Planner(model, prepared.inputs, prepared.reference)
    dtypes = dict(plan or {}) if form == "plan" else {n: form for n in planner.values}
    outputs = planner.outputs(dtypes)
    result = DequantizedReference(
        outputs, max_abs(outputs, prepared.reference), _same_weights(planner, dtypes, artifact)
    )
    if path is not None:
        arrays = {f"y{i}": y for i, y in enumerate(outputs)}
        arrays |= {"n": np.asarray(len(outputs)), "keras_max_abs": np.asarray(result.keras_max_abs)}
        save_npz_atomic(path, arrays | {"problem": np.asarray(result.problem or "")})
    return result
