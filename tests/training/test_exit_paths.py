"""Every way `coordgate-train` ends, ends the process: within seconds, with one
line and the documented status (1 for errors and NaN, 130 for Ctrl-C, 143 for
SIGTERM)."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import pytest

from coordgate_keras.training import TrainConfig, cli

CONFIG = dict(
    model="unet_d1",
    model_kwargs={"residual": True, "base_filters": 4},
    image_size=16,
    psf={"kind": "gaussian", "grid_shape": [2, 2], "kernel_size": 5},
    train_images=8,
    eval_images=2,
    batch_size=2,
    steps=400,
    eval_every=100,
    checkpoint_every=1,
    log_every=1,
    simulator="host",
)
pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="the TF data pipeline"
)


@pytest.fixture
def start(start_train_cli):
    """`start(folder, *extra)`: a `coordgate-train` run of CONFIG in `folder`."""

    def start(folder, *extra):
        folder.mkdir(parents=True, exist_ok=True)
        TrainConfig(**CONFIG).save(folder / "cfg.yaml")
        return start_train_cli(
            folder / "run", folder / "cfg.yaml", folder / "cache", *extra
        )

    return start


def _finish(proc, seconds):
    """Waits at most `seconds`; a process still running then has hung."""
    try:
        out, err = proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the process did not exit:\n{err[-3000:]}")
    return proc.returncode, out, err


def _wait_for_training(folder, proc):
    metadata = folder / "run" / "backup" / "training_metadata.json"
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if json.loads(metadata.read_text())["epoch"] >= 2:
                return
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.02)
    pytest.fail("training did not start")


def _nan_run(start, folder):
    proc = start(folder, "--set", "learning_rate=1e6")
    code, _, err = _finish(proc, 300)
    assert code == 1, err[-3000:]
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("coordgate-train")]
    assert len(lines) == 1, err[-3000:]
    assert lines[0].startswith("coordgate-train: error: Training stopped at step ")
    assert "the loss is NaN or infinite" in lines[0]


def _signal_run(start, folder, sig, code, line):
    proc = start(folder)
    _wait_for_training(folder, proc)
    sent = time.monotonic()
    proc.send_signal(sig)
    status, _, err = _finish(proc, 60)
    assert status == code, err[-3000:]
    assert time.monotonic() - sent < 30
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == line
    # What the next run needs is complete: it resumes (tested in test_resume).
    run = folder / "run"
    assert not [n for n in os.listdir(run) if ".tmp-" in n or n == ".lock"]


# In process, test_sources checks the NaN stop's message; here the process's exit.
@pytest.mark.slow  # a subprocess training
def test_nan_loss_exits(tmp_path, start):
    _nan_run(start, tmp_path)


def test_ctrl_c_exits_130(tmp_path, start):
    _signal_run(start, tmp_path, signal.SIGINT, 130, "coordgate-train: interrupted")


@pytest.mark.slow
@pytest.mark.parametrize("attempt", range(4))
def test_nan_loss_exits_repeated(tmp_path, attempt, start):
    _nan_run(start, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("attempt", range(2))
def test_ctrl_c_and_sigterm_exit_repeated(tmp_path, attempt, start):
    _signal_run(
        start, tmp_path / "int", signal.SIGINT, 130, "coordgate-train: interrupted"
    )
    _signal_run(
        start, tmp_path / "term", signal.SIGTERM, 143, "coordgate-train: terminated"
    )


# === In process: the message, and the traceback behind --traceback ===


def _main(tmp_path, *extra):
    return cli.main(
        ["--workdir", str(tmp_path / "run"), "--model", "unet_d9", "--verbose", "0",
         *extra]
    )  # fmt: skip


def test_error_is_one_line_with_status_1(tmp_path, capsys):
    assert _main(tmp_path) == 1
    err = capsys.readouterr().err
    assert err.startswith("coordgate-train: error: ")
    assert "'unet_d9'" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_traceback_flag_shows_the_traceback(tmp_path, capsys):
    assert _main(tmp_path, "--traceback") == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert err.strip().splitlines()[-1].startswith("coordgate-train: error: ")


@pytest.mark.slow  # a subprocess that imports TensorFlow
def test_exit_watchdog_ends_a_run_that_cannot_handle_ctrl_c(tmp_path):
    """A main thread that never gets to end (here it swallows the interrupt;
    in TensorFlow it can block in native code) is ended by the watchdog: one
    line, status 130, the workdir's lock file removed."""
    (tmp_path / ".lock").write_text("0\n")
    script = (
        "import os, sys, time\n"
        "from coordgate_keras.training import cli\n"
        "open(os.path.join(sys.argv[1], '.lock'), 'w').write(f'{os.getpid()}\\n')\n"
        "cli._exit_watchdog(sys.argv[1], grace=1)\n"
        "ready = False\n"
        "while True:\n"
        "    try:\n"  # 'ready' is printed where the interrupt is swallowed
        "        if not ready:\n"
        "            ready = True\n"
        "            print('ready', flush=True)\n"
        "        time.sleep(60)\n"
        "    except KeyboardInterrupt:\n"
        "        pass\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # SIGINT at its default action (see conftest's start_train_cli).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGINT)
    code, _, err = _finish(proc, 60)
    assert code == 130
    assert err.strip().splitlines()[-1] == "coordgate-train: interrupted"
    assert not (tmp_path / ".lock").exists()
