"""Keeps TensorFlow's and absl's C++ log lines off the terminal of CLIs.

`TF_CPP_MIN_LOG_LEVEL` does not silence the lines absl writes before its log is
initialised ("All log messages before absl::InitializeLog() ...", oneDNN and CUDA
notices), so `quiet()` points file descriptor 2 at a temporary file while the
command runs. What was captured is written back to stderr when the command fails,
so nothing that explains a failure is lost.
"""

import contextlib
import os
import sys
import tempfile


@contextlib.contextmanager
def quiet(verbose=False, expected=()):
    """Captures fd 2 (C++ and Python stderr) unless `verbose`.

    What was captured is written back to stderr when the block raises, unless
    the exception is one of `expected` (user errors the CLI reports itself).
    """
    if verbose:
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        except expected:
            failed = False
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                capture.seek(0)
                sys.stderr.write(capture.read().decode("utf-8", "replace"))
                sys.stderr.flush()
