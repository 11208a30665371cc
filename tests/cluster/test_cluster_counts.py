"""Issue 23 item 7 and issue 22 item 2: the DPGMM's count of clusters, and label maps in N-d.

The planted structures have a known number of clusters and known places;
the count must come out right (not the cap of 50), be the same number in
every place it is shown, and the label maps of 1-D and 3-D layers must find
the planted segments and blobs.
"""

import keras
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

import keras_introspect as ki
from keras_introspect.cluster.pixel import upsample_labels
from keras_introspect.exceptions import KerasIntrospectWarning


def _identity(shape, name="identity"):
    """A 1x1 (x1) convolution with identity weights on inputs `shape` (channels last)."""
    rank = len(shape) - 1
    channels = shape[-1]
    conv_class = {1: keras.layers.Conv1D, 2: keras.layers.Conv2D, 3: keras.layers.Conv3D}[rank]
    inputs = keras.Input(shape)
    conv = conv_class(channels, 1, use_bias=False, name=name)
    model = keras.Model(inputs, keras.layers.Flatten()(conv(inputs)))
    conv.set_weights([np.eye(channels, dtype="float32").reshape((1,) * rank + (channels,) * 2)])
    return model


def _relu_gaussians(n_images=4, side=32, zero_share=0.4, seed=0, channels_off=False):
    """Pixels of 8 channels: 3 well-separated Gaussian clusters after a ReLU
    and a share of pixels where every channel is exactly 0 (dead positions).
    With `channels_off`, each cluster also has 5 of its 8 channels at 0
    (their values are drawn around 0, so half of them are exact zeros).
    Returns the images and the planted label of every pixel (3 for the zeros)."""
    rng = np.random.default_rng(seed)
    low = 0.0 if channels_off else 3.0
    centres = np.full((3, 8), low)
    for k in range(3):
        centres[k, 2 * k : 2 * k + 2] = 6.0
        centres[k, 6] = 3.0 if channels_off else low
    planted = rng.integers(0, 3, (n_images, side, side))
    x = np.maximum(centres[planted] + rng.normal(0, 0.5, (*planted.shape, 8)), 0.0)
    zero = rng.random(planted.shape) < zero_share
    x[zero] = 0.0
    planted[zero] = 3
    return x.astype("float32"), planted


def test_three_relu_gaussians_and_zeros_give_four_clusters_not_the_cap():
    x, planted = _relu_gaussians()
    model = _identity(x.shape[1:])
    pc = ki.PixelClusterer(model, "identity", random_state=0).fit(x)
    labels = pc.transform(x)
    # 3 Gaussians + the exact zeros (a point mass: one cluster of its own)
    assert pc.n_clusters_ == 4
    assert adjusted_rand_score(planted.ravel(), labels.ravel()) >= 0.95
    # every cluster owns at least min_weight of the points; shares are label counts
    assert pc.shares_.min() >= pc.min_weight
    np.testing.assert_allclose(pc.shares_, np.bincount(labels.ravel()) / labels.size)
    # the zero cluster's centre is 0 in every channel (activation units)
    zero_label = np.bincount(labels[planted == 3]).argmax()
    np.testing.assert_allclose(pc.cluster_centers_[zero_label], 0.0, atol=0.05)
    assert pc.n_components_used_ >= pc.n_clusters_


def test_the_measured_causes_of_the_cap():
    """scikit-learn's setting (k-means start, data-covariance prior, every
    component owning a point counted) keeps many more components on the same
    16 384 pixels of 3 Gaussians (docs: 26 of 50); the defaults keep few."""
    x, _ = _relu_gaussians(n_images=16, zero_share=0.0)
    model = _identity(x.shape[1:])
    sklearn_like = dict(init_params="kmeans", covariance_prior="data", min_weight=0.0)
    # neither passes the convergence test within max_iter=100 on this many points
    with pytest.warns(KerasIntrospectWarning, match="max_iter"):
        old = ki.PixelClusterer(model, "identity", random_state=0, **sklearn_like).fit(x)
    assert old.n_clusters_ == old.n_components_used_ >= 20
    # counting only the components owning >= 1 % of the pixels drops stragglers
    assert (old.shares_ >= 0.01).sum() < old.n_clusters_
    with pytest.warns(KerasIntrospectWarning, match="max_iter"):
        new = ki.PixelClusterer(model, "identity", random_state=0).fit(x)
    assert new.n_clusters_ < (old.shares_ >= 0.01).sum()
    assert new.n_components_used_ < old.n_components_used_
    # a random start drains the extra components fastest (3 after 300 iterations)
    with pytest.warns(KerasIntrospectWarning, match="max_iter"):
        random = ki.PixelClusterer(model, "identity", init_params="random", random_state=0)
        random.fit(x)
    assert 3 <= random.n_clusters_ <= 5


def test_clusters_split_by_their_zero_channels_are_joined_by_a_covariance_floor():
    """When each cluster has channels off, the points sharing a pattern of exact
    zeros lie on a flat face that components collapse onto; the measured
    remedy is a variance floor in the units of `scale` (docs: "Exact zeros")."""
    x, planted = _relu_gaussians(n_images=2, channels_off=True)
    model = _identity(x.shape[1:])
    split = ki.PixelClusterer(model, "identity", random_state=0).fit(x)
    assert split.n_clusters_ > 6
    floored = ki.PixelClusterer(model, "identity", reg_covar=0.1, random_state=0).fit(x)
    assert floored.n_clusters_ == 4
    assert adjusted_rand_score(planted.ravel(), floored.transform(x).ravel()) >= 0.95


def test_min_weight_merges_small_components_into_the_kept_ones():
    x, _ = _relu_gaussians(n_images=1)
    model = _identity(x.shape[1:])
    everything = ki.PixelClusterer(
        model, "identity", min_weight=0.0, init_params="kmeans", random_state=0
    ).fit(x)
    assert everything.n_clusters_ == everything.n_components_used_
    # a threshold above the smallest share cuts; kept components are the same ones
    cut = float(np.sort(everything.shares_)[1]) + 1e-9
    fewer = ki.PixelClusterer(
        model, "identity", min_weight=cut, init_params="kmeans", random_state=0
    ).fit(x)
    assert fewer.n_clusters_ < everything.n_clusters_
    assert set(fewer.components_) <= set(everything.components_)
    assert fewer.shares_.min() >= cut and fewer.shares_.sum() == pytest.approx(1.0)
    assert len(np.unique(fewer.transform(x))) == fewer.n_clusters_
    for bad in (-0.1, 1.0, "1%"):
        with pytest.raises(ValueError, match="min_weight"):
            ki.PixelClusterer(model, "identity", min_weight=bad).fit(x)
    with pytest.raises(ValueError, match="init_params"):
        ki.PixelClusterer(model, "identity", init_params="spectral").fit(x)
    with pytest.raises(ValueError, match="covariance_prior"):
        ki.PixelClusterer(model, "identity", covariance_prior="wide").fit(x)


def test_one_count_in_the_plot_title_the_table_and_the_fit(monkeypatch):
    import matplotlib.pyplot as plt

    import keras_introspect.plotting as plotting

    rng = np.random.default_rng(3)
    planted = rng.integers(0, 4, (2, 24, 24))
    colours = np.array([[6, 3, 3], [3, 6, 3], [3, 3, 6], [0, 0, 0]], "float32")
    x = colours[planted] + rng.normal(0, 0.3, (*planted.shape, 3)).astype("float32")
    x[planted == 3] = 0.0
    model = _identity(x.shape[1:])
    pc = ki.PixelClusterer(model, "identity", random_state=0).fit(x)
    assert pc.n_clusters_ == 4
    drawn = {}
    original = plotting.plot_label_maps

    def spy(*args, **kwargs):
        fig = original(*args, **kwargs)
        drawn["titles"] = [ax.get_title() for ax in fig.axes if ax.get_title()]
        return fig

    monkeypatch.setattr(plotting, "plot_label_maps", spy)
    report = ki.Report(model, "counts")
    report.add_clustering(x, ["identity"], clusterers=[pc])
    page = report.to_html()
    n = pc.n_clusters_
    shown = len(np.unique(pc.transform(x[:1])))
    assert drawn["titles"][1] == f"identity\n{shown} of {n} clusters in this image"
    assert f"<td>identity</td><td>{n}</td>" in page.replace("\n", "").replace(" ", "")
    assert n == len(pc.weights_) == len(pc.shares_) == len(pc.cluster_centers_)
    assert len(np.unique(pc.transform(x))) == n
    plt.close("all")


def test_one_dimensional_layers_give_label_signals():
    """A signal of 60 steps: segments 0..14 and 45..59 background, 15..29 and 30..44 two others."""
    rng = np.random.default_rng(1)
    segments = np.repeat([0, 1, 2, 0], 15)
    values = np.array([[0.0, 0.0], [3.0, 1.0], [1.0, 3.0]], "float32")
    x = values[segments][None] + rng.normal(0, 0.05, (4, 60, 2)).astype("float32")
    model = _identity((60, 2), "conv")
    pc = ki.PixelClusterer(model, "conv", random_state=0).fit(x)
    labels = pc.transform(x)
    assert labels.shape == (4, 60) and pc.map_shape_ == (60,)
    assert pc.n_clusters_ == 3
    assert adjusted_rand_score(np.tile(segments, 4), labels.ravel()) >= 0.9
    (centres,) = pc.centers_in_input_space(x[:1])
    # the background (largest) is left out; the segments' centres are 22 and 37
    assert sorted(centres.values()) == [(22.0, 15), (37.0, 15)]
    # layer activations of a 1-D layer are the signal itself (identity weights)
    acts = ki.LayerActivations(model, "conv", flatten=False).fit(x).transform(x)
    np.testing.assert_allclose(acts, x, atol=1e-6)
    # label signals at the input's length, and as a band in the plot
    np.testing.assert_array_equal(upsample_labels(labels, (60,)), labels)
    half = labels[:, ::2]
    np.testing.assert_array_equal(upsample_labels(half, (60,)), np.repeat(half, 2, axis=1))
    fig = ki.plotting.plot_label_maps([labels[0]], ["conv"], n_clusters=[pc.n_clusters_])
    assert fig.axes[0].get_title() == "conv\n3 of 3 clusters in this image"


def test_three_dimensional_layers_give_label_volumes():
    rng = np.random.default_rng(2)
    volume = np.zeros((8, 8, 8), int)
    volume[1:4, 1:4, 1:4] = 1  # 27 voxels, centre (2, 2, 2)
    volume[5:8, 4:8, 2:6] = 2  # 48 voxels, centre (6, 5.5, 3.5)
    values = np.array([[0.0, 0.0], [3.0, 1.0], [1.0, 3.0]], "float32")
    x = values[volume][None] + rng.normal(0, 0.05, (2, 8, 8, 8, 2)).astype("float32")
    model = _identity((8, 8, 8, 2), "conv")
    pc = ki.PixelClusterer(model, "conv", random_state=0).fit(x)
    labels = pc.transform(x)
    assert labels.shape == (2, 8, 8, 8) and pc.n_clusters_ == 3
    assert adjusted_rand_score(np.tile(volume.ravel(), 2), labels.ravel()) >= 0.9
    (centres,) = pc.centers_in_input_space(x[:1])
    assert sorted(centres.values()) == [(2.0, 2.0, 2.0, 27), (6.0, 5.5, 3.5, 48)]
    fig = ki.plotting.plot_label_maps([labels[0]], ["conv"], n_clusters=[pc.n_clusters_])
    assert fig.axes[0].get_title() == "conv (slice 4 of 8)\n3 of 3 clusters in this image"
    # whole volumes as points: 2 images, 2 clusters at most
    ic = ki.ImageClusterer(model, "conv", method="kmeans", n_clusters=2, random_state=0).fit(x)
    assert ic.n_features_ == 8 * 8 * 8 * 2
    acts = ki.LayerActivations(model, "conv", pooling="avg").fit(x).transform(x)
    np.testing.assert_allclose(acts, x.mean(axis=(1, 2, 3)), atol=1e-5)


def test_centres_per_region_land_on_each_blob():
    """Two separate squares of one colour: one cluster, two regions, two centres."""
    image = np.zeros((24, 24, 3), "float32")
    image[2:6, 3:7] = [1.0, 0.5, 0.0]  # centre (3.5, 4.5), 16 pixels
    image[15:21, 14:20] = [1.0, 0.5, 0.0]  # centre (17.5, 16.5), 36 pixels
    model = _identity((24, 24, 3))
    pc = ki.PixelClusterer(model, "identity", random_state=0).fit(image[None])
    assert pc.n_clusters_ == 2
    ((label, (row, col, size)),) = pc.centers_in_input_space(image[None])[0].items()
    # the whole cluster's centroid lies between the squares, on neither
    assert size == 52
    assert (row, col) == pytest.approx(((3.5 * 16 + 17.5 * 36) / 52, (4.5 * 16 + 16.5 * 36) / 52))
    ((same, regions),) = pc.centers_in_input_space(image[None], regions=True)[0].items()
    assert same == label
    assert regions == [(17.5, 16.5, 36), (3.5, 4.5, 16)]
