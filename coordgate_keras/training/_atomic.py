"""The trainer's atomic writes, on the package-wide `utils.atomic_io`.

Only what `atomic_io` cannot do by itself lives here: Keras refuses to save to
a name without its `.keras` / `.weights.h5` suffix, so the model is written to
a suffixed name inside `atomic_file`'s temporary, then renamed onto it.
"""

import contextlib
import os

from coordgate_keras.utils import atomic_io


@contextlib.contextmanager
def staged_path(path):
    """Yields a temporary path ending in `path`'s name; on success it replaces
    `path`, on error (or a kill) nothing is left at `path`."""
    with atomic_io.atomic_file(path) as tmp:
        named = f"{tmp}-{os.path.basename(os.fspath(path))}"
        try:
            yield named
            os.replace(named, tmp)
        finally:
            if os.path.lexists(named):
                os.unlink(named)


def write_text(path, text):
    atomic_io.atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path, obj):
    atomic_io.atomic_write_json(path, obj)


def save_model(model, path):
    """`model.save(path)` through a temporary file."""
    with staged_path(path) as tmp:
        model.save(tmp)
