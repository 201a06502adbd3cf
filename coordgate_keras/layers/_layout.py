"""Channels-first convolutions that run on every backend (machinery, not public API).

TensorFlow's CPU kernels convolve only NHWC tensors unless TensorFlow was built
with oneDNN enabled for the CPU it runs on (it is off on AMD CPUs): an NCHW
`Conv2D` there fails with "only supports the NHWC tensor format". On the
TensorFlow backend a channels-first convolution is therefore computed channels
last between two transposes, which every TensorFlow device (and the TFLite
converter, which is NHWC only) runs; the other backends convolve channels first
natively.
"""

import keras
from keras import ops


def _channels_last_on_this_backend(data_format):
    return data_format == "channels_first" and keras.backend.backend() == "tensorflow"


def conv(inputs, kernel, data_format, **kwargs):
    """`ops.conv` in `data_format`, channels first computed channels last on TF."""
    if not _channels_last_on_this_backend(data_format):
        return ops.conv(inputs, kernel, data_format=data_format, **kwargs)
    rank = len(inputs.shape) - 2
    to_last = (0,) + tuple(range(2, rank + 2)) + (1,)
    to_first = (0, rank + 1) + tuple(range(1, rank + 1))
    outputs = ops.conv(
        ops.transpose(inputs, to_last), kernel, data_format="channels_last", **kwargs
    )
    return ops.transpose(outputs, to_first)


def pointwise(inputs, kernel, bias, data_format):
    """A 1x1 convolution with bias: `kernel` of shape `(1, ..., 1, in, out)`.

    Channels last it is `ops.conv` (a CONV_2D in TFLite); channels first it is a
    contraction over the channel axis, which needs no transpose on any backend.
    """
    if data_format == "channels_last":
        outputs = ops.conv(inputs, kernel, data_format=data_format)
        return outputs + bias if bias is not None else outputs
    matrix = ops.reshape(kernel, tuple(kernel.shape[-2:]))
    outputs = ops.einsum("bc...,cf->bf...", inputs, matrix)
    if bias is None:
        return outputs
    return outputs + ops.reshape(bias, (-1,) + (1,) * (len(inputs.shape) - 2))
