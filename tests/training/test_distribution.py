"""Two logical devices: TF `MirroredStrategy` (and JAX `DataParallel`, tested
in test_train.py's JAX subprocess) match one device on the same global batch.

Tolerance: the data, weights, schedule and (on JAX) the simulator's random
numbers are the same with one and two devices, so the only difference is the
float32 order in which the per-device gradients are reduced. Observed
agreement is ~1e-7 relative after 8 Adam steps; 1e-4 on the loss and 1e-3 dB
on the held-out PSNR leave room for other summation orders while any change
in what is trained (other batches, other noise, a replica left untrained)
moves them by orders of magnitude more.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import csv, json, os, sys
    if os.environ["KERAS_BACKEND"] == "tensorflow":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
        multi = "mirrored"
    else:
        multi = "data_parallel"
    from coordgate_keras.training import TrainConfig, train

    cfg = TrainConfig(
        model="coordgate_unet_d1", model_kwargs={{"residual": True, "base_filters": 4}},
        image_size=32, psf={{"kind": "gaussian", "grid_shape": [2, 2], "kernel_size": 7}},
        train_images=16, eval_images=4, batch_size=4, steps=8, eval_every=4,
        checkpoint_every=4,
    )
    out = {{}}
    for strategy in ("none", multi):
        workdir = os.path.join({tmp!r}, strategy)
        metrics = train(cfg.replace(strategy=strategy), workdir, verbose=0,
                        cache_dir=os.path.join({tmp!r}, "cache"))
        with open(os.path.join(workdir, "history.csv")) as f:
            out[strategy] = dict(metrics=metrics, history=list(csv.DictReader(f)))
    if multi == "mirrored":
        try:
            train(cfg.replace(strategy=multi, xla="on"), os.path.join({tmp!r}, "x"))
        except ValueError as e:
            out["xla_on_error"] = str(e)
    print("RESULT", json.dumps(out))
    """
)


def _run(backend, tmp_path):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(tmp=str(tmp_path))],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1].partition("RESULT ")[2])


# 21 s on 2 cores; the default run checks data parallelism on JAX
# (test_train.py's end-to-end JAX test): `make test-slow`.
@pytest.mark.slow
def test_tensorflow_mirrored_strategy_matches_one_device(tmp_path, check_match):
    result = _run("tensorflow", tmp_path)
    check_match(result, "mirrored")
    # The default XLA mode is off there; asking for it is refused up front.
    assert result["none"]["metrics"]["xla"] is False
    assert result["mirrored"]["metrics"]["xla"] is False
    assert result["xla_on_error"].startswith(
        "Invalid value for argument `xla`. Expected 'off' or 'auto' with a "
        "TensorFlow strategy on CPU devices (XLA inside MirroredStrategy over "
        "CPU devices fails"
    )


@pytest.mark.tf_only(reason="TF run")
def test_tensorflow_multi_worker_is_refused(tmp_path):
    from coordgate_keras.training import TrainConfig, train

    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `strategy`. Expected 'multi_worker' on the JAX backend, or 'mirrored' \(one host\) on TensorFlow: Keras 3's `fit` fails under TensorFlow's MultiWorkerMirroredStrategy .*tensorflow/tensorflow#72388\). Received: strategy='multi_worker' on the TensorFlow backend",
    ):
        train(TrainConfig(strategy="multi_worker", steps=2), tmp_path, verbose=0)
