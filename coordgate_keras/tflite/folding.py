"""An export copy of a model, at a fixed size, with position-only work folded away.

For a fixed input size a CoordGate's gate depends on the weights alone, yet the
TFLite converter folds only part of it: with a ReLU gate the encoder MLP folds,
but a sigmoid gate stays a LOGISTIC op, and a dynamic batch adds SHAPE /
STRIDED_SLICE / BROADCAST_TO work to the coordinate channels. `prepare_for_export`
removes the question: it clones the model on a fixed-shape input and replaces

- every `CoordGate` by `_ConstantGate`: the gate, computed by the layer's own
  `compute_gate` at the export size, is a constant; the layer is one broadcast
  multiply and the layer's own 1x1 projection;
- every `MultiWienerDeconvolution` (MultiWienerNet) by `_MatrixWienerDeconvolution`:
  the same Wiener filter written with real matrices (a DFT by matrix products),
  because TFLite has no builtin complex FFT.

The clone shares every other layer (and so every weight) with the model.
"""

import keras
import numpy as np
from keras import ops

from coordgate_keras.layers import CoordGate


def prepare_for_export(model, input_shape):
    """A copy of `model` at a fixed input shape with CoordGate gates folded.

    The returned functional model takes `input_shape` (batch included) and
    computes the same function as `model`: each `CoordGate` multiplies by its
    gate precomputed at that size (`CoordGate.compute_gate`, so the values are
    those the layer itself computes), and MultiWienerNet's Fourier-domain Wiener
    filter is replaced by the equivalent real-valued matrix products (TFLite has
    no builtin complex FFT). All other layers, and all weights, are shared with
    `model`; the gates and Wiener filters are computed from the weights as they
    are when `prepare_for_export` is called.

    Functional and Sequential models are rewritten (nested ones too); other
    models are only wrapped at the fixed shape, their gates left as they are.

    Args:
        model: a `keras.Model` with one input.
        input_shape: tuple of ints, `(batch, *spatial, channels)`.

    Returns:
        A functional `keras.Model` with input `input_shape`.

    Example:

    >>> from coordgate_keras.tflite import prepare_for_export
    >>> from coordgate_keras.zoo import create_model
    >>> model = create_model("coordgate_unet_d1", base_filters=4)
    >>> prepare_for_export(model, (1, 32, 32, 1)).input_shape
    (1, 32, 32, 1)
    """
    from coordgate_keras.utils import argument_validation as av

    input_shape = av.input_shape_with_batch(input_shape, model)
    inputs = keras.Input(batch_shape=input_shape, name=_input_name(model))
    if isinstance(model, keras.Sequential) or _is_functional(model):
        return keras.models.clone_model(
            model,
            input_tensors=inputs,
            clone_function=_replace_layer,
            recursive=True,
        )
    return keras.Model(inputs, model(inputs), name=model.name)


def _is_functional(model):
    from keras.src.models.functional import Functional

    return isinstance(model, Functional)


def _input_name(model):
    try:
        return model.inputs[0].name
    except (AttributeError, IndexError, TypeError, ValueError):
        return "input"


def _replace_layer(layer):
    from coordgate_keras.zoo import MultiWienerDeconvolution

    if isinstance(layer, CoordGate):
        return _ConstantGate(layer)
    if isinstance(layer, MultiWienerDeconvolution):
        return _MatrixWienerDeconvolution(layer)
    # Shared, not copied: the clone uses the model's own layers and weights.
    return layer


def _eager_numpy(fn):
    """Evaluates `fn()` eagerly (also while a graph is being traced) as NumPy."""
    import tensorflow as tf

    with tf.init_scope():
        value = fn()
        if isinstance(value, keras.Variable):
            return np.array(value.numpy())
        return ops.convert_to_numpy(value)


def _static_sizes(inputs, axes):
    sizes = tuple(inputs.shape[a] for a in axes)
    return None if None in sizes else tuple(int(n) for n in sizes)


class _ConstantGate(keras.layers.Layer):
    """A `CoordGate` whose gate is a constant of the static input size.

    With a projection, each channel's gate is divided by its largest magnitude
    and the projection's kernel multiplied by it, `(x * g / s) W' = (x * g) W`
    with `W'[c] = s[c] W[c]`: the same function, but every channel's gate uses
    the full range of an int8 tensor (TFLite quantizes a MUL operand per
    tensor, so a channel with small gates would otherwise be rounded away).

    Used only in export copies (not serializable). With an unknown size (a
    nested model's placeholder call) it defers to the wrapped layer.
    """

    def __init__(self, coord_gate):
        super().__init__(name=coord_gate.name, dtype=coord_gate.dtype_policy)
        self.coord_gate = coord_gate
        self._gates = {}

    def build(self, input_shape):
        if not self.coord_gate.built:
            self.coord_gate.build(input_shape)

    def _gate(self, spatial):
        """`(gate, scale)`: the normalised gate, channels last, and per-channel
        scales (all ones without a projection)."""
        if spatial not in self._gates:
            gate = _eager_numpy(lambda: self.coord_gate.compute_gate(spatial))
            scale = np.ones(gate.shape[-1], gate.dtype)
            if self.coord_gate.use_projection:
                peak = np.max(np.abs(gate), axis=tuple(range(gate.ndim - 1)))
                scale = np.where(peak > 0, peak, 1.0).astype(gate.dtype)
            self._gates[spatial] = (gate / scale, scale)
        return self._gates[spatial]

    def call(self, inputs):
        gate_layer = self.coord_gate
        channels_last = gate_layer.data_format == "channels_last"
        ndim = len(inputs.shape)
        axes = range(1, ndim - 1) if channels_last else range(2, ndim)
        spatial = _static_sizes(inputs, axes)
        if spatial is None:
            return gate_layer(inputs)
        gate, scale = self._gate(spatial)
        if not channels_last:
            gate = np.moveaxis(gate, -1, 0)
        outputs = inputs * ops.cast(gate, inputs.dtype)
        if not gate_layer.use_projection:
            return outputs
        projection = gate_layer.projection
        kernel = projection.kernel * ops.cast(scale[:, None], projection.kernel.dtype)
        outputs = ops.conv(
            outputs,
            ops.cast(kernel, outputs.dtype),
            data_format=gate_layer.data_format,
        )
        bias = ops.cast(projection.bias, outputs.dtype)
        if not channels_last:
            bias = ops.reshape(bias, (-1,) + (1,) * (ndim - 2))
        return outputs + bias

    def compute_output_shape(self, input_shape):
        return self.coord_gate.compute_output_shape(input_shape)


class _MatrixWienerDeconvolution(keras.layers.Layer):
    """MultiWienerDeconvolution in real arithmetic: DFTs as matrix products.

    The layer computes, for image `y` and PSF `k`,
    `crop(ifft2(G_k * fft2(pad(y))))` with the fixed Wiener filter
    `G_k = conj(H_k) / (|H_k|^2 + lambda_k + eps)`. Zero padding and cropping
    make the DFTs rectangular: with `A = F_P[:, rows]` and `B = F_Q[:, cols]`
    (`F_n` the n-point DFT matrix, `rows`/`cols` where the image sits in the
    padded frame), `fft2(pad(y)) = A y B^T` and the cropped inverse is
    `Re(A^H Z conj(B)) / (P Q)`. Real and imaginary parts are carried
    separately, so only MatMul, Mul and Add remain (builtin TFLite ops).
    `G_k` is computed in float64 from the layer's weights at export time.
    """

    def __init__(self, wiener):
        super().__init__(name=wiener.name, dtype=wiener.dtype_policy)
        self.wiener = wiener

    def build(self, input_shape):
        if not self.wiener.built:
            self.wiener.build(input_shape)

    def _constants(self, height, width):
        psfs = _eager_numpy(lambda: self.wiener.psf_kernel).astype(np.float64)
        reg = _eager_numpy(lambda: self.wiener.regularization).astype(np.float64)
        top, left = (height + 1) // 2, (width + 1) // 2
        pad = [(top, height // 2), (left, width // 2)]
        psfs = np.pad(np.transpose(psfs, (2, 0, 1)), [(0, 0)] + pad)
        psfs = np.roll(psfs, (-height, -width), axis=(1, 2))
        spectra = np.fft.fft2(psfs)
        denominator = np.abs(spectra) ** 2 + reg[:, None, None]
        wiener = np.conj(spectra) / (denominator + keras.config.epsilon())
        p, q = 2 * height, 2 * width
        a = _dft_columns(p, top, height)
        b = _dft_columns(q, left, width)
        constants = {
            "a_re": a.real,
            "a_im": a.imag,
            "a_re_t": a.real.T,
            "a_im_t": a.imag.T,
            "b_re_t": b.real.T,
            "b_im_t": b.imag.T,
            "g_re": wiener.real,
            "g_im": wiener.imag,
            # The inverse DFT's 1 / (P Q) goes into its last matrix.
            "binv_re": b.real / (p * q),
            "binv_im": b.imag / (p * q),
        }
        return {
            k: ops.convert_to_tensor(np.ascontiguousarray(v, dtype="float32"))
            for k, v in constants.items()
        }

    def call(self, inputs):
        data_format = self.wiener.data_format
        x = ops.cast(inputs, "float32")
        if data_format == "channels_last":
            x = ops.transpose(x, (0, 3, 1, 2))
        _, channels, height, width = x.shape
        c = self._constants(height, width)
        # Forward DFT of the zero-padded image: Y = A x B^T, (P, Q) complex.
        t_re = ops.matmul(c["a_re"], x)
        t_im = ops.matmul(c["a_im"], x)
        y_re = ops.matmul(t_re, c["b_re_t"]) - ops.matmul(t_im, c["b_im_t"])
        y_im = ops.matmul(t_re, c["b_im_t"]) + ops.matmul(t_im, c["b_re_t"])
        # One Wiener filter per PSF: Z = G_k Y, (batch, channels, K, P, Q).
        y_re, y_im = y_re[:, :, None], y_im[:, :, None]
        z_re = c["g_re"] * y_re - c["g_im"] * y_im
        z_im = c["g_re"] * y_im + c["g_im"] * y_re
        # Cropped inverse DFT: Re(A^H Z conj(B)) / (P Q).
        u_re = ops.matmul(c["a_re_t"], z_re) + ops.matmul(c["a_im_t"], z_im)
        u_im = ops.matmul(c["a_re_t"], z_im) - ops.matmul(c["a_im_t"], z_re)
        x = ops.matmul(u_re, c["binv_re"]) + ops.matmul(u_im, c["binv_im"])
        x = ops.reshape(x, (-1, channels * self.wiener.num_psfs, height, width))
        if data_format == "channels_last":
            x = ops.transpose(x, (0, 2, 3, 1))
        return ops.cast(x, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return self.wiener.compute_output_shape(input_shape)


def _dft_columns(n, start, size):
    """Columns `start:start + size` of the `n`-point DFT matrix, `(n, size)`."""
    k = np.arange(n)[:, None]
    m = np.arange(start, start + size)[None, :]
    return np.exp(-2j * np.pi * ((k * m) % n) / n)
