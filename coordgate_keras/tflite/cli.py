"""`coordgate-export`: SavedModel + verified builtin-only TFLite files for one model.

    coordgate-export --model coordgate_unet_d2 --input-shape 1,256,256,1 \\
        --quantization float32,float16,int8 --out export/
    coordgate-export --model coordgate_unet_d2 --input-shape 1,256,256,1 \\
        --format onnx --out export/
    coordgate-export --model coordgate_unet_d2 --input-shape 1,256,256,1 \\
        --frame-size 2048x2048 --out export/    # tiles of a 2048 x 2048 frame

Argument parsing plus one call into `coordgate_keras.tflite.export_bundle`
(or `export_onnx_bundle` with `--format onnx`).
Errors go to stderr, name the command-line flag, and exit with status 1 (2 for
malformed arguments). TensorFlow's start-up and converter chatter is hidden
unless `--verbose` is given (or something fails).
"""

import argparse
import functools
import os
import pathlib
import sys

from coordgate_keras.tflite import verification
from coordgate_keras.tflite.folding import GATE_REPRESENTATIONS
from coordgate_keras.utils import argument_validation as av
from coordgate_keras.utils import atomic_io, native_logs

# "float32" is accepted for "none": the file label says float32.
_ALIASES = {"float32": "none"}
_LABELS = {"none": "float32"}
PROG = "coordgate-export"


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
    choices = verification.QUANTIZATIONS
    unknown = [q for q in modes if q not in choices]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown quantization {', '.join(map(repr, unknown))}; choose from "
            f"{', '.join(('float32',) + choices)}"
        )
    return modes


def build_parser():
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Export a model as a SavedModel and verified, builtin-only "
        "TFLite files (float32/float16/dynamic/int8) with JSON reports. The "
        "files appear together or not at all.",
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
        help="fixed input shape with the batch axis first, e.g. 1,256,256,1 "
        "(default: with --model the model's reference shape, 1,256,256,1 for "
        "images and 1,256,1 for signals; with --keras-file its static input "
        "shape with batch 1)",
    )
    parser.add_argument(
        "--frame-size",
        type=functools.partial(av.parse_size, pair=True, example="2048x2048"),
        help="export a tile model of a frame of this size, HEIGHTxWIDTH at full "
        "resolution (e.g. 2048x2048; multiples of the model's alignment 2**depth, "
        "at least the tile): inputs `image` (--input-shape, the tile) and "
        "`origin` (int32 (1, 2), the tile's top-left pixel in the frame); the "
        "report records frame_shape, tile_shape and alignment",
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
        help="int8 calibration inputs: a .npy file (np.save) holding a float array "
        "(num, *sample_shape) in [0, 1] (default: simulated blurred images)",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace existing files"
    )
    parser.add_argument(
        "--partial",
        action="store_true",
        help="when a mode is refused, still write the modes that passed (by "
        "default nothing is written)",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show TensorFlow's log lines (hidden by default)",
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
    args.quantization = args.quantization or ("none", "float16", "int8")
    if args.verbose:
        sys.stderr.write("".join(native_logs.dropped_lines()))
    try:
        with native_logs.filtered_stderr(enabled=not args.verbose):
            return _run(args)
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return 130


def _run(args):
    from coordgate_keras.tflite import bundle

    flags = _Flags(args)
    if os.path.lexists(args.out) and not os.path.isdir(args.out):
        return _fail(
            "Invalid value for argument `--out`. Expected a folder (created if "
            f"missing). Received: --out={args.out}, an existing file"
        )
    if args.format == "onnx":
        return _run_onnx(args, bundle)
    try:
        representative = "simulated"
        if args.calibration_data is not None:
            representative = _load_array(args.calibration_data, "--calibration-data")
        model = args.model if args.model is not None else pathlib.Path(args.keras_file)
        result = bundle.export_bundle(
            model,
            args.out,
            input_shape=args.input_shape,
            quantizations=args.quantization,
            weights=args.weights,
            representative_data=representative,
            overwrite=args.overwrite,
            partial=args.partial,
            gates=args.gates,
            frame_shape=args.frame_size,
        )
    except atomic_io.DestinationExistsError as error:
        return _exists(error, args)
    except bundle.ExportRefusedError as error:
        print(bundle.format_table(error.reports, error.refused))
        kept = [_LABELS.get(q, q) for q in args.quantization if q not in error.refused]
        hint = f"--quantization {','.join(kept)}" if kept else "other modes"
        return _fail(
            f"{', '.join(map(repr, error.refused))} refused, so nothing was written "
            f"to {args.out} (the files appear together or not at all). Rerun with "
            f"{hint}, or pass --partial to write the modes that passed."
        )
    except FileNotFoundError as error:
        return _fail(f"argument {flags.model_flag}: {error}")
    except ValueError as error:
        return _fail(flags.render(error))
    except (OSError, RuntimeError) as error:
        return _fail(str(error))
    print(f"SavedModel: {result['saved_model']}")
    print(bundle.format_table(result["reports"], result["refused"]))
    return 1 if result["refused"] else 0


def _load_array(path, flag):
    import numpy as np

    if not os.path.isfile(path):
        raise av.invalid_value(
            path, flag, "an existing .npy file", f"{flag}={path} (no such file)"
        )
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise av.invalid_value(
            path,
            flag,
            "a NumPy .npy file written by np.save",
            f"{flag}={path}, which could not be read as one ({error})",
        ) from None
    if not isinstance(array, np.ndarray):
        array.close()
        raise av.invalid_value(
            path,
            flag,
            "a .npy file holding one array (not an .npz archive)",
            f"{flag}={path}",
        )
    return array


def _exists(error, args):
    if args.overwrite:  # Something --overwrite does not replace.
        return _fail(f"{error.path} already exists and cannot be replaced.")
    return _fail(f"{error.path} already exists. Pass --overwrite to replace it.")


def _fail(message):
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 1


class _Flags:
    """Maps the library's argument names to this command's flags."""

    def __init__(self, args):
        self.model_flag = "--model" if args.model is not None else "--keras-file"
        quantization = ",".join(_LABELS.get(q, q) for q in args.quantization)
        self.flags = {
            "model": (self.model_flag, args.model or args.keras_file),
            "input_shape": ("--input-shape", _joined(args.input_shape)),
            "in_channels": ("--input-shape", _joined(args.input_shape)),
            "weights": ("--weights", args.weights),
            "quantizations": ("--quantization", quantization),
            "representative_data": ("--calibration-data", args.calibration_data),
            "out_dir": ("--out", args.out),
            "frame_shape": ("--frame-size", _frame_text(args.frame_size)),
        }

    def render(self, error):
        """The message of `error`, naming the flag where it names an argument."""
        name = getattr(error, "argument", None)
        if name not in self.flags:
            return str(error)
        flag, text = self.flags[name]
        received = error.received
        shown = getattr(error, "received_value", None)
        if shown is not None:
            value = f"{flag}={text}" if text is not None else f"no {flag}"
            received = value + received[len(shown) :]
        elif received.startswith(f"{name} "):
            received = flag + received[len(name) :]
        return (
            f"Invalid value for argument `{flag}`. Expected {error.expected}. "
            f"Received: {received}"
        )


def _joined(shape):
    return None if shape is None else ",".join(str(n) for n in shape)


def _frame_text(frame):
    return None if frame is None else "x".join(str(n) for n in frame)


def _run_onnx(args, bundle):
    from coordgate_keras.tflite import onnx_export

    model = args.model if args.model is not None else pathlib.Path(args.keras_file)
    try:
        result = onnx_export.export_onnx_bundle(
            model,
            args.out,
            input_shape=args.input_shape,
            weights=args.weights,
            gates=args.gates,
            overwrite=args.overwrite,
            frame_shape=args.frame_size,
        )
    except atomic_io.DestinationExistsError as error:
        return _exists(error, args)
    except ValueError as error:
        return _fail(_Flags(args).render(error))
    except (OSError, RuntimeError, ImportError) as error:
        return _fail(str(error))
    print(bundle.format_table(result["reports"], result["refused"]))
    return 1 if result["refused"] else 0


if __name__ == "__main__":
    sys.exit(main())
