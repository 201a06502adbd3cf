"""1D family of the paper's 1D experiment: Conv1D, CoordConv1D, CoordGate and
locally connected networks."""

import keras

from coordgate_keras.layers import CoordConv1D, CoordGate, LocallyConnected1D
from coordgate_keras.utils import argument_validation as av
from coordgate_keras.zoo._frame import with_frame
from coordgate_keras.zoo._registry import register_model
from coordgate_keras.zoo.unet import resolve_out_channels

SPATIAL_MODES_1D = (None, "coordconv", "coordgate", "locally_connected")
REFERENCE_INPUT_SHAPE_1D = (256, 1)


def build_cnn1d(
    input_shape=None,
    depth=3,
    filters=16,
    kernel_size=9,
    in_channels=None,
    out_channels=None,
    activation="relu",
    output_activation=None,
    residual=False,
    spatial=None,
    coordgate_options=None,
    frame_shape=None,
    name="cnn1d",
):
    """Builds a small 1D convolutional network, optionally spatially varying.

    `depth` hidden layers of `filters` channels and `kernel_size` taps ("same"
    padding, so the length is kept), then a 1x1 convolution to `out_channels`.
    `spatial` selects what the hidden layers are:

    - `None`: `Conv1D` (translation invariant).
    - `"coordconv"`: `CoordConv1D` (the position is an extra input channel).
    - `"coordgate"`: `Conv1D`, each followed by a `CoordGate` (with the layer's
      defaults, overridable through `coordgate_options`).
    - `"locally_connected"`: `LocallyConnected1D`, a separate kernel at every
      position: the fully spatially-varying reference (needs a static length).

    Args:
        input_shape: tuple or None. `(length, channels)`; the length may be
            `None` except for `"locally_connected"`. Defaults to `(256, 1)` for
            `"locally_connected"` and `(None, in_channels or 1)` otherwise.
        depth: int. Number of hidden layers.
        filters: int. Channels of each hidden layer.
        kernel_size: int. Taps of each hidden layer.
        in_channels: int or None. Input channels, when `input_shape` is not
            given.
        out_channels: int or None. Output channels; defaults to the input's.
        activation: str or callable. Activation of the hidden layers.
        output_activation: str, callable or None. Output activation.
        residual: bool. Add the input to the output (needs `out_channels` equal
            to the input channels).
        spatial: None, `"coordconv"`, `"coordgate"` or `"locally_connected"`.
        coordgate_options: dict or None. `CoordGate` keyword arguments; only with
            `spatial="coordgate"`.
        frame_shape: tuple of 1 int or None. The length of the whole signal that
            inputs are windows of: the model then takes `[signal, origin]`
            (`origin` `(batch, 1)` int32); see `coordgate_keras.zoo.with_frame`.
            Not with `spatial="locally_connected"` (its weights are per position
            of the input, with no frame form).
        name: str. Model name and layer-name prefix.

    Returns:
        A `keras.Model` mapping `(batch, length, channels)` to
        `(batch, length, out_channels)`.

    Example:

    >>> from coordgate_keras.zoo import build_cnn1d
    >>> model = build_cnn1d((128, 1), spatial="coordgate")
    >>> model.output_shape
    (None, 128, 1)

    Reference:
        - [Howard et al., 2023](https://arxiv.org/abs/2401.04680)
    """
    av.choice(spatial, "spatial", SPATIAL_MODES_1D)
    if input_shape is None and spatial == "locally_connected":
        input_shape = (REFERENCE_INPUT_SHAPE_1D[0], in_channels or 1)
    input_shape = av.input_shape_without_batch(input_shape, 1, in_channels)
    if spatial == "locally_connected" and input_shape[0] is None:
        raise av.invalid_value(
            input_shape,
            "input_shape",
            "a static length for spatial='locally_connected' (every position has "
            "its own kernel)",
        )
    depth = av.positive_int(depth, "depth")
    filters = av.positive_int(filters, "filters")
    kernel_size = av.positive_int(kernel_size, "kernel_size")
    if coordgate_options is not None and (
        spatial != "coordgate" or not isinstance(coordgate_options, dict)
    ):
        raise av.invalid_value(
            coordgate_options,
            "coordgate_options",
            "None, or a dict of `CoordGate` keyword arguments with "
            f"spatial='coordgate' (spatial={spatial!r})",
        )
    out_channels = resolve_out_channels(out_channels, input_shape[-1], residual)

    inputs = keras.Input(input_shape, name=f"{name}_input")
    x = inputs
    for i in range(depth):
        layer_name = f"{name}_layer{i}_conv"
        if spatial == "locally_connected":
            x = LocallyConnected1D(
                filters, kernel_size, padding="same", name=layer_name
            )(x)
        elif spatial == "coordconv":
            x = CoordConv1D(filters, kernel_size, padding="same", name=layer_name)(x)
        else:
            x = keras.layers.Conv1D(
                filters, kernel_size, padding="same", name=layer_name
            )(x)
        x = keras.layers.Activation(activation, name=f"{name}_layer{i}_act")(x)
        if spatial == "coordgate":
            x = CoordGate(**(coordgate_options or {}), name=f"{name}_layer{i}_gate")(x)
    x = keras.layers.Conv1D(out_channels, 1, name=f"{name}_out_conv")(x)
    if residual:
        x = keras.layers.Add(name=f"{name}_residual")([inputs, x])
    if output_activation is not None:
        x = keras.layers.Activation(output_activation, name=f"{name}_out_act")(x)
    model = keras.Model(inputs, x, name=name)
    if frame_shape is not None:
        model = with_frame(model, frame_shape)
    return model


@register_model(depth=3, reference_input_shape=REFERENCE_INPUT_SHAPE_1D)
def cnn1d(**kwargs):
    """1D CNN, 3 Conv1D layers (translation invariant baseline)."""
    return build_cnn1d(**kwargs)


@register_model(depth=3, reference_input_shape=REFERENCE_INPUT_SHAPE_1D)
def coordconv_cnn1d(**kwargs):
    """1D CNN, 3 CoordConv1D layers."""
    return build_cnn1d(**{"spatial": "coordconv", **kwargs})


@register_model(depth=3, reference_input_shape=REFERENCE_INPUT_SHAPE_1D)
def coordgate_cnn1d(**kwargs):
    """1D CNN, 3 Conv1D layers each followed by a CoordGate."""
    return build_cnn1d(**{"spatial": "coordgate", **kwargs})


@register_model(depth=3, reference_input_shape=REFERENCE_INPUT_SHAPE_1D)
def locally_connected_cnn1d(**kwargs):
    """1D network, 3 LocallyConnected1D layers (fully spatially varying)."""
    return build_cnn1d(**{"spatial": "locally_connected", **kwargs})
