"""Trains the published weights from the recipes; writes weights + sidecars.

Each recipe (`coordgate_keras/training/recipes/<model>.yaml`) is trained by the
project's own CLI, `coordgate-train --config RECIPE --workdir DIR` (run as
`python -m coordgate_keras.training.cli` so it works from a source checkout),
then `coordgate_keras.training.publish_weights` writes
`<model>_<tag>.weights.h5` and its JSON sidecar into `--out`.

    KERAS_BACKEND=jax python -m benchmarks.published_weights --out weights/   # GPU
    python -m benchmarks.published_weights --out /tmp/w --set steps=5  # smoke
    python -m benchmarks.published_weights --out w/ --models unet_d3_w16  # CPU, ~1 h

`--models` takes recipe names; each recipe publishes under its own tag
(`PUBLISHED`), `--tag` overrides it. Copy the results into
`coordgate_keras/zoo/weights/` and their SHA-256 into
`coordgate_keras/zoo/unet_presets.py`.
"""

import argparse
import json
import os
import subprocess
import sys
import time

# recipe name -> weight tag. `unet_d3_w16` is `unet_d3` with base_filters=16,
# trained on CPU (float32, TensorFlow); the others were trained on one GPU.
PUBLISHED = {
    "coordgate_unet_d2": "zernike_256",
    "unet_d2": "zernike_256",
    "coordgate_unet_d1": "zernike_256",
    "coordconv_unet_d2": "zernike_256",
    "unet_d3": "zernike_256",
    "unet_d3_w16": "zernike_256_w16",
}
RECIPES = os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "..",
    "coordgate_keras",
    "training",
    "recipes",
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for weights + sidecars")
    parser.add_argument("--workdir", default=None, help="training workdirs")
    parser.add_argument(
        "--tag", default=None, help="weight tag for every recipe (default: PUBLISHED)"
    )
    parser.add_argument(
        "--models",
        nargs="*",
        default=[name for name in PUBLISHED if name != "unet_d3_w16"],
        help="recipe names (default: the GPU recipes; unet_d3_w16 runs on CPU)",
    )
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        dest="overrides",
        help="key=value overrides for every recipe (smoke tests)",
    )
    parser.add_argument(
        "--budget-seconds",
        type=float,
        default=None,
        help="start no new model after this many seconds",
    )
    args = parser.parse_args(argv)
    workroot = args.workdir or os.path.join(args.out, "work")
    os.makedirs(args.out, exist_ok=True)
    start = time.time()
    summary = []
    for name in args.models:
        if args.budget_seconds and time.time() - start > args.budget_seconds:
            print(f"budget reached, {name} not trained", flush=True)
            summary.append({"model": name, "status": "not started (budget)"})
            continue
        recipe = os.path.join(RECIPES, f"{name}.yaml")
        workdir = os.path.join(workroot, name)
        command = [
            sys.executable, "-m", "coordgate_keras.training.cli",
            "--config", recipe, "--workdir", workdir,
        ]  # fmt: skip
        for override in args.overrides:
            command += ["--set", override]
        print("$", " ".join(command), flush=True)
        t0 = time.time()
        result = subprocess.run(command)
        if result.returncode != 0:
            summary.append({"model": name, "status": f"failed ({result.returncode})"})
            continue
        from coordgate_keras.training import publish_weights

        tag = args.tag or PUBLISHED.get(name, "zernike_256")
        sidecar = publish_weights(workdir, tag, args.out)
        summary.append(
            {
                "model": name,
                "tag": tag,
                "status": "ok",
                "seconds": round(time.time() - t0, 1),
                "sha256": sidecar["sha256"],
                "metrics": sidecar["metrics"],
            }
        )
        print(json.dumps(summary[-1]), flush=True)
    from coordgate_keras.utils import atomic_io

    atomic_io.atomic_write_json(
        os.path.join(args.out, "summary.json"), summary, indent=1
    )
    return 0 if all(s["status"] == "ok" for s in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
