"""Everything an edge deployment needs from one model, in one folder."""

import os

from coordgate_keras.tflite import _atomic, _checks, export, verification

# File-name label of each quantization mode.
LABELS = {"none": "float32", "float16": "float16", "dynamic": "dynamic", "int8": "int8"}


def export_bundle(
    model,
    out_dir,
    input_shape=None,
    quantizations=("none", "float16", "int8"),
    weights=None,
    representative_data="simulated",
    verify_data="simulated",
    overwrite=False,
    gates="auto",
):
    """Exports a model as a SavedModel plus verified `.tflite` files and reports.

    Writes to `out_dir`, for a model named `name` at `H x W`:
    `name_HxW_saved_model/` (fixed-shape SavedModel, gates folded),
    `name_HxW_<label>.tflite` for each quantization (`float32`, `float16`,
    `dynamic`, `int8`) and its JSON report `name_HxW_<label>.json`. All
    destinations are checked before anything is written; each file is written
    atomically and only after it passed verification (see `export_tflite`).

    Args:
        model: a `keras.Model`, the name of a registered model
            (`coordgate_keras.zoo.list_models()`, built at `input_shape`), or
            the path of a `.keras` file.
        out_dir: str. Output folder (created if needed).
        input_shape: tuple of ints or None. `(batch, *spatial, channels)`; None
            uses the model's static input shape with batch 1.
        quantizations: sequence of `"none"`, `"float16"`, `"dynamic"`, `"int8"`.
        weights: str or None. Weight tag of a registered model (`create_model`'s
            `weights`); None means random initialisation, seeded with
            `keras.utils.set_random_seed(0)`.
        representative_data: int8 calibration inputs (see `export_tflite`).
        verify_data: verification inputs (see `export_tflite`).
        overwrite: bool. Replace existing files.
        gates: str. CoordGate gate representation (`prepare_for_export`).

    A mode whose conversion needs non-builtin operators, or whose result fails
    verification, writes no file; it is listed in `refused` with the reason and
    the other modes go on.

    Returns:
        A dict: `saved_model` (its path), `reports` (one verification report
        per written `.tflite` file, with its `path`) and `refused` (mode ->
        reason, for the modes that wrote nothing).

    Example:

    >>> from coordgate_keras.tflite import export_bundle
    >>> result = export_bundle("coordgate_unet_d2", "export/",
    ...                        (1, 256, 256, 1))  # doctest: +SKIP
    """
    quantizations = tuple(quantizations)
    if not quantizations:
        raise _checks.invalid(
            "quantizations", "at least one quantization mode", "quantizations=()"
        )
    for quantization in quantizations:
        _checks.check_quantization(quantization)
    model, weights_tag = resolve_model(model, input_shape, weights)
    input_shape = _checks.resolve_input_shape(model, input_shape)
    stem = f"{model.name}_{'x'.join(str(n) for n in input_shape[1:-1])}"
    out_dir = os.fspath(out_dir)
    saved_model = os.path.join(out_dir, f"{stem}_saved_model")
    targets = {
        q: os.path.join(out_dir, f"{stem}_{LABELS[q]}.tflite") for q in quantizations
    }
    for path in [saved_model, *targets.values()]:
        _atomic.check_destination(path, overwrite)
    for path in targets.values():
        _atomic.check_destination(verification.sidecar_path(path), overwrite)
    calibration = export._calibration_batches(
        "int8" if "int8" in quantizations else "none",
        representative_data,
        input_shape,
        export.DEFAULT_CALIBRATION_SAMPLES,
    )

    os.makedirs(out_dir, exist_ok=True)
    export.export_saved_model(
        model, saved_model, input_shape, overwrite=overwrite, gates=gates
    )
    reports, refused = [], {}
    for quantization, path in targets.items():
        try:
            content = export.convert_saved_model(
                saved_model, quantization, calibration, model_name=model.name
            )
            report = export._write_verified(
                model,
                path,
                content,
                quantization=quantization,
                verify_data=verify_data,
                thresholds=None,
                model_name=model.name,
                weights_tag=weights_tag,
                value_range=verification.DEFAULT_VALUE_RANGE,
            )
        except (export.UnsupportedOpsError, verification.VerificationError) as error:
            refused[quantization] = str(error)
            continue
        reports.append({"path": path, **report})
    return {"saved_model": saved_model, "reports": reports, "refused": refused}


def resolve_model(model, input_shape=None, weights=None):
    """Returns `(keras.Model, weights_tag)` for a model, a registered name or a
    `.keras` path."""
    import keras

    if isinstance(model, keras.Model):
        if weights is not None:
            raise _checks.invalid(
                "weights", "None when `model` is a keras.Model", f"weights={weights!r}"
            )
        return model, None
    if not isinstance(model, (str, os.PathLike)):
        raise _checks.invalid(
            "model",
            "a keras.Model, a registered model name or a .keras file",
            f"model={model!r}",
        )
    # Registers the zoo's layers, so saved models that use them load.
    from coordgate_keras import zoo

    model = os.fspath(model)
    if model.endswith(".keras"):
        if weights is not None:
            raise _checks.invalid(
                "weights",
                "None with a .keras file (its weights are in the file)",
                f"weights={weights!r}",
            )
        if not os.path.isfile(model):
            raise FileNotFoundError(f"No such .keras file: {model}")
        return keras.saving.load_model(model), f"keras_file:{os.path.basename(model)}"
    spatial = None if input_shape is None else tuple(input_shape)[1:]
    keras.utils.set_random_seed(0)
    return zoo.create_model(model, input_shape=spatial, weights=weights), weights


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
