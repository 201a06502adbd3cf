import numpy as np
import pytest

from coordgate_keras import data


def test_deterministic_per_seed_and_different_across_seeds():
    a = data.microscopy_scene((64, 80), seed=5)
    np.testing.assert_array_equal(a, data.microscopy_scene((64, 80), seed=5))
    assert not np.array_equal(a, data.microscopy_scene((64, 80), seed=6))
    batch = data.microscopy_scenes(3, (64, 80), seed=5)
    np.testing.assert_array_equal(
        batch[1, ..., 0], data.microscopy_scene((64, 80), seed=(5, 1))
    )
    assert not np.array_equal(batch, data.microscopy_scenes(3, (64, 80), seed=4))


@pytest.mark.parametrize("shape", [(7, 300), (256, 256), (1, 1)])
def test_any_size_in_unit_range(shape):
    scene = data.microscopy_scene(shape, seed=0)
    assert scene.shape == shape and scene.dtype == np.float32
    assert scene.min() >= 0 and scene.max() <= 1


def test_objects_present():
    empty = data.microscopy_scene(
        (64, 64), seed=1, cells_per_256=0, filaments_per_256=0, beads_per_256=0
    )
    assert np.ptp(empty) == 0  # only the flat background
    beads = data.microscopy_scene(
        (128, 128), seed=1, cells_per_256=0, filaments_per_256=0, beads_per_256=400
    )
    # ~100 isolated points: many local maxima well above the background.
    peaks = (beads[1:-1, 1:-1] > beads[:-2, 1:-1]) & (
        beads[1:-1, 1:-1] > beads[2:, 1:-1]
    )
    peaks &= (beads[1:-1, 1:-1] > beads[1:-1, :-2]) & (
        beads[1:-1, 1:-1] > beads[1:-1, 2:]
    )
    peaks &= beads[1:-1, 1:-1] > beads.min() + 0.1
    assert 50 < peaks.sum() < 150
    scene = data.microscopy_scene((256, 256), seed=2)
    assert (scene > scene.min() + 0.05).mean() > 0.05


def test_scene_argument_errors():
    with pytest.raises(ValueError, match=r"`image_shape`.*image_shape=\(0, 5\)"):
        data.microscopy_scene((0, 5))
    with pytest.raises(ValueError, match=r"`beads_per_256`.*beads_per_256=-1"):
        data.microscopy_scene((8, 8), beads_per_256=-1)
    with pytest.raises(ValueError, match=r"`num_images`.*num_images=0"):
        data.microscopy_scenes(0)
