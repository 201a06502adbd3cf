"""The one rule of `coordgate_keras.data` for image arrays (machinery).

Images are floating-point intensities in `[0, 1]`, finite. Integer and boolean
arrays are refused rather than guessed at (is 255 white, or 255 photons?):
scale them first, e.g. `x / 255` for 8-bit images. `ImageFolder` does that
scaling for files, where the dtype says what the maximum is.
"""

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
