"""What machine this is: the CPU model, the cores this process may use, the
accelerators the active Keras backend sees, and `environment()`, the one record
of all that plus the library versions.

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


def environment():
    """The package's one record of where and with what something ran.

    Weight sidecars and every benchmark store this dict (adding their own
    fields, such as the command line), so results files share its keys.

    Returns:
        A JSON-ready dict: `hardware` (the accelerators, else `"CPU: <model>,
        <n> cores"`), `gpus`, `cpu_model`, `cpus_usable`, `cpu_count`,
        `machine`, `load_average_at_start` (1, 5, 15 min), `backend`,
        `backend_version`, `keras`, `coordgate_keras`, `numpy`, `python`,
        `platform`.

    Example:

    >>> import keras
    >>> from coordgate_keras.utils.system import environment
    >>> env = environment()
    >>> env["cpus_usable"] >= 1 and env["keras"] == keras.__version__
    True
    """
    import importlib

    import keras
    import numpy as np

    from coordgate_keras._version import __version__

    backend = keras.backend.backend()
    try:
        backend_version = importlib.import_module(backend).__version__
    except (ImportError, AttributeError):
        backend_version = None
    gpus = accelerators()
    cpu, usable = cpu_model(), usable_cpus()
    return {
        "hardware": ", ".join(gpus) if gpus else f"CPU: {cpu}, {usable} cores",
        "gpus": gpus,
        "cpu_model": cpu,
        "cpus_usable": usable,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
        "backend": backend,
        "backend_version": backend_version,
        "keras": keras.__version__,
        "coordgate_keras": __version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
