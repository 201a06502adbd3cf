import keras

from coordgate_keras.layers._locally_connected import LocallyConnectedBase


@keras.saving.register_keras_serializable(package="coordgate_keras")
class LocallyConnected2D(LocallyConnectedBase):
    """2D locally connected layer: a convolution with a separate kernel per position.

    Like `keras.layers.Conv2D` but without weight sharing: every output
    position has its own `kernel_size` x `channels` x `filters` kernel and its
    own bias, so the layer can learn any spatially-varying linear filter of that
    support (the "fully spatially-varying" reference against which CoordConv and
    CoordGate are compared). Keras 3 dropped Keras 2's `LocallyConnected2D`;
    this one is written on `keras.ops` (strided slices and one `einsum`) and
    compiles under XLA. The height and width must be static.

    The kernel has shape `(new_height, new_width, kh * kw * channels, filters)`,
    each patch flattened in (kernel offset, channel) order, and the bias
    `(new_height, new_width, filters)`.
    Fan-based initializers (Glorot, He, LeCun) see the fans of one position's
    kernel, not of the whole stack.

    Args:
        filters: int. Number of output channels.
        kernel_size: int or tuple of 2 ints. Receptive field.
        strides: int or tuple of 2 ints. Step between receptive fields.
            Defaults to 1.
        padding: str. `"valid"` or `"same"` (zero padding, output size
            `ceil(size / strides)`). Defaults to `"valid"`.
        data_format: str or None. `"channels_last"` or `"channels_first"`.
        activation: str, callable or None. Activation of the output.
        use_bias: bool. Add a per-position bias. Defaults to True.
        kernel_initializer: initializer of the kernel.
        bias_initializer: initializer of the bias.
        kernel_regularizer: regularizer of the kernel.
        bias_regularizer: regularizer of the bias.
        activity_regularizer: regularizer of the output.
        kernel_constraint: constraint of the kernel.
        bias_constraint: constraint of the bias.
        **kwargs: base layer keyword arguments.

    Call arguments:
        inputs: a rank-4 tensor with static spatial sizes.

    Input shape:
        `(batch, height, width, channels)` (or channels first).

    Output shape:
        `(batch, new_height, new_width, filters)`; sizes as for `keras.layers.Conv2D`.

    Example:

    >>> import numpy as np
    >>> from coordgate_keras.layers import LocallyConnected2D
    >>> layer = LocallyConnected2D(4, 3, padding="same")
    >>> tuple(layer(np.zeros((2, 8, 6, 3), "float32")).shape)
    (2, 8, 6, 4)

    Reference:
        - [LeCun, 1989](https://yann.lecun.com/exdb/publis/pdf/lecun-89.pdf)
    """

    rank = 2
