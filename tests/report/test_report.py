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
    assert len(_images(page)) == 4  # purity curve, label maps, dendrogram, spanning tree
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
    assert len(_images(page)) == 3  # saliency grid, exemplar grid, tree drawing
    assert "methods=saliency, gradcam, occlusion" in page and "window" in page
    # one row per super node of the tree
    super_nodes = [n for n in tree.root_.walk() if n.children and n.id != -1]
    assert page.count("<tr>") - 1 == len(super_nodes)  # minus the header row
    for node in super_nodes:
        assert f"<td>{node.critical_filter}</td>" in page
    with pytest.raises(ValueError, match="Expected `method` to be one of"):
        report.add_saliency(x[:1], 0, methods=("deeplift",))


def test_filter_saliency_marks_the_strongest_unit_field():
    from keras_introspect.report.builder import _strongest_fields

    model = _small_model()
    intro = ki.Introspector(model)
    x = np.zeros((2, 8, 8, 3), "float32")
    x[:, 5, 5, 2] = 0.5  # channel 2: one bright pixel
    x[0, 2:4, 4:6, 1] = 1.0  # pool unit (1, 2) of channel 1 is the strongest in image 0
    x[1, 6:8, 0:2, 1] = 1.0  # and unit (3, 0) in image 1
    maps = intro.activations(x, "pool")["pool"][..., 1]
    boxes = _strongest_fields(intro.layer("pool"), maps, (8, 8))
    assert boxes == [((2, 4), (4, 6)), ((6, 8), (0, 2))]
    report = ki.Report(model, "filters").add_filter_saliency(
        x, "pool", [1, 2], occlusion={"window": 2}
    )
    section = report.sections[0]
    assert section.title == "Filter saliency at pool"
    assert len(section.blocks) == 2  # one figure per channel
    assert "aggregates=max, sum" in report.to_html()


def test_occlusion_histograms_and_image_clusters_sections():
    model = _small_model()
    rng = np.random.default_rng(2)
    x = rng.random((12, 8, 8, 3)).astype("float32")
    y = np.repeat(["a", "b", "c"], 4)
    report = ki.Report(model, "more")
    report.add_occlusion(x[:2], 0, window=4)
    report.add_histograms(x, "pool", [0, 1])
    report.add_image_clustering(x, y, "flat", method="kmeans", n_clusters=3, random_state=0)
    page = report.to_html()
    titles = [s.title for s in report.sections]
    assert titles == ["Occlusion", "Activation histograms of pool", "Image clusters at flat"]
    assert len(_images(page)) == 3
    composition = (
        ki.ImageClusterer(model, "flat", method="kmeans", n_clusters=3, random_state=0)
        .fit(x)
        .composition(y)
    )
    for row in composition.table:  # the report's table is the composition
        assert f"<td>{row['size']}</td>" in page
    assert "images=12" in page


def test_feature_visualization_section(monkeypatch):
    monkeypatch.setenv("KI_MAX_STEPS", "5")
    model = _small_model()
    x = np.random.default_rng(3).random((6, 8, 8, 3)).astype("float32")
    report = ki.Report(model, "am").add_feature_visualization(
        "pool", [0, 2], x=x, value_range=(0.0, 1.0), steps=5
    )
    page = report.to_html()
    assert report.sections[0].title == "Feature visualization at pool"
    assert "best dataset activation per filter" in page and "channels=[0, 2]" in page
    assert len(_images(page)) == 1


def test_random_twin_section_reports_the_rank_correlation():
    from scipy.stats import spearmanr

    model = _small_model()
    x = np.random.default_rng(4).random((2, 8, 8, 3)).astype("float32")
    report = ki.Report(model, "twin").add_random_twin(x, 1, methods=("saliency",), seed=3)
    twin = ki.probes.randomized_twin(model, seed=3)
    a = ki.Saliency(model, 1).explain(x)
    b = ki.Saliency(twin, 1).explain(x)
    page = report.to_html()
    for i in range(2):
        rho = spearmanr(a[i].ravel(), b[i].ravel())[0]
        assert f"<td>{rho:.3f}</td>" in page
    assert "seed=3" in page


def test_quality_section_reports_the_metrics_of_each_method():
    from keras_introspect import metrics, targets

    model = _small_model()
    x = np.random.default_rng(5).random((4, 8, 8, 3)).astype("float32")
    target = targets.Class([0, 1, 1, 0])
    report = ki.Report(model, "quality").add_quality(
        x,
        target,
        methods=("saliency", "occlusion"),
        options={"occlusion": {"window": 2}},
        saturation=0.0,  # an untrained model: nothing moves much, take the probabilities
    )
    page = report.to_html()
    maps = ki.Saliency(model, target).explain(x)
    scored = targets.Class([0, 1, 1, 0], logits=False)  # the curves score probabilities
    down = metrics.deletion(model, x, maps, scored, baseline="blur", random_baseline=True)
    up = metrics.insertion(model, x, maps, scored, baseline="blur", random_baseline=True)
    for value in (down.mean_auc, down.random_mean_auc, up.mean_auc, up.random_mean_auc):
        assert f"<td>{value:.3f}</td>" in page
    twin = metrics.compare_with_random_twin("saliency", model, x, target)
    logit = metrics.random_logit_check("saliency", model, x, target)
    assert f"<td>{twin.mean:.3f}</td>" in page and f"<td>{logit.mean:.3f}</td>" in page
    cascade = metrics.randomization_check("saliency", model, x, target)
    assert cascade.layers == ["out", "identity"]
    for value in cascade.mean:
        assert f"<td>{value:.3f}</td>" in page
    assert page.count("<img") == 2 and "Explanation quality" in page


def test_quality_section_keeps_probability_curves_raw():
    from keras_introspect import metrics, targets

    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(3, "softmax")]
    )
    x = np.random.default_rng(6).random((3, 8, 8, 3)).astype("float32")
    target = targets.Class([0, 1, 2])
    page = ki.Report(model).add_quality(x, target, methods=("saliency",), saturation=0.0).to_html()
    assert "raw probabilities" in page
    maps = ki.Saliency(model, target).explain(x)
    scored = targets.Class([0, 1, 2], logits=False)
    raw = metrics.deletion(model, x, maps, scored, baseline="blur", normalize=False)
    assert f"<td>{raw.mean_auc:.3f}</td>" in page


def test_quality_section_switches_to_logits_when_the_softmax_is_saturated():
    """Issue 19: a saturated softmax scores every map, random ones included, alike;
    the section says so and scores the logit (normalised curves) instead."""
    from keras_introspect import metrics, targets

    keras.utils.set_random_seed(2)
    model = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(3, "softmax")]
    )
    kernel, _ = model.layers[-1].get_weights()
    model.layers[-1].set_weights([kernel, np.array([12.0, 0.0, 0.0], "float32")])
    x = np.random.default_rng(6).random((3, 8, 8, 3)).astype("float32")
    probabilities = model.predict(x, verbose=0)
    classes = probabilities.argmax(-1)
    assert probabilities.max(-1).min() > 0.99  # saturated
    target = targets.Class(classes)
    page = ki.Report(model).add_quality(x, target, methods=("saliency",)).to_html()
    assert "the softmax is saturated" in page and "score the logit instead" in page
    maps = ki.Saliency(model, target).explain(x)
    logits = targets.Class(classes, logits=True)
    down = metrics.deletion(model, x, maps, logits, baseline="blur", random_baseline=True)
    assert f"<td>{down.mean_auc:.3f}</td>" in page and "curves=normalised" in page


def test_quality_section_without_logits_is_marked_uninformative():
    from keras_introspect import targets

    x = keras.Input((8, 8, 3))
    h = keras.layers.Dense(2, bias_initializer=keras.initializers.Constant([50.0, -50.0]))(
        keras.layers.Flatten()(x)
    )
    model = keras.Model(x, keras.layers.ReLU(max_value=1.0)(h))  # clipped: no logits behind
    images = np.random.default_rng(6).random((3, 8, 8, 3)).astype("float32")
    page = ki.Report(model).add_quality(images, targets.Class(0), methods=("saliency",)).to_html()
    assert "uninformative for this model" in page and "deletion AUC" not in page
    assert page.count("<img") == 1  # the randomisation plot only


def test_save_is_atomic_and_replaces_a_link_instead_of_following_it(tmp_path, monkeypatch):
    """Issue 18, C9: a failed write keeps the previous report; links are not followed."""
    import os

    import keras_introspect as ki
    from keras_introspect import _files

    report = ki.Report(title="first")
    path = tmp_path / "report.html"
    report.save(path)
    good = path.read_text()
    assert "first" in good

    def full_disk(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    second = ki.Report(title="second")
    monkeypatch.setattr(_files.os, "replace", lambda *a: full_disk(None))
    with pytest.raises(OSError, match="No space left"):
        second.save(path)
    monkeypatch.undo()
    assert path.read_text() == good
    assert sorted(os.listdir(tmp_path)) == ["report.html"]  # no temporary file left
    target = tmp_path / "elsewhere.html"
    target.write_text("keep me")
    link = tmp_path / "link.html"
    link.symlink_to(target)
    second.save(link)
    assert target.read_text() == "keep me"
    assert not link.is_symlink() and "second" in link.read_text()


def test_blue_boxes_are_named_only_where_drawn_and_sum_maps_lose_the_stride_grid():
    from keras_introspect.report.builder import _smoothed_at_stride

    model = _small_model()  # pool: stride 2
    x = np.random.default_rng(7).random((2, 8, 8, 3)).astype("float32")
    page = ki.Report(model).add_saliency(x, 1, methods=("saliency",)).to_html()
    assert "blue" not in page
    page = ki.Report(model).add_filter_saliency(x, "pool", [0], occlusion=False).to_html()
    assert "blue box: receptive field" in page and "2-pixel box filter" in page
    info = ki.Introspector(model).layer("pool")
    grid = np.tile(np.array([[1.0, 0.0], [0.0, 0.0]]), (4, 4))[None]  # period-2 checkerboard
    smooth = _smoothed_at_stride(grid, info, "sum")
    np.testing.assert_allclose(smooth[0, 1:-1, 1:-1], 0.25, rtol=1e-6)
    assert _smoothed_at_stride(grid, info, "max") is grid
