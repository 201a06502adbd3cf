"""`coordgate-train`: train a registry model (argument parsing, then `train()`).

Examples:

    coordgate-train --workdir runs/cg_d2 --config coordgate_unet_d2
    coordgate-train --workdir runs/quick --model unet_d2 --steps 200 \\
        --set model_kwargs.base_filters=16 --set psf.kernel_size=15

Running the same command again with the same workdir resumes the run.
"""

import argparse
import contextlib
import functools
import os
import signal
import sys
import threading
import time
import traceback

from coordgate_keras.training import config as config_lib
from coordgate_keras.utils import argument_validation as av

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
        type=functools.partial(av.parse_size, example="1024x1024"),
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
    parser.add_argument(
        "--traceback",
        action="store_true",
        help="print the full traceback of an error, not just its message",
    )
    return parser


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
        frame = args.frame_size
        changes["frame_size"] = frame if isinstance(frame, int) else list(frame)
    if changes:
        cfg = cfg.replace(**changes)
    if args.set:
        cfg = cfg.override(args.set)
    return cfg


def main(argv=None):
    """Runs `coordgate-train`; returns its exit status.

    0 on success, 1 on an error or a NaN loss (one line on stderr; the
    traceback with `--traceback`), 130 on Ctrl-C. Started as a program
    (`argv` None), it ends the process with that status right away: after a
    NaN stop or an interrupt, tf.data's worker threads can otherwise keep
    the interpreter from exiting.
    """
    args = build_parser().parse_args(argv)
    if argv is None:
        _exit_watchdog(args.workdir)
    code = _run(args)
    if argv is None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _run(args):
    from coordgate_keras.training.train import format_metrics, train

    verbose = args.verbose if args.verbose == "auto" else int(args.verbose)
    try:
        with _sigterm_as_exit():
            cfg = config_from_args(args)
            metrics = train(
                cfg, args.workdir, verbose=verbose, cache_dir=args.cache_dir
            )
    except KeyboardInterrupt:
        print("\ncoordgate-train: interrupted", file=sys.stderr)
        return 130
    except SystemExit as error:
        if not isinstance(error.code, int):
            raise
        print("coordgate-train: terminated", file=sys.stderr)
        return error.code
    except Exception as error:  # noqa: BLE001 - every failure ends in one line
        if args.traceback:
            traceback.print_exc()
        print(f"coordgate-train: error: {_one_line(error)}", file=sys.stderr)
        return 1
    if verbose == 0:
        print(format_metrics(metrics))
    return 0


# Seconds between Ctrl-C / SIGTERM and a forced exit when the main thread does not
# get to handle it (blocked in native code that does not return). A safeguard: the
# test hangs that led to it were SIGINT inherited as ignored, which it cannot see.
_EXIT_GRACE_SECONDS = 20


def _exit_watchdog(workdir, grace=_EXIT_GRACE_SECONDS):
    """Ends the process `grace` seconds after SIGINT or SIGTERM, whatever the
    main thread is doing.

    Python runs signal handlers in the main thread only, between bytecodes; a
    main thread blocked in native code never runs them, and the run would hang
    after Ctrl-C. The C-level handler also writes the signal to a wakeup pipe,
    which this daemon thread reads at once. Every file the run writes is
    written atomically, so a forced exit loses at most the unfinished
    checkpoint interval; the workdir's lock file is removed (the OS releases
    the lock itself).
    """
    if threading.current_thread() is not threading.main_thread():
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    try:
        signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    except ValueError:
        return

    def watch():
        while True:
            data = os.read(read_fd, 1)
            if not data:
                return
            if data[0] in (signal.SIGINT, signal.SIGTERM):
                break
        time.sleep(grace)
        interrupted = data[0] == signal.SIGINT
        lock = os.path.join(workdir, ".lock")
        try:
            with open(lock) as f:
                if str(os.getpid()) in f.read():
                    os.unlink(lock)
        except OSError:
            pass
        word = "interrupted" if interrupted else "terminated"
        print(f"\ncoordgate-train: {word}", file=sys.stderr, flush=True)
        os._exit(130 if interrupted else 143)

    threading.Thread(target=watch, name="exit-watchdog", daemon=True).start()


@contextlib.contextmanager
def _sigterm_as_exit():
    """SIGTERM raises `SystemExit(143)`, so that files being written are
    removed and the run ends like an interrupt (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _one_line(error):
    if isinstance(error, (ValueError, FloatingPointError, OSError, RuntimeError)):
        text = str(error)
    else:
        text = f"{type(error).__name__}: {error}"
    lines = [line for line in text.splitlines() if line.strip()] or [repr(error)]
    if len(lines) > 1:
        return f"{lines[0]} ... (--traceback shows all)"
    return lines[0]


if __name__ == "__main__":
    main()
