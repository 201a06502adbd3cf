"""Frame models: a network run on windows of a larger frame, with their origins.

`with_frame(model, frame_shape)` rewrites a one-input model into the two-input
form `[image, origin]`: every coordinate layer (`AddCoords`, `CoordConv*D`,
`CoordGate`) gets the frame's shape at its own level and the origin scaled to
that level, a `FrameWindow` after the image input checks the origins, and the
weights are copied. The model's config is rewritten rather than the network
rebuilt from builder arguments, so any functional model works, whether it was
made by `create_model`, loaded from a `.keras` file or built by hand.
"""

import copy
import math

import keras

from coordgate_keras import layers as cg_layers
from coordgate_keras.utils import argument_validation as av

ORIGIN_INPUT = "origin"
# Position-dependent layers with no frame form: their weights (or PSFs) belong to
# positions of the input they were built for, not of a frame.
_FRAMELESS_LAYERS = {
    "LocallyConnected1D": "its weights are per input position",
    "LocallyConnected2D": "its weights are per input position",
    "MultiWienerDeconvolution": "its PSFs and Wiener filters span the input",
}
_COORDINATE_LAYERS = (
    "AddCoords",
    "CoordConv1D",
    "CoordConv2D",
    "CoordConv3D",
    "CoordGate",
)


def with_frame(model, frame_shape, input_shape=None):
    """The two-input form `[image, origin]` of `model`, with the same weights.

    Level `l` of the network (inputs down-sampled by `2**l`) takes the frame at
    `frame_shape // 2**l` and the origin `origin // 2**l`. Origins must be
    multiples of the model's largest down-sampling factor (`2**depth` for a
    U-Net), so every window sits on the frame's own down-sampling grid, and the
    frame must be divisible by it. On the whole frame (origin zeros) the
    two-input model computes what `model` computes; on a window it computes the
    frame's result there, away from the window's border (where the
    convolutions see zero padding instead of the neighbouring pixels).

    Args:
        model: a functional `keras.Model` with one image input `(batch, height,
            width, channels)` (or `(batch, length, channels)`), static spatial
            sizes unless `input_shape` is given.
        frame_shape: tuple of ints. The frame's spatial shape, full resolution.
        input_shape: tuple or None. The window (tile) shape without the batch
            axis, e.g. `(256, 256, 1)`; required when `model` takes any size.

    Returns:
        A `keras.Model` with inputs `[image, origin]` (origin `(batch, rank)`,
        int32, named `"origin"`).

    Example:

    >>> from coordgate_keras.zoo import create_model, frame_geometry, with_frame
    >>> model = create_model("coordgate_unet_d1", input_shape=(32, 32, 1),
    ...                      base_filters=4)
    >>> framed = with_frame(model, (128, 96))
    >>> [tensor.name for tensor in framed.inputs]
    ['coordgate_unet_d1_input', 'origin']
    >>> frame_geometry(framed)["alignment"]
    2
    """
    if not isinstance(model, keras.Model) or not hasattr(model, "get_config"):
        raise av.invalid_value(model, "model", "a functional keras.Model")
    if len(model.inputs) != 1:
        raise av.invalid_value(
            [t.name for t in model.inputs],
            "model",
            "a model with one (image) input; this one has several, so it may "
            "already be a frame model",
            received=f"model.inputs={[t.name for t in model.inputs]}",
        )
    if input_shape is not None:
        model = _at_input_shape(model, input_shape)
    image_shape = tuple(model.inputs[0].shape)
    rank = len(image_shape) - 2
    spatial = image_shape[1:-1]
    if None in spatial:
        raise av.invalid_value(
            input_shape,
            "input_shape",
            "the window shape without the batch axis, e.g. (256, 256, 1), for a "
            f"model that takes any size (its input is {image_shape})",
        )
    frame_shape = av.shape(frame_shape, "frame_shape", rank=rank)
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] in _FRAMELESS_LAYERS:
            raise av.invalid_value(
                model.name,
                "model",
                f"a model without {layer['class_name']} layers "
                f"({_FRAMELESS_LAYERS[layer['class_name']]}: no window of a frame "
                "can be computed from it)",
                received=f"model={model.name!r} with layer `{layer['name']}`",
            )
    levels = _levels(config, spatial)
    alignment = _max_factor(config, spatial)
    for n, size in zip(frame_shape, spatial):
        if n < size or n % alignment:
            raise av.invalid_value(
                frame_shape,
                "frame_shape",
                f"sizes at least the window's {tuple(spatial)} and divisible by "
                f"{alignment} (the model down-samples {alignment}x)",
            )
    new_config = _rewrite(config, frame_shape, alignment, levels, rank)
    framed = keras.Model.from_config(new_config)
    framed.set_weights(model.get_weights())
    return framed


def frame_geometry(model):
    """The frame a two-input model runs windows of, or None for other models.

    Returns:
        None, or a dict `{"frame_shape": (H, W), "tile_shape": (h, w),
        "alignment": int}` (origins must be multiples of `alignment`).
    """
    for layer in model.layers:
        if isinstance(layer, cg_layers.FrameWindow):
            image = model.inputs[0]
            return {
                "frame_shape": tuple(layer.frame_shape),
                "tile_shape": tuple(image.shape[1:-1]),
                "alignment": layer.alignment,
            }
    return None


def _at_input_shape(model, input_shape):
    config = copy.deepcopy(model.get_config())
    shape = av.shape(input_shape, "input_shape", allow_none=False)
    for layer in config["layers"]:
        if layer["class_name"] == "InputLayer":
            layer["config"]["batch_shape"] = [None, *shape]
            break
    rebuilt = keras.Model.from_config(config)
    rebuilt.set_weights(model.get_weights())
    return rebuilt


def _tensor_args(node):
    """The `__keras_tensor__` dicts a node's arguments hold (nested lists)."""
    found = []

    def walk(value):
        if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
            found.append(value)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)

    walk(node["args"])
    return found


def _levels(config, spatial):
    """Down-sampling level of each coordinate layer, from its input's size."""
    levels = {}
    for layer in config["layers"]:
        if layer["class_name"] not in _COORDINATE_LAYERS:
            continue
        if len(layer["inbound_nodes"]) != 1:
            raise ValueError(
                f"Layer `{layer['name']}` is called more than once in the model; "
                "`with_frame` needs one call per coordinate layer."
            )
        (tensor,) = _tensor_args(layer["inbound_nodes"][0])[:1]
        shape = tensor["config"]["shape"]
        data_format = layer["config"].get("data_format", "channels_last")
        sizes = shape[1:-1] if data_format == "channels_last" else shape[2:]
        factors = {n // s for n, s in zip(spatial, sizes) if s}
        if len(factors) != 1 or any(n % s for n, s in zip(spatial, sizes)):
            raise ValueError(
                f"Layer `{layer['name']}` sees {sizes}, not the input {spatial} "
                "down-sampled by one factor: `with_frame` cannot place it in "
                "the frame."
            )
        factor = factors.pop()
        level = int(round(math.log2(factor)))
        if 2**level != factor:
            raise ValueError(
                f"Layer `{layer['name']}` sees the input down-sampled by {factor}, "
                "not a power of 2."
            )
        levels[layer["name"]] = level
    return levels


def _max_factor(config, spatial):
    """The largest factor by which any tensor of the model is down-sampled.

    Windows must start on multiples of it: a pooling grid shifted by less would
    pool other pixels than the whole frame's pass does.
    """
    factor = 1
    for layer in config["layers"]:
        for node in layer["inbound_nodes"]:
            for tensor in _tensor_args(node):
                shape = tensor["config"]["shape"]
                if len(shape) != len(spatial) + 2:
                    continue
                for n, s in zip(spatial, shape[1:-1]):
                    if s and n % s == 0:
                        factor = max(factor, n // s)
    return factor


def _keras_tensor(shape, dtype, history):
    return {
        "class_name": "__keras_tensor__",
        "config": {"shape": list(shape), "dtype": dtype, "keras_history": history},
    }


def _rewrite(config, frame_shape, alignment, levels, rank):
    config = copy.deepcopy(config)
    name = config["name"]
    (image_layer,) = [
        layer for layer in config["layers"] if layer["class_name"] == "InputLayer"
    ]
    image_name = image_layer["name"]
    image_shape = image_layer["config"]["batch_shape"]
    window_name = f"{name}_frame_window"
    origin = _keras_tensor((None, rank), "int32", [ORIGIN_INPUT, 0, 0])

    # Every consumer of the image reads it through the FrameWindow check.
    for layer in config["layers"]:
        for node in layer["inbound_nodes"]:
            for tensor in _tensor_args(node):
                if tensor["config"]["keras_history"][0] == image_name:
                    tensor["config"]["keras_history"] = [window_name, 0, 0]
    if any(output[0] == image_name for output in _as_list(config["output_layers"])):
        raise ValueError("`with_frame` needs a model whose output is not its input.")

    new_layers = [
        image_layer,
        {
            "module": "keras.layers",
            "class_name": "InputLayer",
            "config": {
                "batch_shape": [None, rank],
                "dtype": "int32",
                "sparse": False,
                "ragged": False,
                "name": ORIGIN_INPUT,
                "optional": False,
            },
            "registered_name": None,
            "name": ORIGIN_INPUT,
            "inbound_nodes": [],
        },
        _layer_config(
            cg_layers.FrameWindow(frame_shape, alignment=alignment, name=window_name),
            [[_keras_tensor(image_shape, "float32", [image_name, 0, 0]), origin]],
        ),
    ]
    for level in sorted(set(levels.values()) - {0}):
        new_layers.append(
            _layer_config(
                cg_layers.DownscaleOrigin(2**level, name=f"{name}_origin_level{level}"),
                [origin],
            )
        )
    for layer in config["layers"]:
        if layer is image_layer:
            continue
        if layer["name"] in levels:
            level = levels[layer["name"]]
            layer["config"]["frame_shape"] = [n // 2**level for n in frame_shape]
            node = layer["inbound_nodes"][0]
            level_origin = (
                origin
                if level == 0
                else _keras_tensor(
                    (None, rank), "int32", [f"{name}_origin_level{level}", 0, 0]
                )
            )
            (x,) = node["args"]
            node["args"] = [[x, level_origin]]
            layer.pop("build_config", None)
        new_layers.append(layer)
    config["layers"] = new_layers
    config["input_layers"] = [[image_name, 0, 0], [ORIGIN_INPUT, 0, 0]]
    return config


def _layer_config(layer, args):
    serialized = keras.saving.serialize_keras_object(layer)
    serialized["name"] = layer.name
    serialized["inbound_nodes"] = [{"args": args, "kwargs": {}}]
    return serialized


def _as_list(layers):
    return [layers] if layers and isinstance(layers[0], str) else list(layers)
