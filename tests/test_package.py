"""The package as a new user meets it: one import, every saved model loads."""

import importlib.metadata
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import coordgate_keras
from coordgate_keras.zoo import create_model, list_models, model_info

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python(code, **env):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
        env={**os.environ, **env},
    )


def _small(name):
    """The registry model at its default input shape (None sizes for U-Nets),
    narrow enough to be cheap."""
    family = model_info(name).family
    if family == "multiwienernet":
        return create_model(
            name, input_shape=(32, 32, 1), base_filters=4, depth=1, num_psfs=2
        )
    if "unet" in family:
        return create_model(name, base_filters=4)
    if family == "locally_connected_cnn1d":
        return create_model(name, input_shape=(32, 1), filters=4)
    return create_model(name, filters=4)


# 26 s on 2 cores; the default run loads one model in a fresh process
# (tests/layers/test_serialization.py): `make test-slow`.
@pytest.mark.slow
def test_every_registry_model_loads_in_a_fresh_process_after_one_import(tmp_path):
    expected = {}
    for name in list_models():
        model = _small(name)
        shape = tuple(32 if n is None else n for n in model.input_shape[1:])
        x = np.random.default_rng(0).uniform(size=(2,) + shape).astype("float32")
        np.save(tmp_path / f"{name}_x.npy", x)
        expected[name] = keras.ops.convert_to_numpy(model(x))
        model.save(tmp_path / f"{name}.keras")
    # Only `import coordgate_keras`, as the README says, and safe mode on.
    result = _python(
        f"""
        import sys
        import numpy as np
        import coordgate_keras
        import keras

        assert "coordgate_keras.zoo" not in sys.modules
        folder = {str(tmp_path)!r}
        for name in {list_models()!r}:
            model = keras.saving.load_model(
                f"{{folder}}/{{name}}.keras", safe_mode=True
            )
            x = np.load(f"{{folder}}/{{name}}_x.npy")
            np.save(f"{{folder}}/{{name}}_y.npy", keras.ops.convert_to_numpy(model(x)))
        """
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for name in list_models():
        np.testing.assert_allclose(
            np.load(tmp_path / f"{name}_y.npy"), expected[name], rtol=1e-5, atol=1e-6
        )


@pytest.mark.slow  # a subprocess that imports TensorFlow
def test_subpackages_load_on_first_use_and_import_prints_nothing():
    result = _python(
        """
        import sys
        import coordgate_keras
        import keras

        keras.ops.sum(keras.ops.ones((3,)))  # First op: device set-up logs.
        heavy = ["ai_edge_litert", "coordgate_keras.tflite", "coordgate_keras.data"]
        assert not [m for m in heavy if m in sys.modules], sys.modules.keys()
        assert callable(coordgate_keras.tflite.export_tflite)
        assert "ai_edge_litert" in sys.modules
        assert coordgate_keras.zoo.list_models("unet_d1") == ["unet_d1"]
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == "ok\n"
    assert result.stderr == ""


# A second fresh TensorFlow process (about 9 s of CPU); the quiet default is
# checked by the test above.
@pytest.mark.slow
def test_verbose_environment_shows_the_start_up_logs():
    result = _python("import coordgate_keras", COORDGATE_KERAS_VERBOSE="1")
    assert result.returncode == 0
    if keras.backend.backend() == "tensorflow":
        assert "oneDNN" in result.stderr or "cuda" in result.stderr.lower()


def test_top_level_attributes():
    assert {"zoo", "data", "tflite", "layers", "utils"} <= set(dir(coordgate_keras))
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        coordgate_keras.nope  # noqa: B018


def test_version_is_written_once():
    assert coordgate_keras.__version__ == importlib.metadata.version("coordgate-keras")
    with open(os.path.join(ROOT, "pyproject.toml")) as f:
        pyproject = f.read()
    assert 'dynamic = ["version"]' in pyproject
    assert "\nversion = " not in pyproject.split("[tool.setuptools.dynamic]")[0]
