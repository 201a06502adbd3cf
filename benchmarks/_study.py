"""Machinery shared by the paper-reproduction studies (`sv_conv1d`, ...).

What every study records next to its numbers (package and library versions,
Keras backend, hardware, CPU load, git commit), atomic writing of
`results.json` / `results.md`, and mean +- std summaries. Imports only the
active Keras backend, so a study run with `KERAS_BACKEND=jax` never loads
TensorFlow.
"""

import datetime
import json
import math
import subprocess

import numpy as np

from benchmarks import _environment
from coordgate_keras.utils import atomic_io

REPO = _environment.REPO


def enable_jax_compilation_cache(directory):
    """Persistent XLA compilation cache on the JAX backend (no-op elsewhere or
    for an empty `directory`): a model rebuilt for another seed has the same
    program and loads it instead of compiling again."""
    import keras

    if not directory or keras.backend.backend() != "jax":
        return
    import jax

    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def git_state(repo=REPO):
    """`(commit, dirty)` of the checkout holding the benchmarks, or `(None, None)`."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None, None
    return commit, bool(status.strip())


def environment(argv=None):
    """Where and with what a study ran, as a JSON-ready dict.

    Args:
        argv: list of str or None. The command line to record; defaults to
            this run's (`_environment.command`).
    """
    from coordgate_keras.utils import system

    commit, dirty = git_state()
    return {
        "command": _environment.command(argv),
        "started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "git_commit": commit,
        "git_dirty": dirty,
        **system.environment(),
    }


def environment_markdown(env):
    """The environment as a short Markdown list."""
    commit = env["git_commit"] or "unknown"
    if env["git_dirty"]:
        commit += " (with uncommitted changes)"
    return "\n".join(
        [
            f"- Command: `{env['command']}`",
            f"- Hardware: {env['hardware']}; load average at start "
            f"{env['load_average_at_start']} on {env['cpus_usable']} usable cores",
            f"- coordgate-keras {env['coordgate_keras']} at {commit}; Keras "
            f"{env['keras']} on {env['backend']} {env['backend_version']}; NumPy "
            f"{env['numpy']}; Python {env['python']}",
            f"- Started {env['started_utc']}",
        ]
    )


def mean_std(values):
    """Mean and sample standard deviation (ddof=1; 0 for one value), as floats."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return math.nan, math.nan
    std = values.std(ddof=1) if values.size > 1 else 0.0
    return float(values.mean()), float(std)


def format_mean_std(values, fmt="{:.3g}"):
    """`"mean ± std"` of `values`, each formatted with `fmt`."""
    mean, std = mean_std(values)
    return f"{fmt.format(mean)} ± {fmt.format(std)}"


def markdown_table(headers, rows):
    """A GitHub Markdown table; `rows` are sequences of cells (any type)."""
    lines = [
        "| " + " | ".join(str(h) for h in headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path, payload):
    """Writes `payload` as indented JSON, atomically (NumPy values converted,
    non-finite floats as null)."""
    atomic_io.atomic_write_text(path, json.dumps(_jsonable(payload), indent=1) + "\n")


def write_text(path, text):
    """Writes `text`, atomically."""
    atomic_io.atomic_write_text(path, text)
