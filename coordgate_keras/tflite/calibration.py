"""Inputs for int8 calibration and for verification.

The default is the models' own task: blurred, noisy images (or 1D signals) from
the `coordgate_keras.data` simulator, in the value range [0, 1]. A user dataset
is accepted in any of the usual forms and cut into batches of the export shape.
"""

import numpy as np

from coordgate_keras.utils import argument_validation as av

# Blur of the default data: a smoothly varying Gaussian PSF field, as in the
# deblurring benchmarks, shrunk for small inputs.
_GRID_SHAPE = (4, 4)
_KERNEL_SIZE = 15


def simulated_inputs(input_shape, num_samples=8, seed=0):
    """Simulated blurred inputs of the deblurring task, values in [0, 1].

    2D inputs `(batch, height, width, channels)` are procedural microscopy
    scenes (`data.microscopy_scenes`) blurred by a spatially varying Gaussian
    PSF field (`data.gaussian_psf_field`, `data.blur_fast`) with camera noise
    (`data.NoiseModel`); 1D inputs `(batch, length, channels)` are the 1D task's
    blurred signals (`data.varying_blur_1d`). The single channel is repeated to
    fill `channels`.

    Args:
        input_shape: tuple of ints, `(batch, *spatial, channels)`.
        num_samples: int. Number of samples (not batches).
        seed: int. Seeds the scenes and the noise.

    Returns:
        A float32 array `(num_samples, *input_shape[1:])` in [0, 1].

    Example:

    >>> from coordgate_keras.tflite import simulated_inputs
    >>> simulated_inputs((1, 32, 32, 1), num_samples=2).shape
    (2, 32, 32, 1)
    """
    from coordgate_keras import data

    num_samples = av.positive_int(num_samples, "num_samples")
    input_shape = tuple(input_shape)
    if len(input_shape) == 4:
        _, height, width, channels = input_shape
        sharp = data.microscopy_scenes(num_samples, (height, width), seed=seed)
        kernel_size = min(_KERNEL_SIZE, (min(height, width) - 1) // 2 * 2 + 1)
        grid = tuple(min(g, n) for g, n in zip(_GRID_SHAPE, (height, width)))
        field = data.gaussian_psf_field(grid_shape=grid, kernel_size=kernel_size)
        blurred = data.degrade(sharp, field, data.NoiseModel(), seed=seed)
    elif len(input_shape) == 3:
        _, length, channels = input_shape
        blurred, _ = data.varying_blur_1d(num_samples, length, seed=seed)
    else:
        raise av.invalid_value(
            input_shape,
            "input_shape",
            "a 1D (batch, length, channels) or 2D (batch, height, width, channels) "
            "shape for simulated data; pass your own data for other inputs",
        )
    blurred = np.clip(blurred, 0.0, 1.0).astype(np.float32)
    return np.repeat(blurred, channels, axis=-1)


def batches(data, input_shape, name, value_range=None):
    """Cuts user data into float32 batches of exactly `input_shape`, checked.

    Accepts a NumPy array `(num_samples, *input_shape[1:])` (or one batch of
    `input_shape`), a `tf.data.Dataset` or any iterable of arrays, batched or
    not; elements that are `(inputs, targets)` tuples contribute their inputs.
    A final incomplete batch is dropped.

    The data are checked before any conversion uses them: floating-point
    (integer or boolean images must be scaled first, e.g. `x / 255`), finite,
    and inside `value_range`, the model's declared input range.

    Args:
        data: the user data.
        input_shape: tuple. The export shape, batch included.
        name: str. The argument name used in error messages.
        value_range: tuple `(low, high)` or None (not checked).

    Returns:
        A list of float32 arrays of shape `input_shape`; never empty.
    """
    sample_shape = tuple(input_shape[1:])
    samples = []
    low, high = np.inf, -np.inf
    for element in _elements(data, name):
        if isinstance(element, (tuple, list)) and element:
            element = element[0]
        if isinstance(element, dict):
            raise av.invalid_value(
                element, name, "arrays or (inputs, targets) pairs", "a dict element"
            )
        array = av.float_array(element, name)
        if array.shape == sample_shape:
            array = array[None]
        if array.shape[1:] != sample_shape:
            raise av.invalid_value(
                element,
                name,
                f"samples of shape {sample_shape} (the export input shape "
                f"{tuple(input_shape)} without its batch axis)",
                f"an element of shape {array.shape}",
            )
        if array.size:
            low, high = min(low, float(array.min())), max(high, float(array.max()))
        samples.extend(array.astype(np.float32))
    if (
        value_range is not None
        and samples
        and (low < value_range[0] or high > value_range[1])
    ):
        raise av.invalid_value(
            data,
            name,
            f"values in the model's declared input range `value_range` "
            f"[{value_range[0]:g}, {value_range[1]:g}] (scale the data, or "
            "declare the range the model was trained on)",
            f"{name} with values in [{low:.6g}, {high:.6g}]",
        )
    batch = input_shape[0]
    count = len(samples) // batch
    if count == 0:
        raise av.invalid_value(
            data,
            name,
            f"at least {batch} sample(s) of shape {sample_shape}",
            f"{len(samples)} sample(s)",
        )
    stacked = np.stack(samples[: count * batch]).astype(np.float32)
    return list(stacked.reshape((count,) + tuple(input_shape)))


def _elements(data, name):
    if isinstance(data, np.ndarray):
        return [data]
    if hasattr(data, "as_numpy_iterator"):
        return data.as_numpy_iterator()
    if isinstance(data, (str, bytes)) or not hasattr(data, "__iter__"):
        raise av.invalid_value(
            data,
            name,
            "a NumPy array, a tf.data.Dataset or an iterable of arrays",
            f"{name} of type {type(data).__name__}",
        )
    return data


def cover_value_range(batches, value_range):
    """The calibration batches with the declared input range's ends in them.

    The int8 input's scale and zero point come from the smallest and largest
    calibration input. Calibration images rarely reach the ends of the
    declared range (blurred images stay below 1), so inputs between their
    maximum and the range's end would saturate. One pixel of the first sample
    is set to `value_range[0]` and another to `value_range[1]`.

    Args:
        batches: list of float32 arrays (see `batches`); not modified.
        value_range: tuple `(low, high)`.

    Returns:
        A new list of arrays.
    """
    batches = [np.array(b, dtype=np.float32) for b in batches]
    first = batches[0].reshape(-1)
    first[0], first[-1] = value_range
    return batches
