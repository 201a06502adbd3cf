"""coordgate-keras: Keras 3 layers and models for spatially-varying convolution.

Importing the package registers every layer with Keras' serialization, so
`keras.saving.load_model` can read saved models that use them.
"""

from coordgate_keras import layers
from coordgate_keras.layers import (
    AddCoords,
    CoordConv1D,
    CoordConv2D,
    CoordConv3D,
    CoordGate,
)

__version__ = "0.1.0"

__all__ = [
    "AddCoords",
    "CoordConv1D",
    "CoordConv2D",
    "CoordConv3D",
    "CoordGate",
    "__version__",
    "layers",
]
