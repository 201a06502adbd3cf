import keras

from coordgate_keras.layers._coord_conv import CoordConvMixin, conv_arguments


@keras.saving.register_keras_serializable(package="coordgate_keras")
class CoordConv2D(CoordConvMixin, keras.layers.Conv2D):
    """2D convolution over the input with 2 coordinate channel(s) appended.

    `AddCoords` followed by `keras.layers.Conv2D`: the convolution sees, besides the
    input channels, the normalised position (-1 to 1 along each spatial axis) of every
    pixel, so its response can depend on where it is. Every argument of
    `keras.layers.Conv2D` is accepted and behaves as there; the kernel has
    `channels + 2 (+ 1 with with_r)` input channels.

    Args:
        filters: int, the number of output channels.
        kernel_size: int or tuple of 2 ints, the convolution window.
        with_r: bool. Also append the radius channel (see `AddCoords`).
        frame_shape: tuple of ints or None. The whole frame's spatial shape: the
            layer is then called as `layer([x, origin])` and sees the frame's
            coordinates at the window (see `AddCoords`).
        **kwargs: every other argument of `keras.layers.Conv2D` (`strides`,
            `padding`, `data_format`, `dilation_rate`, `groups`, `activation`,
            `use_bias`, initializers, regularizers, constraints) and base layer
            keyword arguments.

    Call arguments:
        inputs: a rank-4 tensor; with `frame_shape`, `[x, origin]` (see
            `AddCoords`).

    Input shape:
        `(batch, height, width, channels)` (or channels first).

    Output shape:
        as `keras.layers.Conv2D` with `filters` output channels.

    Example:

    >>> import numpy as np
    >>> from coordgate_keras.layers import CoordConv2D
    >>> CoordConv2D(8, 3, padding="same")(np.zeros((2, 16, 12, 3), "float32")).shape[-1]
    8

    Reference:
        - [Liu et al., 2018](https://arxiv.org/abs/1807.03247)
    """

    def __init__(self, filters, kernel_size, with_r=False, frame_shape=None, **kwargs):
        filters, kernel_size, kwargs = conv_arguments(filters, kernel_size, 2, kwargs)
        super().__init__(filters=filters, kernel_size=kernel_size, **kwargs)
        self._init_with_r(with_r, frame_shape)
