"""`publish_weights`: a finished workdir becomes a weight file and its sidecar."""

import hashlib
import json

import keras
import numpy as np
import pytest

from coordgate_keras.training import (
    TrainConfig,
    heldout_data,
    publish_weights,
    train,
)
from coordgate_keras.zoo import create_model

TINY = dict(
    model="unet_d1",
    model_kwargs={"residual": True, "base_filters": 4},
    image_size=32,
    psf={"kind": "gaussian", "grid_shape": [4, 4], "kernel_size": 9},
    train_images=8,
    eval_images=4,
    batch_size=4,
    steps=3,
    eval_every=0,
    checkpoint_every=3,
    log_every=1,
)


def _numpy_psnr(pred, sharp):
    mse = ((np.clip(pred, 0.0, 1.0) - sharp) ** 2).mean(axis=(1, 2, 3))
    return float(np.mean(10.0 * np.log10(1.0 / mse)))


def test_published_file_and_sidecar_describe_what_a_user_loads(tmp_path):
    cfg = TrainConfig(**TINY)
    workdir = tmp_path / "run"
    train(cfg, str(workdir), verbose=0)
    sidecar = publish_weights(str(workdir), "tiny", str(tmp_path / "out"))

    path = tmp_path / "out" / "unet_d1_tiny.weights.h5"
    data = path.read_bytes()
    assert sidecar["sha256"] == hashlib.sha256(data).hexdigest()
    assert sidecar["size_bytes"] == len(data)
    on_disk = json.loads((tmp_path / "out" / "unet_d1_tiny.json").read_text())
    assert on_disk["sha256"] == sidecar["sha256"]
    assert sidecar["builder_kwargs"] == {"residual": True, "base_filters": 4}
    assert sidecar["recipe"] == cfg.to_dict() and sidecar["steps"] == 3
    hardware = sidecar["trained_on"]
    assert hardware["cpus_usable"] >= 1 and hardware["cpu_model"]
    assert hardware["backend"] == keras.backend.backend()
    assert hardware["keras"] == keras.__version__ and hardware["hardware"]

    # The sidecar's metrics are what the file gives, scored independently.
    model = create_model(
        "unet_d1", input_shape=(32, 32, 1), **sidecar["builder_kwargs"]
    )
    model.load_weights(str(path))
    blurred, sharp = heldout_data(cfg)
    pred = model.predict(blurred, verbose=0)
    metrics = sidecar["metrics"]
    assert metrics["psnr"] == pytest.approx(_numpy_psnr(pred, sharp), abs=1e-3)
    assert metrics["psnr_blurred"] == pytest.approx(
        _numpy_psnr(blurred, sharp), abs=1e-3
    )


def test_an_unfinished_workdir_is_refused(tmp_path):
    cfg = TrainConfig(**TINY)
    workdir = tmp_path / "run"
    train(cfg, str(workdir), verbose=0)
    metrics = json.loads((workdir / "metrics.json").read_text())
    metrics["finished"] = False
    (workdir / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(
        ValueError, match=r"argument `workdir`. Expected a finished run"
    ):
        publish_weights(str(workdir), "tiny", str(tmp_path / "out"))
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
