"""Edge export: SavedModel and builtin-only TFLite (float32, float16, int8).

`export_tflite` folds every CoordGate gate to a constant at the export size
(`prepare_for_export`), converts with TFLite builtin operators only (never Flex),
verifies the result against the Keras model in the LiteRT interpreter
(`verify`) and writes it, with a JSON report, only when it passes;
`export_bundle` writes a SavedModel and several modes together, all or nothing.
`op_census` counts the operators of a file; `benchmark` times it.
`export_onnx` writes the same folded copy as a verified float32 ONNX file
(the `onnx` extra). With `frame_shape` (or a two-input model of the zoo) the
exports are tile models with inputs `image` and `origin`, whose reports hold
the frame geometry a tiled runner needs.

Example:

>>> from coordgate_keras.tflite import export_tflite, op_census
>>> from coordgate_keras.zoo import create_model
>>> model = create_model("coordgate_unet_d2", input_shape=(256, 256, 1))
>>> export_tflite(model, "cg_unet.tflite", quantization="int8")  # doctest: +SKIP
>>> op_census("cg_unet.tflite")["MUL"]  # doctest: +SKIP
5
"""

from coordgate_keras.tflite.bundle import (
    ExportRefusedError,
    export_bundle,
    format_table,
)
from coordgate_keras.tflite.calibration import simulated_inputs
from coordgate_keras.tflite.export import (
    UnsupportedOpsError,
    convert_saved_model,
    export_saved_model,
    export_tflite,
    write_verified,
)
from coordgate_keras.tflite.folding import GATE_REPRESENTATIONS, prepare_for_export
from coordgate_keras.tflite.inspection import list_operators, op_census
from coordgate_keras.tflite.latency import benchmark
from coordgate_keras.tflite.onnx_export import (
    export_onnx,
    export_onnx_bundle,
    onnx_op_census,
    run_onnx,
)
from coordgate_keras.tflite.verification import (
    DEFAULT_THRESHOLDS,
    QUANTIZATIONS,
    VerificationError,
    sidecar_path,
    verify,
)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "ExportRefusedError",
    "GATE_REPRESENTATIONS",
    "QUANTIZATIONS",
    "UnsupportedOpsError",
    "VerificationError",
    "benchmark",
    "convert_saved_model",
    "export_bundle",
    "export_onnx",
    "export_onnx_bundle",
    "export_saved_model",
    "export_tflite",
    "format_table",
    "list_operators",
    "onnx_op_census",
    "op_census",
    "prepare_for_export",
    "run_onnx",
    "sidecar_path",
    "simulated_inputs",
    "verify",
    "write_verified",
]
