"""`train(config, workdir)`: the whole training job, resumable; `evaluate`."""

import contextlib
import math
import os
import random
import time

import keras
import numpy as np

from coordgate_keras.training import _callbacks, _data, _runtime, _workdir
from coordgate_keras.training import config as config_lib
from coordgate_keras.training.losses import get_loss
from coordgate_keras.training.metrics import psnr, psnr_metric, ssim
from coordgate_keras.utils import argument_validation as av
from coordgate_keras.utils import atomic_io

METRIC_KEYS = ("steps", "psnr", "ssim", "psnr_blurred", "ssim_blurred", "seconds")


def evaluate(model, blurred, sharp, batch_size=16, origins=None):
    """PSNR and SSIM of `model(blurred)` and of `blurred`, against `sharp`.

    The model's output is clipped to `[0, 1]`; both metrics are averaged over
    the examples (per-example PSNR, then the mean). The last batch is padded
    to `batch_size` so that data-parallel models always see full batches.

    Args:
        model: a `keras.Model` mapping blurred to sharp images.
        blurred: array `(n, ...)` of model inputs in `[0, 1]`.
        sharp: array `(n, ...)` of targets in `[0, 1]`.
        batch_size: int. Prediction batch size.
        origins: int array `(n, 2)` or None. For a frame model (two inputs),
            the origin of each blurred window in its frame.

    Returns:
        A dict of Python floats: `psnr`, `ssim` (of the model's output),
        `psnr_blurred`, `ssim_blurred` (of the input).

    Example:

    >>> import numpy as np, keras
    >>> from coordgate_keras.training import evaluate
    >>> identity = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Identity()])
    >>> x = np.random.default_rng(0).random((4, 16, 16, 1)).astype("float32")
    >>> m = evaluate(identity, x * 0.9, x)
    >>> round(m["psnr"] - m["psnr_blurred"], 6)
    0.0
    """
    batch_size = av.positive_int(batch_size, "batch_size")
    blurred = np.asarray(blurred, dtype=np.float32)
    sharp = np.asarray(sharp, dtype=np.float32)
    if blurred.shape != sharp.shape or len(blurred) == 0:
        raise av.invalid_value(
            None,
            "blurred",
            "a non-empty array of the shape of `sharp`",
            f"blurred.shape={blurred.shape}, sharp.shape={sharp.shape}",
        )
    outputs = []
    for start in range(0, len(blurred), batch_size):
        chunk = blurred[start : start + batch_size]
        n = len(chunk)
        if n < batch_size:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch_size - n, 0)])
        if origins is not None:
            where = np.asarray(origins[start : start + batch_size], np.int32)
            where = np.concatenate([where, np.repeat(where[-1:], batch_size - n, 0)])
            chunk = [chunk, where]
        out = model.predict_on_batch(chunk)
        outputs.append(np.asarray(keras.ops.convert_to_numpy(out), np.float32)[:n])
    restored = np.clip(np.concatenate(outputs), 0.0, 1.0)
    result = {}
    for key, images in (("", restored), ("_blurred", blurred)):
        result["psnr" + key] = _mean(psnr(sharp, images))
        result["ssim" + key] = _mean(ssim(sharp, images))
    return result


def evaluate_frames(model, frames, batch_size=16):
    """PSNR of whole held-out frames restored tile by tile by a frame model.

    The frames are cut into the held-out tiles (`frames.eval_origins`: a grid
    of tile steps, the last row and column flush with the far edges); each
    tile's output is pasted at its origin (later tiles over earlier ones where
    the last row and column overlap), clipped to `[0, 1]`, and the frame scored
    against its sharp frame (per-frame PSNR, then the mean).

    Returns:
        A dict: `psnr_frames`, `psnr_frames_blurred`.
    """
    (th, tw), blurred = frames.tile_shape, frames.blurred_frames
    tiles = np.stack(
        [
            blurred[f, r : r + th, c : c + tw]
            for f, (r, c) in zip(frames.eval_frame_index, frames.eval_origins)
        ]
    )
    restored = np.zeros_like(blurred)
    for start in range(0, len(tiles), batch_size):
        chunk = [
            tiles[start : start + batch_size],
            frames.eval_origins[start : start + batch_size],
        ]
        out = np.asarray(
            keras.ops.convert_to_numpy(model.predict_on_batch(chunk)), np.float32
        )
        for i, tile in enumerate(out):
            f = frames.eval_frame_index[start + i]
            r, c = frames.eval_origins[start + i]
            restored[f, r : r + th, c : c + tw] = tile
    restored = np.clip(restored, 0.0, 1.0)
    return {
        "psnr_frames": _mean(psnr(frames.sharp_frames, restored)),
        "psnr_frames_blurred": _mean(psnr(frames.sharp_frames, blurred)),
    }


def load_trained(workdir, input_shape=None):
    """The network of a finished run, rebuilt in float32 with its weights.

    `final.keras` keeps the training precision (e.g. `mixed_bfloat16`); this
    builds `config.model` with the run's builder arguments under the float32
    policy and copies the weights in, which is what a user of the weights
    runs.

    Args:
        workdir: str. A finished `train()` workdir.
        input_shape: tuple or None. Input shape without the batch axis; None
            uses the builder's default (any size for U-Nets), or the size the
            run trained at when its weights depend on it (MultiWienerNet).

    Returns:
        A float32 `keras.Model`.
    """
    from coordgate_keras.zoo import create_model

    cfg = _as_config(os.path.join(os.fspath(workdir), "config.json"))
    final = keras.saving.load_model(
        os.path.join(os.fspath(workdir), "final.keras"), compile=False
    )
    kwargs = builder_kwargs(cfg, input_shape, initial=False)
    trained = final.get_weights()
    with _precision("float32"):
        model = create_model(cfg.model, input_shape=input_shape, **kwargs)
        if input_shape is None and [w.shape for w in model.weights] != [
            w.shape for w in trained
        ]:
            # Weights that depend on the input size (MultiWienerNet's
            # image-size PSFs): rebuild at the size the run trained at.
            model = create_model(cfg.model, input_shape=final.input_shape[1:], **kwargs)
    model.set_weights(trained)
    return model


def heldout_data(config):
    """The held-out `(blurred, sharp)` pairs `train(config)` scores against.

    They depend only on the data fields of the config (`data`, `eval_data`,
    `image_size`, `psf`, `noise`, `eval_images`, `eval_seed`), not on `seed`
    or the model, so runs that differ elsewhere are scored on the same pairs.
    Blurred with the exact NumPy operator (`data.blur_fast`).

    Args:
        config: `TrainConfig` (or a dict / path, as for `train`).

    Returns:
        Tuple of float32 arrays `(blurred, sharp)`.
    """
    return _data.heldout(_as_config(config))


def _mean(values):
    return float(np.mean(keras.ops.convert_to_numpy(values)))


def train(config, workdir, verbose="auto", cache_dir=None):
    """Trains `config.model` as `config` says, in `workdir`; resumes if started.

    Writes to `workdir`: `config.json` (the full config), `history.csv` (one
    row per Keras epoch: step, loss, training PSNR, learning rate, held-out
    PSNR/SSIM where evaluated, seconds), `metrics.json`, `final.keras`,
    `last.keras` (every `checkpoint_every` steps), `best.keras` (best held-out
    PSNR), `backup/` (`BackupAndRestore`) and TensorBoard `logs/` (TensorFlow
    backend). Every `.keras` and `.json` file is written atomically.

    Running again with the same workdir continues from the last backup (a
    run killed at any instant, during a checkpoint write included, loses at
    most `checkpoint_every` steps: each checkpoint replaces the previous one
    whole); a finished run just returns its metrics. A workdir whose
    `config.json` differs from `config` is refused, naming the fields.

    One run per workdir: `workdir/.lock` is held (`fcntl.flock`, released by
    the operating system however the process ends) and a second run raises
    `WorkdirLockedError` at once, naming the holder's PID; in a multi-worker
    run, process 0 holds it. `config.json` is written once data and model
    are built, so a call that fails before leaves the workdir as it was.

    Args:
        config: `TrainConfig`, a dict of its fields, or a config file path /
            recipe name (see `load_config`).
        workdir: str or path-like. Output folder (created if missing).
        verbose: `"auto"` (Keras progress bar on a terminal, else a line every
            `log_every` steps), 0 (silent), 1 (progress bar) or 2 (lines).
        cache_dir: str or None. Where the scene pool is cached; defaults to
            `$COORDGATE_KERAS_CACHE` or `~/.cache/coordgate_keras`.

    Returns:
        The metrics dict written to `metrics.json`: `steps`, held-out `psnr`,
        `ssim`, `psnr_blurred`, `ssim_blurred`, `seconds`, `backend`, `xla`,
        `precision`, `strategy`, `num_devices`, `simulator`, `num_params`,
        `model`, `best_psnr`, `best_step`, `images_per_second`.
    """
    cfg = _as_config(config)
    workdir = os.fspath(workdir)
    if verbose not in ("auto", 0, 1, 2):
        raise av.invalid_value(
            None, "verbose", "'auto', 0, 1 or 2", f"verbose={verbose!r}"
        )
    line_progress = verbose == 2 or (verbose == "auto" and not _callbacks.terminal())
    keras_verbose = (
        1 if verbose == 1 or (verbose == "auto" and not line_progress) else 0
    )
    log = _logger(verbose)
    runtime = None
    if cfg.strategy == "multi_worker":
        # Only process 0 holds the workdir's lock: find out which one this is.
        runtime = _runtime.resolve(cfg, _data.is_1d(cfg.model))
    if runtime is None or runtime.is_chief:
        lock = _workdir.locked(workdir)
    else:
        os.makedirs(workdir, exist_ok=True)
        lock = contextlib.nullcontext()
    with lock:
        return _train_locked(
            cfg, workdir, runtime, cache_dir, verbose, log, line_progress, keras_verbose
        )


def _train_locked(
    cfg, workdir, runtime, cache_dir, verbose, log, line_progress, keras_verbose
):
    finished = _check_workdir(cfg, workdir)
    if finished is not None:
        log(f"{workdir} holds a finished run; nothing to do")
        if verbose != 0:
            print(format_metrics(finished), flush=True)
        return finished
    model_is_1d = _data.is_1d(cfg.model)
    runtime = runtime or _runtime.resolve(cfg, model_is_1d)
    if not runtime.is_chief:
        # Other workers of a multi-worker run keep their files (backup
        # included) apart; the chief's are the run's.
        workdir = os.path.join(workdir, f"worker-{runtime.worker_index}")
        os.makedirs(workdir, exist_ok=True)
    _runtime.configure_determinism(cfg, log)
    cache_dir = cache_dir or _callbacks_cache_dir()

    steps_per_epoch = math.gcd(cfg.steps, cfg.checkpoint_every)
    if cfg.eval_every:
        steps_per_epoch = math.gcd(steps_per_epoch, cfg.eval_every)
    epochs = cfg.steps // steps_per_epoch
    backup_dir = os.path.join(workdir, "backup")
    start_epoch = _backup_epoch(backup_dir)
    start_step = start_epoch * steps_per_epoch
    history_path = os.path.join(workdir, "history.csv")
    history = [
        row
        for row in _callbacks.read_history(history_path)
        if int(row["step"]) <= start_step
    ]
    seconds_before = float(history[-1]["seconds"]) if history else 0.0
    best = _read_best(workdir, start_step)

    with _precision(cfg.precision), runtime.scope():
        _set_random_seed(cfg.seed)
        data = _data.build(cfg, runtime.simulator, cache_dir, log)
        network = _build_network(cfg, data)
        trainer_model = _trainer_model(network, data)
        trainer_model.compile(
            optimizer=_optimizer(cfg),
            loss=get_loss(cfg.loss),
            metrics=[keras.metrics.MeanMetricWrapper(psnr_metric, name="psnr")],
            jit_compile=runtime.xla,
        )
        if bool(trainer_model.jit_compile) != runtime.xla:
            raise RuntimeError(
                f"Keras changed jit_compile to {trainer_model.jit_compile} (asked "
                f"{runtime.xla}); set `xla` explicitly to a mode this model supports."
            )
        log(
            f"training {cfg.model} ({network.count_params():,} params) on "
            f"{runtime.backend}, XLA {'on' if runtime.xla else 'off'}, "
            f"{cfg.precision}, strategy {runtime.strategy} ({runtime.num_devices} "
            f"device(s)), simulator {runtime.simulator}, data: {data.description}"
        )
        if start_step:
            log(f"resuming from step {start_step} ({backup_dir})")
        _data.check_finite(data.eval_blurred, "the held-out blurred images")
        _data.check_finite(data.eval_sharp, "the held-out sharp images")
        clock = _callbacks.StepClock(
            steps_per_epoch, cfg.steps, start_step, seconds_before
        )

        eval_origins = None if data.frame is None else data.frame.eval_origins

        def evaluate_fn(model):
            return evaluate(
                model,
                data.eval_blurred,
                data.eval_sharp,
                cfg.batch_size,
                origins=eval_origins,
            )

        trainer_cb = _callbacks.Trainer(
            cfg, workdir, network, clock, evaluate_fn, best, history, log, line_progress
        )
        callbacks = [trainer_cb]
        if _tensorboard_available(runtime):
            callbacks.append(
                keras.callbacks.TensorBoard(
                    os.path.join(workdir, "logs"), update_freq="epoch"
                )
            )
        else:
            log(
                "no TensorBoard logs (they need the TensorFlow backend and "
                "the `tensorboard` package)"
            )
        callbacks.append(_callbacks.StepBackup(backup_dir, clock, cfg.checkpoint_every))
        dataset = _dataset(runtime, data, start_step, cfg.steps)
        # Only now, with data and model built: a failed start leaves no
        # config.json behind to refuse the corrected command.
        cfg.save(os.path.join(workdir, "config.json"))
        started = time.perf_counter()
        trainer_model.fit(
            dataset,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            initial_epoch=start_epoch,
            callbacks=callbacks,
            verbose=keras_verbose,
            shuffle=False,
        )
        run_seconds = time.perf_counter() - started
        if trainer_cb.nan_step is not None:
            raise FloatingPointError(_nan_message(cfg, trainer_cb.nan_step, backup_dir))
        final = evaluate_fn(network)
        if data.frame is not None:
            final.update(evaluate_frames(network, data.frame, cfg.batch_size))
    atomic_io.atomic_save(os.path.join(workdir, "final.keras"), network.save)
    trained = cfg.steps - start_step
    metrics = {
        "steps": cfg.steps,
        "psnr": final["psnr"],
        "ssim": final["ssim"],
        "psnr_blurred": final["psnr_blurred"],
        "ssim_blurred": final["ssim_blurred"],
        **{k: final[k] for k in ("psnr_frames", "psnr_frames_blurred") if k in final},
        "seconds": round(clock.seconds(), 3),
        "backend": runtime.backend,
        "xla": runtime.xla,
        "precision": cfg.precision,
        "strategy": runtime.strategy,
        "num_devices": runtime.num_devices,
        "simulator": data.simulator_mode,
        "model": cfg.model,
        "num_params": int(network.count_params()),
        "best_psnr": best.get("psnr"),
        "best_step": best.get("step"),
        "images_per_second": round(
            trained * cfg.batch_size / max(run_seconds, 1e-9), 2
        ),
        "finished": True,
    }
    atomic_io.atomic_write_json(os.path.join(workdir, "metrics.json"), metrics)
    if verbose != 0:
        print(format_metrics(metrics), flush=True)
    return metrics


def format_metrics(metrics):
    """The metrics table: a header line and a value line."""
    keys = [
        "model", "steps", "psnr", "ssim", "psnr_blurred", "ssim_blurred",
        "seconds", "backend", "xla", "precision",
    ]  # fmt: skip
    cells = []
    for key in keys:
        value = metrics.get(key)
        text = f"{value:.4f}" if isinstance(value, float) else str(value)
        cells.append((key, text))
    widths = [max(len(k), len(v)) for k, v in cells]
    header = "  ".join(k.ljust(w) for (k, _), w in zip(cells, widths))
    values = "  ".join(v.ljust(w) for (_, v), w in zip(cells, widths))
    return header.rstrip() + "\n" + values.rstrip()


# === Helpers ===


def _as_config(config):
    if isinstance(config, config_lib.TrainConfig):
        return config
    if isinstance(config, dict):
        return config_lib.TrainConfig.from_dict(config)
    if isinstance(config, (str, os.PathLike)):
        return config_lib.load_config(config)
    raise av.invalid_value(
        None, "config", "a TrainConfig, a dict, or a config path", f"config={config!r}"
    )


def _logger(verbose):
    def log(message):
        if verbose != 0:
            print(f"[coordgate-train] {message}", flush=True)

    return log


def _callbacks_cache_dir():
    from coordgate_keras.training import _scene_pool

    return _scene_pool.default_cache_dir()


def _nan_message(cfg, step, backup_dir):
    hints = [f"lower `learning_rate` (now {cfg.learning_rate:g})"]
    if not cfg.warmup_steps:
        hints.append("add `warmup_steps`")
    if cfg.precision != "float32":
        hints.append(f"use precision='float32' (now {cfg.precision!r})")
    epoch = _backup_epoch(backup_dir)
    kept = (
        f"The backup in {backup_dir} holds the weights of the last checkpoint "
        f"before it; a new run in another workdir is needed after changing the "
        f"config."
        if epoch
        else "No checkpoint was reached."
    )
    return (
        f"Training stopped at step {step}: the loss is NaN or infinite. "
        f"{kept} To fix: {', '.join(hints)}."
    )


def _tensorboard_available(runtime):
    import importlib.util

    return (
        runtime.backend == "tensorflow"
        and importlib.util.find_spec("tensorboard") is not None
    )


def _check_workdir(cfg, workdir):
    """Refuses a workdir of another config; returns the metrics of a finished run."""
    path = os.path.join(workdir, "config.json")
    if not os.path.isfile(path):
        return None
    saved = config_lib.TrainConfig.from_dict(_workdir.read_json(path))
    changed = [name for name in cfg.diff(saved) if name not in config_lib.RESUME_EXEMPT]
    if changed:
        mine, theirs = cfg.to_dict(), saved.to_dict()
        details = "; ".join(
            f"{name}: saved {theirs[name]!r}, now {mine[name]!r}" for name in changed
        )
        raise av.invalid_value(
            None,
            "workdir",
            "a new folder, or the config saved in it (to resume)",
            f"workdir={workdir!r} whose config.json differs in {details}",
        )
    metrics_path = os.path.join(workdir, "metrics.json")
    if os.path.isfile(metrics_path):
        metrics = _workdir.read_json(metrics_path)
        if metrics.get("finished") and metrics.get("steps") == cfg.steps:
            return metrics
    return None


def _backup_epoch(backup_dir):
    path = os.path.join(backup_dir, "training_metadata.json")
    if not os.path.isfile(path):
        return 0
    return int(_workdir.read_json(path)["epoch"])


def _read_best(workdir, start_step):
    path = os.path.join(workdir, "best.json")
    if os.path.isfile(path):
        best = _workdir.read_json(path)
        if best.get("step", math.inf) <= start_step:
            return best
    return {}


def _set_random_seed(seed):
    """`keras.utils.set_random_seed`, without importing TensorFlow on JAX."""
    if _runtime.backend() == "tensorflow":
        keras.utils.set_random_seed(seed)
        return
    # What set_random_seed does, minus `tf.random.set_seed` (it imports TF
    # whenever TF is installed).
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils import rng_utils

    global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)
    if _runtime.backend() == "torch":
        import torch

        torch.manual_seed(seed)


@contextlib.contextmanager
def _precision(precision):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def builder_kwargs(cfg, input_shape=None, initial=True):
    """`cfg.model_kwargs` for the zoo builder, with `psfs: "field"` resolved.

    `psfs: "field"` (MultiWienerNet) becomes the stack of the training field's
    PSFs at the centres of a `sqrt(num_psfs)`-square grid
    (`PSFField.sample_psfs`) at the input's height and width (`image_size`
    when `input_shape` is None). Only the initial values depend on it, so with
    `initial=False` (a network whose weights are loaded next) it is dropped.
    """
    kwargs = dict(cfg.model_kwargs)
    if kwargs.get("psfs") == "field" and not initial:
        del kwargs["psfs"]
    elif kwargs.get("psfs") == "field":
        side = math.isqrt(kwargs.get("num_psfs") or 4)
        shape = tuple(input_shape[:2]) if input_shape else cfg.image_shape
        kwargs["psfs"] = _data.psf_field(cfg).sample_psfs(shape, (side, side))
    return kwargs


def _build_network(cfg, data):
    from coordgate_keras.zoo import create_model, load_weights

    frame = {} if data.frame is None else {"frame_shape": data.frame.frame_shape}
    network = create_model(
        cfg.model,
        input_shape=data.sample_shape,
        **frame,
        **builder_kwargs(cfg, data.sample_shape),
    )
    if cfg.init_weights is None:
        return network
    if cfg.init_weights.endswith(".weights.h5"):
        network.load_weights(cfg.init_weights)
    else:
        # Checks the weights' recorded architecture against this network.
        load_weights(network, cfg.init_weights, name=cfg.model)
    return network


def _trainer_model(network, data):
    """The compiled model: `[DeviceSimulator ->] network`, float32 input."""
    inputs = keras.Input(data.sample_shape, name="inputs", dtype="float32")
    x = inputs
    if data.simulator is not None:
        x = data.simulator(x)
    if data.frame is not None:
        origin = keras.Input((2,), name="origin", dtype="int32")
        return keras.Model(
            [inputs, origin], network([x, origin]), name=f"train_{network.name}"
        )
    return keras.Model(inputs, network(x), name=f"train_{network.name}")


def _optimizer(cfg):
    decay_steps = cfg.steps - cfg.warmup_steps
    if cfg.schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if cfg.warmup_steps else cfg.learning_rate,
            decay_steps=decay_steps,
            alpha=0.0,
            warmup_target=cfg.learning_rate if cfg.warmup_steps else None,
            warmup_steps=cfg.warmup_steps,
        )
    elif cfg.warmup_steps:
        learning_rate = keras.optimizers.schedules.PolynomialDecay(
            0.0, cfg.warmup_steps, end_learning_rate=cfg.learning_rate, power=1.0
        )
    else:
        learning_rate = cfg.learning_rate
    kwargs = {"learning_rate": learning_rate}
    if cfg.optimizer == "adamw":
        optimizer = keras.optimizers.AdamW(weight_decay=cfg.weight_decay, **kwargs)
    else:
        optimizer = keras.optimizers.Adam(
            weight_decay=cfg.weight_decay or None, **kwargs
        )
    if cfg.precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def _dataset(runtime, data, start, stop):
    """Batches `start .. stop - 1` for `fit` (tf.data on TF, a generator else)."""
    if runtime.backend == "tensorflow":
        import tensorflow as tf

        x, y = data.make_batch(start)
        if data.frame is not None:
            (x, o) = x

            def flat_batch(s):
                (xb, ob), yb = data.make_batch(int(s))
                return xb, ob, yb

            def load(step):
                xb, ob, yb = tf.numpy_function(
                    flat_batch, [step], (tf.float32, tf.int32, tf.float32)
                )
                return (
                    tf.ensure_shape(xb, x.shape),
                    tf.ensure_shape(ob, o.shape),
                ), tf.ensure_shape(yb, y.shape)

        else:

            def load(step):
                xb, yb = tf.numpy_function(
                    lambda s: data.make_batch(int(s)), [step], (tf.float32, tf.float32)
                )
                return tf.ensure_shape(xb, x.shape), tf.ensure_shape(yb, y.shape)

        dataset = tf.data.Dataset.range(start, stop).map(
            load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
        return dataset.prefetch(tf.data.AUTOTUNE)
    make_batch = data.make_batch
    if runtime.num_workers > 1:
        # Multi-process JAX: each process feeds its slice of the global batch.
        index, count = runtime.worker_index, runtime.num_workers

        def make_batch(step):
            x, y = data.make_batch(step)
            size = len(y) // count
            part = slice(index * size, (index + 1) * size)
            if isinstance(x, tuple):
                return tuple(v[part] for v in x), y[part]
            return x[part], y[part]

    return iter(_data.Prefetcher(make_batch, start, stop))
