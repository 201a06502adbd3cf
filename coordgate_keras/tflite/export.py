"""SavedModel and TFLite export: builtin operators only, verified, atomic."""

import os
import re
import tempfile
import warnings

import keras
import numpy as np

from coordgate_keras.tflite import (
    _tiles,
    calibration,
    folding,
    inspection,
    verification,
)
from coordgate_keras.utils import argument_validation as av
from coordgate_keras.utils import atomic_io

# What the int8 calibration sees by default: simulated task images.
DEFAULT_CALIBRATION_SAMPLES = 16


class UnsupportedOpsError(ValueError):
    """The model needs operators that are not TFLite builtins.

    The exporter never falls back to TensorFlow ops (Flex / SELECT_TF_OPS):
    edge delegates cannot run them. `ops` lists the offending operator names.
    """

    def __init__(self, message, ops):
        super().__init__(message)
        self.ops = tuple(ops)


def export_saved_model(
    model, path, input_shape=None, overwrite=False, gates="auto", frame_shape=None
):
    """Exports a model as a TensorFlow SavedModel (serving endpoint `serve`).

    With `input_shape` the signature is fixed to that shape (batch included,
    e.g. `(1, 256, 256, 1)`) and the exported graph is `prepare_for_export`'s
    copy of the model: CoordGate gates are constants and no shape arithmetic
    is left. Without it, the model's own input signature is used (Keras'
    `model.export(format="tf_saved_model")`).

    The directory is written next to `path` under a temporary name, checked
    (the SavedModel's output must match Keras to 1e-4 on a random input in
    [0, 1] when the shape is static) and renamed into place.

    Args:
        model: a `keras.Model`.
        path: str. Destination directory.
        input_shape: tuple of ints or None. Fixed input shape, batch included.
        overwrite: bool. Replace an existing `path`.
        gates: str. Gate representation with a fixed `input_shape`
            (`prepare_for_export`): `"auto"`, `"compact"` or `"constant"`.
        frame_shape: tuple `(H, W)` or None. A tile model of a frame of this
            size, as in `export_tflite` (inputs `image` and `origin`).

    Returns:
        `path`.

    Example:

    >>> from coordgate_keras.tflite import export_saved_model
    >>> export_saved_model(model, "export/sm", (1, 256, 256, 1))  # doctest: +SKIP
    'export/sm'
    """
    path = atomic_io.check_destination(path, overwrite)
    geometry = None
    if input_shape is not None or frame_shape is not None:
        model, input_shape, geometry = _tiles.resolve(model, input_shape, frame_shape)
    with atomic_io.atomic_directory(path, overwrite=overwrite) as tmp:
        _write_saved_model(model, tmp, input_shape, gates)
        shape = input_shape or _static_shape(model)
        if shape is not None:
            _check_saved_model(model, tmp, shape, geometry)
    return path


def export_tflite(
    model,
    path,
    input_shape=None,
    quantization="none",
    representative_data="simulated",
    verify_data="simulated",
    num_calibration_samples=DEFAULT_CALIBRATION_SAMPLES,
    thresholds=None,
    model_name=None,
    weights_tag=None,
    value_range=verification.DEFAULT_VALUE_RANGE,
    overwrite=False,
    gates="auto",
    frame_shape=None,
):
    """Converts a model to a verified, builtin-only `.tflite` file.

    The model is copied at the fixed `input_shape` with its CoordGate gates
    folded to constants (`prepare_for_export`), exported as a SavedModel and
    converted with `tf.lite.TFLiteConverter` restricted to builtin operators:
    TensorFlow (Flex) ops are never allowed, and a model that needs them is
    refused with an `UnsupportedOpsError` naming them. The result is written to
    a temporary file beside `path`, verified against the Keras model (`verify`)
    and moved into place only if it passes; the JSON report is written beside
    it (`model.tflite` -> `model.json`). On any failure nothing is left at
    the destination.

    Quantization modes:

    - `"none"`: float32; must match Keras to `max_abs_error <= 1e-4`.
    - `"float16"`: float16 weights, float32 compute and I/O.
    - `"dynamic"`: int8 weights, float I/O, activations quantized on the fly.
    - `"int8"`: full integer (`TFLITE_BUILTINS_INT8`, int8 input and output),
      calibrated on `representative_data`.

    Tile models: with `frame_shape=(H, W)` (a one-input model is converted
    with `coordgate_keras.zoo.with_frame`), or given a two-input model
    `[image, origin]` of the zoo, the file runs one tile of `input_shape` of
    a frame of `frame_shape`: its inputs are `image` and `origin` (int32
    `(batch, 2)`, the tile's top-left pixel in the frame at full
    resolution, a multiple of the alignment `2**depth`; signature input
    names, tensors `serving_default_image:0` / `serving_default_origin:0`).
    Each gate stores its frame's row and column tables and gathers the
    tile's at the origin. Calibration draws aligned origins at random; the
    verification runs the four corners and the centre of the frame, and
    the report's `"tile"` entry holds what a tiled runner needs:
    `frame_shape`, `tile_shape`, `alignment` and the origins verified, each
    with its own error.

    Args:
        model: a `keras.Model` with one input and one output, or a tile
            model with inputs `[image, origin]`.
        path: str. Destination `.tflite` file.
        input_shape: tuple of ints or None. `(batch, *spatial, channels)`, e.g.
            `(1, 256, 256, 1)`; None takes the model's static input shape with
            batch 1.
        quantization: str. One of `"none"`, `"float16"`, `"dynamic"`, `"int8"`.
        representative_data: int8 calibration inputs: `"simulated"` (blurred
            images of the deblurring task, `simulated_inputs`), an array
            `(num, *sample_shape)`, a `tf.data.Dataset` or an iterable of arrays
            or `(x, y)` pairs. Values in `value_range`.
        verify_data: inputs of the verification, in the same forms.
        num_calibration_samples: int. Simulated calibration samples.
        thresholds: dict or None. Acceptance thresholds (see `verify`); None
            uses `DEFAULT_THRESHOLDS[quantization]`.
        model_name: str or None. Name recorded in the report (default
            `model.name`).
        weights_tag: str or None. Weights tag recorded in the report.
        value_range: tuple `(low, high)`, `low < high`. The range of the
            model's input values, recorded in the report; calibration and
            verification data must lie in it.
        overwrite: bool. Replace an existing file (and its report).
        gates: str. How CoordGate gates are stored (`prepare_for_export`):
            `"auto"` (a compact exact form, such as a row and a column term,
            where there is one, else the full gate), `"compact"` or
            `"constant"` (full resolution).
        frame_shape: tuple `(H, W)` or None. Export a tile model of a frame
            of this size (full resolution; multiples of the alignment, at
            least the tile). With a two-input model, None takes its frame.

    Returns:
        The verification report (a dict, also written as the JSON sidecar).

    Raises:
        ValueError: an invalid argument, such as calibration data that is not
            float, not finite or outside `value_range`, or unknown
            `thresholds` keys (checked before the conversion).
        FileExistsError: `path` or its report exists and `overwrite` is False.
        UnsupportedOpsError: the model needs non-builtin operators.
        VerificationError: the converted model is not within `thresholds`.

    Example:

    >>> from coordgate_keras.tflite import export_tflite
    >>> from coordgate_keras.zoo import create_model
    >>> model = create_model("coordgate_unet_d2")
    >>> report = export_tflite(model, "cg_unet_int8.tflite", (1, 256, 256, 1),
    ...                        quantization="int8")  # doctest: +SKIP
    """
    quantization = verification.check_quantization(quantization)
    model, input_shape, geometry = _tiles.resolve(model, input_shape, frame_shape)
    path = os.fspath(path)
    if not path.endswith(".tflite"):
        raise av.invalid_value(path, "path", "a file name ending in '.tflite'")
    atomic_io.check_destination(path, overwrite)
    atomic_io.check_destination(verification.sidecar_path(path), overwrite)
    thresholds = verification.check_thresholds(thresholds, quantization)
    value_range = verification.check_value_range(value_range)
    check_quantization_support(model, quantization, model_name)
    calibration_batches = calibration_batches_for(
        quantization,
        representative_data,
        input_shape,
        num_calibration_samples,
        value_range,
        geometry=geometry,
    )
    # Fail on bad verification data before the (slow) conversion.
    if not (isinstance(verify_data, str) and verify_data == "simulated"):
        calibration.batches(verify_data, input_shape, "verify_data", value_range)

    name = model_name or model.name
    with tempfile.TemporaryDirectory() as tmp:
        saved_model = os.path.join(tmp, "saved_model")
        _write_saved_model(model, saved_model, input_shape, gates)
        content = convert_saved_model(
            saved_model, quantization, calibration_batches, model_name=name
        )
    return write_verified(
        model,
        path,
        content,
        quantization=quantization,
        verify_data=verify_data,
        thresholds=thresholds,
        model_name=name,
        weights_tag=weights_tag,
        value_range=value_range,
        geometry=geometry,
    )


def convert_saved_model(
    saved_model_dir, quantization="none", calibration_batches=None, model_name=None
):
    """Converts a SavedModel to TFLite bytes with builtin operators only.

    The building block of `export_tflite`, which also folds, verifies and
    writes; use it to convert one exported SavedModel several times.

    Args:
        saved_model_dir: str. A SavedModel with a fixed-shape signature.
        quantization: str. As in `export_tflite`.
        calibration_batches: list of float arrays of the input shape (for a
            tile model, `(image, origin)` pairs); required for `"int8"`.
        model_name: str or None. Used in error messages.

    Returns:
        The `.tflite` flatbuffer as bytes.

    Raises:
        UnsupportedOpsError: the graph needs non-builtin operators.
    """
    import tensorflow as tf

    quantization = verification.check_quantization(quantization)
    converter = tf.lite.TFLiteConverter.from_saved_model(os.fspath(saved_model_dir))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "int8":
        if not calibration_batches:
            raise _missing_calibration_data(None)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8

        def representative_dataset():
            for batch in calibration_batches:
                if isinstance(batch, tuple):
                    # A tile model's (image, origin), by signature input name.
                    image, origin = batch
                    yield {
                        "image": np.asarray(image, np.float32),
                        "origin": np.asarray(origin, np.int32),
                    }
                else:
                    yield [np.asarray(batch, np.float32)]

        converter.representative_dataset = representative_dataset
    try:
        with warnings.catch_warnings():
            # Calibrating a two-input (tile) model by signature input names,
            # TensorFlow's calibrator uses tf.lite.Interpreter, which warns of
            # its own deprecation.
            warnings.filterwarnings(
                "ignore", r"\s*Warning: tf\.lite\.Interpreter is deprecated"
            )
            content = converter.convert()
    except Exception as error:
        ops = _offending_ops(error)
        if not ops:
            raise
        raise _unsupported(model_name, ops, quantization) from None
    leftover = inspection.non_builtin_ops(inspection.op_census(content))
    if leftover:
        raise _unsupported(model_name, leftover, quantization)
    return content


def write_verified(
    model,
    path,
    content,
    quantization,
    verify_data="simulated",
    thresholds=None,
    model_name=None,
    weights_tag=None,
    value_range=verification.DEFAULT_VALUE_RANGE,
    overwrite=True,
    geometry=None,
):
    """Writes TFLite bytes to `path` only if they pass verification.

    `content` goes to a temporary file beside `path`, is verified against
    `model` (`verify`), and is moved into place only when it passes; then its
    JSON report is written beside it. The last step of `export_tflite`, for
    callers that convert once and write elsewhere (`export_bundle`).
    `geometry` is a tile model's frame geometry (see `export_tflite`).

    Returns:
        The verification report.

    Raises:
        VerificationError: the file does not pass; nothing is written.
    """
    model_name = model_name or model.name

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(content)

    def verify(tmp):
        return verification.build_report(
            model,
            tmp,
            data=verify_data,
            thresholds=thresholds,
            quantization=quantization,
            model_name=model_name,
            weights_tag=weights_tag,
            value_range=value_range,
            file_name=os.path.basename(path),
            geometry=geometry,
        )

    return verification.write_if_verified(
        path,
        verification.sidecar_path(path),
        write,
        verify,
        f"The {quantization!r} TFLite export of `{model_name}`",
        overwrite=overwrite,
    )


def calibration_batches_for(
    quantization,
    data,
    input_shape,
    num_samples=DEFAULT_CALIBRATION_SAMPLES,
    value_range=verification.DEFAULT_VALUE_RANGE,
    geometry=None,
):
    """The int8 calibration batches (None for other modes), checked.

    Args:
        quantization: str. Only `"int8"` needs calibration data.
        data: `"simulated"` or user data (see `export_tflite`'s
            `representative_data`).
        input_shape: tuple. The export shape, batch included.
        num_samples: int. Number of simulated samples.
        value_range: tuple. The declared input range; user data must lie in it.
        geometry: dict or None. A tile model's frame geometry: each batch is
            paired with an aligned origin drawn at random.

    Returns:
        A list of float32 arrays of `input_shape` (for a tile model,
        `(image, origin)` pairs), or None.
    """
    if quantization != "int8":
        return None
    if data is None:
        raise _missing_calibration_data(data)
    if isinstance(data, str):
        if data != "simulated":
            raise _missing_calibration_data(data)
        samples = calibration.simulated_inputs(input_shape, num_samples, seed=0)
        batches = calibration.batches(samples, input_shape, "representative_data")
    else:
        batches = calibration.batches(
            data, input_shape, "representative_data", value_range
        )
    batches = calibration.cover_value_range(batches, value_range)
    if geometry is None:
        return batches
    origins = _tiles.random_origins(geometry, len(batches) * input_shape[0])
    origins = np.reshape(np.asarray(origins, np.int32), (len(batches), -1, 2))
    return list(zip(batches, origins))


def _missing_calibration_data(data):
    return av.invalid_value(
        data,
        "representative_data",
        "calibration inputs for quantization='int8': 'simulated' (blurred images "
        "of the deblurring task), an array, a tf.data.Dataset or an iterable of "
        "arrays",
    )


_OP_PATTERN = re.compile(r"'(?:tf|tfl)\.(\w+)' op is neither a custom op nor a flex op")
_SELECT_PATTERN = re.compile(r"TF Select ops: ([\w, ]+)")


def _offending_ops(error):
    """Operator names that a `ConverterError` says have no builtin kernel."""
    names = []
    for detail in getattr(error, "errors", None) or ():
        operator = getattr(detail, "operator", None)
        if operator is not None and operator.name:
            names.append(operator.name.split(".", 1)[-1])
    text = str(error)
    names += _OP_PATTERN.findall(text)
    for match in _SELECT_PATTERN.findall(text):
        names += [n.strip() for n in match.split(",") if n.strip()]
    return sorted(set(names))


def _unsupported(model_name, ops, quantization):
    kind = "builtin int8" if quantization == "int8" else "builtin"
    return UnsupportedOpsError(
        f"Cannot export `{model_name}` to TFLite with {kind} operators only: it "
        f"needs {', '.join(ops)}, which have no TFLite builtin kernel. Flex "
        "(SELECT_TF_OPS) fallbacks are never used, since edge delegates cannot "
        "run them: express those layers in builtin operators, or deploy the "
        "SavedModel instead.",
        ops,
    )


def _write_saved_model(model, directory, input_shape, gates="auto"):
    """Keras' SavedModel export, of the folded copy when the shape is fixed."""
    import tensorflow as tf

    signature = None
    if input_shape is not None:
        model = folding.prepare_for_export(model, input_shape, gates=gates)
        signature = [tf.TensorSpec(input_shape, tf.float32, name="input")]
        if _tiles.is_tile_model(model):
            signature = [
                [
                    tf.TensorSpec(input_shape, tf.float32, name="image"),
                    tf.TensorSpec((input_shape[0], 2), tf.int32, name="origin"),
                ]
            ]
    model.export(
        directory, format="tf_saved_model", input_signature=signature, verbose=False
    )


def _static_shape(model):
    try:
        shape = tuple(model.input_shape)
    except (AttributeError, ValueError):
        return None
    if None in shape[1:]:
        return None
    return (1,) + shape[1:]


def check_quantization_support(model, quantization, model_name=None):
    """Raises `VerificationError` when `quantization` cannot serve `model`.

    MultiWienerNet's int8 is refused by design, before converting, rather
    than by the PSNR floor, which it misses by a few dB only (21.1-24.7 dB
    measured) and might pass on other data.
    """
    from coordgate_keras.layers import MultiWienerDeconvolution

    if quantization != "int8" or not any(
        isinstance(x, MultiWienerDeconvolution) for x in model._flatten_layers()
    ):
        return
    reason = (
        "int8 activations cannot hold the Fourier-domain range of the Wiener "
        "filter in its MultiWienerDeconvolution layer; export it as float32, "
        "float16 or dynamic"
    )
    raise verification.VerificationError(
        f"The 'int8' TFLite export of `{model_name or model.name}` is refused: "
        f"{reason}.",
        {"refused": reason},
    )


def _check_saved_model(model, directory, input_shape, geometry=None):
    import tensorflow as tf

    x = np.random.default_rng(0).uniform(0.0, 1.0, input_shape).astype(np.float32)
    # Keep the loaded object alive while its function runs (it owns the variables).
    loaded = tf.saved_model.load(directory)
    if geometry is None:
        served = keras.ops.convert_to_numpy(loaded.serve(tf.constant(x)))
        expected = keras.ops.convert_to_numpy(model(x, training=False))
    else:
        # The far corner: every gate reads the far end of its tables.
        origin = max(_tiles.verification_origins(geometry), key=sum)
        origin = np.tile(np.asarray([origin], np.int32), (input_shape[0], 1))
        served = keras.ops.convert_to_numpy(
            loaded.serve([tf.constant(x), tf.constant(origin)])
        )
        expected = keras.ops.convert_to_numpy(model([x, origin], training=False))
    error = float(np.max(np.abs(served - expected)))
    if not error <= 1e-4:
        raise verification.VerificationError(
            f"The SavedModel export of `{model.name}` does not match the Keras "
            f"model: max abs error {error:.3g} > 1e-4.",
            {"max_abs_error": error},
        )
