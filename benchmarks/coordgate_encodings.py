"""Why does CoordGate's "fourier" encoding score below the paper's "mlp"?

A probe (one seed, 128x128, H100) found `coordgate_unet_d2` with
`encoding="fourier"` at 40.6 dB against 42.2 dB with the paper's "mlp". This
study tests one explanation: the default fourier features reach octave
`2**5 * pi`, a period of 1/32 of the image (4 px at 128x128), so a freshly
initialised gate is striped at that period. A gate that multiplies feature
maps by stripes modulates their spectrum (aliasing-like copies the following
convolutions must undo), while the optics to be learned vary slowly: a PSF
field on an 8x8 grid, or a 1D blur width that grows linearly. If that is the
cause, fewer octaves should close the gap and the learned gates of the
default encoding should keep more high-frequency energy.

Two parts, both on CPU:

1. Gates at initialisation (no training): fraction of each channel's gate
   variance above `--cutoff` cycles per image, for mlp, fourier with 1..6
   octaves and the coarse "map", over 10 random initialisations, at 128x128.
2. The 1D forward task of `sv_conv1d.py` (learn a convolution whose width
   varies along the signal): CoordGate CNN (3 conv, width 16) with each
   encoding, 3 seeds, same budget as that study; test MSE and the
   high-frequency fraction of the trained gates.

The 2D deblurring ablation (`cg_d2/fourier_octaves=2` next to
`cg_d2/encoding=fourier` in `deblur2d.py`) tests the same on the real task.

    python -m benchmarks.coordgate_encodings --quick   # ~10 min on 2 CPU cores
"""

import argparse
import dataclasses
import pathlib
import time

import keras
import numpy as np

from benchmarks import _study

RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "coordgate_encodings"

# label -> CoordGate options (the paper's defaults otherwise).
VARIANTS = {
    "mlp (paper)": {"encoding": "mlp"},
    "fourier, 1 octave": {"encoding": "fourier", "num_frequencies": 1},
    "fourier, 2 octaves": {"encoding": "fourier", "num_frequencies": 2},
    "fourier, 3 octaves": {"encoding": "fourier", "num_frequencies": 3},
    "fourier, 6 octaves (default)": {"encoding": "fourier", "num_frequencies": 6},
    "map 8": {"encoding": "map", "map_size": 8},
}


# === Gate spectra ===


def high_frequency_fraction(gate, cutoff):
    """Fraction of the gate's variance above `cutoff` cycles per image.

    Args:
        gate: array `(*spatial, channels)`, one or two spatial axes.
        cutoff: float. Radial frequency in cycles per image (per signal in 1D).

    Returns:
        The fraction pooled over channels (total high-frequency power over total
        power of the mean-free gate), or NaN for a constant gate.
    """
    gate = np.asarray(gate, np.float64)
    spatial = gate.ndim - 1
    axes = tuple(range(spatial))
    centred = gate - gate.mean(axis=axes, keepdims=True)
    # Mirror-extend each spatial axis (a DCT-II's even extension), so that the
    # jump between opposite edges of a non-periodic gate (a ramp) is not
    # counted as high-frequency content.
    for axis in axes:
        centred = np.concatenate([centred, np.flip(centred, axis)], axis=axis)
    power = np.abs(np.fft.fftn(centred, axes=axes)) ** 2
    radius = np.zeros(centred.shape[:spatial])
    for axis, n in enumerate(centred.shape[:spatial]):
        f = np.abs(np.fft.fftfreq(n) * n) / 2  # cycles per original image
        shape = [1] * spatial
        shape[axis] = n
        radius = radius + f.reshape(shape) ** 2
    radius = np.sqrt(radius)
    total = power.sum()
    if total <= 0:
        return float("nan")
    return float(power[radius > cutoff].sum() / total)


def gate_of(layer, spatial_shape):
    return np.asarray(keras.ops.convert_to_numpy(layer.compute_gate(spatial_shape)))


def init_spectra(size, channels, inits, cutoff):
    """Part 1: the high-frequency fraction of freshly initialised 2D gates."""
    from coordgate_keras.layers import CoordGate

    rows = []
    for label, options in VARIANTS.items():
        fractions, spreads = [], []
        for seed in range(inits):
            keras.utils.set_random_seed(seed)
            layer = CoordGate(**options)
            layer.build((None, size, size, channels))
            gate = gate_of(layer, (size, size))
            fractions.append(high_frequency_fraction(gate, cutoff))
            # Relative spatial spread of each channel's gate (std / mean abs).
            std = gate.std(axis=(0, 1))
            mean = np.abs(gate).mean(axis=(0, 1)) + 1e-12
            spreads.append(float(np.median(std / mean)))
        rows.append(
            {
                "variant": label,
                "options": options,
                "hf_fraction": _study.mean_std(fractions),
                "relative_spread": _study.mean_std(spreads),
                "inits": inits,
            }
        )
    return rows


# === 1D task ===


@dataclasses.dataclass(frozen=True)
class Task1D:
    width: int = 16
    seeds: tuple = (0, 1, 2)


def trained_1d(task, cutoff, log):
    """Part 2: every variant on the 1D forward task of `sv_conv1d.py`."""
    import sv_conv1d

    config = sv_conv1d.PRESETS["quick"]
    x_train, y_train, x_test, y_test, _ = sv_conv1d.make_task("forward", config)
    runs = []
    for label, options in VARIANTS.items():
        for seed in task.seeds:
            keras.backend.clear_session()
            keras.utils.set_random_seed(seed)
            family = sv_conv1d.Family(
                label, "coordgate_cnn1d", 3, {"coordgate_options": options}
            )
            model = sv_conv1d.build(family, task.width, config)
            start = time.perf_counter()
            sv_conv1d.train(model, x_train, y_train, config, seed)
            seconds = time.perf_counter() - start
            mse = float(np.mean((sv_conv1d.predict(model, x_test) - y_test) ** 2))
            gates = [
                gate_of(layer, (config.length,))
                for layer in model.layers
                if type(layer).__name__ == "CoordGate"
            ]
            hf = float(np.mean([high_frequency_fraction(g, cutoff) for g in gates]))
            runs.append(
                {
                    "variant": label,
                    "options": options,
                    "seed": seed,
                    "params": int(model.count_params()),
                    "test_mse": mse,
                    "gate_hf_fraction": hf,
                    "train_seconds": round(seconds, 2),
                }
            )
            log(
                f"1D {label:30s} seed {seed}: MSE {mse:.3g}, gate HF {hf:.3f}, "
                f"{seconds:.0f}s"
            )
    summary = []
    for label in VARIANTS:
        group = [r for r in runs if r["variant"] == label]
        summary.append(
            {
                "variant": label,
                "params": group[0]["params"],
                "test_mse": _study.mean_std([r["test_mse"] for r in group]),
                "gate_hf_fraction": _study.mean_std(
                    [r["gate_hf_fraction"] for r in group]
                ),
                "seeds": len(group),
            }
        )
    return {
        "steps": config.epochs * config.steps_per_epoch,
        "batch_size": config.batch_size,
        "length": config.length,
        "sigma_range": config.sigma_range,
        "runs": runs,
        "summary": summary,
    }


# === Report ===


def _pm(mean_std, fmt, missing="-"):
    mean, std = mean_std
    if mean is None or not np.isfinite(mean):
        return missing
    return f"{fmt.format(mean)} ± {fmt.format(std)}"


def render_markdown(results):
    c = results["config"]
    lines = [
        "# CoordGate encodings: fourier vs mlp",
        "",
        "<!-- Generated by python -m benchmarks.coordgate_encodings; do not edit. -->",
        "",
        f"HF fraction: share of a gate's variance above {c['cutoff']} cycles per "
        "image (per signal in 1D), pooled over channels.",
        "",
        f"## 1. Gates at initialisation ({c['size']}x{c['size']}, "
        f"{c['channels']} channels, {c['inits']} initialisations)",
        "",
        "![one channel of each gate at initialisation](init_gates.png)",
        "",
    ]
    lines.append(
        _study.markdown_table(
            ["variant", "HF fraction", "spatial std / mean abs(gate)"],
            [
                [
                    r["variant"],
                    _pm(r["hf_fraction"], "{:.3f}", "- (constant gate)"),
                    _pm(r["relative_spread"], "{:.2f}"),
                ]
                for r in results["init"]
            ],
        )
    )
    t = results["trained_1d"]
    lines += [
        "",
        f"## 2. Trained, 1D forward task (CoordGate CNN, 3 conv, width "
        f"{c['width_1d']}; {t['steps']} steps, batch {t['batch_size']}, "
        f"{t['length']} samples, sigma {t['sigma_range'][0]} -> "
        f"{t['sigma_range'][1]})",
        "",
    ]
    lines.append(
        _study.markdown_table(
            ["variant", "params", "test MSE", "trained gate HF fraction", "seeds"],
            [
                [
                    r["variant"],
                    f"{r['params']:,}",
                    _pm(r["test_mse"], "{:.3g}"),
                    _pm(r["gate_hf_fraction"], "{:.3f}"),
                    r["seeds"],
                ]
                for r in t["summary"]
            ],
        )
    )
    lines += [
        "",
        "## Environment",
        "",
        _study.environment_markdown(results["environment"]),
    ]
    return "\n".join(lines) + "\n"


def plot_init_gates(size, channels, path):
    """One channel of a freshly initialised gate per variant (seed 0)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from coordgate_keras.layers import CoordGate

    fig, axes = plt.subplots(1, len(VARIANTS), figsize=(2.2 * len(VARIANTS), 2.6))
    for ax, (label, options) in zip(axes, VARIANTS.items()):
        keras.utils.set_random_seed(0)
        layer = CoordGate(**options)
        layer.build((None, size, size, channels))
        gate = gate_of(layer, (size, size))
        # The channel with the largest spread, so a gate that is zero is not shown.
        k = int(np.argmax(gate.std(axis=(0, 1))))
        ax.imshow(gate[..., k], cmap="magma")
        constant = float(gate[..., k].std()) == 0.0
        ax.set_title(label + ("\n(constant at init)" if constant else ""), fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"CoordGate gate at initialisation ({size}x{size}, one channel)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the committed setting")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--inits", type=int, default=10)
    parser.add_argument("--cutoff", type=float, default=4.0)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=None, help="1D steps override")
    parser.add_argument("--no-train", action="store_true", help="part 1 only")
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out)
    env = _study.environment()
    print("part 1: gates at initialisation", flush=True)
    init = init_spectra(args.size, args.channels, args.inits, args.cutoff)
    for r in init:
        print(f"  {r['variant']:30s} HF {r['hf_fraction'][0]:.3f}", flush=True)
    results = {
        "study": "coordgate_encodings",
        "config": {
            "size": args.size,
            "channels": args.channels,
            "inits": args.inits,
            "cutoff": args.cutoff,
            "width_1d": Task1D.width,
        },
        "environment": env,
        "init": init,
    }
    if not args.no_train:
        if args.steps is not None:
            import sv_conv1d

            sv_conv1d.PRESETS["quick"] = dataclasses.replace(
                sv_conv1d.PRESETS["quick"], steps=args.steps
            )
        task = Task1D(seeds=tuple(range(args.seeds)))
        results["trained_1d"] = trained_1d(
            task, args.cutoff, lambda m: print(m, flush=True)
        )
    if args.no_train:  # a look at part 1, not the committed results
        out = out / "init_only"
    _study.write_json(out / "results.json", results)
    plot_init_gates(args.size, args.channels, out / "init_gates.png")
    if "trained_1d" in results:
        _study.write_text(out / "results.md", render_markdown(results))
    print(f"wrote {out}", flush=True)


if __name__ == "__main__":
    main()
