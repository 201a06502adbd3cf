"""Argument validation shared by the `coordgate_keras.data` modules.

Every message follows Keras' form: "Invalid value for argument `name`.
Expected ... Received: name=...".
"""

import numpy as np


def invalid(name, expected, received):
    """Returns a `ValueError` in Keras' message form."""
    return ValueError(
        f"Invalid value for argument `{name}`. Expected {expected}. "
        f"Received: {received}"
    )


def check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise invalid(name, "a positive integer", f"{name}={value!r}")
    if value < 1:
        raise invalid(name, "a positive integer", f"{name}={value!r}")
    return int(value)


def check_shape_2d(name, value):
    """Validates a `(height, width)` pair of positive integers."""
    try:
        shape = tuple(value)
    except TypeError:
        raise invalid(
            name, "a tuple of two positive integers", f"{name}={value!r}"
        ) from None
    if len(shape) != 2 or not all(
        isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1
        for s in shape
    ):
        raise invalid(name, "a tuple of two positive integers", f"{name}={value!r}")
    return tuple(int(s) for s in shape)


def check_range(name, value, low=-np.inf, high=np.inf, strict_low=False):
    """Validates a `(min, max)` pair with `low <= min <= max <= high`."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise invalid(
            name, "a pair of numbers `(min, max)`", f"{name}={value!r}"
        ) from None
    too_low = lo <= low if strict_low else lo < low
    if not (np.isfinite(lo) and np.isfinite(hi)) or too_low or hi > high or lo > hi:
        bound = ">" if strict_low else ">="
        raise invalid(
            name,
            f"a pair `(min, max)` with {bound} {low}, min <= max <= {high}",
            f"{name}={value!r}",
        )
    return lo, hi


def check_finite(name, array):
    """Raises if `array` holds NaN or infinity (images, PSFs, signals)."""
    if not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise invalid(
            name,
            "finite values (no NaN or infinity)",
            f"{name} with {bad} non-finite value(s) out of {np.size(array)}",
        )


def check_seed(name, value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise invalid(name, "a non-negative integer or None", f"{name}={value!r}")
    if value < 0:
        raise invalid(name, "a non-negative integer or None", f"{name}={value!r}")
    return int(value)
