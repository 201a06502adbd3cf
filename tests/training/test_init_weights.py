"""Fine-tuning: `init_weights` starts training from published or saved weights."""

import keras
import numpy as np
import pytest

from coordgate_keras.training import TrainConfig, train
from coordgate_keras.zoo import _weights, create_model

BASE = dict(
    model="coordgate_unet_d1",
    model_kwargs={"residual": True},
    image_size=32,
    psf={"kind": "gaussian", "grid_shape": [4, 4], "kernel_size": 9},
    train_images=4,
    eval_images=2,
    batch_size=2,
    steps=1,
    eval_every=0,
    checkpoint_every=1,
    # Adam moves each weight by about the learning rate: here, not at all.
    learning_rate=1e-12,
    xla="off",
)


def _weights_of(model):
    return [np.asarray(keras.ops.convert_to_numpy(w)) for w in model.weights]


@pytest.mark.skipif(
    not _weights.tags("coordgate_unet_d1"), reason="no packaged weights"
)
@pytest.mark.slow  # two trainings
def test_training_starts_from_a_published_tag_and_from_a_file(tmp_path):
    published = create_model("coordgate_unet_d1", weights="zernike_256")
    train(TrainConfig(**BASE, init_weights="zernike_256"), tmp_path / "tag", verbose=0)
    tuned = keras.saving.load_model(tmp_path / "tag" / "final.keras", compile=False)
    for a, b in zip(_weights_of(tuned), _weights_of(published)):
        np.testing.assert_allclose(a, b, atol=1e-6)

    path = str(tmp_path / "start.weights.h5")
    published.save_weights(path)
    train(TrainConfig(**BASE, init_weights=path), tmp_path / "file", verbose=0)
    tuned = keras.saving.load_model(tmp_path / "file" / "final.keras", compile=False)
    for a, b in zip(_weights_of(tuned), _weights_of(published)):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_unknown_init_weights_are_refused():
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `init_weights`. Expected None, a "
        r"`.weights.h5` path.*Received: init_weights='imagenet'",
    ):
        TrainConfig(**{**BASE, "model": "unet_d5"}, init_weights="imagenet")
