"""One image in, one image out: PNG, TIFF and NPY at their own bit depth.

`read_image` decodes a file as `ImageFolder` does (the same reader and the same
scaling: integers divided by their dtype's maximum) but keeps its channels and
returns its dtype; `write_image` writes a result in `[0, 1]` back in a file's
format and dtype (clipped, integers scaled by the dtype's maximum and rounded),
atomically.

What Pillow writes, so what round-trips: PNG 8-bit grayscale, RGB and RGBA and
16-bit grayscale; TIFF the same plus 32-bit float grayscale. NPY holds any
real dtype and shape `(H, W)` or `(H, W, C)`. 16-bit colour TIFFs cannot be
read (Pillow does not decode them).
"""

import os

import numpy as np

from coordgate_keras.data import _images
from coordgate_keras.data.image_folder import EXTENSIONS, _read
from coordgate_keras.utils import argument_validation as av
from coordgate_keras.utils import atomic_io

# Pillow's mode for each (dtype, channels) it writes losslessly.
_PIL_MODES = {
    ("uint8", 1): "L",
    ("uint8", 3): "RGB",
    ("uint8", 4): "RGBA",
    ("uint16", 1): "I;16",
    ("float32", 1): "F",
}
_FORMATS = {".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".npy": None}


def read_image(path):
    """Reads an image file as float32 intensities in `[0, 1]`.

    Args:
        path: str or path-like. A `.png`, `.tif`/`.tiff` or `.npy` file.

    Returns:
        `(image, dtype)`: float32 of shape `(H, W)` or `(H, W, C)` (C = 1, 3
        or 4, as stored; an alpha channel is kept) and the file's NumPy dtype,
        which `write_image` writes back.

    Raises:
        ValueError: the file cannot be read (truncated, corrupt, not an
            image), has another shape, non-finite values, or float values
            outside `[0, 1]`; the message names the file and the reason.

    Example:

    >>> import os, tempfile
    >>> import numpy as np
    >>> from coordgate_keras.data import read_image
    >>> path = os.path.join(tempfile.mkdtemp(), "a.npy")
    >>> np.save(path, np.array([[0, 65535]], np.uint16))
    >>> read_image(path)
    (array([[0., 1.]], dtype=float32), dtype('uint16'))
    """
    path = _check_extension(path)
    raw = _read(path, "path")
    if raw.ndim not in (2, 3) or (raw.ndim == 3 and raw.shape[-1] not in (1, 3, 4)):
        raise av.invalid_value(
            None,
            "path",
            "an image of shape (height, width) or (height, width, 1|3|4)",
            f"{path!r} with shape {raw.shape}",
        )
    if 0 in raw.shape:
        raise av.invalid_value(
            None, "path", "a non-empty image", f"{path!r} with shape {raw.shape}"
        )
    image = _images.to_unit_range(raw, path, "path")
    if image.min() < 0 or image.max() > 1:
        raise av.invalid_value(
            None,
            "path",
            "float images with values in [0, 1] (integer images are scaled by "
            "their dtype's maximum)",
            f"{path!r} with values in [{image.min():.6g}, {image.max():.6g}]",
        )
    return image.astype(np.float32), raw.dtype


def write_image(path, image, dtype, overwrite=False):
    """Writes intensities in `[0, 1]` as an image file of `dtype`, atomically.

    The values are clipped to `[0, 1]`; integer dtypes are scaled by their
    maximum and rounded, floats cast. The format follows the extension. The
    file appears whole or not at all (a temporary beside it is renamed into
    place; an exception or Ctrl-C removes it).

    Args:
        path: str or path-like. Destination `.png`, `.tif`/`.tiff` or `.npy`.
        image: float array `(H, W)` or `(H, W, C)`.
        dtype: the dtype to write, usually the one `read_image` returned.
        overwrite: bool. Replace an existing file.

    Returns:
        `path` as a string.

    Raises:
        FileExistsError: `path` exists and `overwrite` is False.
        ValueError: the format cannot hold this dtype and shape.
    """
    path = _check_extension(path)
    image = np.asarray(image)
    dtype = np.dtype(dtype)
    atomic_io.check_destination(path, overwrite)
    pixels = _images.from_unit_range(image, dtype)
    file_format = _FORMATS[os.path.splitext(path)[1].lower()]
    if file_format is None:
        atomic_io.atomic_write(
            path, lambda f: np.save(f, pixels, allow_pickle=False), overwrite
        )
        return path
    from PIL import Image

    channels = 1 if pixels.ndim == 2 else pixels.shape[-1]
    mode = _PIL_MODES.get((dtype.name, channels))
    if mode is None or (mode == "F" and file_format != "TIFF"):
        raise av.invalid_value(
            None,
            "dtype",
            "a dtype and channel count the format holds (PNG: uint8 with 1, 3 or "
            "4 channels, uint16 grayscale; TIFF: also float32 grayscale); "
            "use .npy for others",
            f"dtype={dtype.name} with {channels} channel(s) for {path!r}",
        )
    if pixels.ndim == 3 and channels == 1:
        pixels = pixels[..., 0]
    # Pillow infers the mode of the table from the dtype and shape.
    picture = Image.fromarray(np.ascontiguousarray(pixels))
    with atomic_io.atomic_file(path, overwrite=overwrite) as tmp:
        picture.save(tmp, format=file_format)
    return path


def image_files(paths):
    """The image files named by `paths`: files as given, folders expanded to
    their `.png`/`.tif`/`.tiff`/`.npy` files (sorted, not recursive)."""
    files = []
    for path in paths:
        path = os.fspath(path)
        if os.path.isdir(path):
            files.extend(
                sorted(
                    os.path.join(path, name)
                    for name in os.listdir(path)
                    if name.lower().endswith(EXTENSIONS)
                    and os.path.isfile(os.path.join(path, name))
                )
            )
        else:
            files.append(path)
    return files


def _check_extension(path):
    path = os.fspath(path)
    if not path.lower().endswith(EXTENSIONS):
        raise av.invalid_value(
            path, "path", f"a file name ending in one of {EXTENSIONS} (any case)"
        )
    return path
