"""Keeps TensorFlow's and XLA's start-up chatter off the terminal.

Loading TensorFlow prints lines like `I0000 ... port.cc:153] oneDNN custom
operations are on` and `cudart_stub.cc:31] Could not find cuda drivers` straight
to file descriptor 2 from C++ (absl logging, before any Python logger exists;
`TF_CPP_MIN_LOG_LEVEL` does not hide them in TF 2.21). `filtered_stderr`
captures descriptor 2 for a block and writes back every line except C++
info/warning lines and a few known CPU-only messages; when the block raises,
everything is written back. The dropped lines are kept in `dropped_lines()`
(a CLI's `--verbose` prints them).

Set `COORDGATE_KERAS_VERBOSE=1` to turn the filter off.
"""

import contextlib
import os
import re
import sys
import tempfile

# absl/glog line header: severity, date, time, thread id, file:line].
_HEADER = re.compile(r"^(?P<severity>[IWEF])\d{4} [\d:.]+\s+\d+\s+\S+\] ")
# Printed on every CPU-only machine; they are not errors there.
_KNOWN_NOISE = (
    "WARNING: All log messages before absl::InitializeLog() is called",
    "To enable the following instructions:",
    "failed call to cuInit",
    "Unable to register cuDNN factory",
    "Unable to register cuFFT factory",
    "Unable to register cuBLAS factory",
    "computation placer already registered",
    # LiteRT and the TFLite converter print these without a header.
    "INFO: Created TensorFlow Lite XNNPACK delegate",
    "fully_quantize: ",
)
_dropped = []


def verbose():
    """Whether `COORDGATE_KERAS_VERBOSE` asks for the unfiltered logs."""
    return os.environ.get("COORDGATE_KERAS_VERBOSE", "").lower() not in (
        "",
        "0",
        "false",
    )


def is_noise(line):
    """Whether a captured stderr line is start-up chatter (dropped by default)."""
    match = _HEADER.match(line)
    if match is not None and match["severity"] in "IW":
        return True
    if line.startswith("INFO: "):  # LiteRT's info severity.
        return True
    return any(text in line for text in _KNOWN_NOISE)


def dropped_lines():
    """The lines `filtered_stderr` has dropped so far in this process."""
    return list(_dropped)


@contextlib.contextmanager
def filtered_stderr(enabled=True):
    """Captures file descriptor 2 during the block and writes back what matters.

    Lines are written back when the block ends (not live). With `enabled`
    False, `COORDGATE_KERAS_VERBOSE` set, or no usable descriptor 2, it does
    nothing.
    """
    if not enabled or verbose():
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    capture = tempfile.TemporaryFile()
    failed = True
    try:
        os.dup2(capture.fileno(), 2)
        yield
        failed = False
    finally:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        capture.seek(0)
        text = capture.read().decode("utf-8", errors="replace")
        capture.close()
        kept = []
        for line in text.splitlines(keepends=True):
            if not failed and is_noise(line):
                _dropped.append(line)
            else:
                kept.append(line)
        if kept:
            sys.stderr.write("".join(kept))
            sys.stderr.flush()
