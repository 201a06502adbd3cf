"""What machine this is: the CPU model, the cores this process may use and the
accelerators the active Keras backend sees.

Recorded by weight sidecars (`training.publish_weights`) and by the benchmarks.
"""

import os
import platform


def cpu_model():
    """The CPU model name from `/proc/cpuinfo`, else `platform.processor()`.

    Example:

    >>> from coordgate_keras.utils.system import cpu_model
    >>> isinstance(cpu_model(), str) and len(cpu_model()) > 0
    True
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cpus():
    """Cores this process may run on (its affinity), else `os.cpu_count()`.

    Example:

    >>> from coordgate_keras.utils.system import usable_cpus
    >>> 1 <= usable_cpus() <= os.cpu_count()
    True
    """
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def accelerators():
    """Names of the accelerators the active Keras backend sees (empty on CPU)."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return [d.device_kind for d in jax.devices() if d.platform != "cpu"]
    if backend == "tensorflow":
        import tensorflow as tf

        names = []
        for device in tf.config.list_physical_devices("GPU"):
            details = tf.config.experimental.get_device_details(device)
            names.append(details.get("device_name", device.name))
        return names
    if backend == "torch":
        import torch

        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return []
