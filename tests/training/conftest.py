"""Shared helpers of the training tests."""

import os
import signal
import subprocess
import sys

import pytest


def _check_match(result, multi):
    """One-device and two-device runs (histories and metrics) agree."""
    one, two = result["none"], result[multi]
    assert one["metrics"]["num_devices"] == 1
    assert two["metrics"]["num_devices"] == 2
    assert two["metrics"]["strategy"] == multi
    assert [r["step"] for r in one["history"]] == [r["step"] for r in two["history"]]
    for a, b in zip(one["history"], two["history"]):
        assert float(b["loss"]) == pytest.approx(float(a["loss"]), rel=1e-4)
        assert float(b["val_psnr"]) == pytest.approx(float(a["val_psnr"]), abs=1e-3)
    assert two["metrics"]["psnr"] == pytest.approx(one["metrics"]["psnr"], abs=1e-3)


@pytest.fixture
def check_match():
    return _check_match


def _start_train_cli(workdir, config, cache_dir, *extra, backend="tensorflow",
                     verbose="0", **popen_kwargs):  # fmt: skip
    """Starts `coordgate-train --workdir W --config C --cache-dir D` as its own
    process on `backend`, quiet TensorFlow logs, stdout/stderr as
    `popen_kwargs` say (captured as text by default).

    SIGINT starts at its default action, as a terminal's Ctrl-C reaches a
    program: from a background job of a non-interactive shell (`make test &`,
    some CI runners) a process inherits SIGINT *ignored*, and Python then
    installs no KeyboardInterrupt handler.
    """
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    popen_kwargs = {
        "stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True,
        **popen_kwargs,
    }  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "coordgate_keras.training.cli",
         "--workdir", str(workdir), "--config", str(config),
         "--cache-dir", str(cache_dir), "--verbose", str(verbose), *extra],
        env=env, preexec_fn=_default_sigint, **popen_kwargs,
    )  # fmt: skip


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def start_train_cli():
    """`start_train_cli(workdir, config, cache_dir, *extra, backend=,
    verbose=, **popen_kwargs)`: a `coordgate-train` process."""
    return _start_train_cli
