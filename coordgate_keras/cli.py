"""`coordgate-keras`: the demo and the pretrained-weights commands.

    coordgate-keras demo [--finetune STEPS] [--from-scratch] [--images DIR]
                         [--psf F.npz]
    coordgate-keras weights list
    coordgate-keras weights download NAME TAG [--base-url URL] [--cache-dir DIR]
    coordgate-keras weights verify [NAME TAG] [--base-url URL]
    coordgate-keras psf estimate BEADS... --grid 8x8 --kernel-size 31
                                 --out field.npz [--plot field.png]
    coordgate-keras psf show field.npz --out field.png
    coordgate-keras deblur INPUT... --out DIR (--model NAME [--weights TAG] |
                           --keras-file F | --tflite F | --onnx F) [--tile N]
                           [--overlap N] [--batch-size N] [--threads N]
                           [--overwrite]

Argument parsing only: each command is one call into the library.
"""

import argparse
import functools
import os
import sys

from coordgate_keras.utils import argument_validation as av


def build_parser():
    parser = argparse.ArgumentParser(
        prog="coordgate-keras",
        description="CoordGate / CoordConv model zoo: demo, pretrained weights, "
        "PSF fields from bead images, deblurring your images.",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show TensorFlow / absl log lines"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo",
        help="pretrained models -> deblur -> int8 "
        "TFLite -> report (out/demo/report.png)",
    )
    demo.add_argument(
        "--out",
        default=os.path.join("out", "demo"),
        help="output folder (default: %(default)s)",
    )
    demo.add_argument(
        "--num-images",
        type=int,
        default=4,
        help="held-out images (default: %(default)s)",
    )
    demo.add_argument(
        "--image-size",
        type=int,
        default=256,
        help="held-out image size (default: %(default)s)",
    )
    demo.add_argument(
        "--images",
        default=None,
        help="folder of your own images instead of simulated scenes",
    )
    demo.add_argument(
        "--psf",
        default=None,
        help="PSFField .npz instead of the weights' training field",
    )
    demo.add_argument(
        "--finetune",
        type=int,
        default=0,
        metavar="STEPS",
        help="fine-tune both pretrained models first",
    )
    demo.add_argument(
        "--from-scratch",
        action="store_true",
        help="train both models from random weights (--finetune "
        "steps, default 300) instead of loading weights",
    )
    demo.add_argument(
        "--no-export", action="store_true", help="skip the int8 TFLite export"
    )
    demo.add_argument(
        "--threads",
        type=int,
        default=2,
        help="LiteRT threads for the latency (default: %(default)s)",
    )
    demo.add_argument("--seed", type=int, default=2026)

    weights = commands.add_parser("weights", help="list, download, verify weights")
    actions = weights.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="published weights and their metrics")
    download = actions.add_parser("download", help="fetch one weight file")
    verify = actions.add_parser("verify", help="check hashes and architectures")
    for sub in (download, verify):
        sub.add_argument("name", nargs="?" if sub is verify else None)
        sub.add_argument("tag", nargs="?" if sub is verify else None)
        sub.add_argument(
            "--base-url",
            default=None,
            help="download base URL (over $COORDGATE_KERAS_WEIGHTS_URL)",
        )
        sub.add_argument("--cache-dir", default=None, help="cache root")

    _add_psf_parser(commands)
    _add_deblur_parser(commands)
    return parser


def _add_psf_parser(commands):
    psf = commands.add_parser(
        "psf", help="measure a PSF field from bead images, or draw one"
    )
    actions = psf.add_subparsers(dest="action", required=True)
    estimate = actions.add_parser(
        "estimate",
        help="bead images -> PSFField .npz (PSFField.from_beads)",
        description="Finds isolated beads in the images (raw camera values: "
        ".npy, TIFF, PNG; one frame size), solves the grid PSFs jointly and "
        "writes a PSFField .npz for `coordgate-train` and the demo's --psf.",
    )
    estimate.add_argument("beads", nargs="+", help="bead image files")
    estimate.add_argument(
        "--grid",
        type=functools.partial(av.parse_size, pair=True, example="8x8"),
        required=True,
        help="PSF grid, e.g. 8x8",
    )
    estimate.add_argument(
        "--kernel-size", type=int, required=True, help="odd PSF size in pixels"
    )
    estimate.add_argument("--out", required=True, help="output .npz")
    estimate.add_argument("--plot", default=None, help="also draw the field (PNG)")
    estimate.add_argument("--dark", default=None, help="dark frame file")
    estimate.add_argument(
        "--saturation",
        type=float,
        default=None,
        help="raw saturation level (default: the dtype's maximum)",
    )
    estimate.add_argument(
        "--threshold",
        type=float,
        default=5.0,
        help="detection threshold in noise sigmas (default: %(default)s)",
    )
    estimate.add_argument(
        "--min-separation",
        type=float,
        default=None,
        help="closest allowed bead pair in pixels (default: the kernel size)",
    )
    show = actions.add_parser("show", help="draw a PSFField .npz (PNG)")
    show.add_argument("field", help="PSFField .npz")
    show.add_argument("--out", required=True, help="output PNG")


def _run_psf(args):
    from coordgate_keras.data import bead_calibration

    if args.action == "estimate":
        _, report = bead_calibration.estimate_field_file(
            args.beads,
            args.grid,
            args.kernel_size,
            args.out,
            plot=args.plot,
            dark=args.dark,
            saturation=args.saturation,
            threshold=args.threshold,
            min_separation=args.min_separation,
        )
        print(report.summary())
        print(f"wrote {args.out}" + (f" and {args.plot}" if args.plot else ""))
        return 0
    field, report = bead_calibration.show_field_file(args.field, args.out)
    print(field)
    if report is not None:
        print(report.summary())
    print(f"wrote {args.out}")
    return 0


# === deblur ===

_DEBLUR_EXAMPLE = """\
example:
  coordgate-keras deblur raw/ --out sharp/ --model coordgate_unet_d2 \\
      --weights zernike_256
  (every .png/.tif/.tiff/.npy file in raw/, 256x256 frames, written to sharp/
  in the same format and bit depth; exit status 1 if any file failed)

  coordgate-keras deblur frame.tif --out sharp/ --tflite tiles.tflite \\
      --threads 2 --batch-size 4
"""


def _add_deblur_parser(commands):
    deblur = commands.add_parser(
        "deblur",
        help="deblur your own images (PNG, TIFF, NPY) with a model or an export",
        description="Deblurs image files with a pretrained or trained model, a\n"
        ".keras file or an exported .tflite/.onnx file. One-input models run\n"
        "whole frames of their size; frame models (inputs image and origin)\n"
        "run tile by tile, the overlap covering the receptive field. Outputs\n"
        "keep the input's format and dtype and are written atomically.",
        epilog=_DEBLUR_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    deblur.add_argument("inputs", nargs="+", metavar="INPUT", help="files or folders")
    deblur.add_argument("--out", required=True, help="output folder")
    source = deblur.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="registered model name (with --weights)")
    source.add_argument("--keras-file", help="a .keras model file")
    source.add_argument("--tflite", help="a .tflite file")
    source.add_argument("--onnx", help="an .onnx file")
    deblur.add_argument(
        "--weights", default=None, help="weight tag (default: the model's first)"
    )
    deblur.add_argument(
        "--tile",
        type=av.parse_size,
        default=None,
        help="tile size N or HxW (frame models)",
    )
    deblur.add_argument(
        "--overlap",
        type=functools.partial(av.parse_size, minimum=0),
        default=None,
        help="tile overlap N or HxW (default: covers the receptive field)",
    )
    deblur.add_argument(
        "--margin",
        type=int,
        default=None,
        help="receptive-field margin of an export whose report lacks it",
    )
    deblur.add_argument("--batch-size", type=int, default=None, help="tiles per call")
    deblur.add_argument("--threads", type=int, default=None, help="CPU threads")
    deblur.add_argument(
        "--overwrite", action="store_true", help="replace existing outputs"
    )


def _run_deblur(args):
    from coordgate_keras.inference import deblur_files

    tty = sys.stderr.isatty()

    def progress(done, total):
        if tty:
            print(f"\r  tiles {done}/{total}", end="", file=sys.stderr, flush=True)

    def on_file(result):
        if tty:
            print("\r\033[K", end="", file=sys.stderr)
        if result.error is None:
            height, width = result.shape[:2]
            print(
                f"ok {result.path} -> {result.output} ({height}x{width} "
                f"{result.dtype}, {result.seconds:.2f} s)",
                flush=True,
            )
        else:
            print(f"failed {result.path}: {result.error}", file=sys.stderr, flush=True)

    results = deblur_files(
        args.inputs,
        args.out,
        model=args.model or args.keras_file or args.tflite or args.onnx,
        weights=args.weights,
        tile=args.tile,
        overlap=args.overlap,
        batch_size=args.batch_size,
        threads=args.threads,
        margin=args.margin,
        overwrite=args.overwrite,
        on_file=on_file,
        progress=progress,
    )
    failed = sum(r.error is not None for r in results)
    if failed:
        print(
            f"coordgate-keras: {failed} of {len(results)} file(s) failed",
            file=sys.stderr,
        )
    return 1 if failed else 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    from coordgate_keras.utils import native_logs

    try:
        with native_logs.filtered_stderr(enabled=not args.verbose):
            if args.command == "demo":
                from coordgate_keras.demo import DemoOptions, run_demo

                run_demo(
                    DemoOptions(
                        out_dir=args.out,
                        num_images=args.num_images,
                        image_size=args.image_size,
                        images=args.images,
                        psf=args.psf,
                        finetune=args.finetune,
                        from_scratch=args.from_scratch,
                        export=not args.no_export,
                        threads=args.threads,
                        seed=args.seed,
                    )
                )
                return 0
            if args.command == "psf":
                return _run_psf(args)
            if args.command == "deblur":
                return _run_deblur(args)
            from coordgate_keras.zoo import weights_cli

            return weights_cli.run(args)
    except (ValueError, OSError) as error:
        print(f"coordgate-keras: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Outputs are written atomically: the one in progress is removed.
        print("\ncoordgate-keras: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
