"""Argument normalisation shared by the layers (machinery, not public API)."""

import keras


def data_format(value):
    if value is None:
        return keras.config.image_data_format()
    if value not in ("channels_last", "channels_first"):
        raise ValueError(
            "Invalid value for argument `data_format`. Expected 'channels_last' or "
            f"'channels_first'. Received: data_format={value!r}"
        )
    return value


def boolean(value, name):
    if not isinstance(value, bool):
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected a boolean. "
            f"Received: {name}={value!r}"
        )
    return value


def positive_int(value, name, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        expected = "a positive integer" + (" or None" if allow_none else "")
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected {expected}. "
            f"Received: {name}={value!r}"
        )
    return value


def activation(value, name):
    if value is None:
        return None
    try:
        return keras.activations.get(value)
    except (ValueError, TypeError):
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected None or a Keras "
            f"activation name or callable. Received: {name}={value!r}"
        ) from None
