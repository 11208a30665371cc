"""The explorer: values against brute force on planted kernels, the cache, the site's files."""

import contextlib
import io
import re
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_introspect as ki
from keras_introspect.explore import compute
from keras_introspect.explore.cache import Cache, image_hashes, model_fingerprint

L = keras.layers


def planted_model():
    """conv channel 0 sums a 3x3 window, channel 1 reads its centre (valid padding, ReLU);
    then a global max pooling and a dense softmax over 2 classes."""
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            L.Conv2D(2, 3, activation="relu", name="conv"),
            L.GlobalMaxPooling2D(name="gmp"),
            L.Dense(2, activation="softmax", name="dense"),
        ],
        name="planted",
    )
    kernel = np.zeros((3, 3, 1, 2), "float32")
    kernel[..., 0, 0] = 1.0
    kernel[1, 1, 0, 1] = 1.0
    model.get_layer("conv").set_weights([kernel, np.zeros(2, "float32")])
    model.get_layer("dense").set_weights(
        [np.array([[1.0, -1.0], [-1.0, 1.0]], "float32"), np.zeros(2, "float32")]
    )
    return model


def by_hand(x):
    """`(sum map, centre map)` of the planted conv layer, `(n, 6, 6)` each."""
    windows = np.lib.stride_tricks.sliding_window_view(x[..., 0], (3, 3), axis=(1, 2))
    return np.maximum(windows.sum(axis=(-1, -2)), 0), np.maximum(windows[..., 1, 1], 0)


def data(n=30, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, 8, 8, 1)).astype("float32")
    y = (x[:, 2:5, 2:5, 0].mean(axis=(1, 2)) > 0.5).astype(int)
    return x, y


def brute_top(values, k):
    """Indices of the k largest values, ties to the lower index (stable sort)."""
    return np.argsort(-values, kind="stable")[:k]


def test_scan_top_k_and_boxes_match_the_planted_kernels(tmp_path):
    model = planted_model()
    x, _ = data()
    intro = ki.Introspector(model)
    counts = compute.new_counts()
    scans, output = compute.scan_layers(
        intro, x, image_hashes(x), ["conv", "dense"], Cache(tmp_path), "fp", counts, 7
    )
    assert dict(counts) == {"scan_passes": 1, "scan_images": 30}
    sums, centres = by_hand(x)
    conv = scans["conv"]
    np.testing.assert_allclose(conv.values[:, 0], sums.reshape(30, -1).max(1), rtol=1e-5)
    np.testing.assert_allclose(conv.values[:, 1], centres.reshape(30, -1).max(1), rtol=1e-5)
    np.testing.assert_array_equal(conv.positions[:, 1], centres.reshape(30, -1).argmax(1))
    top = compute.top_k(conv.values, 5)
    np.testing.assert_array_equal(top[0], brute_top(sums.reshape(30, -1).max(1), 5))
    np.testing.assert_array_equal(top[1], brute_top(centres.reshape(30, -1).max(1), 5))
    # the model output comes from the same pass
    np.testing.assert_allclose(output, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    # boxes: a 3x3 field at the strongest unit (stride 1, no padding)
    from keras_introspect.explore.explorer import _boxes

    boxes = _boxes(intro.layer("conv"), conv, top, (8, 8))
    r, c = np.unravel_index(centres[top[1, 0]].argmax(), (6, 6))
    np.testing.assert_array_equal(boxes[1, 0], [[r, r + 3], [c, c + 3]])


def test_statistics_on_planted_values():
    values = np.array([[1.0, 0.0], [3.0, 0.0], [5.0, 1.0], [7.0, 1.0]])
    classes = np.array([0, 0, 1, 1])
    sel = compute.selectivity(values, classes, 2)
    # channel 0: (6 - 2) / std(1, 3, 5, 7) ; channel 1: (1 - 0) / 0.5
    np.testing.assert_allclose(sel[1], [4 / np.std([1, 3, 5, 7]), 2.0])
    np.testing.assert_allclose(sel[0], -sel[1])
    top = compute.top_k(values, 2)
    np.testing.assert_array_equal(top, [[3, 2], [2, 3]])
    np.testing.assert_array_equal(compute.composition(top, classes, 2), [[0, 2], [0, 2]])
    counts, edges = compute.histograms(values, bins=4)
    np.testing.assert_array_equal(counts[0], [1, 1, 1, 1])
    np.testing.assert_array_equal(edges[0], [1, 2.5, 4, 5.5, 7])


def _run(model, x, y, layers, out, samples=2):
    return ki.explore(model, x, y, layers=layers, out=out, k=4, samples=samples, am_steps=3)


def test_a_second_run_computes_only_the_new_parts(tmp_path):
    model = planted_model()
    x, y = data()
    out = tmp_path / "site"
    first = _run(model, x[:20], y[:20], ["conv"], out)
    assert first.computed == {
        "scan_passes": 1,
        "scan_images": 20,
        "am_layers": 1,
        "am_units": 2,
        "saliency_units": 2,
        "sample_maps": 2 + 2 + 2,  # saliency, Grad-CAM and clusters at conv, 2 images
        "purity_layers": 1,
    }
    # a new layer: one pass over the same images reads that layer only
    second = _run(model, x[:20], y[:20], ["conv", "dense"], out)
    assert second.computed == {
        "scan_passes": 1,
        "scan_images": 20,
        "am_layers": 1,
        "am_units": 2,
        "saliency_units": 2,
        "sample_maps": 0,
        "purity_layers": 1,
    }
    # more images: the new ones are scanned; the saliency of the units whose
    # top-4 changed is computed again; AM and the samples are kept
    third = _run(model, x, y, ["conv", "dense"], out)
    sums, centres = by_hand(x)
    output = model.predict(x, verbose=0)
    per_unit = [
        sums.reshape(30, -1).max(1),
        centres.reshape(30, -1).max(1),
        output[:, 0],
        output[:, 1],
    ]
    changed = sum(not np.array_equal(brute_top(v[:20], 4), brute_top(v, 4)) for v in per_unit)
    assert third.computed == {
        "scan_passes": 1,
        "scan_images": 10,
        "am_layers": 0,
        "am_units": 0,
        "saliency_units": changed,
        "sample_maps": 0,
        "purity_layers": 2,  # other images and labels
    }
    assert changed >= 1
    # nothing new: nothing computed, and the pages are the same
    page = (out / "units" / "conv" / "1.html").read_text()
    again = _run(model, x, y, ["conv", "dense"], out)
    assert set(again.computed.values()) == {0}
    assert (out / "units" / "conv" / "1.html").read_text() == page
    # the unit page lists its top images, best first, as brute force ranks them
    shown = [int(i) for i in re.findall(r"image (\d+), label", page)]
    assert shown == brute_top(per_unit[1], 4).tolist()


def test_cache_is_keyed_by_the_weights(tmp_path):
    model = planted_model()
    x, y = data(12)
    _run(model, x, y, ["conv"], tmp_path, samples=0)
    fingerprint = model_fingerprint(model)
    kernel, bias = model.get_layer("conv").get_weights()
    model.get_layer("conv").set_weights([kernel * 2, bias])
    assert model_fingerprint(model) != fingerprint
    rerun = _run(model, x, y, ["conv"], tmp_path, samples=0)
    assert rerun.computed["scan_images"] == 12 and rerun.computed["am_units"] == 2


def _site_files(out):
    """Every page of the site and every relative link or image in it exists."""
    pages = sorted(Path(out).rglob("*.html"))
    assert pages
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "data:image" not in text and "://" not in text, page
        for target in re.findall(r"(?:href|src)='([^']+)'", text):
            assert (page.parent / target).is_file(), f"{page} links to missing {target}"
    return pages


def test_site_pages_and_links(tmp_path):
    model = planted_model()
    x, y = data()
    result = ki.explore(
        model, x, y, out=tmp_path, k=3, samples=2, am_steps=3, class_names=["<dark>", "light"]
    )
    assert result.layers == ["conv", "gmp", "dense"]
    assert result.units == [2, 2, 2]
    pages = _site_files(tmp_path)
    names = {p.relative_to(tmp_path).as_posix() for p in pages}
    assert {"index.html", "layers/conv.html", "units/conv/0.html", "units/dense/1.html"} <= names
    assert {"images/0.html", "images/1.html"} <= names
    index = (tmp_path / "index.html").read_text()
    assert "&lt;dark&gt;" not in index  # class names appear on layer pages, escaped
    layer = (tmp_path / "layers" / "conv.html").read_text()
    assert "most selective for class &lt;dark&gt;" in layer and "<dark>" not in layer
    assert "img/purity.png" in index
    # page weight: the layer page and the images it loads
    files = re.findall(r"(?:src|href)='\.\./([^']+\.(?:png|css|js))'", layer)
    expected = len(layer.encode()) + sum((tmp_path / f).stat().st_size for f in set(files))
    assert result.page_weight[0] == expected
    assert "page KiB" in str(result)


def test_cli_explore(tmp_path):
    from keras_introspect.cli import main

    model = planted_model()
    x, y = data(16)
    model.save(tmp_path / "m.keras")
    np.savez(tmp_path / "images.npz", x=x, y=y)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(
            [
                "explore",
                str(tmp_path / "m.keras"),
                str(tmp_path / "images.npz"),
                "--layers",
                "conv",
                "--out",
                str(tmp_path / "site"),
                "--k",
                "3",
                "--samples",
                "0",
                "--am-steps",
                "2",
                "--quiet",
            ]
        )
    assert code == 0
    assert printed.getvalue().strip() == str(tmp_path / "site" / "index.html")
    _site_files(tmp_path / "site")


def test_bad_inputs(tmp_path):
    model = planted_model()
    x, _ = data(5)
    with pytest.raises(ValueError, match="shape"):
        ki.explore(model, x[..., 0], out=tmp_path)
    with pytest.raises(ValueError, match="class index"):
        ki.explore(model, x, y=np.array([0.5] * 5), out=tmp_path)
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is a file"):
        ki.explore(model, x, out=tmp_path / "file")


def test_large_images_get_grid_thumbnails(tmp_path):
    from PIL import Image

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((60, 60, 1)),
            L.Conv2D(2, 5, strides=2, activation="relu", name="conv"),
            L.GlobalAveragePooling2D(name="gap"),
            L.Dense(2, name="out"),
        ]
    )
    x = np.random.default_rng(0).uniform(0, 1, (6, 60, 60, 1)).astype("float32")
    ki.explore(model, x, layers=["conv"], out=tmp_path, k=2, samples=0, am_steps=2)
    layer = (tmp_path / "layers" / "conv.html").read_text()
    grid = re.findall(r"src='\.\./(img/conv/[^']+)'", layer)
    assert sorted(grid) == [
        f"img/conv/thumb_{kind}_{c}.png" for kind in ("am", "top") for c in (0, 1)
    ]
    # the AM thumbnail: 60 x 60 shrunk to 48 x 48; the top crop: the 5 x 5 field, kept
    assert Image.open(tmp_path / "img/conv/thumb_am_0.png").size == (48, 48)
    assert Image.open(tmp_path / "img/conv/thumb_top_0.png").size == (5, 5)
    assert Image.open(tmp_path / "img/conv/am_0_0.png").size == (60, 60)  # the unit page's
    _site_files(tmp_path)
