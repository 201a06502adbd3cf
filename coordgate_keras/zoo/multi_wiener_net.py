"""MultiWienerNet (Yanny et al., Optica 2022): multi-Wiener deconvolution + U-Net."""

import keras

from coordgate_keras.layers import MultiWienerDeconvolution
from coordgate_keras.utils import argument_validation as av
from coordgate_keras.zoo._registry import register_model
from coordgate_keras.zoo.unet import (
    check_divisible,
    output_head,
    resolve_out_channels,
    unet_backbone,
    validate_unet_arguments,
)


def build_multiwienernet(
    input_shape=(256, 256, 1),
    psfs=None,
    num_psfs=None,
    initial_regularization=1e-2,
    depth=4,
    base_filters=24,
    convs_per_block=2,
    normalization="batch",
    norm_groups=8,
    upsampling="upsample",
    out_channels=None,
    activation="relu",
    output_activation=None,
    residual=False,
    spatial=None,
    coordgate_options=None,
    frame_shape=None,
    name="multiwienernet",
):
    """Builds a MultiWienerNet: learnable multi-Wiener deconvolution, then a U-Net.

    The measurement is deconvolved with `K` learnable PSFs
    (`MultiWienerDeconvolution`); the `channels * K` intermediate images are
    refined by a U-Net (`unet_backbone`, same options as `build_unet`) and a 1x1
    convolution. The defaults follow the authors' TensorFlow model where this
    U-Net allows it: batch normalisation and 24 channels at the first level
    (theirs then uses 64-128-...-1024 over six levels; here channels double from
    24 over `depth` levels). Measured with this package's trainer (64x64, 300
    steps of batch 8, 3 seeds; `python -m benchmarks.deblur2d --quick`), the
    batch-normalised network trains to below the blurred input (31.77 +- 0.10
    dB vs 32.35 dB) and `normalization=None` (the plain U-Nets' setting) to
    36.70 +- 0.17 dB: pass it unless you reproduce the authors' setup.

    Args:
        input_shape: tuple. `(height, width, channels)`, static (the Wiener
            filter needs a known size) and divisible by `2**depth`.
        psfs: array or None. Initial PSF stack `(height, width, K)`; `None`
            uses `num_psfs` Gaussians of increasing width.
        num_psfs: int or None. Number of PSFs when `psfs` is None (default 4).
        initial_regularization: float. Initial Wiener regulariser of each PSF.
        depth, base_filters, convs_per_block, normalization, norm_groups,
            upsampling, activation, spatial, coordgate_options: the refinement
            U-Net's, as in `build_unet`.
        out_channels: int or None. Output channels; defaults to the input's.
        output_activation: str, callable or None. Output activation.
        residual: bool. Add the input to the output (needs `out_channels`
            equal to the input channels).
        name: str. Model name and layer-name prefix.

        frame_shape: must be None (accepted so that `create_model` names the
            reason): the model has no frame form.

    Returns:
        A `keras.Model` mapping `(batch, height, width, channels)` to
        `(batch, height, width, out_channels)`.

    Example:

    >>> from coordgate_keras.zoo import build_multiwienernet
    >>> model = build_multiwienernet((64, 64, 1), depth=2, base_filters=8)
    >>> model.output_shape
    (None, 64, 64, 1)

    Reference:
        - [Yanny et al., 2022](https://doi.org/10.1364/OPTICA.442438)
    """
    if frame_shape is not None:
        raise av.invalid_value(
            frame_shape,
            "frame_shape",
            "None: MultiWienerNet's PSFs and Wiener filters span its input, so it "
            "has no form that runs on windows of a larger frame (train it on the "
            "whole frame, or use a U-Net family)",
        )
    input_shape = av.input_shape_without_batch(input_shape, 2)
    if None in input_shape:
        raise av.invalid_value(
            input_shape,
            "input_shape",
            "a static height and width (the Wiener filter's FFT size)",
        )
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
    out_channels = resolve_out_channels(out_channels, input_shape[-1], residual)

    inputs = keras.Input(input_shape, name=f"{name}_input")
    x = MultiWienerDeconvolution(
        num_psfs=num_psfs,
        psfs=psfs,
        initial_regularization=initial_regularization,
        name=f"{name}_wiener",
    )(inputs)
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
        name=name,
    )
    return keras.Model(inputs, outputs, name=name)


@register_model(depth=4)
def multiwienernet(**kwargs):
    """MultiWienerNet (Yanny et al. 2022): 4 learnable Wiener filters + U-Net."""
    return build_multiwienernet(**kwargs)
