import keras

from coordgate_keras.layers import _frame
from coordgate_keras.utils import argument_validation as av


@keras.saving.register_keras_serializable(package="coordgate_keras")
class FrameWindow(keras.layers.Layer):
    """Passes a window of a frame through; refuses origins a model cannot take.

    The first layer of a model that runs on windows (tiles, crops) of a larger
    frame with their origins: `FrameWindow(...)([image, origin])` returns `image`
    unchanged after checking, in eager calls, that every sample's window lies
    inside the frame and starts on the model's grid (a U-Net of depth `d` sees
    its deepest features at `2**d`-pixel steps, so its origins must be multiples
    of `2**d` for the window to see the frame's own down-sampling grid).

    The frame geometry lives in this layer's config, so it travels with saved
    models (`coordgate_keras.zoo.frame_geometry` reads it). Inside a traced graph
    (`predict`, XLA, export) the origin's values are unknown and not checked.

    Args:
        frame_shape: tuple of ints. The frame's spatial shape, at the resolution
            of `image`.
        alignment: int. Every origin must be a multiple of it. Defaults to 1.
        **kwargs: Base layer keyword arguments, such as `name`.

    Call arguments:
        inputs: `[image, origin]`: `image` of shape `(batch, *spatial, channels)`,
            `origin` an integer tensor `(batch, rank)`, the index of the window's
            first pixel in the frame.

    Input shape:
        `[(batch, *spatial, channels), (batch, rank)]`.

    Output shape:
        The image's shape.

    Example:

    >>> import numpy as np
    >>> from coordgate_keras.layers import FrameWindow
    >>> check = FrameWindow((64, 64), alignment=4)
    >>> window = np.zeros((1, 16, 16, 1), "float32")
    >>> tuple(check([window, np.array([[48, 8]])]).shape)
    (1, 16, 16, 1)
    """

    def __init__(self, frame_shape, alignment=1, **kwargs):
        super().__init__(**kwargs)
        frame_shape = _frame.frame_shape_argument(frame_shape)
        if frame_shape is None:
            raise av.invalid_value(
                frame_shape, "frame_shape", "a tuple of 1 to 3 positive integers"
            )
        self.frame_shape = frame_shape
        self.alignment = av.positive_int(alignment, "alignment")

    def build(self, input_shape):
        _frame.check_build_shapes(self, input_shape, lambda n: list(range(1, n - 1)))

    def call(self, inputs):
        image, origin = _frame.split_inputs(self, inputs)
        sizes = tuple(image.shape)[1:-1]
        _frame.check_origin(self, origin, sizes, self.alignment)
        return image

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        config = super().get_config()
        config.update({"frame_shape": self.frame_shape, "alignment": self.alignment})
        return config
