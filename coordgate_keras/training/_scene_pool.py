"""A pool of sharp training scenes, made once per (seed, size, count) and cached.

`microscopy_scene` is NumPy and takes tens of milliseconds per 256x256 image,
so the pool is made with a process pool sized to the cores and stored as an
`.npy` file that later runs (and other models) open memory-mapped.
"""

import concurrent.futures
import multiprocessing
import os

import numpy as np

from coordgate_keras.data import microscopy_scene
from coordgate_keras.utils import atomic_io

# Bump when `microscopy_scene` changes what it draws: old cache files are ignored.
_POOL_VERSION = 1
# Below this many pixels in total the pool is made in-process (spawning workers
# costs seconds).
_SERIAL_PIXELS = 64 * 256 * 256


def default_cache_dir():
    """`$COORDGATE_KERAS_CACHE`, else `~/.cache/coordgate_keras`."""
    return os.environ.get("COORDGATE_KERAS_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "coordgate_keras"
    )


def _scenes(args):
    shape, seeds = args
    return np.stack([microscopy_scene(shape, seed=seed) for seed in seeds])


def make_scenes(shape, seeds, workers=None):
    """`microscopy_scene(shape, seed)` for every seed, `(n, H, W, 1)` float32."""
    seeds = list(seeds)
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(seeds) * shape[0] * shape[1] <= _SERIAL_PIXELS:
        return _scenes((shape, seeds))[..., None]
    chunk = max(1, len(seeds) // (4 * workers))
    tasks = [(shape, seeds[i : i + chunk]) for i in range(0, len(seeds), chunk)]
    # "spawn": forking a process that runs JAX or TensorFlow threads can deadlock.
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        parts = list(pool.map(_scenes, tasks))
    return np.concatenate(parts)[..., None]


def scene_pool(cache_dir, seed, shape, count, log=print):
    """The training pool: scene `i` drawn with seed `(seed, 0, i)`.

    Returns a read-only memory-mapped float32 array `(count, H, W, 1)`.
    """
    cache_dir = os.fspath(cache_dir)
    name = f"scenes-v{_POOL_VERSION}-seed{seed}-{shape[0]}x{shape[1]}-n{count}.npy"
    path = os.path.join(cache_dir, name)
    if not os.path.isfile(path):
        log(f"making {count} training scenes of {shape[0]}x{shape[1]} -> {path}")
        scenes = make_scenes(shape, [(seed, 0, i) for i in range(count)])
        atomic_io.atomic_write(path, lambda f: np.save(f, scenes))
    return np.load(path, mmap_mode="r")


def eval_scenes(eval_seed, shape, count):
    """The held-out scenes: scene `i` drawn with seed `(eval_seed, 1, i)`."""
    return make_scenes(shape, [(eval_seed, 1, i) for i in range(count)])
