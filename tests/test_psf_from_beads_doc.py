"""docs/psf_from_beads.md, every code block in order, at 64x64 (slow)."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "psf_from_beads.md"
PYTHON = sys.executable
# Full size -> tiny size; each must occur in the page.
TINY = {
    "FRAME, GRID, KERNEL = 256, 8, 31": "FRAME, GRID, KERNEL = 64, 2, 15",
    "--grid 8x8 --kernel-size 31": "--grid 2x2 --kernel-size 15",
    "--steps 300": "--steps 2 --image-size 64 --batch-size 2 --precision float32 "
    "--set train_images=4 --set eval_images=2 --set eval_every=2 "
    "--set checkpoint_every=2 --cache-dir cache",
    "microscopy_scene((256, 256)": "microscopy_scene((64, 64)",
    "coordgate-keras ": f"{PYTHON} -m coordgate_keras.cli ",
    "coordgate-train ": f"{PYTHON} -m coordgate_keras.training.cli ",
}


def _blocks():
    text = DOC.read_text()
    for old, new in TINY.items():
        assert old in text, f"{old!r} is no longer in {DOC.name}"
        text = text.replace(old, new)
    return re.findall(r"```(python|bash)\n(.*?)```", text, flags=re.S)


def test_the_page_has_the_four_steps():
    kinds = [kind for kind, _ in _blocks()]
    assert kinds == ["python", "bash", "python", "bash", "python"]


@pytest.mark.slow
def test_the_walkthrough_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    namespace = {}
    for kind, code in _blocks():
        if kind == "python":
            exec(compile(code, str(DOC), "exec"), namespace)
            continue
        run = subprocess.run(
            ["bash", "-ec", code], env=env, capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr[-3000:]
        print(run.stdout)
    printed = capsys.readouterr().out
    assert "beads found 24, used 24" in printed
    assert (tmp_path / "field.npz").is_file() and (tmp_path / "field.png").is_file()
    assert (tmp_path / "runs" / "mine" / "final.keras").is_file()
    restored = re.search(r"restored (\d+\.\d+) dB", printed)
    assert restored and float(restored.group(1)) > 20
