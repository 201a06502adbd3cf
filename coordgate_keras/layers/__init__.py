"""Keras layers for spatially-varying convolution, written on `keras.ops`."""

from coordgate_keras.layers.add_coords import AddCoords
from coordgate_keras.layers.coord_conv1d import CoordConv1D
from coordgate_keras.layers.coord_conv2d import CoordConv2D
from coordgate_keras.layers.coord_conv3d import CoordConv3D
from coordgate_keras.layers.coord_gate import CoordGate

__all__ = ["AddCoords", "CoordConv1D", "CoordConv2D", "CoordConv3D", "CoordGate"]
