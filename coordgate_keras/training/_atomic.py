"""Atomic file writes for the trainer's outputs.

A private helper until the package-wide atomic-write module lands: the data are
written to a temporary file next to the destination, flushed, then renamed onto
it (`os.replace`), so a killed run never leaves a half-written file.
"""

import contextlib
import json
import os
import tempfile


@contextlib.contextmanager
def staged_path(path):
    """Yields a temporary path next to `path` (same suffix); on success it
    replaces `path`, on error it is removed."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    base = os.path.basename(path)
    # Keep the full name as suffix: Keras checks `.keras` / `.weights.h5`.
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=f"-{base}", dir=directory)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def write_text(path, text):
    with staged_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def save_model(model, path):
    """`model.save(path)` through a temporary file."""
    with staged_path(path) as tmp:
        model.save(tmp)
