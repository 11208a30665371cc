"""The activation-source protocol (issue 20): the in-memory and the Zarr/Dask source
hand out the same chunks, map known functions alike, and fit the same clusters."""

import functools

import numpy as np
import pytest

import keras_introspect as ki
from keras_introspect._sources import ModelSource
from keras_introspect.cluster.image import _reduce_images

da = pytest.importorskip("dask.array")
zarr = pytest.importorskip("zarr", minversion="3")
from keras_introspect.distributed.source import DaskSource  # noqa: E402


@pytest.fixture(scope="module")
def model(built_models):
    return built_models["sequential"]


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).random((30, 16, 16, 3)).astype("float32")


@pytest.fixture(scope="module")
def acts(model, images):
    return ki.Introspector(model).activations(images, "conv1", batch_size=8)["conv1"]


@pytest.fixture(scope="module")
def path(model, images, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("source") / "conv1.zarr")
    ki.distributed.activations_to_zarr(
        model, "conv1", images, path, chunk_images=8, batch_size=8, verbose=0
    )
    return path


def sources(model, images, path):
    """The same activations (batches / chunks of 8 images) from each kind of source."""
    intro = ki.Introspector(model)
    info = intro.layer("conv1")
    return {
        "model": ModelSource(intro, info, images, 8, 0),
        "store": DaskSource.open(path, info, "test"),
        "zarr": DaskSource.open(zarr.open_group(path, mode="r")["activations"], info, "test"),
        "dask": DaskSource.open(ki.distributed.open_store(path), info, "test"),
    }


def test_every_source_yields_the_same_chunks(model, images, path, acts):
    found = sources(model, images, path)
    assert not found["model"].out_of_core and found["store"].out_of_core
    for name, source in found.items():
        assert source.shape == (30, 14, 14, 4), name
        starts, chunks = zip(*source.iter_chunks(), strict=True)
        assert starts == (0, 8, 16, 24), name
        assert [len(c) for c in chunks] == [8, 8, 8, 6], name
        # batches of 8 through the same model: the same values, bit for bit
        np.testing.assert_array_equal(np.concatenate(chunks), acts, err_msg=name)


def test_map_chunks_of_a_known_function_is_the_direct_computation(model, images, path, acts):
    def strongest(chunk):  # the strongest channel of every pixel
        return chunk.argmax(axis=-1)

    for name, source in sources(model, images, path).items():
        result = source.map_chunks(strongest, np.int64, item_shape=(14, 14))
        assert isinstance(result, da.Array) == source.out_of_core, name
        assert result.dtype == np.int64 and result.shape == (30, 14, 14), name
        np.testing.assert_array_equal(np.asarray(result), acts.argmax(axis=-1), err_msg=name)


def test_reduce_runs_before_fn_on_every_source(model, images, path, acts):
    # block means over a 2 x 3 grid of the 14 x 14 maps: rows 0:7, 7:14; columns 0:4, 4:9, 9:14
    expected = np.stack(
        [
            np.stack(
                [acts[:, r0:r1, c0:c1].mean(axis=(1, 2)) for c0, c1 in ((0, 4), (4, 9), (9, 14))], 1
            )
            for r0, r1 in ((0, 7), (7, 14))
        ],
        1,
    )
    reduce = functools.partial(_reduce_images, grid=(2, 3), pooling=None)
    for name, source in sources(model, images, path).items():
        pooled = source.map_chunks(
            lambda chunk: chunk, np.float32, (2, 3, 4), reduce=reduce, key=("test", (2, 3))
        )
        assert pooled.shape == (30, 2, 3, 4), name
        np.testing.assert_allclose(np.asarray(pooled), expected, rtol=1e-5, atol=1e-6)
        (_, first), *_ = source.iter_chunks(reduce, key=("test", (2, 3)))
        np.testing.assert_allclose(first, expected[:8], rtol=1e-5, atol=1e-6, err_msg=name)


def test_collect_chunks_gives_each_chunk_its_share(model, images, path, acts):
    def summary(chunk, share):
        start, size = share
        return start, size, float(chunk.sum(dtype=np.float64))

    expected = [
        (s, min(8, 30 - s), float(acts[s : s + 8].sum(dtype=np.float64))) for s in (0, 8, 16, 24)
    ]
    for name, source in sources(model, images, path).items():
        found = source.collect_chunks(summary, args=lambda start, size: (start, size))
        assert [f[:2] for f in found] == [e[:2] for e in expected], name
        np.testing.assert_allclose([f[2] for f in found], [e[2] for e in expected], rtol=1e-6)
        pooled = source.collect_chunks(len)
        assert pooled == [8, 8, 8, 6], name


@pytest.mark.parametrize("method", ["dpgmm", "kmeans"])
def test_an_estimator_fitted_through_each_source_labels_alike(model, images, path, method):
    options = dict(method=method, n_clusters=3, random_state=0, batch_size=8)
    reference = ki.PixelClusterer(model, "conv1", sample_size=1500, max_iter=300, **options)
    expected = reference.fit(images).transform(images)
    chunks_of_7 = da.from_array(ki.distributed.open_store(path).compute(), chunks=7)
    for X in (path, chunks_of_7):
        fitted = ki.PixelClusterer(model, "conv1", sample_size=1500, max_iter=300, **options)
        fitted.fit(X)
        np.testing.assert_array_equal(fitted.cluster_centers_, reference.cluster_centers_)
        np.testing.assert_array_equal(fitted.transform(X, to="numpy"), expected)
        np.testing.assert_array_equal(fitted.transform(images), expected)
    memory = ki.ImageClusterer(model, "conv1", max_features=60, **options).fit(images)
    stored = ki.ImageClusterer(model, "conv1", max_features=60, **options).fit(path)
    np.testing.assert_array_equal(stored.labels_, memory.labels_)
    np.testing.assert_allclose(stored.cluster_centers_, memory.cluster_centers_, rtol=1e-5)
    np.testing.assert_array_equal(stored.predict(path).compute(), memory.predict(images))
