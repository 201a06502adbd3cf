"""ONNX export beside TFLite: the same folding, verification and atomic write.

`export_onnx` writes the `prepare_for_export` copy of a model (fixed shape,
CoordGate gates folded, nearest up-sampling as Resize) with Keras'
`model.export(format="onnx")` (tf2onnx on the TensorFlow backend), checks it in
ONNX Runtime against the Keras model and moves it into place only if it
passes, with a JSON report beside it (`model.onnx` -> `model.onnx.json`).

Compact gates (`gates="auto"` or `"compact"`) are stored as small row and
column terms (or a coarse map). TensorFlow would fold them back into one
full-size constant, so the graph carries an input-dependent zero; here it is
replaced by a constant zero after conversion, and ONNX Runtime folds each gate
to one constant when a session is created (graph optimisation level basic or
higher, the default): the file stays small and each gate runs as one Mul.

Needs the `onnx` extra: `pip install "coordgate-keras[onnx]"` (tf2onnx, onnx,
onnxruntime).
"""

import collections
import hashlib
import importlib.metadata
import os
import tempfile
import warnings

import keras
import numpy as np

from coordgate_keras.tflite import _tiles, calibration, folding, verification
from coordgate_keras.utils import argument_validation as av
from coordgate_keras.utils import atomic_io

# float32 ONNX must match Keras as closely as float32 TFLite.
DEFAULT_ONNX_THRESHOLDS = {"max_abs_error": 1e-4}

_REQUIREMENTS = ("tf2onnx", "onnx", "onnxruntime")


def export_onnx(
    model,
    path,
    input_shape=None,
    gates="auto",
    verify_data="simulated",
    thresholds=None,
    opset=None,
    model_name=None,
    weights_tag=None,
    value_range=verification.DEFAULT_VALUE_RANGE,
    overwrite=False,
    frame_shape=None,
):
    """Exports a model to a verified float32 `.onnx` file.

    The model is copied at the fixed `input_shape` with its gates folded
    (`prepare_for_export`), converted with Keras' ONNX export (tf2onnx),
    written to a temporary file beside `path`, run in ONNX Runtime (CPU) on
    `verify_data` and compared with the Keras model; it is moved into place
    only when `thresholds` hold. The JSON report (shapes, error and PSNR vs
    Keras, op census of the file and of the graph ONNX Runtime runs, versions)
    is written beside it as `path + ".json"`.

    With `frame_shape`, or given a two-input model `[image, origin]`, the
    file is a tile model, as in `export_tflite`: inputs `image` and
    `origin` (int32 `(batch, 2)`), gates gathered from per-frame row and
    column tables, verified at the frame's four corners and centre, and the
    report's `"tile"` entry holds the frame and tile shapes and alignment.

    Args:
        model: a `keras.Model` with one input and one output, or a tile
            model with inputs `[image, origin]`.
        path: str. Destination `.onnx` file.
        input_shape: tuple of ints or None. `(batch, *spatial, channels)`;
            None takes the model's static input shape with batch 1.
        gates: str. Gate representation, as in `prepare_for_export`.
        verify_data: verification inputs: `"simulated"` or an array, a
            `tf.data.Dataset` or an iterable of arrays (see `export_tflite`).
        thresholds: dict or None. `{"max_abs_error": ...}` and/or
            `{"min_psnr": ...}`; None uses `DEFAULT_ONNX_THRESHOLDS`.
        opset: int or None. ONNX opset (None: tf2onnx's default).
        model_name: str or None. Name recorded in the report.
        weights_tag: str or None. Weights tag recorded in the report.
        value_range: tuple. Input value range, recorded in the report.
        overwrite: bool. Replace an existing file (and its report).
        frame_shape: tuple `(H, W)` or None. Export a tile model of a frame
            of this size (see `export_tflite`).

    Returns:
        The verification report (a dict, also written as the JSON sidecar).

    Raises:
        ImportError: tf2onnx, onnx or onnxruntime is missing.
        FileExistsError: `path` or its report exists and `overwrite` is False.
        VerificationError: the ONNX model is not within `thresholds`.

    Example:

    >>> from coordgate_keras.tflite import export_onnx
    >>> from coordgate_keras.zoo import create_model
    >>> model = create_model("coordgate_unet_d2", input_shape=(256, 256, 1))
    >>> report = export_onnx(model, "cg_unet.onnx")  # doctest: +SKIP
    >>> report["verification"]["max_abs_error"] < 1e-4  # doctest: +SKIP
    True
    """
    _require_onnx()
    model, input_shape, geometry = _tiles.resolve(model, input_shape, frame_shape)
    path = os.fspath(path)
    if not path.endswith(".onnx"):
        raise av.invalid_value(path, "path", "a file name ending in '.onnx'")
    if opset is not None and (
        isinstance(opset, bool) or not isinstance(opset, int) or opset < 1
    ):
        raise av.invalid_value(opset, "opset", "a positive integer or None")
    atomic_io.check_destination(path, overwrite)
    atomic_io.check_destination(sidecar_path(path), overwrite)
    # Fail on bad arguments before the (slow) conversion.
    if not (isinstance(verify_data, str) and verify_data == "simulated"):
        calibration.batches(verify_data, input_shape, "verify_data")
    folded = folding.prepare_for_export(model, input_shape, gates=gates)

    name = model_name or model.name

    def verify(tmp):
        return build_onnx_report(
            model,
            tmp,
            data=verify_data,
            thresholds=thresholds,
            model_name=name,
            weights_tag=weights_tag,
            value_range=value_range,
            file_name=os.path.basename(path),
            geometry=geometry,
        )

    return verification.write_if_verified(
        path,
        sidecar_path(path),
        lambda tmp: _convert(folded, tmp, input_shape, opset, geometry is not None),
        verify,
        f"The ONNX export of `{name}`",
        overwrite=overwrite,
    )


def export_onnx_bundle(
    model,
    out_dir,
    input_shape=None,
    weights=None,
    gates="auto",
    verify_data="simulated",
    overwrite=False,
    frame_shape=None,
):
    """`export_onnx` of a model, registered name or `.keras` file into a folder.

    Writes `name_HxW_float32.onnx` and its report `name_HxW_float32.onnx.json`
    in `out_dir` (the names `export_bundle` gives its TFLite files, so both
    formats can share a folder; a tile model's `name_HxW_frameFxG_...`).
    Model resolution as in `export_bundle`; `frame_shape` as in `export_onnx`.

    Returns:
        A dict like `export_bundle`'s: `reports` (one report, with its `path`)
        and `refused` (`{"onnx": reason}` when verification failed).
    """
    from coordgate_keras.tflite import bundle

    _require_onnx()
    model, weights_tag = bundle.resolve_model(model, input_shape, weights)
    model, input_shape, geometry = _tiles.resolve(model, input_shape, frame_shape)
    stem = bundle.file_stem(model, input_shape, geometry)
    path = os.path.join(os.fspath(out_dir), f"{stem}_float32.onnx")
    try:
        report = export_onnx(
            model,
            path,
            input_shape,
            gates=gates,
            verify_data=verify_data,
            weights_tag=weights_tag,
            overwrite=overwrite,
        )
    except verification.VerificationError as error:
        return {"reports": [], "refused": {"onnx": str(error)}}
    return {"reports": [{"path": path, **report}], "refused": {}}


def sidecar_path(onnx_path):
    """The JSON report beside an `.onnx` file: `model.onnx` -> `model.onnx.json`.

    (Not `model.json`: a TFLite file of the same stem has that one.)
    """
    return os.fspath(onnx_path) + ".json"


def onnx_op_census(onnx_path, optimized=False):
    """Counts the operators of an ONNX model by type.

    Args:
        onnx_path: path of an `.onnx` file.
        optimized: bool. Count the graph ONNX Runtime runs after its basic
            (hardware-independent) optimisations, constant folding included,
            instead of the graph stored in the file.

    Returns:
        A `collections.Counter` mapping op type (`"Conv"`, `"Mul"`) to count.

    Example:

    >>> from coordgate_keras.tflite import onnx_op_census
    >>> onnx_op_census("cg_unet.onnx", optimized=True)["Mul"]  # doctest: +SKIP
    5
    """
    import onnx

    if not optimized:
        graph = onnx.load(os.fspath(onnx_path), load_external_data=False).graph
        return collections.Counter(node.op_type for node in graph.node)
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = os.path.join(tmp, "optimized.onnx")
        ort.InferenceSession(
            os.fspath(onnx_path), options, providers=["CPUExecutionProvider"]
        )
        graph = onnx.load(options.optimized_model_filepath).graph
        return collections.Counter(node.op_type for node in graph.node)


def run_onnx(onnx_path, batches, num_threads=None):
    """Runs a single-output `.onnx` file in ONNX Runtime (CPU).

    Args:
        onnx_path: path of the `.onnx` file.
        batches: iterable of float arrays of the model's input shape; for a
            tile model (inputs `image` and `origin`), `(image, origin)` pairs.
        num_threads: int or None. Intra-op threads (None: ONNX Runtime's
            default).

    Returns:
        A list of float32 output arrays, one per batch.
    """
    return _run(onnx_session(onnx_path, num_threads), batches)


def _run(session, batches):
    # The image first, a tile model's origin last.
    inputs = sorted(session.get_inputs(), key=lambda i: "origin" in i.name)
    results = []
    for batch in batches:
        values = batch if isinstance(batch, tuple) else (batch,)
        feed = {
            i.name: np.asarray(v, np.int32 if "origin" in i.name else np.float32)
            for i, v in zip(inputs, values, strict=True)
        }
        results.append(np.asarray(session.run(None, feed)[0]))
    return results


def onnx_session(onnx_path, num_threads=None):
    """An ONNX Runtime CPU session (all graph optimisations, `num_threads`)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if num_threads is not None:
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(
        os.fspath(onnx_path), options, providers=["CPUExecutionProvider"]
    )


def build_onnx_report(
    keras_model,
    onnx_path,
    data="simulated",
    num_samples=4,
    seed=1,
    thresholds=None,
    model_name=None,
    weights_tag=None,
    value_range=verification.DEFAULT_VALUE_RANGE,
    file_name=None,
    geometry=None,
):
    """Compares an `.onnx` file with its Keras model; returns the report.

    A tile model is run at its frame's corners and centre, as in
    `verification.build_report`.
    """
    session = onnx_session(onnx_path)
    inputs, outputs = session.get_inputs(), session.get_outputs()
    tile = len(inputs) == 2 and any("origin" in i.name for i in inputs)
    if len(inputs) != 1 + tile or len(outputs) != 1:
        raise av.invalid_value(
            onnx_path,
            "onnx_path",
            "a model with one output and one input (or a tile model's image "
            "and origin)",
            f"{len(inputs)} inputs and {len(outputs)} outputs",
        )
    image = [i for i in inputs if "origin" not in i.name][0]
    input_shape = tuple(image.shape)
    thresholds = dict(DEFAULT_ONNX_THRESHOLDS if thresholds is None else thresholds)
    if isinstance(data, str) and data == "simulated":
        samples = calibration.simulated_inputs(input_shape, num_samples, seed=seed)
        batches = calibration.batches(samples, input_shape, "data")
        source = f"simulated (coordgate_keras.data, seed={seed})"
    else:
        batches = calibration.batches(data, input_shape, "data")
        source = "user data"
    if tile:
        if geometry is None:
            geometry = _tiles.geometry(keras_model, input_shape)
        batches, origins = _tiles.at_origins(batches, geometry)
    reference = [
        keras.ops.convert_to_numpy(keras_model(list(b) if tile else b, training=False))
        for b in batches
    ]
    results = _run(session, batches)
    metrics = verification.compare(reference, results)
    passed = verification.passes(metrics, thresholds)

    import onnx

    with open(onnx_path, "rb") as f:
        content = f.read()
    proto = onnx.load_from_string(content)
    report = {
        "file": file_name or os.path.basename(os.fspath(onnx_path)),
        "format": "onnx",
        "model_name": model_name or keras_model.name,
        "weights_tag": weights_tag,
        "quantization": "none",
        "size_bytes": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "opset": {o.domain or "ai.onnx": int(o.version) for o in proto.opset_import},
        "inputs": [_describe(d) for d in inputs],
        "outputs": [_describe(d) for d in outputs],
        "preprocessing": {
            "value_range": [float(v) for v in value_range],
            "layout": "channels_last",
        },
        "verification": {
            "data": source,
            "runtime": "onnxruntime CPUExecutionProvider",
            "num_batches": len(batches),
            **metrics,
            "thresholds": thresholds,
            "passed": bool(passed),
        },
        "op_census": dict(sorted(onnx_op_census(onnx_path).items())),
        "op_census_optimized": dict(
            sorted(onnx_op_census(onnx_path, optimized=True).items())
        ),
        "versions": versions(),
    }
    if tile:
        report["tile"] = _tiles.tile_report(geometry, origins, reference, results)
    return report


def versions():
    """`verification.versions()` plus the ONNX stack."""
    result = verification.versions()
    for package in _REQUIREMENTS:
        result[package] = importlib.metadata.version(package)
    return result


# === Conversion ===


def _require_onnx():
    missing = []
    for package in _REQUIREMENTS:
        try:
            importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            missing.append(package)
    if missing:
        raise ImportError(
            f"ONNX export needs {', '.join(missing)}: install the `onnx` extra, "
            '`pip install "coordgate-keras[onnx]"`.'
        )


def _convert(folded, path, input_shape, opset, tile=False):
    """Keras' ONNX export of the folded copy, then the dynamic zeros made
    constant (see the module docstring)."""
    import onnx
    import tensorflow as tf

    signature = [tf.TensorSpec(input_shape, tf.float32, name="input")]
    if tile:
        signature = [
            [
                tf.TensorSpec(input_shape, tf.float32, name="image"),
                tf.TensorSpec((input_shape[0], 2), tf.int32, name="origin"),
            ]
        ]
    with warnings.catch_warnings():
        # keras/src/export/tf2onnx_lib.py probes `np.object`, which NumPy 2
        # deprecates with a FutureWarning.
        warnings.filterwarnings("ignore", "In the future `np.object`", FutureWarning)
        folded.export(
            path,
            format="onnx",
            input_signature=signature,
            opset_version=opset,
            verbose=False,
        )
    proto = onnx.load(path)
    if _constant_dynamic_zeros(proto):
        onnx.save(proto, path)


def _constant_dynamic_zeros(proto):
    """Replaces each compact gate's input-dependent zero by a constant zero
    and drops what only fed it. Returns the number replaced."""
    import onnx
    from onnx import helper, numpy_helper

    graph = proto.graph
    zeros = [
        node
        for node in graph.node
        if any(folding.DYNAMIC_ZERO_NAME in name for name in node.output)
    ]
    for node in zeros:
        (output,) = node.output
        value = numpy_helper.from_array(np.zeros((1, 1, 1, 1), np.float32), output)
        constant = helper.make_node("Constant", [], [output], value=value)
        graph.node.insert(list(graph.node).index(node), constant)
        graph.node.remove(node)
    if zeros:
        _remove_dead_nodes(graph)
        onnx.checker.check_model(proto)
    return len(zeros)


def _remove_dead_nodes(graph):
    needed = {output.name for output in graph.output}
    alive = set()
    for i, node in reversed(list(enumerate(graph.node))):
        if any(name in needed for name in node.output):
            alive.add(i)
            needed.update(name for name in node.input if name)
    dead = [node for i, node in enumerate(graph.node) if i not in alive]
    for node in dead:
        graph.node.remove(node)
    unused = [init for init in graph.initializer if init.name not in needed]
    for init in unused:
        graph.initializer.remove(init)


def _describe(detail):
    return {
        "name": detail.name,
        "shape": [int(n) if isinstance(n, int) else n for n in detail.shape],
        "dtype": detail.type.replace("tensor(", "").rstrip(")"),
    }
