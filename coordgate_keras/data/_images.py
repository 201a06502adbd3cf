"""The one rule of `coordgate_keras.data` for image arrays (machinery).

Images are floating-point intensities in `[0, 1]`, finite. Integer and boolean
arrays are refused rather than guessed at (is 255 white, or 255 photons?):
scale them first, e.g. `x / 255` for 8-bit images. `ImageFolder` does that
scaling for files, where the dtype says what the maximum is.
"""

import numpy as np

from coordgate_keras.utils import argument_validation as av

IMAGE_RANGE = (0.0, 1.0)


def check_images(images, name="images"):
    """Returns `images` as a NumPy array if it follows the rule, else raises.

    Args:
        images: array-like.
        name: str. The argument name used in error messages.
    """
    return av.float_array(images, name, value_range=IMAGE_RANGE)


def image_layout(shape, name="images"):
    """`(height, width)` of an images shape `(H, W)`, `(H, W, C)` or
    `(B, H, W, C)`, else raises."""
    shape = av.array_rank(
        shape,
        name,
        (2, 3, 4),
        "an array of shape (height, width), (height, width, channels) or "
        "(batch, height, width, channels)",
    )
    return shape[:2] if len(shape) < 4 else shape[1:3]


def to_unit_range(raw, path, name="directory"):
    """A decoded image's intensities as float64: integers divided by their
    dtype's maximum (255 for 8-bit, 65535 for 16-bit), booleans as 0 or 1,
    floats unchanged; non-finite values refused. `path` and `name` go into
    the error message."""
    if raw.dtype == np.bool_:
        raw = raw.astype(np.uint8) * 255
    if np.issubdtype(raw.dtype, np.integer):
        image = raw.astype(np.float64) / np.iinfo(raw.dtype).max
    elif np.issubdtype(raw.dtype, np.floating):
        image = raw.astype(np.float64)
    else:
        raise av.invalid_value(
            None, name, "integer or float images", f"{path!r} with dtype {raw.dtype}"
        )
    if not np.all(np.isfinite(image)):
        raise av.invalid_value(
            None,
            name,
            "images with finite values (no NaN or infinity)",
            f"{path!r} with {np.size(image) - np.isfinite(image).sum()} "
            "non-finite value(s)",
        )
    return image


def from_unit_range(image, dtype):
    """The inverse of `to_unit_range` for a result in `[0, 1]`: clipped to it,
    then integers scaled by their dtype's maximum and rounded, booleans
    thresholded at 0.5, floats cast."""
    dtype = np.dtype(dtype)
    image = np.clip(image, 0.0, 1.0)
    if dtype == np.bool_:
        return image >= 0.5
    if np.issubdtype(dtype, np.integer):
        top = np.iinfo(dtype).max
        return np.rint(image.astype(np.float64) * top).astype(dtype)
    return image.astype(dtype)
