"""PixelClusterer: planted regions, sampling, streaming, centres in input space."""

import pickle

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score

import keras_introspect as ki

COLOURS = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.2, 0.2, 0.9]], "float32")


def _identity_conv(size=24, pool=False):
    """A 1x1 convolution with identity weights (then optional 2x2 average pooling)."""
    inputs = keras.Input((size, size, 3))
    conv = keras.layers.Conv2D(3, 1, use_bias=False, name="identity")
    out = conv(inputs)
    if pool:
        out = keras.layers.AveragePooling2D(2, name="pool")(out)
    out = keras.layers.Flatten(name="flat")(out)
    model = keras.Model(inputs, out)
    conv.set_weights([np.eye(3, dtype="float32")[None, None]])
    return model


def _three_regions(size=24):
    regions = np.zeros((size, size), int)
    regions[:, size // 3 : 2 * size // 3] = 1
    regions[:, 2 * size // 3 :] = 2
    return COLOURS[regions], regions


@pytest.mark.parametrize("backend", ["tensorflow", "sklearn"])
def test_three_flat_regions_give_three_clusters(backend):
    image, regions = _three_regions()
    pc = ki.PixelClusterer(_identity_conv(), "identity", backend=backend, random_state=0)
    labels = pc.fit_predict(image[None])
    assert labels.shape == (1, 24, 24)
    assert pc.n_clusters_ == 3
    assert adjusted_rand_score(regions.ravel(), labels.ravel()) >= 0.95
    assert pc.map_shape_ == (24, 24) and pc.n_channels_ == 3
    assert pc.data_range_ == (0.0, 1.0)
    assert not pc.sampled_ and pc.n_points_ == pc.n_points_fit_ == 576


def test_kmeans_centres_are_the_colours_in_activation_units():
    image, regions = _three_regions()
    pc = ki.PixelClusterer(
        _identity_conv(), "identity", method="kmeans", n_clusters=3, random_state=0
    ).fit(image[None])
    labels = pc.transform(image[None])[0]
    for label in range(3):
        region = np.bincount(regions[labels == label]).argmax()
        np.testing.assert_allclose(pc.cluster_centers_[label], COLOURS[region], atol=1e-5)
    np.testing.assert_allclose(pc.weights_, [1 / 3] * 3)
    gmm = ki.PixelClusterer(
        _identity_conv(), "identity", method="gmm", n_clusters=3, random_state=0
    ).fit(image[None])
    assert adjusted_rand_score(regions.ravel(), gmm.transform(image[None]).ravel()) >= 0.95


def test_centres_in_input_space_through_the_receptive_field():
    # a 6x6 square of colour 1 at rows 4..9, cols 10..15 on colour 0
    image = np.tile(COLOURS[0], (24, 24, 1))
    image[4:10, 10:16] = COLOURS[1]
    model = _identity_conv(pool=True)  # pool: field 2x2, stride 2, offset 0
    pc = ki.PixelClusterer(model, "pool", method="kmeans", n_clusters=2, random_state=0)
    (centres,) = pc.fit(image[None]).centers_in_input_space(image[None])
    # the background (largest cluster) is left out; units 2..4 x 5..7 hold the
    # square, their mean (3, 6) maps to 2 * (3, 6) + 0.5
    ((label, (row, col, size)),) = centres.items()
    assert (row, col, size) == (6.5, 12.5, 9)
    everything = pc.centers_in_input_space(image[None], background=None)[0]
    assert len(everything) == 2 and everything[label] == (6.5, 12.5, 9)
    with pytest.raises(ValueError, match="background"):
        pc.centers_in_input_space(image[None], background="smallest")
    # after a resize by a factor that is not whole (24 -> 10), pixels have no
    # receptive field to map them through
    inputs = keras.Input((24, 24, 3))
    resized = keras.layers.Resizing(10, 10, name="resize")(inputs)
    resizing = keras.Model(inputs, keras.layers.Conv2D(2, 1, name="conv")(resized))
    pc = ki.PixelClusterer(resizing, "conv", method="kmeans", n_clusters=2).fit(image[None])
    with pytest.raises(ValueError, match="receptive field"):
        pc.centers_in_input_space(image[None])


def _dense_after_conv():
    inputs = keras.Input((24, 24, 3))
    out = keras.layers.Dense(4, name="dense")(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, out)


def test_a_dense_layer_is_refused_with_a_pointer():
    image, _ = _three_regions()
    with pytest.raises(ValueError, match="ImageClusterer"):
        ki.PixelClusterer(_dense_after_conv(), "dense").fit(image[None])


def test_sampling_is_seeded_uniform_and_reported(capsys):
    rng = np.random.default_rng(0)
    images = np.stack([_three_regions()[0]] * 5) + rng.normal(0, 0.01, (5, 24, 24, 3))
    images = images.astype("float32")
    model = _identity_conv()
    kwargs = dict(method="kmeans", n_clusters=3, sample_size=500, random_state=7, verbose=1)
    a = ki.PixelClusterer(model, "identity", batch_size=2, **kwargs).fit(images)
    assert "sample of 500 of the 2,880 pixels" in capsys.readouterr().err  # status goes to stderr
    assert a.sampled_ and a.n_points_ == 2880 and a.n_points_fit_ == 500
    # the same seed gives the same sample whatever the batch size
    b = ki.PixelClusterer(model, "identity", batch_size=5, **kwargs).fit(images)
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_)
    # every pixel is labelled, in batches or from a stream
    labels = a.transform(images)
    assert labels.shape == (5, 24, 24)
    stream = tf.data.Dataset.from_tensor_slices(images).batch(3)
    np.testing.assert_array_equal(a.transform(stream), labels)
    regions = np.tile(_three_regions()[1], (5, 1, 1))
    assert adjusted_rand_score(regions.ravel(), labels.ravel()) >= 0.95


def test_parameters_are_checked():
    image, _ = _three_regions()
    model = _identity_conv()
    with pytest.raises(NotFittedError):
        ki.PixelClusterer(model, "identity").transform(image[None])
    with pytest.raises(ValueError, match="n_clusters"):
        ki.PixelClusterer(model, "identity", method="kmeans").fit(image[None])
    with pytest.raises(ValueError, match="backend='tensorflow'"):
        ki.PixelClusterer(model, "identity", covariance_type="tied").fit(image[None])
    with pytest.raises(ValueError, match="method"):
        ki.PixelClusterer(model, "identity", method="dbscan").fit(image[None])
    with pytest.raises(ValueError, match="scale"):
        ki.PixelClusterer(model, "identity", scale=(3, 1)).fit(image[None])
    with pytest.raises(ValueError, match="sample_size"):
        ki.PixelClusterer(model, "identity", sample_size=0).fit(image[None])
    fitted = ki.PixelClusterer(model, "identity", method="kmeans", n_clusters=2).fit(image[None])
    with pytest.raises(ValueError, match="shape"):
        fitted.transform(np.zeros((1, 12, 12, 3), "float32"))


def test_clone_shares_the_model_and_pickle_round_trips():
    image, _ = _three_regions()
    model = _identity_conv()
    pc = ki.PixelClusterer(model, "identity", random_state=0)
    assert clone(pc).model is model
    pc.fit(image[None])
    restored = pickle.loads(pickle.dumps(pc))
    np.testing.assert_array_equal(restored.transform(image[None]), pc.transform(image[None]))


def test_upsampled_labels_follow_the_nearest_field_centre():
    from keras_introspect.cluster.pixel import upsample_labels
    from keras_introspect.model.receptive_field import ReceptiveField

    field = ReceptiveField(size=(5, 3), stride=(2, 3), offset=(-2, 1))
    labels = np.random.default_rng(0).integers(0, 9, (2, 6, 4))
    full = upsample_labels(labels, (13, 14), field)
    centres = [
        np.array([field.center((i, 0))[0] for i in range(6)]),
        np.array([field.center((0, j))[1] for j in range(4)]),
    ]
    for r in range(13):
        for c in range(14):
            i = int(np.argmin(np.abs(centres[0] - r) + 1e-9 * np.arange(6)))
            j = int(np.argmin(np.abs(centres[1] - c) + 1e-9 * np.arange(4)))
            assert (full[:, r, c] == labels[:, i, j]).all(), (r, c)
    blocks = upsample_labels(labels, (12, 8))  # no field: equal blocks
    assert (blocks[:, ::2, ::2] == labels).all() and (blocks[:, 1::2, 1::2] == labels).all()
