"""`coordgate-keras`: the demo and the pretrained-weights commands.

    coordgate-keras demo [--finetune STEPS] [--from-scratch] [--images DIR]
                         [--psf F.npz]
    coordgate-keras weights list
    coordgate-keras weights download NAME TAG [--base-url URL] [--cache-dir DIR]
    coordgate-keras weights verify [NAME TAG] [--base-url URL]

Argument parsing only: each command is one call into the library.
"""

import argparse
import os
import sys


def build_parser():
    parser = argparse.ArgumentParser(
        prog="coordgate-keras",
        description="CoordGate / CoordConv model zoo: demo and pretrained weights.",
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
    return parser


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
            from coordgate_keras.zoo import weights_cli

            return weights_cli.run(args)
    except (ValueError, OSError) as error:
        print(f"coordgate-keras: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ncoordgate-keras: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
