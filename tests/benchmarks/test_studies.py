"""`benchmarks.coordgate_encodings` and `benchmarks.deblur2d`: the pieces that
decide what the studies report (spectra, run order), against closed forms."""

import numpy as np
import pytest

from benchmarks import coordgate_encodings as encodings
from benchmarks import deblur2d


@pytest.mark.parametrize("cycles, expected", [(2, 0.0), (3, 0.0), (6, 1.0), (11, 1.0)])
def test_high_frequency_fraction_of_a_cosine(cycles, expected):
    # A cosine with an integer number of cycles per image over the pixel
    # centres; with 4 cycles as the cutoff, all its power is on one side.
    n = 128
    x = (np.arange(n) + 0.5) / n
    gate = np.cos(2 * np.pi * cycles * x)[:, None, None] * np.ones((1, n, 3))
    fraction = encodings.high_frequency_fraction(gate, cutoff=4.0)
    assert fraction == pytest.approx(expected, abs=1e-6)


def test_high_frequency_fraction_ignores_the_edges_of_a_ramp():
    # A periodic FFT would see a sawtooth (sum_{n>4} 1/n^2 / sum 1/n^2 = 13 %
    # of the power above 4 cycles); the mirror extension sees a smooth ramp.
    ramp = np.linspace(-1, 1, 256)[:, None]
    assert encodings.high_frequency_fraction(ramp, cutoff=4.0) < 0.01
    noise = np.random.default_rng(0).standard_normal((256, 4))
    assert encodings.high_frequency_fraction(noise, cutoff=4.0) > 0.9
    assert np.isnan(encodings.high_frequency_fraction(np.ones((8, 8, 2)), 4.0))


def test_deblur2d_runs_ablations_before_the_second_seed():
    runs = deblur2d.run_list(deblur2d.SCALES["quick"], seeds=3)
    labels = [(r["label"], r["seed"]) for r in runs]
    n_models = len(deblur2d.RUN_ORDER)
    n_ablations = len(deblur2d.ABLATIONS) + len(deblur2d.ZERO_OUTPUT)
    assert len(runs) == 3 * n_models + n_ablations
    assert all(seed == 0 for _, seed in labels[: n_models + n_ablations])
    assert all("/" in label for label, _ in labels[n_models : n_models + n_ablations])
    assert [s for _, s in labels[n_models + n_ablations :]] == [1] * n_models + [
        2
    ] * n_models
    assert len(set(labels)) == len(labels)


def test_deblur2d_extra_ablation_seeds_come_last():
    runs = deblur2d.run_list(deblur2d.SCALES["quick"], seeds=2, ablation_seeds=3)
    n_models = len(deblur2d.RUN_ORDER)
    n_ablations = len(deblur2d.ABLATIONS) + len(deblur2d.ZERO_OUTPUT)
    tail = runs[2 * n_models + n_ablations :]
    assert [r["seed"] for r in tail] == [1] * n_ablations + [2] * n_ablations
    assert all("/" in r["label"] for r in tail)
    zero = [r for r in tail if r["label"].endswith("/zero_output")]
    assert sorted(r["model"] for r in zero) == sorted(
        2 * list(deblur2d.ZERO_OUTPUT.values())
    )
    assert all(r["model_kwargs"] == {"output_initializer": "zeros"} for r in zero)


def test_deblur2d_names_the_hardware_of_resumed_invocations():
    first = {"hardware": "NVIDIA H100 80GB HBM3"}
    results = {"training_environment": first, "resumed_environments": []}
    assert deblur2d._trained_on(results) == "NVIDIA H100 80GB HBM3"
    # The first results files recorded a device list, not `hardware`.
    results["training_environment"] = {"devices": ["NVIDIA H100 80GB HBM3"]}
    results["resumed_environments"] = [
        {"hardware": "NVIDIA H100 80GB HBM3"},
        {"hardware": "NVIDIA H200"},
        {"hardware": "NVIDIA H200"},
    ]
    assert deblur2d._trained_on(results) == (
        "NVIDIA H100 80GB HBM3 (runs added later on NVIDIA H200)"
    )
