"""Runs a `.tflite` file in LiteRT and compares it with the Keras model.

Errors are measured on the model's *output*, TFLite against Keras, over the
verification inputs. PSNR is `training.metrics.pooled_psnr` (the MSE pooled over
all outputs) with the reference's own range as the peak, `peak = max - min` of
the Keras outputs, so it is the usual image PSNR for a model whose outputs span
[0, 1], and stays meaningful for untrained models whose outputs are small.
"""

import contextlib
import hashlib
import importlib.metadata
import math
import os

import keras
import numpy as np

from coordgate_keras.tflite import calibration, inspection
from coordgate_keras.training import metrics
from coordgate_keras.utils import argument_validation as av
from coordgate_keras.utils import atomic_io

# Acceptance thresholds of `export_tflite`, per quantization mode. float32 must
# match Keras to 1e-4 (absolute). The PSNR floors come from measurement on
# untrained registry models (32 x 32 images with base_filters=8, or 64-sample
# signals; simulated inputs): every model but MultiWienerNet at seeds 0-2, plus
# 46 initialisations of the CoordGate U-Nets, the lowest family.
# - float16: min 72.3 dB over 19 models; floor 60.
# - dynamic: min 47.0 dB over 19 models; floor 40.
# - int8: CoordGate U-Nets mean 36.7 dB, sd 3.8, min 27.7 (46 inits); plain
#   U-Nets 38.0-49.7, CoordConv U-Nets 47.4-51.9, 1D models 36.5-47.2 (3 seeds
#   each). Floor 25 dB, about 3 sd below the CoordGate mean: an RMS error of
#   5.6 % of the output range. Untrained CoordGate U-Nets are a pessimistic
#   case: their outputs (range ~1e-3) are small differences of larger
#   activations, so per-tensor int8 rounding weighs more than in a trained model.
DEFAULT_THRESHOLDS = {
    "none": {"max_abs_error": 1e-4},
    "float16": {"min_psnr": 60.0},
    "dynamic": {"min_psnr": 40.0},
    "int8": {"min_psnr": 25.0},
}

# The export modes (`export_tflite(quantization=...)`).
QUANTIZATIONS = tuple(DEFAULT_THRESHOLDS)

# The keys a `thresholds` dict may hold.
THRESHOLD_KEYS = ("max_abs_error", "min_psnr")

# Inputs are images (or signals) with values in this range.
DEFAULT_VALUE_RANGE = (0.0, 1.0)


class VerificationError(RuntimeError):
    """A converted model does not match its Keras model closely enough.

    The full verification report is in `report`.
    """

    def __init__(self, message, report):
        super().__init__(message)
        self.report = report


def sidecar_path(tflite_path):
    """The JSON report beside a `.tflite` file: `model.tflite` -> `model.json`."""
    tflite_path = os.fspath(tflite_path)
    root, ext = os.path.splitext(tflite_path)
    return (root if ext == ".tflite" else tflite_path) + ".json"


def io_details(tflite_path):
    """Inputs and outputs of a `.tflite` file: name, shape, dtype, quantization."""
    interpreter = _interpreter(tflite_path)
    return {
        "inputs": [_describe(d) for d in interpreter.get_input_details()],
        "outputs": [_describe(d) for d in interpreter.get_output_details()],
    }


def run_tflite(tflite_path, batches, num_threads=None):
    """Runs a single-output `.tflite` file on float batches.

    Integer inputs are quantized with the file's scale and zero point, integer
    outputs dequantized, so the results compare directly with Keras outputs.

    Args:
        tflite_path: path of the `.tflite` file.
        batches: iterable of float arrays of the file's input shape; for a
            tile model (inputs `image` and `origin`), `(image, origin)` pairs.
        num_threads: int or None. Interpreter threads.

    Returns:
        A list of float32 output arrays, one per batch.
    """
    interpreter = _interpreter(tflite_path, num_threads)
    inputs = _ordered_inputs(interpreter.get_input_details())
    (out,) = interpreter.get_output_details()
    outputs = []
    for batch in batches:
        values = batch if isinstance(batch, tuple) else (batch,)
        for detail, value in zip(inputs, values, strict=True):
            value = np.asarray(value)
            if "origin" not in detail["name"]:
                value = quantize_input(value, detail)
            interpreter.set_tensor(detail["index"], value.astype(detail["dtype"]))
        interpreter.invoke()
        outputs.append(dequantize_output(interpreter.get_tensor(out["index"]), out))
    return outputs


def _ordered_inputs(details):
    """A file's inputs, the image first and a tile model's `origin` last."""
    return sorted(details, key=lambda detail: "origin" in detail["name"])


def passes(metrics, thresholds):
    """Whether `compare`'s metrics meet every threshold given (checked ones,
    see `check_thresholds`)."""
    passed = True
    if "max_abs_error" in thresholds:
        passed &= metrics["max_abs_error"] <= thresholds["max_abs_error"]
    if "min_psnr" in thresholds:
        passed &= metrics["psnr_db"] >= thresholds["min_psnr"]
    return passed


def compare(reference, outputs):
    """Max/mean absolute error and PSNR of `outputs` against `reference`.

    Args:
        reference: list of float arrays (Keras outputs).
        outputs: list of float arrays of the same shapes (TFLite outputs).

    Returns:
        A dict with `max_abs_error`, `mean_abs_error`, `psnr_db` (pooled over
        all outputs; `inf` for identical outputs) and `reference_range` (the
        PSNR peak).
    """
    reference = np.concatenate([np.ravel(r) for r in reference]).astype(np.float64)
    outputs = np.concatenate([np.ravel(o) for o in outputs]).astype(np.float64)
    error = np.abs(outputs - reference)
    peak = float(reference.max() - reference.min()) or 1.0
    return {
        "max_abs_error": float(error.max()),
        "mean_abs_error": float(error.mean()),
        "psnr_db": metrics.pooled_psnr(reference, outputs, max_val=peak),
        "reference_range": peak,
    }


def verify(
    keras_model,
    tflite_path,
    data="simulated",
    num_samples=4,
    seed=1,
    thresholds=None,
    quantization=None,
    model_name=None,
    weights_tag=None,
    value_range=DEFAULT_VALUE_RANGE,
    write_sidecar=True,
):
    """Compares a `.tflite` file with its Keras model and writes the report.

    Runs the file with the LiteRT interpreter (`ai_edge_litert`) and the Keras
    model on the same inputs and reports the max and mean absolute error and
    the PSNR of the TFLite output against the Keras output, together with what
    a deployment needs to know: input/output shapes, dtypes, quantization scale
    and zero point, the input value range, model name, weights tag and
    versions. The report is written atomically as JSON beside the file
    (`sidecar_path`), replacing an earlier report. A tile model (inputs
    `image` and `origin`) runs every input at its frame's four corners and
    centre; the report's `"tile"` entry holds `frame_shape`, `tile_shape`,
    `alignment` and each origin's error.

    Args:
        keras_model: the `keras.Model` the file was converted from.
        tflite_path: path of the `.tflite` file.
        data: `"simulated"` (blurred images of the deblurring task, see
            `simulated_inputs`) or user inputs: an array `(num, *sample_shape)`,
            a `tf.data.Dataset` or an iterable of arrays / `(x, y)` pairs.
        num_samples: int. Number of simulated samples (with `"simulated"`).
        seed: int. Seed of the simulated samples.
        thresholds: dict or None. `{"max_abs_error": float}` and/or
            `{"min_psnr": float}`; None uses `DEFAULT_THRESHOLDS` of the file's
            quantization mode. Other keys, or an empty dict, are an error.
        quantization: str or None. The mode the file was made with; None
            infers it from the file.
        model_name: str or None. Recorded in the report; defaults to
            `keras_model.name`.
        weights_tag: str or None. Recorded in the report (None: the weights
            are not a published tag, e.g. random initialisation).
        value_range: tuple `(low, high)`. Range of the input values, recorded in
            the report; user `data` must lie in it.
        write_sidecar: bool. Write the JSON report beside the file.

    Returns:
        The report, a dict; `report["verification"]["passed"]` says whether the
        thresholds hold.

    Example:

    >>> from coordgate_keras.tflite import verify
    >>> report = verify(model, "model.tflite", "simulated")  # doctest: +SKIP
    >>> report["verification"]["max_abs_error"] < 1e-4  # doctest: +SKIP
    True
    """
    report = build_report(
        keras_model,
        tflite_path,
        data=data,
        num_samples=num_samples,
        seed=seed,
        thresholds=thresholds,
        quantization=quantization,
        model_name=model_name,
        weights_tag=weights_tag,
        value_range=value_range,
    )
    if write_sidecar:
        write_report(sidecar_path(tflite_path), report)
    return report


def build_report(
    keras_model,
    tflite_path,
    data="simulated",
    num_samples=4,
    seed=1,
    thresholds=None,
    quantization=None,
    model_name=None,
    weights_tag=None,
    value_range=DEFAULT_VALUE_RANGE,
    file_name=None,
    geometry=None,
):
    """`verify` without writing anything (`file_name` names the final file).

    A tile model (inputs `image` and `origin`) is verified at the four
    corners and the centre of its frame (`geometry`, else read from
    `keras_model`): every origin runs every verification input, and the
    report's `"tile"` entry records the geometry and each origin's error.
    """
    details = io_details(tflite_path)
    tile = len(details["inputs"]) == 2 and any(
        "origin" in d["name"] for d in details["inputs"]
    )
    if len(details["inputs"]) != 1 + tile or len(details["outputs"]) != 1:
        raise av.invalid_value(
            tflite_path,
            "tflite_path",
            "a model with one output and one input (or a tile model's image "
            "and origin)",
            f"{len(details['inputs'])} inputs and {len(details['outputs'])} outputs",
        )
    image = [d for d in details["inputs"] if "origin" not in d["name"]][0]
    input_shape = tuple(image["shape"])
    census = inspection.op_census(tflite_path)
    if quantization is None:
        quantization = infer_quantization(tflite_path)
    thresholds = check_thresholds(thresholds, quantization)
    value_range = check_value_range(value_range)

    if isinstance(data, str) and data == "simulated":
        samples = calibration.simulated_inputs(input_shape, num_samples, seed=seed)
        batches = calibration.batches(samples, input_shape, "data")
        source = f"simulated (coordgate_keras.data, seed={seed})"
    else:
        batches = calibration.batches(data, input_shape, "data", value_range)
        source = "user data"
    tile_entry = None
    if tile:
        from coordgate_keras.tflite import _tiles

        if geometry is None:
            geometry = _tiles.geometry(keras_model, input_shape)
        batches, origins = _tiles.at_origins(batches, geometry)
    reference = [
        keras.ops.convert_to_numpy(keras_model(list(b) if tile else b, training=False))
        for b in batches
    ]
    outputs = run_tflite(tflite_path, batches)
    metrics = compare(reference, outputs)
    passed = passes(metrics, thresholds)
    if tile:
        tile_entry = _tiles.tile_report(geometry, origins, reference, outputs)

    with open(tflite_path, "rb") as f:
        content = f.read()
    report = {
        "file": file_name or os.path.basename(os.fspath(tflite_path)),
        "model_name": model_name or keras_model.name,
        "weights_tag": weights_tag,
        "quantization": quantization,
        "size_bytes": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "inputs": details["inputs"],
        "outputs": details["outputs"],
        "preprocessing": {
            "value_range": [float(v) for v in value_range],
            "layout": "channels_last",
            "integer_input": "q = clip(round(x / scale) + zero_point, -128, 127)",
            "integer_output": "y = (q - zero_point) * scale",
        },
        "verification": {
            "data": source,
            "num_batches": len(batches),
            **metrics,
            "thresholds": thresholds,
            "passed": bool(passed),
        },
        "op_census": dict(sorted(census.items())),
        "versions": versions(),
    }
    if tile_entry is not None:
        report["tile"] = tile_entry
    return report


def write_report(path, report, overwrite=True):
    """Writes a verification report as JSON, atomically (`inf` PSNR as null)."""
    atomic_io.atomic_write_json(path, _finite(report), overwrite=overwrite)


def write_if_verified(path, report_path, write, verify, describe, overwrite=True):
    """Writes an export to `path` only if it passes verification, then its report.

    `write(tmp)` writes the file to a temporary path beside `path`;
    `verify(tmp)` returns its report. A passing file is moved into place and
    its report written to `report_path`; a signal arriving after the file is
    verified waits until both are written, so neither is left without the
    other. A failing file is deleted.

    Args:
        path: str. The export's destination.
        report_path: str. The JSON report's destination.
        write: callable `tmp_path -> None`.
        verify: callable `tmp_path -> report` (a dict with `"verification"`).
        describe: str. What was exported, for the error (e.g. "The 'int8'
            TFLite export of `unet_d1`").
        overwrite: bool. Replace existing files.

    Returns:
        The report.

    Raises:
        VerificationError: the file does not pass; nothing is written.
    """
    with contextlib.ExitStack() as hold_signals:
        with atomic_io.atomic_file(path, overwrite=overwrite) as tmp:
            write(tmp)
            report = verify(tmp)
            result = report["verification"]
            if not result["passed"]:
                raise VerificationError(
                    f"{describe} does not match the Keras model: max abs error "
                    f"{result['max_abs_error']:.3g}, PSNR {result['psnr_db']:.2f} dB "
                    f"(thresholds {result['thresholds']}). Nothing was written to "
                    f"{path}.",
                    report,
                )
            hold_signals.enter_context(atomic_io.signals_deferred())
        write_report(report_path, report, overwrite=overwrite)
    return report


def check_thresholds(thresholds, quantization):
    """The acceptance thresholds to apply, checked.

    Args:
        thresholds: dict or None. None gives `DEFAULT_THRESHOLDS[quantization]`;
            a dict must hold at least one of `THRESHOLD_KEYS` and nothing else
            (a misspelt key would otherwise check nothing).
        quantization: str. One of the export modes.

    Returns:
        A new dict of floats.
    """
    quantization = check_quantization(quantization)
    if thresholds is None:
        return dict(DEFAULT_THRESHOLDS[quantization])
    valid = ", ".join(f"'{k}'" for k in THRESHOLD_KEYS)
    if not isinstance(thresholds, dict) or not thresholds:
        raise av.invalid_value(
            thresholds, "thresholds", f"None or a dict with one or both of {valid}"
        )
    unknown = [k for k in thresholds if k not in THRESHOLD_KEYS]
    if unknown:
        raise av.invalid_value(
            thresholds,
            "thresholds",
            f"only the keys {valid}; unknown: " + ", ".join(repr(k) for k in unknown),
        )
    checked = {}
    if "max_abs_error" in thresholds:
        checked["max_abs_error"] = av.number(
            thresholds["max_abs_error"], "thresholds['max_abs_error']", minimum=0.0
        )
    if "min_psnr" in thresholds:
        checked["min_psnr"] = av.number(
            thresholds["min_psnr"], "thresholds['min_psnr']"
        )
    return checked


def check_quantization(quantization, name="quantization"):
    """One of `QUANTIZATIONS`, else a Keras-style `ValueError`."""
    return av.choice(quantization, name, QUANTIZATIONS)


def check_value_range(value_range):
    """A declared input range `(low, high)` with `low < high`, as floats."""
    return av.number_range(value_range, "value_range", strict=True)


def infer_quantization(tflite_path):
    """The quantization mode of a `.tflite` file, read from its tensor types."""
    details = io_details(tflite_path)
    if any(d["dtype"] == "int8" for d in details["inputs"]):
        return "int8"
    dtypes = {
        tensor.dtype
        for op in inspection.list_operators(tflite_path)
        for tensor in op.inputs
        if tensor is not None and tensor.constant
    }
    if "float16" in dtypes:
        return "float16"
    if "int8" in dtypes:
        return "dynamic"
    return "none"


def versions():
    """Versions of this package and of the conversion and runtime stack."""
    import tensorflow as tf

    import coordgate_keras

    return {
        "coordgate_keras": coordgate_keras.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "ai_edge_litert": importlib.metadata.version("ai-edge-litert"),
    }


def _interpreter(tflite_path, num_threads=None):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(
        model_path=os.fspath(tflite_path), num_threads=num_threads
    )
    interpreter.allocate_tensors()
    return interpreter


def _describe(detail):
    scale, zero_point = detail["quantization"]
    quantized = detail["dtype"] in (np.int8, np.uint8, np.int16)
    return {
        "name": detail["name"],
        "shape": [int(n) for n in detail["shape"]],
        "dtype": np.dtype(detail["dtype"]).name,
        "quantization": {"scale": float(scale), "zero_point": int(zero_point)}
        if quantized
        else None,
    }


def quantize_input(x, detail):
    dtype = np.dtype(detail["dtype"])
    if not np.issubdtype(dtype, np.integer):
        return x.astype(dtype)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    q = np.round(x / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize_output(y, detail):
    if not np.issubdtype(y.dtype, np.integer):
        return y.astype(np.float32)
    scale, zero_point = detail["quantization"]
    return ((y.astype(np.float32) - zero_point) * scale).astype(np.float32)


def _finite(value):
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
