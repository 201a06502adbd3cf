"""Random crops from a folder of the user's images (PNG, TIFF, NPY)."""

import contextlib
import os

import numpy as np

from coordgate_keras.data import _images
from coordgate_keras.utils import argument_validation as av

EXTENSIONS = (".png", ".tif", ".tiff", ".npy")
_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, as PIL's "L" mode


def _read(path, name="directory"):
    """Reads one image as a NumPy array (raw dtype, 2D or 3D)."""
    with _file_errors(path, name):
        if path.lower().endswith(".npy"):
            return np.load(path, allow_pickle=False)
        from PIL import Image

        with Image.open(path) as image:
            modes = ("1", "P", "LA", "PA", "CMYK", "YCbCr", "HSV", "LAB", "RGBa")
            if image.mode in modes:
                image = image.convert("RGBA" if "A" in image.mode else "RGB")
            array = np.asarray(image)
            if image.mode.startswith("I") and array.dtype == np.int32:
                # 16-bit images opened as 32-bit integers: keep 16-bit scaling.
                if array.min() >= 0 and array.max() <= 65535:
                    array = array.astype(np.uint16)
    return array


def _size(path):
    """`(height, width)` from the file's header, after checking the file is whole.

    PNG and TIFF files are verified (`PIL.Image.verify`: chunk checksums and
    length, no decoding); `.npy` headers are checked against the file size.
    """
    with _file_errors(path):
        if path.lower().endswith(".npy"):
            array = np.load(path, mmap_mode="r", allow_pickle=False)
            if array.ndim < 2:
                return (0, 0)
            return tuple(array.shape[:2])
        from PIL import Image

        with Image.open(path) as image:
            width, height = image.size
            image.verify()
        return height, width


@contextlib.contextmanager
def _file_errors(path, name="directory"):
    """Turns a decoder's complaint into an error that names the file."""
    try:
        yield
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise av.invalid_value(
            None,
            name,
            "readable image files",
            f"{path!r}, which could not be read (truncated or corrupt?): "
            f"{type(error).__name__}: {error}",
        ) from None


class ImageFolder:
    """Grayscale or RGB random crops from a folder of PNG / TIFF / NPY images.

    Files are found by extension (`.png`, `.tif`, `.tiff`, `.npy`, any case) and
    sorted by path. Each image becomes float32 in `[0, 1]`: integer images are
    divided by their dtype's maximum (255 for 8-bit, 65535 for 16-bit); float
    images must already lie in `[0, 1]` unless `normalization="minmax"`, which
    rescales every image to span `[0, 1]`. RGB(A) images are converted to
    grayscale with BT.601 luma weights (alpha dropped); grayscale images are
    repeated to 3 channels for `color_mode="rgb"`.

    Crop `i` with seed `s` is drawn from `numpy.random.default_rng((s, i))`: a
    file chosen uniformly, then a uniformly placed window, so crops are
    reproducible and independent of iteration order.

    Args:
        directory: str or path-like. Folder holding the images.
        crop_shape: tuple `(height, width)`. Crop size; every image must be at
            least this large. Defaults to `(256, 256)`.
        color_mode: str. `"grayscale"` (1 channel, default) or `"rgb"`.
        normalization: str. `"dtype"` (default) or `"minmax"`.
        recursive: bool. Also search sub-folders. Defaults to `False`.
        cache: bool. Keep decoded images in memory after first use. Defaults
            to `True`.

    Example:

    >>> import os, tempfile
    >>> import numpy as np
    >>> from coordgate_keras.data import ImageFolder
    >>> folder = tempfile.mkdtemp()
    >>> np.save(os.path.join(folder, "a.npy"), np.random.rand(64, 80))
    >>> crops = ImageFolder(folder, crop_shape=(32, 32)).crops(4, seed=0)
    >>> crops.shape
    (4, 32, 32, 1)
    """

    def __init__(
        self,
        directory,
        crop_shape=(256, 256),
        color_mode="grayscale",
        normalization="dtype",
        recursive=False,
        cache=True,
    ):
        directory = os.fspath(directory)
        if not os.path.isdir(directory):
            raise av.invalid_value(directory, "directory", "an existing folder")
        self.crop_shape = av.shape(crop_shape, "crop_shape", rank=2)
        self.color_mode = av.choice(color_mode, "color_mode", ("grayscale", "rgb"))
        self.normalization = av.choice(
            normalization, "normalization", ("dtype", "minmax")
        )
        self.directory = directory
        self.cache = av.boolean(cache, "cache")
        if recursive:
            walk = (
                os.path.join(root, name)
                for root, _, names in os.walk(directory)
                for name in names
            )
        else:
            walk = (os.path.join(directory, name) for name in os.listdir(directory))
        self.files = sorted(
            path
            for path in walk
            if path.lower().endswith(EXTENSIONS) and os.path.isfile(path)
        )
        if not self.files:
            raise av.invalid_value(
                None,
                "directory",
                f"a folder containing images with extensions {EXTENSIONS}",
                f"directory={directory!r} with no such files",
            )
        # Every file is checked now (headers and checksums, no decoding), so a
        # broken file is reported here rather than deep inside a tf.data map.
        for path in self.files:
            height, width = _size(path)
            if height < self.crop_shape[0] or width < self.crop_shape[1]:
                raise av.invalid_value(
                    self.crop_shape,
                    "crop_shape",
                    f"a crop no larger than every image ({path!r} has height and "
                    f"width {(height, width)})",
                )
        self._cache = {}

    @property
    def num_channels(self):
        return 1 if self.color_mode == "grayscale" else 3

    def __len__(self):
        return len(self.files)

    def __repr__(self):
        return (
            f"ImageFolder(directory={self.directory!r}, files={len(self.files)}, "
            f"crop_shape={self.crop_shape}, color_mode={self.color_mode!r})"
        )

    def load(self, index):
        """Image `index` (in `files` order), float32 `(H, W, channels)` in [0, 1]."""
        if index in self._cache:
            return self._cache[index]
        path = self.files[index]
        raw = _read(path)
        if raw.ndim == 3 and raw.shape[-1] == 1:
            raw = raw[..., 0]
        if raw.ndim not in (2, 3) or (raw.ndim == 3 and raw.shape[-1] not in (3, 4)):
            raise av.invalid_value(
                None,
                "directory",
                "images of shape (height, width) or (height, width, 1|3|4)",
                f"{path!r} with shape {raw.shape}",
            )
        image = _images.to_unit_range(raw, path)
        if image.ndim == 3:
            image = image[..., :3]
            if self.color_mode == "grayscale":
                image = image @ _LUMA
        if self.normalization == "minmax":
            low, high = image.min(), image.max()
            image = (image - low) / (high - low) if high > low else np.zeros_like(image)
        elif image.min() < 0 or image.max() > 1:
            raise av.invalid_value(
                None,
                "directory",
                "float images with values in [0, 1] (or pass `normalization='minmax'`)",
                f"{path!r} with values in [{image.min():.6g}, {image.max():.6g}]",
            )
        if image.ndim == 2:
            image = np.repeat(image[..., None], self.num_channels, axis=-1)
        if image.shape[0] < self.crop_shape[0] or image.shape[1] < self.crop_shape[1]:
            raise av.invalid_value(
                None,
                "crop_shape",
                f"a crop no larger than every image ({path!r} has height and "
                f"width {image.shape[:2]})",
                f"crop_shape={self.crop_shape}",
            )
        image = image.astype(np.float32)
        if self.cache:
            self._cache[index] = image
        return image

    def crop(self, index, seed=0):
        """Crop number `index`, float32 `(crop_h, crop_w, channels)` in [0, 1].

        Args:
            index: int. Crop number (any non-negative integer).
            seed: int. Base seed. Defaults to 0.

        Returns:
            A float32 array.
        """
        rng = np.random.default_rng((int(seed), int(index)))
        image = self.load(int(rng.integers(len(self.files))))
        (ch, cw), (h, w) = self.crop_shape, image.shape[:2]
        top, left = rng.integers(h - ch + 1), rng.integers(w - cw + 1)
        return image[top : top + ch, left : left + cw]

    def crops(self, num_crops, seed=0):
        """Crops `0 .. num_crops - 1`, float32 `(num_crops, crop_h, crop_w, C)`."""
        num_crops = av.positive_int(num_crops, "num_crops")
        seed = av.seed(seed, "seed")
        return np.stack([self.crop(i, seed) for i in range(num_crops)])
