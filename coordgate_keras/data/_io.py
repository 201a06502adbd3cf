"""Atomic file writes: an interrupted write never leaves a half-written file."""

import os
import tempfile


def atomic_write(path, write):
    """Calls `write(binary_file)` on a temporary file next to `path`, then
    renames it onto `path` with `os.replace` (atomic on POSIX and Windows)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp_path = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}-", suffix=".tmp", dir=directory
    )
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
        raise
