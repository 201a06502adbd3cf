"""The main job as a library call: `run_demo(DemoOptions(...))`.

`coordgate-keras demo` (and `make demo`) calls it.
"""

from coordgate_keras.demo.pipeline import DemoOptions, format_table, run_demo

__all__ = ["DemoOptions", "format_table", "run_demo"]
