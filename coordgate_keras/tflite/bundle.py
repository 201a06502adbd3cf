"""Everything an edge deployment needs from one model, in one folder, whole."""

import os
import re
import zipfile

from coordgate_keras.tflite import _tiles, export, verification
from coordgate_keras.tflite import calibration as calibration_lib
from coordgate_keras.utils import argument_validation as av
from coordgate_keras.utils import atomic_io

# File-name label of each quantization mode.
LABELS = {"none": "float32", "float16": "float16", "dynamic": "dynamic", "int8": "int8"}


class ExportRefusedError(RuntimeError):
    """Some quantization modes of a bundle were refused, so nothing was written.

    Attributes:
        refused: dict, mode -> reason, for the refused modes.
        reports: list of the verification reports of the modes that passed
            (their `path` is where they would have been written).
    """

    def __init__(self, message, refused, reports):
        super().__init__(message)
        self.refused = refused
        self.reports = reports


def export_bundle(
    model,
    out_dir,
    input_shape=None,
    quantizations=("none", "float16", "int8"),
    weights=None,
    representative_data="simulated",
    verify_data="simulated",
    value_range=verification.DEFAULT_VALUE_RANGE,
    partial=False,
    overwrite=False,
    gates="auto",
    frame_shape=None,
):
    """Exports a model as a SavedModel plus verified `.tflite` files and reports.

    Writes to `out_dir`, for a model named `name` at `H x W`:
    `name_HxW_saved_model/` (fixed-shape SavedModel, gates folded),
    `name_HxW_<label>.tflite` for each quantization (`float32`, `float16`,
    `dynamic`, `int8`) and its JSON report `name_HxW_<label>.json`. A tile
    model (`frame_shape`, see `export_tflite`) is named
    `name_HxW_frameFxG_<label>.tflite`, `H x W` the tile, `F x G` the frame.

    The bundle is all or nothing. Every argument (calibration data included)
    and every destination is checked before anything is converted; everything
    is built in a staging folder and moved into `out_dir` at the end, together
    (see `coordgate_keras.utils.atomic_io.atomic_bundle`). An error, Ctrl-C or
    SIGTERM leaves `out_dir` as it was; the staging folder of a process killed
    with SIGKILL is removed by the next export into the same folder.

    A mode whose conversion needs non-builtin operators, or whose result fails
    verification, is refused: then nothing is written and `ExportRefusedError`
    lists the reasons, unless `partial=True`, which writes the modes that
    passed and returns the refusals.

    Args:
        model: a `keras.Model`, the name of a registered model
            (`coordgate_keras.zoo.list_models()`, built at `input_shape`), or
            the path of a `.keras` file (a `pathlib.Path` is always a path).
        out_dir: str. Output folder (created if needed).
        input_shape: tuple of ints or None. `(batch, *spatial, channels)`; None
            uses the model's static input shape with batch 1, or for a
            registered model its reference shape (`model_info(name)`).
        quantizations: sequence of `"none"`, `"float16"`, `"dynamic"`, `"int8"`.
        weights: str or None. Weight tag of a registered model (`create_model`'s
            `weights`); None means random initialisation, seeded with
            `keras.utils.set_random_seed(0)`.
        representative_data: int8 calibration inputs (see `export_tflite`).
        verify_data: verification inputs (see `export_tflite`).
        value_range: tuple `(low, high)`. The model's input range (see
            `export_tflite`).
        partial: bool. Write the modes that passed even when others are refused.
        overwrite: bool. Replace existing files.
        gates: str. CoordGate gate representation (`prepare_for_export`).
        frame_shape: tuple `(H, W)` or None. Export tile models of a frame of
            this size (inputs `image` and `origin`, see `export_tflite`).

    Returns:
        A dict: `saved_model` (its path), `reports` (one verification report
        per written `.tflite` file, with its `path`) and `refused` (mode ->
        reason; empty unless `partial=True`).

    Raises:
        ExportRefusedError: a mode was refused and `partial` is False.
        FileExistsError: a destination exists and `overwrite` is False
            (`atomic_io.DestinationExistsError`).

    Example:

    >>> from coordgate_keras.tflite import export_bundle
    >>> result = export_bundle("coordgate_unet_d2", "export/",
    ...                        (1, 256, 256, 1))  # doctest: +SKIP
    """
    quantizations = _check_quantizations(quantizations)
    partial = av.boolean(partial, "partial")
    value_range = verification.check_value_range(value_range)
    model, weights_tag = resolve_model(model, input_shape, weights)
    model, input_shape, geometry = _tiles.resolve(model, input_shape, frame_shape)
    stem = file_stem(model, input_shape, geometry)
    out_dir = os.fspath(out_dir)
    names = {q: f"{stem}_{LABELS[q]}.tflite" for q in quantizations}
    saved_model_name = f"{stem}_saved_model"
    for name in [saved_model_name, *names.values()]:
        atomic_io.check_destination(os.path.join(out_dir, name), overwrite)
    for name in names.values():
        sidecar = verification.sidecar_path(os.path.join(out_dir, name))
        atomic_io.check_destination(sidecar, overwrite)
    calibration = export.calibration_batches_for(
        "int8" if "int8" in quantizations else "none",
        representative_data,
        input_shape,
        export.DEFAULT_CALIBRATION_SAMPLES,
        value_range,
        geometry=geometry,
    )
    if not (isinstance(verify_data, str) and verify_data == "simulated"):
        calibration_lib.batches(verify_data, input_shape, "verify_data", value_range)

    with atomic_io.atomic_bundle(out_dir) as staging:
        staged_model = os.path.join(staging, saved_model_name)
        export.export_saved_model(model, staged_model, input_shape, gates=gates)
        reports, refused = [], {}
        for quantization, name in names.items():
            try:
                export.check_quantization_support(model, quantization)
                content = export.convert_saved_model(
                    staged_model, quantization, calibration, model_name=model.name
                )
                report = export.write_verified(
                    model,
                    os.path.join(staging, name),
                    content,
                    quantization=quantization,
                    verify_data=verify_data,
                    model_name=model.name,
                    weights_tag=weights_tag,
                    value_range=value_range,
                    geometry=geometry,
                )
            except (
                export.UnsupportedOpsError,
                verification.VerificationError,
            ) as error:
                refused[quantization] = str(error)
                continue
            reports.append({"path": os.path.join(out_dir, name), **report})
        if refused and not partial:
            raise ExportRefusedError(
                _refusal_message(model.name, out_dir, refused), refused, reports
            )
    return {
        "saved_model": os.path.join(out_dir, saved_model_name),
        "reports": reports,
        "refused": refused,
    }


def file_stem(model, input_shape, geometry=None):
    """`name_HxW` of an export at `input_shape`; a tile model's
    `name_HxW_frameFxG`."""
    stem = f"{model.name}_{'x'.join(str(n) for n in input_shape[1:-1])}"
    if geometry is not None:
        stem += "_frame" + "x".join(str(n) for n in geometry["frame_shape"])
    return stem


def resolve_model(model, input_shape=None, weights=None):
    """Returns `(keras.Model, weights_tag)` for a model, a registered name or a
    `.keras` file.

    A string is a registered name when it is one; otherwise, like a
    `pathlib.Path`, it is a file. Files must be `.keras` archives whose classes
    are all registered with Keras (this package registers its own on import).
    """
    import keras

    if isinstance(model, keras.Model):
        if weights is not None:
            raise av.invalid_value(
                weights, "weights", "None when `model` is a keras.Model"
            )
        return model, None
    if not isinstance(model, (str, os.PathLike)):
        raise av.invalid_value(
            model, "model", "a keras.Model, a registered model name or a .keras file"
        )
    from coordgate_keras import zoo

    if isinstance(model, str) and model in zoo.list_models():
        keras.utils.set_random_seed(0)
        spatial = _registry_input_shape(model, input_shape)
        return zoo.create_model(model, input_shape=spatial, weights=weights), weights
    if isinstance(model, str) and not _looks_like_path(model):
        zoo.create_model(model)  # Raises the unknown-name error, with close matches.
    path = os.fspath(model)
    if weights is not None:
        raise av.invalid_value(
            weights, "weights", "None with a .keras file (its weights are in the file)"
        )
    return load_keras_file(path), f"keras_file:{os.path.basename(path)}"


def load_keras_file(path, name="model"):
    """Loads a `.keras` file, with errors that say what is wrong with the file.

    Args:
        path: str. The file.
        name: str. The argument name used in error messages.

    Returns:
        The `keras.Model`.
    """
    import keras

    path = os.fspath(path)
    if not os.path.lexists(path):
        raise FileNotFoundError(f"No such .keras file: {path}")
    if os.path.isdir(path):
        raise av.invalid_value(
            path,
            name,
            "a .keras file saved with `model.save('name.keras')`",
            f"{name}={path!r}, a folder (a SavedModel cannot be re-exported; load "
            "the Keras model it came from)",
        )
    if path.endswith(".h5"):
        raise av.invalid_value(
            path,
            name,
            "a .keras file saved with `model.save('name.keras')`",
            f"{name}={path!r}, an HDF5 file (`.weights.h5` files hold weights "
            "only: build the model, e.g. with create_model, and call "
            "`load_weights`)",
        )
    if not path.endswith(".keras"):
        raise av.invalid_value(path, name, "a file name ending in '.keras'")
    if not zipfile.is_zipfile(path):
        raise av.invalid_value(
            path,
            name,
            "a .keras file saved with `model.save('name.keras')` (a zip archive)",
            f"{name}={path!r}, which exists but is not a zip archive (truncated "
            "or corrupt)",
        )
    try:
        return keras.saving.load_model(path)
    except TypeError as error:
        missing = re.findall(r"Could not locate class '([\w.>]+)'", str(error))
        if not missing:
            raise
        raise av.invalid_value(
            path,
            name,
            "a model whose layers are all registered with Keras: import the module "
            "that defines "
            + ", ".join(f"`{m}`" for m in dict.fromkeys(missing))
            + " (decorated with `@keras.saving.register_keras_serializable`) "
            "before loading; from the command line only Keras' and "
            "coordgate_keras' own layers are known",
        ) from None
    except (ValueError, OSError, KeyError, zipfile.BadZipFile) as error:
        raise av.invalid_value(
            path,
            name,
            "a readable .keras file",
            f"{name}={path!r}, which could not be read: {error}",
        ) from None


def default_input_shape(name):
    """The export shape of a registered model when none is given:
    batch 1 and its reference input shape (`model_info(name)`)."""
    from coordgate_keras import zoo

    return (1,) + tuple(zoo.model_info(name).reference_input_shape)


def format_table(reports, refused=None):
    """The verification results as a Markdown table, one row per file, then one
    line per refused mode."""
    rows = [
        "| file | quantization | size (KiB) | max abs error | mean abs error "
        "| PSNR vs Keras (dB) | passed |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for report in reports:
        result = report["verification"]
        psnr = result["psnr_db"]
        psnr = "inf" if psnr is None or psnr == float("inf") else f"{psnr:.2f}"
        rows.append(
            f"| {report['file']} | {report['quantization']} "
            f"| {report['size_bytes'] / 1024:.1f} | {result['max_abs_error']:.3g} "
            f"| {result['mean_abs_error']:.3g} | {psnr} "
            f"| {'yes' if result['passed'] else 'no'} |"
        )
    for quantization, reason in (refused or {}).items():
        rows.append(f"\nrefused {quantization!r}: {reason}")
    return "\n".join(rows)


def _check_quantizations(quantizations):
    if isinstance(quantizations, str):
        quantizations = (quantizations,)
    quantizations = tuple(quantizations)
    if not quantizations:
        raise av.invalid_value(
            quantizations, "quantizations", "at least one quantization mode"
        )
    for quantization in quantizations:
        verification.check_quantization(quantization, "quantizations")
    return tuple(dict.fromkeys(quantizations))


def _registry_input_shape(name, input_shape):
    """The builder's `input_shape` (no batch) for an export shape (with batch)."""
    if input_shape is None:
        return default_input_shape(name)[1:]
    expected = default_input_shape(name)
    shape = av.input_shape_with_batch(input_shape)
    if len(shape) != len(expected):
        example = ",".join(str(n) for n in expected)
        raise av.invalid_value(
            input_shape,
            "input_shape",
            f"{len(expected)} sizes with the batch axis first for `{name}`, such "
            f"as ({example})",
        )
    return shape[1:]


def _looks_like_path(text):
    return (
        os.sep in text
        or (os.altsep is not None and os.altsep in text)
        or text.endswith((".keras", ".h5"))
        or os.path.lexists(text)
    )


def _refusal_message(model_name, out_dir, refused):
    modes = ", ".join(repr(q) for q in refused)
    reasons = " ".join(f"{q!r}: {reason}" for q, reason in refused.items())
    return (
        f"The export of `{model_name}` was refused for {modes}, so nothing was "
        f"written to {out_dir} (a bundle is written whole or not at all). Leave "
        f"out the refused mode(s), or pass partial=True to write the others. "
        f"{reasons}"
    )
