"""All-or-nothing writes of files, JSON and whole folders.

Everything is written under a temporary name beside its destination (same
folder, so the same file system) and renamed into place at the end with
`os.replace` / `rename`, which is atomic on POSIX and Windows: a reader sees the
old content or the new, never a half-written file. On the way out:

- an exception (Ctrl-C included) removes the temporary;
- SIGTERM is turned into `SystemExit(143)` while a write is in progress (in the
  main thread, when no other handler is installed), so it cleans up too;
- SIGKILL and power loss cannot be handled: their temporaries carry the writing
  process's id (`.<name>.tmp-<pid>-<random>[-<name>]`), and the next write into the same
  folder removes those whose process is gone (`remove_stale_temporaries`).

API:

    atomic_write_bytes(path, data)
    atomic_write_text(path, text)
    atomic_write_json(path, payload)
    atomic_write(path, write)            # write(binary_file), e.g. np.savez
    with atomic_file(path) as tmp: ...   # write + check tmp; raise to abandon
    atomic_save(path, save)              # save(tmp) with tmp ending in path's name
    with atomic_directory(path) as tmp: ...  # a folder built whole, then moved
    with atomic_bundle(folder) as tmp: ...   # entries moved into a folder together

Each takes `overwrite=True` by default except `atomic_directory`, whose target
is usually a result that should not be replaced by accident;
`check_destination(path, overwrite)` raises `DestinationExistsError` up front.
"""

import contextlib
import ctypes
import errno
import json
import os
import re
import secrets
import shutil
import signal
import sys
import threading

# A suffix may follow: Keras only saves to names ending in `.keras` /
# `.weights.h5`, so such files are written as `<temporary>-<name>` or
# `<temporary>.weights.h5`.
_TEMP_PATTERN = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)-[0-9a-f]{8}(?:[-.].+)?$")
_cleaned = set()
_cleaned_lock = threading.Lock()


class DestinationExistsError(FileExistsError):
    """The destination exists and `overwrite` is False. `path` names it."""

    def __init__(self, path):
        super().__init__(
            errno.EEXIST,
            f"{path} already exists. Pass `overwrite=True` to replace it",
            path,
        )
        self.path = path

    def __str__(self):
        return self.strerror + "."


def check_destination(path, overwrite=False):
    """Returns `os.fspath(path)`; raises `DestinationExistsError` if it exists and
    `overwrite` is False."""
    path = os.fspath(path)
    if os.path.lexists(path) and not overwrite:
        raise DestinationExistsError(path)
    return path


def temporary_path(path):
    """A fresh temporary name beside `path`: `.<name>.tmp-<pid>-<random>`."""
    directory, name = os.path.split(os.path.abspath(os.fspath(path)))
    return os.path.join(directory, f".{name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


def remove_stale_temporaries(directory):
    """Removes temporaries left in `directory` by processes that no longer run.

    Only names this module makes (`.<name>.tmp-<pid>-<random>`) are touched,
    and only when process `pid` is gone (killed mid-write). Each folder is
    scanned once per process.

    Returns:
        The list of removed paths.
    """
    directory = os.path.abspath(os.fspath(directory))
    with _cleaned_lock:
        if directory in _cleaned:
            return []
        _cleaned.add(directory)
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        match = _TEMP_PATTERN.match(name)
        if match is None or _process_alive(int(match["pid"])):
            continue
        path = os.path.join(directory, name)
        _remove(path)
        removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_file(path, overwrite=True, mode=0o644, keep_name=False):
    """Yields a temporary path beside `path`; on a normal exit it becomes `path`.

    Write the temporary (and check it, if needed); raise to abandon it, which
    removes it and leaves `path` untouched.

    Args:
        path: str or path-like. The destination file.
        overwrite: bool. Replace an existing `path`.
        mode: int. Permission bits of the new file.
        keep_name: bool. The temporary ends in `path`'s own name, for writers
            that check the suffix (Keras saves only to `*.keras` /
            `*.weights.h5`).

    Example:

    >>> import os, tempfile
    >>> from coordgate_keras.utils.atomic_io import atomic_file
    >>> path = os.path.join(tempfile.mkdtemp(), "a.txt")
    >>> with atomic_file(path) as tmp:
    ...     with open(tmp, "w") as f:
    ...         _ = f.write("done")
    >>> with open(path) as f:
    ...     f.read()
    'done'
    """
    path, tmp = _stage(path, overwrite)
    named = f"{tmp}-{os.path.basename(path)}" if keep_name else tmp
    with _cleanup_on_sigterm():
        try:
            yield named
            if keep_name and os.path.isfile(named):
                os.replace(named, tmp)
            if not os.path.isfile(tmp):
                raise FileNotFoundError(
                    f"Nothing was written to the temporary file of {path}."
                )
            _fsync(tmp)
            os.chmod(tmp, mode)
            if not overwrite:
                # Another writer may have created it meanwhile; never replace.
                check_destination(path, overwrite)
            os.replace(tmp, path)
        finally:
            _remove_leftovers(tmp, named)


def atomic_write(path, write, overwrite=True):
    """Calls `write(binary_file)` on a temporary file, then moves it to `path`.

    Example:

    >>> import os, tempfile
    >>> import numpy as np
    >>> from coordgate_keras.utils.atomic_io import atomic_write
    >>> path = os.path.join(tempfile.mkdtemp(), "x.npy")
    >>> atomic_write(path, lambda f: np.save(f, np.arange(3)))
    >>> np.load(path).tolist()
    [0, 1, 2]
    """
    with atomic_file(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as f:
            write(f)


def atomic_save(path, save, overwrite=True):
    """Calls `save(temporary_path)`, then moves the file to `path`.

    The temporary ends in `path`'s name, for savers that check or add a
    suffix: `atomic_save("final.keras", model.save)`, `np.save`.

    Example:

    >>> import os, tempfile
    >>> import numpy as np
    >>> from coordgate_keras.utils.atomic_io import atomic_save
    >>> path = os.path.join(tempfile.mkdtemp(), "x.npy")
    >>> atomic_save(path, lambda tmp: np.save(tmp, np.arange(3)))
    >>> np.load(path).tolist(), os.listdir(os.path.dirname(path))
    ([0, 1, 2], ['x.npy'])
    """
    with atomic_file(path, overwrite=overwrite, keep_name=True) as tmp:
        save(tmp)


def atomic_write_bytes(path, data, overwrite=True):
    """Writes `data` (bytes) to `path` atomically."""
    atomic_write(path, lambda f: f.write(data), overwrite=overwrite)


def atomic_write_text(path, text, overwrite=True):
    """Writes `text` as UTF-8 to `path` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


def atomic_write_json(path, payload, overwrite=True, indent=2):
    """Writes `payload` as indented UTF-8 JSON (plus a newline) atomically.

    Example:

    >>> import json, os, tempfile
    >>> from coordgate_keras.utils.atomic_io import atomic_write_json
    >>> path = os.path.join(tempfile.mkdtemp(), "m.json")
    >>> atomic_write_json(path, {"epoch": 3})
    >>> with open(path) as f:
    ...     json.load(f)
    {'epoch': 3}
    """
    text = json.dumps(payload, indent=indent) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


@contextlib.contextmanager
def atomic_directory(path, overwrite=False):
    """Yields an empty temporary folder beside `path`; on a normal exit it
    becomes `path`, whole.

    With `overwrite=True` an existing `path` is replaced: on Linux the two are
    swapped in one atomic step (`renameat2(RENAME_EXCHANGE)`); elsewhere the
    old folder is renamed aside first, so for an instant `path` is missing.
    On an exception (or SIGTERM) the temporary folder is removed and `path`
    is untouched.

    Args:
        path: str or path-like. The destination folder.
        overwrite: bool. Replace an existing `path`.

    Example:

    >>> import os, tempfile
    >>> from coordgate_keras.utils.atomic_io import atomic_directory
    >>> target = os.path.join(tempfile.mkdtemp(), "checkpoint")
    >>> with atomic_directory(target) as tmp:
    ...     with open(os.path.join(tmp, "weights.txt"), "w") as f:
    ...         _ = f.write("w")
    >>> os.listdir(target)
    ['weights.txt']
    """
    path, tmp = _stage(path, overwrite)
    with _cleanup_on_sigterm():
        try:
            os.mkdir(tmp)
            yield tmp
            if not overwrite:
                check_destination(path, overwrite)
            replace_directory(tmp, path)
        finally:
            _remove_leftovers(tmp)


@contextlib.contextmanager
def atomic_bundle(directory):
    """Yields an empty staging folder; on a normal exit every entry in it is
    moved into `directory` (created if missing), together.

    For several results that belong together (an export's model files and
    their reports) in a folder that may hold other things. When `directory`
    does not exist yet, the staging folder is built beside it and renamed to
    it in one step. Otherwise the staging folder is a hidden one inside
    `directory` and its entries are renamed into place one after the other
    with SIGINT and SIGTERM held (`signals_deferred`), replacing entries of the
    same name: only SIGKILL or a power loss between two renames can leave part
    of a bundle. On an exception nothing is moved and the staging folder is
    removed. Check the destinations first (`check_destination`).

    Example:

    >>> import os, tempfile
    >>> from coordgate_keras.utils.atomic_io import atomic_bundle
    >>> out = os.path.join(tempfile.mkdtemp(), "export")
    >>> with atomic_bundle(out) as tmp:
    ...     for name in ("model.tflite", "model.json"):
    ...         open(os.path.join(tmp, name), "w").close()
    >>> sorted(os.listdir(out))
    ['model.json', 'model.tflite']
    """
    directory = os.path.abspath(os.fspath(directory))
    if not os.path.isdir(directory):
        with atomic_directory(directory) as tmp:
            yield tmp
        return
    remove_stale_temporaries(directory)
    tmp = temporary_path(os.path.join(directory, "bundle"))
    with _cleanup_on_sigterm():
        try:
            os.mkdir(tmp)
            yield tmp
            with signals_deferred():
                for name in sorted(os.listdir(tmp)):
                    source, target = (
                        os.path.join(tmp, name),
                        os.path.join(directory, name),
                    )
                    if os.path.isdir(source) and not os.path.islink(source):
                        replace_directory(source, target)
                    else:
                        os.replace(source, target)
        finally:
            _remove_leftovers(tmp)


def replace_directory(source, path):
    """Moves folder `source` to `path`, replacing an existing `path` whole.

    `source` and `path` must be on the same file system (use a temporary name
    beside `path`).
    """
    if not os.path.lexists(path):
        os.rename(source, path)
        return
    with signals_deferred():  # an interrupt now would strand the old content
        if _exchange(source, path):
            # `source` now holds the old content.
            _remove(source)
            return
    aside = temporary_path(path)
    os.rename(path, aside)
    try:
        os.rename(source, path)
    except BaseException:
        os.rename(aside, path)
        raise
    _remove_leftovers(aside)


@contextlib.contextmanager
def signals_deferred():
    """Holds SIGINT and SIGTERM until the block ends (POSIX, main thread).

    For a few renames that must all happen or none: a signal that arrives
    meanwhile is delivered after the block. SIGKILL cannot be held.
    """
    can_block = hasattr(signal, "pthread_sigmask") and (
        threading.current_thread() is threading.main_thread()
    )
    if not can_block:
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


# === Machinery ===


def _stage(path, overwrite):
    """Checks `path`, prepares its folder, returns `(path, temporary name)`."""
    path = check_destination(path, overwrite)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    remove_stale_temporaries(parent)
    return path, temporary_path(path)


@contextlib.contextmanager
def _cleanup_on_sigterm():
    """Turns SIGTERM into `SystemExit(143)` so `finally` blocks run.

    Only in the main thread and only when SIGTERM has its default action (an
    application's own handler is left alone).
    """
    install = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    )
    if not install:
        yield
        return

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _process_alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # Exists, owned by someone else (or unknown): leave it.
    return True


def _remove_leftovers(*paths):
    """Removes the temporaries that exist of `paths`, with SIGINT and SIGTERM
    held: a Ctrl-C in the middle (a folder's removal runs many Python steps)
    would leave part of one behind."""
    with signals_deferred():
        for path in dict.fromkeys(paths):
            if os.path.lexists(path):
                _remove(path)


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a, b):
    """Swaps two paths atomically (Linux `renameat2`); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    result = renameat2(
        _AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE
    )
    return result == 0
