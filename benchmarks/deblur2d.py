"""2D study: deblurring a static spatially-varying PSF, every U-Net family, >= 3 seeds.

Reproduces the paper's second claim with our own measurement: a shallow U-Net
with CoordGate against deeper plain U-Nets, CoordConv U-Nets and MultiWienerNet,
all trained with the same budget (steps, batch, optimizer, loss, data) by
`coordgate_keras.training.train`, and evaluated on one held-out set. Also the
blurred input and classical Wiener deconvolution (centre PSF, local PSF per
tile), ablations of the CoordGate options on `coordgate_unet_d2`, and of the
start: `*/zero_output` U-Nets whose output convolution starts at zero (the
untrained residual network is then the identity).

    python -m benchmarks.deblur2d --quick            # CPU scale (<= 45 min on 2 cores)
    python -m benchmarks.deblur2d --full             # GPU scale (JAX backend fine)
    python -m benchmarks.deblur2d --analyze --latency --out DIR   # tables, plots again

`--quick` and `--full` train, then analyze (`--no-analyze`: train only);
`--analyze` alone redoes the tables and plots of a results folder on CPU.

Training writes `runs.jsonl` (one line per run, appended as runs finish) and
`crops.npz` (corner crops of the seed-0 predictions); `--analyze` (CPU) adds the
Wiener baselines, latencies, the tables (`results.md`, `results.json`) and the
plots. Runs go every model's seed 0, then the ablations, then seeds 1, 2, ...,
so a time budget (`--budget-seconds`) cuts seeds, not models or ablations.
"""

import argparse
import json
import os
import pathlib
import sys
import time

import numpy as np

from benchmarks import _study
from coordgate_keras.training import metrics
from coordgate_keras.utils import atomic_io

RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "deblur2d"

MODELS = [
    "unet_d1", "unet_d2", "unet_d3", "unet_d4", "unet_d5",
    "coordconv_unet_d1", "coordconv_unet_d2", "coordconv_unet_d3",
    "coordgate_unet_d1", "coordgate_unet_d2", "coordgate_unet_d3",
    "multiwienernet",
]  # fmt: skip

# Ablations of `coordgate_unet_d2` (label -> CoordGate options over the paper's).
ABLATIONS = {
    "cg_d2/encoding=fourier": {"encoding": "fourier"},
    # The default fourier features reach a 1/32-image period; see
    # benchmarks/coordgate_encodings.py for why fewer octaves are tested.
    "cg_d2/fourier_octaves=2": {"encoding": "fourier", "num_frequencies": 2},
    "cg_d2/encoding=map": {"encoding": "map"},
    "cg_d2/hidden=relu": {"hidden_activation": "relu"},
    "cg_d2/hidden=gelu": {"hidden_activation": "gelu"},
    "cg_d2/gate=sigmoid": {"gate_activation": "sigmoid"},
    "cg_d2/gate=none": {"gate_activation": None},
    "cg_d2/no_projection": {"use_projection": False},
    "cg_d2/units=16": {"encoding_units": 16},
    "cg_d2/layers=1": {"encoding_layers": 1},
}

# Ablations of the start (label -> model): the output 1x1 convolution starts at
# zero (`output_initializer="zeros"`), so the residual network starts as the
# identity, at the blurred input's score. Asks whether CoordConv trails because of
# its start (its untrained network is far from the identity: "PSNR at init").
ZERO_OUTPUT = {
    "cc_d2/zero_output": "coordconv_unet_d2",
    "unet_d2/zero_output": "unet_d2",
    "cg_d2/zero_output": "coordgate_unet_d2",
}

SCALES = {
    # CPU: small images, narrow networks, few steps. Labelled as such.
    "quick": {
        "image_size": 64,
        "psf": {"kind": "zernike", "grid_shape": [4, 4], "kernel_size": 15},
        "steps": 300,
        "batch_size": 8,
        "base_filters": 16,
        "train_images": 512,
        "eval_images": 32,
        "precision": "float32",
        "seeds": 3,
    },
    # GPU: the setting of the H100 probe (128x128, 31 px PSFs on an 8x8 grid).
    "full": {
        "image_size": 128,
        "psf": {"kind": "zernike", "grid_shape": [8, 8], "kernel_size": 31},
        "steps": 1500,
        "batch_size": 16,
        "base_filters": None,
        "train_images": 4096,
        "eval_images": 64,
        "precision": "mixed_bfloat16",
        "seeds": 3,
    },
}
# --quick stops starting runs after this (training; the analysis takes ~3 min
# more), to finish within 45 minutes on 2 CPU cores.
QUICK_BUDGET_SECONDS = 40 * 60
EVAL_SEED = 9_000  # the held-out scenes and noise, shared by every run


# === Data ===


def psf_field(psf):
    """The `PSFField` of a config's `psf` spec, as `train()` builds it."""
    from coordgate_keras import training

    return training.psf_field(training.TrainConfig(psf=psf))


def eval_set(scale):
    """Held-out `(blurred, sharp)`: exact-operator blur, Poisson+Gaussian noise."""
    from coordgate_keras import data

    size = scale["image_size"]
    field = psf_field(scale["psf"])
    sharp = data.microscopy_scenes(
        scale["eval_images"], image_shape=(size, size), seed=EVAL_SEED
    ).astype("float32")
    return data.degrade(sharp, field, data.NoiseModel(), seed=EVAL_SEED), sharp


def tile_psnr(pred, sharp, grid):
    """PSNR of each of `grid x grid` tiles, of the MSE pooled over the eval set
    (a list): the runs of the committed results stored it so, and the plot
    labels it "pooled"."""
    return metrics.tile_psnr(sharp, pred, (grid, grid), pooled=True).round(3).tolist()


def worst_corner(field, size):
    """(row, col) slice origin of the corner quarter whose PSF is widest."""
    corners = {
        (0, 0): (0, 0),
        (0, 1): (0, size - 1),
        (1, 0): (size - 1, 0),
        (1, 1): (size - 1, size - 1),
    }
    widths = {}
    k = field.kernel_size
    yy, xx = np.mgrid[:k, :k] - k // 2
    for key, (r, c) in corners.items():
        psf = field.psf_at(r, c, (size, size))
        psf = psf / psf.sum()
        my, mx = (psf * yy).sum(), (psf * xx).sum()
        widths[key] = float(np.sqrt((psf * ((yy - my) ** 2 + (xx - mx) ** 2)).sum()))
    worst = max(widths, key=widths.get)
    return worst, widths


# === Training ===


# Training order within a seed: the comparisons of the claim first, so a time
# budget that cuts a seed short still leaves them (tables use `MODELS` order).
RUN_ORDER = [
    "coordgate_unet_d1", "unet_d2", "coordgate_unet_d2", "unet_d4",
    "coordconv_unet_d2", "multiwienernet", "unet_d1", "unet_d3",
    "coordgate_unet_d3", "coordconv_unet_d1", "coordconv_unet_d3", "unet_d5",
]  # fmt: skip


def run_list(scale, seeds, ablations=True, ablation_seeds=1):
    """Every model's seed 0, then the ablations (seed 0), then the other
    seeds of the models, then those of the ablations (`ablation_seeds`): a
    time budget cuts the spread of the models before the ablations."""
    runs = [
        {"label": name, "model": name, "coordgate_options": None, "seed": 0}
        for name in RUN_ORDER
    ]

    def ablation_runs(seed):
        return [
            {"label": label, "model": "coordgate_unet_d2", "coordgate_options": opts,
             "seed": seed}
            for label, opts in ABLATIONS.items()
        ] + [
            {"label": label, "model": model, "coordgate_options": None,
             "model_kwargs": {"output_initializer": "zeros"}, "seed": seed}
            for label, model in ZERO_OUTPUT.items()
        ]  # fmt: skip

    if ablations:
        runs += ablation_runs(0)
    runs += [
        {"label": name, "model": name, "coordgate_options": None, "seed": seed}
        for seed in range(1, seeds)
        for name in RUN_ORDER
    ]
    if ablations:
        for seed in range(1, ablation_seeds):
            runs += ablation_runs(seed)
    return runs


def train_run(run, scale, workdir):
    """Trains one run with the library; returns (model, training metrics)."""

    from coordgate_keras import training

    model_kwargs = {"residual": True}
    if scale["base_filters"] is not None and run["model"] != "multiwienernet":
        model_kwargs["base_filters"] = scale["base_filters"]
    if run["model"] == "multiwienernet":
        # Its Wiener filters start from the field's PSFs (2x2 positions), as
        # the authors start from measured PSFs (Gaussians otherwise), and its
        # refinement U-Net is the plain one of every other model here: with the
        # authors' batch norm it trains to below the blurred input in this
        # budget (`multiwienernet/norm=batch` rows; README).
        model_kwargs["psfs"] = "field"
        model_kwargs["normalization"] = None
        if scale["base_filters"] is not None:
            model_kwargs["base_filters"] = max(8, scale["base_filters"] * 3 // 8 * 2)
    if run["coordgate_options"]:
        model_kwargs["coordgate_options"] = run["coordgate_options"]
    model_kwargs.update(run.get("model_kwargs") or {})
    config = training.TrainConfig().replace(
        model=run["model"],
        model_kwargs=model_kwargs,
        image_size=scale["image_size"],
        psf=scale["psf"],
        steps=scale["steps"],
        batch_size=scale["batch_size"],
        train_images=scale["train_images"],
        eval_images=min(16, scale["eval_images"]),
        precision=scale["precision"],
        seed=run["seed"],
        eval_every=0,
        checkpoint_every=scale["steps"],
    )
    metrics = training.train(config, workdir, verbose=0)
    # Scored in float32 whatever the training precision, like a user's model.
    size = scale["image_size"]
    model = training.load_trained(workdir, input_shape=(size, size, 1))
    return model, metrics, config.to_dict()


def trained_gates(model, size, channels=4):
    """The gates of `model`'s first CoordGate at the study's size: the
    `channels` that vary most across the field, `(channels, size, size)`."""
    from coordgate_keras.demo import report

    _, maps = report.gate_maps(model, size=(size, size), channels=channels)
    return maps


def _save_npz(path, arrays):
    atomic_io.atomic_write(path, lambda f: np.savez_compressed(f, **arrays))


def predict(model, x, batch_size=16):
    import keras

    outs = []
    for i in range(0, len(x), batch_size):
        y = model(x[i : i + batch_size], training=False)
        outs.append(np.asarray(keras.ops.convert_to_numpy(y), "float32"))
    return np.clip(np.concatenate(outs), 0.0, 1.0)


def train_all(args, scale):
    from coordgate_keras import training

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "runs.jsonl"
    done = set()
    if log.exists():
        for line in log.read_text().splitlines():
            rec = json.loads(line)
            done.add((rec["label"], rec["seed"]))
    blurred, sharp = eval_set(scale)
    field = psf_field(scale["psf"])
    grid = scale["psf"]["grid_shape"][0]
    corner, widths = worst_corner(field, scale["image_size"])
    half = scale["image_size"] // 2
    rs = slice(corner[0] * half, corner[0] * half + half)
    cs = slice(corner[1] * half, corner[1] * half + half)
    crops = {"sharp": sharp[:4, rs, cs, 0], "blurred": blurred[:4, rs, cs, 0]}
    crops_path = out / "crops.npz"
    if crops_path.exists():
        crops.update(dict(np.load(crops_path)))
    gates_path = out / "gates.npz"
    gates = dict(np.load(gates_path)) if gates_path.exists() else {}
    # A resumed study keeps the environment of its first invocation; later
    # invocations are appended, and every run records the hardware it ran on.
    env = _study.environment()
    study_path = out / "study.json"
    previous = json.loads(study_path.read_text()) if study_path.exists() else {}
    header = {
        "scale": args.scale,
        "scale_config": scale,
        "environment": previous.get("environment", env),
        "resumed_environments": previous.get("resumed_environments", [])
        + ([env] if previous else []),
        "blurred": {
            "psnr": metrics.mean_psnr(sharp, blurred),
            "psnr_pooled": metrics.pooled_psnr(sharp, blurred),
            "tile_psnr": tile_psnr(blurred, sharp, grid),
        },
        "worst_corner": list(corner),
        "corner_psf_widths": {str(k): v for k, v in widths.items()},
    }
    atomic_io.atomic_write_text(study_path, json.dumps(header, indent=1))
    runs = run_list(
        scale,
        args.seeds or scale["seeds"],
        ablations=not args.no_ablations,
        ablation_seeds=args.ablation_seeds,
    )
    if args.models:
        runs = [
            r for r in runs if r["model"] in args.models or r["label"] in args.models
        ]
    start = time.time()
    skipped = []
    for i, run in enumerate(runs):
        if (run["label"], run["seed"]) in done:
            continue
        if args.budget_seconds and time.time() - start > args.budget_seconds:
            skipped.append(run)
            continue
        t0 = time.time()
        workroot = pathlib.Path(args.workroot) if args.workroot else out / "work"
        workdir = workroot / f"{run['label'].replace('/', '_')}_s{run['seed']}"
        model, train_metrics, config = train_run(run, scale, str(workdir))
        pred = predict(model, blurred)
        scores = training.evaluate(model, blurred, sharp)
        rec = {
            **run,
            "num_params": int(model.count_params()),
            "psnr": metrics.mean_psnr(sharp, pred),
            "psnr_pooled": metrics.pooled_psnr(sharp, pred),
            "psnr_per_image": metrics.numpy_psnr(sharp, pred).round(3).tolist(),
            "ssim": float(scores["ssim"]),
            "psnr_library": float(scores["psnr"]),
            "tile_psnr": tile_psnr(pred, sharp, grid),
            "train_seconds": train_metrics.get("seconds"),
            "steps": train_metrics.get("steps"),
            "train_metrics": train_metrics,
            "config": config,
            "wall_seconds": time.time() - t0,
            "hardware": env["hardware"],
        }
        with open(log, "a") as f:
            f.write(json.dumps(rec) + "\n")
        if run["seed"] == 0:
            crops[run["label"]] = pred[:4, rs, cs, 0]
            _save_npz(crops_path, crops)
            if "/" not in run["label"] and run["model"].startswith("coordgate"):
                gates[run["label"]] = trained_gates(model, scale["image_size"])
                _save_npz(gates_path, gates)
        print(
            f"[{i + 1}/{len(runs)}] {run['label']:28s} seed {run['seed']} "
            f"PSNR {rec['psnr']:.2f} dB  SSIM {rec['ssim']:.4f}  "
            f"params {rec['num_params']:,}  {rec['wall_seconds']:.0f}s",
            flush=True,
        )
        if not args.keep_workdirs:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
    if skipped:
        print(f"budget reached: {len(skipped)} runs not started", flush=True)
        atomic_io.atomic_write_text(out / "skipped.json", json.dumps(skipped, indent=1))


# === Analysis (CPU) ===

FAMILIES = {
    "unet": "U-Net",
    "coordconv_unet": "CoordConv U-Net",
    "coordgate_unet": "CoordGate U-Net",
    "multiwienernet": "MultiWienerNet",
}


def wiener(blurred, psf, k):
    """Wiener deconvolution of `(n, H, W)` images by one PSF (reflect-padded)."""
    n, h, w = blurred.shape
    r = psf.shape[0] // 2
    padded = np.pad(blurred, ((0, 0), (r, r), (r, r)), mode="reflect")
    ph, pw = padded.shape[1:]
    kernel = np.zeros((ph, pw))
    kernel[: psf.shape[0], : psf.shape[1]] = psf / psf.sum()
    kernel = np.roll(kernel, (-r, -r), axis=(0, 1))
    transfer = np.fft.rfft2(kernel)
    filt = np.conj(transfer) / (np.abs(transfer) ** 2 + k)
    out = np.fft.irfft2(np.fft.rfft2(padded) * filt, s=(ph, pw))
    return np.clip(out[:, r : r + h, r : r + w], 0.0, 1.0)


def wiener_baselines(scale, blurred, sharp):
    """Wiener with the centre PSF and with the local PSF per tile.

    The regulariser is chosen per method on the held-out set itself (the best
    of a log grid), which flatters the classical baselines.
    """
    field = psf_field(scale["psf"])
    size = scale["image_size"]
    grid = scale["psf"]["grid_shape"][0]
    b, s = blurred[..., 0].astype("float64"), sharp[..., 0].astype("float64")
    ks = np.logspace(-4, 0, 9)
    centre = field.psf_at(size // 2, size // 2, (size, size))
    results = {}
    best = max(ks, key=lambda k: metrics.mean_psnr(s, wiener(b, centre, k)))
    pred = wiener(b, centre, best)
    results["wiener_centre"] = {
        "psnr": metrics.mean_psnr(s, pred),
        "psnr_pooled": metrics.pooled_psnr(s, pred),
        "k": float(best),
        "tile_psnr": tile_psnr(pred[..., None], sharp, grid),
        "pred": pred,
    }
    tile = size // grid

    def local(k):
        out = np.empty_like(b)
        for r in range(grid):
            for c in range(grid):
                psf = field.psf_at(
                    r * tile + tile // 2, c * tile + tile // 2, (size, size)
                )
                full = wiener(b, psf, k)
                rs = slice(r * tile, (r + 1) * tile)
                cs = slice(c * tile, (c + 1) * tile)
                out[:, rs, cs] = full[:, rs, cs]
        return out

    scores = {k: metrics.mean_psnr(s, local(k)) for k in ks}
    best = max(scores, key=scores.get)
    pred = local(best)
    results["wiener_local"] = {
        "psnr": metrics.mean_psnr(s, pred),
        "psnr_pooled": metrics.pooled_psnr(s, pred),
        "k": float(best),
        "tile_psnr": tile_psnr(pred[..., None], sharp, grid),
        "pred": pred,
    }
    return results


def _ssim_numpy(pred, sharp):
    return float(np.mean(metrics.numpy_ssim(sharp, pred)))


def initialised_model(record, scale):
    """The run's model as initialised (seed 0), float32, at the study's size:
    what the analysis counts, scores before training and times."""
    import keras

    from coordgate_keras import training
    from coordgate_keras.zoo import create_model

    size = scale["image_size"]
    config = training.TrainConfig.from_dict(record["config"])
    keras.utils.set_random_seed(0)
    return create_model(
        record["model"],
        input_shape=(size, size, 1),
        **training.builder_kwargs(config, (size, size, 1)),
    )


def model_costs(model):
    """Parameters and MACs of one example."""
    from coordgate_keras.zoo._model_table import count_macs

    return int(model.count_params()), int(count_macs(model))


def init_psnr(model, blurred, sharp):
    """Held-out PSNR of the model as initialised, before any step: how far
    from the identity a residual model starts decides how much of a short
    budget it spends getting back to the blurred input."""
    return metrics.mean_psnr(sharp, predict(model, blurred))


def keras_latency(model, scale, runs=10):
    """Median batch-1 latency (ms) of `model` on this CPU."""
    size = scale["image_size"]
    x = np.random.default_rng(0).random((1, size, size, 1), dtype="float32")
    fn = model.predict_on_batch
    for _ in range(3):
        fn(x)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn(x)
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def tflite_latency(model, scale, tmpdir):
    from coordgate_keras import tflite

    size = scale["image_size"]
    path = os.path.join(tmpdir, f"{model.name}.tflite")
    tflite.export_tflite(model, path, (1, size, size, 1), overwrite=True)
    result = tflite.benchmark(path, threads=2, runs=20, warmup=3)
    return float(result["p50_ms"])


def per_image_psnr(records):
    """Each run's `psnr` as the mean of its per-image PSNRs, in place.

    The first runs of the committed results stored the PSNR of the pooled MSE
    as `psnr`; it moves to `psnr_pooled`, and the stored per-image values
    (rounded to 1e-3 dB) give the package's definition.
    """
    for rec in records:
        if "psnr_pooled" not in rec:
            rec["psnr_pooled"] = rec["psnr"]
            rec["psnr"] = float(np.mean(rec["psnr_per_image"]))
    return records


def aggregate(records):
    by_label = {}
    for rec in records:
        by_label.setdefault(rec["label"], []).append(rec)
    rows = {}
    for label, recs in by_label.items():
        p = np.array([r["psnr"] for r in recs])
        q = np.array([r["ssim"] for r in recs])
        rows[label] = {
            "label": label,
            "model": recs[0]["model"],
            "family": _family(recs[0]["model"]),
            "coordgate_options": recs[0]["coordgate_options"],
            "seeds": sorted(r["seed"] for r in recs),
            "num_params": recs[0]["num_params"],
            "psnr_mean": float(p.mean()),
            "psnr_std": float(p.std(ddof=1)) if len(p) > 1 else None,
            "ssim_mean": float(q.mean()),
            "ssim_std": float(q.std(ddof=1)) if len(q) > 1 else None,
            "train_seconds_mean": float(
                np.mean([r["train_seconds"] or np.nan for r in recs])
            ),
            "tile_psnr_seed0": next(
                (r["tile_psnr"] for r in recs if r["seed"] == 0), None
            ),
        }
    return rows


def _family(model):
    return model.rsplit("_d", 1)[0] if model != "multiwienernet" else model


def _fmt(mean, std, digits=2):
    if std is None:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def analyze(args):
    out = pathlib.Path(args.out)
    study = json.loads((out / "study.json").read_text())
    scale = study["scale_config"]
    records = [json.loads(x) for x in (out / "runs.jsonl").read_text().splitlines()]
    rows = aggregate(per_image_psnr(records))
    blurred, sharp = eval_set(scale)
    print("Wiener baselines ...", flush=True)
    baselines = wiener_baselines(scale, blurred, sharp)
    for base in baselines.values():
        base["ssim"] = _ssim_numpy(base.pop("pred")[..., None], sharp)
    blurred_ssim = _ssim_numpy(blurred, sharp)
    first = {r["label"]: r for r in records if r["seed"] == 0}
    # Without --latency, the latencies of an earlier analysis are kept (same
    # models: they depend on the architecture, not on the training runs).
    earlier, latency_env = {}, _study.environment() if args.latency else None
    if not args.latency and (out / "results.json").exists():
        previous = json.loads((out / "results.json").read_text())
        earlier = previous.get("models", {})
        latency_env = previous.get("latency_environment") or previous.get(
            "analysis_environment"
        )
    import tempfile

    import keras

    for label, row in rows.items():
        rec = first.get(label) or next(r for r in records if r["label"] == label)
        model = initialised_model(rec, scale)
        row["num_params"], row["macs"] = model_costs(model)
        row["init_psnr"] = init_psnr(model, blurred, sharp)
        for key in ("keras_ms", "tflite_ms", "tflite_error"):
            if key in earlier.get(label, {}):
                row[key] = earlier[label][key]
        if args.latency and "/" not in label:
            print(f"latency {label} ...", flush=True)
            row["keras_ms"] = keras_latency(model, scale)
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    row["tflite_ms"] = tflite_latency(model, scale, tmp)
                except Exception as error:  # reported, not hidden
                    row["tflite_ms"] = None
                    row["tflite_error"] = str(error)[:200]
        keras.backend.clear_session()
    results = {
        "study": "deblur2d",
        "scale": study["scale"],
        "scale_config": scale,
        "training_environment": study["environment"],
        "resumed_environments": study.get("resumed_environments", []),
        "analysis_environment": _study.environment(),
        "latency_environment": latency_env,
        "blurred": {
            **study["blurred"],
            "psnr": metrics.mean_psnr(sharp, blurred),
            "psnr_pooled": metrics.pooled_psnr(sharp, blurred),
            "ssim": blurred_ssim,
        },
        "baselines": baselines,
        "models": rows,
        "runs": records,
        "worst_corner": study["worst_corner"],
    }
    atomic_io.atomic_write_text(out / "results.json", json.dumps(results, indent=1))
    atomic_io.atomic_write_text(out / "results.md", render_markdown(results))
    plots(out, results)
    print((out / "results.md").read_text())


def _init(row):
    value = row.get("init_psnr")
    return "-" if value is None else f"{value:.2f}"


def _hardware(env):
    # `_study.environment()`'s key, or the device list of the first results
    # files (full_h100's study.json).
    return env.get("hardware") or ", ".join(env["devices"])


def _trained_on(results):
    """The first invocation's hardware, then any other hardware runs were added on."""
    first = _hardware(results["training_environment"])
    later = []
    for env in results.get("resumed_environments", []):
        hardware = _hardware(env)
        if hardware != first and hardware not in later:
            later.append(hardware)
    return first + "".join(f" (runs added later on {h})" for h in later)


def render_markdown(results):
    scale, env = results["scale_config"], results["training_environment"]
    seeds = max(len(r["seeds"]) for r in results["models"].values())
    lines = [
        f"# 2D deblurring study ({results['scale']} scale)",
        "",
        "<!-- Generated by python -m benchmarks.deblur2d --analyze; do not edit. -->",
        "",
        f"Trained on {_trained_on(results)} ({env['backend']} backend, Keras "
        f"{env.get('keras') or env['keras_version']}, coordgate-keras "
        f"{env.get('coordgate_keras') or env['package_version']}). "
        f"{scale['image_size']}x{scale['image_size']} images, Zernike PSF field "
        f"{scale['psf']['grid_shape']} grid of {scale['psf']['kernel_size']} px "
        f"PSFs, Poisson+Gaussian noise; every model: {scale['steps']} steps, batch "
        f"{scale['batch_size']}, Adam 1e-3 cosine, MSE, residual output, "
        f"{scale['precision']}"
        + (f", base_filters {scale['base_filters']}" if scale["base_filters"] else "")
        + f"; up to {seeds} seeds (mean ± sample std). Held-out: "
        f"{scale['eval_images']} images, one set for all.",
        "",
        "| model | params | MACs | PSNR (dB) | SSIM | PSNR at init | train s |"
        + (
            " Keras ms | TFLite ms |"
            if any("keras_ms" in r for r in results["models"].values())
            else ""
        ),
        "|---|---:|---:|---:|---:|---:|---:|"
        + (
            "---:|---:|"
            if any("keras_ms" in r for r in results["models"].values())
            else ""
        ),
    ]
    b = results["blurred"]
    lines.append(
        f"| blurred input | - | - | {b['psnr']:.2f} | {b['ssim']:.4f} | - | - |"
    )
    for name in ("wiener_centre", "wiener_local"):
        base = results["baselines"][name]
        text = (
            "Wiener, centre PSF"
            if name == "wiener_centre"
            else ("Wiener, local PSF per tile")
        )
        lines.append(
            f"| {text} (best K={base['k']:.0e}) | - | - | "
            f"{base['psnr']:.2f} | {base['ssim']:.4f} | - | - |"
        )
    models = sorted(
        (r for r in results["models"].values() if "/" not in r["label"]),
        key=lambda r: MODELS.index(r["label"]),
    )
    ablations = [r for r in results["models"].values() if "/" in r["label"]]
    for row in models + ablations:
        extra = ""
        if "keras_ms" in row:
            tfl = row.get("tflite_ms")
            extra = (
                f" {row['keras_ms']:.1f} | {tfl:.1f} |"
                if tfl
                else (f" {row['keras_ms']:.1f} | - |")
            )
        lines.append(
            f"| `{row['label']}` ({len(row['seeds'])} seeds) | "
            f"{row['num_params']:,} | {row['macs'] / 1e9:.2f} G | "
            f"{_fmt(row['psnr_mean'], row['psnr_std'])} | "
            f"{_fmt(row['ssim_mean'], row['ssim_std'], 4)} | "
            f"{_init(row)} | {row['train_seconds_mean']:.0f} |{extra}"
        )
    lines += [
        "",
        "PSNR: the mean over the held-out images of each image's PSNR, the "
        "package's definition (`training.metrics.mean_psnr`, as in the weights "
        "table); `results.json` also has the PSNR of the pooled MSE "
        "(`psnr_pooled`), and the per-tile maps of `psnr_vs_position.png` are "
        "pooled over the images.",
        "",
        "PSNR at init: the held-out PSNR of the model as initialised (seed 0), "
        "before any step. Every model is residual (input + f(input)), so this says "
        "how far from the blurred input it starts, i.e. how much of the budget it "
        "spends getting back there.",
        "",
        "Rows `a/option` are model `a` with one option changed (`cg_d2`: "
        "`coordgate_unet_d2`'s CoordGate options; seed 0 unless more are listed). "
        "`*/zero_output`: the output 1x1 convolution starts at zero "
        "(`output_initializer='zeros'`), so the untrained network is the identity "
        "(`cc_d2`: `coordconv_unet_d2`). "
        "`multiwienernet/norm=batch`: the zoo's default MultiWienerNet (the authors' "
        "batch norm), as trained before the study switched to the plain U-Net's "
        "setting (`gauss_psfs`: Wiener filters started as Gaussians, not from the "
        "field's PSFs).",
        "",
    ]
    if any("keras_ms" in r for r in results["models"].values()):
        env = results.get("latency_environment") or results["analysis_environment"]
        lines += [
            "Latency: median of batch-1 calls at the study's image size, random "
            f"weights, float32, measured by `--analyze --latency` on {_hardware(env)}"
            f" (load average at start {env['load_average_at_start']}): Keras "
            f"`predict_on_batch` on the {env['backend']} backend, and the float32 "
            "TFLite export (LiteRT, XNNPACK, 2 threads).",
            "",
        ]
    return "\n".join(lines)


def plots(out, results):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results["models"].values() if "/" not in r["label"]]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for family, title in FAMILIES.items():
        fam = sorted(
            (r for r in rows if r["family"] == family), key=lambda r: r["num_params"]
        )
        if not fam:
            continue
        ax.errorbar(
            [r["num_params"] for r in fam],
            [r["psnr_mean"] for r in fam],
            yerr=[r["psnr_std"] or 0 for r in fam],
            marker="o",
            capsize=3,
            label=title,
        )
        for r in fam:
            ax.annotate(
                r["label"].rsplit("_", 1)[-1],
                (r["num_params"], r["psnr_mean"]),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=7,
            )
    for name, style in (("wiener_local", ":"), ("wiener_centre", "-.")):
        ax.axhline(
            results["baselines"][name]["psnr"],
            color="gray",
            ls=style,
            label=name.replace("_", ", "),
        )
    ax.axhline(results["blurred"]["psnr"], color="k", ls="--", label="blurred input")
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("held-out PSNR (dB)")
    ax.set_title(f"2D deblurring, {results['scale']} scale")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "psnr_vs_params.png", dpi=110)
    plt.close(fig)

    # PSNR across the field for the best model of each family.
    best = {}
    for r in rows:
        if r["tile_psnr_seed0"] and (
            r["family"] not in best or r["psnr_mean"] > best[r["family"]]["psnr_mean"]
        ):
            best[r["family"]] = r
    panels = (
        [("blurred input", results["blurred"]["tile_psnr"])]
        + [(f"{b['label']}", b["tile_psnr_seed0"]) for b in best.values()]
        + [("Wiener, local PSF", results["baselines"]["wiener_local"]["tile_psnr"])]
    )
    vmin = min(np.min(p) for _, p in panels)
    vmax = max(np.max(p) for _, p in panels)
    fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3.2))
    for ax, (title, tiles) in zip(axes, panels):
        handle = ax.imshow(tiles, vmin=vmin, vmax=vmax, cmap="viridis")
        ax.set_title(f"{title}\n{np.mean(tiles):.1f} dB mean", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(
        handle, ax=axes, fraction=0.02, label="PSNR per tile, pooled over images (dB)"
    )
    fig.savefig(out / "psnr_vs_position.png", dpi=110, bbox_inches="tight")
    plt.close(fig)

    crops_path = out / "crops.npz"
    if crops_path.exists():
        crops = dict(np.load(crops_path))
        names = ["sharp", "blurred"] + [
            b["label"] for b in best.values() if b["label"] in crops
        ]
        fig, axes = plt.subplots(1, len(names), figsize=(2.6 * len(names), 2.9))
        for ax, name in zip(axes, names):
            ax.imshow(crops[name][0], cmap="gray", vmin=0, vmax=1)
            ax.set_title(name, fontsize=8)
            ax.axis("off")
        fig.suptitle(
            f"worst corner {results['worst_corner']} of held-out image 0", fontsize=9
        )
        fig.savefig(out / "corner_crops.png", dpi=110, bbox_inches="tight")
        plt.close(fig)
    plot_gates(out, results, plt)


def plot_gates(out, results, plt):
    """Gate maps of the trained CoordGate U-Nets (seed 0), 4 channels each. A
    results folder whose runs saved no gates (before `gates.npz` existed)
    shows the packaged `coordgate_unet_d1` weights instead, labelled so."""
    size = results["scale_config"]["image_size"]
    gates_path = out / "gates.npz"
    if gates_path.exists():
        gates = dict(np.load(gates_path))
        source = "trained in this study, seed 0"
    else:
        from coordgate_keras.zoo import create_model

        model = create_model("coordgate_unet_d1", weights="zernike_256")
        gates = {"coordgate_unet_d1 (packaged)": trained_gates(model, size)}
        source = (
            "this folder's runs saved no gates:\npackaged zernike_256 weights, "
            "trained by the recipe at 256x256, shown at the study's size"
        )
    names = [n for n in MODELS if n in gates] + [n for n in gates if n not in MODELS]
    channels = max(len(gates[n]) for n in names)
    fig, axes = plt.subplots(
        len(names),
        channels,
        figsize=(2.2 * channels, 2.6 * len(names) + 0.4),
        squeeze=False,
        layout="constrained",
    )
    for row, name in zip(axes, names):
        for k, ax in enumerate(row):
            ax.axis("off")
            if k < len(gates[name]):
                ax.imshow(gates[name][k], cmap="magma")
                ax.set_title(f"{name}\nchannel {k}", fontsize=7)
    fig.suptitle(f"First CoordGate's gates ({source})", fontsize=8)
    fig.savefig(out / "gate_maps.png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--quick", dest="scale", action="store_const", const="quick")
    mode.add_argument("--full", dest="scale", action="store_const", const="full")
    mode.add_argument("--analyze", dest="scale", action="store_const", const=None)
    parser.add_argument("--out", default=None, help="results folder")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None, help="override steps")
    parser.add_argument("--models", nargs="*", default=None)
    parser.add_argument("--no-ablations", action="store_true")
    parser.add_argument(
        "--ablation-seeds",
        type=int,
        default=1,
        help="seeds per ablation (default 1; extra ones run after the models')",
    )
    parser.add_argument(
        "--budget-seconds",
        type=float,
        default=None,
        help="stop starting runs after this long (default: 40 min for --quick, "
        "none for --full)",
    )
    parser.add_argument(
        "--no-analyze", action="store_true", help="train only (no tables, plots)"
    )
    parser.add_argument("--keep-workdirs", action="store_true")
    parser.add_argument(
        "--workroot", default=None, help="training workdirs (default: OUT/work)"
    )
    parser.add_argument(
        "--latency",
        action="store_true",
        help="with --analyze: batch-1 Keras and TFLite latency",
    )
    args = parser.parse_args(argv)
    if args.scale is None:
        if not args.out:
            parser.error("--analyze needs --out (a folder written by --quick/--full)")
        analyze(args)
        return 0
    scale = dict(SCALES[args.scale])
    if args.steps:
        scale["steps"] = args.steps
    args.out = args.out or str(RESULTS / args.scale)
    if args.budget_seconds is None and args.scale == "quick":
        args.budget_seconds = QUICK_BUDGET_SECONDS
    train_all(args, scale)
    if not args.no_analyze:
        analyze(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
