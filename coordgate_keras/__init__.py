"""coordgate-keras: Keras 3 layers and models for spatially-varying convolution.

Importing the package registers every serializable class with Keras (all of
them live in `coordgate_keras.layers`), so `keras.saving.load_model` can read
any model saved from this package. The other subpackages load on first use,
so `import coordgate_keras` does not import LiteRT or the data pipelines:

>>> import coordgate_keras
>>> coordgate_keras.zoo.list_models("unet_d1")
['unet_d1']
"""

import importlib

from coordgate_keras._version import __version__
from coordgate_keras.utils import native_logs

# TensorFlow prints its start-up chatter when Keras imports it (TF backend).
with native_logs.filtered_stderr():
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as _tf

        # Initialises the CUDA platform now, inside the filter: on a CPU-only
        # machine that prints a `failed call to cuInit` error line.
        _tf.config.list_physical_devices("GPU")
        del _tf

from coordgate_keras import layers  # noqa: E402
from coordgate_keras.layers import (  # noqa: E402
    AddCoords,
    CoordConv1D,
    CoordConv2D,
    CoordConv3D,
    CoordGate,
)

_SUBPACKAGES = ("data", "inference", "testing", "tflite", "training", "utils", "zoo")

__all__ = [
    "AddCoords",
    "CoordConv1D",
    "CoordConv2D",
    "CoordConv3D",
    "CoordGate",
    "__version__",
    "data",
    "layers",
    "testing",
    "tflite",
    "training",
    "utils",
    "zoo",
]


def __getattr__(name):
    # PEP 562: `coordgate_keras.tflite` works after `import coordgate_keras`
    # without importing TensorFlow Lite until it is used.
    if name in _SUBPACKAGES:
        return importlib.import_module(f"coordgate_keras.{name}")
    raise AttributeError(f"module 'coordgate_keras' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBPACKAGES))
