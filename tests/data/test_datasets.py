import os

import numpy as np
import pytest

from coordgate_keras import data

SHAPE = (32, 32)


@pytest.fixture(scope="module")
def field():
    return data.gaussian_psf_field(grid_shape=(2, 2), kernel_size=5)


def _collect(dataset):
    blurred, sharp = zip(*[(b.numpy(), s.numpy()) for b, s in dataset])
    return np.concatenate(blurred), np.concatenate(sharp)


def test_batches_shapes_range_and_reference_blur(field):
    ds = data.deblur_dataset(
        field, image_shape=SHAPE, num_images=6, batch_size=4, noise=None, shuffle=False
    )
    shapes = [(tuple(b.shape), tuple(s.shape)) for b, s in ds]
    assert shapes == [((4, 32, 32, 1),) * 2, ((2, 32, 32, 1),) * 2]
    blurred, sharp = _collect(ds)
    assert blurred.dtype == sharp.dtype == np.float32
    assert 0 <= blurred.min() and blurred.max() <= 1 and 0 <= sharp.min()
    expected_sharp = data.microscopy_scenes(6, SHAPE, seed=0)
    np.testing.assert_array_equal(sharp, expected_sharp)
    reference = np.clip(data.blur_exact(expected_sharp.astype(np.float64), field), 0, 1)
    np.testing.assert_allclose(blurred, reference, atol=1e-5)


def test_same_seed_same_data_different_seed_different(field):
    def make(seed):
        return _collect(
            data.deblur_dataset(
                field, image_shape=SHAPE, num_images=5, batch_size=2, seed=seed
            )
        )

    a, b, c = make(1), make(1), make(2)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
    # Shuffled order is a permutation of the unshuffled pairs; noise is on.
    plain = _collect(
        data.deblur_dataset(
            field, image_shape=SHAPE, num_images=5, seed=1, shuffle=False
        )
    )
    order = [next(j for j in range(5) if np.array_equal(s, plain[1][j])) for s in a[1]]
    assert sorted(order) == list(range(5)) and order != list(range(5))
    np.testing.assert_array_equal(a[0], plain[0][order])
    clean = np.clip(data.blur_exact(plain[1].astype(np.float64), field), 0, 1)
    assert 0.001 < np.std(plain[0] - clean) < 0.2


def test_array_and_folder_sources(field, tmp_path):
    rng = np.random.default_rng(0)
    stack = rng.random((3, 32, 32, 3)).astype(np.float32)
    blurred, sharp = _collect(
        data.deblur_dataset(
            field, images=stack, batch_size=8, noise=None, shuffle=False
        )
    )
    np.testing.assert_array_equal(sharp, stack)
    np.testing.assert_allclose(
        blurred, np.clip(data.blur_exact(stack, field), 0, 1), atol=1e-5
    )
    np.save(tmp_path / "img.npy", rng.random((40, 50)))
    folder = data.ImageFolder(tmp_path, crop_shape=SHAPE)
    blurred, sharp = _collect(
        data.deblur_dataset(field, images=folder, num_images=3, seed=4)
    )
    assert sharp.shape == (3, 32, 32, 1)
    assert any(
        np.array_equal(s, folder.crop(i, seed=4)) for s in sharp for i in range(3)
    )


def test_write_then_load_gives_the_same_pairs(field, tmp_path):
    kwargs = dict(image_shape=SHAPE, num_images=7, seed=3)
    paths = data.write_deblur_dataset(tmp_path / "ds", field, shard_size=3, **kwargs)
    assert [os.path.basename(p) for p in paths] == [
        "shard-00000.npz",
        "shard-00001.npz",
        "shard-00002.npz",
    ]
    assert sorted(os.listdir(tmp_path / "ds")) == sorted(
        ["metadata.json", "psf_field.npz"] + [os.path.basename(p) for p in paths]
    )
    np.testing.assert_array_equal(
        data.PSFField.load(tmp_path / "ds" / "psf_field.npz").psfs, field.psfs
    )
    on_the_fly = _collect(data.deblur_dataset(field, shuffle=False, **kwargs))
    ordered = _collect(
        data.load_deblur_dataset(tmp_path / "ds", batch_size=4, shuffle=False)
    )
    np.testing.assert_allclose(ordered[0], on_the_fly[0], atol=1e-6)
    np.testing.assert_array_equal(ordered[1], on_the_fly[1])
    shuffled = _collect(data.load_deblur_dataset(tmp_path / "ds", batch_size=4, seed=1))
    assert shuffled[1].shape == (7, 32, 32, 1)
    assert not np.array_equal(shuffled[1], ordered[1])
    assert sorted(map(bytes, shuffled[1])) == sorted(map(bytes, ordered[1]))
    with pytest.raises(
        ValueError, match=r"`directory`. Expected a folder without a dataset"
    ):
        data.write_deblur_dataset(tmp_path / "ds", field, **kwargs)
    data.write_deblur_dataset(tmp_path / "ds", field, overwrite=True, **kwargs)


def test_dataset_argument_errors(field, tmp_path):
    with pytest.raises(ValueError, match=r"`noise`.*noise='gaussian'"):
        data.deblur_dataset(field, image_shape=SHAPE, noise="gaussian")
    with pytest.raises(ValueError, match=r"`images`.*images of type list"):
        data.deblur_dataset(field, images=[np.zeros((32, 32))])
    with pytest.raises(ValueError, match=r"`images`. Expected values in \[0, 1\]"):
        data.deblur_dataset(field, images=np.full((2, 32, 32), 2.0))
    with pytest.raises(ValueError, match=r"`images`. Expected finite values"):
        data.deblur_dataset(field, images=np.full((2, 32, 32), np.nan))
    with pytest.raises(
        ValueError, match=r"`num_images`.*len\(images\) = 2.*num_images=5"
    ):
        data.deblur_dataset(field, images=np.zeros((2, 32, 32)), num_images=5)
    with pytest.raises(
        ValueError, match=r"`image_shape`.*\(32, 32\).*image_shape=\(16, 16\)"
    ):
        data.deblur_dataset(field, images=np.zeros((2, 32, 32)), image_shape=(16, 16))
    pinned = data.PSFField(field.psfs, image_shape=(64, 64))
    with pytest.raises(
        ValueError, match=r"`image_shape`. Expected images of height.*\(64, 64\)"
    ):
        data.deblur_dataset(pinned, image_shape=SHAPE)
    with pytest.raises(ValueError, match=r"`psf_field`. Expected PSFs no larger"):
        data.deblur_dataset(field, image_shape=(4, 4))
    with pytest.raises(ValueError, match=r"`batch_size`.*batch_size=0"):
        data.deblur_dataset(field, image_shape=SHAPE, batch_size=0)
    with pytest.raises(
        ValueError, match=r"`rank`. Expected an integer between 1 and 4"
    ):
        data.deblur_dataset(field, image_shape=SHAPE, rank=5)
    with pytest.raises(ValueError, match=r"`directory`. Expected a folder written by"):
        data.load_deblur_dataset(tmp_path)
    with pytest.raises(
        ValueError, match=r"`images`. Expected a stack.*shape=\(32, 32\)"
    ):
        data.deblur_dataset(field, images=np.zeros((32, 32)))
    np.save(tmp_path / "x.npy", np.zeros((40, 40)))
    folder = data.ImageFolder(tmp_path, crop_shape=SHAPE)
    with pytest.raises(
        ValueError, match=r"`image_shape`. Expected None or the folder's"
    ):
        data.deblur_dataset(field, images=folder, image_shape=(16, 16))
