"""Multi-worker training on one machine: two JAX processes over localhost.

`DataParallel` over the processes after `jax.distributed.initialize` (gloo
collectives on CPU) matches the one-process run on the same global batch
(tolerance as in test_distribution.py). Slow: three interpreters. On
TensorFlow, `multi_worker` is refused (test_distribution.py): Keras 3's `fit`
fails under MultiWorkerMirroredStrategy (tensorflow/tensorflow#72388).
"""

import csv
import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from coordgate_keras.training import TrainConfig, train

    cfg = TrainConfig(
        model="coordgate_unet_d1", model_kwargs={{"residual": True, "base_filters": 4}},
        image_size=32, psf={{"kind": "gaussian", "grid_shape": [2, 2], "kernel_size": 7}},
        train_images=16, eval_images=4, batch_size=4, steps=8, eval_every=4,
        checkpoint_every=4, simulator="host", strategy={strategy!r},
    )
    metrics = train(cfg, {workdir!r}, verbose=0, cache_dir={cache!r})
    print("RESULT", json.dumps(metrics))
    """
)


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start(backend, strategy, workdir, cache, extra_env):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", **extra_env)
    script = SCRIPT.format(strategy=strategy, workdir=str(workdir), cache=str(cache))
    return subprocess.Popen(
        [sys.executable, "-c", script],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc):
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1].partition("RESULT ")[2])


def _history(workdir):
    with open(os.path.join(workdir, "history.csv")) as f:
        return list(csv.DictReader(f))


def _compare(tmp_path, backend, envs, check_match):
    cache = tmp_path / "cache"
    single = _finish(_start(backend, "none", tmp_path / "single", cache, {}))
    workers = [
        _start(backend, "multi_worker", tmp_path / "multi", cache, env) for env in envs
    ]
    try:
        results = [_finish(p) for p in workers]
    finally:
        for p in workers:
            if p.poll() is None:
                p.kill()
            p.communicate()
    assert results[0]["num_devices"] == results[1]["num_devices"] == 2
    # The chief owns the workdir; the other worker kept its files apart.
    assert os.path.isfile(tmp_path / "multi" / "metrics.json")
    assert os.path.isdir(tmp_path / "multi" / "worker-1" / "backup")
    check_match(
        {
            "none": {"metrics": single, "history": _history(tmp_path / "single")},
            "multi_worker": {
                "metrics": results[0],
                "history": _history(tmp_path / "multi"),
            },
        },
        "multi_worker",
    )


def test_jax_multi_process_data_parallel(tmp_path, check_match):
    (port,) = _free_ports(1)
    envs = [
        {
            "KERAS_DISTRIBUTION_JOB_ADDRESSES": f"127.0.0.1:{port}",
            "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
            "KERAS_DISTRIBUTION_PROCESS_ID": str(i),
        }
        for i in range(2)
    ]
    _compare(tmp_path, "jax", envs, check_match)
