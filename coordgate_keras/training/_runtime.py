"""Backend facts and the explicit XLA / distribution / simulator choices.

Nothing here imports TensorFlow unless the Keras backend is TensorFlow.
"""

import contextlib
import dataclasses
import os

import keras

from coordgate_keras.utils import argument_validation as av


def backend():
    return keras.backend.backend()


def gpu_count():
    """GPUs visible to the current Keras backend."""
    name = backend()
    if name == "jax":
        import jax

        return sum(1 for d in jax.devices() if d.platform == "gpu")
    if name == "tensorflow":
        import tensorflow as tf

        return len(tf.config.list_physical_devices("GPU"))
    if name == "torch":
        import torch

        return torch.cuda.device_count()
    return 0


def _cpu_devices_tf():
    import tensorflow as tf

    return [d.name for d in tf.config.list_logical_devices("CPU")]


@dataclasses.dataclass
class Runtime:
    """The resolved execution choices of a run (logged and written to metrics)."""

    backend: str
    gpus: int
    strategy: str
    num_devices: int
    xla: bool
    simulator: str
    tf_strategy: object = None
    jax_distribution: object = None
    # Multi-worker / multi-process: this process's index and the number of
    # processes feeding data (JAX: each feeds its slice of the global batch).
    worker_index: int = 0
    num_workers: int = 1
    is_chief: bool = True

    @contextlib.contextmanager
    def scope(self):
        """Model building and compiling happen inside this scope."""
        if self.tf_strategy is not None:
            with self.tf_strategy.scope():
                yield
        elif self.jax_distribution is not None:
            with self.jax_distribution.scope():
                yield
        else:
            yield


def resolve(cfg, model_is_1d):
    """Resolves `strategy`, `xla` and `simulator` of `cfg` for this machine."""
    name = backend()
    if name == "jax" and cfg.strategy == "multi_worker":
        # Before anything asks JAX for its devices.
        _initialize_jax_processes()
    gpus = gpu_count()
    strategy = cfg.strategy
    if strategy == "auto":
        if gpus > 1:
            strategy = "mirrored" if name == "tensorflow" else "data_parallel"
        else:
            strategy = "none"
    tf_strategy = jax_distribution = None
    num_devices = 1
    worker_index, num_workers, is_chief = 0, 1, True
    if strategy == "multi_worker" and name == "tensorflow":
        raise av.invalid_value(
            None,
            "strategy",
            "'multi_worker' on the JAX backend, or 'mirrored' (one host) on "
            "TensorFlow: Keras 3's `fit` fails under TensorFlow's "
            "MultiWorkerMirroredStrategy ('Invalid reduction dimension 0 for "
            "input with 0 dimensions', tensorflow/tensorflow#72388)",
            f"strategy={cfg.strategy!r} on the TensorFlow backend",
        )
    if strategy == "mirrored" and name == "tensorflow":
        import tensorflow as tf

        devices = [f"/gpu:{i}" for i in range(gpus)] if gpus else _cpu_devices_tf()
        tf_strategy = tf.distribute.MirroredStrategy(devices)
        num_devices = tf_strategy.num_replicas_in_sync
    elif strategy in ("data_parallel", "multi_worker") and name == "jax":
        if strategy == "multi_worker":
            import jax

            worker_index, num_workers = jax.process_index(), jax.process_count()
            is_chief = worker_index == 0
        devices = keras.distribution.list_devices()
        jax_distribution = keras.distribution.DataParallel(devices=devices)
        if num_workers > 1:
            # Every process feeds its own slice of the global batch (see train).
            jax_distribution.auto_shard_dataset = False
        num_devices = len(devices)
    elif strategy != "none":
        engine = {
            "mirrored": "the TensorFlow backend",
            "data_parallel": "the JAX backend",
            "multi_worker": "the JAX backend",
        }[strategy]
        raise av.invalid_value(
            None,
            "strategy",
            f"a strategy of the running backend ('{strategy}' needs {engine}; "
            f"this is {name})",
            f"strategy={cfg.strategy!r}",
        )
    if cfg.batch_size % num_devices:
        raise av.invalid_value(
            None,
            "batch_size",
            f"a multiple of the number of devices ({num_devices})",
            f"batch_size={cfg.batch_size}",
        )

    xla = _resolve_xla(cfg, name, gpus, tf_strategy)
    simulator = cfg.simulator
    if model_is_1d or cfg.data.startswith("dataset:"):
        simulator = "host" if not cfg.data.startswith("dataset:") else "none"
    elif simulator == "auto":
        simulator = "device" if (gpus > 0 or name == "jax") else "host"
    if cfg.batch_size % num_workers:
        raise av.invalid_value(
            None,
            "batch_size",
            f"a multiple of the number of processes ({num_workers})",
            f"batch_size={cfg.batch_size}",
        )
    return Runtime(
        worker_index=worker_index,
        num_workers=num_workers,
        is_chief=is_chief,
        backend=name,
        gpus=gpus,
        strategy=strategy,
        num_devices=num_devices,
        xla=xla,
        simulator=simulator,
        tf_strategy=tf_strategy,
        jax_distribution=jax_distribution,
    )


def _initialize_jax_processes():
    """`jax.distributed.initialize` through Keras (KERAS_DISTRIBUTION_*
    variables or the cluster's own environment, e.g. SLURM)."""
    import jax

    if jax.distributed.is_initialized():
        return  # the caller did it
    # CPU processes exchange gradients through gloo (GPUs use NCCL regardless).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    keras.distribution.initialize()


def _resolve_xla(cfg, name, gpus, tf_strategy):
    if cfg.xla == "auto":
        if name == "jax":
            # jit_compile=False on JAX dispatches op by op: never what one wants.
            return True
        if name == "tensorflow":
            return gpus > 0 and tf_strategy is None and not cfg.deterministic
        return False
    xla = cfg.xla == "on"
    if xla and name == "tensorflow":
        if cfg.deterministic:
            raise av.invalid_value(
                None,
                "xla",
                "'off' or 'auto' with deterministic=True on TensorFlow (Keras "
                "turns XLA off under op determinism)",
                f"xla={cfg.xla!r}",
            )
        if tf_strategy is not None and gpus == 0:
            raise av.invalid_value(
                None,
                "xla",
                "'off' or 'auto' with a TensorFlow strategy on CPU devices (XLA "
                "inside MirroredStrategy over CPU devices fails: 'Trying to "
                "access resource ... located in device CPU:1 from device CPU:0')",
                f"xla={cfg.xla!r}",
            )
    return xla


def configure_determinism(cfg, log):
    if not cfg.deterministic:
        return
    if backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    elif backend() == "jax" and "xla_gpu_deterministic_ops" not in os.environ.get(
        "XLA_FLAGS", ""
    ):
        log(
            "deterministic=True on JAX: set XLA_FLAGS=--xla_gpu_deterministic_ops=true "
            "before starting Python for deterministic GPU reductions"
        )
