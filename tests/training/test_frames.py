"""Training on crops of a frame (`frame_size`): data, model, metrics, resume."""

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest

from coordgate_keras import data as data_lib
from coordgate_keras.training import TrainConfig, _data, evaluate, train
from coordgate_keras.training.cli import build_parser, config_from_args

FRAMES = dict(
    model="coordgate_unet_d1",
    model_kwargs={"residual": True, "base_filters": 4},
    image_size=32,
    frame_size=[64, 96],
    psf={"kind": "gaussian", "grid_shape": [4, 4], "kernel_size": 9},
    noise=None,
    train_images=8,
    eval_images=4,
    batch_size=4,
    steps=4,
    eval_every=2,
    checkpoint_every=2,
    log_every=1,
)


def test_crops_are_windows_of_the_frame_blur(tmp_path):
    """A training pair is the crop of the frame's blur at its origin: the sharp
    scene around the tile (margin included) blurred as a window, compared with
    the same region blurred exactly with zero light beyond it."""
    cfg = TrainConfig(**FRAMES)
    built = _data.build(cfg, "host", str(tmp_path), log=lambda m: None)
    (blurred, origins), sharp = built.make_batch(3)
    assert blurred.shape == sharp.shape == (4, 32, 32, 1)
    assert origins.dtype == np.int32 and np.all(origins % 2 == 0)
    assert np.all(origins >= 0) and np.all(origins + 32 <= [64, 96])
    field = _data.frame_field(cfg)
    # Rebuild one sample independently: the pool scene covers the tile and a
    # margin of the PSF radius, cut at the frame's edges.
    (scenes,) = [
        np.load(os.path.join(tmp_path, f), mmap_mode="r")
        for f in os.listdir(tmp_path)
        if f.endswith(".npy")
    ]
    index = _data._indices(cfg.seed, 3, 4, 8)[0]
    r = field.radius
    ty, tx = origins[0]
    frame = np.zeros((64 + 2 * r, 96 + 2 * r, 1))
    frame[ty : ty + 32 + 2 * r, tx : tx + 32 + 2 * r] = scenes[index]
    frame = frame[r : r + 64, r : r + 96]  # the frame's pixels; zero elsewhere
    whole = data_lib.blur_exact(frame, field)
    np.testing.assert_allclose(sharp[0], frame[ty : ty + 32, tx : tx + 32], atol=1e-6)
    np.testing.assert_allclose(
        blurred[0], np.clip(whole[ty : ty + 32, tx : tx + 32], 0, 1), atol=1e-5
    )


def test_heldout_tiles_cover_the_frame():
    origins = _data.covering_origins((64, 96), (32, 32), 2)
    covered = np.zeros((64, 96), bool)
    for r, c in origins:
        covered[r : r + 32, c : c + 32] = True
    assert covered.all() and [0, 0] in origins.tolist() and [32, 64] in origins.tolist()
    origins = _data.covering_origins((64, 100), (32, 32), 4)
    assert origins[:, 1].max() == 68  # flush with the edge, on the grid of 4


def test_train_on_crops(tmp_path):
    """A frame model trains on crops and scores whole frames tile by tile."""
    metrics = train(
        dict(FRAMES, steps=2), tmp_path / "run", verbose=0, cache_dir=tmp_path
    )
    assert {"psnr_frames", "psnr_frames_blurred"} <= set(metrics)
    assert metrics["simulator"] == "host"
    # The tiles cover the frame, so the restored frame is scored everywhere.
    assert 10 < metrics["psnr_frames_blurred"] < 60


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_train_on_crops_resumes_after_kill(tmp_path, backend, start_train_cli):
    """Killed after its first backup and started again, a frame run ends where
    an uninterrupted run ends, on both backends."""
    cfg = dict(FRAMES, steps=8, checkpoint_every=2, eval_every=4)
    config_path = tmp_path / "cfg.json"
    config_path.write_text(json.dumps(cfg))

    def cli(workdir):
        return start_train_cli(
            workdir, config_path, tmp_path, backend=backend, stderr=subprocess.STDOUT
        )

    workdir = tmp_path / "killed"
    metadata = workdir / "backup" / "training_metadata.json"
    proc = cli(workdir)
    deadline = time.monotonic() + 300
    while not metadata.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert not (workdir / "metrics.json").exists(), "finished before it was killed"
    proc = cli(workdir)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    straight = cli(tmp_path / "straight")
    out2, _ = straight.communicate(timeout=600)
    assert straight.returncode == 0, out2[-3000:]
    killed = json.loads((workdir / "metrics.json").read_text())
    whole = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    assert killed["psnr"] == pytest.approx(whole["psnr"], abs=1e-3)
    assert killed["psnr_frames"] == pytest.approx(whole["psnr_frames"], abs=1e-3)


def test_evaluate_passes_origins():
    import keras

    from coordgate_keras.zoo import create_model

    model = create_model(
        "coordgate_unet_d1",
        input_shape=(16, 16, 1),
        frame_shape=(32, 32),
        base_filters=4,
    )
    x = np.random.default_rng(0).uniform(size=(3, 16, 16, 1)).astype("float32")
    origins = np.array([[0, 0], [16, 16], [0, 16]], "int32")
    metrics = evaluate(model, x, x, batch_size=2, origins=origins)
    direct = np.clip(np.asarray(model([x, origins])), 0, 1)
    mse = np.mean((direct - x) ** 2, axis=(1, 2, 3))
    assert metrics["psnr"] == pytest.approx(np.mean(10 * np.log10(1 / mse)), abs=1e-3)
    del keras


def test_frame_size_flag_and_errors():
    args = build_parser().parse_args(["--workdir", "w", "--frame-size", "1024x768"])
    assert config_from_args(args).frame_size == [1024, 768]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--workdir", "w", "--frame-size", "10y5"])
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `frame_size`\. Expected a frame at least as large as image_size \(32, 32\) \(2D models\)\. Received: frame_size=16",
    ):
        TrainConfig(**dict(FRAMES, frame_size=16))
    with pytest.raises(ValueError, match=r"frame_size=\[64, 97\]"):
        _data.build(
            TrainConfig(**dict(FRAMES, frame_size=[64, 97])), "host", None, print
        )
