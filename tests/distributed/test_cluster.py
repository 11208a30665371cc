"""PixelClusterer / ImageClusterer on stored activations: the in-memory results, in parallel."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score

import keras_introspect as ki

da = pytest.importorskip("dask.array")
pytest.importorskip("zarr", minversion="3")
from keras_introspect.cluster import _base  # noqa: E402
from keras_introspect.distributed import store  # noqa: E402


@pytest.fixture(scope="module")
def model(built_models):
    return built_models["sequential"]


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).random((30, 16, 16, 3)).astype("float32")


@pytest.fixture(scope="module")
def stored(model, images, tmp_path_factory):
    """The conv1 and conv2 activations of `images`, in stores of 8-image chunks."""
    folder = tmp_path_factory.mktemp("stores")
    paths = {}
    for layer in ("conv1", "conv2"):
        paths[layer] = str(folder / f"{layer}.zarr")
        ki.distributed.activations_to_zarr(
            model, layer, images, paths[layer], chunk_images=8, batch_size=8, verbose=0
        )
    return paths


def pixel(model, **kw):
    # batch_size 8 as the stores were written: the same arithmetic, bit for bit
    # scikit-learn's start and prior: with them this fit converges within max_iter
    options = dict(sample_size=2000, random_state=0, batch_size=8, max_iter=300)
    options.update(init_params="kmeans", covariance_prior="data")
    return ki.PixelClusterer(model, "conv1", **{**options, **kw})


def test_the_sample_is_the_one_the_in_memory_path_draws(monkeypatch):
    monkeypatch.setattr(_base, "KEY_PIECE", 37)  # many pieces, merged
    for n, k in [(1000, 10), (1000, 999), (50, 80), (370, 37)]:
        keys = np.random.RandomState(3).random_sample(n)
        expected = np.sort(np.argsort(keys)[:k])
        random = np.random.RandomState(3)
        np.testing.assert_array_equal(_base.sample_indices(random, n, k), expected)
        # the generator is left where the in-memory path leaves it (it seeds the mixture)
        reference = np.random.RandomState(3)
        reference.random_sample(n)
        assert random.random_sample() == reference.random_sample()


@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("dpgmm", {}),
        ("dpgmm", {"backend": "sklearn", "covariance_type": "diag"}),
        ("kmeans", {"n_clusters": 4}),
        ("gmm", {"n_clusters": 3}),
    ],
)
def test_pixel_fit_on_the_store_is_the_in_memory_fit(model, images, stored, method, options):
    memory = pixel(model, method=method, **options).fit(images)
    disk = pixel(model, method=method, **options).fit(stored["conv1"])
    assert memory.sampled_ and disk.sampled_ and disk.n_points_ == 30 * 14 * 14
    assert disk.data_range_ == memory.data_range_
    assert disk.n_clusters_ == memory.n_clusters_
    np.testing.assert_array_equal(disk.cluster_centers_, memory.cluster_centers_)
    labels = disk.transform(stored["conv1"], to="dask")
    assert isinstance(labels, da.Array) and labels.dtype == np.int32
    # issue 20: numpy unless asked; without `to`, this release keeps dask and warns
    np.testing.assert_array_equal(disk.transform(stored["conv1"], to="numpy"), labels.compute())
    with pytest.warns(FutureWarning, match="to='dask'"):
        assert isinstance(disk.transform(stored["conv1"]), da.Array)
    with pytest.raises(ValueError, match="to='dask' is for stored activations"):
        disk.transform(images, to="dask")
    expected = memory.transform(images)
    np.testing.assert_array_equal(labels.compute(), expected)
    assert adjusted_rand_score(expected.ravel(), labels.compute().ravel()) == 1.0
    # a fit on the store labels images too
    np.testing.assert_array_equal(disk.transform(images), expected)


def test_on_a_local_cluster(model, images, stored, dask_client, tmp_path):
    memory = pixel(model).fit(images)
    with dask_client.as_current():
        disk = pixel(model).fit(stored["conv1"])
        written = disk.transform_to_zarr(stored["conv1"], tmp_path / "labels.zarr")
        np.testing.assert_array_equal(written.compute(), memory.transform(images))
        images_disk = ki.ImageClusterer(
            model, "conv2", method="kmeans", n_clusters=3, pooling="max", random_state=0
        ).fit(stored["conv2"])
    images_memory = ki.ImageClusterer(
        model, "conv2", method="kmeans", n_clusters=3, pooling="max", random_state=0
    ).fit(images)
    np.testing.assert_array_equal(images_disk.labels_, images_memory.labels_)


def test_label_store_resumes_and_refuses_another_fit(model, images, stored, tmp_path):
    fitted = pixel(model, method="kmeans", n_clusters=3).fit(stored["conv1"])
    path = tmp_path / "labels.zarr"
    expected = fitted.transform(images)
    fitted.transform_to_zarr(stored["conv1"], path)
    # a lost chunk: its marker cleared, its values spoiled; the same call repairs only it
    group = store.ChunkedStore._open_existing(str(path), None, "r+").group
    group["done"][2] = False
    group["labels"][16:24] = -1
    again = fitted.transform_to_zarr(stored["conv1"], path)
    np.testing.assert_array_equal(again.compute(), expected)
    other = pixel(model, method="kmeans", n_clusters=3, random_state=1).fit(stored["conv1"])
    with pytest.raises(ValueError, match="fit: stored"):
        other.transform_to_zarr(stored["conv1"], path)
    with pytest.raises(TypeError, match=r"write them first with ki\.distributed"):
        fitted.transform_to_zarr(images, path)


def test_kmeans_over_all_pixels_with_dask_ml(model):
    # four clear clusters of "activations": every k-means finds them
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0, 0, 0], [5, 5, 0, 0], [0, 5, 5, 0], [0, 0, 5, 5]], float)
    truth = rng.integers(0, 4, (12, 14, 14))
    acts = (centres[truth] + rng.normal(0, 0.3, (12, 14, 14, 4))).astype("float32")
    disk = pixel(model, method="kmeans", n_clusters=4, sample_size=None)
    disk.fit(da.from_array(acts, chunks=5))
    assert not disk.sampled_ and disk.n_points_fit_ == 12 * 14 * 14
    labels = disk.transform(da.from_array(acts, chunks=5), to="dask").compute()
    assert adjusted_rand_score(truth.ravel(), labels.ravel()) == 1.0
    assert sorted(np.round(disk.cluster_centers_).astype(int).tolist()) == sorted(centres.tolist())
    with pytest.raises(ValueError, match="has no distributed fit"):
        pixel(model, method="dpgmm", sample_size=None).fit(da.from_array(acts, chunks=5))


@pytest.mark.parametrize(
    "options",
    [{"pooling": "avg"}, {"pooling": "max"}, {"max_features": 60}, {"method": "kmeans"}],
)
def test_image_fit_on_the_store_is_the_in_memory_fit(model, images, stored, options):
    options = {"method": "dpgmm", "random_state": 0, "n_clusters": 3, **options}
    memory = ki.ImageClusterer(model, "conv1", **options).fit(images)
    disk = ki.ImageClusterer(model, "conv1", **options).fit(stored["conv1"])
    assert disk.n_features_ == memory.n_features_
    assert adjusted_rand_score(memory.labels_, disk.labels_) == 1.0
    np.testing.assert_allclose(disk.cluster_centers_, memory.cluster_centers_, rtol=1e-5, atol=1e-6)
    predicted = disk.predict(stored["conv1"])
    assert isinstance(predicted, da.Array)
    np.testing.assert_array_equal(predicted.compute(), memory.predict(images))


@settings(max_examples=20, deadline=None)
@given(
    st.integers(1, 3),
    st.integers(1, 9),
    st.integers(1, 9),
    st.integers(1, 5),
    st.integers(1, 9),
    st.integers(1, 9),
)
def test_stored_chunks_are_pooled_by_the_tensorflow_block_mean(b, h, w, c, gh, gw):
    """Issue 20: one block mean; a stored chunk (numpy, float16 too) goes through it."""
    import tensorflow as tf

    from keras_introspect.cluster.image import _block_mean, _reduce_images

    gh, gw = min(gh, h), min(gw, w)
    x = np.random.default_rng(h * w).random((b, h, w, c)).astype("float32")
    for chunk in (x, x.astype("float16")):
        as_float32 = tf.constant(chunk.astype("float32"))
        expected = np.asarray(_block_mean(as_float32, (gh, gw))).reshape(b, -1)
        got = np.asarray(_reduce_images(chunk, (gh, gw), None)).reshape(b, -1)
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_stores_and_arrays_that_do_not_fit_are_refused(model, images, stored, tmp_path):
    with pytest.raises(ValueError, match="holds the activations of 'conv2'"):
        pixel(model).fit(stored["conv2"])
    with pytest.raises(ValueError, match=r"shape \(n_images, 14, 14, 4\) with channels last"):
        pixel(model).fit(da.zeros((5, 4, 14, 14)))
    bad = da.from_array(np.full((3, 14, 14, 4), np.nan, "float32"))
    with pytest.raises(ValueError, match="NaN or infinity"):
        pixel(model).fit(bad)
    with pytest.raises(FileNotFoundError, match="No Zarr store"):
        pixel(model).fit(str(tmp_path / "nothing.zarr"))
    with pytest.raises(ValueError, match="not a keras_introspect store"):
        import zarr

        zarr.open_group(str(tmp_path / "plain.zarr"), mode="w")
        pixel(model).fit(str(tmp_path / "plain.zarr"))
    half = tmp_path / "half.zarr"
    x = (images[i : i + 4] for i in range(0, 8, 4))
    ki.distributed.activations_to_zarr(model, "conv1", x, half, chunk_images=4, verbose=0)
    group = store.ChunkedStore._open_existing(str(half), None, "r+").group
    group["done"][1] = False
    with pytest.raises(ValueError, match="incomplete"):
        pixel(model).fit(str(half))
    with pytest.raises(ValueError, match="Expected a store of activations"):
        labels = tmp_path / "labels.zarr"
        pixel(model, method="kmeans", n_clusters=2).fit(stored["conv1"]).transform_to_zarr(
            stored["conv1"], labels
        )
        pixel(model).fit(str(labels))


def test_a_label_store_is_never_written_into_its_activation_store(model, images, tmp_path):
    """Issue 18, A2: refused before anything is touched."""
    path = tmp_path / "acts.zarr"
    ki.distributed.activations_to_zarr(model, "conv1", images, path, chunk_images=8, verbose=0)
    fitted = pixel(model, method="kmeans", n_clusters=3).fit(str(path))
    before = ki.distributed.open_store(path).compute()
    for target in (path, path / "labels"):
        with pytest.raises(ValueError, match="would overwrite the activations it reads"):
            fitted.transform_to_zarr(str(path), target, overwrite=True)
    np.testing.assert_array_equal(ki.distributed.open_store(path).compute(), before)


def test_labels_of_a_replaced_activation_store_are_refused(model, images, tmp_path):
    """A3: the label store's fingerprint holds the activation store's."""
    acts = tmp_path / "acts.zarr"
    ki.distributed.activations_to_zarr(model, "conv1", images, acts, chunk_images=8, verbose=0)
    fitted = pixel(model, method="kmeans", n_clusters=3).fit(str(acts))
    labels = tmp_path / "labels.zarr"
    fitted.transform_to_zarr(str(acts), labels)
    ki.distributed.activations_to_zarr(
        model, "conv1", images[::-1].copy(), acts, chunk_images=8, verbose=0, overwrite=True
    )
    with pytest.raises(ValueError, match="activations: stored 'store "):
        fitted.transform_to_zarr(str(acts), labels)
    again = fitted.transform_to_zarr(str(acts), labels, overwrite=True)
    np.testing.assert_array_equal(again.compute(), fitted.transform(images[::-1].copy()))
