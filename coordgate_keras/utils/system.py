"""What machine this is: the CPU model and the cores this process may use.

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
