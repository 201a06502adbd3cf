"""Training and held-out data for `train()`, as NumPy (no TensorFlow needed).

Batch `g` of a run is a pure function of `(config, g)`: which images it holds
(per-pass permutations of the pool seeded by `(seed, pass)`) and its noise
(seeded by `(seed, g)`). A resumed run therefore continues with exactly the
batches the interrupted one would have seen.
"""

import concurrent.futures
import dataclasses
import json
import os

import numpy as np

from coordgate_keras import data as data_lib
from coordgate_keras.training import _scene_pool
from coordgate_keras.training import config as config_lib
from coordgate_keras.utils import argument_validation as av


@dataclasses.dataclass
class Data:
    """What the trainer needs from a data source.

    Attributes:
        sample_shape: tuple. One example's shape, `(H, W, C)` or `(L, C)`.
        make_batch: callable `step -> (inputs, targets)` float32 arrays.
        simulator: a `DeviceSimulator` to put before the network, or None.
        eval_blurred, eval_sharp: the held-out pairs.
        description: str. Where the data come from (for logs and errors).
        simulator_mode: str. `"host"`, `"device"` or `"none"` (saved pairs).
        frame: a `Frames` (training on crops of a frame) or None; then the
            inputs of `make_batch` are `(images, origins)`.
    """

    sample_shape: tuple
    make_batch: object
    simulator: object
    eval_blurred: np.ndarray
    eval_sharp: np.ndarray
    description: str
    simulator_mode: str
    frame: object = None


@dataclasses.dataclass
class Frames:
    """Held-out frames and the tiles of them the held-out pairs are.

    Attributes:
        frame_shape, tile_shape: `(height, width)`.
        alignment: int. Origins are multiples of it (`2**depth`).
        eval_origins: int32 `(tiles, 2)`, the origin of each held-out pair.
        eval_frame_index: int `(tiles,)`, the held-out frame each tile is of.
        blurred_frames, sharp_frames: float32 `(frames, H, W, C)`.
    """

    frame_shape: tuple
    tile_shape: tuple
    alignment: int
    eval_origins: np.ndarray
    eval_frame_index: np.ndarray
    blurred_frames: np.ndarray
    sharp_frames: np.ndarray


def is_1d(model_name):
    from coordgate_keras.zoo import _registry

    return len(_registry._get_entry(model_name).reference_input_shape) == 2


def _step_seed(seed, tag, step):
    return int(np.random.SeedSequence([seed, tag, step]).generate_state(1)[0])


def _indices(seed, step, batch_size, count):
    """Pool indices of batch `step`: consecutive slices of per-pass permutations."""
    positions = step * batch_size + np.arange(batch_size)
    passes = positions // count
    out = np.empty(batch_size, dtype=np.int64)
    for p in np.unique(passes):
        perm = np.random.default_rng([seed, 3, int(p)]).permutation(count)
        mask = passes == p
        out[mask] = perm[positions[mask] % count]
    return out


def psf_field(cfg):
    """The `PSFField` of `cfg.psf` (2D kinds only)."""
    spec = dict(cfg.psf)
    kind = spec.pop("kind")
    if kind == "zernike":
        return data_lib.zernike_psf_field(**_tuples(spec))
    if kind == "gaussian":
        return data_lib.gaussian_psf_field(**_tuples(spec))
    if kind == "file":
        return data_lib.PSFField.load(
            spec["path"], normalize=spec.get("normalize", False)
        )
    raise av.invalid_value(
        None,
        "psf",
        "a 2D PSF kind ('zernike', 'gaussian', 'file') for a 2D model",
        f"psf={cfg.psf!r}",
    )


def _tuples(spec):
    return {k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()}


def noise_model(cfg):
    if cfg.noise is None:
        return None
    return data_lib.NoiseModel(**_tuples(cfg.noise))


def check_finite(array, source):
    """Refuses NaN or infinity in `array`, naming where it came from."""
    if not np.all(np.isfinite(array)):
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        raise av.invalid_value(
            None,
            "data",
            "finite values (no NaN or infinity)",
            f"{bad} non-finite value(s) in {source}",
        )


def build(cfg, simulator_mode, cache_dir, log=print):
    """The `Data` of `cfg` (`simulator_mode` already resolved to host/device)."""
    if is_1d(cfg.model):
        return _build_1d(cfg, log)
    if cfg.data.startswith("dataset:"):
        if cfg.frame_size is not None:
            raise av.invalid_value(
                None,
                "frame_size",
                "None for `dataset:` data (saved pairs have no frame to crop)",
                f"frame_size={cfg.frame_size!r}",
            )
        return _build_saved(cfg)
    if cfg.frame_size is not None:
        return _build_frames(cfg, cache_dir, log)
    field = psf_field(cfg)
    noise = noise_model(cfg)
    shape = cfg.image_shape
    if len(shape) != 2:
        raise av.invalid_value(
            None,
            "image_size",
            "an int or [height, width] for a 2D model",
            f"image_size={cfg.image_size!r}",
        )
    field.check_image_shape(shape, name="image_size")
    if cfg.data == "sim":
        pool = _scene_pool.scene_pool(cache_dir, cfg.seed, shape, cfg.train_images, log)

        def sharp_batch(indices):
            return np.array(pool[indices])

        description = f"simulated microscopy scenes ({cfg.train_images} in the pool)"
        channels = 1
    else:
        folder = _image_folder(cfg.data, shape, cfg)
        # Decode (and check) every image now: a bad file is refused before
        # training, by name, not from inside the input pipeline.
        for index in range(len(folder)):
            folder.load(index)

        def sharp_batch(indices):
            return np.stack([folder.crop(int(i), cfg.seed) for i in indices])

        description = f"crops of {folder.directory} ({len(folder)} images)"
        channels = folder.num_channels
    eval_blurred, eval_sharp = _eval_pairs(cfg, field, noise, shape, channels)
    batch_size, count = cfg.batch_size, cfg.train_images

    if simulator_mode == "device":
        from coordgate_keras.training.device_simulator import DeviceSimulator

        simulator = DeviceSimulator(
            field, shape, noise=noise, seed=cfg.seed, name="device_simulator"
        )

        def make_batch(step):
            sharp = sharp_batch(_indices(cfg.seed, step, batch_size, count))
            return sharp, sharp

    else:
        simulator = None

        def make_batch(step):
            sharp = sharp_batch(_indices(cfg.seed, step, batch_size, count))
            seed = _step_seed(cfg.seed, 2, step)
            return data_lib.degrade(sharp, field, noise, seed), sharp

    return Data(
        sample_shape=tuple(shape) + (channels,),
        make_batch=make_batch,
        simulator=simulator,
        eval_blurred=eval_blurred,
        eval_sharp=eval_sharp,
        description=description,
        simulator_mode=simulator_mode,
    )


def heldout(cfg):
    """Only the held-out pairs of `cfg` (no training pool is made)."""
    if cfg.frame_size is not None:
        data = _build_frames(cfg, None, lambda message: None, pool=False)
        return data.eval_blurred, data.eval_sharp
    if is_1d(cfg.model) or cfg.data.startswith("dataset:"):
        data = build(cfg, "host", None, log=lambda message: None)
        return data.eval_blurred, data.eval_sharp
    shape = cfg.image_shape
    channels = 1
    if cfg.data.startswith("folder:"):
        channels = _image_folder(cfg.data, shape, cfg).num_channels
    return _eval_pairs(cfg, psf_field(cfg), noise_model(cfg), shape, channels)


def _image_folder(spec, shape, cfg):
    path = spec.partition(":")[2]
    return data_lib.ImageFolder(path, crop_shape=shape, **cfg.data_options)


def _eval_pairs(cfg, field, noise, shape, channels):
    if cfg.eval_data is not None and cfg.eval_data.startswith("dataset:"):
        blurred, sharp = read_saved(cfg.eval_data.partition(":")[2])
        return blurred[: cfg.eval_images], sharp[: cfg.eval_images]
    if cfg.eval_data is not None or cfg.data.startswith("folder:"):
        folder = _image_folder(cfg.eval_data or cfg.data, shape, cfg)
        # Indices past any training crop: held-out crops even from the same folder.
        sharp = np.stack(
            [folder.crop(10**9 + i, cfg.eval_seed) for i in range(cfg.eval_images)]
        )
    else:
        sharp = _scene_pool.eval_scenes(cfg.eval_seed, shape, cfg.eval_images)
    if sharp.shape[-1] != channels:
        raise av.invalid_value(
            None,
            "eval_data",
            f"images with {channels} channel(s), as the training data",
            f"eval_data={cfg.eval_data!r} with {sharp.shape[-1]}",
        )
    blurred = data_lib.degrade(sharp, field, noise, _step_seed(cfg.eval_seed, 4, 0))
    return blurred, sharp.astype(np.float32)


# === Crops of a frame ===


def alignment(cfg):
    """The step of valid origins: `2**depth` for the U-Nets, else 1."""
    from coordgate_keras.zoo import _registry

    entry = _registry._get_entry(cfg.model)
    if "unet" not in entry.family:
        return 1
    return 2 ** int(cfg.model_kwargs.get("depth", entry.depth))


def frame_field(cfg):
    """The PSF field pinned to the frame of `cfg.frame_size`."""
    field = psf_field(cfg)
    frame = cfg.frame_shape
    if field.image_shape is not None and tuple(field.image_shape) != frame:
        raise av.invalid_value(
            None,
            "frame_size",
            f"the frame the PSF field was measured on, {tuple(field.image_shape)}",
            f"frame_size={cfg.frame_size!r}",
        )
    return data_lib.PSFField(field.psfs, image_shape=frame)


def covering_origins(frame_shape, tile_shape, step):
    """Origins of tiles covering the frame: a grid of tile-sized steps, the last
    row and column flush with the frame's far edges (corners included)."""
    axes = []
    for n, t in zip(frame_shape, tile_shape):
        starts = list(range(0, n - t + 1, t))
        last = (n - t) // step * step
        if starts[-1] != last:
            starts.append(last)
        axes.append(starts)
    return np.array([(r, c) for r in axes[0] for c in axes[1]], dtype=np.int32)


def _build_frames(cfg, cache_dir, log, pool=True):
    if is_1d(cfg.model):
        raise av.invalid_value(
            None, "frame_size", "None for a 1D model", f"frame_size={cfg.frame_size!r}"
        )
    field = frame_field(cfg)
    noise = noise_model(cfg)
    frame, tile = cfg.frame_shape, cfg.image_shape
    step = alignment(cfg)
    for n, t in zip(frame, tile):
        if n % step or t % step:
            raise av.invalid_value(
                None,
                "frame_size",
                f"a frame and image_size divisible by {step} (the model's "
                "down-sampling)",
                f"frame_size={cfg.frame_size!r}, image_size={cfg.image_size!r}",
            )
    field.check_window(tile, (0, 0), name="image_size")
    margin = field.radius
    region = (tile[0] + 2 * margin, tile[1] + 2 * margin)
    batch_size, count = cfg.batch_size, cfg.train_images

    # === Held-out: tiles covering whole frames, blurred as whole frames ===
    origins = covering_origins(frame, tile, step)
    num_frames = max(1, -(-cfg.eval_images // len(origins)))
    if cfg.data == "sim" and cfg.eval_data is None:
        sharp_frames = _scene_pool.eval_scenes(cfg.eval_seed, frame, num_frames)
        channels = 1
    else:
        folder = _image_folder(cfg.eval_data or cfg.data, frame, cfg)
        sharp_frames = np.stack(
            [folder.crop(10**9 + i, cfg.eval_seed) for i in range(num_frames)]
        )
        channels = sharp_frames.shape[-1]
    sharp_frames = sharp_frames.astype(np.float32)
    blurred_frames = data_lib.degrade(
        sharp_frames, field, noise, _step_seed(cfg.eval_seed, 4, 0)
    )
    frame_index = np.repeat(np.arange(num_frames), len(origins))
    eval_origins = np.tile(origins, (num_frames, 1))
    (th, tw) = tile

    def tiles_of(frames):
        return np.stack(
            [
                frames[f, r : r + th, c : c + tw]
                for f, (r, c) in zip(frame_index, eval_origins)
            ]
        )

    frames = Frames(
        frame_shape=frame,
        tile_shape=tile,
        alignment=step,
        eval_origins=eval_origins,
        eval_frame_index=frame_index,
        blurred_frames=blurred_frames,
        sharp_frames=sharp_frames,
    )

    # === Training: crops at random origins of the grid ===
    if not pool:
        sharp_region = None
        description = ""
    elif cfg.data == "sim":
        scenes = _scene_pool.scene_pool(cache_dir, cfg.seed, region, count, log)

        def sharp_region(index, tile_origin, top, left):
            # The pool scene stands for the frame's pixels from the tile's
            # origin minus the margin; what lies beyond the frame is cut off.
            ty, tx = tile_origin
            return np.asarray(
                scenes[index, top - (ty - margin) :, left - (tx - margin) :]
            )

        description = (
            f"crops of simulated {frame[0]}x{frame[1]} frames "
            f"({cfg.train_images} scenes in the pool)"
        )
    else:
        folder = _image_folder(cfg.data, frame, cfg)
        for index in range(len(folder)):
            folder.load(index)

        def sharp_region(index, tile_origin, top, left):
            whole = folder.crop(int(index), cfg.seed)
            return whole[top:, left:]

        description = f"crops of {frame[0]}x{frame[1]} frames of {folder.directory}"
        channels = folder.num_channels

    def make_batch(step_index):
        rng = np.random.default_rng([cfg.seed, 5, step_index])
        tops = step * rng.integers(0, (frame[0] - th) // step + 1, batch_size)
        lefts = step * rng.integers(0, (frame[1] - tw) // step + 1, batch_size)
        indices = _indices(cfg.seed, step_index, batch_size, count)
        blurred, sharp = [], []
        for i, (index, ty, tx) in enumerate(zip(indices, tops, lefts)):
            # The tile with a margin of the PSF radius, cut at the frame's edges,
            # is degraded as that window of the frame, then trimmed to the tile.
            top, left = max(ty - margin, 0), max(tx - margin, 0)
            bottom = min(ty + th + margin, frame[0])
            right = min(tx + tw + margin, frame[1])
            pixels = sharp_region(index, (ty, tx), top, left)
            pixels = pixels[: bottom - top, : right - left]
            seed = _step_seed(cfg.seed, 2, step_index * batch_size + i)
            region = data_lib.degrade(pixels, field, noise, seed, origin=(top, left))
            inside = (slice(ty - top, ty - top + th), slice(tx - left, tx - left + tw))
            blurred.append(region[inside])
            sharp.append(pixels[inside])
        tiles = np.stack([tops, lefts], axis=1)
        blurred = np.stack(blurred)
        return (blurred, tiles.astype(np.int32)), np.stack(sharp).astype(np.float32)

    return Data(
        sample_shape=tuple(tile) + (channels,),
        make_batch=make_batch,
        simulator=None,
        eval_blurred=tiles_of(blurred_frames),
        eval_sharp=tiles_of(sharp_frames),
        description=description,
        simulator_mode="host",
        frame=frames,
    )


def read_saved(directory):
    """All pairs of a `write_deblur_dataset` folder, in written order, NumPy only."""
    meta_path = os.path.join(directory, "metadata.json")
    if not os.path.isfile(meta_path):
        raise av.invalid_value(
            None,
            "data",
            "a folder written by `data.write_deblur_dataset` (with metadata.json)",
            f"data='dataset:{directory}'",
        )
    with open(meta_path) as f:
        metadata = json.load(f)
    blurred, sharp = [], []
    for name in metadata["shards"]:
        path = os.path.join(directory, name)
        with np.load(path, allow_pickle=False) as shard:
            b, s = shard["blurred"], shard["sharp"]
        check_finite(b, f"{path} (array 'blurred')")
        check_finite(s, f"{path} (array 'sharp')")
        blurred.append(b)
        sharp.append(s)
    return np.concatenate(blurred), np.concatenate(sharp)


def _build_saved(cfg):
    directory = cfg.data.partition(":")[2]
    blurred, sharp = read_saved(directory)
    if cfg.eval_data is None:
        if len(sharp) <= cfg.eval_images:
            raise av.invalid_value(
                None,
                "eval_images",
                f"fewer held-out pairs than the dataset holds ({len(sharp)})",
                f"eval_images={cfg.eval_images}",
            )
        eval_blurred, eval_sharp = (
            blurred[-cfg.eval_images :],
            sharp[-cfg.eval_images :],
        )
        blurred, sharp = blurred[: -cfg.eval_images], sharp[: -cfg.eval_images]
    else:
        eval_blurred, eval_sharp = read_saved(cfg.eval_data.partition(":")[2])
        eval_blurred = eval_blurred[: cfg.eval_images]
        eval_sharp = eval_sharp[: cfg.eval_images]
    if tuple(sharp.shape[1:3]) != cfg.image_shape:
        raise av.invalid_value(
            None,
            "image_size",
            f"the size of the saved pairs {tuple(sharp.shape[1:3])}",
            f"image_size={cfg.image_size!r}",
        )
    count, batch_size = len(sharp), cfg.batch_size

    def make_batch(step):
        indices = _indices(cfg.seed, step, batch_size, count)
        return blurred[indices], sharp[indices]

    return Data(
        sample_shape=tuple(sharp.shape[1:]),
        make_batch=make_batch,
        simulator=None,
        eval_blurred=eval_blurred,
        eval_sharp=eval_sharp,
        description=f"saved pairs in {directory} ({count} for training)",
        simulator_mode="none",
    )


def _build_1d(cfg, log):
    if cfg.data != "sim":
        raise av.invalid_value(
            None, "data", "'sim' for a 1D model (the 1D task)", f"data={cfg.data!r}"
        )
    psf = cfg.psf
    if psf == config_lib.DEFAULT_PSF:
        psf = config_lib.DEFAULT_PSF_1D
    if psf.get("kind") != "varying_gaussian_1d":
        raise av.invalid_value(
            None,
            "psf",
            "{'kind': 'varying_gaussian_1d', 'sigma_range': [first, last]} for a "
            "1D model",
            f"psf={cfg.psf!r}",
        )
    size = cfg.image_size
    if not isinstance(size, int) and len(size) != 1:
        raise av.invalid_value(
            None,
            "image_size",
            "an int (the signal length) for a 1D model",
            f"image_size={size!r}",
        )
    length = size if isinstance(size, int) else size[0]
    sigma_range = tuple(psf.get("sigma_range", DEFAULT_SIGMA_RANGE))
    matrix = data_lib.varying_blur_1d_matrix(length, sigma_range).astype(np.float32)
    noise = noise_model(cfg)
    # Seeds 2s and 2e + 1 keep the training and held-out signals apart.
    pool = data_lib.random_signals_1d(cfg.train_images, length, seed=2 * cfg.seed)
    eval_sharp = data_lib.random_signals_1d(
        cfg.eval_images, length, seed=2 * cfg.eval_seed + 1
    )

    def degrade(sharp, seed):
        blurred = sharp @ matrix.T
        if noise is not None:
            blurred = noise(blurred[:, :, None, None], seed=seed)[:, :, 0, 0]
        return np.clip(blurred, 0.0, 1.0).astype(np.float32)[..., None]

    count, batch_size = cfg.train_images, cfg.batch_size

    def make_batch(step):
        sharp = pool[_indices(cfg.seed, step, batch_size, count)]
        return degrade(sharp, _step_seed(cfg.seed, 2, step)), sharp[..., None]

    return Data(
        sample_shape=(length, 1),
        make_batch=make_batch,
        simulator=None,
        eval_blurred=degrade(eval_sharp, _step_seed(cfg.eval_seed, 4, 0)),
        eval_sharp=eval_sharp[..., None],
        description=f"1D signals blurred by Gaussians of width {sigma_range}",
        simulator_mode="host",
    )


DEFAULT_SIGMA_RANGE = tuple(config_lib.DEFAULT_PSF_1D["sigma_range"])


class Prefetcher:
    """Iterates `make_batch(step)` for `step` in `[start, stop)`, computing the
    next few batches in threads (NumPy FFTs and file reads release the GIL)."""

    def __init__(self, make_batch, start, stop, workers=None, depth=None):
        self.make_batch = make_batch
        self.start, self.stop = start, stop
        self.workers = workers or min(4, os.cpu_count() or 1)
        self.depth = depth or 2 * self.workers

    def __iter__(self):
        with concurrent.futures.ThreadPoolExecutor(self.workers) as pool:
            pending = []
            next_step = self.start
            while pending or next_step < self.stop:
                while next_step < self.stop and len(pending) < self.depth:
                    pending.append(pool.submit(self.make_batch, next_step))
                    next_step += 1
                yield pending.pop(0).result()
