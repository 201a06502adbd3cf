"""Machine description written next to every benchmark result."""

import os
import shlex
import sys


def describe():
    """Command line, CPU, load and library versions, as a dict:
    `utils.system.environment()` plus the command, `gpu` and `tensorflow`."""
    import tensorflow as tf

    from coordgate_keras.utils import system

    env = {"command": "python " + shlex.join(sys.argv), **system.environment()}
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
