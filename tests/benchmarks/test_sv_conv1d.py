"""`benchmarks.sv_conv1d`: references, Jacobians and a tiny end-to-end run."""

import json

import keras
import numpy as np
import pytest

from benchmarks import _study as study
from benchmarks import sv_conv1d as sv
from coordgate_keras.data import varying_blur_1d_matrix

TINY = sv.StudyConfig(
    scale="smoke",
    widths={
        "forward": {"cnn_d3": (2,)},
        "deconv": {"cnn_d3": (2,)},
    },
    length=32,
    sigma_range=(0.5, 1.5),
    num_train=16,
    num_test=8,
    batch_size=8,
    steps=4,
    seeds=(0, 1),
    receptive_field=7,
    kernel_positions=(4, 16),
    kernel_probes=1,
    kernel_width=2,
)


def test_references_against_numpy_loops():
    rng = np.random.default_rng(0)
    length, radius = 12, 2
    operator = varying_blur_1d_matrix(length, (0.3, 0.5))  # support ceil(4 sigma) <= 2
    x_train = rng.normal(size=(200, length))
    x_test = rng.normal(size=(20, length))
    refs = sv.linear_references(
        x_train, x_train @ operator.T, x_test, x_test @ operator.T, radius
    )
    # The position-dependent filter recovers a banded operator exactly.
    np.testing.assert_allclose(
        refs["best_position_dependent_linear"]["operator"], operator, atol=1e-6
    )
    assert refs["best_position_dependent_linear"]["test_mse"] < 1e-12
    assert refs["identity"]["test_mse"] == pytest.approx(
        np.mean((x_test - x_test @ operator.T) ** 2)
    )
    # The shift-invariant filter is one kernel: the same (zero-padded) row everywhere.
    lti = refs["best_shift_invariant_linear"]["operator"]
    kernel = lti[length // 2, length // 2 - radius : length // 2 + radius + 1]
    for i in range(length):
        for j in range(length):
            expected = kernel[j - i + radius] if abs(j - i) <= radius else 0.0
            assert lti[i, j] == pytest.approx(expected)
    assert (
        refs["best_position_dependent_linear"]["test_mse"]
        < refs["best_shift_invariant_linear"]["test_mse"]
        < refs["identity"]["test_mse"]
    )


def test_effective_operator_of_a_linear_model_is_its_matrix():
    length = 16
    weights = np.random.default_rng(1).normal(size=(5, 1, 1)).astype("float32")
    inputs = keras.Input((length, 1))
    outputs = keras.layers.Conv1D(1, 5, padding="same", use_bias=True)(inputs)
    model = keras.Model(inputs, outputs)
    model.layers[1].set_weights([weights, np.array([0.3], "float32")])
    # Conv1D (cross-correlation, "same"): out_i = sum_t w_t x_{i + t - 2} + b.
    expected = np.zeros((length, length))
    for i in range(length):
        for t in range(5):
            if 0 <= i + t - 2 < length:
                expected[i, i + t - 2] = weights[t, 0, 0]
    probes = np.random.default_rng(2).normal(size=(2, length, 1))
    jacobian = sv.effective_operator(model, probes, eps=1e-2)
    np.testing.assert_allclose(jacobian, expected, atol=1e-4)
    rows = sv.kernel_rows(expected, (0, 8), radius=3)
    assert np.isnan(rows[0][:3]).all() and rows[0][3:6] == list(weights[2:, 0, 0])
    assert rows[8] == pytest.approx([0.0] + list(weights[:, 0, 0]) + [0.0])


def test_build_matches_receptive_field():
    config = sv.PRESETS["quick"]
    for family, spec in sv.FAMILIES.items():
        model = sv.build(family, 2, config)
        convs = [layer for layer in model.layers if "_conv" in layer.name][:-1]
        assert len(convs) == spec.depth
        assert sum(layer.kernel_size[0] - 1 for layer in convs) + 1 == 49
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `receptive_field`. Expected depth \* "
        r"\(kernel_size - 1\) \+ 1 for an integer kernel size at depth 2. "
        r"Received: receptive_field=48",
    ):
        sv.build("cnn_d2", 2, TINY.__class__(scale="x", widths={}, receptive_field=48))


def test_make_task_rejects_unknown_task():
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `task`. Expected one of \('forward', "
        r"'deconv'\). Received: task='backward'",
    ):
        sv.make_task("backward", TINY)


def test_presets_train_the_same_budget_for_every_model():
    for config in sv.PRESETS.values():
        assert len(config.seeds) >= 3
        assert config.num_train % config.batch_size == 0
        assert set(config.widths) == set(sv.TASKS)


# A benchmark smoke run (trains every model, writes tables and plots): about
# 13 s of CPU.
@pytest.mark.slow
def test_tiny_study_end_to_end(tmp_path):
    lines = []
    results = sv.run_study(TINY, tmp_path, log=lines.append)
    stored = json.loads((tmp_path / "results.json").read_text())
    assert stored["status"] == "complete"
    assert len(stored["runs"]) == 2 * 2
    assert {r["task"] for r in stored["runs"]} == {"forward", "deconv"}
    assert all(np.isfinite(r["test_mse"]) and r["steps"] == 4 for r in stored["runs"])
    assert stored["environment"]["backend"] == keras.backend.backend()
    assert len(results["summary"]) == 2
    assert "kernels" in stored["runs"][0] and "kernels" not in stored["runs"][1]
    forward = stored["references"]["forward"]
    assert (
        forward["best_position_dependent_linear"]["test_mse"]
        < forward["best_shift_invariant_linear"]["test_mse"]
    )
    assert forward["exact_operator"]["operator_rel_error"] == 0.0
    markdown = (tmp_path / "results.md").read_text()
    assert "| CNN, 3 conv | 2 |" in markdown and "## Environment" in markdown
    assert len(stored["runs"][0]["row_errors"]) == TINY.length
    for plot in (
        "mse_vs_params.png",
        "effective_kernels.png",
        "kernel_error_vs_position.png",
    ):
        assert (tmp_path / plot).read_bytes()[:4] == b"\x89PNG"
    assert lines[-1].startswith("done in")


def test_study_helpers():
    assert study.mean_std([1.0, 3.0]) == (2.0, pytest.approx(np.sqrt(2.0)))
    assert study.mean_std([5.0]) == (5.0, 0.0)
    assert study.format_mean_std([1.0, 3.0], "{:.1f}") == "2.0 ± 1.4"
    assert (
        study.markdown_table(["a", "b"], [[1, 2]]) == "| a | b |\n|---|---|\n| 1 | 2 |"
    )
    env = study.environment(["x.py", "--quick"])
    assert env["command"] == "python x.py --quick"
    assert env["backend"] == keras.backend.backend()
    assert "- Command: `python x.py --quick`" in study.environment_markdown(env)
