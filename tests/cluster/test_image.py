"""ImageClusterer: blobs, DPGMM component count, composition, pooling."""

import keras
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

import keras_introspect as ki
from keras_introspect.cluster.image import _block_mean, _pooled_grid


def _identity_model(shape):
    inputs = keras.Input(shape)
    return keras.Model(inputs, keras.layers.Activation("linear", name="identity")(inputs))


def _blobs(n_per=60, dims=6, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, (4, dims))
    x = np.concatenate([rng.normal(c, 0.5, (n_per, dims)) for c in centres]).astype("float32")
    return x, np.repeat(np.arange(4), n_per)


def test_kmeans_on_four_separated_blobs():
    x, y = _blobs()
    ic = ki.ImageClusterer(
        _identity_model((6,)), "identity", method="kmeans", n_clusters=4, random_state=0
    ).fit(x)
    assert adjusted_rand_score(y, ic.labels_) >= 0.95
    np.testing.assert_array_equal(ic.predict(x), ic.labels_)
    np.testing.assert_array_equal(ic.fit_predict(x), ic.labels_)
    assert ic.n_features_ == 6 and ic.n_clusters_ == 4


@pytest.mark.parametrize("backend", ["tensorflow", "sklearn"])
def test_dpgmm_on_four_blobs_keeps_four_components(backend):
    x, y = _blobs()
    ic = ki.ImageClusterer(
        _identity_model((6,)),
        "identity",
        max_components=20,
        covariance_type="full",
        backend=backend,
        random_state=0,
    ).fit(x)
    assert (ic.mixture_.weights_ > 0.01).sum() == 4
    assert ic.n_clusters_ == 4
    assert adjusted_rand_score(y, ic.labels_) >= 0.95
    # labels are ordered by weight, the largest first
    assert np.all(np.diff(ic.weights_) <= 0)


def test_composition_counts_and_shares():
    x, _ = _blobs(n_per=10)
    ic = ki.ImageClusterer(
        _identity_model((6,)), "identity", method="kmeans", n_clusters=4, random_state=0
    ).fit(x)
    labels = ic.labels_
    y = np.array(["benign", "malign"] * 20)
    table = ic.composition(y)
    assert list(table.classes) == ["benign", "malign"]
    for c in range(4):
        members = y[labels == c]
        assert table.counts[c].tolist() == [
            int((members == "benign").sum()),
            int((members == "malign").sum()),
        ]
        assert table.shares[c].sum() == pytest.approx(1.0)
    row = table.table[0]
    assert row["size"] == (labels == 0).sum()
    assert row["share"] == pytest.approx(max(row["share[benign]"], row["share[malign]"]))
    assert "% benign" in str(table)
    with pytest.raises(ValueError, match="one label per clustered image"):
        ic.composition(y[:-1])


def test_pooling_and_max_features():
    rng = np.random.default_rng(0)
    x = rng.random((12, 6, 8, 3)).astype("float32")
    model = _identity_model((6, 8, 3))
    kwargs = dict(method="kmeans", n_clusters=2, random_state=0, scale=None)
    avg = ki.ImageClusterer(model, "identity", pooling="avg", **kwargs).fit(x)
    assert avg.n_features_ == 3
    flat = ki.ImageClusterer(model, "identity", **kwargs).fit(x)
    assert flat.n_features_ == 144
    capped = ki.ImageClusterer(model, "identity", max_features=40, **kwargs).fit(x)
    # 6x8 -> 3x4 -> 3x2 -> 2x2 blocks: 12 values per channel... until <= 40
    info = capped._get_introspector().layer("identity")
    grid = _pooled_grid(info, 40)
    assert np.prod(grid) * 3 <= 40 and capped.n_features_ == np.prod(grid) * 3
    # block means by hand for one grid
    pooled = _block_mean(x, (3, 2)).numpy()
    np.testing.assert_allclose(pooled[:, 1, 0], x[:, 2:4, 0:4].mean(axis=(1, 2)), rtol=1e-6)
    np.testing.assert_allclose(pooled[:, 2, 1], x[:, 4:6, 4:8].mean(axis=(1, 2)), rtol=1e-6)


def test_errors():
    x, _ = _blobs()
    model = _identity_model((6,))
    with pytest.raises(ValueError, match="pooling"):
        ki.ImageClusterer(model, "identity", pooling="sum").fit(x)
    with pytest.raises(ValueError, match="at least 2 points"):
        ki.ImageClusterer(model, "identity").fit(x[:1])
