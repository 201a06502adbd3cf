"""Argument checks of `coordgate_keras.tflite`, raising Keras-style `ValueError`s."""

# The modes of `export_tflite(quantization=...)`.
QUANTIZATIONS = ("none", "float16", "dynamic", "int8")


def invalid(name, expected, received):
    """Returns a `ValueError` in Keras' message form."""
    return ValueError(
        f"Invalid value for argument `{name}`. Expected {expected}. "
        f"Received: {received}"
    )


def check_quantization(quantization):
    if quantization not in QUANTIZATIONS:
        expected = "one of " + ", ".join(repr(q) for q in QUANTIZATIONS)
        raise invalid("quantization", expected, f"quantization={quantization!r}")
    return quantization


def resolve_input_shape(model, input_shape):
    """The fixed export shape `(batch, *spatial, channels)` as a tuple of ints.

    `None` takes the model's input shape with batch 1, which must then be fully
    static. A given shape must agree with every static size of the model's input.
    """
    model_shape = _model_input_shape(model)
    if input_shape is None:
        if model_shape is None or None in model_shape[1:]:
            raise invalid(
                "input_shape",
                "a fixed shape such as (1, 256, 256, 1); the model's input shape "
                f"{model_shape} has unknown sizes",
                "input_shape=None",
            )
        return (1,) + tuple(int(n) for n in model_shape[1:])
    try:
        input_shape = tuple(input_shape)
    except TypeError:
        input_shape = None
    if (
        not input_shape
        or len(input_shape) < 3
        or not all(
            isinstance(n, int) and not isinstance(n, bool) and n > 0
            for n in input_shape
        )
    ):
        raise invalid(
            "input_shape",
            "a tuple of positive integers (batch, *spatial, channels), such as "
            "(1, 256, 256, 1)",
            f"input_shape={input_shape!r}",
        )
    if model_shape is not None and (
        len(model_shape) != len(input_shape)
        or any(m is not None and m != n for m, n in zip(model_shape, input_shape))
    ):
        raise invalid(
            "input_shape",
            f"a shape compatible with the model's input shape {model_shape}",
            f"input_shape={input_shape}",
        )
    return input_shape


def _model_input_shape(model):
    """The model's single input shape, or None when it has no known input."""
    try:
        shape = model.input_shape
    except (AttributeError, ValueError):
        return None
    if isinstance(shape, list):
        if len(shape) != 1:
            raise invalid(
                "model",
                "a model with a single input",
                f"a model with {len(shape)} inputs",
            )
        shape = shape[0]
    return tuple(shape)
