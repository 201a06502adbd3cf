"""The `benchmarks` package: every script parses `--help`, and the command line
recorded with the results is the one a reader can type again."""

import importlib
import pathlib
import sys
import types

import pytest

from benchmarks import _environment

SCRIPTS = sorted(
    p.stem
    for p in (pathlib.Path(__file__).resolve().parents[2] / "benchmarks").glob("*.py")
    if not p.stem.startswith("_")
)


def test_the_scripts_are_found():
    assert {"deblur2d", "edge_benchmark", "sv_conv1d"} <= set(SCRIPTS)


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_imports_as_a_module_and_prints_its_help(
    name, monkeypatch, capsys
):
    module = importlib.import_module(f"benchmarks.{name}")
    monkeypatch.setattr(sys, "argv", [f"benchmarks/{name}.py", "--help"])
    with pytest.raises(SystemExit) as done:
        module.main()
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("usage:")


def test_command_writes_a_module_run_as_python_dash_m(monkeypatch):
    main = sys.modules["__main__"]
    argv = ["/repo/benchmarks/deblur2d.py", "--quick", "--out", "a b"]
    monkeypatch.setattr(sys, "argv", argv)
    spec = types.SimpleNamespace(name="benchmarks.deblur2d")
    monkeypatch.setattr(main, "__spec__", spec, raising=False)
    assert _environment.command() == "python -m benchmarks.deblur2d --quick --out 'a b'"
    # A script started by its path keeps the path.
    monkeypatch.setattr(main, "__spec__", None)
    assert (
        _environment.command()
        == "python /repo/benchmarks/deblur2d.py --quick --out 'a b'"
    )
    assert _environment.command(["x.py", "-v"]) == "python x.py -v"
