"""Where a browser call can fail: the stage a `RunnerError` names.

Loading a model goes through `fetch` (model.json and shards over HTTP), `script` (the scripts the model needs
before TF.js can build it: the companion module its metadata names, the user's ported layers), `parse` (the
topology) and `weights` (matching and decoding the weights). Every later call has its own stage, so that a known
failure of one (a kernel missing in `train`) is never taken for a failure of another (a crash in `predict`). The
last group are failures of the browser or of the session, not of TF.js.
"""

LOAD = ("fetch", "script", "parse", "weights")
CALLS = (
    "predict",
    "layer_outputs",
    "time_predict",
    "read_weights",
    "dequant_check",
    "training_info",
    "evaluate",
    "train",
)
TFJS = LOAD + CALLS  # TF.js (or the page's own code around it) threw
BROWSER = ("backend", "timeout", "crash", "lost")  # the backend did not start, the page hung or died, a model was lost
ALL = TFJS + BROWSER
