"""`tf.data` pipelines of (blurred, sharp) image pairs for deblurring.

Element `i` of a dataset with seed `s` is a pure function of `(s, i)`: the sharp
image comes from `microscopy_scene(seed=(s, i))`, `ImageFolder.crop(i, s)` or
`images[i]` (NumPy, mapped in parallel); each batch is blurred in-graph with
`blur_fast_tf` (TensorFlow FFTs, so the blur can also run on GPU); noise is
drawn with stateless ops seeded by `(s, i)`; and the blurred image is clipped
to `[0, 1]`. Shuffling permutes the indices, so the same seed gives the same
data in the same order, and the on-the-fly and on-disk datasets hold the same
pairs (up to float32 round-off).
"""

import functools
import json
import os

import numpy as np

from coordgate_keras.data import _product_convolution
from coordgate_keras.data._images import check_images
from coordgate_keras.data.blur import blur_fast_tf
from coordgate_keras.data.image_folder import ImageFolder
from coordgate_keras.data.noise_model import NoiseModel
from coordgate_keras.data.psf_field import check_psf_field
from coordgate_keras.data.scenes import microscopy_scene
from coordgate_keras.utils import argument_validation as av
from coordgate_keras.utils import atomic_io

_METADATA = "metadata.json"
_DEFAULT_NUM_IMAGES = 1024
_MAX_SHUFFLE_BUFFER = 65536


def _noise_model(noise):
    if noise is None or isinstance(noise, NoiseModel):
        return noise
    if noise == "poisson_gaussian":
        return NoiseModel()
    raise av.invalid_value(
        noise,
        "noise",
        "'poisson_gaussian', a `NoiseModel` or None",
    )


def _sharp_source(images, image_shape, num_images, seed):
    """Returns `(sharp_fn(index) -> (H, W, C) float32, (H, W, C), num_images)`."""
    if num_images is not None:
        num_images = av.positive_int(num_images, "num_images")
    if images is None:
        image_shape = av.shape(image_shape or (256, 256), "image_shape", rank=2)

        def sharp_fn(index):
            return microscopy_scene(image_shape, seed=(seed, index))[..., None]

        return sharp_fn, image_shape + (1,), num_images or _DEFAULT_NUM_IMAGES
    if isinstance(images, ImageFolder):
        if image_shape is not None and tuple(image_shape) != images.crop_shape:
            raise av.invalid_value(
                image_shape,
                "image_shape",
                f"None or the folder's crop_shape {images.crop_shape}",
            )

        def sharp_fn(index):
            return images.crop(index, seed)

        shape = images.crop_shape + (images.num_channels,)
        return sharp_fn, shape, num_images or _DEFAULT_NUM_IMAGES
    if isinstance(images, np.ndarray):
        if images.ndim == 3:
            images = images[..., None]
        av.array_rank(
            images.shape,
            "images",
            (4,),
            "a stack of shape (num_images, height, width[, channels])",
        )
        check_images(images)
        if image_shape is not None and tuple(image_shape) != images.shape[1:3]:
            raise av.invalid_value(
                image_shape,
                "image_shape",
                f"None or the images' height and width {images.shape[1:3]}",
            )
        if num_images is not None and num_images != len(images):
            raise av.invalid_value(
                num_images, "num_images", f"None or len(images) = {len(images)}"
            )
        stack = images.astype(np.float32)

        def sharp_fn(index):
            return stack[index]

        return sharp_fn, stack.shape[1:], len(stack)
    raise av.invalid_value(
        images,
        "images",
        "None (procedural scenes), an `ImageFolder` or a NumPy array",
        f"images of type {type(images).__name__}",
    )


class _Pipeline:
    """Validated arguments shared by the on-the-fly and on-disk datasets."""

    def __init__(self, psf_field, images, image_shape, num_images, noise, seed, rank):
        check_psf_field(psf_field)
        self.seed = av.seed(seed, "seed") or 0
        self.noise = _noise_model(noise)
        self.sharp_fn, self.shape, self.num_images = _sharp_source(
            images, image_shape, num_images, self.seed
        )
        psf_field.check_image_shape(self.shape[:2], name="image_shape")
        # Validates `rank` now rather than when tf.data traces the map.
        _product_convolution.cached_plan(psf_field, self.shape[:2], rank)
        self.psf_field = psf_field
        self.rank = rank

    def batches(self, indices, batch_size, drop_remainder=False):
        """Maps a dataset of indices to batches `(indices, blurred, sharp)`.

        Sharp images are made per element (NumPy, parallel); blur and noise run
        per batch in TensorFlow ops (batched FFTs are faster per image, most
        for small images).
        """
        import tensorflow as tf

        def load(index):
            sharp = tf.numpy_function(
                lambda i: self.sharp_fn(int(i)), [index], tf.float32, stateful=False
            )
            return index, tf.ensure_shape(sharp, self.shape)

        def blur(index, sharp):
            blurred = blur_fast_tf(sharp, self.psf_field, rank=self.rank)
            if self.noise is not None:
                seeds = tf.stack(
                    [tf.fill(tf.shape(index), tf.constant(self.seed, tf.int64)), index],
                    axis=1,
                )
                blurred = tf.map_fn(
                    lambda args: self.noise.apply_tf(*args),
                    (blurred, seeds),
                    fn_output_signature=tf.float32,
                )
            return index, tf.clip_by_value(blurred, 0.0, 1.0), sharp

        dataset = indices.map(
            load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
        return dataset.map(
            blur, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )


def deblur_dataset(
    psf_field,
    image_shape=None,
    num_images=None,
    batch_size=16,
    images=None,
    noise="poisson_gaussian",
    seed=0,
    shuffle=True,
    rank=None,
    drop_remainder=False,
):
    """A `tf.data.Dataset` of `(blurred, sharp)` batches, generated on the fly.

    Each element is made from its index (see the module docstring): sharp
    image, in-graph product-convolution blur by `psf_field`, noise, clipping
    to `[0, 1]`. Elements are mapped in parallel (deterministic order),
    batched and prefetched. Iterating again reshuffles but regenerates the same
    pairs (noise included).

    Args:
        psf_field: `PSFField`.
        image_shape: optional tuple `(height, width)`. Size of the procedural
            scenes (`None` means `(256, 256)`); with `images` given, `None`
            or the size of `images`. Defaults to `None`.
        num_images: optional int. Images per epoch; defaults to 1024, or
            `len(images)` for an array.
        batch_size: int. Defaults to 16.
        images: sharp-image source: `None` (procedural microscopy scenes,
            default), an `ImageFolder` (random crops), or a float array
            `(num_images, H, W[, C])` in `[0, 1]` (integer arrays are refused:
            scale them, e.g. `x / 255`).
        noise: `"poisson_gaussian"` (a default `NoiseModel`, default), a
            `NoiseModel`, or `None` for no noise.
        seed: int. Seeds images, noise and shuffling. Defaults to 0.
        shuffle: bool. Shuffle the order every epoch (a full permutation for
            up to 65536 images, a 65536-element shuffle buffer beyond).
            Defaults to `True`.
        rank: optional int. Low-rank SVD blur (see `blur_fast`); faster,
            approximate. Defaults to `None` (exact operator).
        drop_remainder: bool. Drop the last incomplete batch. Defaults to
            `False`.

    Returns:
        A `tf.data.Dataset` yielding `(blurred, sharp)`, both float32
        `(batch, H, W, C)` in `[0, 1]`, channels_last.

    Example:

    >>> from coordgate_keras import data
    >>> field = data.gaussian_psf_field(grid_shape=(4, 4), kernel_size=9)
    >>> ds = data.deblur_dataset(field, image_shape=(64, 64), num_images=8,
    ...                          batch_size=4)
    >>> [tuple(t.shape) for t in next(iter(ds))]
    [(4, 64, 64, 1), (4, 64, 64, 1)]
    """
    import tensorflow as tf

    batch_size = av.positive_int(batch_size, "batch_size")
    pipeline = _Pipeline(psf_field, images, image_shape, num_images, noise, seed, rank)
    num_images, seed = pipeline.num_images, pipeline.seed
    indices = tf.data.Dataset.range(num_images)
    if shuffle:
        # The buffer holds indices only; capped so huge epochs stay cheap (a
        # full permutation up to 65536 images, a local shuffle beyond).
        buffer_size = min(num_images, _MAX_SHUFFLE_BUFFER)
        indices = indices.shuffle(buffer_size, seed=seed, reshuffle_each_iteration=True)
    dataset = pipeline.batches(indices, batch_size, drop_remainder)
    dataset = dataset.map(lambda index, blurred, sharp: (blurred, sharp))
    return dataset.prefetch(tf.data.AUTOTUNE)


def _savez(f, arrays):
    np.savez(f, **arrays)


def write_deblur_dataset(
    directory,
    psf_field,
    image_shape=None,
    num_images=None,
    images=None,
    noise="poisson_gaussian",
    seed=0,
    rank=None,
    shard_size=256,
    overwrite=False,
):
    """Pre-generates the pairs of `deblur_dataset` and writes them to disk.

    Writes `shard-XXXXX.npz` files (arrays `blurred`, `sharp` of shape
    `(n, H, W, C)` float32, and their `indices`), the PSF field as
    `psf_field.npz` and `metadata.json` (written last; every file is written
    atomically). The pairs are those of `deblur_dataset` with the same
    arguments (equal up to float32 round-off of batched FFTs; bitwise equal on
    CPU). Size on disk: `8 * H * W * C` bytes per pair.

    Args:
        directory: str or path-like. Output folder (created if missing).
        psf_field, image_shape, num_images, images, noise, seed, rank: as in
            `deblur_dataset`.
        shard_size: int. Pairs per shard file. Defaults to 256.
        overwrite: bool. Allow a folder that already holds a dataset.
            Defaults to `False`.

    Returns:
        The list of shard paths.

    Example:

    >>> import tempfile
    >>> from coordgate_keras import data
    >>> field = data.gaussian_psf_field(grid_shape=(2, 2), kernel_size=5)
    >>> paths = data.write_deblur_dataset(tempfile.mkdtemp(), field,
    ...                                   image_shape=(32, 32), num_images=4)
    >>> len(paths)
    1
    """
    import tensorflow as tf

    directory = os.fspath(directory)
    shard_size = av.positive_int(shard_size, "shard_size")
    if os.path.exists(os.path.join(directory, _METADATA)) and not overwrite:
        raise av.invalid_value(
            None,
            "directory",
            "a folder without a dataset (or pass `overwrite=True`)",
            f"directory={directory!r} already holding {_METADATA}",
        )
    pipeline = _Pipeline(psf_field, images, image_shape, num_images, noise, seed, rank)
    os.makedirs(directory, exist_ok=True)
    indices = tf.data.Dataset.range(pipeline.num_images)
    # Blur in batches of 16 (bounded memory), then regroup into shards.
    dataset = pipeline.batches(indices, min(shard_size, 16)).unbatch()
    dataset = dataset.batch(shard_size)
    paths = []
    for shard, (idx, blurred, sharp) in enumerate(dataset.as_numpy_iterator()):
        path = os.path.join(directory, f"shard-{shard:05d}.npz")
        arrays = {"blurred": blurred, "sharp": sharp, "indices": idx}
        atomic_io.atomic_write(path, functools.partial(_savez, arrays=arrays))
        paths.append(path)
    psf_field.save(os.path.join(directory, "psf_field.npz"))
    metadata = {
        "format_version": 1,
        "num_images": pipeline.num_images,
        "element_shape": list(pipeline.shape),
        "seed": pipeline.seed,
        "rank": rank,
        "noise": repr(pipeline.noise),
        "shards": [os.path.basename(p) for p in paths],
    }
    atomic_io.atomic_write_json(os.path.join(directory, _METADATA), metadata)
    return paths


def load_deblur_dataset(
    directory, batch_size=16, shuffle=True, seed=0, drop_remainder=False
):
    """Reads a dataset written by `write_deblur_dataset` as a `tf.data.Dataset`.

    With `shuffle=True`, two shards are read at a time (interleaved), the
    shard order and the pairs (buffer of two shards) are shuffled; with
    `shuffle=False` the pairs come in the order they were written. Batched and
    prefetched.

    Args:
        directory: str or path-like. Folder written by `write_deblur_dataset`.
        batch_size: int. Defaults to 16.
        shuffle: bool. Shuffle shards and pairs every epoch. Defaults to `True`.
        seed: int. Shuffling seed. Defaults to 0.
        drop_remainder: bool. Drop the last incomplete batch. Defaults to
            `False`.

    Returns:
        A `tf.data.Dataset` yielding `(blurred, sharp)` float32 batches
        `(batch, H, W, C)` in `[0, 1]`.

    Example:

    >>> import tempfile
    >>> from coordgate_keras import data
    >>> field = data.gaussian_psf_field(grid_shape=(2, 2), kernel_size=5)
    >>> folder = tempfile.mkdtemp()
    >>> _ = data.write_deblur_dataset(folder, field, image_shape=(32, 32),
    ...                               num_images=4)
    >>> blurred, sharp = next(iter(data.load_deblur_dataset(folder, batch_size=2)))
    >>> tuple(blurred.shape)
    (2, 32, 32, 1)
    """
    import tensorflow as tf

    directory = os.fspath(directory)
    batch_size = av.positive_int(batch_size, "batch_size")
    seed = av.seed(seed, "seed") or 0
    meta_path = os.path.join(directory, _METADATA)
    if not os.path.isfile(meta_path):
        raise av.invalid_value(
            directory,
            "directory",
            f"a folder written by `write_deblur_dataset` (with {_METADATA})",
        )
    with open(meta_path) as f:
        metadata = json.load(f)
    shape = tuple(metadata["element_shape"])
    paths = [os.path.join(directory, name) for name in metadata["shards"]]

    def read_shard(path):
        with np.load(path.decode(), allow_pickle=False) as shard:
            return shard["blurred"], shard["sharp"]

    def shard_dataset(path):
        blurred, sharp = tf.numpy_function(
            read_shard, [path], (tf.float32, tf.float32), stateful=False
        )
        blurred = tf.ensure_shape(blurred, (None,) + shape)
        sharp = tf.ensure_shape(sharp, (None,) + shape)
        return tf.data.Dataset.from_tensor_slices((blurred, sharp))

    dataset = tf.data.Dataset.from_tensor_slices(paths)
    if shuffle:
        dataset = dataset.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.interleave(
        shard_dataset,
        cycle_length=min(2, len(paths)) if shuffle else 1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    if shuffle:
        shard_len = int(np.ceil(metadata["num_images"] / len(paths)))
        dataset = dataset.shuffle(
            2 * shard_len, seed=seed, reshuffle_each_iteration=True
        )
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE)
