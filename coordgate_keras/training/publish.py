"""Turns a finished training workdir into a published weight file and its sidecar."""

import json
import os


def publish_weights(workdir, tag, out_dir):
    """Writes `<model>_<tag>.weights.h5` and `<model>_<tag>.json` from a workdir.

    The network is rebuilt in float32 (`load_trained`) and re-scored on the recipe's
    held-out set in float32 (training may have run in mixed precision), so the
    sidecar's metrics are what a user who loads the weights gets.

    Args:
        workdir: str. A finished `train()` workdir (`config.json`,
            `metrics.json`, `final.keras`).
        tag: str. Weight tag, e.g. `"zernike_256"`.
        out_dir: str. Destination folder.

    Returns:
        The sidecar dict (also written as JSON).
    """
    from coordgate_keras.training import config as config_lib
    from coordgate_keras.training.train import (
        builder_kwargs,
        evaluate,
        heldout_data,
        load_trained,
    )
    from coordgate_keras.zoo import _weights

    cfg = config_lib.TrainConfig.from_file(os.path.join(workdir, "config.json"))
    with open(os.path.join(workdir, "metrics.json"), encoding="utf-8") as f:
        trained = json.load(f)
    if not trained.get("finished") or trained.get("steps") != cfg.steps:
        raise ValueError(
            f"Invalid value for argument `workdir`. Expected a finished run. "
            f"Received: workdir={workdir!r} with metrics {trained}"
        )
    model = load_trained(workdir)
    blurred, sharp = heldout_data(cfg)
    scores = evaluate(model, blurred, sharp, batch_size=cfg.batch_size)
    height, width = cfg.image_shape
    metadata = {
        "description": f"{cfg.model} trained by coordgate-train on {cfg.data}",
        "recipe": cfg.to_dict(),
        "steps": int(trained["steps"]),
        "metrics": {
            k: float(scores[k])
            for k in ("psnr", "ssim", "psnr_blurred", "ssim_blurred")
        },
        "metrics_note": (
            f"held-out: {cfg.eval_images} pairs (eval_seed {cfg.eval_seed}) of the "
            "recipe's data, exact NumPy blur + noise, float32 inference"
        ),
        "training_metrics": {
            k: trained.get(k)
            for k in (
                "psnr",
                "ssim",
                "seconds",
                "xla",
                "precision",
                "simulator",
                "images_per_second",
                "num_devices",
                "best_psnr",
                "best_step",
            )
        },
        "input_size": [height, width, int(sharp.shape[-1])],
        "value_range": [0.0, 1.0],
        "trained_on": _hardware(),
        "training_backend": trained.get("backend"),
    }
    kwargs = builder_kwargs(cfg, initial=False)  # what rebuilds it for loading
    _, _, sidecar = _weights.write(model, out_dir, cfg.model, tag, kwargs, metadata)
    return sidecar


def _hardware():
    """Where the weights were published (in the session that trained them)."""
    from coordgate_keras.utils import system

    return system.environment()
