"""Argument checks of the training package, in Keras' message form.

Kept private to `training/` until the package-wide validation module lands.
"""

import math


def invalid(name, expected, received):
    """Returns a `ValueError` in Keras' message form."""
    return ValueError(
        f"Invalid value for argument `{name}`. Expected {expected}. "
        f"Received: {received}"
    )


def positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid(name, "a positive integer", f"{name}={value!r}")
    return value


def non_negative_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise invalid(name, "a non-negative integer", f"{name}={value!r}")
    return value


def non_negative_float(name, value, strict=False):
    ok = (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and math.isfinite(value)
        and (value > 0 if strict else value >= 0)
    )
    if not ok:
        kind = "a positive" if strict else "a non-negative"
        raise invalid(name, f"{kind} finite number", f"{name}={value!r}")
    return float(value)


def one_of(name, value, choices):
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise invalid(name, f"one of {listed}", f"{name}={value!r}")
    return value
