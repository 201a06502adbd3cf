"""The whole pipeline in one call: pretrained -> deblur -> int8 TFLite -> report."""

import dataclasses
import os
import time

import numpy as np

from coordgate_keras.utils import argument_validation as av
from coordgate_keras.utils import atomic_io

DEFAULT_MODELS = ("unet_d2", "coordgate_unet_d2")
DEFAULT_TAG = "zernike_256"


@dataclasses.dataclass
class DemoOptions:
    """What `run_demo` does.

    Args:
        out_dir: str. Where `report.png`, `report.json` and the exported model go.
        models: tuple of str. `(plain, coordgate)` registry names.
        tag: str. Weight tag of both models.
        num_images: int. Held-out images to simulate.
        image_size: int. Their height and width.
        images: str or None. A folder of your images (crops of `image_size`)
            instead of simulated scenes.
        psf: str or None. A `PSFField` `.npz` file instead of the field the
            weights were trained for.
        finetune: int. Fine-tune both pretrained models this many steps first.
        from_scratch: bool. Train both models from random weights (`finetune`
            steps, default 300) instead of loading weights.
        export: bool. Export the CoordGate model to int8 TFLite, verify it and
            time it.
        threads: int. LiteRT interpreter threads of the latency benchmark.
        seed: int. Seed of the held-out scenes and noise.
    """

    out_dir: str = os.path.join("out", "demo")
    models: tuple = DEFAULT_MODELS
    tag: str = DEFAULT_TAG
    num_images: int = 4
    image_size: int = 256
    images: str = None
    psf: str = None
    finetune: int = 0
    from_scratch: bool = False
    export: bool = True
    threads: int = 2
    seed: int = 2026

    def __post_init__(self):
        # Checked here, not when first used: `threads` is used last, after
        # the whole export.
        for name in ("num_images", "image_size", "threads"):
            setattr(self, name, av.positive_int(getattr(self, name), name))
        self.finetune = av.non_negative_int(self.finetune, "finetune")
        self.seed = av.seed(self.seed, "seed")


def _say(message, verbose):
    if verbose:
        print(message, flush=True)


def run_demo(options=None, verbose=True):
    """Runs the demo and returns its report (also written as `report.json`).

    1. Loads the pretrained plain and CoordGate U-Nets (or fine-tunes / trains
       them, see `DemoOptions`).
    2. Simulates held-out images with the PSF field and noise the weights were
       trained for (or blurs your images with your field).
    3. Deblurs them and scores PSNR / SSIM of the blurred input and each model.
    4. Exports the CoordGate model to int8 TFLite, verifies it against Keras
       and measures its latency.
    5. Writes `report.png` (panels, error maps, PSNR gain across the field,
       gate maps) and `report.json`.

    Args:
        options: `DemoOptions` or None (defaults).
        verbose: bool. Print progress and the results table.

    Returns:
        A dict with every number of the report.
    """
    from coordgate_keras import data, training, zoo
    from coordgate_keras.demo import report as report_lib

    options = options or DemoOptions()
    os.makedirs(options.out_dir, exist_ok=True)
    started = time.perf_counter()
    plain_name, gate_name = options.models

    # === 1. Models ===
    steps = 5
    _say(
        f"[1/{steps}] models: {plain_name}, {gate_name} (weights '{options.tag}')",
        verbose,
    )
    entry = zoo.weights_info(gate_name, options.tag)
    recipe = entry.metadata.get("recipe", {})
    models, training_note = {}, "pretrained"
    for name in options.models:
        models[name] = _model(name, options, recipe, verbose)
    if options.from_scratch:
        training_note = f"trained from scratch, {options.finetune or 300} steps"
    elif options.finetune:
        training_note = f"pretrained + {options.finetune} fine-tuning steps"

    # === 2. Held-out data ===
    field = data.PSFField.load(options.psf) if options.psf else _recipe_field(recipe)
    noise = _recipe_noise(recipe)
    size = (options.image_size, options.image_size)
    if options.images:
        folder = data.ImageFolder(options.images, crop_shape=size)
        sharp = folder.crops(options.num_images, seed=options.seed)
    else:
        sharp = data.microscopy_scenes(options.num_images, size, seed=options.seed)
    sharp = np.asarray(sharp, "float32")
    if sharp.ndim == 3:
        sharp = sharp[..., None]
    blurred = data.degrade(sharp, field, noise, seed=options.seed)
    # int8 calibration: other scenes through the same optics.
    calibration = None
    if options.export and not options.images:
        calib_sharp = data.microscopy_scenes(8, size, seed=options.seed + 1)
        calibration = data.degrade(calib_sharp, field)
    _say(
        f"[2/{steps}] held-out data: {options.num_images} images "
        f"{size[0]}x{size[1]}, PSF field {field.grid_shape} grid of "
        f"{field.kernel_size} px PSFs"
        + (", Poisson+Gaussian noise" if noise is not None else ""),
        verbose,
    )

    # === 3. Deblur and score ===
    outputs, rows = {}, []
    rows.append(_scores("blurred input", blurred, sharp, None, training))
    for name, model in models.items():
        t0 = time.perf_counter()
        outputs[name] = np.clip(
            np.asarray(model.predict(blurred, batch_size=2, verbose=0)), 0.0, 1.0
        )
        row = _scores(name, outputs[name], sharp, model, training)
        row["seconds_per_image"] = (time.perf_counter() - t0) / len(blurred)
        rows.append(row)
    _say(f"[3/{steps}] deblurred", verbose)
    table = format_table(rows)
    _say(table, verbose)

    # === 4. Edge export ===
    edge = None
    if options.export:
        _say(
            f"[4/{steps}] exporting {gate_name} to int8 TFLite, verifying and "
            "timing it",
            verbose,
        )
        edge = _export(models[gate_name], gate_name, options, blurred, calibration)
        _say(
            f"      {edge['file']}: {edge['size_mib']:.1f} MiB, PSNR vs Keras "
            f"{edge['psnr_vs_keras']:.1f} dB, p50 latency {edge['p50_ms']:.1f} ms "
            f"({options.threads} threads)",
            verbose,
        )
    else:
        _say(f"[4/{steps}] export skipped", verbose)

    # === 5. Report ===
    grid = field.grid_shape
    gain = training.metrics.tile_psnr(sharp, outputs[gate_name], grid) - (
        training.metrics.tile_psnr(sharp, outputs[plain_name], grid)
    )
    gates = report_lib.gate_maps(models[gate_name])
    png = os.path.join(options.out_dir, "report.png")
    report_lib.draw(
        png,
        sharp,
        blurred,
        outputs,
        options.models,
        rows,
        gain,
        gates,
        field,
        title=f"{training_note}; weights '{options.tag}'",
    )
    result = {
        "models": list(options.models),
        "tag": options.tag,
        "training": training_note,
        "weights_metadata": {
            name: _weights_summary(name, options.tag) for name in options.models
        },
        "data": {
            "num_images": options.num_images,
            "image_size": list(size),
            "images": options.images or "simulated microscopy scenes",
            "psf": options.psf or recipe.get("psf"),
            "noise": recipe.get("noise") if noise is not None else None,
            "seed": options.seed,
        },
        "scores": rows,
        "psnr_gain_map_db": np.round(gain, 3).tolist(),
        "edge": edge,
        "report_png": png,
        "seconds": time.perf_counter() - started,
    }
    atomic_io.atomic_write_json(
        os.path.join(options.out_dir, "report.json"), result, indent=1
    )
    _say(
        f"[5/{steps}] report: {png} and report.json ({result['seconds']:.0f} s in all)",
        verbose,
    )
    return result


def _model(name, options, recipe, verbose):
    from coordgate_keras import zoo

    if not options.from_scratch and not options.finetune:
        return zoo.create_model(name, weights=options.tag)

    from coordgate_keras import training

    entry = zoo.weights_info(name, options.tag)
    config = training.TrainConfig.from_dict(entry.metadata["recipe"])
    steps = options.finetune or 300
    # A laptop-sized run of the recipe: float32 (bfloat16 is slow on most
    # CPUs), small batches, one evaluation at the end.
    changes = {
        "steps": steps,
        "eval_every": 0,
        "checkpoint_every": steps,
        "precision": "float32",
        "batch_size": 4,
        "train_images": max(64, 4 * steps),
        "eval_images": 8,
    }
    if options.psf:
        changes["psf"] = {"kind": "file", "path": os.path.abspath(options.psf)}
    if options.images:
        changes["data"] = f"folder:{os.path.abspath(options.images)}"
    if not options.from_scratch:
        changes["init_weights"] = options.tag
        changes["learning_rate"] = config.learning_rate * 0.1
    workdir = os.path.join(options.out_dir, "train", name)
    _say(f"      training {name}: {steps} steps in {workdir}", verbose)
    training.train(config.replace(**changes), workdir, verbose=2 if verbose else 0)
    return training.load_trained(workdir)


def _recipe_field(recipe):
    from coordgate_keras import training

    return training.psf_field(training.TrainConfig.from_dict(recipe))


def _recipe_noise(recipe):
    from coordgate_keras import data

    noise = recipe.get("noise")
    return data.NoiseModel(**noise) if noise else None


def _scores(label, output, sharp, model, training):
    return {
        "name": label,
        "psnr": training.metrics.mean_psnr(sharp, output),
        "ssim": float(np.mean(training.metrics.numpy_ssim(sharp, output))),
        "num_params": int(model.count_params()) if model is not None else None,
    }


def format_table(rows):
    lines = [
        f"{'':20s} {'PSNR (dB)':>10s} {'SSIM':>7s} {'params':>11s}",
    ]
    for row in rows:
        params = f"{row['num_params']:,}" if row["num_params"] else "-"
        lines.append(
            f"{row['name']:20s} {row['psnr']:10.2f} {row['ssim']:7.4f} {params:>11s}"
        )
    return "\n".join(lines)


def _weights_summary(name, tag):
    from coordgate_keras import zoo

    meta = zoo.weights_info(name, tag).metadata
    return {
        "sha256": meta.get("sha256"),
        "steps": meta.get("steps"),
        "metrics": meta.get("metrics"),
        "backend": meta.get("backend"),
    }


def _export(model, name, options, blurred, calibration):
    from coordgate_keras import tflite

    size = options.image_size
    path = os.path.join(options.out_dir, f"{name}_{size}x{size}_int8.tflite")
    report = tflite.export_tflite(
        model,
        path,
        (1, size, size, 1),
        quantization="int8",
        model_name=name,
        weights_tag=options.tag,
        overwrite=True,
        verify_data=blurred,
        representative_data=blurred if calibration is None else calibration,
    )
    timing = tflite.benchmark(path, threads=options.threads, runs=20, warmup=3)
    return {
        "file": path,
        "size_mib": os.path.getsize(path) / 2**20,
        "psnr_vs_keras": report["verification"]["psnr_db"],
        "max_abs_error": report["verification"]["max_abs_error"],
        "p50_ms": timing["p50_ms"],
        "threads": options.threads,
        "op_census": report.get("op_census"),
    }
