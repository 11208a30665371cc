"""layerwise_purity (`001`), purity_score and embed."""

import keras
import numpy as np
import pytest
from sklearn.decomposition import PCA

import keras_introspect as ki
from keras_introspect.cluster import purity_score
from keras_introspect.datasets import digits_model


@pytest.fixture(scope="module")
def trained():
    model, x, y, accuracy = digits_model(size=16, epochs=10)
    assert accuracy > 0.7
    return model, x, y


def test_purity_score_by_hand():
    y = np.array([0, 0, 0, 1, 1, 2])
    labels = np.array([5, 5, 7, 7, 7, 7])
    # cluster 5: two 0s (majority 2); cluster 7: one 0, two 1s, one 2 (majority 2)
    assert purity_score(y, labels) == pytest.approx(4 / 6)
    assert purity_score(y, y) == 1.0


def test_purity_rises_from_the_first_conv_to_the_last_hidden_layer(trained):
    model, x, y = trained
    result = ki.layerwise_purity(model, x, y, layers="all", seed=0)
    assert result.layers[0] == "rescale" and result.layers[-1] == "classes"
    by_layer = {row["layer"]: row for row in result.table}
    # the finding of Girish et al.: the classes separate with depth
    assert by_layer["hidden"]["purity"] > by_layer["conv1"]["purity"] + 0.05
    assert by_layer["hidden"]["nmi"] > by_layer["conv1"]["nmi"]
    assert by_layer["classes"]["purity"] > by_layer["conv1"]["purity"]
    assert all(row["n_clusters"] == 10 for row in result.table)
    assert by_layer["hidden"]["n_features"] == 32
    # each row is the k-means of that layer's flattened activations, scored by hand
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    hidden = ki.Introspector(model).activations(x, "hidden")["hidden"]
    low, high = hidden.min(), hidden.max()
    labels = KMeans(10, n_init=1, random_state=0).fit((hidden - low) / (high - low) * 10).labels_
    assert by_layer["hidden"]["ari"] == pytest.approx(adjusted_rand_score(y, labels), abs=0.02)
    assert "purity" in str(result) and "hidden" in str(result)


def test_purity_pools_large_layers_and_checks_inputs(trained):
    model, x, y = trained
    result = ki.layerwise_purity(
        model, x[:300], y[:300], layers=["conv1"], max_features=300, seed=0
    )
    assert result.n_features[0] <= 300
    with pytest.raises(ValueError, match="one label per image"):
        ki.layerwise_purity(model, x[:50], y[:40], layers=["conv1"])
    with pytest.raises(ValueError, match="method"):
        ki.layerwise_purity(model, x[:50], y[:50], method="spectral")


def test_purity_plot(trained):
    import matplotlib

    matplotlib.use("Agg")
    model, x, y = trained
    result = ki.layerwise_purity(model, x[:200], y[:200], layers=["conv1", "hidden"])
    ax = result.plot()
    lines = ax.get_lines()
    assert len(lines) == 3
    np.testing.assert_allclose(lines[0].get_ydata(), result.purity)


def test_embed_pca_equals_scikit_learn_on_the_activations(trained):
    model, x, _ = trained
    xy = ki.embed(model, "hidden", x[:100], seed=0)  # PCA is the default
    hidden = ki.Introspector(model).activations(x[:100], "hidden")["hidden"]
    expected = PCA(2, random_state=0).fit_transform(hidden)
    np.testing.assert_allclose(np.abs(xy), np.abs(expected), rtol=1e-3, atol=1e-3)
    raw = ki.embed(model, None, x[:100], method="pca")
    np.testing.assert_allclose(
        np.abs(raw), np.abs(PCA(2).fit_transform(x[:100].reshape(100, -1))), rtol=1e-3, atol=1e-3
    )
    tsne = ki.embed(model, "hidden", x[:40], method="tsne", seed=0)
    assert tsne.shape == (40, 2) and np.all(np.isfinite(tsne))


def test_embed_umap_needs_the_extra(trained):
    model, x, _ = trained
    try:
        import umap  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"keras-introspect\[umap\]"):
            ki.embed(model, "hidden", x[:50], method="umap")
    else:
        xy = ki.embed(model, "hidden", x[:50], method="umap", seed=0)
        assert xy.shape == (50, 2)
    with pytest.raises(ValueError, match="method"):
        ki.embed(model, "hidden", x[:50], method="mds")


def test_digits_model_is_reproducible():
    a = digits_model(size=8, epochs=1)
    b = digits_model(size=8, epochs=1)
    np.testing.assert_allclose(a[0].get_weights()[0], b[0].get_weights()[0])
    assert a[1].shape == (1797, 8, 8, 1)
    with pytest.raises(ValueError, match="multiple of 8"):
        digits_model(size=12)
    assert isinstance(a[0], keras.Model)


def test_a_deep_model_is_read_at_a_spread_of_layers_with_named_progress(capsys):
    """Issue 19, item 6: at most MAX_LAYERS conv / pool / dense layers by default,
    evenly spread, the last included; one named line per layer."""
    from keras_introspect.cluster.purity import MAX_LAYERS

    keras.utils.set_random_seed(0)
    L = keras.layers
    stack = [keras.Input((8, 8, 1))]
    for i in range(20):
        stack += [L.Conv2D(2, 3, padding="same", name=f"c{i:02d}"), L.ReLU(name=f"r{i:02d}")]
    stack += [L.GlobalAveragePooling2D(name="gap"), L.Dense(3, name="out")]
    model = keras.Sequential(stack)
    x = np.random.default_rng(0).random((12, 8, 8, 1)).astype("float32")
    y = np.arange(12) % 3
    intro = ki.Introspector(model)
    before = intro.trace_count
    result = ki.layerwise_purity(model, x, y, seed=0, verbose=1)
    assert intro.trace_count == before + 1  # all twelve layers in one forward pass
    kinds = [f"c{i:02d}" for i in range(20)] + ["gap", "out"]  # conv, pool, dense in order
    expected = [kinds[round((i + 1) * len(kinds) / MAX_LAYERS) - 1] for i in range(MAX_LAYERS)]
    assert result.layers == expected and result.layers[-1] == "out"
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0] == f"layerwise_purity: reading {MAX_LAYERS} layers in one pass"
    assert len(lines) == MAX_LAYERS + 1
    assert lines[3].startswith(f"layerwise_purity: layer 3/{MAX_LAYERS} {expected[2]}: purity ")
    # the same clusters as fitting each layer's ImageClusterer on its own pass
    for path, ari in zip(result.layers[::5], result.ari[::5], strict=True):
        alone = ki.ImageClusterer(model, path, method="kmeans", n_clusters=3, random_state=0)
        alone.fit(x)
        from sklearn.metrics import adjusted_rand_score

        assert ari == pytest.approx(adjusted_rand_score(y, alone.labels_), abs=1e-12)


def test_purity_reads_layer_by_layer_when_memory_is_short(trained, monkeypatch):
    from keras_introspect import _memory

    model, x, y = trained
    intro = ki.Introspector(model)
    together = ki.layerwise_purity(model, x[:100], y[:100], layers="conv", seed=0)
    monkeypatch.setattr(_memory, "available_bytes", lambda: 1000)
    before = intro.trace_count
    alone = ki.layerwise_purity(model, x[:100], y[:100], layers="conv", seed=0)
    assert intro.trace_count - before == len(alone.layers) > 1  # a pass per layer
    np.testing.assert_allclose(alone.ari, together.ari)


def test_functions_take_seed_and_the_former_random_state_warns(trained):
    """Issue 20: `seed` for functions, `random_state` for estimators."""
    model, x, y = trained
    by_seed = ki.embed(model, "hidden", x[:60], method="tsne", seed=3)
    with pytest.warns(FutureWarning, match="embed\\(random_state=...\\) is deprecated"):
        by_old_name = ki.embed(model, "hidden", x[:60], method="tsne", random_state=3)
    np.testing.assert_array_equal(by_seed, by_old_name)
    with pytest.raises(TypeError, match="pass `seed` only"):
        ki.embed(model, "hidden", x[:60], seed=1, random_state=1)
    with pytest.warns(FutureWarning, match="layerwise_purity\\(random_state=...\\)"):
        old = ki.layerwise_purity(model, x[:80], y[:80], layers=["hidden"], random_state=0)
    new = ki.layerwise_purity(model, x[:80], y[:80], layers=["hidden"], seed=0)
    np.testing.assert_array_equal(old.ari, new.ari)
