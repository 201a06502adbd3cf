"""Atomic writes: a failed export never leaves anything at its destination."""

import contextlib
import json
import os
import shutil
import tempfile


def check_destination(path, overwrite):
    """Raises `FileExistsError` naming `path` when it exists and not `overwrite`."""
    path = os.fspath(path)
    if os.path.lexists(path) and not overwrite:
        raise FileExistsError(
            f"{path} already exists. Pass `overwrite=True` to replace it."
        )
    return path


@contextlib.contextmanager
def staged_file(path):
    """Yields a temporary path next to `path`; removes it unless it was moved.

    The caller writes and checks the temporary file, then calls `commit(tmp, path)`.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}-", suffix=".tmp", dir=directory
    )
    os.close(fd)
    try:
        yield tmp
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def staged_directory(path):
    """Yields a temporary directory path next to `path` (not yet created)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    parent = tempfile.mkdtemp(
        prefix=f".{os.path.basename(path)}-", suffix=".tmp", dir=directory
    )
    try:
        yield os.path.join(parent, "staged")
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def commit_file(tmp, path):
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def commit_directory(tmp, path):
    """Moves directory `tmp` onto `path`, replacing an existing `path`.

    The old directory is first renamed aside, so `path` is never half-written.
    """
    if os.path.lexists(path):
        aside = tmp + "-previous"
        os.rename(path, aside)
        os.rename(tmp, path)
        if os.path.isdir(aside) and not os.path.islink(aside):
            shutil.rmtree(aside)
        else:
            os.unlink(aside)
    else:
        os.rename(tmp, path)


def write_json(path, payload):
    """Writes `payload` as indented JSON to `path` atomically."""
    with staged_file(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=2, sort_keys=False)
            f.write("\n")
        commit_file(tmp, path)
