"""The Die360 renderer (`004` §5.1) and the bundled sample images."""

import keras
import numpy as np
import pytest
import skimage.measure
from scipy import ndimage

from keras_introspect.datasets import die360, one_degree_neighbours, render_die, sample_images

# rotations that turn each face towards the camera, and its pip count
HEAD_ON = [
    ((0, 0, 0), 1),
    ((0, -90, 0), 2),
    ((90, 0, 0), 3),
    ((-90, 0, 0), 4),
    ((0, 90, 0), 5),
    ((0, 180, 0), 6),
]


def _count_pips(image):
    """Dark blobs inside the die's silhouette (the silhouette's rim left out)."""
    die = ndimage.binary_fill_holes(image > 0.05)
    inner = ndimage.binary_erosion(die, iterations=4)
    return skimage.measure.label((image < 0.25) & inner).max()


@pytest.mark.parametrize("angles, pips", HEAD_ON)
@pytest.mark.parametrize("projection", ["perspective", "orthographic"])
def test_each_face_seen_head_on_shows_its_pips(angles, pips, projection):
    view = render_die(angles, size=128, projection=projection)
    assert view.label == pips
    assert len([f for f in view.faces if f[1] > 1.0]) == 1
    assert _count_pips(view.image) == pips


def test_opposite_faces_add_up_to_seven():
    from keras_introspect.datasets.die360 import _FACES

    by_normal = {normal: pips for normal, _, _, pips in _FACES}
    for (a, b, c), pips in by_normal.items():
        assert pips + by_normal[(-a, -b, -c)] == 7


def test_views_failing_the_prominence_rule_are_discarded():
    # a face-on-edge view: two faces of equal size, none prominent
    view = render_die((0, 45, 0), size=64, projection="orthographic")
    areas = sorted(f[1] for f in view.faces)
    assert areas[-1] == pytest.approx(areas[-2], rel=1e-6)
    assert view.label is None
    # slightly turned: the bottom-right face is larger, but not 1.5 times larger
    assert render_die((0, 40, 0), size=64, projection="orthographic").label is None
    # turned further it becomes prominent only if it is the bottom-right one
    kept = render_die((0, 20, 0), size=64, projection="orthographic")
    faces = sorted(kept.faces, key=lambda f: -f[1])
    assert faces[0][1] >= 1.5 * faces[1][1]
    bottom_right = max(kept.faces, key=lambda f: f[2][0] + f[2][1])
    assert (kept.label is not None) == (bottom_right is faces[0])


def test_dataset_is_seeded_labelled_and_in_range():
    x, y, angles = die360(n=60, seed=3, return_angles=True)
    assert x.shape == (60, 32, 32, 1) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert set(y.tolist()) <= set(range(1, 7))
    assert angles.shape == (60, 3) and angles.min() >= 0 and angles.max() < 360
    again, y_again = die360(n=60, seed=3)
    np.testing.assert_array_equal(again, x)
    np.testing.assert_array_equal(y_again, y)
    # each image is the kept render of its angles, with its label
    view = render_die(tuple(angles[7]))
    np.testing.assert_allclose(view.image, x[7, ..., 0])
    assert view.label == y[7]
    assert not np.array_equal(die360(n=60, seed=4)[0], x)


def test_every_class_occurs_and_parameters_are_checked():
    _, y = die360(n=400, seed=0)
    assert set(y.tolist()) == set(range(1, 7))
    with pytest.raises(ValueError, match="projection"):
        die360(n=2, projection="fisheye")
    with pytest.raises(ValueError, match="ambiguity"):
        die360(n=2, ambiguity=0.5)


def test_sample_images_ship_with_scikit_image():
    images = sample_images(["astronaut", "camera", "retina"], size=(40, 30))
    assert list(images) == ["astronaut", "camera", "retina"]
    for image in images.values():
        assert image.shape == (40, 30, 3) and image.dtype == np.float32
        assert 0 <= image.min() and image.max() <= 255 and image.max() > 50
    np.testing.assert_array_equal(images["camera"][..., 0], images["camera"][..., 2])
    with pytest.raises(ValueError, match="Unknown sample image"):
        sample_images(["lena"])


# Table 5.1 of the thesis: number of parameters of each network
TABLE_5_1_PARAMS = {
    "c1": 4644,
    "c2": 1272,
    "c3": 492,
    "c4": 360,
    "c9": 996,
    "d5": 5161,
    "d10": 10316,
    "d20": 20626,
}


@pytest.mark.parametrize(("name", "params"), sorted(TABLE_5_1_PARAMS.items()))
def test_networks_have_the_thesis_parameter_counts(name, params):
    from keras_introspect.datasets import die360_network

    model = die360_network(name)
    assert model.count_params() == params
    assert model.output_shape == (None, 6)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert all(c.filters == 3 and c.kernel_size == (3, 3) and c.padding == "same" for c in convs)
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    blocks = 3 if name == "c9" else int(name[1:]) if name[0] == "c" else 0
    assert len(pools) == blocks and len(convs) == (9 if name == "c9" else blocks)


def test_unknown_network_name():
    from keras_introspect.datasets import die360_network

    with pytest.raises(ValueError, match="c7"):
        die360_network("c7")


# ------------------------------------------------------------ the thesis layout (004 §5.1, §5.5)


def test_one_degree_neighbours_match_a_brute_force_search():
    from keras_introspect.datasets.die360 import STEPS

    rng = np.random.default_rng(0)
    angles = np.concatenate(
        [rng.integers(0, 4, (40, 3)), [(359, 0, 0), (0, 359, 359), (0, 0, 0), (358, 3, 1)]]
    )
    angles = np.unique(angles, axis=0)
    found = one_degree_neighbours(angles)
    where = {tuple(a): i for i, a in enumerate(angles.tolist())}
    for i, a in enumerate(angles):
        for k, step in enumerate(STEPS):
            expected = where.get(tuple(((a + step) % 360).tolist()), -1)
            assert found[i, k] == expected
    assert found[where[(0, 0, 0)], 1] == where[(359, 0, 0)]  # the angles wrap at 360


def test_thesis_layout_has_connected_one_degree_neighbourhoods_at_the_thesis_size():
    from keras_introspect.datasets.die360 import STEPS, _thesis_angles

    angles, labels = _thesis_angles(49_200, np.random.default_rng(0), "perspective", 1.5, 1)
    assert len(np.unique(angles, axis=0)) == 49_200
    np.testing.assert_array_equal(np.bincount(labels), [0] + [8200] * 6)  # balanced
    neighbours = one_degree_neighbours(angles)
    counts = (neighbours >= 0).sum(1)
    # a solid block of side s misses about 6/s neighbours per image (s ~ 20): 5.69 measured
    assert 5.5 <= counts.mean() <= 6.0
    assert (counts == 6).mean() > 0.7 and (counts >= 4).mean() > 0.97
    # a neighbour's rotation differs by one degree about one axis, and has the same label
    i, k = np.nonzero(neighbours >= 0)
    np.testing.assert_array_equal((angles[neighbours[i, k]] - angles[i]) % 360, STEPS[k] % 360)
    np.testing.assert_array_equal(labels[neighbours[i, k]], labels[i])
    # every kept rotation passes the prominence rule with its label (a sample, rendered alone)
    for j in np.random.default_rng(1).choice(len(angles), 12, replace=False):
        assert render_die(tuple(angles[j])).label == labels[j]


def test_thesis_layout_split_is_seeded_and_random():
    x, y, angles, rot = die360(
        n=600, layout="thesis", seed=1, return_angles=True, return_rotations=True
    )
    assert x.shape == (600, 32, 32, 1) and rot.split == 480
    np.testing.assert_array_equal(rot.angles, angles)
    np.testing.assert_array_equal(np.bincount(y), [0] + [100] * 6)
    again, y_again, rot_again = die360(n=600, layout="thesis", seed=1, return_rotations=True)
    np.testing.assert_array_equal(again, x)
    np.testing.assert_array_equal(y_again, y)
    np.testing.assert_array_equal(rot_again.neighbours, rot.neighbours)
    other = die360(n=600, layout="thesis", seed=2, return_angles=True)[2]
    assert not np.array_equal(other, angles)
    # random, not by class or by block: both splits hold every class in proportion
    for part in (rot.train, rot.validation):
        shares = np.bincount(y[part], minlength=7)[1:] / len(part)
        assert np.all(np.abs(shares - 1 / 6) < 0.06)
    # as in the thesis, nearly every validation image has a one-degree neighbour in training
    near = rot.neighbours[rot.validation]
    assert ((near >= 0) & (near < rot.split)).any(1).mean() > 0.9
    # each image is the render of its rotation, with its label
    view = render_die(tuple(angles[5]))
    np.testing.assert_allclose(view.image, x[5, ..., 0], atol=1e-6)
    assert view.label == y[5]


def test_sequences_walk_one_degree_steps_without_repeats():
    _, _, rot = die360(n=1200, layout="thesis", return_rotations=True)
    start = int(np.flatnonzero(rot.counts == 6)[0])
    path = rot.sequence(start, length=20)
    assert len(path) == 20 and len(set(path.tolist())) == 20
    steps = (rot.angles[path[1:]] - rot.angles[path[:-1]] + 180) % 360 - 180
    np.testing.assert_array_equal(np.abs(steps).sum(1), 1)
    # it keeps its direction while it can: the first steps are all the same one
    assert (steps[:3] == steps[0]).all()
    with pytest.raises(ValueError, match="image"):
        rot.sequence(5000)


def test_uniform_layout_has_almost_no_neighbours_and_layout_is_checked():
    _, _, rot = die360(n=300, seed=0, return_rotations=True)
    assert rot.mean_neighbours < 0.05
    with pytest.raises(ValueError, match="layout"):
        die360(n=6, layout="grid")
    with pytest.raises(ValueError, match="regions"):
        die360(n=6, layout="thesis", regions=2)
