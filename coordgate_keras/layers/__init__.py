"""Keras layers for spatially-varying convolution, written on `keras.ops`.

Every serializable class of the package is here, so importing
`coordgate_keras` (which imports this) is enough for `keras.saving.load_model`.
"""

from coordgate_keras.layers.add_coords import AddCoords
from coordgate_keras.layers.coord_conv1d import CoordConv1D
from coordgate_keras.layers.coord_conv2d import CoordConv2D
from coordgate_keras.layers.coord_conv3d import CoordConv3D
from coordgate_keras.layers.coord_gate import CoordGate
from coordgate_keras.layers.downscale_origin import DownscaleOrigin
from coordgate_keras.layers.frame_window import FrameWindow
from coordgate_keras.layers.locally_connected1d import LocallyConnected1D
from coordgate_keras.layers.locally_connected2d import LocallyConnected2D
from coordgate_keras.layers.multi_wiener_deconvolution import (
    MultiWienerDeconvolution,
    gaussian_psfs,
)
from coordgate_keras.layers.spatial_size_check import SpatialSizeCheck

__all__ = [
    "AddCoords",
    "CoordConv1D",
    "CoordConv2D",
    "CoordConv3D",
    "CoordGate",
    "DownscaleOrigin",
    "FrameWindow",
    "LocallyConnected1D",
    "LocallyConnected2D",
    "MultiWienerDeconvolution",
    "SpatialSizeCheck",
    "gaussian_psfs",
]
