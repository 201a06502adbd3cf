"""Tile models: the geometry a tiled runner needs, origins to verify and calibrate.

A tile model has inputs `[image, origin]` (the zoo's `frame_shape` models):
`image` a tile `(batch, h, w, c)`, `origin` int32 `(batch, 2)`, the tile's
top-left pixel `(row, col)` in the frame at full resolution, a multiple of
`alignment` (`2**depth` for a U-Net), with `origin + (h, w) <= frame_shape`.
"""

import numpy as np

from coordgate_keras.utils import argument_validation as av


def is_tile_model(model):
    """Whether `model` has the two inputs `[image, origin]` of a tile model
    (the second named `origin`, as the zoo's frame models name it)."""
    inputs = getattr(model, "inputs", None) or ()
    return len(inputs) == 2 and getattr(inputs[1], "name", None) == "origin"


def resolve(model, input_shape, frame_shape=None):
    """`(model, input_shape, geometry)` of an export, checked.

    A one-input model with `frame_shape` becomes its tile model
    (`coordgate_keras.zoo.with_frame`); a tile model keeps its own frame,
    which `frame_shape`, when given, must match. `geometry` is None for a
    one-input export.
    """
    if frame_shape is not None:
        frame_shape = check_frame_shape(frame_shape)
        if not is_tile_model(model):
            from coordgate_keras import zoo

            # with_frame refuses frames smaller than the tile or off its grid.
            input_shape = av.input_shape_with_batch(input_shape, model)
            model = zoo.with_frame(model, frame_shape, input_shape[1:])
    if not is_tile_model(model):
        return model, av.input_shape_with_batch(input_shape, model), None
    input_shape = image_shape(input_shape, model)
    found = geometry(model, input_shape)
    if frame_shape is not None and found["frame_shape"] != frame_shape:
        raise av.invalid_value(
            frame_shape,
            "frame_shape",
            f"the tile model's own frame {found['frame_shape']} (or None)",
        )
    return model, input_shape, found


def check_frame_shape(frame_shape, name="frame_shape"):
    """`(height, width)` as a tuple of two positive ints."""
    values = frame_shape
    if isinstance(values, (list, tuple)) and len(values) == 2:
        if all(av.is_int(n) and n > 0 for n in values):
            return tuple(int(n) for n in values)
    raise av.invalid_value(
        frame_shape, name, "a tuple of two positive integers (height, width)"
    )


def image_shape(input_shape, model):
    """The fixed image shape of a tile model, checked against its image input.

    `None` takes the image input's shape with batch 1.
    """
    model_shape = tuple(model.inputs[0].shape)
    if input_shape is None:
        if None in model_shape[1:]:
            raise av.invalid_value(
                input_shape,
                "input_shape",
                "a fixed shape such as (1, 256, 256, 1); the model's image input "
                f"shape {model_shape} has unknown sizes",
            )
        return (1,) + tuple(int(n) for n in model_shape[1:])
    values = av.input_shape_with_batch(input_shape)
    if len(values) != len(model_shape) or any(
        m is not None and m != n for m, n in zip(model_shape[1:], values[1:])
    ):
        raise av.invalid_value(
            input_shape,
            "input_shape",
            f"a shape compatible with the model's image input shape {model_shape}",
        )
    return values


def geometry(model, input_shape):
    """`{"frame_shape", "tile_shape", "alignment", "receptive_field_margin"}`
    of a tile model at a tile.

    Read from `coordgate_keras.zoo.frame_geometry` (the tile is
    `input_shape`'s spatial size); the tile must be a multiple of the
    alignment and fit in the frame. The margin
    (`coordgate_keras.zoo.receptive_field`) is None for a model with a layer
    whose reach is not known.
    """
    from coordgate_keras import zoo

    found = zoo.frame_geometry(model)
    if found is None:
        raise av.invalid_value(
            model,
            "model",
            "a tile model with inputs [image, origin]",
            "a model with one input",
        )
    frame = tuple(int(n) for n in found["frame_shape"])
    alignment = int(found["alignment"])
    tile = tuple(int(n) for n in input_shape[1:-1])
    checked = check_geometry(frame, tile, alignment)
    try:
        margin = zoo.receptive_field(model)["margin"]
    except ValueError:  # a layer whose reach is not known: the user's overlap
        margin = None
    return {**checked, "receptive_field_margin": margin}


def check_geometry(frame_shape, tile_shape, alignment, name="frame_shape"):
    """The geometry dict, after checking frame against tile and alignment."""
    frame_shape, tile_shape = tuple(frame_shape), tuple(tile_shape)
    if any(t % alignment for t in tile_shape):
        raise av.invalid_value(
            tile_shape,
            "input_shape",
            f"a tile whose sizes are multiples of the model's alignment "
            f"{alignment} (2**depth)",
            f"tile {tile_shape}",
        )
    check_covers(frame_shape, tile_shape, name)
    if any(f % alignment for f in frame_shape):
        raise av.invalid_value(
            frame_shape,
            name,
            f"sizes that are multiples of the model's alignment {alignment} "
            "(2**depth: every tile's origin is one)",
        )
    return {
        "frame_shape": frame_shape,
        "tile_shape": tile_shape,
        "alignment": int(alignment),
    }


def check_covers(frame_shape, tile_shape, name="frame_shape"):
    """A frame at least as large as the tile along each axis, else an error."""
    if any(f < t for f, t in zip(frame_shape, tile_shape)):
        raise av.invalid_value(
            tuple(frame_shape),
            name,
            f"a frame at least as large as the tile {tuple(tile_shape)}",
        )


def verification_origins(geometry):
    """Origins that verify a tile model: the four corners and the centre.

    The centre is rounded down to the alignment; duplicates (a frame one
    tile wide along an axis) are dropped, order kept.
    """
    frame, tile, alignment = (
        geometry["frame_shape"],
        geometry["tile_shape"],
        geometry["alignment"],
    )
    last = [f - t for f, t in zip(frame, tile)]
    centre = [(n // 2) // alignment * alignment for n in last]
    origins = [
        (0, 0),
        (0, last[1]),
        (last[0], 0),
        (last[0], last[1]),
        tuple(centre),
    ]
    return list(dict.fromkeys(origins))


def random_origins(geometry, num, seed=0):
    """`num` valid origins drawn uniformly from the aligned grid."""
    rng = np.random.default_rng(seed)
    frame, tile, alignment = (
        geometry["frame_shape"],
        geometry["tile_shape"],
        geometry["alignment"],
    )
    steps = [(f - t) // alignment + 1 for f, t in zip(frame, tile)]
    return [tuple(int(rng.integers(n)) * alignment for n in steps) for _ in range(num)]


def describe(geometry):
    """What a tiled runner needs, as recorded in an export's report."""
    return {
        "frame_shape": list(geometry["frame_shape"]),
        "tile_shape": list(geometry["tile_shape"]),
        "alignment": geometry["alignment"],
        "receptive_field_margin": geometry.get("receptive_field_margin"),
        "origin": "input `origin`, int32 (batch, 2): the tile's top-left pixel "
        "(row, col) in the frame at full resolution; each a multiple of "
        "`alignment`, with origin + tile_shape <= frame_shape (not checked by "
        "the exported file)",
    }


def tile_report(geometry, origins, reference, outputs):
    """The report's `"tile"` entry: `describe(geometry)` and each origin's
    error (`reference` and `outputs` hold the batches of `origins` in turn,
    the same number for each)."""
    from coordgate_keras.tflite import verification

    per_origin = []
    count = len(reference) // len(origins)
    for i, origin in enumerate(origins):
        group = slice(i * count, (i + 1) * count)
        result = verification.compare(reference[group], outputs[group])
        per_origin.append({"origin": list(origin), **result})
    return {**describe(geometry), "verified_origins": per_origin}


def at_origins(batches, geometry):
    """`(pairs, origins)`: every image batch at each verification origin,
    as `(image, origin)` pairs, origin by origin."""
    origins = verification_origins(geometry)
    pairs = [
        (batch, np.tile(np.int32([origin]), (len(batch), 1)))
        for origin in origins
        for batch in batches
    ]
    return pairs, origins
