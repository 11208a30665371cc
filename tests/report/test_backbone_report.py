"""Issue 19: the report on a Kaggle-style EfficientNetB0 head picks deep layers, writes
or notes every section, and every image renders in a browser."""

import os
import re

import keras
import numpy as np
import pytest
from conftest import browser_or_skip, images_in_browser

from keras_introspect.report import REGISTRY, build_report

L = keras.layers


@pytest.fixture(scope="module")
def backbone_report(tmp_path_factory):
    keras.utils.set_random_seed(0)
    backbone = keras.applications.EfficientNetB0(
        weights=None, include_top=False, input_shape=(64, 64, 3)
    )
    inputs = keras.Input((64, 64, 3))
    x = L.RandomFlip("horizontal")(inputs)
    x = L.GlobalAveragePooling2D()(backbone(x))
    model = keras.Model(inputs, L.Dense(3, activation="softmax")(L.Dropout(0.2)(x)))
    folder = tmp_path_factory.mktemp("b0")
    model.save(folder / "model.keras")
    model = keras.saving.load_model(folder / "model.keras")
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (9, 64, 64, 3)).astype("float32")
    labels = np.arange(9) % 3
    os.environ["KI_MAX_STEPS"] = "2"
    try:
        report = build_report(model, images, labels, n_quality=4, verbose=0)
    finally:
        del os.environ["KI_MAX_STEPS"]
    return report, report.save(folder / "report.html")


def test_the_report_reads_deep_blocks_and_writes_every_section(backbone_report):
    report, path = backbone_report
    page = open(path, encoding="utf-8").read()
    titles = [section.title for section in report.sections]
    deep = [
        "efficientnetb0/block2b_add",
        "efficientnetb0/block3b_add",
        "efficientnetb0/top_activation",
    ]
    for layer in deep:
        assert f"Filter saliency at {layer}" in titles
        assert f"Exemplars of {layer}" in titles
    assert not any("stem" in t for t in titles)
    # every section is there, computed (a failure would have raised its warning as an error)
    assert "could not be computed" not in page
    for name in REGISTRY.defaults:  # opt-in sections (rotation, concepts) run when named
        assert any(t.startswith(REGISTRY[name].title.split(" ")[0]) for t in titles), name
    clustering = next(s for s in report.sections if s.title == "Pixel clustering")
    assert clustering.params.get("left out (no feature maps)") is None  # all three have maps
    assert "+global" in page  # the layer table marks the layers after a gate


def test_every_image_of_the_backbone_report_renders(backbone_report, tmp_path):
    browser = browser_or_skip()
    _, path = backbone_report
    page = open(path, encoding="utf-8").read()
    expected = len(re.findall(r"<img ", page))
    assert expected > 20
    assert images_in_browser(browser, page, tmp_path / "probed.html") == (expected, 0)
