"""Free input size in the report's clustering and feature visualization (issue 22).

A model taking `Input((None, None, C))` is checked against a fixed-size copy
with the same weights: the spatial size then comes from the images, and
every result must equal the copy's.
"""

import keras
import numpy as np
import pytest

import keras_introspect as ki
from keras_introspect.optimize.activation_maximization import ActivationMaximization

L = keras.layers


def _cnn(shape):
    """conv (same) -> pool -> conv: 8x8 -> 4x4 feature maps of 4 channels."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape)
    h = L.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inputs)
    h = L.MaxPooling2D(name="pool")(h)
    h = L.Conv2D(4, 3, padding="same", name="conv2")(h)
    return keras.Model(inputs, h)


def _pair():
    free = _cnn((None, None, 3))
    fixed = _cnn((8, 8, 3))
    fixed.set_weights(free.get_weights())
    return free, fixed


def _two_groups(n=24, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.3, (n, 8, 8, 3)).astype("float32")
    x[: n // 2, :4] += 2.0  # bright top half
    x[n // 2 :, 4:] += 2.0  # bright bottom half
    return x


def test_image_clusterer_pools_the_data_size_of_a_free_size_model():
    free, fixed = _pair()
    x = _two_groups()
    kwargs = dict(method="kmeans", n_clusters=2, random_state=0, max_features=16)
    a = ki.ImageClusterer(free, "conv2", **kwargs).fit(x)
    b = ki.ImageClusterer(fixed, "conv2", **kwargs).fit(x)
    # 4x4x4 = 64 values -> 2x2 blocks of 4 channels = 16 features
    assert a.n_features_ == b.n_features_ == 16
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.predict(x), b.predict(x))
    assert sorted(np.bincount(a.labels_)) == [12, 12]
    # images of another size than in fit: refused with a clear error
    with pytest.raises(ValueError, match="as in fit"):
        a.predict(np.zeros((2, 16, 16, 3), "float32"))


def test_layerwise_purity_on_a_free_size_model_equals_the_fixed_copy():
    free, fixed = _pair()
    x = _two_groups()
    y = np.repeat([0, 1], 12)
    kwargs = dict(layers=["conv1", "conv2"], method="kmeans", seed=0, max_features=16)
    a = ki.layerwise_purity(free, x, y, **kwargs)
    b = ki.layerwise_purity(fixed, x, y, **kwargs)
    np.testing.assert_allclose(a.purity, b.purity)
    np.testing.assert_allclose(a.nmi, b.nmi)


@pytest.mark.parametrize("parameterization", ["pixel", "fft"])
def test_am_on_a_free_size_model_equals_the_fixed_copy(parameterization):
    free, fixed = _pair()
    kwargs = dict(steps=4, parameterization=parameterization, transforms=[], seed=3)
    seed = kwargs.pop("seed")
    a = ActivationMaximization(free, image_shape=(8, 8, 3), **kwargs)
    b = ActivationMaximization(fixed, **kwargs)
    ra = a.generate_for_channels("conv2", [0, 1], n=2, seed=seed)
    rb = b.generate_for_channels("conv2", [0, 1], n=2, seed=seed)
    np.testing.assert_allclose(ra.images, rb.images, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ra.activation, rb.activation, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("init", ["max", "mean"])
def test_receptive_field_am_on_a_free_size_model_equals_the_fixed_copy(init):
    """The report's mode: patches of the field, started from the most activating
    dataset patches; their positions come from the feature map of the data."""
    free, fixed = _pair()
    x = _two_groups(8)
    kwargs = dict(steps=3, transforms=[], receptive_field=True, init=init, regularizers=[])
    a = ActivationMaximization(free, image_shape=(8, 8, 3), **kwargs)
    b = ActivationMaximization(fixed, **kwargs)
    ra = a.generate_for_channels("conv2", [0, 2], n=2, x=x, seed=1)
    rb = b.generate_for_channels("conv2", [0, 2], n=2, x=x, seed=1)
    np.testing.assert_array_equal(ra.positions, rb.positions)
    np.testing.assert_array_equal(ra.boxes, rb.boxes)
    np.testing.assert_allclose(ra.images, rb.images, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ra.best_dataset_activation, rb.best_dataset_activation, rtol=1e-5)
    if init == "max":  # the best unit of channel 0 over the data, found by brute force
        act = fixed.predict(x, verbose=0)[..., 0]
        flat = act.reshape(len(x), -1)
        image = int(np.argmax(flat.max(axis=1)))
        best = np.unravel_index(int(flat[image].argmax()), act.shape[1:])
        assert tuple(ra.positions[0, 0]) == best
    else:  # the centre unit of the 4x4 map
        assert (ra.positions == 1).all()


def _html(section) -> str:
    return "".join(map(str, section.blocks))


@pytest.mark.parametrize("family", ["detection_head", "segmentation_fcn"])
def test_build_report_writes_every_section_for_free_size_models(monkeypatch, family):
    import nd_models

    from keras_introspect.report import REGISTRY, build_report

    monkeypatch.setenv("KI_MAX_STEPS", "3")
    fx = getattr(nd_models, family)()
    report = build_report(fx.model, fx.x[:12], verbose=0)
    html = [_html(s) for s in report.sections]
    assert not any("could not be computed" in h for h in html)
    titles = [s.title for s in report.sections]
    defaults = [REGISTRY[name] for name in REGISTRY.defaults]
    assert len(defaults) == 14
    assert titles[0] == f"Model: {family}"  # the summary
    for spec in defaults[1:]:  # each section, or the note in its place, under its title
        assert any(t.startswith(spec.title) for t in titles), spec.name
    # the two that failed before: one feature visualization per chosen layer, purity
    assert sum(t.startswith("Feature visualization at") for t in titles) == 2
    assert "Layer-wise purity" in titles
    # the one skipped (dense outputs are not one class per image) says why
    (quality,) = [h for t, h in zip(titles, html, strict=True) if t == "Explanation quality"]
    assert "Skipped" in quality
