import math

import keras
import numpy as np
from keras import ops

from coordgate_keras.layers import _coords, _frame, _layout
from coordgate_keras.utils import argument_validation as av

ENCODINGS = ("mlp", "fourier", "map")
MAX_UNITS = 2**16


@keras.saving.register_keras_serializable(package="coordgate_keras")
class CoordGate(keras.layers.Layer):
    """Gates each channel of a feature map by a learned function of pixel position.

    CoordGate (Howard, Norreys and Döpp, 2023) lets a convolutional network apply
    position-dependent filtering at the cost of a standard convolution: an encoder
    maps the normalised coordinates of every pixel to one gate value per channel,
    the feature map is multiplied by that gate, and a 1×1 convolution mixes the
    gated channels. Filters are thereby amplified or attenuated by position, like a
    locally connected layer with far fewer parameters.

    With the defaults the layer is the author's 'pos' CoordGate:
    coordinates `u, v = linspace(-1, 1)` over rows and columns (`meshgrid(...,
    indexing="ij")`); an encoder of `encoding_layers` Dense layers (`2 -> E`, then
    `E -> E`, E the number of input channels) with no activation between them;
    gate `G = relu(encoder(coords))` of shape `(H, W, E)`; output
    `Conv1x1(x * G)` with bias, broadcast over the batch. 1D inputs use one
    coordinate.

    The gate depends on coordinates only, so it is computed once per call (not per
    batch element) and, when the spatial size is static, folds to a constant in
    exported graphs (`compute_gate` returns it). The "mlp" and "fourier" gates are
    functions of normalised coordinates, so a trained layer runs at any size.

    Initialisation: encoder kernels and biases are uniform in `+-1/sqrt(fan_in)`,
    PyTorch's `nn.Linear` default and so the author's. Glorot kernels with zero
    biases would make every channel's ReLU gate a half-plane through the image
    centre (zero on half the image for every channel at once); random biases put
    each channel's zero set elsewhere.

    Args:
        filters: int or None. Output channels of the 1×1 projection; None keeps the
            number of input channels. Requires `use_projection=True`.
        encoding_layers: int. Number of Dense layers in the encoder ("mlp",
            "fourier"). Defaults to 2.
        encoding: string. `"mlp"` (the paper's: Dense layers on the raw
            coordinates), `"fourier"` (sin/cos features of the coordinates at
            `num_frequencies` octaves before the Dense layers, so the gate can vary
            non-monotonically; an affine encoder can only produce ramps) or
            `"map"` (a free learnable gate on a coarse `map_size` grid, linearly
            interpolated to the feature size, corners aligned).
        encoding_units: int or None. Width of the hidden Dense layers; None uses
            the number of input channels (the paper's choice).
        hidden_activation: string, callable or None. Activation between encoder
            Dense layers. Defaults to None (the paper's: none).
        gate_activation: string, callable or None. Applied to the encoder output.
            Defaults to `"relu"` (the paper's); `"sigmoid"` bounds the gate in
            (0, 1); None leaves it linear.
        use_projection: bool. Apply the 1×1 convolution after gating. Defaults
            to True (the paper's).
        num_frequencies: int. Octaves of the "fourier" encoding: features
            `sin(2**k * pi * c)`, `cos(2**k * pi * c)` for `k < num_frequencies`,
            plus the raw coordinates `c`. The default 6 reaches a period of 1/32
            of the image, so the initial gate is striped at that period and the
            stripes survive training; for slowly varying optics 1-2 octaves
            matched or beat "mlp" where 6 lost to it
            (`benchmarks/coordgate_encodings.py`). The default stays 6 so that
            configs and results recorded without the argument keep their meaning.
        map_size: int or tuple of ints (one per spatial axis). Grid of the "map"
            encoding. Defaults to 8.
        data_format: string, `"channels_last"` or `"channels_first"`.
        kernel_initializer: initializer of the 1×1 projection kernel.
        bias_initializer: initializer of the 1×1 projection bias.
        encoder_initializer: initializer of the encoder kernels. Defaults to
            uniform in `+-1/sqrt(fan_in)` (PyTorch's `nn.Linear`).
        encoder_bias_initializer: initializer of the encoder biases; None means
            uniform in `+-1/sqrt(fan_in)` of each Dense layer.
        map_initializer: initializer of the "map" gate. Defaults to ones.
        frame_shape: tuple of ints or None. The spatial shape of the whole frame
            (sensor) that inputs are windows of, at this layer's resolution. With
            it the layer is called as `layer([x, origin])` and gates `x` with the
            frame's gate at the window, per sample: `layer([window, origin])` is
            exactly that window of `layer([frame, zeros])`, so a model trained on
            crops learns the optics of the sensor, not of the crop. For the
            paper's affine encoder (`"mlp"` without hidden activation) the gate is
            a row term plus a column term gathered at each origin, which keeps
            per-sample origins cheap. None (the default): coordinates span the
            input.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: a rank-3 `(batch, length, channels)` or rank-4
            `(batch, height, width, channels)` tensor (channels first with
            `data_format="channels_first"`). With `frame_shape`, a list
            `[x, origin]`: `origin` an integer tensor `(batch, rank)`, the index
            of `x`'s first element in the frame. Windows off the frame are
            refused in eager calls; in traced graphs the values cannot be read.

    Input shape:
        `(batch, *spatial, channels)`.

    Output shape:
        `(batch, *spatial, filters or channels)`.

    Example:

    >>> import keras
    >>> from coordgate_keras.layers import CoordGate
    >>> inputs = keras.Input((64, 48, 16))
    >>> outputs = CoordGate(encoding_layers=2)(inputs)
    >>> tuple(outputs.shape)
    (None, 64, 48, 16)

    Reference:
        - [Howard, Norreys and Döpp, 2023](https://arxiv.org/abs/2401.04680)
    """

    def __init__(
        self,
        filters=None,
        encoding_layers=2,
        encoding="mlp",
        encoding_units=None,
        hidden_activation=None,
        gate_activation="relu",
        use_projection=True,
        num_frequencies=6,
        map_size=8,
        data_format=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        encoder_initializer=None,
        encoder_bias_initializer=None,
        map_initializer="ones",
        frame_shape=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        # === Argument checks ===
        self.filters = av.positive_int(filters, "filters", allow_none=True)
        self.encoding_layers = av.positive_int(encoding_layers, "encoding_layers")
        self.encoding = av.choice(encoding, "encoding", ENCODINGS)
        self.encoding_units = av.positive_int(
            encoding_units, "encoding_units", allow_none=True
        )
        if self.encoding_units is not None and self.encoding_units > MAX_UNITS:
            # Far above any useful width; 10**9 would exhaust memory, not fail.
            raise av.invalid_value(
                encoding_units,
                "encoding_units",
                f"None or a positive integer of at most {MAX_UNITS}",
            )
        self.hidden_activation = av.activation(hidden_activation, "hidden_activation")
        self.gate_activation = av.activation(gate_activation, "gate_activation")
        self.use_projection = av.boolean(use_projection, "use_projection")
        if self.filters is not None and not self.use_projection:
            raise av.invalid_value(
                filters,
                "filters",
                "None when use_projection=False (changing the number of channels "
                "needs the 1x1 projection)",
            )
        self.num_frequencies = av.positive_int(num_frequencies, "num_frequencies")
        sizes = (map_size,) if av.is_int(map_size) else map_size
        if not (
            isinstance(sizes, (list, tuple))
            and len(sizes) in (1, 2)
            and all(av.is_int(m) and m >= 2 for m in sizes)
        ):
            raise av.invalid_value(
                map_size, "map_size", "an integer or a tuple of 1 or 2 integers >= 2"
            )
        map_size = int(map_size) if av.is_int(map_size) else tuple(map(int, sizes))
        self.map_size = map_size
        self.data_format = av.data_format(data_format)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        if encoder_initializer is None:
            # U(+-1/sqrt(fan_in)): PyTorch's kaiming_uniform(a=sqrt(5)) for Linear.
            encoder_initializer = keras.initializers.VarianceScaling(
                scale=1.0 / 3.0, mode="fan_in", distribution="uniform"
            )
        self.encoder_initializer = keras.initializers.get(encoder_initializer)
        self.encoder_bias_initializer = (
            None
            if encoder_bias_initializer is None
            else keras.initializers.get(encoder_bias_initializer)
        )
        self.map_initializer = keras.initializers.get(map_initializer)
        self.frame_shape = _frame.frame_shape_argument(frame_shape)

    # === State ===

    @property
    def _channel_axis(self):
        return -1 if self.data_format == "channels_last" else 1

    def _spatial_axes(self, ndim):
        if self.data_format == "channels_last":
            return list(range(1, ndim - 1))
        return list(range(2, ndim))

    def build(self, input_shape):
        input_shape = _frame.check_build_shapes(self, input_shape, self._spatial_axes)
        if len(input_shape) not in (3, 4):
            raise ValueError(
                "Invalid input shape for CoordGate. Expected a rank-3 (batch, "
                "length, channels) or rank-4 (batch, height, width, channels) "
                f"tensor. Received: input_shape={tuple(input_shape)}"
            )
        channels = input_shape[self._channel_axis]
        if channels is None or channels < 1:
            raise ValueError(
                "Invalid input shape for CoordGate. The channel dimension must be "
                f"known and positive. Received: input_shape={tuple(input_shape)}"
            )
        self.spatial_rank = len(input_shape) - 2
        self.channels = channels
        if self.encoding == "map":
            map_size = self.map_size
            if isinstance(map_size, int):
                map_size = (map_size,) * self.spatial_rank
            if len(map_size) != self.spatial_rank:
                raise ValueError(
                    "Invalid value for argument `map_size`. Expected one size per "
                    f"spatial axis ({self.spatial_rank}) of the input. "
                    f"Received: map_size={self.map_size!r} for "
                    f"input_shape={tuple(input_shape)}"
                )
            self._map_size = map_size
            self.gate_map = self.add_weight(
                name="gate_map",
                shape=map_size + (channels,),
                initializer=self.map_initializer,
            )
        else:
            features = self.spatial_rank
            if self.encoding == "fourier":
                features *= 1 + 2 * self.num_frequencies
            units = self.encoding_units or channels
            self.encoder_kernels, self.encoder_biases = [], []
            for i in range(self.encoding_layers):
                fan_in = features if i == 0 else units
                fan_out = channels if i == self.encoding_layers - 1 else units
                self.encoder_kernels.append(
                    self.add_weight(
                        name=f"encoder_kernel_{i}",
                        shape=(fan_in, fan_out),
                        initializer=self.encoder_initializer,
                    )
                )
                self.encoder_biases.append(
                    self.add_weight(
                        name=f"encoder_bias_{i}",
                        shape=(fan_out,),
                        initializer=self.encoder_bias_initializer
                        or keras.initializers.RandomUniform(
                            -1.0 / math.sqrt(fan_in), 1.0 / math.sqrt(fan_in)
                        ),
                    )
                )
        if self.use_projection:
            conv = {1: keras.layers.Conv1D, 2: keras.layers.Conv2D}[self.spatial_rank]
            self.projection = conv(
                self.filters or channels,
                1,
                data_format=self.data_format,
                kernel_initializer=self.kernel_initializer,
                bias_initializer=self.bias_initializer,
                dtype=self.dtype_policy,
                name="projection",
            )
            self.projection.build(input_shape)
        self.input_spec = keras.InputSpec(
            ndim=len(input_shape), axes={self._channel_axis: channels}
        )
        if self.frame_shape is not None:
            self.input_spec = [self.input_spec, keras.InputSpec(ndim=2)]

    # === Forward ===

    def compute_gate(self, spatial_shape, window=None):
        """The gate at a given spatial size, shape `(*spatial_shape, channels)`.

        Args:
            spatial_shape: tuple of ints (or scalar tensors), `(length,)` or
                `(height, width)`.
            window: tuple of ints or None. With `frame_shape`, the index of the
                window's first element in the frame (its origin): the gate is the
                frame's gate there. None: the gate of a whole input of
                `spatial_shape` (without `frame_shape`), or of the frame's window
                at the origin (with it).

        Returns:
            A tensor in the layer's compute dtype, channels last whatever the
            `data_format`, independent of the batch.

        Raises:
            ValueError: the layer is not built (its rank and channels are not
                known yet), or `spatial_shape` is not one positive size per
                spatial axis.
        """
        dtype = self.compute_dtype
        spatial_shape = self._check_spatial_shape(spatial_shape)
        if window is not None or self.frame_shape is not None:
            if self.frame_shape is None:
                raise av.invalid_value(
                    window,
                    "window",
                    "None for a layer built without `frame_shape` (a window is a "
                    "position inside the frame)",
                )
            window = (0,) * self.spatial_rank if window is None else window
            origin = av._as_tuple(window)
            if origin is None or len(origin) != self.spatial_rank:
                raise av.invalid_value(
                    window, "window", f"a tuple of {self.spatial_rank} integer(s)"
                )
            origin = np.asarray([origin], "int32")
            _frame.check_window(origin, spatial_shape, self.frame_shape, self.name)
            return self._frame_gate(spatial_shape, ops.convert_to_tensor(origin))[0]
        if self.encoding == "map":
            gate = ops.cast(self.gate_map, dtype)
            rows = ops.cast(
                _coords.interpolation_matrix(spatial_shape[0], self._map_size[0]), dtype
            )
            gate = ops.tensordot(rows, gate, axes=1)
            if self.spatial_rank == 2:
                cols = ops.cast(
                    _coords.interpolation_matrix(spatial_shape[1], self._map_size[1]),
                    dtype,
                )
                gate = ops.einsum("wj,hjc->hwc", cols, gate)
        else:
            gate = self._encode(ops.cast(_coords.coordinate_grid(spatial_shape), dtype))
        if self.gate_activation is not None:
            gate = self.gate_activation(gate)
        return gate

    def _encode(self, coords):
        """The encoder ("mlp" or "fourier") on coordinates `(..., rank)`."""
        if self.encoding == "fourier":
            features = [coords]
            for k in range(self.num_frequencies):
                scaled = coords * (math.pi * 2.0**k)
                features += [ops.sin(scaled), ops.cos(scaled)]
            coords = ops.concatenate(features, axis=-1)
        return self._dense_encoder(coords)

    def _dense_encoder(self, gate):
        """The encoder's Dense layers on features `(..., features)`."""
        dtype = self.compute_dtype
        last = self.encoding_layers - 1
        for i, (kernel, bias) in enumerate(
            zip(self.encoder_kernels, self.encoder_biases)
        ):
            gate = ops.tensordot(gate, ops.cast(kernel, dtype), axes=1)
            gate = gate + ops.cast(bias, dtype)
            if i < last and self.hidden_activation is not None:
                gate = self.hidden_activation(gate)
        return gate

    @property
    def is_affine(self):
        """Whether the encoder is affine in the coordinates (row + column terms)."""
        return self.encoding == "mlp" and (
            self.hidden_activation is None or self.encoding_layers == 1
        )

    def _affine_encoder(self):
        """`(kernel (rank, channels), bias (channels,))` of the composed encoder."""
        dtype = self.compute_dtype
        kernel = ops.cast(self.encoder_kernels[0], dtype)
        bias = ops.cast(self.encoder_biases[0], dtype)
        for k, b in zip(self.encoder_kernels[1:], self.encoder_biases[1:]):
            k = ops.cast(k, dtype)
            kernel = ops.matmul(kernel, k)
            bias = ops.matmul(bias[None], k)[0] + ops.cast(b, dtype)
        return kernel, bias

    def _frame_gate(self, sizes, origin):
        """The activated gate of windows of the frame: `(batch, *sizes, channels)`.

        Every value along an axis is gathered from a table over the whole frame
        axis, so a window's gate is bit-identical to that window of the frame's.
        """
        dtype = self.compute_dtype
        frame = self.frame_shape
        if self.encoding == "map":
            rows = _frame.axis_values(
                _coords.interpolation_matrix(frame[0], self._map_size[0]),
                origin[:, 0],
                sizes[0],
                dtype,
            )
            gate_map = ops.cast(self.gate_map, dtype)
            if self.spatial_rank == 1:
                gate = ops.einsum("bhi,ic->bhc", rows, gate_map)
            else:
                cols = _frame.axis_values(
                    _coords.interpolation_matrix(frame[1], self._map_size[1]),
                    origin[:, 1],
                    sizes[1],
                    dtype,
                )
                gate = ops.einsum("bhi,ijc->bhjc", rows, gate_map)
                gate = ops.einsum("bwj,bhjc->bhwc", cols, gate)
        elif self.is_affine:
            kernel, bias = self._affine_encoder()
            terms = []
            for axis in range(self.spatial_rank):
                values = _frame.axis_values(
                    _coords.linspace(frame[axis]), origin[:, axis], sizes[axis], dtype
                )
                term = ops.expand_dims(values, -1) * kernel[axis]
                terms.append(term + bias if axis == 0 else term)
            gate = terms[0]
            if self.spatial_rank == 2:
                gate = ops.expand_dims(terms[0], 2) + ops.expand_dims(terms[1], 1)
        elif self.encoding == "fourier":
            gate = self._dense_encoder(self._frame_fourier_features(sizes, origin))
        else:
            coords = _frame.coordinate_grid(frame, origin, sizes, dtype=dtype)
            gate = self._encode(coords)
        if self.gate_activation is not None:
            gate = self.gate_activation(gate)
        return gate

    def _frame_fourier_features(self, sizes, origin):
        """The "fourier" features of windows, `(batch, *sizes, features)`.

        Each feature depends on one coordinate, so it is tabulated along each
        frame axis (in NumPy) and gathered: a vectorised `sin` gives different
        last bits at different array positions, a table does not.
        """
        dtype = self.compute_dtype
        rank = self.spatial_rank
        batch = ops.shape(origin)[0]
        per_axis = []
        for axis in range(rank):
            c = _coords.linspace(self.frame_shape[axis], "float64")
            table = [c]
            for k in range(self.num_frequencies):
                scaled = c * (math.pi * 2.0**k)
                table += [np.sin(scaled), np.cos(scaled)]
            table = np.stack(table, axis=-1).astype("float32")
            values = _frame.axis_values(table, origin[:, axis], sizes[axis], dtype)
            shape = [-1] + [1] * rank + [table.shape[-1]]
            shape[axis + 1] = sizes[axis] if isinstance(sizes[axis], int) else -1
            values = ops.reshape(values, shape)
            per_axis.append(ops.broadcast_to(values, (batch, *sizes, table.shape[-1])))
        # Feature order of `_encode`: each group (raw, sin_k, cos_k) over the axes.
        features = ops.stack(per_axis, axis=-1)
        return ops.reshape(features, (batch, *sizes, -1))

    def _check_spatial_shape(self, spatial_shape):
        if not self.built:
            raise ValueError(
                f"CoordGate `{self.name}` is not built yet, so its rank and "
                "channels are unknown: call the layer on an input, or call "
                "`build(input_shape)`, before `compute_gate`."
            )
        names = "(length,)" if self.spatial_rank == 1 else "(height, width)"
        sizes = spatial_shape if isinstance(spatial_shape, (list, tuple)) else None
        if (
            sizes is None
            or len(sizes) != self.spatial_rank
            or not all((av.is_int(n) and n > 0) or _is_scalar_tensor(n) for n in sizes)
        ):
            raise av.invalid_value(
                spatial_shape,
                "spatial_shape",
                f"a tuple of {self.spatial_rank} positive integer(s) {names} for a "
                f"layer built on rank-{self.spatial_rank + 2} inputs",
            )
        return tuple(int(n) if av.is_int(n) else n for n in sizes)

    def call(self, inputs):
        inputs, origin = _frame.split_inputs(self, inputs)
        sizes = _coords.spatial_sizes(inputs, self._spatial_axes(len(inputs.shape)))
        if origin is None:
            gate = self.compute_gate(sizes)
            if self.data_format == "channels_first":
                gate = ops.moveaxis(gate, -1, 0)
        else:
            origin = _frame.check_origin(self, origin, sizes)
            gate = self._frame_gate(sizes, origin)
            if self.data_format == "channels_first":
                gate = ops.moveaxis(gate, -1, 1)
        outputs = inputs * ops.cast(gate, inputs.dtype)
        if self.use_projection:
            outputs = self.project(outputs)
        return outputs

    def project(self, gated, kernel=None):
        """The 1x1 projection of the gated features (`kernel` replaces its kernel).

        Computed through `ops` rather than by calling the `Conv` sub-layer, so that
        channels-first inputs run on TensorFlow's CPU (see `_layout.pointwise`).
        """
        projection = self.projection
        kernel = projection.kernel if kernel is None else kernel
        dtype = gated.dtype
        bias = ops.cast(projection.bias, dtype) if projection.use_bias else None
        return _layout.pointwise(gated, ops.cast(kernel, dtype), bias, self.data_format)

    def compute_output_shape(self, input_shape):
        if self.frame_shape is not None:
            input_shape = input_shape[0]
        output_shape = list(input_shape)
        if self.filters is not None:
            output_shape[self._channel_axis] = self.filters
        return tuple(output_shape)

    def get_config(self):
        config = super().get_config()
        serialize = keras.initializers.serialize
        config.update(
            {
                "filters": self.filters,
                "encoding_layers": self.encoding_layers,
                "encoding": self.encoding,
                "encoding_units": self.encoding_units,
                "hidden_activation": None
                if self.hidden_activation is None
                else keras.activations.serialize(self.hidden_activation),
                "gate_activation": None
                if self.gate_activation is None
                else keras.activations.serialize(self.gate_activation),
                "use_projection": self.use_projection,
                "num_frequencies": self.num_frequencies,
                "map_size": self.map_size,
                "data_format": self.data_format,
                "kernel_initializer": serialize(self.kernel_initializer),
                "bias_initializer": serialize(self.bias_initializer),
                "encoder_initializer": serialize(self.encoder_initializer),
                "encoder_bias_initializer": None
                if self.encoder_bias_initializer is None
                else serialize(self.encoder_bias_initializer),
                "map_initializer": serialize(self.map_initializer),
                "frame_shape": self.frame_shape,
            }
        )
        return config


def _is_scalar_tensor(value):
    """A dynamic size (a scalar integer tensor), as `ops.shape` gives them."""
    if isinstance(value, (np.generic, np.ndarray, float, bool)):
        return False
    shape = getattr(value, "shape", None)
    return shape is not None and len(shape) == 0 and ops.is_tensor(value)
