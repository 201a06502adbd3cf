"""What a run leaves behind when things go wrong: interrupted backups, a second
run in the same workdir, a failed start, damaged JSON files, temporaries of
killed processes."""

import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

from coordgate_keras.training import TrainConfig, _callbacks, _workdir, train
from coordgate_keras.utils import atomic_io

TINY = dict(
    model="unet_d1",
    model_kwargs={"residual": True, "base_filters": 4},
    image_size=16,
    psf={"kind": "gaussian", "grid_shape": [2, 2], "kernel_size": 5},
    train_images=4,
    eval_images=2,
    batch_size=2,
    steps=2,
    eval_every=2,
    checkpoint_every=2,
    log_every=1,
    simulator="host",
)


def _dead_pid():
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(proc.stdout)


def _small_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((4, 3)), np.ones((4, 2)), epochs=1, verbose=0)
    return model


def _backup(path, model):
    clock = _callbacks.StepClock(1, 10, 0, 0.0)
    backup = _callbacks.StepBackup(str(path), clock, checkpoint_every=1)
    backup.set_model(model)
    return backup


# === Backups ===


def test_backup_interrupted_mid_write_keeps_the_previous_one(tmp_path, monkeypatch):
    model = _small_model()
    backup = _backup(tmp_path / "backup", model)
    backup.on_epoch_end(0)  # a complete backup of epoch 1
    kept = [w.copy() for w in model.get_weights()]
    model.set_weights([w + 1.0 for w in kept])

    def torn_write(filepath, overwrite=True):
        with open(filepath, "wb") as f:
            f.write(b"\x89HDF\r\n\x1a\n")  # the first bytes only
        raise KeyboardInterrupt  # e.g. Ctrl-C mid-write

    monkeypatch.setattr(model, "save_weights", torn_write)
    with pytest.raises(KeyboardInterrupt):
        backup.on_epoch_end(1)
    assert sorted(os.listdir(tmp_path)) == ["backup"]  # no temporaries

    fresh = _small_model()
    _backup(tmp_path / "backup", fresh).on_train_begin()
    assert fresh._initial_epoch == 1
    for a, b in zip(fresh.get_weights(), kept):
        np.testing.assert_array_equal(a, b)


def test_torn_backup_of_an_older_version_is_named(tmp_path):
    folder = tmp_path / "backup"
    folder.mkdir()
    (folder / "latest.weights.h5").write_bytes(b"")
    (folder / "training_metadata.json").write_text('{"epoch": 3, "batch": 0}')
    with pytest.raises(OSError, match=r"The backup .*latest.weights.h5 cannot be "
                       r"read \(.*\)\. Delete .*backup to restart this run from "
                       r"step 0\."):  # fmt: skip
        _backup(folder, _small_model()).on_train_begin()


def test_temporaries_of_killed_processes_are_removed(tmp_path):
    pid = _dead_pid()
    stale = [
        f".last.keras.tmp-{pid}-0123abcd-last.keras",  # Keras' suffixed names
        f".w.weights.h5.tmp-{pid}-0123abcd.weights.h5",
        f".backup.tmp-{pid}-0123abcd",
        f".config.json.tmp-{pid}-89abcdef",
    ]
    for name in stale:
        if "backup" in name:
            (tmp_path / name).mkdir()
        else:
            (tmp_path / name).write_bytes(b"torn")
    alive = f".other.tmp-{os.getpid()}-0123abcd-last.keras"
    (tmp_path / alive).write_bytes(b"")
    removed = atomic_io.remove_stale_temporaries(tmp_path)
    assert sorted(os.path.basename(p) for p in removed) == sorted(stale)
    assert os.listdir(tmp_path) == [alive]


# === One run per workdir ===


def test_second_run_in_a_workdir_is_refused_naming_the_holder(tmp_path):
    workdir = tmp_path / "run"
    with _workdir.locked(workdir):
        with pytest.raises(
            _workdir.WorkdirLockedError,
            match=re.escape(f"{workdir} is in use by process {os.getpid()}"),
        ):
            train(TrainConfig(**TINY), workdir, verbose=0)
    assert not workdir.exists()  # created by the lock, empty: removed


def test_lock_of_a_killed_run_is_released(tmp_path):
    """The holder is another process; once it is killed the workdir is free."""
    workdir = tmp_path / "run"
    workdir.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(workdir / '.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "os.write(fd, str(os.getpid()).encode())\n"
            "print('locked', flush=True)\n"
            "time.sleep(600)\n"
        )],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(_workdir.WorkdirLockedError) as caught:
            with _workdir.locked(workdir):
                pass
        assert caught.value.pid == holder.pid
        assert f"in use by process {holder.pid}" in str(caught.value)
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    with _workdir.locked(workdir):
        assert os.listdir(workdir) == [".lock"]
    assert os.listdir(workdir) == []


def test_unwritable_workdir_is_an_argument_error(tmp_path):
    if os.geteuid() == 0:
        blocker = tmp_path / "file"
        blocker.write_text("")
        workdir = blocker / "run"  # a folder inside a file: never creatable
    else:
        parent = tmp_path / "ro"
        parent.mkdir(mode=0o555)
        workdir = parent / "run"
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `workdir`. Expected a folder this "
        r"process can create and write to. Received: workdir=.*run' \(.+\)",
    ):
        train(TrainConfig(**TINY), workdir, verbose=0)


# === A failed start leaves the workdir as it was ===


def test_failed_start_leaves_no_config(tmp_path):
    workdir = tmp_path / "run"
    cache = tmp_path / "cache"
    bad = TrainConfig(**TINY).replace(data=f"folder:{tmp_path / 'missing'}")
    with pytest.raises((ValueError, FileNotFoundError)):
        train(bad, workdir, verbose=0, cache_dir=cache)
    assert not workdir.exists()

    workdir.mkdir()
    (workdir / "notes.txt").write_text("mine")
    typo = TrainConfig(**TINY).replace(
        model_kwargs={"residual": True, "base_filtrs": 4}
    )
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `base_filtrs`. Expected a keyword "
        r"argument of the `unet_d1` builder .*Received: base_filtrs=4",
    ):
        train(typo, workdir, verbose=0, cache_dir=cache)
    assert os.listdir(workdir) == ["notes.txt"]

    # The corrected command is accepted in the same workdir.
    metrics = train(TrainConfig(**TINY), workdir, verbose=0, cache_dir=cache)
    assert metrics["finished"] and metrics["steps"] == 2
    assert ".lock" not in os.listdir(workdir)


# === Damaged JSON files are named ===


@pytest.mark.parametrize("name", ["config.json", "metrics.json"])
def test_truncated_json_names_the_file(tmp_path, name):
    workdir = tmp_path / "run"
    workdir.mkdir()
    cfg = TrainConfig(**TINY)
    cfg.save(workdir / "config.json")
    if name == "metrics.json":
        (workdir / name).write_text('{"steps": 2, "psnr"')
    else:
        text = json.dumps(cfg.to_dict(), indent=2)
        (workdir / name).write_text(text[: len(text) // 2])
    with pytest.raises(
        ValueError,
        match=re.escape(str(workdir / name)) + r" is not valid JSON \(.+\); it was "
        "not written by this version of coordgate-keras, or was edited",
    ):
        train(cfg, workdir, verbose=0)


# === The README's commands ===


def _readme_command(marker):
    """The `coordgate-train` command of the README that contains `marker`,
    continuation lines joined, comments dropped."""
    import shlex

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "README.md")) as f:
        text = f.read().replace("\\\n", " ")
    (line,) = [ln for ln in text.splitlines() if marker in ln]
    words = shlex.split(line, comments=True)
    assert words[0] == "coordgate-train"
    return words[1:]


def test_readme_custom_psf_command_builds_its_config():
    from coordgate_keras.training import cli

    argv = _readme_command("psf.kind=file")
    cfg = cli.config_from_args(cli.build_parser().parse_args(argv))
    assert cfg.psf == {"kind": "file", "path": "my_psfs.npz"}
    assert cfg.data == "folder:my_images/"
    # Keys set after the kind stay; a kind set again to the same value keeps all.
    again = cfg.override(["psf.kind=file", "psf.path=other.npz"])
    assert again.psf == {"kind": "file", "path": "other.npz"}
    gauss = TrainConfig().override(["psf.kind=gaussian", "psf.kernel_size=9"])
    assert gauss.psf == {"kind": "gaussian", "kernel_size": 9}
