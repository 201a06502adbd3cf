import keras

from coordgate_keras.utils import argument_validation as av


@keras.saving.register_keras_serializable(package="coordgate_keras")
class SpatialSizeCheck(keras.layers.Layer):
    """Passes its input through; refuses spatial sizes that are not multiples.

    A network that down-samples `depth` times by 2 and concatenates skip
    tensors (a U-Net) needs every spatial size divisible by `2**depth`. Built
    for any size (`None`), it would otherwise fail deep inside, at a skip
    concatenation, with an error about mismatched shapes. Placed right after
    the input, this layer says what is wrong and which sizes would work.

    The check reads static shapes (eager calls, `predict`, tracing for XLA or
    export all have them); the layer computes nothing, so it adds no operation
    to a traced graph or a TFLite file.

    Args:
        multiple: int. Every spatial size must be a multiple of it.
        reason: str or None. Why, appended to the message (e.g.
            `"2**depth for depth=3"`).
        data_format: string, `"channels_last"` or `"channels_first"`.
        **kwargs: Base layer keyword arguments, such as `name`.

    Call arguments:
        inputs: a tensor of rank 3 or more, `(batch, *spatial, channels)`.

    Input shape:
        Any, batch and channels included.

    Output shape:
        The input shape.

    Example:

    >>> import numpy as np
    >>> from coordgate_keras.layers import SpatialSizeCheck
    >>> tuple(SpatialSizeCheck(4)(np.zeros((1, 8, 12, 1), "float32")).shape)
    (1, 8, 12, 1)
    """

    def __init__(self, multiple, reason=None, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.multiple = av.positive_int(multiple, "multiple")
        self.reason = None if reason is None else av.string(reason, "reason")
        self.data_format = av.data_format(data_format)

    def _check(self, shape):
        shape = tuple(shape)
        spatial = shape[1:-1] if self.data_format == "channels_last" else shape[2:]
        bad = [n for n in spatial if n is not None and n % self.multiple]
        if not bad:
            return
        suggestions = "; ".join(
            f"{n} -> {nearest_multiples(n, self.multiple)}" for n in dict.fromkeys(bad)
        )
        reason = f" ({self.reason})" if self.reason else ""
        raise ValueError(
            f"Invalid input shape for `{self.name}`. Expected spatial sizes "
            f"divisible by {self.multiple}{reason}; nearest valid sizes: "
            f"{suggestions}. Received: input_shape={shape}"
        )

    def build(self, input_shape):
        self._check(input_shape)

    def call(self, inputs):
        self._check(inputs.shape)
        return inputs

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "multiple": self.multiple,
                "reason": self.reason,
                "data_format": self.data_format,
            }
        )
        return config


def nearest_multiples(n, multiple):
    """The multiples of `multiple` just below and above `n`, as text."""
    below, above = (n // multiple) * multiple, (n // multiple + 1) * multiple
    return f"{below} or {above}" if below else f"{above}"
