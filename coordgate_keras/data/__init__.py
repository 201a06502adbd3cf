"""Spatially-varying blur simulation and deblurring datasets.

PSF models (`gaussian_psf_field`, `zernike_psf_field`, or measured PSFs in a
`PSFField`), the blur operator (`blur_exact`, `blur_fast`, `blur_fast_tf`),
noise (`NoiseModel`), blur then noise then clip in one call (`degrade`), sharp
images (`microscopy_scene`, `ImageFolder`), and `tf.data` pipelines of
(blurred, sharp) pairs (`deblur_dataset`, `write_deblur_dataset` /
`load_deblur_dataset`, and the 1D task `varying_blur_1d_dataset`).

Example:

>>> from coordgate_keras import data
>>> field = data.gaussian_psf_field(grid_shape=(8, 8), kernel_size=15)
>>> sharp = data.microscopy_scenes(4, image_shape=(128, 128), seed=0)
>>> blurred = data.blur_fast(sharp, field)
>>> ds = data.deblur_dataset(field, image_shape=(128, 128), batch_size=4)
"""

from coordgate_keras.data.bead_report import BeadReport
from coordgate_keras.data.blur import blur_exact, blur_fast, blur_fast_tf
from coordgate_keras.data.datasets import (
    deblur_dataset,
    load_deblur_dataset,
    write_deblur_dataset,
)
from coordgate_keras.data.degrade import degrade
from coordgate_keras.data.image_folder import ImageFolder
from coordgate_keras.data.image_io import image_files, read_image, write_image
from coordgate_keras.data.noise_model import NoiseModel
from coordgate_keras.data.psf_field import PSFField
from coordgate_keras.data.psfs import (
    ZERNIKE_MODES,
    field_coordinates,
    gaussian_psf,
    gaussian_psf_field,
    zernike,
    zernike_psf,
    zernike_psf_field,
)
from coordgate_keras.data.scenes import microscopy_scene, microscopy_scenes
from coordgate_keras.data.signals_1d import (
    random_signals_1d,
    varying_blur_1d,
    varying_blur_1d_dataset,
    varying_blur_1d_matrix,
)

__all__ = [
    "BeadReport",
    "ImageFolder",
    "NoiseModel",
    "PSFField",
    "ZERNIKE_MODES",
    "blur_exact",
    "blur_fast",
    "blur_fast_tf",
    "deblur_dataset",
    "degrade",
    "field_coordinates",
    "gaussian_psf",
    "gaussian_psf_field",
    "image_files",
    "load_deblur_dataset",
    "microscopy_scene",
    "microscopy_scenes",
    "random_signals_1d",
    "read_image",
    "varying_blur_1d",
    "varying_blur_1d_dataset",
    "varying_blur_1d_matrix",
    "write_deblur_dataset",
    "write_image",
    "zernike",
    "zernike_psf",
    "zernike_psf_field",
]
