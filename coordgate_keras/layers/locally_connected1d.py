import keras

from coordgate_keras.layers._locally_connected import LocallyConnectedBase


@keras.saving.register_keras_serializable(package="coordgate_keras")
class LocallyConnected1D(LocallyConnectedBase):
    """1D locally connected layer: a convolution with a separate kernel per position.

    Like `keras.layers.Conv1D` but without weight sharing: every output
    position has its own `kernel_size` x `channels` x `filters` kernel and its
    own bias, so the layer can learn any spatially-varying linear filter of that
    support (the "fully spatially-varying" reference against which CoordConv and
    CoordGate are compared). Keras 3 dropped Keras 2's `LocallyConnected1D`;
    this one is written on `keras.ops` (strided slices and one `einsum`) and
    compiles under XLA. The length must be static.

    The kernel has shape `(new_length, kernel_size * channels, filters)`, each
    patch flattened in (kernel offset, channel) order, and the bias
    `(new_length, filters)`.
    Fan-based initializers (Glorot, He, LeCun) see the fans of one position's
    kernel, not of the whole stack.

    Args:
        filters: int. Number of output channels.
        kernel_size: int or tuple of 1 int. Receptive field.
        strides: int or tuple of 1 int. Step between receptive fields. Defaults to 1.
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
        inputs: a rank-3 tensor with static spatial sizes.

    Input shape:
        `(batch, length, channels)` (or channels first).

    Output shape:
        `(batch, new_length, filters)`; `new_length` as for `keras.layers.Conv1D`.

    Example:

    >>> import numpy as np
    >>> from coordgate_keras.layers import LocallyConnected1D
    >>> layer = LocallyConnected1D(4, 3, padding="same")
    >>> tuple(layer(np.zeros((2, 16, 3), "float32")).shape)
    (2, 16, 4)

    Reference:
        - [LeCun, 1989](https://yann.lecun.com/exdb/publis/pdf/lecun-89.pdf)
    """

    rank = 1
