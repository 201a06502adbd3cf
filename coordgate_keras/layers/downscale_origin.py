import keras
from keras import ops

from coordgate_keras.utils import argument_validation as av


@keras.saving.register_keras_serializable(package="coordgate_keras")
class DownscaleOrigin(keras.layers.Layer):
    """An origin at a coarser level of a network: `origin // factor` (int32).

    A window's origin is given at full resolution; the coordinate layers of a
    level that has been down-sampled `factor` times take it at their own
    resolution.

    Args:
        factor: int. The level's down-sampling factor (`2**level` in a U-Net).
        **kwargs: Base layer keyword arguments, such as `name`.

    Call arguments:
        inputs: an integer tensor `(batch, rank)`.

    Input shape:
        `(batch, rank)`.

    Output shape:
        `(batch, rank)`, int32.

    Example:

    >>> import numpy as np
    >>> from coordgate_keras.layers import DownscaleOrigin
    >>> np.asarray(DownscaleOrigin(4)(np.array([[8, 12]]))).tolist()
    [[2, 3]]
    """

    def __init__(self, factor, **kwargs):
        super().__init__(**kwargs)
        self.factor = av.positive_int(factor, "factor")

    def call(self, inputs):
        return ops.floor_divide(ops.cast(inputs, "int32"), self.factor)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs.shape, dtype="int32")

    def get_config(self):
        config = super().get_config()
        config["factor"] = self.factor
        return config
