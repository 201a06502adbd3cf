"""`deblur_files`: image files in, restored files of the same format out."""

import dataclasses
import os
import time

from coordgate_keras.data import image_io
from coordgate_keras.inference import _runners
from coordgate_keras.inference.deblur import deblur
from coordgate_keras.utils import argument_validation as av
from coordgate_keras.utils import atomic_io


@dataclasses.dataclass(frozen=True)
class FileResult:
    """What happened to one input: `output` on success, else `error`."""

    path: str
    output: str = None
    error: str = None
    seconds: float = 0.0
    shape: tuple = None
    dtype: str = None


def deblur_files(
    paths,
    out_dir,
    model,
    weights=None,
    tile=None,
    overlap=None,
    batch_size=None,
    threads=None,
    margin=None,
    overwrite=False,
    on_file=None,
    progress=None,
):
    """Deblurs image files into `out_dir`, each written in its own format.

    Every PNG, TIFF (8/16-bit, float) or NPY file (folders are expanded to
    theirs) is read as `read_image` does, restored with `deblur` (colour
    channel by channel) and written to `out_dir/<its name>` in its own format
    and dtype (`write_image`: clipped to `[0, 1]`, integers scaled back by
    their dtype's maximum), atomically: a reader never sees a half-written
    file, and Ctrl-C removes the one being written. A file that cannot be
    read, has the wrong size, or whose output exists (without `overwrite`) is
    reported in its result and the others are still processed.

    Args:
        paths: list of files and folders.
        out_dir: str. Output folder, created when missing.
        model, weights, tile, overlap, batch_size, threads, margin: as in
            `deblur`.
        overwrite: bool. Replace existing outputs.
        on_file: callable or None. Called with each `FileResult` when done.
        progress: callable or None. `progress(done, total)` over the tiles
            of the current file.

    Returns:
        A list of `FileResult`, one per input file, in order.

    Raises:
        ValueError: bad arguments, no input files, or `out_dir` is not a folder.
    """
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise av.invalid_value(out_dir, "out_dir", "a folder (this is a file)")
    files = image_io.image_files(paths)
    if not files:
        raise av.invalid_value(
            list(paths),
            "paths",
            f"image files or folders holding some ({image_io.EXTENSIONS})",
        )
    overwrite = av.boolean(overwrite, "overwrite")
    runner = _runners.open_runner(model, weights, threads, margin)
    os.makedirs(out_dir, exist_ok=True)
    atomic_io.remove_stale_temporaries(out_dir)
    results, taken = [], {}
    for path in files:
        start = time.perf_counter()
        output = os.path.join(out_dir, os.path.basename(path))
        try:
            if output in taken:
                raise av.invalid_value(
                    None,
                    "paths",
                    "inputs with distinct file names (outputs share one folder)",
                    f"{path!r}, whose name is also that of {taken[output]!r}",
                )
            taken[output] = path
            atomic_io.check_destination(output, overwrite)
            image, dtype = image_io.read_image(path)
            restored = deblur(
                runner,
                image,
                tile=tile,
                overlap=overlap,
                batch_size=batch_size,
                progress=progress,
            )
            image_io.write_image(output, restored, dtype, overwrite=overwrite)
            result = FileResult(
                path,
                output=output,
                seconds=time.perf_counter() - start,
                shape=image.shape,
                dtype=dtype.name,
            )
        except (ValueError, OSError) as error:
            result = FileResult(
                path, error=str(error), seconds=time.perf_counter() - start
            )
        results.append(result)
        if on_file is not None:
            on_file(result)
    return results
