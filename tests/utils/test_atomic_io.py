"""All-or-nothing writes: errors, Ctrl-C, SIGTERM and SIGKILL leave no trace."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from coordgate_keras.utils import atomic_io

MODULE = atomic_io.__file__


def _entries(directory):
    return sorted(os.listdir(directory))


def test_write_bytes_json_and_callable(tmp_path):
    atomic_io.atomic_write_bytes(tmp_path / "a.bin", b"\x00\x01")
    atomic_io.atomic_write_json(tmp_path / "m.json", {"b": [1, 2]})
    atomic_io.atomic_write(tmp_path / "c.txt", lambda f: f.write(b"c"))
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "m.json").read_text() == '{\n  "b": [\n    1,\n    2\n  ]\n}\n'
    assert json.loads((tmp_path / "m.json").read_text()) == {"b": [1, 2]}
    assert _entries(tmp_path) == ["a.bin", "c.txt", "m.json"]


def test_overwrite_false_refuses_an_existing_file(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(FileExistsError) as info:
        atomic_io.atomic_write_bytes(path, b"new", overwrite=False)
    assert (
        str(info.value)
        == f"{path} already exists. Pass `overwrite=True` to replace it."
    )
    assert isinstance(info.value, atomic_io.DestinationExistsError)
    assert info.value.path == str(path)
    assert path.read_text() == "old"
    atomic_io.atomic_write_bytes(path, b"new")
    assert path.read_text() == "new"


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_interrupted_file_write_leaves_the_old_content(tmp_path, error):
    path = tmp_path / "a.txt"
    path.write_text("old")

    def write(f):
        f.write(b"half")
        raise error

    with pytest.raises(error):
        atomic_io.atomic_write(path, write)
    assert path.read_text() == "old"
    assert _entries(tmp_path) == ["a.txt"]


def test_atomic_file_commits_only_on_success(tmp_path):
    path = tmp_path / "model.tflite"
    with pytest.raises(ValueError, match="not verified"):
        with atomic_io.atomic_file(path) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"bytes")
            raise ValueError("not verified")
    assert _entries(tmp_path) == []
    with atomic_io.atomic_file(path) as tmp:
        assert os.path.basename(tmp).startswith(".model.tflite.tmp-")
        with open(tmp, "wb") as f:
            f.write(b"bytes")
    assert path.read_bytes() == b"bytes"
    assert oct(path.stat().st_mode & 0o777) == "0o644"


def test_atomic_save_gives_the_saver_a_name_with_the_suffix(tmp_path):
    path = tmp_path / "final.keras"
    seen = []

    def save(tmp):
        # Keras' `model.save` refuses a name without `.keras`; `np.save` adds `.npy`.
        seen.append(os.path.basename(tmp))
        assert tmp.endswith("final.keras") and os.path.dirname(tmp) == str(tmp_path)
        with open(tmp, "w") as f:
            f.write("model")

    atomic_io.atomic_save(path, save)
    assert path.read_text() == "model" and _entries(tmp_path) == ["final.keras"]
    assert seen[0].startswith(".final.keras.tmp-")

    def fail(tmp):
        with open(tmp, "w") as f:
            f.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_io.atomic_save(path, fail)
    assert path.read_text() == "model" and _entries(tmp_path) == ["final.keras"]
    atomic_io.atomic_write_text(tmp_path / "a.txt", "é\n")
    assert (tmp_path / "a.txt").read_bytes() == "é\n".encode()


def test_atomic_directory(tmp_path):
    target = tmp_path / "checkpoint"
    with atomic_io.atomic_directory(target) as tmp:
        (open(os.path.join(tmp, "one"), "w")).close()
    assert _entries(target) == ["one"]
    with pytest.raises(FileExistsError):
        with atomic_io.atomic_directory(target):
            pass
    with pytest.raises(RuntimeError):
        with atomic_io.atomic_directory(target, overwrite=True) as tmp:
            (open(os.path.join(tmp, "two"), "w")).close()
            raise RuntimeError
    assert _entries(target) == ["one"] and _entries(tmp_path) == ["checkpoint"]
    with atomic_io.atomic_directory(target, overwrite=True) as tmp:
        (open(os.path.join(tmp, "two"), "w")).close()
    assert _entries(target) == ["two"] and _entries(tmp_path) == ["checkpoint"]


def test_replace_directory_without_renameat2(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic_io, "_exchange", lambda a, b: False)
    target = tmp_path / "d"
    target.mkdir()
    (target / "old").write_text("")
    with atomic_io.atomic_directory(target, overwrite=True) as tmp:
        (open(os.path.join(tmp, "new"), "w")).close()
    assert _entries(target) == ["new"] and _entries(tmp_path) == ["d"]


def test_atomic_bundle_into_new_and_existing_folders(tmp_path):
    out = tmp_path / "out"
    with atomic_io.atomic_bundle(out) as tmp:
        os.mkdir(os.path.join(tmp, "saved_model"))
        (open(os.path.join(tmp, "a.tflite"), "w")).close()
    assert _entries(out) == ["a.tflite", "saved_model"]
    with pytest.raises(KeyboardInterrupt):
        with atomic_io.atomic_bundle(out) as tmp:
            (open(os.path.join(tmp, "b.tflite"), "w")).close()
            raise KeyboardInterrupt
    assert _entries(out) == ["a.tflite", "saved_model"]
    (out / "other.txt").write_text("not ours")
    with atomic_io.atomic_bundle(out) as tmp:
        os.mkdir(os.path.join(tmp, "saved_model"))
        (open(os.path.join(tmp, "saved_model", "v2"), "w")).close()
        (open(os.path.join(tmp, "b.tflite"), "w")).close()
    assert _entries(out) == ["a.tflite", "b.tflite", "other.txt", "saved_model"]
    assert _entries(out / "saved_model") == ["v2"]


def _run(code, cwd):
    """Runs `code` with `atomic_io` loaded from its file: no TensorFlow, fast."""
    prelude = textwrap.dedent(
        f"""
        import importlib.util, os, signal, sys, time
        spec = importlib.util.spec_from_file_location("atomic_io", {MODULE!r})
        atomic_io = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(atomic_io)
        """
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_sigterm_mid_write_removes_the_temporaries(tmp_path):
    result = _run(
        """
        with atomic_io.atomic_bundle("out") as tmp:
            open(os.path.join(tmp, "a.tflite"), "wb").write(b"x" * 1000)
            with atomic_io.atomic_file("single.bin") as single:
                open(single, "wb").write(b"half")
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(30)
        """,
        tmp_path,
    )
    assert result.returncode == 128 + signal.SIGTERM, result.stderr
    assert _entries(tmp_path) == []


def test_sigkill_leftovers_are_removed_by_the_next_write(tmp_path):
    result = _run(
        """
        os.mkdir("out")
        open("out/keep.txt", "w").close()
        with atomic_io.atomic_bundle("out") as tmp:
            open(os.path.join(tmp, "a.tflite"), "wb").write(b"x" * 1000)
            with atomic_io.atomic_file("out/b.json") as single:
                open(single, "wb").write(b"half")
                with atomic_io.atomic_file("out/m.keras", keep_name=True) as named:
                    open(named, "wb").write(b"half")
                    os.kill(os.getpid(), signal.SIGKILL)
        """,
        tmp_path,
    )
    assert result.returncode == -signal.SIGKILL
    out = tmp_path / "out"
    leftovers = [name for name in _entries(out) if ".tmp-" in name]
    assert len(leftovers) == 3 and "keep.txt" in _entries(out)
    assert any(name.endswith("-m.keras") for name in leftovers)
    # A live process's temporaries are left alone; a dead one's are removed.
    live = out / f".c.json.tmp-{os.getpid()}-0123abcd"
    live.write_text("in progress")
    atomic_io.atomic_write_bytes(out / "b.json", b"{}")
    assert _entries(out) == sorted(["b.json", "keep.txt", live.name])


def test_ctrl_c_while_a_replaced_folder_is_removed_leaves_nothing(tmp_path):
    """A folder's removal runs many Python steps; Ctrl-C during it (here sent
    as it starts) waits until it ends, so no part of a temporary is left."""
    code = """
        import shutil
        real_rmtree = shutil.rmtree

        def interrupted(path, *args, **kwargs):
            os.kill(os.getpid(), signal.SIGINT)
            return real_rmtree(path, *args, **kwargs)

        atomic_io.shutil.rmtree = interrupted
        os.mkdir("ckpt")
        open("ckpt/old", "w").write("old")
        try:
            with atomic_io.atomic_directory("ckpt", overwrite=True) as tmp:
                open(os.path.join(tmp, "new"), "w").write("new")
        except KeyboardInterrupt:
            print("interrupted")
        print(sorted(os.listdir(".")), sorted(os.listdir("ckpt")))
    """
    prelude = (
        "import importlib.util, os, signal\n"
        f"spec = importlib.util.spec_from_file_location('atomic_io', {MODULE!r})\n"
        "atomic_io = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(atomic_io)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
        # SIGINT at its default action: a background job inherits it ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    assert result.stdout.split("\n")[:2] == ["interrupted", "['ckpt'] ['new']"], (
        result.stdout + result.stderr
    )
