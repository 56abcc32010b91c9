"""Keras 2 and Keras 3 models to the TF.js Layers format, with h5py and numpy only.

    from converter import convert
    result = convert("model.h5", "out/")       # model.json + group1-shard*of*.bin

Reading a file never runs code from it; a model TF.js 4.22 cannot run as Keras does is refused with
every problem listed (`UnsupportedModelError`) before anything is written.
"""

from converter.api import Analysis, ConversionResult, check, convert, save_keras_model
from converter.errors import ConversionError, UnsupportedModelError

__all__ = [
    "Analysis",
    "ConversionError",
    "ConversionResult",
    "UnsupportedModelError",
    "check",
    "convert",
    "save_keras_model",
]
