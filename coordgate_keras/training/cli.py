"""`coordgate-train`: train a registry model (argument parsing, then `train()`).

Examples:

    coordgate-train --workdir runs/cg_d2 --config coordgate_unet_d2
    coordgate-train --workdir runs/quick --model unet_d2 --steps 200 \\
        --set model_kwargs.base_filters=16 --set psf.kernel_size=15

Running the same command again with the same workdir resumes the run.
"""

import argparse
import sys

from coordgate_keras.training import config as config_lib

# Options that map one-to-one onto config fields: (flag, field, type).
_FIELD_OPTIONS = (
    ("--model", "model", str),
    ("--steps", "steps", int),
    ("--batch-size", "batch_size", int),
    ("--image-size", "image_size", int),
    ("--data", "data", str),
    ("--precision", "precision", str),
    ("--xla", "xla", str),
    ("--strategy", "strategy", str),
    ("--seed", "seed", int),
)


def build_parser():
    defaults = config_lib.TrainConfig()
    parser = argparse.ArgumentParser(
        prog="coordgate-train",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="Recipes: " + ", ".join(config_lib.list_recipes()),
    )
    parser.add_argument(
        "--workdir", required=True, help="output folder; the same one resumes"
    )
    parser.add_argument(
        "--config",
        default=None,
        help="a .yaml/.json config or a recipe name (default: the built-in defaults)",
    )
    choices = {
        "precision": config_lib.PRECISIONS,
        "xla": config_lib.XLA_MODES,
        "strategy": config_lib.STRATEGIES,
    }
    for flag, field, kind in _FIELD_OPTIONS:
        parser.add_argument(
            flag,
            type=kind,
            default=None,
            choices=choices.get(field),
            help=f"config field `{field}` (default: {getattr(defaults, field)!r}, "
            "or the config's)",
        )
    parser.add_argument(
        "--frame-size",
        type=_size,
        default=None,
        metavar="HxW",
        help="config field `frame_size`: train on image-size crops of a frame of "
        "this size, with their origins (e.g. 1024x1024)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any config field, YAML value; dotted keys for dict fields, e.g. "
        "psf.kernel_size=15 (repeatable)",
    )
    parser.add_argument(
        "--cache-dir",
        default=None,
        help="scene-pool cache (default: $COORDGATE_KERAS_CACHE or "
        "~/.cache/coordgate_keras)",
    )
    parser.add_argument(
        "--verbose",
        default="auto",
        choices=["auto", "0", "1", "2"],
        help="auto: progress bar on a terminal, else lines; 0 silent",
    )
    return parser


def _size(text):
    """`"1024x768"` -> `[1024, 768]`, `"512"` -> `512`."""
    parts = text.lower().split("x")
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        sizes = []
    if len(sizes) not in (1, 2) or min(sizes) <= 0:
        raise argparse.ArgumentTypeError(
            f"expected HEIGHTxWIDTH or SIZE in pixels, e.g. 1024x1024; got {text!r}"
        )
    return sizes[0] if len(sizes) == 1 else sizes


def config_from_args(args):
    cfg = (
        config_lib.load_config(args.config) if args.config else config_lib.TrainConfig()
    )
    changes = {
        field: getattr(args, field)
        for _, field, _ in _FIELD_OPTIONS
        if getattr(args, field) is not None
    }
    if args.frame_size is not None:
        changes["frame_size"] = args.frame_size
    if changes:
        cfg = cfg.replace(**changes)
    if args.set:
        cfg = cfg.override(args.set)
    return cfg


def main(argv=None):
    args = build_parser().parse_args(argv)
    from coordgate_keras.training.train import format_metrics, train

    try:
        cfg = config_from_args(args)
        verbose = args.verbose if args.verbose == "auto" else int(args.verbose)
        metrics = train(cfg, args.workdir, verbose=verbose, cache_dir=args.cache_dir)
    except (ValueError, FloatingPointError, FileNotFoundError) as e:
        print(f"coordgate-train: error: {e}", file=sys.stderr)
        return 2
    if verbose == 0:
        print(format_metrics(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
