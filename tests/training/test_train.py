"""End-to-end training: `train()`, `coordgate-train`, on TensorFlow and JAX."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import coordgate_keras  # noqa: F401  (registers the layers for load_model)
from coordgate_keras import data
from coordgate_keras.training import (
    TrainConfig,
    evaluate,
    get_loss,
    heldout_data,
    train,
)
from coordgate_keras.zoo import create_model

TINY = dict(
    model="coordgate_unet_d1",
    model_kwargs={"residual": True, "base_filters": 4},
    image_size=32,
    psf={"kind": "gaussian", "grid_shape": [4, 4], "kernel_size": 9},
    train_images=8,
    eval_images=4,
    batch_size=4,
    steps=4,
    eval_every=2,
    checkpoint_every=2,
    log_every=1,
)
EXPECTED_FILES = {
    "config.json",
    "history.csv",
    "metrics.json",
    "final.keras",
    "last.keras",
    "best.keras",
    "best.json",
    "backup",
}


def _env(backend):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("XLA_FLAGS", None)
    return env


def _learnability(backend_name):
    """Loss of a tiny model on one fixed batch after 50 Adam steps / before."""
    field = data.gaussian_psf_field(grid_shape=(2, 2), kernel_size=7)
    sharp = data.microscopy_scenes(4, (32, 32), seed=0)
    blurred = data.blur_fast(sharp, field)
    model = create_model("unet_d1", input_shape=(32, 32, 1), base_filters=8)
    model.compile(
        keras.optimizers.Adam(3e-3),
        loss=get_loss("mse"),
        jit_compile=backend_name == "jax",
    )
    before = model.evaluate(blurred, sharp, verbose=0)
    model.fit(blurred, sharp, batch_size=4, epochs=50, verbose=0, shuffle=False)
    after = model.evaluate(blurred, sharp, verbose=0)
    return before, after


@pytest.mark.tf_only(reason="TF run")
def test_learnability_tensorflow():
    before, after = _learnability("tensorflow")
    assert after < 0.2 * before, (before, after)


@pytest.mark.tf_only(reason="TF run")
def test_train_end_to_end_tensorflow(tmp_path, capsys):
    cfg = TrainConfig(**TINY)
    workdir = tmp_path / "run"
    metrics = train(cfg, workdir, verbose=2, cache_dir=tmp_path / "cache")
    assert EXPECTED_FILES <= set(os.listdir(workdir))
    for key in ("psnr", "ssim", "psnr_blurred", "ssim_blurred", "seconds"):
        assert np.isfinite(metrics[key]), key
    assert metrics["steps"] == 4 and metrics["backend"] == "tensorflow"
    assert metrics["xla"] is False  # auto on a CPU-only machine
    assert metrics["simulator"] == "host" and metrics["precision"] == "float32"
    with open(workdir / "metrics.json") as f:
        assert json.load(f) == metrics
    assert TrainConfig.from_file(workdir / "config.json") == cfg
    lines = (workdir / "history.csv").read_text().splitlines()
    assert lines[0].startswith("step,loss,psnr")
    assert [int(line.split(",")[0]) for line in lines[1:]] == [2, 4]
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-2].split()[:3] == ["model", "steps", "psnr"]
    assert "XLA off" in "\n".join(out)

    # The saved model loads after `import coordgate_keras` and reproduces the metric.
    model = keras.saving.load_model(workdir / "final.keras")
    blurred, sharp = heldout_data(cfg)
    again = evaluate(model, blurred, sharp, batch_size=4)
    assert again["psnr"] == pytest.approx(metrics["psnr"], abs=1e-4)
    assert again["psnr_blurred"] == pytest.approx(metrics["psnr_blurred"], abs=1e-6)

    # Running again returns the finished run; another config is refused.
    assert train(cfg, workdir, verbose=0) == metrics
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `workdir`. Expected a new folder, or the config saved in it \(to resume\). Received: workdir=.* whose config.json differs in steps: saved 4, now 6; learning_rate: saved 0.001, now 0.002",
    ):
        train(cfg.replace(steps=6, learning_rate=2e-3), workdir, verbose=0)


def test_evaluate_matches_numpy():
    identity = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Identity()])
    sharp = np.random.default_rng(0).random((5, 16, 16, 1)).astype("float32")
    blurred = np.clip(sharp + 0.05, 0, 1)
    m = evaluate(identity, blurred, sharp, batch_size=2)
    expected = np.mean(
        [10 * np.log10(1 / np.mean((blurred[i] - sharp[i]) ** 2)) for i in range(5)]
    )
    assert m["psnr"] == pytest.approx(expected, rel=1e-5)
    assert m["psnr"] == m["psnr_blurred"] and m["ssim"] == m["ssim_blurred"]
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `blurred`. Expected a non-empty array of the shape of `sharp`. Received: blurred.shape=\(5, 16, 16, 1\), sharp.shape=\(4, 16, 16, 1\)",
    ):
        evaluate(identity, blurred, sharp[:4])


JAX_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, traceback

    # TensorFlow is installed here but not on the GPU machines: hide it, and
    # record who asks for it.
    ATTEMPTS = []

    class HideTensorFlow:
        def find_spec(self, name, path, target=None):
            if name == "tensorflow" or name.startswith("tensorflow."):
                frames = [f for f in traceback.extract_stack() if "importlib" not in f.filename]
                ATTEMPTS.append(frames[-2].filename)
                raise ImportError("tensorflow is hidden in this test")

    sys.meta_path.insert(0, HideTensorFlow())
    sys.path.insert(0, {tests!r})
    from training.test_train import TINY, _learnability
    import csv
    from coordgate_keras.training import TrainConfig, cli, evaluate, heldout_data, train
    import keras
    before, after = _learnability("jax")
    workdir = {workdir!r}
    TrainConfig(**TINY).save(workdir + ".yaml")
    code = cli.main(["--workdir", workdir, "--config", workdir + ".yaml",
                     "--cache-dir", {cache!r}, "--verbose", "2"])
    with open(os.path.join(workdir, "metrics.json")) as f:
        metrics = json.load(f)
    model = keras.saving.load_model(os.path.join(workdir, "final.keras"))
    blurred, sharp = heldout_data(TrainConfig(**TINY))
    again = evaluate(model, blurred, sharp, batch_size=4)
    # The same run on two logical devices (XLA_FLAGS) with DataParallel.
    parallel = train(TrainConfig(**TINY).replace(strategy="data_parallel"),
                     workdir + "_dp", verbose=0, cache_dir={cache!r})
    histories = {{}}
    for name, path in (("none", workdir), ("data_parallel", workdir + "_dp")):
        with open(os.path.join(path, "history.csv")) as f:
            histories[name] = list(csv.DictReader(f))
    distribution = dict(
        none=dict(metrics=metrics, history=histories["none"]),
        data_parallel=dict(metrics=parallel, history=histories["data_parallel"]),
    )
    print("RESULT", json.dumps(dict(distribution=distribution,
        code=code, before=float(before), after=float(after), metrics=metrics,
        again=again["psnr"], files=sorted(os.listdir(workdir)),
        tensorflow="tensorflow" in sys.modules, attempts=sorted(set(ATTEMPTS)))))
    """
)


# A subprocess training on JAX (its own start, two logical devices): `make
# test-slow`; the in-process TensorFlow run above covers the trainer by default.
@pytest.mark.slow
def test_train_end_to_end_jax_without_tensorflow(tmp_path, check_match):
    """Learnability, the CLI, and DataParallel on two logical devices matching
    one device (tolerance: see test_distribution.py), on JAX in a subprocess
    that never imports TF."""
    tests_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = JAX_SCRIPT.format(
        tests=tests_dir, workdir=str(tmp_path / "run"), cache=str(tmp_path / "cache")
    )
    env = _env("jax")
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    proc = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1].partition("RESULT ")[2])
    assert result["tensorflow"] is False
    # Only Keras' optional-TF probe (`module_utils.LazyModule.available`, e.g.
    # in `serialize_keras_object` on save) looks for TF; it tolerates its
    # absence. Nothing in coordgate_keras imports it.
    assert all(
        path.endswith(os.path.join("keras", "src", "utils", "module_utils.py"))
        for path in result["attempts"]
    ), result["attempts"]
    assert result["after"] < 0.2 * result["before"], result
    assert result["code"] == 0
    metrics = result["metrics"]
    assert metrics["backend"] == "jax" and metrics["xla"] is True
    assert metrics["simulator"] == "device" and metrics["steps"] == 4
    assert np.isfinite(
        [metrics[k] for k in ("psnr", "ssim", "psnr_blurred", "ssim_blurred")]
    ).all()
    assert EXPECTED_FILES <= set(result["files"])
    assert result["again"] == pytest.approx(metrics["psnr"], abs=1e-4)
    # The metrics table is the last thing the CLI prints (before RESULT).
    assert lines[-3].split()[:3] == ["model", "steps", "psnr"]
    check_match(result["distribution"], "data_parallel")
    assert result["distribution"]["data_parallel"]["metrics"]["simulator"] == "device"


@pytest.mark.tf_only(reason="TF run")
def test_xla_setting_is_resolved_honoured_and_logged(tmp_path, capsys):
    from coordgate_keras.training import _runtime

    cfg = TrainConfig(**TINY)
    resolved = {
        mode: _runtime.resolve(cfg.replace(xla=mode), False).xla
        for mode in ("auto", "on", "off")
    }
    assert resolved == {"auto": False, "on": True, "off": False}  # CPU-only TF
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `xla`. Expected 'off' or 'auto' with deterministic=True on TensorFlow \(Keras turns XLA off under op determinism\). Received: xla='on'",
    ):
        _runtime.resolve(cfg.replace(xla="on", deterministic=True), False)
    tiny = cfg.replace(model="unet_d1", steps=2, eval_every=0, xla="on")
    metrics = train(tiny, tmp_path / "run", verbose=2, cache_dir=tmp_path / "cache")
    assert metrics["xla"] is True and np.isfinite(metrics["psnr"])
    assert "XLA on" in capsys.readouterr().out


@pytest.mark.slow  # a MultiWienerNet training
def test_multiwienernet_psfs_field_starts_from_the_field_psfs(tmp_path):
    from coordgate_keras.training import builder_kwargs, load_trained, psf_field

    cfg = TrainConfig(**TINY).replace(
        model="multiwienernet",
        model_kwargs={"residual": True, "psfs": "field", "depth": 1, "base_filters": 4},
        steps=2,
        eval_every=0,
        checkpoint_every=2,
    )
    psfs = builder_kwargs(cfg)["psfs"]
    assert psfs.shape == (32, 32, 4)
    # 2x2 samples of a 32x32 image: pixel centres of the cells (7.5, 23.5),
    # each PSF (9x9) centred at pixel (16, 16).
    field = psf_field(cfg)
    for index, (row, col) in enumerate(
        [(7.5, 7.5), (7.5, 23.5), (23.5, 7.5), (23.5, 23.5)]
    ):
        expected = np.zeros((32, 32))
        expected[12:21, 12:21] = field.psf_at(row, col, (32, 32))
        np.testing.assert_allclose(psfs[..., index], expected, atol=1e-7)
    model = create_model(
        "multiwienernet", input_shape=(32, 32, 1), **builder_kwargs(cfg)
    )
    initial = model.get_layer("multiwienernet_wiener").get_weights()[0]
    np.testing.assert_allclose(initial, psfs)

    workdir = tmp_path / "run"
    train(cfg, str(workdir), verbose=0)
    final = keras.saving.load_model(workdir / "final.keras", compile=False)
    rebuilt = load_trained(str(workdir), input_shape=(32, 32, 1))
    # Without a shape: the builder's default (256x256) does not fit image-size
    # PSFs trained at 32x32, so it is rebuilt at the trained size.
    default = load_trained(str(workdir))
    assert default.input_shape == (None, 32, 32, 1)
    for model in (rebuilt, default):
        assert len(model.weights) == len(final.weights)
        for a, b in zip(final.get_weights(), model.get_weights()):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "kwargs",
    [{"psfs": [[1.0]]}, {"psfs": "gaussian"}, {"psfs": "field", "num_psfs": 3}],
)
def test_psfs_in_model_kwargs_must_be_field_with_a_square_count(kwargs):
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `model_kwargs`. Expected `psfs: field`",
    ):
        TrainConfig(**TINY).replace(model="multiwienernet", model_kwargs=kwargs)
