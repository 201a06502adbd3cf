"""How far an output pixel of a convolutional model can see: from its layers.

Tiled inference (`coordgate_keras.inference`) overlaps its tiles by this
margin, and a tile export records it in its report.
"""

import keras

from coordgate_keras.utils import argument_validation as av

# Layers that act on each pixel (and channel) alone, or combine tensors of the
# same grid pixel by pixel: they add nothing to the receptive field. CoordGate
# multiplies by a gate of the pixel's position and mixes channels 1x1.
_POINTWISE = (
    "Activation",
    "Add",
    "AddCoords",
    "Average",
    "BatchNormalization",
    "Concatenate",
    "CoordGate",
    "Dropout",
    "ELU",
    "FrameWindow",
    "Identity",
    "InputLayer",
    "LeakyReLU",
    "Maximum",
    "Minimum",
    "Multiply",
    "PReLU",
    "ReLU",
    "Rescaling",
    "SpatialDropout2D",
    "SpatialSizeCheck",
    "Subtract",
)


def receptive_field(model):
    """The margin and alignment a tiled run of a 2D model needs to be exact.

    Walks the Keras graph from the image input to the output, tracking for
    every tensor its stride `s` (input pixels per element) and margin `m`: an
    element covering input pixels `[i*s, (i+1)*s)` depends only on input pixels
    in `[i*s - m, (i+1)*s + m)`. A 3x3 convolution (dilation d) at stride `s`
    adds `d*s`, a pooling whose window equals its stride adds nothing, a
    nearest up-sampling or a transposed convolution whose kernel equals its
    stride adds the difference of the strides. So an output pixel more than
    `margin` pixels from a tile's border, in a tile placed on the grid of
    `alignment`, sees exactly what it sees in the whole frame.

    Args:
        model: a functional `keras.Model` with a 2D channels-last image input
            (a second, non-spatial input such as a frame model's `origin` is
            ignored).

    Returns:
        A dict `{"margin": int, "alignment": int}` (alignment: the largest
        stride in the model, `2**depth` for a U-Net).

    Raises:
        ValueError: a layer whose reach is not known (a strided or even-sized
            convolution, a normalisation over the image, a custom layer): pass
            the overlap yourself.

    Example:

    >>> from coordgate_keras.zoo import create_model, receptive_field
    >>> receptive_field(create_model("unet_d1", input_shape=(32, 32, 1)))
    {'margin': 10, 'alignment': 2}
    """
    if not isinstance(model, keras.Model) or not hasattr(model, "operations"):
        raise av.invalid_value(model, "model", "a functional keras.Model")
    grids = {}  # id(KerasTensor) -> (stride, margin); spatial tensors only
    for tensor in model.inputs:
        if len(tensor.shape) == 4:
            grids[id(tensor)] = (1.0, 0.0)
    for operation in model.operations:
        for node in operation._inbound_nodes:
            inputs = [grids.get(id(t)) for t in node.input_tensors]
            spatial = [g for g in inputs if g is not None]
            if not spatial:
                continue
            grid = _propagate(operation, spatial)
            for tensor in node.output_tensors:
                if len(tensor.shape) == 4:
                    grids[id(tensor)] = grid
    outputs = [grids.get(id(t)) for t in model.outputs]
    if any(g is None or g[0] != 1 for g in outputs):
        raise av.invalid_value(
            model.name,
            "model",
            "a model whose outputs are images of the input's size",
        )
    margin = max(g[1] for g in outputs)
    alignment = max(g[0] for g in grids.values())
    return {"margin": int(-(-margin // 1)), "alignment": int(alignment)}


def _propagate(layer, grids):
    strides = {g[0] for g in grids}
    name = type(layer).__name__
    if len(strides) != 1:
        raise _unknown(layer, "it combines tensors of different resolutions")
    stride = strides.pop()
    margin = max(g[1] for g in grids)
    if name in _POINTWISE:
        return stride, margin
    if name in ("Conv2D", "CoordConv2D", "DepthwiseConv2D", "SeparableConv2D"):
        kernel = tuple(layer.kernel_size)
        if tuple(layer.strides) != (1, 1) or any(k % 2 == 0 for k in kernel):
            raise _unknown(layer, "only stride-1 convolutions of odd size are known")
        if layer.padding != "same" and kernel != (1, 1):
            raise _unknown(layer, "only 'same' padding keeps the grid")
        reach = max((k - 1) // 2 * d for k, d in zip(kernel, layer.dilation_rate))
        return stride, margin + reach * stride
    if name in ("MaxPooling2D", "AveragePooling2D"):
        pool = tuple(layer.pool_size)
        if tuple(layer.strides) != pool or len(set(pool)) != 1:
            raise _unknown(layer, "only square pools whose stride is their size")
        return stride * pool[0], margin
    if name == "UpSampling2D" or name == "Conv2DTranspose":
        factor = tuple(layer.size if name == "UpSampling2D" else layer.strides)
        if name == "Conv2DTranspose" and tuple(layer.kernel_size) != factor:
            raise _unknown(layer, "only kernels equal to their stride are known")
        if len(set(factor)) != 1:
            raise _unknown(layer, "only square factors are known")
        # An output element lies inside the input element it comes from.
        return stride / factor[0], margin + stride - stride / factor[0]
    raise _unknown(layer, "its reach is not known")


def _unknown(layer, why):
    return av.invalid_value(
        layer.name,
        "model",
        f"layers whose receptive field is known ({why}: "
        f"{type(layer).__name__}); pass `overlap` yourself",
        f"layer {layer.name!r}",
    )
