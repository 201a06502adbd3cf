"""Argument checks shared by the zoo builders, raising Keras-style `ValueError`s."""

from coordgate_keras.layers._args import positive_int


def resolve_input_shape(input_shape, in_channels, rank):
    """Returns a tuple `input_shape` of length `rank + 1` with a known channel count."""
    if in_channels is not None:
        positive_int(in_channels, "in_channels")
    if input_shape is None:
        return (None,) * rank + (in_channels or 1,)
    input_shape = tuple(input_shape)
    if len(input_shape) != rank + 1 or not all(
        n is None or (isinstance(n, int) and n > 0) for n in input_shape
    ):
        raise ValueError(
            "Invalid value for argument `input_shape`. Expected a tuple of "
            f"{rank + 1} positive integers or None ({_spatial_names(rank)}, "
            f"channels). Received: input_shape={input_shape}"
        )
    if input_shape[-1] is None:
        raise ValueError(
            "Invalid value for argument `input_shape`. Expected a known number of "
            f"channels. Received: input_shape={input_shape}"
        )
    if in_channels is not None and in_channels != input_shape[-1]:
        raise ValueError(
            "Invalid value for argument `in_channels`. Expected the channel count "
            f"of `input_shape` ({input_shape[-1]}) or None. "
            f"Received: in_channels={in_channels}"
        )
    return input_shape


def validate_out_channels(out_channels, in_channels, residual):
    """Returns the output channel count (defaults to `in_channels`)."""
    if out_channels is not None:
        positive_int(out_channels, "out_channels")
    out_channels = out_channels or in_channels
    if not isinstance(residual, bool):
        raise ValueError(
            "Invalid value for argument `residual`. Expected a boolean. "
            f"Received: residual={residual!r}"
        )
    if residual and out_channels != in_channels:
        raise ValueError(
            "Invalid value for argument `out_channels`. Expected the input channel "
            f"count ({in_channels}) when residual=True. "
            f"Received: out_channels={out_channels}"
        )
    return out_channels


def _spatial_names(rank):
    return {1: "length", 2: "height, width", 3: "depth, height, width"}[rank]


def check_choice(arg, value, choices):
    if value not in choices:
        expected = ", ".join(repr(c) for c in choices)
        raise ValueError(
            f"Invalid value for argument `{arg}`. Expected one of {expected}. "
            f"Received: {arg}={value!r}"
        )


def standardize_data_format(data_format):
    if data_format is None:
        import keras

        return keras.config.image_data_format()
    check_choice("data_format", data_format, ("channels_last", "channels_first"))
    return data_format
