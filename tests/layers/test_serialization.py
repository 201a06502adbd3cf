"""A functional model using every layer survives `.keras` save/load in a new process."""

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import coordgate_keras as cg


def _model():
    image = keras.Input((12, 10, 2), name="image")
    x = cg.AddCoords(with_r=True)(image)
    x = cg.CoordConv2D(6, 3, padding="same", activation="relu")(x)
    x = cg.CoordGate(encoding_layers=2)(x)
    x = cg.CoordGate(filters=4, encoding="fourier", hidden_activation="gelu")(x)
    x = cg.CoordGate(encoding="map", map_size=(3, 4), gate_activation="sigmoid")(x)
    x = cg.CoordGate(use_projection=False, gate_activation=None, encoding_layers=3)(x)
    signal = keras.Input((16, 3), name="signal")
    s = cg.CoordConv1D(4, 5, padding="same")(signal)
    s = cg.CoordGate(filters=2)(s)
    volume = keras.Input((4, 4, 4, 1), name="volume")
    v = cg.CoordConv3D(2, 3, padding="same", with_r=True)(volume)
    return keras.Model([image, signal, volume], [x, s, v])


def _on_accelerator():
    if keras.backend.backend() == "jax":
        import jax

        return jax.devices()[0].platform != "cpu"
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    return False


@pytest.mark.slow  # a subprocess that imports TensorFlow
def test_keras_file_round_trip_in_fresh_process(tmp_path):
    model = _model()
    rng = np.random.default_rng(0)
    inputs = [
        rng.standard_normal((2,) + tuple(i.shape[1:])).astype("float32")
        for i in model.inputs
    ]
    outputs = [keras.ops.convert_to_numpy(o) for o in model.predict(inputs, verbose=0)]
    model.save(tmp_path / "model.keras")
    np.savez(tmp_path / "inputs.npz", *inputs)

    script = textwrap.dedent(
        f"""
        import keras, numpy as np
        import coordgate_keras  # registers the layers
        model = keras.saving.load_model({str(tmp_path / "model.keras")!r})
        data = np.load({str(tmp_path / "inputs.npz")!r})
        inputs = [data[f"arr_{{i}}"] for i in range(len(data.files))]
        outputs = model.predict(inputs, verbose=0)
        np.savez({str(tmp_path / "outputs.npz")!r}, *outputs)
        weights = [keras.ops.convert_to_numpy(w) for w in model.weights]
        np.savez({str(tmp_path / "weights.npz")!r}, *weights)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
    weights = np.load(tmp_path / "weights.npz")
    assert len(weights.files) == len(model.weights)
    for i, expected in enumerate(model.weights):
        np.testing.assert_array_equal(
            weights[f"arr_{i}"], keras.ops.convert_to_numpy(expected)
        )
    loaded = np.load(tmp_path / "outputs.npz")
    for i, expected in enumerate(outputs):
        if _on_accelerator():
            # GPU conv algorithms are chosen per process: same weights, not the same bits.
            np.testing.assert_allclose(
                loaded[f"arr_{i}"], expected, rtol=1e-5, atol=1e-6
            )
        else:
            np.testing.assert_array_equal(loaded[f"arr_{i}"], expected)
