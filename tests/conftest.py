import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# On Ampere+ GPUs JAX runs float32 matmuls and convs in TF32 by default (~1e-3
# relative error); the tests compare against float64 NumPy references, so ask for
# true float32. Set in the environment so subprocesses inherit it.
os.environ.setdefault("JAX_DEFAULT_MATMUL_PRECISION", "highest")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _reset_keras_state():
    """Each test starts with the float32 policy, seeded generators, fresh names.

    `clear_session(free_memory=False)` skips the full `gc.collect()`, which costs
    0.15-0.3 s per test with TensorFlow loaded.
    """
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(0)
    yield
    keras.config.set_dtype_policy("float32")
    keras.backend.clear_session(free_memory=False)
