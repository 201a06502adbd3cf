"""One run per workdir (an advisory lock), and a failed start that leaves no trace.

The lock is `fcntl.flock` on `<workdir>/.lock`: the operating system releases
it when the process ends, however it ends, so a killed run never leaves a
stale lock behind. The file holds the holder's PID for the error message.
"""

import contextlib
import errno
import json
import os

from coordgate_keras.utils import argument_validation as av

LOCK_NAME = ".lock"


class WorkdirLockedError(RuntimeError):
    """Another process trains in this workdir. `workdir` and `pid` name them."""

    def __init__(self, workdir, pid):
        holder = f"process {pid}" if pid else "another process"
        super().__init__(
            f"{workdir} is in use by {holder} (a run of coordgate-train holds "
            f"{os.path.join(workdir, LOCK_NAME)}). Wait for it to end, stop it, "
            f"or pass another workdir."
        )
        self.workdir = workdir
        self.pid = pid


@contextlib.contextmanager
def locked(workdir):
    """Holds `<workdir>/.lock` (created, with `workdir`, if missing).

    Raises `WorkdirLockedError` at once when another process holds it. On a
    normal exit and on an exception the lock file is removed; if this call
    created `workdir` and it is left empty, `workdir` is removed too.

    Where `fcntl` is missing (Windows) nothing is locked.
    """
    workdir = os.fspath(workdir)
    created = not os.path.isdir(workdir)
    _writable(workdir)
    path = os.path.join(workdir, LOCK_NAME)
    fd = _acquire(workdir, path)
    try:
        yield
    finally:
        if fd is not None:
            # Unlinked before it is released, so a waiting process that opened
            # this file sees a different inode and retries (see `_acquire`).
            with contextlib.suppress(OSError):
                os.unlink(path)
            os.close(fd)
        if created:
            with contextlib.suppress(OSError):
                os.rmdir(workdir)  # only when empty: a failed first start


def read_json(path):
    """`json.load` of `path`; a malformed file is a `ValueError` naming it."""
    with open(path) as f:
        text = f.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path} is not valid JSON ({error}); it was not written by this "
            f"version of coordgate-keras, or was edited. Fix or delete it."
        ) from None


def _writable(workdir):
    try:
        os.makedirs(workdir, exist_ok=True)
    except OSError as error:
        raise _unwritable(workdir, error) from None
    if not os.access(workdir, os.W_OK | os.X_OK):
        raise _unwritable(workdir, "permission denied")


def _unwritable(workdir, reason):
    if isinstance(reason, OSError):
        reason = reason.strerror or str(reason)
    return av.invalid_value(
        None,
        "workdir",
        "a folder this process can create and write to",
        f"workdir={workdir!r} ({str(reason).lower()})",
    )


def _acquire(workdir, path):
    try:
        import fcntl
    except ImportError:
        return None
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            raise WorkdirLockedError(workdir, _holder(path)) from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        # The previous holder removed the file between our open and flock.
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _holder(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0
