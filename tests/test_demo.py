"""The demo: Die360, the c2 network, and a report with every section that a browser renders."""

import contextlib
import io
import os
import re

import keras
import numpy as np
import pytest
from conftest import browser_or_skip, images_in_browser

from keras_introspect.cli import main


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["demo", "--fast", "--quiet", "--out", str(out)])
    return code, printed.getvalue().strip(), out


def _titles(page):
    return re.findall(r'<section id="[^"]+"><h2>([^<]+)</h2>', page)


def test_demo_writes_a_report_with_every_section(demo):
    code, printed, out = demo
    assert code == 0
    assert printed == os.path.join(str(out), "report.html")
    page = open(printed, encoding="utf-8").read()
    images = re.findall(r'<img alt="[^"]*" src="data:image/png;base64,', page)
    assert len(images) >= 8
    titles = _titles(page)
    for expected in (
        "Class saliency of the predicted class",
        "Filter saliency at pool1",
        "Filter saliency at pool2",
        "Feature visualization at pool1",
        "Feature visualization at pool2",
        "Exemplars of pool1",
        "Exemplars of pool2",
        "Pixel clustering",
        "Layer-wise purity",
        "Category tree at flatten",
        "Comparison with a random twin",
        "Concepts per layer",
    ):
        assert expected in titles, expected
    assert sum(t.startswith("Concepts of class") for t in titles) >= 2  # issue 24
    assert any(t.startswith("Prediction tree of label") for t in titles)
    # nothing is fetched from elsewhere
    assert not re.search(r'(src|href)="(https?:)?//', page)


def test_demo_model_is_saved_and_is_the_c2_network(demo):
    _, _, out = demo
    model = keras.saving.load_model(out / "die360_c2.keras")
    assert model.count_params() == 1272
    from keras_introspect.datasets import die360

    x, pips = die360(n=60, seed=5)
    accuracy = float(np.mean(model.predict(x, verbose=0).argmax(-1) == pips - 1))
    assert accuracy > 1 / 3  # better than always answering the most common count


def test_report_renders_every_image_in_headless_chromium(demo, tmp_path):
    browser = browser_or_skip()
    _, printed, _ = demo
    page = open(printed, encoding="utf-8").read()
    expected = len(re.findall(r"<img ", page))
    assert images_in_browser(browser, page, tmp_path / "probed.html") == (expected, 0)
    # the probe itself catches an image the browser cannot decode
    broken = page.replace("base64,iVBOR", "base64,XXXX", 1)
    assert images_in_browser(browser, broken, tmp_path / "broken.html") == (expected, 1)
