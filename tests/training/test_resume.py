"""A run killed with SIGKILL resumes from its last backup when started again."""

import csv
import os
import signal
import subprocess
import sys
import time

import pytest

from coordgate_keras.training import TrainConfig, train

CONFIG = dict(
    model="unet_d1",
    model_kwargs={"residual": True, "base_filters": 4},
    image_size=32,
    psf={"kind": "gaussian", "grid_shape": [2, 2], "kernel_size": 7},
    train_images=16,
    eval_images=4,
    batch_size=4,
    steps=30,
    eval_every=10,
    checkpoint_every=2,
    log_every=10,
    simulator="host",
)


def _cli(workdir, config_path, cache):
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "coordgate_keras.training.cli",
            "--workdir",
            str(workdir),
            "--config",
            str(config_path),
            "--cache-dir",
            str(cache),
            "--verbose",
            "2",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


# Subprocess trainings through the CLI, one killed and resumed: `make test-slow`.
@pytest.mark.slow
@pytest.mark.tf_only(reason="TF run")
def test_sigkill_then_resume(tmp_path):
    cfg = TrainConfig(**CONFIG)
    config_path = tmp_path / "cfg.yaml"
    cfg.save(config_path)
    workdir, cache = tmp_path / "run", tmp_path / "cache"
    metadata = workdir / "backup" / "training_metadata.json"

    proc = _cli(workdir, config_path, cache)
    deadline = time.monotonic() + 300
    while not metadata.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (workdir / "metrics.json").exists(), "finished before it was killed"

    proc = _cli(workdir, config_path, cache)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    resumed_from = [line for line in out.splitlines() if "resuming from step" in line]
    assert resumed_from, out[-3000:]
    assert int(resumed_from[0].split("resuming from step ")[1].split()[0]) > 0

    metrics = train(cfg, workdir, verbose=0)  # finished: returns the saved metrics
    assert metrics["steps"] == 30
    with open(workdir / "history.csv") as f:
        steps = [int(row["step"]) for row in csv.DictReader(f)]
    assert steps == list(range(2, 31, 2))  # no repeated or missing rows

    # The same run without the kill: a restored run continues with the same
    # weights, optimizer state and batches, so it ends where this one ends.
    straight = train(cfg, tmp_path / "straight", verbose=0, cache_dir=cache)
    assert metrics["psnr"] == pytest.approx(straight["psnr"], abs=1e-3)
