"""`deblur`: whole frames through one-input models, tiles through frame models."""

import numpy as np

from coordgate_keras.data import _images
from coordgate_keras.inference import _runners
from coordgate_keras.utils import argument_validation as av


def deblur(
    model,
    frames,
    tile=None,
    overlap=None,
    batch_size=None,
    weights=None,
    threads=None,
    margin=None,
    progress=None,
):
    """Deblurs frames with a Keras model or an exported `.tflite` / `.onnx` file.

    A one-input model runs whole frames, of the size it was built for (any
    size when it was built without one). A frame model (inputs `image` and
    `origin`, `coordgate_keras.zoo.with_frame`) runs tile by tile, each tile
    given its top-left pixel in the frame, on a grid of its alignment
    (`2**depth`). Neighbouring tiles overlap; each keeps its centre and gives
    up `overlap // 2` pixels on every side that borders another tile. The
    default overlap covers the receptive field (computed from the Keras
    layers, read from an exported file's report, or `margin`), so the result
    equals the whole-frame model's output to float round-off. Memory beyond the
    frame itself is that of `batch_size` tiles, whatever the frame size.

    Frames whose channels differ from a one-channel model's (RGB) are
    restored channel by channel.

    Args:
        model: a `keras.Model`, a registered model name (with `weights`; built
            at the size its weights were trained at) or the path of a
            `.keras`, `.tflite` or `.onnx` file.
        frames: float array in `[0, 1]`, `(H, W)`, `(H, W, C)` or
            `(N, H, W, C)`.
        tile: int, pair or None. Tile height and width of a frame model; None
            takes the model's input size (which a fixed-size model requires).
        overlap: int, pair or None. Pixels shared by neighbouring tiles, a
            multiple of the alignment smaller than the tile; None: the
            smallest that covers the receptive field (`2 * margin`, rounded up).
        batch_size: int or None. Tiles per model call (default 1 for files,
            whose batch is fixed anyway, and 4 for Keras models).
        weights: str or None. Weight tag, with a registered model name.
        threads: int or None. LiteRT / ONNX Runtime threads (TensorFlow's
            intra-op threads for Keras, before TensorFlow starts).
        margin: int or None. Receptive-field margin of an exported file whose
            report does not give it.
        progress: callable or None. Called as `progress(done, total)` after
            every batch of tiles (or frame).

    Returns:
        float32 array of the shape of `frames` (outputs as the model gives
        them: not clipped).

    Example:

    >>> import numpy as np
    >>> from coordgate_keras.inference import deblur
    >>> from coordgate_keras.zoo import create_model
    >>> model = create_model("unet_d1", input_shape=(32, 48, 1), base_filters=4)
    >>> deblur(model, np.zeros((32, 48), np.float32)).shape
    (32, 48)
    """
    runner = (
        model
        if isinstance(model, _runners._Runner)
        else _runners.open_runner(model, weights, threads, margin)
    )
    frames = _images.check_images(frames, "frames")
    _images.image_layout(frames.shape, "frames")
    batch = frames[None] if frames.ndim == 3 else frames
    if frames.ndim == 2:
        batch = frames[None, :, :, None]
    channels = runner.image_shape[-1]
    if batch.shape[-1] != channels:
        if channels != 1:
            raise av.invalid_value(
                None,
                "frames",
                f"frames with {channels} channels, the input of `{runner.name}` "
                "(a one-channel model restores any number, channel by channel)",
                f"frames.shape={frames.shape}",
            )
        # Channel by channel: each becomes a one-channel frame of the batch.
        n, h, w, c = batch.shape
        planes = np.moveaxis(batch, -1, 1).reshape(n * c, h, w, 1)
        out = _deblur_batch(runner, planes, tile, overlap, batch_size, progress)
        out = np.moveaxis(out.reshape(n, c, h, w), 1, -1)
    else:
        out = _deblur_batch(runner, batch, tile, overlap, batch_size, progress)
    if frames.ndim == 2:
        return out[0, :, :, 0]
    return out[0] if frames.ndim == 3 else out


def _deblur_batch(runner, frames, tile, overlap, batch_size, progress):
    default_batch = 4 if runner.kind == "keras" else 1
    batch_size = av.positive_int(batch_size or default_batch, "batch_size")
    if runner.takes_origin:
        return _tiled(runner, frames, tile, overlap, batch_size, progress)
    if tile is not None or overlap is not None:
        raise av.invalid_value(
            tile if tile is not None else overlap,
            "tile" if tile is not None else "overlap",
            f"None for a model with one input (`{runner.name}` runs whole frames; "
            "`coordgate_keras.zoo.with_frame` makes a frame model that runs tiles)",
        )
    size = tuple(runner.image_shape[:2])
    frame = tuple(frames.shape[1:3])
    if None not in size and size != frame:
        raise av.invalid_value(
            None,
            "frames",
            f"frames of height and width {size}, the size `{runner.name}` was "
            f"built for: a model with one input runs whole frames, its "
            f"coordinates spanning the frame. For {frame} frames, convert it "
            f"with `coordgate_keras.zoo.with_frame(model, {frame})` and run "
            f"tiles (`tile=`), or fine-tune it with "
            f"`coordgate-train --frame-size {frame[0]}x{frame[1]}`",
            f"frames of height and width {frame}",
        )
    step = batch_size if runner.batch is None else runner.batch
    outputs = []
    for start in range(0, frames.shape[0], step):
        outputs.append(runner.run(frames[start : start + step]))
        if progress is not None:
            progress(min(start + step, frames.shape[0]), frames.shape[0])
    return np.concatenate(outputs)


def tile_grid(frame_shape, tile, overlap):
    """Tile origins and the part of the frame each tile writes, per axis.

    Along an axis of size `n`, tiles of size `t` start every `t - overlap`
    pixels from 0, the last one at `n - t`; two neighbours split their common
    pixels in the middle.

    Returns:
        Per axis, a list of `(origin, keep_start, keep_stop)` in frame pixels.
    """
    axes = []
    for n, t, o in zip(frame_shape, tile, overlap):
        step = t - o
        origins = list(range(0, n - t, step)) + [n - t]
        if len(origins) > 1 and origins[-1] == origins[-2]:
            origins.pop()
        spans = []
        for i, origin in enumerate(origins):
            start = 0 if i == 0 else (origins[i - 1] + t + origin) // 2
            stop = n if i == len(origins) - 1 else (origin + t + origins[i + 1]) // 2
            spans.append((origin, start, stop))
        axes.append(spans)
    return axes


def _tiled(runner, frames, tile, overlap, batch_size, progress):
    frame = tuple(frames.shape[1:3])
    name = runner.name
    if runner.frame_shape is not None and tuple(runner.frame_shape) != frame:
        raise av.invalid_value(
            None,
            "frames",
            f"frames of height and width {tuple(runner.frame_shape)}, the frame "
            f"`{name}` was made for (its gates are placed on that frame); make "
            f"a frame model for {frame} (`with_frame(model, {frame})`)",
            f"frames of height and width {frame}",
        )
    model_tile = tuple(runner.image_shape[:2])
    if tile is None:
        if None in model_tile:
            raise av.invalid_value(
                tile, "tile", f"a tile size: `{name}` takes tiles of any size"
            )
        tile = model_tile
    tile = av.int_tuple((tile, tile) if av.is_int(tile) else tile, "tile", 2)
    if None not in model_tile and tile != model_tile:
        raise av.invalid_value(
            tile,
            "tile",
            f"the tile size `{name}` was built for, {model_tile} (or None)",
        )
    alignment = runner.alignment
    if alignment is None or alignment < 1:
        raise av.invalid_value(None, "model", "a frame model whose alignment is known")
    if any(t > n or t % alignment for t, n in zip(tile, frame)):
        raise av.invalid_value(
            tile,
            "tile",
            f"a tile no larger than the frame {frame}, with height and width "
            f"multiples of the alignment {alignment}",
        )
    if overlap is None:
        margin = runner.margin
        if margin is None:
            raise av.invalid_value(
                overlap,
                "overlap",
                f"an overlap: the receptive field of `{name}` is not known (its "
                "report does not give it); pass `overlap` or `margin`",
            )
        size = -(-2 * margin // alignment) * alignment
        if any(size >= t for t, n in zip(tile, frame) if t < n):
            raise av.invalid_value(
                tile,
                "tile",
                f"tiles larger than the overlap that covers the receptive field "
                f"of `{name}` ({size} pixels: margin {margin} on each side, "
                f"rounded up to the alignment {alignment})",
            )
        overlap = tuple(size if t < n else 0 for t, n in zip(tile, frame))
    else:
        overlap = av.int_tuple(
            (overlap, overlap) if av.is_int(overlap) else overlap,
            "overlap",
            2,
            minimum=0,
        )
    if any(o % alignment or o >= t for o, t in zip(overlap, tile)):
        raise av.invalid_value(
            overlap,
            "overlap",
            f"multiples of the alignment {alignment} smaller than the tile {tile}",
        )
    rows, cols = tile_grid(frame, tile, overlap)
    jobs = [
        (index, r, c) for index in range(frames.shape[0]) for r in rows for c in cols
    ]
    out = None
    (th, tw) = tile
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start : start + batch_size]
        images = np.stack(
            [frames[i, r[0] : r[0] + th, c[0] : c[0] + tw] for i, r, c in chunk]
        )
        origins = np.array([(r[0], c[0]) for _, r, c in chunk], np.int32)
        result = runner.run(images, origins)
        if out is None:
            out = np.zeros(frames.shape[:3] + result.shape[-1:], np.float32)
        for (i, r, c), y in zip(chunk, result):
            out[i, r[1] : r[2], c[1] : c[2]] = y[
                r[1] - r[0] : r[2] - r[0], c[1] - c[0] : c[2] - c[0]
            ]
        if progress is not None:
            progress(start + len(chunk), len(jobs))
    return out
