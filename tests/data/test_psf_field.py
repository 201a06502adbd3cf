import os

import numpy as np
import pytest

from coordgate_keras import data
from coordgate_keras.data import psf_field as psf_field_lib


def _identity_psfs(grid_shape=(2, 3), k=3):
    psfs = np.zeros(grid_shape + (k, k))
    psfs[..., k // 2, k // 2] = 1.0
    return psfs


def test_properties():
    field = data.PSFField(_identity_psfs((2, 3), 5), image_shape=(20, 30))
    assert field.grid_shape == (2, 3)
    assert field.kernel_size == 5 and field.radius == 2
    assert field.image_shape == (20, 30)
    assert not field.psfs.flags.writeable
    assert "grid_shape=(2, 3)" in repr(field)


def test_interpolation_weights_closed_form():
    # Nodes at cell centres: 7 pixels, 2 nodes -> centres 1.25 and 4.75.
    w = psf_field_lib.axis_weights(7, 2)
    t = np.clip((np.arange(7) - 1.25) / 3.5, 0, 1)
    np.testing.assert_allclose(w[0], 1 - t, atol=1e-15)
    np.testing.assert_allclose(w[1], t, atol=1e-15)
    field = data.PSFField(_identity_psfs((3, 4)))
    weights = field.interpolation_weights((13, 17))
    assert weights.shape == (3, 4, 13, 17)
    np.testing.assert_allclose(weights.sum(axis=(0, 1)), 1.0, atol=1e-15)
    assert weights.min() >= 0


def test_psf_at_nodes_is_the_grid_psf():
    rng = np.random.default_rng(0)
    field = data.PSFField(rng.random((3, 3, 5, 5)), normalize=True)
    # 15 / 3 = 5 pixels per cell: node centres at pixels 2, 7, 12.
    for i, row in enumerate((2, 7, 12)):
        for j, col in enumerate((2, 7, 12)):
            np.testing.assert_allclose(
                field.psf_at(row, col, (15, 15)), field.psfs[i, j]
            )
    midway = field.psf_at(2, 4.5, (15, 15))
    np.testing.assert_allclose(midway, 0.5 * (field.psfs[0, 0] + field.psfs[0, 1]))
    with pytest.raises(
        ValueError, match=r"argument `row, col`.*Received: row=15, col=0"
    ):
        field.psf_at(15, 0, (15, 15))


def test_sample_psfs_are_the_field_psfs_centred_in_an_image_stack():
    rng = np.random.default_rng(1)
    field = data.PSFField(rng.random((2, 2, 5, 5)), normalize=True)
    # 2x2 samples of a 12x16 image sit at the cell centres, which are the
    # nodes of a 2x2 field: each sample is a grid PSF, centred at (6, 8).
    stack = field.sample_psfs((12, 16), (2, 2))
    assert stack.shape == (12, 16, 4) and stack.dtype == np.float32
    for i in range(2):
        for j in range(2):
            expected = np.zeros((12, 16))
            expected[6 - 2 : 6 + 3, 8 - 2 : 8 + 3] = field.psfs[i, j]
            np.testing.assert_allclose(stack[..., 2 * i + j], expected, atol=1e-7)
    # One sample, at the image centre: the mean of the four nodes.
    (centre,) = np.moveaxis(field.sample_psfs((12, 16), (1, 1)), -1, 0)
    np.testing.assert_allclose(
        centre[4:9, 6:11], field.psfs.mean(axis=(0, 1)), atol=1e-7
    )
    with pytest.raises(
        ValueError,
        match=r"argument `grid_shape`. Expected at most one sample per pixel "
        r"\(<= \(12, 16\)\). Received: grid_shape=\(13, 1\)",
    ):
        field.sample_psfs((12, 16), (13, 1))


def test_normalize_divides_by_sum():
    rng = np.random.default_rng(1)
    psfs = rng.random((2, 2, 3, 3))
    field = data.PSFField(psfs, normalize=True)
    np.testing.assert_allclose(field.psfs.sum(axis=(2, 3)), 1.0)
    np.testing.assert_allclose(field.psfs[1, 0], psfs[1, 0] / psfs[1, 0].sum())


def test_low_rank_eckart_young():
    rng = np.random.default_rng(2)
    field = data.PSFField(rng.random((3, 3, 5, 5)), normalize=True)
    stack = field.psfs.reshape(9, 25)
    singular = np.linalg.svd(stack, compute_uv=False)
    for rank in (1, 3, 9):
        basis, coefficients = field.low_rank(rank)
        assert basis.shape == (rank, 5, 5) and coefficients.shape == (3, 3, rank)
        approx = np.einsum("ijr,rab->ijab", coefficients, basis).reshape(9, 25)
        # Best rank-r approximation error: sqrt of the discarded squared
        # singular values.
        np.testing.assert_allclose(
            np.linalg.norm(stack - approx),
            np.sqrt(np.sum(singular[rank:] ** 2)),
            atol=1e-12,
        )


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    field = data.PSFField(
        rng.random((2, 4, 7, 7)), image_shape=(64, 96), normalize=True
    )
    path = tmp_path / "field.npz"
    field.save(path)
    loaded = data.PSFField.load(path)
    np.testing.assert_array_equal(loaded.psfs, field.psfs)
    assert loaded.image_shape == (64, 96)
    data.PSFField(field.psfs).save(str(path))
    assert data.PSFField.load(str(path)).image_shape is None
    assert os.listdir(tmp_path) == ["field.npz"]


def test_load_measured_psfs_with_normalize(tmp_path):
    measured = np.random.default_rng(4).random((2, 2, 5, 5)) * 300.0
    np.savez(tmp_path / "beads.npz", psfs=measured)
    with pytest.raises(ValueError, match="pass `normalize=True`"):
        data.PSFField.load(tmp_path / "beads.npz")
    field = data.PSFField.load(tmp_path / "beads.npz", normalize=True)
    np.testing.assert_allclose(field.psfs.sum(axis=(2, 3)), 1.0)


def test_interrupted_save_leaves_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "field.npz"
    old = data.PSFField(_identity_psfs())
    old.save(path)
    original = path.read_bytes()

    def failing_savez(f, **arrays):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(KeyboardInterrupt):
        data.PSFField(_identity_psfs((3, 3))).save(path)
    assert path.read_bytes() == original
    assert os.listdir(tmp_path) == ["field.npz"]
    monkeypatch.undo()
    with pytest.raises(KeyboardInterrupt):
        monkeypatch.setattr(np, "savez", failing_savez)
        data.PSFField(_identity_psfs()).save(tmp_path / "new.npz")
    assert os.listdir(tmp_path) == ["field.npz"]


def test_load_rejects_file_without_psfs(tmp_path):
    np.savez(tmp_path / "other.npz", kernels=np.ones((1, 1, 3, 3)))
    with pytest.raises(ValueError, match=r"argument `path`.*'psfs'.*\['kernels'\]"):
        data.PSFField.load(tmp_path / "other.npz")


@pytest.mark.parametrize(
    "psfs, message",
    [
        (
            np.ones((3, 3, 3)) / 9,
            r"shape \(grid_rows, grid_cols.*psfs.shape=\(3, 3, 3\)",
        ),
        (
            np.ones((1, 1, 4, 4)) / 16,
            r"square PSFs of odd size.*psfs.shape=\(1, 1, 4, 4\)",
        ),
        (
            np.ones((1, 1, 3, 5)) / 15,
            r"square PSFs of odd size.*psfs.shape=\(1, 1, 3, 5\)",
        ),
        (np.ones((0, 2, 3, 3)), r"psfs.shape=\(0, 2, 3, 3\)"),
        (np.full((1, 1, 3, 3), 0.5), r"each PSF to sum to 1.*\[4.5, 4.5\]"),
    ],
)
def test_bad_psfs_rejected(psfs, message):
    with pytest.raises(
        ValueError, match=r"Invalid value for argument `psfs`.*" + message
    ):
        data.PSFField(psfs)


def test_nan_and_negative_psfs_rejected():
    psfs = _identity_psfs()
    psfs[0, 1, 0, 0] = np.nan
    with pytest.raises(
        ValueError, match=r"`psfs`. Expected finite values.*1 non-finite"
    ):
        data.PSFField(psfs)
    psfs = _identity_psfs()
    psfs[0, 0, 0, 0] = -0.01
    with pytest.raises(ValueError, match=r"non-negative values.*psfs.min\(\)=-0.01"):
        data.PSFField(psfs, normalize=True)
    with pytest.raises(ValueError, match=r"positive sum.*a PSF with sum 0"):
        data.PSFField(np.zeros((1, 1, 3, 3)), normalize=True)


def test_image_shape_and_shift_invariant_validation():
    with pytest.raises(
        ValueError, match=r"argument `image_shape`.*image_shape=\(32,\)"
    ):
        data.PSFField(_identity_psfs(), image_shape=(32,))
    with pytest.raises(ValueError, match=r"argument `psf_field`.*kernel_size=3"):
        data.PSFField(_identity_psfs(), image_shape=(2, 8))
    with pytest.raises(ValueError, match=r"argument `psf`.*psf.shape=\(3,\)"):
        data.PSFField.shift_invariant(np.ones(3))
    with pytest.raises(ValueError, match=r"argument `grid_shape`.*grid_shape=\(0, 1\)"):
        data.PSFField.shift_invariant(np.ones((1, 1)), grid_shape=(0, 1))


def test_load_names_the_file_when_it_is_corrupt(tmp_path):
    field = data.gaussian_psf_field(grid_shape=(2, 2), kernel_size=5)
    good = tmp_path / "field.npz"
    field.save(good)
    content = good.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(content[: len(content) // 2])
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not an archive")
    for path in (truncated, garbage):
        with pytest.raises(ValueError) as info:
            data.PSFField.load(path)
        message = str(info.value)
        assert message.startswith(
            "Invalid value for argument `path`. Expected an .npz file written by "
            f"`PSFField.save` or `np.savez`. Received: path={str(path)!r}, which "
            "could not be read ("
        ), message
    single = tmp_path / "single.npy"
    np.save(single, np.zeros((2, 2, 5, 5)))
    with pytest.raises(ValueError, match="a single .npy array"):
        data.PSFField.load(single)
    with pytest.raises(FileNotFoundError):
        data.PSFField.load(tmp_path / "missing.npz")
