"""`coordgate-export`: SavedModel + verified builtin-only TFLite files for one model.

    coordgate-export --model coordgate_unet_d2 --input-shape 1,256,256,1 \\
        --quantization none,float16,int8 --out export/
    coordgate-export --model coordgate_unet_d2 --input-shape 1,256,256,1 \\
        --format onnx --out export/

Argument parsing plus one call into `coordgate_keras.tflite.export_bundle`
(or `export_onnx_bundle` with `--format onnx`).
"""

import argparse
import sys

from coordgate_keras.tflite._checks import QUANTIZATIONS
from coordgate_keras.tflite.folding import GATE_REPRESENTATIONS

# "float32" is accepted for "none": the file label says float32.
_ALIASES = {"float32": "none"}


def _shape(text):
    try:
        shape = tuple(int(n) for n in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 1,256,256,1, got {text!r}"
        ) from None
    return shape


def _quantizations(text):
    modes = tuple(_ALIASES.get(q.strip(), q.strip()) for q in text.split(","))
    unknown = [q for q in modes if q not in QUANTIZATIONS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown quantization {', '.join(map(repr, unknown))}; choose from "
            f"{', '.join(('float32',) + QUANTIZATIONS)}"
        )
    return modes


def build_parser():
    parser = argparse.ArgumentParser(
        prog="coordgate-export",
        description="Export a model as a SavedModel and verified, builtin-only "
        "TFLite files (float32/float16/dynamic/int8) with JSON reports.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="registered model name, e.g. coordgate_unet_d2")
    source.add_argument("--keras-file", help="a saved .keras model")
    parser.add_argument(
        "--weights",
        help="weight tag of the registered model (default: random init, seed 0)",
    )
    parser.add_argument(
        "--input-shape",
        type=_shape,
        help="fixed input shape with batch, e.g. 1,256,256,1 "
        "(default: the model's static input shape)",
    )
    parser.add_argument(
        "--quantization",
        type=_quantizations,
        default=None,
        help="comma-separated modes among float32 (= none), float16, dynamic, int8 "
        "(default: float32,float16,int8; ONNX: float32 only)",
    )
    parser.add_argument(
        "--format",
        choices=("tflite", "onnx"),
        default="tflite",
        help="tflite: SavedModel + .tflite files (default); onnx: one verified "
        "float32 .onnx file (needs the `onnx` extra)",
    )
    parser.add_argument(
        "--gates",
        choices=GATE_REPRESENTATIONS,
        default="auto",
        help="how CoordGate gates are stored: auto (a compact exact form where "
        "there is one: row + column terms, or the coarse map; default), compact, "
        "or constant (full resolution)",
    )
    parser.add_argument(
        "--calibration-data",
        help="int8 calibration inputs as a .npy array (num, *sample_shape) in "
        "[0, 1] (default: simulated blurred images)",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace existing files"
    )
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.weights is not None and args.keras_file is not None:
        parser.error("--weights applies to --model, not to --keras-file")
    if args.format == "onnx" and args.quantization not in (None, ("none",)):
        parser.error("--format onnx writes float32 only")
    if args.format == "onnx" and args.calibration_data is not None:
        parser.error("--calibration-data applies to int8 TFLite, not to --format onnx")
    from coordgate_keras.tflite import bundle

    if args.format == "onnx":
        from coordgate_keras.tflite import onnx_export

        try:
            result = onnx_export.export_onnx_bundle(
                args.model or args.keras_file,
                args.out,
                input_shape=args.input_shape,
                weights=args.weights,
                gates=args.gates,
                overwrite=args.overwrite,
            )
        except (ValueError, OSError, RuntimeError, ImportError) as error:
            print(f"coordgate-export: error: {error}", file=sys.stderr)
            return 1
        print(bundle.format_table(result["reports"], result["refused"]))
        return 1 if result["refused"] else 0

    representative = "simulated"
    if args.calibration_data is not None:
        import numpy as np

        representative = np.load(args.calibration_data)
    try:
        result = bundle.export_bundle(
            args.model or args.keras_file,
            args.out,
            input_shape=args.input_shape,
            quantizations=args.quantization or ("none", "float16", "int8"),
            weights=args.weights,
            representative_data=representative,
            overwrite=args.overwrite,
            gates=args.gates,
        )
    except (ValueError, OSError, RuntimeError) as error:
        print(f"coordgate-export: error: {error}", file=sys.stderr)
        return 1
    print(f"SavedModel: {result['saved_model']}")
    print(bundle.format_table(result["reports"], result["refused"]))
    return 1 if result["refused"] else 0


if __name__ == "__main__":
    sys.exit(main())
