"""Shared helpers of the training tests."""

import pytest


def _check_match(result, multi):
    """One-device and two-device runs (histories and metrics) agree."""
    one, two = result["none"], result[multi]
    assert one["metrics"]["num_devices"] == 1
    assert two["metrics"]["num_devices"] == 2
    assert two["metrics"]["strategy"] == multi
    assert [r["step"] for r in one["history"]] == [r["step"] for r in two["history"]]
    for a, b in zip(one["history"], two["history"]):
        assert float(b["loss"]) == pytest.approx(float(a["loss"]), rel=1e-4)
        assert float(b["val_psnr"]) == pytest.approx(float(a["val_psnr"]), abs=1e-3)
    assert two["metrics"]["psnr"] == pytest.approx(one["metrics"]["psnr"], abs=1e-3)


@pytest.fixture
def check_match():
    return _check_match
