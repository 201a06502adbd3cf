"""U-Net family: plain, CoordConv (every 3x3 conv) and CoordGate (CG_UNet placement)."""

import keras

from coordgate_keras.layers import CoordConv2D, CoordGate, SpatialSizeCheck
from coordgate_keras.layers.spatial_size_check import nearest_multiples
from coordgate_keras.utils import argument_validation as av
from coordgate_keras.zoo._frame import with_frame
from coordgate_keras.zoo._registry import register_model

# CoordGate options of the paper's U-Net. The author's CG_UNet (sunnyhoward/SCI,
# models/custom/model.py) builds every gate as `CoordGate(3, 64, channels)`: three
# Dense layers 2 -> 64 -> 64 -> channels, then the 1x1 projection. The gate
# activation stays at the layer's default (ReLU, the author's later CoordGate);
# the SCI module that CG_UNet imported applied none.
PAPER_COORDGATE_OPTIONS = {"encoding_layers": 3, "encoding_units": 64}

NORMALIZATIONS = (None, "batch", "group")
UPSAMPLINGS = ("upsample", "transpose")
SPATIAL_MODES = (None, "coordconv", "coordgate")


def build_unet(
    input_shape=None,
    depth=4,
    base_filters=64,
    convs_per_block=2,
    normalization=None,
    norm_groups=8,
    upsampling="upsample",
    in_channels=None,
    out_channels=None,
    activation="relu",
    output_activation=None,
    residual=False,
    spatial=None,
    coordgate_options=None,
    output_initializer="glorot_uniform",
    frame_shape=None,
    name="unet",
):
    """Builds a 2D U-Net, optionally spatially varying (CoordConv or CoordGate).

    The encoder has `depth` levels of `convs_per_block` 3x3 convolutions followed
    by a 2x2 max-pool; level `i` has `base_filters * 2**i` channels, the
    bottleneck `base_filters * 2**depth`. Each decoder level up-samples by 2,
    concatenates the encoder's skip tensor and applies `convs_per_block`
    convolutions; a 1x1 convolution maps to `out_channels`.

    `spatial` makes it position dependent:

    - `None`: plain U-Net.
    - `"coordconv"`: `CoordConv2D` in place of every 3x3 convolution (the
      CoordConv-UNet of El Jurdi et al., 2021, a baseline of the CoordGate paper).
    - `"coordgate"`: a `CoordGate` after every encoder block (before its skip
      tensor is taken), before every up-sampling and before the output
      convolution, as in the author's `CG_UNet`. The gates keep the channel count,
      so removing them leaves exactly the plain U-Net.

    Convolutions carry a bias only when `normalization` is `None` (a
    normalisation layer's offset makes it redundant).

    Args:
        input_shape: tuple or None. `(height, width, channels)`; height and width
            may be `None` (fully convolutional) and must otherwise be divisible
            by `2**depth` (with `None`, inputs must still be, or the skip
            concatenation fails at call time). Defaults to
            `(None, None, in_channels or 1)`.
        depth: int. Number of down-sampling levels.
        base_filters: int. Channels of the first level, doubled at each level.
        convs_per_block: int. 3x3 convolutions per block.
        normalization: None, `"batch"` or `"group"`. Normalisation after each
            3x3 convolution.
        norm_groups: int. Groups of `"group"` normalisation; must divide
            `base_filters`.
        upsampling: `"upsample"` (nearest `UpSampling2D` then a 3x3 convolution,
            supported by every edge accelerator) or `"transpose"` (a 2x2
            stride-2 `Conv2DTranspose`).
        in_channels: int or None. Input channels, when `input_shape` is not
            given.
        out_channels: int or None. Output channels; defaults to the input's.
        activation: str or callable. Activation after each 3x3 convolution.
        output_activation: str, callable or None. Activation of the output
            (applied after the residual sum).
        residual: bool. Predict a correction added to the input (needs
            `out_channels` equal to the input channels).
        spatial: None, `"coordconv"` or `"coordgate"`. See above.
        coordgate_options: dict or None. Keyword arguments of `CoordGate`, over
            `PAPER_COORDGATE_OPTIONS`; only with `spatial="coordgate"`.
        output_initializer: str or `keras.initializers.Initializer`. Kernel
            initializer of the output 1x1 convolution. With `residual=True`,
            `"zeros"` makes the untrained network the identity (it starts at the
            blurred input's score; see the 2D study's "PSNR at init"); the
            default is Keras' and that of every published run.
        frame_shape: tuple of 2 ints or None. The spatial shape of the whole
            frame (sensor) that `input_shape` is a window of. With it the model
            takes `[image, origin]` (`origin`: `(batch, 2)` int32, the window's
            top-left pixel in the frame, a multiple of `2**depth`) and every
            coordinate layer sees the frame's coordinates at the window (see
            `coordgate_keras.zoo.with_frame`). None: coordinates span the input.
        name: str. Model name, also the prefix of every layer name.

    Returns:
        A `keras.Model` mapping `(batch, height, width, channels)` to
        `(batch, height, width, out_channels)`.

    Example:

    >>> from coordgate_keras.zoo import build_unet
    >>> model = build_unet((64, 64, 1), depth=2, base_filters=8, spatial="coordgate")
    >>> model.output_shape
    (None, 64, 64, 1)

    Reference:
        - [Ronneberger et al., 2015](https://arxiv.org/abs/1505.04597)
        - [El Jurdi et al., 2021](https://doi.org/10.1016/j.cviu.2021.103192)
        - [Howard et al., 2023](https://arxiv.org/abs/2401.04680)
    """
    input_shape = av.input_shape_without_batch(input_shape, 2, in_channels)
    depth, base_filters, convs_per_block, norm_groups = validate_unet_arguments(
        depth=depth,
        base_filters=base_filters,
        convs_per_block=convs_per_block,
        normalization=normalization,
        norm_groups=norm_groups,
        upsampling=upsampling,
        spatial=spatial,
        coordgate_options=coordgate_options,
    )
    check_divisible(input_shape, depth)
    channels = input_shape[-1]
    out_channels = resolve_out_channels(out_channels, channels, residual)

    inputs = keras.Input(input_shape, name=f"{name}_input")
    x = size_check(inputs, depth, name)
    x = unet_backbone(
        x,
        depth=depth,
        base_filters=base_filters,
        convs_per_block=convs_per_block,
        normalization=normalization,
        norm_groups=norm_groups,
        upsampling=upsampling,
        activation=activation,
        spatial=spatial,
        coordgate_options=coordgate_options,
        name=name,
    )
    outputs = output_head(
        x,
        inputs,
        out_channels=out_channels,
        output_activation=output_activation,
        residual=residual,
        kernel_initializer=output_initializer,
        initializer_argument="output_initializer",
        name=name,
    )
    model = keras.Model(inputs, outputs, name=name)
    if frame_shape is not None:
        model = with_frame(model, frame_shape)
    return model


# === Blocks: tensor -> tensor functions with deterministic layer names ===


def unet_backbone(
    x,
    depth,
    base_filters,
    convs_per_block=2,
    normalization=None,
    norm_groups=8,
    upsampling="upsample",
    activation="relu",
    spatial=None,
    coordgate_options=None,
    name="unet",
):
    """Encoder, bottleneck and decoder; returns `base_filters` channels at full size.

    With `spatial="coordgate"` the returned tensor has passed the output gate.
    Arguments as in `build_unet` (not validated here).
    """
    block = dict(
        convs=convs_per_block,
        normalization=normalization,
        norm_groups=norm_groups,
        activation=activation,
        coordconv=spatial == "coordconv",
    )
    gate = None
    if spatial == "coordgate":
        gate = {**PAPER_COORDGATE_OPTIONS, **(coordgate_options or {})}

    skips = []
    for i in range(depth):
        x = conv_block(x, base_filters * 2**i, name=f"{name}_down{i}", **block)
        if gate is not None:
            x = CoordGate(**gate, name=f"{name}_down{i}_gate")(x)
        skips.append(x)
        x = keras.layers.MaxPooling2D(2, name=f"{name}_down{i}_pool")(x)

    x = conv_block(x, base_filters * 2**depth, name=f"{name}_bottleneck", **block)

    for i in reversed(range(depth)):
        filters = base_filters * 2**i
        if gate is not None:
            x = CoordGate(**gate, name=f"{name}_up{i}_gate")(x)
        x = upsample_block(
            x,
            filters,
            mode=upsampling,
            coordconv=spatial == "coordconv",
            name=f"{name}_up{i}",
        )
        x = keras.layers.Concatenate(name=f"{name}_up{i}_concat")([skips[i], x])
        x = conv_block(x, filters, name=f"{name}_up{i}", **block)

    if gate is not None:
        x = CoordGate(**gate, name=f"{name}_out_gate")(x)
    return x


def conv_block(
    x,
    filters,
    convs=2,
    normalization=None,
    norm_groups=8,
    activation="relu",
    coordconv=False,
    name="block",
):
    """`convs` x (3x3 conv -> optional normalisation -> activation)."""
    conv_class = CoordConv2D if coordconv else keras.layers.Conv2D
    for j in range(convs):
        x = conv_class(
            filters,
            3,
            padding="same",
            use_bias=normalization is None,
            name=f"{name}_conv{j}",
        )(x)
        if normalization == "batch":
            x = keras.layers.BatchNormalization(name=f"{name}_norm{j}")(x)
        elif normalization == "group":
            x = keras.layers.GroupNormalization(
                groups=norm_groups, name=f"{name}_norm{j}"
            )(x)
        x = keras.layers.Activation(activation, name=f"{name}_act{j}")(x)
    return x


def upsample_block(x, filters, mode="upsample", coordconv=False, name="up"):
    """Doubles height and width and maps to `filters` channels (no activation)."""
    if mode == "transpose":
        return keras.layers.Conv2DTranspose(
            filters, 2, strides=2, name=f"{name}_upconv"
        )(x)
    x = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_upsample")(
        x
    )
    conv_class = CoordConv2D if coordconv else keras.layers.Conv2D
    return conv_class(filters, 3, padding="same", name=f"{name}_upconv")(x)


def output_head(
    x,
    inputs,
    out_channels,
    output_activation=None,
    residual=False,
    kernel_initializer="glorot_uniform",
    initializer_argument="kernel_initializer",
    name="unet",
):
    """1x1 convolution to `out_channels`, optional global residual, activation.

    The initializer is resolved here, where the convolution used to resolve it:
    a seeded initializer draws its seed when it is made, so resolving it earlier
    would change every seeded model's weights.
    """
    kernel_initializer = resolve_initializer(kernel_initializer, initializer_argument)
    x = keras.layers.Conv2D(
        out_channels, 1, kernel_initializer=kernel_initializer, name=f"{name}_out_conv"
    )(x)
    if residual:
        x = keras.layers.Add(name=f"{name}_residual")([inputs, x])
    if output_activation is not None:
        x = keras.layers.Activation(output_activation, name=f"{name}_out_act")(x)
    return x


# === Argument checks (Keras' error form) ===


def resolve_initializer(value, name):
    """`keras.initializers.get(value)`, refused in Keras' error form."""
    try:
        initializer = keras.initializers.get(value)
    except (ValueError, TypeError):
        initializer = None
    if initializer is None:
        raise av.invalid_value(
            value, name, "a Keras initializer or its name, e.g. 'zeros'"
        )
    return initializer


def validate_unet_arguments(
    depth,
    base_filters,
    convs_per_block,
    normalization,
    norm_groups,
    upsampling,
    spatial,
    coordgate_options,
):
    """Checks the U-Net arguments (Keras' error form).

    Returns:
        `(depth, base_filters, convs_per_block, norm_groups)` as Python ints.
    """
    depth = av.positive_int(depth, "depth")
    base_filters = av.positive_int(base_filters, "base_filters")
    convs_per_block = av.positive_int(convs_per_block, "convs_per_block")
    av.choice(normalization, "normalization", NORMALIZATIONS)
    av.choice(upsampling, "upsampling", UPSAMPLINGS)
    av.choice(spatial, "spatial", SPATIAL_MODES)
    if normalization == "group":
        norm_groups = av.positive_int(norm_groups, "norm_groups")
        if base_filters % norm_groups:
            raise av.invalid_value(
                norm_groups,
                "norm_groups",
                f"a divisor of `base_filters` ({base_filters})",
            )
    if coordgate_options is not None:
        if spatial != "coordgate":
            raise av.invalid_value(
                coordgate_options,
                "coordgate_options",
                f"None unless spatial='coordgate' (spatial={spatial!r})",
            )
        if not isinstance(coordgate_options, dict) or {"filters", "name"} & set(
            coordgate_options
        ):
            raise av.invalid_value(
                coordgate_options,
                "coordgate_options",
                "a dict of `CoordGate` keyword arguments other than `filters` and "
                "`name`",
            )
    return depth, base_filters, convs_per_block, norm_groups


def check_divisible(input_shape, depth):
    """Static spatial sizes must be divisible by `2**depth`; says by how much not."""
    factor = 2**depth
    spatial = input_shape[:-1]
    bad = [n for n in spatial if n is not None and n % factor]
    if not bad:
        return
    suggestions = "; ".join(
        f"{n} -> {nearest_multiples(n, factor)}" for n in dict.fromkeys(bad)
    )
    raise av.invalid_value(
        input_shape,
        "input_shape",
        f"height and width divisible by 2**depth = {factor} (depth={depth}), or "
        f"None; nearest valid sizes: {suggestions}",
    )


def size_check(inputs, depth, name):
    """A `SpatialSizeCheck` after an input whose height or width is None.

    Such a model accepts any size, but only multiples of `2**depth` get
    through the skip concatenations: the check names the nearest valid sizes.
    """
    if None not in tuple(inputs.shape)[1:-1]:
        return inputs
    return SpatialSizeCheck(
        2**depth, reason=f"2**depth for depth={depth}", name=f"{name}_size_check"
    )(inputs)


def resolve_out_channels(out_channels, in_channels, residual):
    """The output channel count (defaults to `in_channels`); checks `residual`."""
    out_channels = av.positive_int(out_channels, "out_channels", allow_none=True)
    out_channels = out_channels or in_channels
    av.boolean(residual, "residual")
    if residual and out_channels != in_channels:
        raise av.invalid_value(
            out_channels,
            "out_channels",
            f"the input channel count ({in_channels}) when residual=True",
        )
    return out_channels


# === Registered variants ===


@register_model
def unet_d1(**kwargs):
    """U-Net, 1 down-sampling level."""
    return build_unet(**{"depth": 1, **kwargs})


@register_model
def unet_d2(**kwargs):
    """U-Net, 2 down-sampling levels."""
    return build_unet(**{"depth": 2, **kwargs})


@register_model
def unet_d3(**kwargs):
    """U-Net, 3 down-sampling levels."""
    return build_unet(**{"depth": 3, **kwargs})


@register_model
def unet_d4(**kwargs):
    """U-Net, 4 down-sampling levels (the classic 64-1024 U-Net)."""
    return build_unet(**{"depth": 4, **kwargs})


@register_model
def unet_d5(**kwargs):
    """U-Net, 5 down-sampling levels."""
    return build_unet(**{"depth": 5, **kwargs})


@register_model
def coordconv_unet_d1(**kwargs):
    """CoordConv U-Net (El Jurdi et al. 2021), 1 level."""
    return build_unet(**{"depth": 1, "spatial": "coordconv", **kwargs})


@register_model
def coordconv_unet_d2(**kwargs):
    """CoordConv U-Net (El Jurdi et al. 2021), 2 levels."""
    return build_unet(**{"depth": 2, "spatial": "coordconv", **kwargs})


@register_model
def coordconv_unet_d3(**kwargs):
    """CoordConv U-Net (El Jurdi et al. 2021), 3 levels."""
    return build_unet(**{"depth": 3, "spatial": "coordconv", **kwargs})


@register_model
def coordconv_unet_d4(**kwargs):
    """CoordConv U-Net (El Jurdi et al. 2021), 4 levels."""
    return build_unet(**{"depth": 4, "spatial": "coordconv", **kwargs})


@register_model
def coordconv_unet_d5(**kwargs):
    """CoordConv U-Net (El Jurdi et al. 2021), 5 levels."""
    return build_unet(**{"depth": 5, "spatial": "coordconv", **kwargs})


@register_model
def coordgate_unet_d1(**kwargs):
    """CoordGate U-Net (Howard et al. 2023), 1 level."""
    return build_unet(**{"depth": 1, "spatial": "coordgate", **kwargs})


@register_model
def coordgate_unet_d2(**kwargs):
    """CoordGate U-Net (Howard et al. 2023), 2 levels."""
    return build_unet(**{"depth": 2, "spatial": "coordgate", **kwargs})


@register_model
def coordgate_unet_d3(**kwargs):
    """CoordGate U-Net (Howard et al. 2023), 3 levels."""
    return build_unet(**{"depth": 3, "spatial": "coordgate", **kwargs})


@register_model
def coordgate_unet_d4(**kwargs):
    """CoordGate U-Net (Howard et al. 2023), 4 levels (as the paper's CG_UNet)."""
    return build_unet(**{"depth": 4, "spatial": "coordgate", **kwargs})


@register_model
def coordgate_unet_d5(**kwargs):
    """CoordGate U-Net (Howard et al. 2023), 5 levels."""
    return build_unet(**{"depth": 5, "spatial": "coordgate", **kwargs})
