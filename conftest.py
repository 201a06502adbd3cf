"""Markers for the tests and the docstring examples (one pytest start runs both).

`@pytest.mark.tf_only(reason=...)` marks a case that needs TensorFlow itself
(tf.function graphs, tf.data, `tf.image`, TFLite); under another Keras backend
it is skipped with that reason. The examples of `coordgate_keras.data` and
`coordgate_keras.tflite` are TF-only as a whole.
"""

import os

import pytest

# On Ampere+ GPUs JAX defaults to TF32 matmuls; examples print float32 results.
os.environ.setdefault("JAX_DEFAULT_MATMUL_PRECISION", "highest")

TF_ONLY_EXAMPLES = {
    "coordgate_keras/data/": "tf.data pipelines",
    "coordgate_keras/tflite/": "the TFLite converter and LiteRT",
}


def pytest_collection_modifyitems(config, items):
    import keras

    if keras.backend.backend() == "tensorflow":
        return
    for item in items:
        reason = None
        marker = item.get_closest_marker("tf_only")
        if marker is not None:
            reason = marker.kwargs.get("reason") or (marker.args or ("",))[0]
        elif isinstance(item, pytest.DoctestItem):
            path = str(item.path).replace(os.sep, "/")
            reason = next((r for p, r in TF_ONLY_EXAMPLES.items() if p in path), None)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=f"TensorFlow only: {reason}"))
