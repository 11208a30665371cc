"""activations_to_zarr: values, chunking, resuming, sources, the cluster path, bad input."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import sample_input

import keras_introspect as ki

da = pytest.importorskip("dask.array")
pytest.importorskip("zarr", minversion="3")
from keras_introspect.distributed import extract, store  # noqa: E402

to_zarr = ki.distributed.activations_to_zarr


@pytest.fixture(scope="module")
def model(built_models):
    """conv1 (14x14x4), pool1, conv2 (7x7x6), gap, out: the suite's Sequential."""
    return built_models["sequential"]


@pytest.fixture(scope="module")
def model_file(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "seq.keras"
    model.save(path)
    return str(path)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).random((30, 16, 16, 3)).astype("float32")


@pytest.fixture
def client(dask_client):
    return dask_client


def reference(model, images, layer):
    return ki.Introspector(model).activations(images, layer)[layer]


def test_values_chunks_and_description(model, images, tmp_path):
    acts = to_zarr(model, "conv1", images, tmp_path / "a.zarr", chunk_images=8, verbose=0)
    np.testing.assert_array_equal(acts.compute(), reference(model, images, "conv1"))
    assert acts.chunks[0] == (8, 8, 8, 6)
    meta = store.ChunkedStore.open(tmp_path / "a.zarr").meta
    assert meta["layer"] == "conv1" and meta["complete"] and meta["n_images"] == 30
    assert meta["item_shape"] == [14, 14, 4] and meta["chunk_images"] == 8
    # a store opens as the same array
    np.testing.assert_array_equal(ki.distributed.open_store(tmp_path / "a.zarr"), acts)


def test_auto_chunks_hold_about_64_mb(monkeypatch):
    # 14*14*4 float32 = 3136 bytes per image
    assert extract._chunk_images("auto", (14, 14, 4), np.dtype("float32"), 10**6) == (
        64 * 2**20 // 3136
    )
    assert extract._chunk_images("auto", (14, 14, 4), np.dtype("float32"), 30) == 30
    assert extract._chunk_images("auto", (4000, 4000, 64), np.dtype("float32"), 30) == 1


def test_float16_halves_the_store(model, images, tmp_path):
    acts = to_zarr(model, "conv2", images, tmp_path / "h.zarr", dtype="float16", verbose=0)
    assert acts.dtype == np.float16
    expected = reference(model, images, "conv2")
    np.testing.assert_allclose(acts.compute(), expected, rtol=2e-3, atol=1e-3)


def test_inner_layer_of_a_nested_backbone(built_models, tmp_path):
    model = built_models["nested"]
    intro = ki.Introspector(model)
    layer = [p for p in intro.layer_paths if "/" in p and len(intro.layer(p).output_shape) == 4][2]
    x = sample_input("nested", n=6)
    acts = to_zarr(model, layer, x, tmp_path / "n.zarr", chunk_images=4, verbose=0)
    ref = intro.activations(x, layer)[layer]
    axis = intro.layer(layer).channel_axis  # stored channels last, as clusterers read them
    np.testing.assert_allclose(acts.compute(), np.moveaxis(ref, axis, -1), rtol=1e-5, atol=1e-5)


def counting_loader(calls, fail_on=None):
    def load(path):
        if path == fail_on:
            raise OSError(f"cannot read {path}")
        calls.append(path)
        return np.load(path)

    return load


@pytest.fixture
def files(images, tmp_path):
    names = []
    for i, image in enumerate(images):
        name = str(tmp_path / f"img{i:02d}.npy")
        np.save(name, image)
        names.append(name)
    return names


def test_a_stopped_run_resumes_with_the_missing_chunks_only(model, images, files, tmp_path):
    path = tmp_path / "r.zarr"
    calls = []
    # the run stops in the third chunk (images 16-23): chunks 0 and 1 are written
    with pytest.raises(OSError, match="img17"):
        to_zarr(
            model,
            "conv1",
            files,
            path,
            chunk_images=8,
            verbose=0,
            loader=counting_loader(calls, fail_on=files[17]),
        )
    assert store.ChunkedStore._open_existing(str(path), None, "r").pending() == [2, 3]
    with pytest.raises(ValueError, match="incomplete: 2 of its 4 chunks"):
        ki.distributed.open_store(path)
    calls.clear()
    acts = to_zarr(
        model, "conv1", files, path, chunk_images=8, verbose=0, loader=counting_loader(calls)
    )
    assert calls == files[16:]  # only the images of chunks 2 and 3 were read again
    np.testing.assert_array_equal(acts.compute(), reference(model, images, "conv1"))


def test_a_store_of_other_inputs_is_refused_not_mixed(model, images, tmp_path):
    path = tmp_path / "m.zarr"
    to_zarr(model, "conv1", images, path, chunk_images=8, verbose=0)
    with pytest.raises(ValueError, match=r"layer: stored 'conv1', now 'conv2'"):
        to_zarr(model, "conv2", images, path, chunk_images=8, verbose=0)
    with pytest.raises(ValueError, match="chunk_images: stored 8, now 10"):
        to_zarr(model, "conv1", images, path, chunk_images=10, verbose=0)
    with pytest.raises(ValueError, match=r"Chunk 0 of the store .* other images"):
        to_zarr(model, "conv1", images[::-1], path, chunk_images=8, verbose=0)
    acts = to_zarr(model, "conv2", images, path, chunk_images=8, verbose=0, overwrite=True)
    np.testing.assert_array_equal(acts.compute(), reference(model, images, "conv2"))


def test_overwrite_deletes_only_its_own_stores(model, images, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="deletes only stores written by keras_introspect"):
        to_zarr(model, "conv1", images, folder, verbose=0, overwrite=True)
    with pytest.raises(ValueError, match="not a Zarr group written by keras_introspect"):
        to_zarr(model, "conv1", images, folder, verbose=0)
    assert (folder / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize("kind", ["unbatched", "batched_unknown_length", "generator"])
def test_streams(model, images, tmp_path, kind):
    if kind == "unbatched":
        x = tf.data.Dataset.from_tensor_slices(images)
    elif kind == "batched_unknown_length":
        x = tf.data.Dataset.from_tensor_slices((images, np.arange(30))).batch(7)
        x = x.filter(lambda a, b: True)  # cardinality unknown
    else:
        x = (images[i : i + 4] for i in range(0, 30, 4))
    acts = to_zarr(model, "conv1", x, tmp_path / f"{kind}.zarr", chunk_images=8, verbose=0)
    assert acts.shape == (30, 14, 14, 4)
    np.testing.assert_array_equal(acts.compute(), reference(model, images, "conv1"))


def test_a_stream_resumes_and_checks_its_length(model, images, tmp_path):
    path = tmp_path / "s.zarr"

    def stream(n):
        for i in range(0, n, 5):
            if i >= 20 and n == 29:
                raise KeyboardInterrupt  # Ctrl-C in the third chunk
            yield images[i : min(i + 5, n)]

    with pytest.raises(KeyboardInterrupt):
        to_zarr(model, "conv1", stream(29), path, chunk_images=8, verbose=0)
    with pytest.raises(ValueError, match=r"Chunk 1 .* holds 8 images; the input gives 4 there"):
        to_zarr(model, "conv1", stream(12), path, chunk_images=8, verbose=0)
    acts = to_zarr(model, "conv1", stream(30), path, chunk_images=8, verbose=0)
    np.testing.assert_array_equal(acts.compute(), reference(model, images, "conv1"))


def test_image_files_are_read_at_the_model_input_size(model, tmp_path):
    rng = np.random.default_rng(1)
    files, expected = [], []
    for i in range(5):
        image = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
        name = str(tmp_path / f"{i}.png")
        keras.utils.save_img(name, image)
        files.append(name)
        resized = keras.utils.load_img(name, target_size=(16, 16))
        expected.append(keras.utils.img_to_array(resized))
    acts = to_zarr(model, "conv1", files, tmp_path / "f.zarr", chunk_images=2, verbose=0)
    np.testing.assert_allclose(
        acts.compute(), reference(model, np.stack(expected), "conv1"), rtol=1e-6, atol=1e-5
    )
    with pytest.raises(FileNotFoundError, match=r"gone\.png"):
        to_zarr(model, "conv1", [str(tmp_path / "gone.png")], tmp_path / "g.zarr", verbose=0)


def test_dask_images(model, images, tmp_path):
    x = da.from_array(images, chunks=7)
    acts = to_zarr(model, "conv2", x, tmp_path / "d.zarr", chunk_images=8, verbose=0)
    np.testing.assert_array_equal(acts.compute(), reference(model, images, "conv2"))
    # other images of the same shape are told apart (by each chunk's digest)
    other = da.from_array(images[::-1].copy(), chunks=7)
    with pytest.raises(ValueError, match=r"Chunk 0 of the store .* other images"):
        to_zarr(model, "conv2", other, tmp_path / "d.zarr", chunk_images=8, verbose=0)


def test_on_a_local_cluster_each_worker_loads_the_model_once(
    model, model_file, images, files, client, tmp_path
):
    client.run(extract.LOADS.clear)
    acts = to_zarr(
        model_file,
        "conv1",
        da.from_array(images, chunks=5),
        tmp_path / "c.zarr",
        chunk_images=3,
        client=client,
        verbose=0,
    )
    np.testing.assert_array_equal(acts.compute(), reference(model, images, "conv1"))
    loads = client.run(lambda: list(extract.LOADS))
    assert len(loads) == 2 and all(v == [model_file] for v in loads.values())  # 10 chunks
    # files and numpy arrays go the same way; a second run loads nothing again
    acts = to_zarr(
        model_file,
        "conv2",
        files,
        tmp_path / "cf.zarr",
        chunk_images=4,
        client=client,
        verbose=0,
        loader=np.load,
    )
    np.testing.assert_array_equal(acts.compute(), reference(model, images, "conv2"))
    assert all(len(v) == 1 for v in client.run(lambda: list(extract.LOADS)).values())


def test_a_worker_error_reaches_the_caller_and_the_written_chunks_stay(
    model, model_file, images, files, client, tmp_path
):
    path = tmp_path / "e.zarr"
    broken = [*files[:27], str(tmp_path / "missing.npy"), *files[28:]]
    with pytest.raises(FileNotFoundError, match=r"missing\.npy"):
        to_zarr(
            model_file,
            "conv1",
            broken,
            path,
            chunk_images=3,
            client=client,
            verbose=0,
            loader=np.load,
        )
    pending = store.ChunkedStore._open_existing(str(path), None, "r").pending()
    assert 9 in pending and len(pending) < 10
    # the chunks written are checked file by file and kept; the missing one is computed
    acts = to_zarr(
        model_file, "conv1", files, path, chunk_images=3, client=client, verbose=0, loader=np.load
    )
    np.testing.assert_array_equal(acts.compute(), reference(model, images, "conv1"))


def test_bad_input(model, model_file, images, client, tmp_path):
    with pytest.raises(ValueError, match=r"pass the model as the path of a \.keras file"):
        to_zarr(model, "conv1", images, tmp_path / "x.zarr", client=client)
    with pytest.raises(ValueError, match=r"Expected input of shape \(None, 16, 16, 3\)"):
        to_zarr(model, "conv1", images[:, :8], tmp_path / "x.zarr", verbose=0)
    with pytest.raises(ValueError, match=r"Expected images of shape"):
        to_zarr(model, "conv1", da.zeros((4, 8, 8, 3)), tmp_path / "x.zarr", verbose=0)
    with pytest.raises(ValueError, match="dtype 'float32' or 'float16'"):
        to_zarr(model, "conv1", images, tmp_path / "x.zarr", dtype="int8")
    with pytest.raises(ValueError, match="chunk_images"):
        to_zarr(model, "conv1", images, tmp_path / "x.zarr", chunk_images=0)
    with pytest.raises(FileNotFoundError, match="No model file"):
        to_zarr(str(tmp_path / "none.keras"), "conv1", images, tmp_path / "x.zarr")
    with pytest.raises(ValueError, match="Expected images"):
        to_zarr(model, "conv1", None, tmp_path / "x.zarr")
    assert not os.path.exists(tmp_path / "x.zarr")  # nothing half-made


def test_missing_extra_says_how_to_install(monkeypatch):
    import importlib

    from keras_introspect.distributed import _deps

    real = importlib.import_module

    def fake(name, *args):
        if name == "zarr":
            raise ImportError("No module named 'zarr'")
        return real(name, *args)

    monkeypatch.setattr(_deps.importlib, "import_module", fake)
    with pytest.raises(ImportError, match=r"pip install 'keras-introspect\[distributed\]'"):
        _deps.require("zarr")
    assert not _deps.available()


# --- issue 18, A: a store is reused only for the same model weights and images


def _retrained(model):
    twin = keras.models.clone_model(model)
    rng = np.random.default_rng(7)
    twin.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.get_weights()])
    return twin


def test_a_retrained_model_with_the_same_name_is_refused(model, images, tmp_path, capsys):
    path = tmp_path / "w.zarr"
    to_zarr(model, "conv1", images, path, chunk_images=8, verbose=0)
    other = _retrained(model)
    assert other.name == model.name
    with pytest.raises(ValueError, match=r"model weights and config: stored '[0-9a-f]+', now"):
        to_zarr(other, "conv1", images, path, chunk_images=8, verbose=0)
    # the same model and images: reused, and said so even with verbose=0
    to_zarr(model, "conv1", images, path, chunk_images=8, verbose=0)
    assert "resuming" in capsys.readouterr().err


def test_a_run_stopped_with_one_model_is_not_finished_with_another(model, images, tmp_path):
    path = tmp_path / "mixed.zarr"

    def stream(stop):
        for i in range(0, 30, 5):
            if i >= stop:
                raise KeyboardInterrupt
            yield images[i : i + 5]

    with pytest.raises(KeyboardInterrupt):
        to_zarr(model, "conv1", stream(20), path, chunk_images=8, verbose=0)
    with pytest.raises(ValueError, match="model weights and config"):
        to_zarr(_retrained(model), "conv1", stream(30), path, chunk_images=8, verbose=0)


def test_images_that_differ_after_the_first_are_refused(model, images, tmp_path):
    path = tmp_path / "i.zarr"
    to_zarr(model, "conv1", images, path, chunk_images=8, verbose=0)
    changed = images.copy()
    changed[20] += 1.0  # the first image is the same; chunk 2 is not
    with pytest.raises(ValueError, match=r"Chunk 2 of the store .* was written from other images"):
        to_zarr(model, "conv1", changed, path, chunk_images=8, verbose=0)


def test_another_stream_of_the_same_length_is_refused(model, images, tmp_path):
    path = tmp_path / "t.zarr"
    to_zarr(model, "conv1", tf.data.Dataset.from_tensor_slices(images), path, chunk_images=8)
    other = tf.data.Dataset.from_tensor_slices(images[::-1].copy())
    with pytest.raises(ValueError, match=r"Chunk 0 of the store .* other images"):
        to_zarr(model, "conv1", other, path, chunk_images=8, verbose=0)


def test_a_changed_image_file_is_refused_without_reading_the_others(model, files, tmp_path):
    path = tmp_path / "files.zarr"
    to_zarr(model, "conv1", files, path, chunk_images=8, verbose=0, loader=np.load)
    image = np.load(files[9])
    np.save(files[9], image + 1.0)
    os.utime(files[9], ns=(1, 1))  # a different modification time, whatever the clock says
    with pytest.raises(ValueError, match="Chunk 1 of the store"):
        to_zarr(model, "conv1", files, path, chunk_images=8, verbose=0, loader=np.load)


def test_a_store_whose_creation_was_killed_is_resumed(model, images, tmp_path):
    """A4: a group without our metadata and no chunk written is safe to replace."""
    import zarr

    path = tmp_path / "k.zarr"
    zarr.open_group(str(path), mode="w")  # what a SIGKILL right after creation leaves
    acts = to_zarr(model, "conv1", images, path, chunk_images=8, verbose=0)
    np.testing.assert_array_equal(acts.compute(), reference(model, images, "conv1"))
    path2 = tmp_path / "k2.zarr"
    zarr.open_group(str(path2), mode="w")
    acts = to_zarr(model, "conv1", images, path2, chunk_images=8, verbose=0, overwrite=True)
    assert acts.shape[0] == 30


def test_a_users_own_empty_zarr_tree_is_never_deleted(model, images, tmp_path):
    import zarr

    path = tmp_path / "mine.zarr"
    group = zarr.open_group(str(path), mode="w")
    group.create_array("notes", shape=(4,), dtype="f4")  # no chunk written: metadata only
    with pytest.raises(ValueError, match="not a keras_introspect store"):
        to_zarr(model, "conv1", images, path, chunk_images=8, verbose=0)
    assert (path / "notes").is_dir()


def test_a_symlinked_store_path_gives_a_clear_error(model, images, tmp_path):
    real = tmp_path / "real.zarr"
    to_zarr(model, "conv1", images, real, chunk_images=8, verbose=0)
    link = tmp_path / "link.zarr"
    link.symlink_to(real)
    with pytest.raises(ValueError, match=r"is a symbolic link.*Pass '.*real\.zarr' instead"):
        to_zarr(model, "conv1", images, link, chunk_images=8, verbose=0, overwrite=True)
    assert ki.distributed.open_store(real).shape[0] == 30
