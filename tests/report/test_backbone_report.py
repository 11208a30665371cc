"""Issue 19: the report on a Kaggle-style EfficientNetB0 head picks deep layers, writes
or notes every section, and every image renders in a browser."""

import os
import re
import shutil
import subprocess

import keras
import numpy as np
import pytest

from keras_introspect.report import SECTIONS, build_report
from keras_introspect.report.auto import _TITLES

L = keras.layers
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PROBE = (
    '<script>window.addEventListener("load", function () {'
    "var images = document.images, broken = 0;"
    "for (var i = 0; i < images.length; i++) {"
    "if (!(images[i].complete && images[i].naturalWidth > 0)) broken++; }"
    'document.body.setAttribute("data-images", images.length);'
    'document.body.setAttribute("data-broken", broken); });</script>'
)


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
    for name in SECTIONS:
        assert any(t.startswith(_TITLES[name].split(" ")[0]) for t in titles), name
    clustering = next(s for s in report.sections if s.title == "Pixel clustering")
    assert clustering.params.get("left out (no feature maps)") is None  # all three have maps
    assert "+global" in page  # the layer table marks the layers after a gate


def test_every_image_of_the_backbone_report_renders(backbone_report, tmp_path):
    browser = next((p for p in map(shutil.which, BROWSERS) if p), None)
    if browser is None:
        if os.environ.get("KI_REQUIRE_BROWSER") == "1":
            pytest.fail("KI_REQUIRE_BROWSER=1 but no Chromium was found")
        pytest.skip("no Chromium installed (.ci/run installs Debian's chromium)")
    _, path = backbone_report
    page = open(path, encoding="utf-8").read()
    expected = len(re.findall(r"<img ", page))
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"]
    dom = subprocess.run(
        [*command, "--virtual-time-budget=10000", probed.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    ).stdout
    assert f'data-images="{expected}"' in dom and expected > 20
    assert 'data-broken="0"' in dom
