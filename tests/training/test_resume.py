"""A run killed at any instant (checkpoint writes included) resumes from its last
backup when started again, and ends where an uninterrupted run ends."""

import csv
import json
import os
import random
import signal
import subprocess
import time

import keras
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
    steps=6,
    eval_every=3,
    # Every step writes the backup, last.keras and history.csv: most of a
    # step's time is spent writing, so random kills land inside writes.
    checkpoint_every=1,
    log_every=3,
    simulator="host",
)


def _backup_epoch(workdir):
    try:
        with open(workdir / "backup" / "training_metadata.json") as f:
            return json.load(f)["epoch"]
    except FileNotFoundError:
        return 0


def _writing(workdir, prefix="."):
    """Whether a checkpoint write is in progress (its temporary exists);
    `prefix=".backup."`: a backup write."""
    try:
        names = os.listdir(workdir)
    except FileNotFoundError:
        return False
    return any(name.startswith(prefix) and ".tmp-" in name for name in names)


def _kill_once(cli, workdir, config_path, cache, rng, mode, sig):
    """Starts the CLI, kills it with `sig` once training has moved on, at a
    random instant (`mode="random"`) or as soon as a backup write is seen in
    progress (`mode="write"`). Returns the exit status, and whether a write
    was in progress just before the kill."""
    start_epoch = _backup_epoch(workdir)
    proc = cli(workdir, config_path, cache)
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if _backup_epoch(workdir) > start_epoch:
            break
        time.sleep(0.005)
    if mode == "random":
        time.sleep(rng.uniform(0.0, 0.5))
        in_write = _writing(workdir)
    else:
        in_write = False
        while proc.poll() is None and not in_write:
            in_write = _writing(workdir, ".backup.")
            time.sleep(0.001 * (not in_write))
    proc.send_signal(sig)
    proc.wait(timeout=60)
    return proc.returncode, in_write


def _quiet(start_train_cli):
    """A `coordgate-train` process with its output discarded."""

    def cli(workdir, config_path, cache):
        return start_train_cli(
            workdir, config_path, cache, verbose="2",
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    return cli


def _kill_anywhere_then_resume(cli, tmp_path, plan, seed, steps=CONFIG["steps"]):
    cfg = TrainConfig(**CONFIG).replace(steps=steps)
    config_path = tmp_path / "cfg.yaml"
    cfg.save(config_path)
    workdir, cache = tmp_path / "run", tmp_path / "cache"
    rng = random.Random(seed)
    outcomes = []
    for mode, sig in plan:
        code, in_write = _kill_once(cli, workdir, config_path, cache, rng, mode, sig)
        outcomes.append((mode, sig, code, in_write))
        if code == 0:
            break  # finished before the kill landed
        # SIGKILL: -9; SIGTERM: the CLI exits with 128 + 15.
        assert code in (-signal.SIGKILL, 128 + signal.SIGTERM), outcomes
    assert any(code != 0 for *_, code, _ in outcomes), outcomes

    proc = cli(workdir, config_path, cache)
    assert proc.wait(timeout=600) == 0, outcomes

    metrics = train(cfg, workdir, verbose=0)  # finished: returns the saved metrics
    assert metrics["steps"] == cfg.steps
    with open(workdir / "history.csv") as f:
        steps = [int(row["step"]) for row in csv.DictReader(f)]
    assert steps == list(range(1, cfg.steps + 1))  # no repeated or missing rows
    # The temporaries of the killed writes are gone, and so is the lock.
    for folder in (workdir, workdir / "backup"):
        left = [n for n in os.listdir(folder) if ".tmp-" in n or n == ".lock"]
        assert left == [], (left, outcomes)
    for name in ("last.keras", "best.keras", "final.keras"):
        keras.saving.load_model(workdir / name, compile=False)

    # The same run without kills: a restored run continues with the same
    # weights, optimizer state and batches, so it ends where this one ends.
    straight = train(cfg, tmp_path / "straight", verbose=0, cache_dir=cache)
    assert metrics["psnr"] == pytest.approx(straight["psnr"], abs=1e-4)
    assert metrics["ssim"] == pytest.approx(straight["ssim"], abs=1e-5)
    return outcomes


@pytest.mark.tf_only(reason="TF run")
def test_kill_during_checkpoint_write_then_resume(tmp_path, start_train_cli):
    """SIGKILL inside a checkpoint write (the slow test kills ten times)."""
    plan = [("write", signal.SIGKILL)]
    cli = _quiet(start_train_cli)
    outcomes = _kill_anywhere_then_resume(cli, tmp_path, plan, seed=0)
    assert outcomes[0][3], outcomes  # the first kill landed inside a write


@pytest.mark.slow
@pytest.mark.tf_only(reason="TF run")
def test_kill_at_random_instants_then_resume(tmp_path, start_train_cli):
    """Ten kills, alternating random instants and checkpoint writes, SIGKILL
    and SIGTERM."""
    plan = [
        (mode, sig)
        for mode in ("random", "write")
        for sig in (signal.SIGKILL, signal.SIGTERM)
    ] * 3
    cli = _quiet(start_train_cli)
    outcomes = _kill_anywhere_then_resume(cli, tmp_path, plan[:10], seed=1, steps=40)
    assert sum(in_write for *_, in_write in outcomes) >= 3, outcomes
