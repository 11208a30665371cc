"""The HTML report: self-contained, escaped, with contents, parameters and versions."""

import base64
import re

import keras
import matplotlib
import numpy as np
import pytest

import keras_introspect as ki
from keras_introspect.cluster import PurityResult

matplotlib.use("Agg")
import matplotlib.pyplot as plt

PNG = b"\x89PNG\r\n\x1a\n"


def _images(page):
    return re.findall(r'<img alt="[^"]*" src="([^"]+)"', page)


def _small_model():
    inputs = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(3, 1, use_bias=False, name="identity")
    pooled = keras.layers.AveragePooling2D(2, name="pool")(conv(inputs))
    out = keras.layers.Dense(2, name="out")(keras.layers.Flatten(name="flat")(pooled))
    model = keras.Model(inputs, out, name="small_net")
    conv.set_weights([np.eye(3, dtype="float32")[None, None]])
    return model


def test_page_is_self_contained_and_escaped(tmp_path):
    report = ki.Report(title="<script>alert('x')</script> & co")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    report.add_figure(fig, caption="a <b>line</b>", title="First", params={"k": "<v>"})
    report.add_image(np.random.default_rng(0).random((6, 5, 3)), caption="noise")
    report.add_text("First", "second section with the same title\n\nand 2 paragraphs")
    report.add_table([{"name": "<i>x</i>", "value": 0.123456}], title="Table")
    page = report.to_html()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "a &lt;b&gt;line&lt;/b&gt;" in page and "k=&lt;v&gt;" in page
    assert "&lt;i&gt;x&lt;/i&gt;" in page and "0.123" in page and "0.1234" not in page
    # nothing is fetched from anywhere: every image is an embedded PNG
    assert "http://" not in page and "https://" not in page
    sources = _images(page)
    assert len(sources) == 2
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1]).startswith(PNG)
    # contents link to every section; repeated titles get distinct anchors
    anchors = re.findall(r'<section id="([^"]+)">', page)
    assert anchors == ["first", "first-2", "table"]
    assert all(f'href="#{a}"' in page for a in anchors)
    assert page.count("<p>") >= 2
    # versions of the libraries
    assert "tensorflow " in page and "keras " in page and "scikit-learn " in page
    path = report.save(tmp_path / "report.html")
    assert open(path, encoding="utf-8").read().startswith("<!DOCTYPE html>")


def test_model_summary_lists_every_layer():
    model = _small_model()
    page = ki.Report(model, "summary").add_model_summary().to_html()
    rows = ki.Introspector(model).summary_rows()
    for row in rows:
        assert f"<td>{row['path']}</td>" in page
    assert "Model: small_net" in page
    assert "2x2 /2x2" in page  # the pooling layer's receptive field


def test_analysis_sections():
    model = _small_model()
    rng = np.random.default_rng(0)
    x = rng.random((6, 8, 8, 3)).astype("float32")
    result = PurityResult(
        ["a", "b"],
        np.array([0.5, 0.9]),
        np.array([0.1, 0.8]),
        np.array([0.0, 0.7]),
        np.array([2, 2]),
        np.array([10, 4]),
        "kmeans",
    )
    report = ki.Report(model, "analyses")
    report.add_layerwise_purity(result=result)
    report.add_clustering(x, ["identity", "pool"], method="kmeans", n_clusters=2, random_state=0)
    tree = ki.CategoryTree(model, "flat").fit(x, ["p", "q", "r", "p", "q", "r"])
    report.add_category_tree(tree=tree)
    page = report.to_html()
    assert [s.title for s in report.sections] == [
        "Layer-wise purity",
        "Pixel clustering",
        "Category tree at flat",
    ]
    assert "<td>0.900</td>" in page and "<td>0.800</td>" in page
    assert "method=kmeans" in page and "n_clusters=2" in page
    assert tree.to_newick() in page
    assert len(_images(page)) == 3
    with pytest.raises(ValueError, match="needs x and y"):
        report.add_layerwise_purity()
    with pytest.raises(ValueError, match="needs the model"):
        ki.Report().add_model_summary()


def test_saliency_exemplar_and_prediction_tree_sections():
    model = _small_model()
    rng = np.random.default_rng(1)
    x = rng.random((10, 8, 8, 3)).astype("float32")
    report = ki.Report(model, "maps")
    report.add_saliency(
        x[:2],
        target=1,
        methods=("saliency", "gradcam", "occlusion"),
        options={"occlusion": {"window": 2, "stride": 2}},
    )
    report.add_exemplars(x, "identity", channels=[0, 2], k=3)
    tree = ki.PredictionTree(model, "pool").fit(x[:5])
    report.add_prediction_tree(tree=tree)
    page = report.to_html()
    assert len(_images(page)) == 2
    assert "methods=saliency, gradcam, occlusion" in page and "window" in page
    # one row per super node of the tree
    super_nodes = [n for n in tree.root_.walk() if n.children and n.id != -1]
    assert page.count("<tr>") - 1 == len(super_nodes)  # minus the header row
    for node in super_nodes:
        assert f"<td>{node.critical_filter}</td>" in page
    with pytest.raises(ValueError, match="Unknown method"):
        report.add_saliency(x[:1], 0, methods=("lime",))
