"""Writes docs/MODELS.md, the table of every registered model (params, MACs).

python -m benchmarks.make_model_table           # rewrite docs/MODELS.md
python -m benchmarks.make_model_table --check   # exit 1 if it is stale
"""

import argparse
import pathlib
import sys

from coordgate_keras.utils import atomic_io
from coordgate_keras.zoo._model_table import render_model_table

DEFAULT_PATH = pathlib.Path(__file__).resolve().parents[1] / "docs" / "MODELS.md"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=pathlib.Path, default=DEFAULT_PATH)
    parser.add_argument(
        "--check", action="store_true", help="fail if the file is not up to date"
    )
    args = parser.parse_args(argv)
    text = render_model_table()
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            rerun = "python -m benchmarks.make_model_table"
            print(f"{args.output} is stale: run `{rerun}`")
            return 1
        return 0
    atomic_io.atomic_write_text(args.output, text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
