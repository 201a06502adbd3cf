"""Argument checks shared by every subpackage, raising Keras-style errors.

Modelled on Keras' `keras/src/utils/argument_validation.py`. Every checker takes
`(value, name, ...)`, accepts NumPy integers and scalars where it accepts Python
ones, returns the value normalised to plain Python types (so it can go into a
layer config or JSON), and raises a `ValueError` with one message form:

    Invalid value for argument `name`. Expected <what>. Received: name=<value>

The errors are plain `ValueError`s (TensorFlow re-raises those unchanged from
traced code) carrying the parts of the message as attributes `argument`,
`expected` and `received`, so a command-line tool can name its own flag.

Only NumPy is imported here; Keras is imported by the two checkers that need it
(`data_format`, `activation`), so `coordgate_keras.data` stays NumPy-only.
"""

import numbers

import numpy as np

_DATA_FORMATS = ("channels_last", "channels_first")
_SPATIAL_NAMES = {1: "length", 2: "height, width", 3: "depth, height, width"}


def invalid_value(value, name, expected, received=None):
    """The error for `value` of argument `name` (returned, for `raise`).

    Args:
        value: the value received.
        name: str. The argument name.
        expected: str. What was expected, e.g. `"a positive integer"`.
        received: str or None. Overrides the default `f"{name}={value!r}"`
            (e.g. `"images.shape=(3, 4)"` for a large array).

    Returns:
        A `ValueError` with attributes `argument` (= `name`), `expected`,
        `received` and `received_value` (the `name=value` text that `received`
        starts with, or None).

    Example:

    >>> from coordgate_keras.utils import argument_validation as av
    >>> str(av.invalid_value(0, "depth", "a positive integer"))
    'Invalid value for argument `depth`. Expected a positive integer. Received: depth=0'
    """
    shown = f"{name}={_plain(value)!r}"
    if received is None:
        received = shown
    error = ValueError(
        f"Invalid value for argument `{name}`. Expected {expected}. "
        f"Received: {received}"
    )
    error.argument, error.expected, error.received = name, expected, received
    # How `received` names the value, for tools that show it their own way.
    error.received_value = shown if received.startswith(shown) else None
    return error


# === Scalars ===


def is_int(value):
    """Whether `value` is an integer (Python or NumPy), booleans excluded."""
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(
        value, (bool, np.bool_)
    )


def integer(value, name, minimum=None, allow_none=False):
    """An `int` (NumPy integers accepted) no smaller than `minimum`.

    Args:
        value: the argument.
        name: str. Its name.
        minimum: int or None. Smallest allowed value.
        allow_none: bool. Let `None` through.

    Returns:
        A Python `int`, or None.
    """
    if value is None and allow_none:
        return None
    if not is_int(value) or (minimum is not None and value < minimum):
        if minimum == 1:
            expected = "a positive integer"
        elif minimum == 0:
            expected = "a non-negative integer"
        elif minimum is not None:
            expected = f"an integer >= {minimum}"
        else:
            expected = "an integer"
        raise invalid_value(value, name, expected + (" or None" if allow_none else ""))
    return int(value)


def positive_int(value, name, allow_none=False):
    """An `int` >= 1 (NumPy integers accepted; booleans and floats refused)."""
    return integer(value, name, minimum=1, allow_none=allow_none)


def non_negative_int(value, name, allow_none=False):
    """An `int` >= 0 (NumPy integers accepted; booleans and floats refused)."""
    return integer(value, name, minimum=0, allow_none=allow_none)


def seed(value, name="seed"):
    """A non-negative `int` or None."""
    return non_negative_int(value, name, allow_none=True)


def boolean(value, name):
    """A `bool` (NumPy booleans accepted; 0, 1 and strings refused)."""
    if not isinstance(value, (bool, np.bool_)):
        raise invalid_value(value, name, "a boolean")
    return bool(value)


def number(
    value,
    name,
    minimum=None,
    maximum=None,
    min_inclusive=True,
    max_inclusive=True,
):
    """A finite `float` within optional bounds (ints and NumPy numbers accepted).

    Args:
        value: the argument.
        name: str. Its name.
        minimum, maximum: float or None. Bounds.
        min_inclusive, max_inclusive: bool. Whether the bounds are allowed.

    Returns:
        A Python `float`.
    """
    ok = isinstance(value, (numbers.Real, np.number)) and not isinstance(
        value, (bool, np.bool_)
    )
    number_ = float(value) if ok else float("nan")
    ok = ok and np.isfinite(number_)
    if ok and minimum is not None:
        ok = number_ >= minimum if min_inclusive else number_ > minimum
    if ok and maximum is not None:
        ok = number_ <= maximum if max_inclusive else number_ < maximum
    if not ok:
        if minimum == 0 and maximum is None:
            expected = "a non-negative number" if min_inclusive else "a positive number"
        else:
            bounds = []
            if minimum is not None:
                bounds.append(f"{'>=' if min_inclusive else '>'} {minimum:g}")
            if maximum is not None:
                bounds.append(f"{'<=' if max_inclusive else '<'} {maximum:g}")
            expected = " ".join(["a finite number", " and ".join(bounds)]).strip()
        raise invalid_value(value, name, expected)
    return number_


def number_range(
    value, name, minimum=None, maximum=None, min_inclusive=True, strict=False
):
    """A pair `(low, high)` of finite floats with `low <= high` inside the bounds.

    With `strict`, `low < high` (a range of values rather than one value).

    Returns:
        A tuple of two Python floats.
    """
    try:
        low, high = value
        low, high = float(low), float(high)
    except (TypeError, ValueError):
        raise invalid_value(value, name, "a pair of numbers (low, high)") from None
    ok = (
        np.isfinite(low)
        and np.isfinite(high)
        and (low < high or not strict and low == high)
    )
    if ok and minimum is not None:
        ok = low >= minimum if min_inclusive else low > minimum
    if ok and maximum is not None:
        ok = high <= maximum
    if not ok:
        conditions = ["finite", "low < high" if strict else "low <= high"]
        if minimum is not None:
            conditions.append(f"low {'>=' if min_inclusive else '>'} {minimum}")
        if maximum is not None:
            conditions.append(f"high <= {maximum}")
        raise invalid_value(
            value, name, f"a pair (low, high) with {', '.join(conditions)}"
        )
    return low, high


# === Strings and choices ===


def choice(value, name, choices):
    """`value` if it is one of `choices` (compared with `==`), else an error."""
    if not any(_same_choice(value, c) for c in choices):
        expected = "one of " + ", ".join(repr(c) for c in choices)
        raise invalid_value(value, name, expected)
    return value


def string(value, name):
    """A `str`."""
    if not isinstance(value, str):
        raise invalid_value(value, name, "a string")
    return value


def data_format(value, name="data_format"):
    """`"channels_last"` or `"channels_first"`; None gives Keras' default."""
    if value is None:
        import keras

        return keras.config.image_data_format()
    return choice(value, name, _DATA_FORMATS)


def activation(value, name):
    """None or a Keras activation (a name or a callable), resolved."""
    if value is None:
        return None
    import keras

    try:
        return keras.activations.get(value)
    except (ValueError, TypeError):
        raise invalid_value(
            value, name, "None or a Keras activation name or callable"
        ) from None


# === Tuples and shapes ===


def int_tuple(value, name, length, minimum=1):
    """An int, or a sequence of `length` ints, as a tuple of `length` ints.

    Keras' `standardize_tuple` with NumPy integers accepted: `3` -> `(3, 3)`
    for `length=2`.
    """
    values = (value,) * length if is_int(value) else _as_tuple(value)
    if (
        values is None
        or len(values) != length
        or not all(is_int(v) and v >= minimum for v in values)
    ):
        if minimum == 1:
            one, many = "a positive integer", "positive integers"
        else:
            one, many = f"an integer >= {minimum}", f"integers >= {minimum}"
        expected = one + (f" or a tuple of {length} {many}" if length > 1 else "")
        raise invalid_value(value, name, expected)
    return tuple(int(v) for v in values)


def shape(value, name, rank=None, allow_none=False):
    """A tuple of positive ints (or None where allowed) of an optional length.

    Args:
        value: a sequence of sizes.
        name: str. The argument name.
        rank: int or None. Required length.
        allow_none: bool. Allow `None` sizes (unknown, e.g. a variable image
            size).

    Returns:
        A tuple of Python ints (and None).
    """
    values = _as_tuple(value)
    valid = values is not None and (rank is None or len(values) == rank)
    valid = valid and all(
        (n is None and allow_none) or (is_int(n) and n > 0) for n in values
    )
    if not valid:
        count = f"{rank} " if rank is not None else ""
        expected = f"a tuple of {count}positive integers" + (
            " or None" if allow_none else ""
        )
        raise invalid_value(value, name, expected)
    return tuple(None if n is None else int(n) for n in values)


def input_shape_without_batch(value, rank, in_channels=None, name="input_shape"):
    """A model's input shape *without* the batch axis: `(*spatial, channels)`.

    Spatial sizes may be None (any size); the channel count must be known.
    `None` gives `(None, ..., in_channels or 1)`.

    Args:
        value: tuple or None. The shape, e.g. `(256, 256, 1)` or
            `(None, None, 3)`.
        rank: int. Number of spatial axes (1 for signals, 2 for images).
        in_channels: int or None. A channel count that must agree with the
            shape's, or the channels when `value` is None.
        name: str. The argument name.

    Returns:
        A tuple of length `rank + 1`.

    Example:

    >>> from coordgate_keras.utils import argument_validation as av
    >>> av.input_shape_without_batch(None, rank=2, in_channels=3)
    (None, None, 3)
    """
    in_channels = positive_int(in_channels, "in_channels", allow_none=True)
    if value is None:
        return (None,) * rank + (in_channels or 1,)
    values = _as_tuple(value)
    if (
        values is None
        or len(values) != rank + 1
        or not all(n is None or (is_int(n) and n > 0) for n in values)
    ):
        raise invalid_value(
            value,
            name,
            f"a tuple of {rank + 1} positive integers or None "
            f"({_SPATIAL_NAMES.get(rank, 'spatial sizes')}, channels) without the "
            "batch axis",
        )
    values = tuple(None if n is None else int(n) for n in values)
    if values[-1] is None:
        raise invalid_value(value, name, "a known number of channels")
    if in_channels is not None and in_channels != values[-1]:
        raise invalid_value(
            in_channels,
            "in_channels",
            f"the channel count of `{name}` ({values[-1]}) or None",
        )
    return values


def input_shape_with_batch(value, model=None, name="input_shape"):
    """A fixed shape *with* the batch axis, `(batch, *spatial, channels)`.

    Every size must be a positive int. With `model`, the shape must agree with
    every static size of the model's (single) input; `None` then takes the
    model's input shape with batch 1, which must be fully static.

    Args:
        value: tuple or None. E.g. `(1, 256, 256, 1)`.
        model: a `keras.Model` or None.
        name: str. The argument name.

    Returns:
        A tuple of Python ints.
    """
    model_shape = _model_input_shape(model) if model is not None else None
    if value is None:
        if model_shape is None or None in model_shape[1:]:
            raise invalid_value(
                value,
                name,
                "a fixed shape such as (1, 256, 256, 1); the model's input shape "
                f"{model_shape} has unknown sizes",
            )
        return (1,) + tuple(int(n) for n in model_shape[1:])
    values = _as_tuple(value)
    if (
        values is None
        or len(values) < 3
        or not all(is_int(n) and n > 0 for n in values)
    ):
        raise invalid_value(
            value,
            name,
            "a tuple of positive integers (batch, *spatial, channels), such as "
            "(1, 256, 256, 1)",
        )
    values = tuple(int(n) for n in values)
    if model_shape is not None and (
        len(model_shape) != len(values)
        or any(m is not None and m != n for m, n in zip(model_shape, values))
    ):
        raise invalid_value(
            value,
            name,
            f"a shape compatible with the model's input shape {model_shape}",
        )
    return values


# === Arrays ===


def float_array(value, name, value_range=None):
    """A real floating-point NumPy array of finite values, optionally in a range.

    Integer and boolean arrays are refused rather than converted: whether 255
    means "white" or "255 photons" is the caller's decision (`x / 255`).

    Args:
        value: array-like.
        name: str. The argument name.
        value_range: pair `(low, high)` or None. Inclusive bounds of the values.

    Returns:
        The NumPy array (not copied when already an array).
    """
    array = np.asarray(value)
    float_dtype(array.dtype, name)
    finite = np.isfinite(array)
    if not finite.all():
        bad = int(array.size - np.count_nonzero(finite))
        raise invalid_value(
            value,
            name,
            "finite values (no NaN or infinity)",
            f"{name} with {bad} non-finite value(s) out of {array.size}",
        )
    if value_range is not None and array.size:
        low, high = value_range
        lo, hi = float(array.min()), float(array.max())
        if lo < low or hi > high:
            raise invalid_value(
                value,
                name,
                f"values in [{low:g}, {high:g}]",
                f"{name} with values in [{lo:.6g}, {hi:.6g}]",
            )
    return array


def array_rank(shape, name, ranks, expected):
    """Raises unless an array `shape` has one of `ranks` axes, none empty.

    Args:
        shape: the array's shape.
        name: str. The argument name.
        ranks: tuple of ints. The allowed numbers of axes.
        expected: str. The shape in words, e.g. `"an array of shape (H, W)"`.

    Returns:
        The shape as a tuple.
    """
    shape = tuple(shape)
    if len(shape) not in ranks or 0 in shape:
        raise invalid_value(None, name, expected, f"{name}.shape={shape}")
    return shape


def float_dtype(dtype, name):
    """Raises unless `dtype` (a NumPy dtype) is a real floating-point type."""
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.floating):
        hint = (
            " (scale integer images first, e.g. x / 255 for 8-bit)"
            if np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.bool_)
            else ""
        )
        raise invalid_value(
            None, name, f"a floating-point array{hint}", f"{name} of dtype {dtype}"
        )
    return dtype


# === Helpers ===


def _as_tuple(value):
    if isinstance(value, (str, bytes)) or value is None:
        return None
    try:
        return tuple(value)
    except TypeError:
        return None


def _same_choice(value, candidate):
    # `np.int64(1) == True` and `1 == 1.0` must not make a choice match.
    if type(value) is not type(candidate) and not (
        isinstance(value, str) and isinstance(candidate, str)
    ):
        return False
    return value == candidate


def _plain(value):
    """NumPy scalars shown as Python values in messages (`4`, not `np.int64(4)`)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _model_input_shape(model):
    """The model's single input shape, or None when it has no known input."""
    try:
        input_shape = model.input_shape
    except (AttributeError, ValueError):
        return None
    if isinstance(input_shape, list):
        if len(input_shape) != 1:
            raise invalid_value(
                model,
                "model",
                "a model with a single input",
                f"a model with {len(input_shape)} inputs",
            )
        input_shape = input_shape[0]
    return tuple(input_shape)


def parse_size(text, pair=False, minimum=1, example="256x512"):
    """A size from the command line: `"N"` or `"HxW"` (an `argparse` type).

    Returns `N` for `"N"` (or `(N, N)` with `pair`) and `(H, W)` for `"HxW"`,
    ints of at least `minimum`. Anything else raises
    `argparse.ArgumentTypeError`, whose message argparse prints after the
    flag's name.

    >>> parse_size("2048x1024"), parse_size("512"), parse_size("8", pair=True)
    ((2048, 1024), 512, (8, 8))
    """
    import argparse

    try:
        values = tuple(int(p) for p in str(text).lower().split("x"))
    except ValueError:
        values = ()
    if len(values) not in (1, 2) or min(values) < minimum:
        raise argparse.ArgumentTypeError(
            f"expected N or HxW in pixels (integers >= {minimum}), e.g. {example}; "
            f"received {text!r}"
        )
    if len(values) == 1 and not pair:
        return values[0]
    return values * 2 if len(values) == 1 else values
