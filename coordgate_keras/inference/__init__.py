"""Deblurring frames with a trained model, on Keras, LiteRT or ONNX Runtime.

`deblur(model, frames)` takes a `keras.Model`, a registered model name with its
weights, or a `.keras`, `.tflite` or `.onnx` file. One-input models run whole
frames of their size; frame models (inputs `image` and `origin`) run tile by
tile with the receptive field covered, so the result equals the whole frame's.
`deblur_files` does the same for image files (PNG, TIFF, NPY), writing each
result atomically in its input's format and dtype: the `coordgate-keras deblur`
command.

Example:

>>> import numpy as np
>>> from coordgate_keras.inference import deblur
>>> sharp = deblur("coordgate_unet_d2", np.zeros((256, 256), np.float32),
...                weights="zernike_256")  # doctest: +SKIP
"""

from coordgate_keras.inference.deblur import deblur, tile_grid
from coordgate_keras.inference.files import deblur_files
from coordgate_keras.zoo.receptive_field import receptive_field

__all__ = ["deblur", "deblur_files", "receptive_field", "tile_grid"]
