"""An export copy of a model, at a fixed size, with position-only work folded away.

For a fixed input size a CoordGate's gate depends on the weights alone, yet the
TFLite converter folds only part of it: with a ReLU gate the encoder MLP folds,
but a sigmoid gate stays a LOGISTIC op, and a dynamic batch adds SHAPE /
STRIDED_SLICE / BROADCAST_TO work to the coordinate channels. `prepare_for_export`
removes the question: it clones the model on a fixed-shape input and replaces

- every `CoordGate` by `_FoldedGate`: the gate, which at the export size
  depends on the weights alone, is stored (whole or in a compact form, below);
  the layer is one broadcast multiply and the layer's own 1x1 projection;
- every `MultiWienerDeconvolution` (MultiWienerNet) by `_MatrixWienerDeconvolution`:
  the same Wiener filter written with real matrices (a DFT by matrix products),
  because TFLite has no builtin complex FFT.

The clone shares every other layer (and so every weight) with the model.

How a gate is stored (`gates=`):

- `"constant"`: the gate at full resolution, one value per pixel and channel,
  computed by the layer's own `compute_gate`: exact, but at 256 x 256 the
  gates are most of the file.
- `"compact"`: a form that is exact and small, where the gate has one.
  - "mlp" and "fourier" encoders without a hidden activation are affine in
    their features, and each feature (u, v, or sin / cos of one of them)
    depends on one coordinate, so the gate's pre-activation is a row term
    plus a column term, `P[h, w, c] = R[h, c] + C[w, c]`. Only `R` `(H, C)`
    and `C` `(W, C)` are stored; the gate `act(R + C)` is one broadcast ADD
    (ReLU fused into it) before the MUL. The decomposition is checked
    numerically against the layer's own pre-activation at the export size.
  - "map" gates are a coarse map interpolated bilinearly with corners
    aligned: the map `(m, m, C)` is stored and resized in the graph (one
    RESIZE_BILINEAR with `align_corners`).
  With `gates="compact"`, a gate without such a form (a hidden activation)
  is refused by name.
- `"auto"` (default): `"compact"` for gates that have it and a ReLU or linear
  gate activation (no extra full-size activation op), `"constant"` for the
  others and for gates no larger stored whole (2 x 2 and below).

`UpSampling2D` layers with nearest interpolation are replaced by a nearest
resize (`_NearestResize`, TFLite RESIZE_NEAREST_NEIGHBOR, ONNX Resize): the
same numbers as the RESHAPE + TILE that `UpSampling2D` lowers to, in the
operator edge delegates accelerate.
"""

import functools

import keras
import numpy as np
from keras import ops

from coordgate_keras.layers import CoordGate

# The representations of a folded gate (`prepare_for_export(gates=...)`).
GATE_REPRESENTATIONS = ("auto", "compact", "constant")

# Name of the input-dependent zero that keeps a compact gate from being
# constant-folded to full size (see `_dynamic_one`).
DYNAMIC_ZERO_NAME = "coordgate_dynamic_zero"

# Largest |P - (R + C)| accepted as round-off, relative to max |P|.
_SEPARABLE_TOLERANCE = 1e-5


def prepare_for_export(model, input_shape, gates="auto"):
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
    Nearest `UpSampling2D` layers become a nearest resize (same numbers).

    A two-input (tile) model `[image, origin]`, whose CoordGates have a
    `frame_shape`, is copied with an `origin` input, int32 `(batch, 2)`:
    each gate stores its frame's row and column tables (or its whole-frame
    gate) and gathers the tile's rows and columns at the origin its layer
    receives.

    Args:
        model: a `keras.Model` with one input, or a tile model with inputs
            `[image, origin]`.
        input_shape: tuple of ints, `(batch, *spatial, channels)` (of the
            image).
        gates: str. How each 2D gate is stored: `"auto"` (the `"compact"`
            form where the gate has one and its activation is ReLU or linear,
            else `"constant"`), `"compact"` (required for every 2D gate: an
            error names a gate without one), or `"constant"` (the
            full-resolution gate). 1D gates are always constants.

    Returns:
        A functional `keras.Model` with input `input_shape`.

    Example:

    >>> from coordgate_keras.tflite import prepare_for_export
    >>> from coordgate_keras.zoo import create_model
    >>> model = create_model("coordgate_unet_d1", base_filters=4)
    >>> prepare_for_export(model, (1, 32, 32, 1)).input_shape
    (1, 32, 32, 1)
    """
    from coordgate_keras.tflite import _tiles
    from coordgate_keras.utils import argument_validation as av

    av.choice(gates, "gates", GATE_REPRESENTATIONS)
    if _tiles.is_tile_model(model):
        input_shape = _tiles.image_shape(input_shape, model)
        inputs = [
            keras.Input(batch_shape=input_shape, name=_input_name(model)),
            keras.Input(batch_shape=(input_shape[0], 2), dtype="int32", name="origin"),
        ]
    else:
        input_shape = av.input_shape_with_batch(input_shape, model)
        inputs = keras.Input(batch_shape=input_shape, name=_input_name(model))
    clone_function = functools.partial(_replace_layer, gates=gates)
    if _is_functional(model):
        return keras.models.clone_model(
            model,
            input_tensors=inputs,
            clone_function=clone_function,
            call_function=_SharedOne(model, inputs),
            recursive=True,
        )
    if isinstance(model, keras.Sequential):
        return keras.models.clone_model(
            model, input_tensors=inputs, clone_function=clone_function, recursive=True
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


def _replace_layer(layer, gates="auto"):
    from coordgate_keras.zoo import MultiWienerDeconvolution

    if isinstance(layer, CoordGate):
        return _FoldedGate(layer, gates)
    if isinstance(layer, MultiWienerDeconvolution):
        return _MatrixWienerDeconvolution(layer)
    if _is_nearest_upsampling(layer):
        return _NearestResize(layer)
    # Shared, not copied: the clone uses the model's own layers and weights.
    return layer


class _SharedOne:
    """A `clone_model` call function giving the model's own gates one `one`.

    A compact gate needs an input-dependent operand (see `_dynamic_one`):
    computed once from the model's input and passed to every gate of the
    model (nested models' gates make their own), it costs each gate one
    small MUL (its row term times one) instead of a SLICE, a MUL and two
    ADDs.
    """

    def __init__(self, model, inputs):
        self.gates = {
            id(layer) for layer in model.layers if isinstance(layer, CoordGate)
        }
        # A tile model's image input.
        self.inputs = inputs[0] if isinstance(inputs, list) else inputs
        self.one = None

    def __call__(self, layer, *args, **kwargs):
        if (
            isinstance(layer, _FoldedGate)
            and id(layer.coord_gate) in self.gates
            and len(args) == 1
            and not isinstance(args[0], (list, tuple))
            and len(args[0].shape) == 4
            and len(self.inputs.shape) == 4
        ):
            if self.one is None:
                self.one = _DynamicOne(name="coordgate_one")(self.inputs)
            return layer([args[0], self.one], **kwargs)
        return layer(*args, **kwargs)


class _DynamicOne(keras.layers.Layer):
    """`_dynamic_one` of the model's input, as a layer."""

    def call(self, inputs):
        return _dynamic_one(inputs)

    def compute_output_shape(self, input_shape):
        return (1,) * len(input_shape)


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


class _FoldedGate(keras.layers.Layer):
    """A `CoordGate` whose gate depends on nothing but the static input size.

    The gate is stored whole (`(H, W, C)`) or compact: row and column terms
    `(H, C)` and `(W, C)`, or the coarse map of a "map" gate, turned into the
    gate in the graph; see `prepare_for_export` for the choice.

    With a projection, each channel's gate is divided by its largest magnitude
    and the projection's kernel multiplied by it, `(x * g / s) W' = (x * g) W`
    with `W'[c] = s[c] W[c]`: the same function, but every channel's gate uses
    the full range of an int8 tensor (TFLite quantizes a MUL operand per
    tensor, so a channel with small gates would otherwise be rounded away).
    ReLU and linear gates are positively homogeneous, so compact forms are
    divided by `s` before the activation. With a ReLU gate the row and column
    terms are also shifted against each other and clipped where their sum
    cannot be positive (both exact), so each lies in [-1/2, 1/2] and int8
    keeps a step of 1/255 of the gate's peak.

    Used only in export copies (not serializable). With an unknown size (a
    nested model's placeholder call) it defers to the wrapped layer.
    """

    def __init__(self, coord_gate, gates="auto"):
        super().__init__(name=coord_gate.name, dtype=coord_gate.dtype_policy)
        self.coord_gate = coord_gate
        self.gates = gates
        self._gates = {}
        self._compact_forms = {}

    def build(self, input_shape):
        shapes = input_shape
        if _is_shape_list(input_shape):
            input_shape = input_shape[0]
        if not self.coord_gate.built:
            # A frame layer builds on `[x_shape, origin_shape]`.
            self.coord_gate.build(input_shape if self.frame_shape is None else shapes)
        channels_last = self.coord_gate.data_format == "channels_last"
        spatial = tuple(input_shape[1:-1] if channels_last else input_shape[2:])
        # A tile model's gate is stored for its frame.
        spatial = self.frame_shape or spatial
        if None not in spatial:
            # Decided (and with gates="compact", refused) here, where errors
            # reach the caller rather than Keras' symbolic-call fallback.
            self._compact(tuple(int(n) for n in spatial))

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

    def _compact(self, spatial):
        """The compact form of the gate at `spatial`, or None (stored whole).

        `("separable", row, col, scale)`: `act(row[:, None] + col[None])` is
        the normalised gate; `("map", gate_map, scale)`: the normalised gate is
        `act` of `gate_map` resized to `spatial` (bilinear, corners aligned).
        """
        if spatial not in self._compact_forms:
            self._compact_forms[spatial] = self._find_compact(spatial)
        form = self._compact_forms[spatial]
        layer = self.coord_gate
        if self.gates == "compact" and form is None and len(spatial) == 2:
            which = (
                "only 'mlp' and 'fourier' encoders without a hidden activation "
                "(a row plus a column term) have one in a tile model (frame_shape)"
                if self.frame_shape is not None
                else "only 'mlp' and 'fourier' encoders without a hidden "
                "activation (a row plus a column term) and 'map' gates have one"
            )
            raise ValueError(
                f"Cannot store the gate of CoordGate `{layer.name}` in a compact "
                f"form (encoding={layer.encoding!r}, hidden_activation="
                f"{_activation_name(layer.hidden_activation)!r}): {which}. Export "
                "with gates='auto' or gates='constant'."
            )
        return form

    def _find_compact(self, spatial):
        layer = self.coord_gate
        activation = _activation_name(layer.gate_activation)
        if (
            self.gates == "constant"
            or len(spatial) != 2
            # A tile model gathers its window from row and column tables;
            # a map has no such form and is stored for the whole frame.
            or (self.frame_shape is not None and layer.encoding == "map")
            or (
                self.gates == "auto"
                # A tiny gate (2 x 2 and below) is no larger stored whole.
                and (
                    activation not in ("relu", None) or np.prod(spatial) <= sum(spatial)
                )
            )
        ):
            return None
        homogeneous = layer.use_projection and activation in ("relu", None)
        if layer.encoding == "map":
            gate_map = _eager_numpy(lambda: layer.gate_map).astype(np.float64)
            # Interpolation is a convex combination of the nodes: the gate's
            # largest magnitude is the nodes' (after a ReLU, the largest node).
            nodes = np.maximum(gate_map, 0) if activation == "relu" else gate_map
            peak = np.max(np.abs(nodes), axis=(0, 1))
            scale = np.where(peak > 0, peak, 1.0) if homogeneous else np.ones_like(peak)
            return ("map", (gate_map / scale).astype(np.float32), _f32(scale))
        pre = _eager_numpy(lambda: _pre_activation(layer, spatial))
        pre = pre.astype(np.float64)
        row = pre.mean(axis=1)
        col = pre.mean(axis=0) - pre.mean(axis=(0, 1))
        residual = np.max(np.abs(pre - (row[:, None] + col[None])))
        if residual > _SEPARABLE_TOLERANCE * max(np.max(np.abs(pre)), 1e-30):
            return None
        # Shifting the two terms against each other leaves their sum alone;
        # this centres both on the same range.
        row_max, col_max = row.max(axis=0), col.max(axis=0)
        if activation == "relu":
            shift = (row_max - col_max) / 2
            row, col = row - shift, col + shift
            half = (row_max + col_max) / 2
            # R + C <= 0 wherever R < -max(C) (and vice versa): clipping there
            # changes no gate value and bounds both terms by the peak.
            row, col = np.maximum(row, -half), np.maximum(col, -half)
            peak = np.maximum(2 * half, 0.0)
            row[:, peak == 0], col[:, peak == 0] = 0.0, 0.0
        else:
            shift = (row_max + row.min(axis=0) - col_max - col.min(axis=0)) / 4
            row, col = row - shift, col + shift
            peak = np.max(np.abs(row[:, None] + col[None]), axis=(0, 1))
        scale = np.where(peak > 0, peak, 1.0) if homogeneous else np.ones_like(peak)
        return ("separable", _f32(row / scale), _f32(col / scale), _f32(scale))

    @property
    def frame_shape(self):
        """The wrapped layer's frame (at its resolution), or None."""
        frame = getattr(self.coord_gate, "frame_shape", None)
        return None if frame is None else tuple(int(n) for n in frame)

    def call(self, inputs):
        # A frame layer's `[inputs, origin]`, or the model's shared one:
        # `[inputs, one]`.
        extra = None
        if isinstance(inputs, (list, tuple)):
            inputs, extra = inputs
        gate_layer = self.coord_gate
        channels_last = gate_layer.data_format == "channels_last"
        ndim = len(inputs.shape)
        axes = range(1, ndim - 1) if channels_last else range(2, ndim)
        spatial = _static_sizes(inputs, axes)
        frame = self.frame_shape
        if spatial is None:
            return gate_layer(inputs if frame is None else [inputs, extra])
        if frame is not None:
            gate, scale = self._window_gate(inputs, extra, frame, spatial)
            return self._apply(inputs, gate, scale)
        one = extra
        form = self._compact(spatial)
        if form is not None:
            if one is None:
                one = _dynamic_one(inputs)
            gate = self._compact_gate(inputs, one, form, spatial)
            scale = form[-1]
        else:
            gate, scale = self._gate(spatial)
            if not channels_last:
                gate = np.moveaxis(gate, -1, 0)
            gate = ops.cast(gate, inputs.dtype)
        return self._apply(inputs, gate, scale)

    def _apply(self, inputs, gate, scale):
        """The gated input, through the projection (scaled by `scale`)."""
        gate_layer = self.coord_gate
        outputs = inputs * gate
        if not gate_layer.use_projection:
            return outputs
        projection = gate_layer.projection
        kernel = projection.kernel * ops.cast(scale[:, None], projection.kernel.dtype)
        return gate_layer.project(outputs, kernel)

    def _window_gate(self, inputs, origin, frame, spatial):
        """`(gate, scale)` of a tile at `origin` in the frame, in the graph.

        The frame's tables are stored, the tile's rows and columns gathered
        at the origin (GATHER with indices `origin + arange(size)`): row and
        column terms `(H, C)` and `(W, C)` for a separable gate, summed by
        one full-size ADD; otherwise the whole frame's gate `(H, W, C)`.
        Nothing is folded at the tile: the origin is an input.
        """
        import tensorflow as tf

        channels_last = self.coord_gate.data_format == "channels_last"
        if len(spatial) != 2:
            raise ValueError(
                f"Cannot export CoordGate `{self.coord_gate.name}` with a frame: "
                "tile models are 2D. Received: a rank-"
                f"{len(spatial) + 2} input."
            )
        origin = ops.cast(origin, "int32")
        indices = [
            origin[:, axis : axis + 1] + np.arange(size, dtype=np.int32)[None]
            for axis, size in enumerate(spatial)
        ]
        form = self._compact(frame)
        if form is not None:
            _, row, col, scale = form
            # tf.gather, not ops.take: no negative-index wrapping ops.
            rows = tf.gather(ops.cast(row, inputs.dtype), indices[0])
            cols = tf.gather(ops.cast(col, inputs.dtype), indices[1])
            if channels_last:
                rows, cols = rows[:, :, None, :], cols[:, None, :, :]
            else:
                rows = ops.transpose(rows, (0, 2, 1))[:, :, :, None]
                cols = ops.transpose(cols, (0, 2, 1))[:, :, None, :]
            # One full-size ADD (the activation fuses into it in TFLite).
            gate = rows + cols
            activation = self.coord_gate.gate_activation
            return (gate if activation is None else activation(gate)), scale
        table, scale = self._gate(frame)
        gate = tf.gather(ops.cast(table, inputs.dtype), indices[0])
        gate = tf.gather(gate, indices[1], axis=2, batch_dims=1)
        if not channels_last:
            gate = ops.transpose(gate, (0, 3, 1, 2))
        return gate, scale

    def _compact_gate(self, inputs, one, form, spatial):
        """The activated gate, computed in the graph from its compact form.

        `one` is an input-dependent one: the row term times it (a small MUL)
        is what keeps the converter from folding the gate. (A zero added to
        it would not: the converter folds `(row + zero) + col` into
        `zero + (row + col)`.)
        """
        import tensorflow as tf

        channels_last = self.coord_gate.data_format == "channels_last"
        one = ops.cast(one, inputs.dtype)
        if form[0] == "separable":
            _, row, col, _ = form
            (height, channels), width = row.shape, col.shape[0]
            row = np.reshape(row, (1, height, 1, channels))
            col = np.reshape(col, (1, 1, width, channels))
            if not channels_last:
                row, col = np.moveaxis(row, -1, 1), np.moveaxis(col, -1, 1)
            # One full-size ADD (the activation fuses into it in TFLite).
            gate = ops.cast(row, inputs.dtype) * one + ops.cast(col, inputs.dtype)
        else:
            gate_map = ops.cast(form[1][None], inputs.dtype) * one
            gate = tf.raw_ops.ResizeBilinear(
                images=gate_map,
                size=spatial,
                align_corners=True,
                half_pixel_centers=False,
            )
            if not channels_last:
                gate = ops.transpose(gate, (0, 3, 1, 2))
        activation = self.coord_gate.gate_activation
        return gate if activation is None else activation(gate)

    def compute_output_shape(self, input_shape):
        if _is_shape_list(input_shape) and self.frame_shape is None:
            input_shape = input_shape[0]
        return self.coord_gate.compute_output_shape(input_shape)


def _is_shape_list(shape):
    return (
        isinstance(shape, (list, tuple))
        and bool(shape)
        and isinstance(shape[0], (list, tuple))
    )


def _dynamic_one(inputs):
    """A (1, 1, 1, 1) one computed from the input (SLICE, MUL by 0, ADD 1).

    Without it the converter folds a compact gate's constant inputs back into
    one (H, W, C) constant. The ONNX export replaces the zero by a constant
    after conversion, so that ONNX Runtime folds the gate once, at session
    load.
    """
    import tensorflow as tf

    zero = tf.multiply(
        tf.slice(inputs, (0,) * 4, (1,) * 4), 0.0, name=DYNAMIC_ZERO_NAME
    )
    return zero + 1.0


def _f32(array):
    return np.asarray(array, np.float32)


def _activation_name(activation):
    if activation is None:
        return None
    return getattr(activation, "__name__", str(activation))


def _pre_activation(layer, spatial):
    """The gate of `layer` before its gate activation (the layer's own code)."""
    activation = layer.gate_activation
    layer.gate_activation = None
    try:
        return layer.compute_gate(spatial)
    finally:
        layer.gate_activation = activation


def _is_nearest_upsampling(layer):
    return (
        isinstance(layer, keras.layers.UpSampling2D)
        and layer.interpolation == "nearest"
        and layer.data_format == "channels_last"
    )


class _NearestResize(keras.layers.Layer):
    """`UpSampling2D(interpolation="nearest")` as a nearest-neighbour resize.

    For integer factors a nearest resize reads source pixel `i // factor`,
    exactly what `UpSampling2D` repeats; TensorFlow lowers it to one
    RESIZE_NEAREST_NEIGHBOR (ONNX: Resize), which edge delegates accelerate,
    where `UpSampling2D` becomes RESHAPE + TILE (or a BROADCAST_TO). With an
    unknown size it defers to the wrapped layer.
    """

    def __init__(self, upsampling):
        super().__init__(name=upsampling.name, dtype=upsampling.dtype_policy)
        self.upsampling = upsampling

    def call(self, inputs):
        spatial = _static_sizes(inputs, (1, 2))
        if spatial is None:
            return self.upsampling(inputs)
        import tensorflow as tf

        size = tuple(n * f for n, f in zip(spatial, self.upsampling.size))
        # Asymmetric coordinates, `floor(i * n / size)`: for integer factors
        # the same pixel as half-pixel centres, and the resize that every
        # delegate supports (ONNX: Resize "asymmetric" + "floor").
        return tf.raw_ops.ResizeNearestNeighbor(
            images=inputs, size=size, align_corners=False, half_pixel_centers=False
        )

    def compute_output_shape(self, input_shape):
        return self.upsampling.compute_output_shape(input_shape)


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
