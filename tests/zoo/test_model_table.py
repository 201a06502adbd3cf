import pathlib

import keras

from coordgate_keras.layers import CoordGate
from coordgate_keras.zoo import LocallyConnected1D
from coordgate_keras.zoo._model_table import count_macs, render_model_table

MODELS_MD = pathlib.Path(__file__).resolve().parents[2] / "docs" / "MODELS.md"


def test_models_md_is_up_to_date():
    """Regenerate with `python -m benchmarks.make_model_table` when this fails."""
    assert MODELS_MD.read_text() == render_model_table(), (
        "docs/MODELS.md is stale: run `python -m benchmarks.make_model_table`"
    )


def test_count_macs_per_layer_formulas():
    inputs = keras.Input((16, 12, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)  # 16*12 * 3*3*3*8
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same")(x)  # 8*6 * 3*3*8*8
    x = CoordGate(encoding_layers=2, encoding_units=5)(x)
    x = keras.layers.Conv2DTranspose(4, 2, strides=2)(x)  # 8*6 * 2*2*4*8
    x = keras.layers.Dense(2)(x)  # 16*12 * 4*2
    model = keras.Model(inputs, x)
    gate = 8 * 6 * (8 + 2 * 5 + 5 * 8 + 8 * 8)  # product + encoder + projection
    expected = 16 * 12 * 216 + 8 * 6 * 576 + gate + 8 * 6 * 128 + 16 * 12 * 8
    assert count_macs(model) == expected


def test_count_macs_locally_connected():
    inputs = keras.Input((10, 2))
    outputs = LocallyConnected1D(3, 3)(inputs)
    assert count_macs(keras.Model(inputs, outputs)) == 8 * 3 * 2 * 3
