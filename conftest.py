"""Docstring examples (`pytest --doctest-modules coordgate_keras`, run by `make test`).

The examples of `coordgate_keras.data` and `coordgate_keras.tflite` need
TensorFlow (tf.data pipelines, the TFLite converter, LiteRT): under another Keras
backend they are skipped, with that reason.
"""

import os

import pytest

# On Ampere+ GPUs JAX defaults to TF32 matmuls; examples print float32 results.
os.environ.setdefault("JAX_DEFAULT_MATMUL_PRECISION", "highest")

TF_ONLY = ("coordgate_keras/data/", "coordgate_keras/tflite/")


def pytest_collection_modifyitems(config, items):
    import keras

    if keras.backend.backend() == "tensorflow":
        return
    skip = pytest.mark.skip(reason="TF-only example (tf.data / TFLite)")
    for item in items:
        path = str(item.path).replace(os.sep, "/")
        if isinstance(item, pytest.DoctestItem) and any(p in path for p in TF_ONLY):
            item.add_marker(skip)
