"""1D study: can a CNN learn a spatially-varying convolution?

The paper's first claim: in 1D a translation-invariant CNN cannot learn a
spatially-varying convolution well, and CoordGate can, cheaply. Random signals
(steps, peaks, spikes) are blurred by a Gaussian whose width grows linearly
along the signal, sigma 0.5 -> 6 samples over 256
(`coordgate_keras.data.varying_blur_1d`; the exact operator is the matrix of
`varying_blur_1d_matrix`). Two tasks, the same data for every model:

- `forward` (the paper's task): sharp -> blurred, learn the convolution itself.
  The target is linear, so the true kernel at every position is known exactly.
- `deconv`: blurred + Gaussian noise (std 0.01) -> sharp, the deblurring
  direction.

Models, all with a 49-sample receptive field (the support of the widest
kernel): Conv1D CNNs of 2, 3 and 6 layers, CoordConv1D, CoordGate after every
conv (the paper's "mlp" encoder and "fourier"), and the locally connected
network (a free kernel per position, the fully spatially-varying reference),
each at several widths. Same optimizer, steps, batch and data for all, several
seeds. Closed-form NumPy references: the input itself, the best
translation-invariant linear filter (49 taps + bias, least squares on the
training set) and the best position-dependent linear filter (49 taps + bias per
position; exact for `forward`).

Effective kernel: row i of the Jacobian d output_i / d input of the trained
model, by central finite differences (eps 1e-3) of its outputs,
averaged over a few test signals (exact for a linear model, the local
linearisation otherwise). Its distance to the true operator (`forward`) or to
the best position-dependent linear filter (`deconv`) is reported as a relative
Frobenius error.

    python -m benchmarks.sv_conv1d --quick                    # 2 CPU cores
    KERAS_BACKEND=jax python -m benchmarks.sv_conv1d --full   # one GPU

Writes results.json (after every model), results.md, mse_vs_params.png,
effective_kernels.png and kernel_error_vs_position.png to `--out` (default
benchmarks/results/sv_conv1d/ for --quick, benchmarks/results/sv_conv1d/full/
for --full). `--replot DIR` redraws them from DIR/results.json.
"""

import argparse
import dataclasses
import json
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Full float32 matmuls/convs on GPUs (no TF32): the finite-difference Jacobians
# need it, and these small models are not compute-bound anyway.
os.environ.setdefault("JAX_DEFAULT_MATMUL_PRECISION", "highest")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import _study  # noqa: E402
from coordgate_keras.data import (  # noqa: E402
    varying_blur_1d,
    varying_blur_1d_matrix,
)
from coordgate_keras.zoo import create_model  # noqa: E402

RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "sv_conv1d"
TASKS = ("forward", "deconv")


@dataclasses.dataclass(frozen=True)
class Family:
    """A line of the plot: one zoo model at one depth, several widths."""

    label: str
    model: str
    depth: int
    options: dict = dataclasses.field(default_factory=dict)


FAMILIES = {
    "cnn_d2": Family("CNN, 2 conv", "cnn1d", 2),
    "cnn_d3": Family("CNN, 3 conv", "cnn1d", 3),
    "cnn_d6": Family("CNN, 6 conv", "cnn1d", 6),
    "coordconv_d3": Family("CoordConv, 3 conv", "coordconv_cnn1d", 3),
    "coordgate_mlp_d3": Family(
        "CoordGate mlp (paper), 3 conv",
        "coordgate_cnn1d",
        3,
        {"coordgate_options": {"encoding": "mlp"}},
    ),
    "coordgate_fourier_d3": Family(
        "CoordGate fourier, 3 conv",
        "coordgate_cnn1d",
        3,
        {"coordgate_options": {"encoding": "fourier"}},
    ),
    "locally_connected_d3": Family(
        "Locally connected, 3 layers", "locally_connected_cnn1d", 3
    ),
}


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """Everything that defines a run of the study (recorded in results.json).

    `widths` maps task -> family (a key of FAMILIES) -> widths to train.
    """

    scale: str
    widths: dict
    length: int = 256
    sigma_range: tuple = (0.5, 6.0)
    deconv_noise_std: float = 0.01
    num_train: int = 1024
    num_test: int = 512
    train_seed: int = 0
    test_seed: int = 1
    batch_size: int = 32
    steps: int = 1024
    learning_rate: float = 2e-3
    seeds: tuple = (0, 1, 2)
    receptive_field: int = 49
    kernel_positions: tuple = (32, 128, 224)
    kernel_probes: int = 8
    kernel_width: int = 16
    fd_eps: float = 1e-3

    @property
    def tasks(self):
        return tuple(self.widths)

    @property
    def steps_per_epoch(self):
        return self.num_train // self.batch_size

    @property
    def epochs(self):
        return max(1, round(self.steps / self.steps_per_epoch))


# The same model set at both scales: the forward task (the claim) gets every
# family at several widths, deconv one width per family.
_WIDTHS = {
    "forward": {
        "cnn_d2": (16,),
        "cnn_d3": (8, 16, 32),
        "cnn_d6": (16,),
        "coordconv_d3": (8, 16),
        "coordgate_mlp_d3": (8, 16),
        "coordgate_fourier_d3": (8, 16),
        "locally_connected_d3": (4,),
    },
    "deconv": {
        "cnn_d3": (16,),
        "cnn_d6": (16,),
        "coordconv_d3": (16,),
        "coordgate_mlp_d3": (16,),
        "coordgate_fourier_d3": (16,),
        "locally_connected_d3": (4,),
    },
}
PRESETS = {
    "quick": StudyConfig(scale="quick", widths=_WIDTHS),
    "full": StudyConfig(
        scale="full",
        widths=_WIDTHS,
        num_train=4096,
        batch_size=128,
        kernel_probes=16,
    ),
}


# === Data and closed-form references ===


def make_task(task, config):
    """`(x_train, y_train, x_test, y_test, operator)` of one task, float32
    `(n, length, 1)` arrays; `operator` is the exact linear map for "forward"
    and None for "deconv"."""
    if task not in TASKS:
        raise ValueError(
            f"Invalid value for argument `task`. Expected one of {TASKS}. "
            f"Received: task={task!r}"
        )
    noise = config.deconv_noise_std if task == "deconv" else 0.0
    common = dict(length=config.length, sigma_range=config.sigma_range)
    blurred_train, sharp_train = varying_blur_1d(
        config.num_train, noise_std=noise, seed=config.train_seed, **common
    )
    blurred_test, sharp_test = varying_blur_1d(
        config.num_test, noise_std=noise, seed=config.test_seed, **common
    )
    if task == "forward":
        operator = varying_blur_1d_matrix(config.length, config.sigma_range)
        return sharp_train, blurred_train, sharp_test, blurred_test, operator
    return blurred_train, sharp_train, blurred_test, sharp_test, None


def _windows(x, radius):
    """`(n, length, 2 * radius + 1)` zero-padded windows of `(n, length)`."""
    length = x.shape[1]
    padded = np.pad(x, ((0, 0), (radius, radius)))
    return np.stack([padded[:, j : j + length] for j in range(2 * radius + 1)], -1)


def _least_squares(features, targets, ridge):
    """Ridge-regularised least squares with a bias column (relative `ridge`)."""
    features = np.concatenate([features, np.ones((len(features), 1))], axis=1)
    gram = features.T @ features
    gram += ridge * np.trace(gram) / len(gram) * np.eye(len(gram))
    return np.linalg.solve(gram, features.T @ targets)


def linear_references(x_train, y_train, x_test, y_test, radius, ridge=1e-9):
    """Closed-form linear baselines, fitted on the training pairs.

    Returns a dict name -> `{"test_mse", "operator", "bias"}` (`operator` the
    `(length, length)` matrix, `bias` per output position) for:

    - `"identity"`: the input itself.
    - `"best_shift_invariant_linear"`: one `2 * radius + 1`-tap filter plus
      bias for every position ("same" zero padding): the best a linear
      translation-invariant network with this receptive field can do.
    - `"best_position_dependent_linear"`: a separate filter and bias at every
      position: the linear analogue of the locally connected network.
    """
    x_train, y_train, x_test, y_test = (
        np.asarray(a, np.float64).reshape(len(a), -1)
        for a in (x_train, y_train, x_test, y_test)
    )
    n, length = x_train.shape
    taps = 2 * radius + 1
    offsets = np.arange(-radius, radius + 1)
    train_windows = _windows(x_train, radius)

    def banded(rows):
        # rows[i, t] multiplies input i + offsets[t]; drop taps outside the signal.
        operator = np.zeros((length, length))
        for i in range(length):
            j = i + offsets
            keep = (j >= 0) & (j < length)
            operator[i, j[keep]] = rows[i, keep]
        return operator

    refs = {
        "identity": {"operator": np.eye(length), "bias": np.zeros(length)},
    }
    coef = _least_squares(train_windows.reshape(-1, taps), y_train.reshape(-1), ridge)
    refs["best_shift_invariant_linear"] = {
        "operator": banded(np.tile(coef[:taps], (length, 1))),
        "bias": np.full(length, coef[taps]),
    }
    rows, bias = np.zeros((length, taps)), np.zeros(length)
    for i in range(length):
        c = _least_squares(train_windows[:, i], y_train[:, i], ridge)
        rows[i], bias[i] = c[:taps], c[taps]
    refs["best_position_dependent_linear"] = {
        "operator": banded(rows),
        "bias": bias,
    }
    for ref in refs.values():
        prediction = x_test @ ref["operator"].T + ref["bias"]
        ref["test_mse"] = float(np.mean((prediction - y_test) ** 2))
    return refs


# === Models ===


def build(family, width, config):
    """The zoo model of `family` (a key of FAMILIES, or a `Family`) at `width`
    channels, with the kernel size that gives every depth the same receptive
    field."""
    spec = family if isinstance(family, Family) else FAMILIES[family]
    kernel_size = (config.receptive_field - 1) // spec.depth + 1
    if spec.depth * (kernel_size - 1) + 1 != config.receptive_field:
        raise ValueError(
            "Invalid value for argument `receptive_field`. Expected depth * "
            f"(kernel_size - 1) + 1 for an integer kernel size at depth "
            f"{spec.depth}. Received: receptive_field={config.receptive_field}"
        )
    return create_model(
        spec.model,
        input_shape=(config.length, 1),
        depth=spec.depth,
        filters=width,
        kernel_size=kernel_size,
        **spec.options,
    )


def use_xla():
    """XLA on GPU and on JAX; plain TensorFlow on CPU (XLA is slower there)."""
    from coordgate_keras.utils import system

    return keras.backend.backend() == "jax" or bool(system.accelerators())


def train(model, x, y, config, seed):
    """Plain `fit` with the study's optimizer; returns the final training loss."""
    keras.utils.set_random_seed(seed)
    schedule = keras.optimizers.schedules.CosineDecay(
        config.learning_rate, config.epochs * config.steps_per_epoch, alpha=0.01
    )
    model.compile(
        optimizer=keras.optimizers.Adam(schedule), loss="mse", jit_compile=use_xla()
    )
    history = model.fit(
        x,
        y,
        batch_size=config.batch_size,
        epochs=config.epochs,
        shuffle=True,
        verbose=0,
    )
    return float(history.history["loss"][-1])


def predict(model, x, batch_size=512):
    """Model outputs as float64 NumPy, by direct calls in batches (no compiled
    predict function to build for each model)."""
    outputs = [
        keras.ops.convert_to_numpy(model(x[i : i + batch_size], training=False))
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(outputs).astype(np.float64)


def effective_operator(model, probes, eps=1e-3):
    """Mean Jacobian `J[i, j] = d output_i / d input_j` over `probes`.

    Central finite differences of the model's output: every input sample is
    perturbed by +-eps in its own batch row, so one probe costs `2 * length`
    forward passes.

    Args:
        model: a Keras model `(batch, length, 1) -> (batch, length, 1)`.
        probes: array `(n, length, 1)` of inputs to linearise around.
        eps: float. Finite-difference step.

    Returns:
        A float64 array `(length, length)`.
    """
    probes = np.asarray(probes, np.float32)
    length = probes.shape[1]
    step = eps * np.eye(length, dtype=np.float32)[:, :, None]
    jacobian = np.zeros((length, length))
    for probe in probes:
        outputs = predict(model, np.concatenate([probe + step, probe - step]))[..., 0]
        # outputs[j, i]: output i with input j perturbed -> column j of J.
        jacobian += (outputs[:length] - outputs[length:]).T / (2 * eps)
    return jacobian / len(probes)


def kernel_rows(operator, positions, radius):
    """Rows of `operator` at `positions`, as offsets -radius..radius (NaN off
    the signal): `{position: list}`."""
    length = operator.shape[0]
    rows = {}
    for i in positions:
        j = i + np.arange(-radius, radius + 1)
        inside = (j >= 0) & (j < length)
        row = np.full(j.shape, np.nan)
        row[inside] = operator[i, j[inside]]
        rows[int(i)] = row.tolist()
    return rows


def relative_error(operator, reference):
    return float(np.linalg.norm(operator - reference) / np.linalg.norm(reference))


def row_errors(operator, reference):
    """Relative error of each row (each position's kernel), as a list."""
    errors = np.linalg.norm(operator - reference, axis=1)
    return (errors / np.linalg.norm(reference, axis=1)).tolist()


# === The study ===


def run_one(task, family, width, seed, data, reference, config):
    """Trains one model and measures it; returns a JSON-ready record."""
    x_train, y_train, x_test, y_test = data
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = build(family, width, config)
    start = time.perf_counter()
    train_loss = train(model, x_train, y_train, config, seed)
    train_seconds = time.perf_counter() - start
    test_mse = float(np.mean((predict(model, x_test) - y_test) ** 2))
    operator = effective_operator(
        model, x_test[: config.kernel_probes], eps=config.fd_eps
    )
    record = {
        "task": task,
        "family": family,
        "width": width,
        "seed": seed,
        "params": int(model.count_params()),
        "steps": config.epochs * config.steps_per_epoch,
        "test_mse": test_mse,
        "final_train_loss": train_loss,
        "operator_rel_error": relative_error(operator, reference),
        "train_seconds": round(train_seconds, 2),
    }
    if width == plot_width(task, family, config) and seed == config.seeds[0]:
        record["kernels"] = kernel_rows(
            operator, config.kernel_positions, config.receptive_field // 2
        )
        record["row_errors"] = row_errors(operator, reference)
    return record


def plot_width(task, family, config):
    """The width of `family` whose kernels are plotted for `task`:
    `kernel_width`, or the nearest available."""
    widths = config.widths[task][family]
    return min(widths, key=lambda w: (abs(w - config.kernel_width), w))


def summarize(runs):
    """One row per (task, family, width): params, mean/std of the metrics."""
    groups = {}
    for run in runs:
        groups.setdefault((run["task"], run["family"], run["width"]), []).append(run)
    rows = []
    for (task, family, width), group in groups.items():
        mse = _study.mean_std([r["test_mse"] for r in group])
        err = _study.mean_std([r["operator_rel_error"] for r in group])
        rows.append(
            {
                "task": task,
                "family": family,
                "width": width,
                "params": group[0]["params"],
                "seeds": len(group),
                "test_mse_mean": mse[0],
                "test_mse_std": mse[1],
                "operator_rel_error_mean": err[0],
                "operator_rel_error_std": err[1],
                "train_seconds_mean": float(
                    np.mean([r["train_seconds"] for r in group])
                ),
            }
        )
    return rows


def run_study(config, out_dir, log=print, plots=True):
    """Runs every (task, family, width, seed), writing results.json after each
    model and results.md (+ plots) at the end. Returns the results dict."""
    out_dir = pathlib.Path(out_dir)
    env = _study.environment()
    env["xla"] = use_xla()
    results = {
        "study": "sv_conv1d",
        "status": "running",
        "config": dataclasses.asdict(config),
        "families": {k: dataclasses.asdict(v) for k, v in FAMILIES.items()},
        "environment": env,
        "references": {},
        "runs": [],
    }
    jobs = [
        (task, family, width, seed)
        for task in config.tasks
        for family in config.widths[task]
        for width in config.widths[task][family]
        for seed in config.seeds
    ]
    log(
        f"sv_conv1d --{config.scale}: {len(jobs)} trainings of "
        f"{config.epochs * config.steps_per_epoch} steps, backend "
        f"{env['backend']}, XLA {env['xla']}, {env['hardware']}; writing {out_dir}"
    )
    start = time.perf_counter()
    done = 0
    radius = config.receptive_field // 2
    for task in config.tasks:
        x_train, y_train, x_test, y_test, exact = make_task(task, config)
        refs = linear_references(x_train, y_train, x_test, y_test, radius)
        if exact is None:
            reference = refs["best_position_dependent_linear"]["operator"]
        else:
            reference = exact
        task_refs = {}
        for name, ref in refs.items():
            task_refs[name] = {
                "test_mse": ref["test_mse"],
                "operator_rel_error": relative_error(ref["operator"], reference),
                "kernels": kernel_rows(
                    ref["operator"], config.kernel_positions, radius
                ),
                "row_errors": row_errors(ref["operator"], reference),
            }
        if exact is not None:
            task_refs["exact_operator"] = {
                "test_mse": float(
                    np.mean((x_test[..., 0] @ exact.T - y_test[..., 0]) ** 2)
                ),
                "operator_rel_error": 0.0,
                "kernels": kernel_rows(exact, config.kernel_positions, radius),
            }
        results["references"][task] = task_refs
        log(
            f"[{task}] references (test MSE): "
            + ", ".join(f"{k} {v['test_mse']:.3g}" for k, v in task_refs.items())
        )
        data = (x_train, y_train, x_test, y_test)
        for job_task, family, width, seed in jobs:
            if job_task != task:
                continue
            record = run_one(task, family, width, seed, data, reference, config)
            results["runs"].append(record)
            done += 1
            elapsed = time.perf_counter() - start
            eta = elapsed / done * (len(jobs) - done)
            log(
                f"[{done}/{len(jobs)}] {task} {family} w{width} seed {seed}: "
                f"test MSE {record['test_mse']:.3g}, operator error "
                f"{record['operator_rel_error']:.3f}, {record['params']} params, "
                f"{record['train_seconds']:.1f} s (elapsed {elapsed / 60:.1f} min, "
                f"ETA {eta / 60:.1f} min)"
            )
            results["summary"] = summarize(results["runs"])
            _study.write_json(out_dir / "results.json", results)
    results["status"] = "complete"
    results["wall_seconds"] = round(time.perf_counter() - start, 1)
    _study.write_json(out_dir / "results.json", results)
    if plots:
        report(results, out_dir)
    else:
        _study.write_text(out_dir / "results.md", render_markdown(results))
    log(f"done in {results['wall_seconds'] / 60:.1f} min: {out_dir}")
    return results


# === Report ===

REFERENCE_LABELS = {
    "identity": "input as output",
    "best_shift_invariant_linear": "best shift-invariant linear filter",
    "best_position_dependent_linear": "best position-dependent linear filter",
    "exact_operator": "exact operator",
}
TASK_TITLES = {
    "forward": "forward: sharp -> blurred (learn the convolution)",
    "deconv": "deconv: blurred + noise -> sharp",
}


def render_markdown(results):
    """results.md: setup, one table per task, environment."""
    config, env = results["config"], results["environment"]
    lines = [
        f"# 1D study: spatially-varying convolution ({config['scale']} scale)",
        "",
        f"Generated by `python -m benchmarks.sv_conv1d --{config['scale']}` on "
        f"{env['hardware']} ({env['backend']} backend). Signals of "
        f"{config['length']} samples, Gaussian kernel sigma "
        f"{config['sigma_range'][0]} -> {config['sigma_range'][1]} along the "
        f"signal; {config['num_train']} training / {config['num_test']} test "
        f"signals; Adam, cosine decay from {config['learning_rate']}, batch "
        f"{config['batch_size']}, {results['runs'][0]['steps']} steps for every "
        f"model; seeds {list(config['seeds'])}; receptive field "
        f"{config['receptive_field']} samples for every model. Test MSE and "
        "operator error are mean ± std over seeds. Operator error: relative "
        "Frobenius distance of the model's mean Jacobian (finite differences) to "
        "the exact operator (forward) or to the best position-dependent linear "
        "filter (deconv).",
        "",
    ]
    summary = results["summary"]
    for task in config["widths"]:
        refs = results["references"].get(task, {})
        lti = refs.get("best_shift_invariant_linear", {}).get("test_mse")
        lines += [f"## {TASK_TITLES[task]}", ""]
        rows = []
        for row in sorted(
            (r for r in summary if r["task"] == task),
            key=lambda r: (list(FAMILIES).index(r["family"]), r["width"]),
        ):
            rows.append(
                [
                    FAMILIES[row["family"]].label,
                    row["width"],
                    f"{row['params']:,}",
                    f"{row['test_mse_mean']:.3g} ± {row['test_mse_std']:.2g}",
                    f"{row['test_mse_mean'] / lti:.3f}" if lti else "",
                    f"{row['operator_rel_error_mean']:.3f} ± "
                    f"{row['operator_rel_error_std']:.3f}",
                    row["seeds"],
                    f"{row['train_seconds_mean']:.0f}",
                ]
            )
        for name, ref in refs.items():
            rows.append(
                [
                    f"*{REFERENCE_LABELS[name]}* (closed form)",
                    "",
                    "",
                    f"{ref['test_mse']:.3g}",
                    f"{ref['test_mse'] / lti:.3f}" if lti else "",
                    f"{ref['operator_rel_error']:.3f}",
                    "",
                    "",
                ]
            )
        lines += [
            _study.markdown_table(
                [
                    "model",
                    "width",
                    "params",
                    "test MSE",
                    "MSE / best shift-inv. linear",
                    "operator error",
                    "seeds",
                    "train s",
                ],
                rows,
            ),
            "",
        ]
    lines += ["## Environment", "", _study.environment_markdown(env), ""]
    return "\n".join(lines)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_mse_vs_params(results, path):
    """Test MSE vs parameters (log-log), mean ± std over seeds, one line per
    family and one panel per task; closed-form references as horizontal lines."""
    plt = _pyplot()
    tasks = list(results["config"]["widths"])
    fig, axes = plt.subplots(1, len(tasks), figsize=(6.5 * len(tasks), 4.8))
    axes = np.atleast_1d(axes)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, task in zip(axes, tasks):
        rows = [r for r in results["summary"] if r["task"] == task]
        model_mse = [r["test_mse_mean"] for r in rows]
        for k, family in enumerate(FAMILIES):
            fam = sorted(
                (r for r in rows if r["family"] == family), key=lambda r: r["params"]
            )
            if not fam:
                continue
            ax.errorbar(
                [r["params"] for r in fam],
                [r["test_mse_mean"] for r in fam],
                yerr=[r["test_mse_std"] for r in fam],
                marker="o",
                ms=4,
                capsize=3,
                color=colors[k % len(colors)],
                label=FAMILIES[family].label,
            )
        floor = min(model_mse) / 3 if model_mse else 0
        for name, style in [
            ("identity", ":"),
            ("best_shift_invariant_linear", "--"),
            ("best_position_dependent_linear", "-."),
        ]:
            mse = results["references"][task][name]["test_mse"]
            if mse > floor:
                ax.axhline(
                    mse, color="0.4", ls=style, lw=1, label=REFERENCE_LABELS[name]
                )
            else:
                ax.text(
                    0.02,
                    0.02,
                    f"{REFERENCE_LABELS[name]}: {mse:.1g}",
                    transform=ax.transAxes,
                    fontsize=8,
                    color="0.3",
                )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("parameters")
        ax.set_ylabel("test MSE")
        ax.set_title(TASK_TITLES[task], fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7, loc="best")
    config, env = results["config"], results["environment"]
    fig.suptitle(
        f"1D spatially-varying convolution, {config['scale']} scale: "
        f"{len(config['seeds'])} seeds, {results['runs'][0]['steps']} steps; "
        f"{env['hardware']}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_kernels(results, path):
    """Effective kernel (Jacobian row) at a few positions for one width per
    family (first seed), against the true / reference kernel."""
    plt = _pyplot()
    config = results["config"]
    tasks, positions = list(config["widths"]), config["kernel_positions"]
    radius = config["receptive_field"] // 2
    offsets = np.arange(-radius, radius + 1)
    sigma = np.linspace(*config["sigma_range"], config["length"])
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, axes = plt.subplots(
        len(tasks),
        len(positions),
        figsize=(4.2 * len(positions), 3.4 * len(tasks)),
        squeeze=False,
    )
    for row, task in enumerate(tasks):
        refs = results["references"][task]
        truth = (
            "exact_operator"
            if "exact_operator" in refs
            else ("best_position_dependent_linear")
        )
        for col, position in enumerate(positions):
            ax = axes[row, col]
            key = str(position) if str(position) in refs[truth]["kernels"] else position
            ax.plot(
                offsets,
                refs[truth]["kernels"][key],
                color="k",
                lw=2.5,
                label=REFERENCE_LABELS[truth]
                + (" (true)" if task == "forward" else ""),
            )
            ax.plot(
                offsets,
                refs["best_shift_invariant_linear"]["kernels"][key],
                color="0.5",
                ls="--",
                lw=1.2,
                label=REFERENCE_LABELS["best_shift_invariant_linear"],
            )
            for k, family in enumerate(FAMILIES):
                run = next(
                    (
                        r
                        for r in results["runs"]
                        if r["task"] == task
                        and r["family"] == family
                        and "kernels" in r
                    ),
                    None,
                )
                if run is None:
                    continue
                kernels = run["kernels"]
                # The locally connected kernels are noisy: keep them in the back.
                faint = family.startswith("locally_connected")
                ax.plot(
                    offsets,
                    kernels[key if key in kernels else str(position)],
                    color=colors[k % len(colors)],
                    lw=0.8 if faint else 1.2,
                    alpha=0.45 if faint else 1.0,
                    label=f"{FAMILIES[family].label}, w{run['width']}",
                )
            ax.set_title(
                f"{task}: position {position} (sigma {sigma[position]:.1f})", fontsize=9
            )
            ax.set_xlabel("input offset j - i")
            ax.grid(True, alpha=0.3)
        axes[row, 0].set_ylabel("d output_i / d input_j")
    for row in range(len(tasks)):
        axes[row, -1].legend(fontsize=6, loc="upper right")
    fig.suptitle(
        "Effective kernel of each trained model (row i of its Jacobian, "
        "central finite differences, mean over test signals)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_kernel_errors(results, path):
    """Relative error of the effective kernel at every position (first seed,
    plotted width), one panel per task: where along the signal each model
    gets the kernel wrong."""
    plt = _pyplot()
    config = results["config"]
    tasks = list(config["widths"])
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, axes = plt.subplots(1, len(tasks), figsize=(6.5 * len(tasks), 4.2))
    axes = np.atleast_1d(axes)
    for ax, task in zip(axes, tasks):
        refs = results["references"][task]
        ax.plot(
            refs["best_shift_invariant_linear"]["row_errors"],
            color="0.5",
            ls="--",
            lw=1.2,
            label=REFERENCE_LABELS["best_shift_invariant_linear"],
        )
        for k, family in enumerate(FAMILIES):
            run = next(
                (
                    r
                    for r in results["runs"]
                    if r["task"] == task and r["family"] == family and "row_errors" in r
                ),
                None,
            )
            if run is None:
                continue
            faint = family.startswith("locally_connected")
            ax.plot(
                run["row_errors"],
                color=colors[k % len(colors)],
                lw=0.8 if faint else 1.2,
                alpha=0.45 if faint else 1.0,
                label=f"{FAMILIES[family].label}, w{run['width']}",
            )
        truth = "exact operator" if task == "forward" else "best position-dependent"
        ax.set_yscale("log")
        ax.set_xlabel("position i (kernel width grows to the right)")
        ax.set_ylabel(f"kernel error vs {truth}")
        ax.set_title(TASK_TITLES[task], fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle(
        "Relative error of each position's effective kernel (Jacobian row), first seed",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# === CLI ===


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    scale = parser.add_mutually_exclusive_group(required=True)
    scale.add_argument("--quick", action="store_true", help="2 CPU cores, ~15 min")
    scale.add_argument("--full", action="store_true", help="one GPU (JAX backend)")
    scale.add_argument(
        "--replot",
        type=pathlib.Path,
        metavar="DIR",
        help="rewrite results.md and the plots from DIR/results.json, no training",
    )
    parser.add_argument("--out", type=pathlib.Path, default=None)
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=None)
    parser.add_argument("--families", nargs="+", choices=list(FAMILIES), default=None)
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument(
        "--jax-cache",
        default=os.path.join(tempfile.gettempdir(), "coordgate_keras_jax_cache"),
        help="persistent XLA compilation cache (JAX backend; '' to disable)",
    )
    return parser.parse_args(argv)


def config_from_args(args):
    """The preset of `--quick`/`--full`, with the command-line overrides."""
    config = PRESETS["quick" if args.quick else "full"]
    widths = config.widths
    if args.tasks:
        widths = {task: widths[task] for task in args.tasks}
    if args.families:
        widths = {
            task: {f: w for f, w in families.items() if f in args.families}
            for task, families in widths.items()
        }
    overrides = {"widths": {task: f for task, f in widths.items() if f}}
    if args.seeds is not None:
        overrides["seeds"] = tuple(range(args.seeds))
    if args.steps is not None:
        overrides["steps"] = args.steps
    return dataclasses.replace(config, **overrides)


def report(results, out_dir):
    """Writes results.md and the two plots of `results` to `out_dir`."""
    out_dir = pathlib.Path(out_dir)
    _study.write_text(out_dir / "results.md", render_markdown(results))
    plot_mse_vs_params(results, out_dir / "mse_vs_params.png")
    plot_kernels(results, out_dir / "effective_kernels.png")
    plot_kernel_errors(results, out_dir / "kernel_error_vs_position.png")


def main(argv=None):
    args = parse_args(argv)
    if args.replot:
        report(json.loads((args.replot / "results.json").read_text()), args.replot)
        return 0
    config = config_from_args(args)
    out = args.out or (RESULTS if args.quick else RESULTS / "full")
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_tensor_float_32_execution(False)
    _study.enable_jax_compilation_cache(args.jax_cache)
    run_study(config, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
