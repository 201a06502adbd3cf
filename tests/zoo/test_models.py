"""Tests generated from the registry (timm's test_models.py): every model, small."""

import keras
import numpy as np
import pytest

from coordgate_keras.zoo import create_model, list_models, model_info

# Small widths keep every model cheap; the default widths are built (without
# allocating weights) by test_model_table.py.
SMALL = {
    "unet": dict(input_shape=(32, 32, 1), base_filters=4),
    "coordconv_unet": dict(input_shape=(32, 32, 1), base_filters=4),
    "coordgate_unet": dict(
        input_shape=(32, 32, 1), base_filters=4, coordgate_options={"encoding_units": 8}
    ),
    # The Wiener layer and a U-Net: a shallower one keeps XLA compilation short.
    "multiwienernet": dict(
        input_shape=(32, 32, 1), base_filters=4, num_psfs=2, depth=1
    ),
}
SMALL_1D = dict(input_shape=(32, 1), filters=4)
# XLA compilation takes seconds per model and grows with depth: the default run
# trains one U-Net per family (depth 1), the slow run all of them.
SLOW_TRAIN_DEPTH = 2


def small_model(name):
    info = model_info(name)
    kwargs = SMALL.get(info.family, SMALL_1D)
    return create_model(name, **kwargs)


def sample_input(model, batch=2, seed=0):
    shape = (batch,) + tuple(model.input_shape[1:])
    return np.random.default_rng(seed).uniform(size=shape).astype("float32")


def train_params():
    params = []
    for name in list_models():
        info = model_info(name)
        slow = "unet" in info.family and info.depth >= SLOW_TRAIN_DEPTH
        params.append(pytest.param(name, marks=pytest.mark.slow) if slow else name)
    return params


@pytest.mark.parametrize("name", list_models())
def test_forward(name):
    model = small_model(name)
    x = sample_input(model)
    y = keras.ops.convert_to_numpy(model(x))
    assert y.shape == x.shape[:-1] + (model.output_shape[-1],)
    assert y.shape[1:-1] == x.shape[1:-1]
    assert np.all(np.isfinite(y))


@pytest.mark.parametrize("name", list_models())
def test_keras_round_trip(name, tmp_path):
    model = small_model(name)
    x = sample_input(model)
    expected = keras.ops.convert_to_numpy(model(x))
    path = tmp_path / f"{name}.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert [w.path for w in restored.weights] == [w.path for w in model.weights]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(restored(x)), expected)


@pytest.mark.parametrize("name", train_params())
def test_train_step_jit(name):
    model = small_model(name)
    x = sample_input(model, batch=2)
    target = sample_input(model, batch=2, seed=1)[..., : model.output_shape[-1]]
    model.compile(optimizer=keras.optimizers.SGD(1e-2), loss="mse", jit_compile=True)
    before = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    history = model.fit(x, target, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    after = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    assert all(np.all(np.isfinite(w)) for w in after)
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))
