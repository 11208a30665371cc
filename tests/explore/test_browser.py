"""The explorer of the demo model in headless Chromium: links, images, the filter box."""

import re
import subprocess
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import browser_or_skip, images_in_browser

import keras_introspect as ki
from keras_introspect.datasets.die360 import die360, die360_network

LAYERS = ["conv1", "pool2", "classes"]

# after load: filter units "1-2", then order by "most selective for class 0"
FILTER_PROBE = (
    '<script>window.addEventListener("load", function () {'
    'var f = document.getElementById("filter"), s = document.getElementById("cls");'
    'f.value = "1-2"; f.dispatchEvent(new Event("input"));'
    "var shown = [];"
    'document.querySelectorAll(".unit").forEach(function (c) {'
    'if (c.style.display !== "none") shown.push(c.dataset.unit); });'
    'f.value = ""; f.dispatchEvent(new Event("input"));'
    's.value = "0"; s.dispatchEvent(new Event("change"));'
    "var order = [];"
    'document.querySelectorAll(".unit").forEach(function (c) { order.push(c.dataset.unit); });'
    'document.body.setAttribute("data-shown", shown.join(" "));'
    'document.body.setAttribute("data-order", order.join(" ")); });</script>'
)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The demo's c2 network (seeded weights: training changes nothing tested here),
    explored on 60 Die360 images with their labels."""
    keras.utils.set_random_seed(0)
    model = die360_network("c2")
    x, pips = die360(n=60, seed=0)
    y = pips - 1
    out = tmp_path_factory.mktemp("explore")
    result = ki.explore(model, x, y, layers=LAYERS, out=out, k=4, samples=2, am_steps=4)
    return model, x, y, result, out


def _dom(browser, path):
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"]
    return subprocess.run(
        [*command, "--virtual-time-budget=10000", path.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout


def _links(page: Path) -> list:
    return re.findall(r"(?:href|src)='([^']+)'", page.read_text(encoding="utf-8"))


def test_every_link_of_the_site_exists(site):
    *_, out = site
    pages = sorted(out.rglob("*.html"))
    # index, 3 layer pages, 3 + 3 + 6 unit pages, 2 sample pages
    assert len(pages) == 1 + 3 + 12 + 2
    for page in pages:
        for target in _links(page):
            assert "://" not in target
            assert (page.parent / target).is_file(), f"{page} links to missing {target}"


def test_index_layer_and_unit_pages_load_every_image(site, tmp_path):
    browser = browser_or_skip()
    *_, out = site
    index = out / "index.html"
    layer = index.parent / next(t for t in _links(index) if t.startswith("layers/"))
    unit = layer.parent / next(t for t in _links(layer) if "/units/" in t)
    sample = index.parent / next(t for t in _links(index) if t.startswith("images/"))
    for page in (index, layer, unit, sample):
        text = page.read_text(encoding="utf-8")
        expected = len(re.findall(r"<img ", text))
        assert expected > 0, page
        probed = page.parent / f"_probe_{page.name}"  # beside it: same relative links
        assert images_in_browser(browser, text, probed) == (expected, 0), page
        probed.unlink()


def test_filter_box_and_class_order(site):
    browser = browser_or_skip()
    model, x, y, _, out = site
    page = out / "layers" / "classes.html"
    text = page.read_text(encoding="utf-8")
    probed = page.parent / "_probe_filter.html"
    probed.write_text(text.replace("</body>", FILTER_PROBE + "</body>"), encoding="utf-8")
    dom = _dom(browser, probed)
    probed.unlink()
    shown = re.search(r'data-shown="([^"]*)"', dom).group(1).split()
    order = [int(u) for u in re.search(r'data-order="([^"]*)"', dom).group(1).split()]
    assert shown == ["1", "2"]
    # each card's selectivity for class 0, worked out here from the model's outputs:
    # (mean over class 0 - mean over the others) / std
    output = model.predict(x, verbose=0).astype(np.float64)
    inside = y == 0
    score = (output[inside].mean(0) - output[~inside].mean(0)) / output.std(0)
    cards = re.findall(r"data-unit='(\d+)' data-sel='([^']*)'", text)
    on_page = np.array([float(sel.split(",")[0]) for _, sel in cards])
    np.testing.assert_allclose(on_page, score, atol=2e-4)
    # the browser orders the cards by it, largest first (ties: lower unit first)
    assert order == np.argsort(-on_page, kind="stable").tolist()
