"""Machine description written next to every benchmark result, the command
that started the run, and worker processes that run a benchmark module."""

import os
import pathlib
import shlex
import subprocess
import sys

# The repository root: the folder that holds the `benchmarks` package.
REPO = pathlib.Path(__file__).resolve().parents[1]


def command(argv=None):
    """The command line of this run as typed, e.g. `python -m benchmarks.x --quick`.

    Args:
        argv: list of str or None. The arguments to record; None takes
            `sys.argv`, with a module started by `python -m` written as
            `-m NAME` (its `sys.argv[0]` is the module's file path).
    """
    if argv is None:
        argv = list(sys.argv)
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        if spec is not None and spec.name:
            name = spec.name.removesuffix(".__main__")
            argv = ["-m", name, *argv[1:]]
    return "python " + shlex.join(argv)


def run_module(module, args, **kwargs):
    """Runs `python -m module *args` in a new process, as `subprocess.run`.

    The repository root goes first on the child's `PYTHONPATH`, so the child
    imports this checkout's `benchmarks` (and `coordgate_keras`) whatever its
    working directory; `kwargs` go to `subprocess.run` (`env` is extended).
    """
    env = dict(kwargs.pop("env", None) or os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), env.get("PYTHONPATH")) if p
    )
    return subprocess.run([sys.executable, "-m", module, *args], env=env, **kwargs)


def describe():
    """Command line, CPU, load and library versions, as a dict:
    `utils.system.environment()` plus the command, `gpu` and `tensorflow`."""
    import tensorflow as tf

    from coordgate_keras.utils import system

    env = {"command": command(), **system.environment()}
    env["gpu"] = env["gpus"] or None
    env["tensorflow"] = tf.__version__
    return env


def finish(env):
    """Adds the load average at the end of the run to `env` (in place)."""
    env["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    return env


def markdown(env):
    """The description as a short Markdown list."""
    return "\n".join(
        [
            f"- Command: `{env['command']}`",
            f"- CPU: {env['cpu_model']}, {env['cpus_usable']} usable of "
            f"{env['cpu_count']} cores; load average (1, 5, 15 min) at start "
            f"{env['load_average_at_start']}"
            + (
                f", at end {env['load_average_at_end']}"
                if "load_average_at_end" in env
                else ""
            )
            + " (shared machine)",
            f"- GPU: {env['gpu'] or 'none'}",
            f"- Python {env['python']}, NumPy {env['numpy']}, TensorFlow "
            f"{env['tensorflow']}, {env['platform']}",
        ]
    )
