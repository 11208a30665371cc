"""LIME and KernelSHAP: Shapley values by brute force and in closed form, exact on
additive models, equal to scikit-learn's Ridge on the same coalitions, seeded,
batch-size invariant, and close to Xplique's."""

import itertools
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_introspect import targets
from keras_introspect.attribution.surrogate import LIME, KernelSHAP, superpixels
from keras_introspect.exceptions import KerasIntrospectWarning

L = keras.layers


def _conv_model(size=8, channels=2):
    keras.utils.set_random_seed(3)
    return keras.Sequential(
        [
            keras.Input((size, size, channels)),
            L.Conv2D(3, 3, activation="relu"),
            L.GlobalAveragePooling2D(),
            L.Dense(2),
        ]
    )


X = np.random.default_rng(0).random((3, 8, 8, 2)).astype("float32")
QUADRANTS = np.kron(np.arange(4).reshape(2, 2), np.ones((4, 4), int))  # 4 segments
GRID = np.kron(np.arange(16).reshape(4, 4), np.ones((2, 2), int))  # 16 segments of 2 x 2


def _blocky(n, size=16, cells=4, seed=0):
    """Images of flat `cells x cells` blocks (slightly noisy), which SLIC cuts along
    the blocks (on pure noise it would return a single segment)."""
    random = np.random.default_rng(seed)
    blocks = random.random((n, cells, cells, 3))
    images = np.kron(blocks, np.ones((1, size // cells, size // cells, 1)))
    return (images + 0.01 * random.random(images.shape)).astype("float32")


def _perturb(image, labels, z, baseline):
    keep = np.asarray(z, np.float32)[labels][..., None]
    return image * keep + baseline * (1 - keep)


def _shapley_by_brute_force(value, M):
    """phi_i = sum over S not holding i of |S|! (M - |S| - 1)! / M! (v(S + i) - v(S))."""
    v = {s: value(np.array(s)) for s in itertools.product((0, 1), repeat=M)}
    phi = np.zeros(M)
    for s, vs in v.items():
        for i in np.flatnonzero(np.array(s) == 0):
            with_i = list(s)
            with_i[i] = 1
            size = sum(s)
            weight = math.factorial(size) * math.factorial(M - size - 1) / math.factorial(M)
            phi[i] += weight * (v[tuple(with_i)] - vs)
    return phi


def test_kernel_shap_enumerating_every_coalition_gives_the_exact_shapley_values():
    """A nonlinear conv net, per-image classes, a baseline image and one label map per
    image (the third with 3 segments); v(S) scored one copy at a time with model()."""
    model = _conv_model()
    baseline = np.full((8, 8, 2), 0.25, np.float32)
    three = np.repeat([[0] * 3 + [1] * 3 + [2] * 2], 8, axis=0)
    labels = np.stack([QUADRANTS, QUADRANTS, three])
    classes = [0, 1, 1]
    shap = KernelSHAP(
        model, targets.Class(classes), n_samples=16, segmentation=labels, baseline=baseline
    )
    maps = shap.explain(X)
    for i, (image, cls) in enumerate(zip(X, classes, strict=True)):
        M = labels[i].max() + 1

        def value(z, image=image, cls=cls, i=i):
            return float(model(_perturb(image, labels[i], z, baseline)[None])[0, cls])

        expected = _shapley_by_brute_force(value, M)
        np.testing.assert_allclose(shap.coefficients_[i], expected, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(maps[i], expected[labels[i]], rtol=1e-4, atol=1e-6)
        assert shap.intercept_[i] == pytest.approx(value(np.zeros(M)), rel=1e-5)
        assert len(shap.coalitions_[i]) == 2**M  # every coalition, scored once
    np.testing.assert_array_equal(shap.segments_, labels)


@pytest.mark.parametrize("game", ["product", "max"])
def test_kernel_shap_on_games_with_closed_form_shapley_values(game):
    """f = a * b or max(a, b) with a, b the sums of two regions and a third region
    unused; baseline 0 so v(S) is f with the hidden regions' sums set to 0.
    product: phi = (ab/2, ab/2, 0); max: phi_A = a/2 + (max(a, b) - b)/2, alike for B."""
    weights = np.zeros((6, 6, 1, 2), np.float32)
    weights[:2, :, 0, 0] = 1.0  # region A: rows 0-1
    weights[2:4, :, 0, 1] = 1.0  # region B: rows 2-3 (C: rows 4-5, unused)
    combine = {
        "product": lambda t: t[:, :1] * t[:, 1:],
        "max": lambda t: tf.reduce_max(t, axis=1, keepdims=True),
    }[game]
    inputs = keras.Input((6, 6, 1))
    sums = L.Dense(2, use_bias=False)(L.Flatten()(inputs))
    model = keras.Model(inputs, L.Lambda(combine)(sums))
    model.layers[2].set_weights([weights.reshape(36, 2)])
    labels = np.repeat(np.arange(3), 2)[:, None] * np.ones((1, 6), int)
    x = np.random.default_rng(1).random((2, 6, 6, 1)).astype("float32")
    shap = KernelSHAP(model, 0, n_samples=8, segmentation=labels)
    shap.explain(x)
    for i, image in enumerate(x):
        a, b = float(image[:2].sum()), float(image[2:4].sum())
        if game == "product":
            expected = [a * b / 2, a * b / 2, 0.0]
        else:
            expected = [a / 2 + (max(a, b) - b) / 2, b / 2 + (max(a, b) - a) / 2, 0.0]
        np.testing.assert_allclose(shap.coefficients_[i], expected, rtol=1e-5, atol=1e-5)


def test_both_recover_each_segments_contribution_on_an_additive_model():
    """f = w . x with baseline 0: any coalition's score is the sum of the kept
    segments' w . x, so the linear fit is exact: LIME (alpha 0, intercept 0) and
    KernelSHAP from sampled coalitions (16 segments, 100 samples < 2^16)."""
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((8, 8, 3)), L.Flatten(), L.Dense(1, use_bias=False)])
    w = model.layers[-1].get_weights()[0].reshape(8, 8, 3)
    x = np.random.default_rng(2).random((2, 8, 8, 3)).astype("float32")
    expected = [np.array([np.sum((w * image)[GRID == s]) for s in range(16)]) for image in x]
    lime = LIME(model, 0, n_samples=100, segmentation=GRID, alpha=0.0)
    shap = KernelSHAP(model, 0, n_samples=100, segmentation=GRID)
    for method in (lime, shap):
        maps = method.explain(x)
        for i in range(2):
            np.testing.assert_allclose(method.coefficients_[i], expected[i], atol=2e-4)
            np.testing.assert_allclose(maps[i], expected[i][GRID], atol=2e-4)
        np.testing.assert_allclose(method.intercept_, 0.0, atol=2e-4)
    assert len(shap.coalitions_[0]) == 100  # sampled, not enumerated


def test_slic_segments_on_an_additive_model():
    """The default segmentation: each coefficient is w . x summed over the segment
    `segments_` says, and SLIC's segments follow the flat blocks of the image."""
    keras.utils.set_random_seed(6)
    model = keras.Sequential([keras.Input((16, 16, 3)), L.Flatten(), L.Dense(1)])
    w = model.layers[-1].get_weights()[0].reshape(16, 16, 3)
    x = _blocky(2, cells=2)
    lime = LIME(model, 0, n_samples=60, alpha=0.0, segmentation_options={"n_segments": 4})
    lime.explain(x)
    for i, image in enumerate(x):
        labels = lime.segments_[i]
        assert labels.max() + 1 == 4 and np.all(
            labels == labels[::8, ::8].repeat(8, 0).repeat(8, 1)
        )
        expected = [np.sum((w * image)[labels == s]) for s in range(4)]
        np.testing.assert_allclose(lime.coefficients_[i], expected, atol=2e-4)


@pytest.mark.parametrize(("alpha", "kernel_width"), [(1.0, 0.25), (0.1, 0.6)])
def test_lime_is_sklearns_ridge_on_the_same_coalitions(alpha, kernel_width):
    """The reference: the coalitions LIME drew (`coalitions_`), each copy scored with
    model(), lime's kernel sqrt(exp(-d^2 / width^2)) of scikit-learn's cosine distance
    to the all-ones vector, and sklearn's Ridge with those sample weights."""
    from sklearn.linear_model import Ridge
    from sklearn.metrics import pairwise_distances

    model = _conv_model()
    baseline = 0.5
    lime = LIME(
        model,
        targets.Class([0, 1, 1]),
        n_samples=80,
        segmentation=GRID,
        baseline=baseline,
        alpha=alpha,
        kernel_width=kernel_width,
        seed=4,
    )
    maps = lime.explain(X, batch_size=32)
    for i, (image, cls) in enumerate(zip(X, [0, 1, 1], strict=True)):
        z = lime.coalitions_[i]
        assert z.shape == (80, 16) and np.all(z[0] == 1)
        copies = np.stack([_perturb(image, GRID, row, baseline) for row in z])
        scores = model(copies).numpy()[:, cls]
        d = pairwise_distances(z, np.ones((1, 16)), metric="cosine").ravel()
        kernel = np.sqrt(np.exp(-(d**2) / kernel_width**2))
        ridge = Ridge(alpha=alpha).fit(z, scores, sample_weight=kernel)
        np.testing.assert_allclose(lime.coefficients_[i], ridge.coef_, rtol=1e-3, atol=1e-5)
        assert lime.intercept_[i] == pytest.approx(ridge.intercept_, rel=1e-3, abs=1e-5)
        np.testing.assert_allclose(maps[i], ridge.coef_[GRID], rtol=1e-3, atol=1e-5)
    np.testing.assert_array_equal(lime.coalitions(16), lime.coalitions_[0])


@pytest.mark.parametrize("method", [LIME, KernelSHAP])
def test_the_same_seed_gives_the_same_maps_for_any_batch_size(method):
    """SLIC segments per image (13 to 15: KernelSHAP samples), batch sizes 1, 3 and
    all, and a tf.data stream."""
    model = _conv_model(size=16, channels=3)
    x = _blocky(3)
    options = {"n_segments": 12}
    explainer = method(model, targets.Class([0, 1, 1]), n_samples=40, segmentation_options=options)
    first = explainer.explain(x, batch_size=1)
    segments = explainer.segments_
    assert np.any(first) and all(len(z) == 40 for z in explainer.coalitions_)
    for batch_size in (3, 120):
        np.testing.assert_allclose(explainer.explain(x, batch_size=batch_size), first, rtol=1e-5)
    streamed = explainer.explain(tf.data.Dataset.from_tensor_slices(x).batch(2))
    np.testing.assert_allclose(streamed, first, rtol=1e-5)
    np.testing.assert_array_equal(explainer.segments_, segments)
    other = method(
        model, targets.Class([0, 1, 1]), n_samples=40, seed=1, segmentation_options=options
    ).explain(x)
    assert not np.allclose(other, first)


def test_kernel_shap_coefficients_add_up_to_the_score_change_when_sampled():
    """The ends are enforced exactly: sum(phi) = f(x) - f(baseline) for any n_samples."""
    model = _conv_model()
    shap = KernelSHAP(model, 1, n_samples=30, segmentation=GRID, baseline=0.3)
    shap.explain(X)
    change = model(X).numpy()[:, 1] - model(np.full_like(X, 0.3)).numpy()[:, 1]
    np.testing.assert_allclose([c.sum() for c in shap.coefficients_], change, rtol=1e-4)
    z = shap.coalitions_[0]
    assert np.all(z[0] == 1) and np.all(z[1] == 0)
    sizes = z[2:].sum(axis=1)
    assert sizes.min() >= 1 and sizes.max() <= 15  # drawn: no end twice
    np.testing.assert_array_equal(z[2:16], 1 - z[16:30])  # paired with complements


def test_agrees_with_xplique_under_matched_conventions():
    """The same 16 segments, baseline 0, class score, 3 000 samples. Xplique's Lime
    with lime's kernel on z and Ridge(alpha=1); its KernelShap fits
    LinearRegression with an intercept without enforcing the ends. Each draws its
    own coalitions, so the coefficients agree up to sampling noise: measured over
    seeds 0-2, Pearson 0.9993 to 1.0000 for both methods on both images; at seed 0
    the largest difference is 0.5 to 2.8 % of the largest coefficient."""
    pytest.importorskip("xplique")
    from sklearn.linear_model import Ridge
    from xplique.attributions import KernelShap, Lime

    model = _conv_model()
    x = X[:2]
    onehot = np.eye(2, dtype="float32")[[0, 1]]
    mapping = lambda image: tf.constant(GRID, tf.int32)  # noqa: E731

    def lime_kernel(_, z, __):
        d = 1.0 - tf.sqrt(tf.reduce_sum(tf.cast(z, tf.float32), axis=1) / 16.0)
        return tf.sqrt(tf.exp(-(d**2) / 0.25**2))

    tf.random.set_seed(0)
    peers = {
        LIME: Lime(
            model,
            batch_size=1000,
            interpretable_model=Ridge(alpha=1.0),
            similarity_kernel=lime_kernel,
            map_to_interpret_space=mapping,
            ref_value=np.zeros(2, np.float32),
            nb_samples=3000,
        ),
        KernelSHAP: KernelShap(
            model,
            batch_size=1000,
            map_to_interpret_space=mapping,
            ref_value=np.zeros(2, np.float32),
            nb_samples=3000,
        ),
    }
    first_pixel = [np.argmax(GRID.ravel() == s) for s in range(16)]
    for method, peer in peers.items():
        ours = method(model, targets.Class([0, 1]), n_samples=3000, segmentation=GRID)
        ours.explain(x)
        theirs = np.asarray(peer.explain(x, onehot)).reshape(2, -1)[:, first_pixel]
        for mine, other in zip(ours.coefficients_, theirs, strict=True):
            assert np.corrcoef(mine, other)[0, 1] > 0.99, method.__name__
            assert np.abs(mine - other).max() < 0.1 * np.abs(mine).max(), method.__name__


def test_runs_on_a_nested_application_backbone():
    keras.utils.set_random_seed(0)
    backbone = keras.applications.MobileNetV2(
        weights=None, include_top=False, input_shape=(32, 32, 3), alpha=0.35
    )
    inputs = keras.Input((32, 32, 3))
    outputs = L.Dense(3)(L.GlobalAveragePooling2D()(backbone(inputs)))
    model = keras.Model(inputs, outputs)
    x = _blocky(2, size=32)
    options = {"n_segments": 8}
    lime = LIME(model, targets.Class(2), n_samples=32, segmentation_options=options)
    shap = KernelSHAP(model, targets.Class(2), n_samples=32, segmentation_options=options)
    for method in (lime, shap):
        maps = method.explain(x)
        assert maps.shape == (2, 32, 32) and maps.dtype == np.float32
        assert np.isfinite(maps).all() and np.any(maps)
    change = model(x).numpy()[:, 2] - model(np.zeros_like(x)).numpy()[:, 2]
    np.testing.assert_allclose([c.sum() for c in shap.coefficients_], change, rtol=1e-3)


def test_superpixels_respect_a_strong_edge_in_grey_and_colour_images_of_any_range():
    """Two flat halves: no segment crosses the edge, whether the image is grey or RGB,
    in [0, 1] or in [0, 255]; quickshift cuts exactly the two halves, grey or RGB."""
    grey = np.zeros((16, 16, 1))
    grey[:, 8:] = 1.0
    colour = np.concatenate([grey, 1 - grey, grey], axis=-1)
    for image in (grey, 255 * grey, colour, 255 * colour, grey[..., 0]):
        labels = superpixels(image, n_segments=8)
        assert labels.dtype == np.int32 and labels.shape == (16, 16)
        assert not set(np.unique(labels[:, :8])) & set(np.unique(labels[:, 8:]))
        assert len(np.unique(labels)) == labels.max() + 1 >= 2
    np.testing.assert_array_equal(superpixels(grey), superpixels(255 * grey))
    for image in (grey, colour):  # lime's max_dist=200 merges all of 16 x 16 pixels
        labels = superpixels(image, "quickshift", max_dist=20)
        assert labels.max() == 1 and np.all(labels[:, :8] != labels[:, 8:])


def test_a_callable_or_labels_of_any_values_segment_alike():
    """Labels {3, 7, 9} are renumbered 0, 1, 2 in increasing order (`segments_`)."""
    model = _conv_model()
    labels = np.where(QUADRANTS == 0, 3, np.where(QUADRANTS == 1, 7, 9))
    given = KernelSHAP(model, 0, n_samples=8, segmentation=labels)
    maps = given.explain(X)
    called = KernelSHAP(model, 0, n_samples=8, segmentation=lambda image: labels)
    np.testing.assert_allclose(called.explain(X), maps, rtol=1e-6)
    np.testing.assert_array_equal(given.segments_[0], np.searchsorted([3, 7, 9], labels))
    assert given.coefficients_[0].shape == (3,)


def test_progress_bar_counts_every_planned_step(capsys):
    """40 samples in steps of 20 per image: 6 steps for 3 images, also for KernelSHAP
    whose exact design for 4 segments is 16 rows (one step done, one skipped)."""
    model = _conv_model()
    for method in (LIME, KernelSHAP):
        method(model, 0, n_samples=40, segmentation=QUADRANTS, verbose=1).explain(X, batch_size=20)
        assert "6/6" in capsys.readouterr().err


def test_an_underdetermined_fit_warns():
    model = _conv_model()
    with pytest.warns(KerasIntrospectWarning, match="underdetermined"):
        LIME(model, 0, n_samples=10, segmentation=GRID).explain(X[:1])
    with pytest.warns(KerasIntrospectWarning, match="underdetermined"):
        KernelSHAP(model, 0, n_samples=10, segmentation=GRID).explain(X[:1])


def test_bad_arguments_are_refused():
    model = _conv_model()
    for kwargs, message in [
        ({"n_samples": 0}, "n_samples"),
        ({"n_samples": 1}, "n_samples"),
        ({"seed": -1}, "seed"),
        ({"segmentation": "felzenszwalb"}, "segmentation"),
        ({"segmentation": np.zeros((8, 8))}, "integer labels"),
        ({"segmentation_options": {"n_segmnts": 5}}, "n_segmnts"),
        ({"segmentation": GRID, "segmentation_options": {"n_segments": 5}}, "options"),
    ]:
        for method in (LIME, KernelSHAP):
            with pytest.raises(ValueError, match=message):
                method(model, 0, **kwargs)
    with pytest.raises(TypeError, match="segmentation_options"):
        LIME(model, 0, segmentation_options=[("n_segments", 5)])
    for kwargs, message in [({"kernel_width": 0.0}, "kernel_width"), ({"alpha": -1}, "alpha")]:
        with pytest.raises(ValueError, match=message):
            LIME(model, 0, **kwargs)
    for kwargs, message in [
        ({"segmentation": np.zeros((4, 4), int)}, r"labels of shape \(8, 8\)"),
        ({"segmentation": np.stack([QUADRANTS] * 2)}, "2 label maps for 3 images"),
        ({"segmentation": lambda image: GRID[:4]}, "callable"),
        ({"baseline": np.zeros((4, 4))}, "baseline"),
    ]:
        with pytest.raises(ValueError, match=message):
            KernelSHAP(model, 0, n_samples=8, **kwargs).explain(X)
