"""The 1D task: random signals blurred by a Gaussian whose width varies.

A source sample at position `p` spreads with a normalised Gaussian of width
`sigma(p)`, linear in `p` from `sigma_range[0]` (first sample) to
`sigma_range[1]` (last sample)::

    y(q) = sum_p x(p) * g_p(q - p),   g_p(d) ∝ exp(-d**2 / (2 sigma(p)**2)),

truncated at `|d| <= ceil(4 sigma(p))` and normalised to sum 1 there: the same
scatter convention and zero padding as the 2D `blur_exact`. The operator is a
dense `(length, length)` matrix, applied exactly.
"""

import numpy as np

from coordgate_keras.utils import argument_validation as av


def varying_blur_1d_matrix(length=256, sigma_range=(0.5, 6.0)):
    """The blur matrix `A` with `y = A @ x` (column `p` is the kernel of `p`).

    Args:
        length: int. Signal length.
        sigma_range: tuple `(first, last)` Gaussian widths in samples, both
            positive. Defaults to `(0.5, 6.0)`.

    Returns:
        A float64 array `(length, length)`.

    Example:

    >>> from coordgate_keras.data import varying_blur_1d_matrix
    >>> a = varying_blur_1d_matrix(64, (1.0, 3.0))
    >>> round(float(a[:, 32].sum()), 6)  # interior columns sum to 1
    1.0
    """
    length = av.positive_int(length, "length")
    first, last = _sigma_range(sigma_range)
    positions = np.arange(length)
    sigma = first + (last - first) * positions / max(length - 1, 1)
    radius = np.ceil(4 * sigma)
    offsets = positions[:, None] - positions[None, :]  # (q, p): q - p
    kernel = np.exp(-0.5 * (offsets / sigma[None, :]) ** 2)
    kernel = np.where(np.abs(offsets) <= radius[None, :], kernel, 0.0)
    # Normalise over the full truncated support, including samples past the
    # borders, so light leaving the signal is lost (zero padding).
    support = np.arange(-int(radius.max()), int(radius.max()) + 1)
    full = np.exp(-0.5 * (support[:, None] / sigma[None, :]) ** 2)
    full = np.where(np.abs(support[:, None]) <= radius[None, :], full, 0.0)
    return kernel / full.sum(axis=0)[None, :]


def random_signals_1d(num_signals, length=256, seed=0):
    """Random non-negative 1D signals: steps, Gaussian peaks and spikes.

    Each signal sums a piecewise-constant part (2-6 random steps), 2-8
    Gaussian peaks (widths 1-8 samples) and 0-5 single-sample spikes, all with
    random amplitudes, scaled to a maximum of 1.

    Args:
        num_signals: int. Number of signals.
        length: int. Samples per signal. Defaults to 256.
        seed: int. Defaults to 0.

    Returns:
        A float32 array `(num_signals, length)` in `[0, 1]`.

    Example:

    >>> from coordgate_keras.data import random_signals_1d
    >>> random_signals_1d(3, 100, seed=0).shape
    (3, 100)
    """
    num_signals = av.positive_int(num_signals, "num_signals")
    length = av.positive_int(length, "length")
    seed = av.seed(seed, "seed")
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    signals = np.zeros((num_signals, length))
    for signal in signals:
        edges = np.sort(rng.integers(0, length, rng.integers(2, 7)))
        for edge in edges:
            signal[edge:] += rng.uniform(-0.3, 0.3)
        signal -= min(signal.min(), 0.0)
        for _ in range(rng.integers(2, 9)):
            center, width = rng.uniform(0, length), rng.uniform(1.0, 8.0)
            signal += rng.uniform(0.1, 1.0) * np.exp(-0.5 * ((t - center) / width) ** 2)
        spikes = rng.integers(0, length, rng.integers(0, 6))
        signal[spikes] += rng.uniform(0.3, 1.0, spikes.size)
        signal /= max(signal.max(), 1e-12)
    return signals.astype(np.float32)


def varying_blur_1d(
    num_signals=1024, length=256, sigma_range=(0.5, 6.0), noise_std=0.0, seed=0
):
    """(blurred, sharp) pairs of the 1D spatially-varying deblurring task.

    Args:
        num_signals: int. Number of pairs. Defaults to 1024.
        length: int. Samples per signal. Defaults to 256.
        sigma_range: tuple `(first, last)` kernel widths. Defaults to
            `(0.5, 6.0)`.
        noise_std: float. Standard deviation of additive Gaussian noise on
            the blurred signals (not clipped). Defaults to 0.
        seed: int. Seeds signals and noise. Defaults to 0.

    Returns:
        Tuple `(blurred, sharp)` of float32 arrays `(num_signals, length, 1)`.

    Example:

    >>> from coordgate_keras.data import varying_blur_1d
    >>> blurred, sharp = varying_blur_1d(8, 128, seed=0)
    >>> blurred.shape, sharp.shape
    ((8, 128, 1), (8, 128, 1))
    """
    av.number(noise_std, "noise_std", minimum=0)
    matrix = varying_blur_1d_matrix(length, sigma_range)
    sharp = random_signals_1d(num_signals, length, seed).astype(np.float64)
    blurred = sharp @ matrix.T
    if noise_std:
        rng = np.random.default_rng((seed, 1))
        blurred = blurred + rng.normal(0.0, noise_std, blurred.shape)
    return (
        blurred.astype(np.float32)[..., None],
        sharp.astype(np.float32)[..., None],
    )


def varying_blur_1d_dataset(
    num_signals=1024,
    length=256,
    sigma_range=(0.5, 6.0),
    noise_std=0.0,
    batch_size=32,
    seed=0,
    shuffle=True,
):
    """`varying_blur_1d` as a shuffled, batched, prefetched `tf.data.Dataset`.

    Args:
        num_signals, length, sigma_range, noise_std, seed: as in
            `varying_blur_1d`.
        batch_size: int. Defaults to 32.
        shuffle: bool. Reshuffle every epoch (seeded). Defaults to `True`.

    Returns:
        A `tf.data.Dataset` yielding `(blurred, sharp)` float32 batches
        `(batch, length, 1)`.

    Example:

    >>> from coordgate_keras.data import varying_blur_1d_dataset
    >>> ds = varying_blur_1d_dataset(16, 64, batch_size=8)
    >>> tuple(next(iter(ds))[0].shape)
    (8, 64, 1)
    """
    import tensorflow as tf

    batch_size = av.positive_int(batch_size, "batch_size")
    blurred, sharp = varying_blur_1d(num_signals, length, sigma_range, noise_std, seed)
    dataset = tf.data.Dataset.from_tensor_slices((blurred, sharp))
    if shuffle:
        dataset = dataset.shuffle(len(sharp), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _sigma_range(value):
    """`(first, last)`: two positive kernel widths, either may be the larger."""
    try:
        first, last = value
        first = av.number(first, "sigma_range", minimum=0, min_inclusive=False)
        last = av.number(last, "sigma_range", minimum=0, min_inclusive=False)
    except (TypeError, ValueError):
        raise av.invalid_value(
            value, "sigma_range", "two positive numbers (first, last)"
        ) from None
    return first, last
