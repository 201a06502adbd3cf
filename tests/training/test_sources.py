"""`train()` on folder, saved-dataset and 1D data; bad data and NaN losses."""

import json
import os
import shutil

import numpy as np
import pytest

from coordgate_keras import data
from coordgate_keras.training import TrainConfig, heldout_data, train

pytestmark = pytest.mark.tf_only(reason="TF run (JAX in test_train)")

BASE = dict(
    model="unet_d1",
    model_kwargs={"residual": True, "base_filters": 4},
    image_size=32,
    psf={"kind": "gaussian", "grid_shape": [2, 2], "kernel_size": 7},
    train_images=8,
    eval_images=4,
    batch_size=4,
    steps=2,
    eval_every=0,
    checkpoint_every=2,
)


def _psnr(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    return np.mean([10 * np.log10(1 / np.mean((x - y) ** 2)) for x, y in zip(a, b)])


def test_saved_dataset_source_and_nan_shard(tmp_path):
    field = data.gaussian_psf_field(grid_shape=(2, 2), kernel_size=7)
    folder = tmp_path / "pairs"
    data.write_deblur_dataset(
        folder, field, image_shape=(32, 32), num_images=12, shard_size=6
    )
    cfg = TrainConfig(**BASE, data=f"dataset:{folder}")
    metrics = train(cfg, tmp_path / "run", verbose=0)
    assert metrics["simulator"] == "none" and np.isfinite(metrics["psnr"])
    # The last eval_images pairs are held out.
    with np.load(folder / "shard-00001.npz") as shard:
        blurred, sharp = shard["blurred"][-4:], shard["sharp"][-4:]
    assert metrics["psnr_blurred"] == pytest.approx(_psnr(blurred, sharp), abs=1e-4)

    bad = tmp_path / "bad_pairs"
    shutil.copytree(folder, bad)
    with np.load(bad / "shard-00001.npz") as shard:
        arrays = dict(shard)
    arrays["blurred"][2, 5, 5, 0] = np.nan
    np.savez(bad / "shard-00001.npz", **arrays)
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `data`. Expected finite values \(no NaN or infinity\). Received: 1 non-finite value\(s\) in .*bad_pairs/shard-00001.npz \(array 'blurred'\)",
    ):
        train(cfg.replace(data=f"dataset:{bad}"), tmp_path / "run_bad", verbose=0)


def test_folder_source_with_psf_file_and_nan_image(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        np.save(images / f"img{i}.npy", rng.random((48, 40)))
    field_path = tmp_path / "field.npz"
    data.zernike_psf_field(grid_shape=(3, 3), kernel_size=9).save(field_path)
    cfg = TrainConfig(
        **{**BASE, "psf": {"kind": "file", "path": str(field_path)}},
        data=f"folder:{images}",
    )
    metrics = train(cfg, tmp_path / "run", verbose=0)
    assert np.isfinite(metrics["psnr"]) and metrics["simulator"] == "host"
    blurred, sharp = heldout_data(cfg)
    assert sharp.shape == (4, 32, 32, 1)
    assert metrics["psnr_blurred"] == pytest.approx(_psnr(blurred, sharp), abs=1e-4)

    bad = rng.random((48, 40))
    bad[3, 3] = np.inf
    np.save(images / "img9.npy", bad)
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `directory`. Expected images with finite values \(no NaN or infinity\). Received: .*img9.npy' with 1 non-finite value\(s\)",
    ):
        train(cfg, tmp_path / "run_bad", verbose=0)


def test_1d_model(tmp_path):
    cfg = TrainConfig(
        **{
            **BASE,
            "model": "coordgate_cnn1d",
            "model_kwargs": {"residual": True},
            "image_size": 64,
            # The default (2D Zernike) field stands for the 1D default field.
            "psf": TrainConfig().psf,
        }
    )
    metrics = train(cfg, tmp_path / "run", verbose=0)
    assert metrics["simulator"] == "host"
    assert np.isfinite(
        [metrics[k] for k in ("psnr", "ssim", "psnr_blurred", "ssim_blurred")]
    ).all()
    with open(tmp_path / "run" / "config.json") as f:
        assert json.load(f)["psf"] == TrainConfig().psf  # the config as given
    blurred, sharp = heldout_data(cfg)
    assert sharp.shape == (4, 64, 1)
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `psf`. Expected \{'kind': 'varying_gaussian_1d', 'sigma_range': \[first, last\]\} for a 1D model",
    ):
        train(
            cfg.replace(psf={"kind": "gaussian", "kernel_size": 5}),
            tmp_path / "r2",
            verbose=0,
        )


def test_nan_loss_stops_with_a_clear_message(tmp_path):
    cfg = TrainConfig(**{**BASE, "steps": 6}, learning_rate=1e30, schedule="constant")
    with pytest.raises(
        FloatingPointError,
        match=r"Training stopped at step \d: the loss is NaN or infinite\. .*To fix: lower `learning_rate` \(now 1e\+30\), add `warmup_steps`\.",
    ):
        train(cfg, tmp_path / "run", verbose=0)
    assert not os.path.exists(tmp_path / "run" / "metrics.json")
