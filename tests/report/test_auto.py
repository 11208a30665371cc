"""build_report: layer and channel choices, sections, labels."""

import keras
import numpy as np
import pytest

from keras_introspect.datasets import die360_network
from keras_introspect.probes._scan import introspector
from keras_introspect.report import SECTIONS, build_report
from keras_introspect.report.auto import _spread, _top_channels, choose_layers


def test_spread_takes_the_last_of_equal_parts():
    assert _spread(range(2), 2) == [0, 1]
    assert _spread(range(50), 2) == [24, 49]
    assert _spread(range(10), 3) == [2, 6, 9]
    assert _spread(range(3), 5) == [0, 1, 2]


def test_choose_layers_prefers_pooling_then_stage_outputs():
    assert choose_layers(introspector(die360_network("c2"))) == ["pool1", "pool2"]
    assert choose_layers(introspector(die360_network("c9")), k=3) == ["pool1", "pool2", "pool3"]
    convs = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(2, 3, name="a"),
            keras.layers.Conv2D(2, 3, name="b"),
            keras.layers.Conv2D(2, 3, name="c"),
            keras.layers.GlobalAveragePooling2D(name="gap"),
        ]
    )
    assert choose_layers(introspector(convs), k=2) == ["b", "c"]  # no global pooling
    with pytest.raises(ValueError, match="no layer with feature maps"):
        choose_layers(introspector(die360_network("d5")))


def test_choose_layers_takes_stage_outputs_after_the_stem():
    """Strided residual stages: each stage's output is its last add; the stem is
    left out when there are more stages than layers asked for; the last spatial
    layer (more than one position, not dropout) ends the list."""
    L = keras.layers
    x = keras.Input((32, 32, 3))
    h = L.Conv2D(4, 3, strides=2, padding="same", name="stem")(x)
    for stage in range(1, 4):
        h = L.Conv2D(4, 3, strides=2, padding="same", name=f"down{stage}")(h)
        r = L.Conv2D(4, 3, padding="same", name=f"conv{stage}")(h)
        h = L.Add(name=f"add{stage}")([h, r])
        h = L.Conv2D(4, 1, name=f"expand{stage}")(h)
    h = L.Dropout(0.1, name="drop")(h)
    h = L.Conv2D(4, 2, name="to_one")(h)  # 2x2 -> 1x1: a constant map
    model = keras.Model(x, L.Dense(2)(L.Flatten()(h)))
    assert choose_layers(introspector(model)) == ["add1", "add2", "expand3"]
    assert choose_layers(introspector(model), k=2) == ["add2", "expand3"]
    backbone = keras.applications.EfficientNetB0(
        weights=None, include_top=False, input_shape=(64, 64, 3)
    )
    assert choose_layers(introspector(backbone)) == ["block2b_add", "block3b_add", "top_activation"]


def test_top_channels_rank_by_mean_and_pass_over_dead_filters():
    model = keras.Sequential(
        [keras.Input((4, 4, 1)), keras.layers.Conv2D(4, 1, activation="relu", name="c")]
    )
    # channel means on x >= 0: 2x, dead (negative weight), 3x, 1x
    model.get_layer("c").set_weights([np.array([[[[2.0, -1.0, 3.0, 1.0]]]]), np.zeros(4)])
    x = np.random.default_rng(0).random((5, 4, 4, 1)).astype("float32")
    intro = introspector(model)
    assert _top_channels(intro, x, ["c"], 3) == {"c": [2, 0, 3]}
    assert _top_channels(intro, x, ["c"], 4) == {"c": [2, 0, 3]}  # never the dead one


def test_sections_labels_and_errors(monkeypatch):
    monkeypatch.setenv("KI_MAX_STEPS", "3")
    keras.utils.set_random_seed(0)
    model = die360_network("c1")
    x = np.random.default_rng(0).random((12, 32, 32, 1)).astype("float32")
    report = build_report(
        model, x, sections=["summary", "purity", "category-tree"], verbose=0, title="t"
    )
    assert report.sections[0].title == "Model: die360_c1"
    purity = report.sections[1]
    assert purity.params["labels"] == "the model's predicted classes (no labels given)"
    y = np.repeat([0, 1, 2], 4)
    report = build_report(model, x, y, sections=["purity"], verbose=0)
    assert report.sections[0].params["labels"] == "the given labels"
    with pytest.raises(ValueError, match="Unknown section"):
        build_report(model, x, sections=["lime"], verbose=0)
    with pytest.raises(ValueError, match="one label per image"):
        build_report(model, x, y[:5], sections=["purity"], verbose=0)
    with pytest.raises(ValueError, match="at least 2 images"):
        build_report(model, x[:1], sections=["summary"], verbose=0)
    assert SECTIONS[0] == "summary" and len(SECTIONS) == 16


def _small_cnn(head):
    keras.utils.set_random_seed(0)
    L = keras.layers
    inputs = keras.Input((12, 12, 1))
    h = L.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    h = L.MaxPooling2D(name="pool")(h)
    h = L.Conv2D(4, 3, activation="relu", name="conv2")(h)
    h = L.MaxPooling2D(name="pool2")(h)
    return keras.Model(inputs, head(L.Flatten(name="flat")(h)))


def _html(section) -> str:
    return "".join(map(str, section.blocks))


ALL_BUT_SLOW = ["summary", "saliency", "occlusion", "exemplars", "histograms", "purity", "quality"]


def test_a_regression_head_gets_its_report_with_the_quality_section_skipped(monkeypatch):
    """Issue 18, C11: decided before computing; one-unit outputs are explained as values."""
    monkeypatch.setenv("KI_MAX_STEPS", "3")
    # a regression head: values well outside [0, 1] (a sigmoid would be a classifier)
    model = _small_cnn(
        lambda h: keras.layers.Dense(
            1, bias_initializer=keras.initializers.Constant(-3.0), name="value"
        )(h)
    )
    x = np.random.default_rng(1).random((8, 12, 12, 1)).astype("float32")
    report = build_report(model, x, np.arange(8) % 2, sections=ALL_BUT_SLOW, verbose=0)
    titles = [s.title for s in report.sections]
    assert len(titles) == len(ALL_BUT_SLOW) + 1  # exemplars: one section per layer
    quality = report.sections[-1]
    assert quality.title == "Explanation quality" and "regression head" in _html(quality)
    assert not any("could not be computed" in _html(s) for s in report.sections)


def test_dict_outputs_are_named_and_few_images_and_odd_labels_work(monkeypatch):
    monkeypatch.setenv("KI_MAX_STEPS", "3")
    model = _small_cnn(
        lambda h: {
            "kind": keras.layers.Dense(3, name="kind")(h),
            "size": keras.layers.Dense(1, name="size")(h),
        }
    )
    x = np.random.default_rng(2).random((3, 12, 12, 1)).astype("float32")
    with pytest.raises(ValueError, match="2 outputs, a dict"):
        build_report(model, x, sections=["saliency"], verbose=0)
    # 3 images (fewer than the 6 exemplars asked for), mixed labels kept as text
    report = build_report(
        model,
        x,
        [1, "b", 1],
        sections=["saliency", "exemplars", "purity"],
        output="kind",
        verbose=0,
    )
    assert not any("could not be computed" in _html(s) for s in report.sections)
    with pytest.raises(ValueError, match=r"NaN at position\(s\) \[1\]"):
        build_report(model, x, [0.0, np.nan, 1.0], sections=["purity"], output=0, verbose=0)


def test_a_failing_section_is_a_note_and_the_others_are_kept(monkeypatch):
    from keras_introspect.exceptions import KerasIntrospectWarning
    from keras_introspect.report.builder import Report

    model = _small_cnn(lambda h: keras.layers.Dense(3, name="out")(h))
    x = np.random.default_rng(3).random((6, 12, 12, 1)).astype("float32")

    def broken(self, *args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Report, "add_histograms", broken)
    with pytest.warns(KerasIntrospectWarning, match="section 'histograms' failed"):
        report = build_report(model, x, sections=["summary", "histograms", "purity"], verbose=0)
    assert [s.title for s in report.sections][1] == "Activation histograms"
    assert "RuntimeError: disk on fire" in _html(report.sections[1])
    assert report.sections[2].title.startswith("Layer-wise purity")


def _planted_negative_gradcam():
    """A = x, B = relu(1 - A), class 0 scores -mean(B): Grad-CAM at B weighs a
    non-negative map by a negative weight (constant 0 after its ReLU); at A the
    weight is positive and the map is A itself."""
    L = keras.layers
    x = keras.Input((6, 6, 1))
    a = L.Conv2D(1, 1, activation="relu", name="a")(x)
    b = L.Conv2D(1, 1, activation="relu", name="b")(a)
    out = L.Dense(2, name="out")(L.GlobalAveragePooling2D()(b))
    model = keras.Model(x, out)
    model.get_layer("a").set_weights([np.ones((1, 1, 1, 1)), np.zeros(1)])
    model.get_layer("b").set_weights([-np.ones((1, 1, 1, 1)), np.ones(1)])
    model.get_layer("out").set_weights([np.array([[-1.0, 1.0]]), np.zeros(2)])
    return model


def test_the_saliency_section_moves_grad_cam_off_a_constant_layer():
    import keras_introspect as ki
    from keras_introspect.report.auto import _gradcam_layer
    from keras_introspect.targets import Class

    model = _planted_negative_gradcam()
    x = np.random.default_rng(0).uniform(0, 2, (3, 6, 6, 1)).astype("float32")
    target = Class(0)
    with pytest.warns(ki.exceptions.KerasIntrospectWarning, match="is zero"):
        flat = ki.GradCAM(model, target).explain(x)  # default: b
    assert np.ptp(flat) == 0
    path, note = _gradcam_layer(model, introspector(model), x, target)
    assert path == "a"
    assert "at b it is constant for 3 of 3 images" in note
    expected = ki.GradCAM(model, target, layer="a", upsample=False).explain(x)
    # at A the map is relu(w * A) with w > 0: proportional to the image where A < 1 counts
    ratio = expected / np.maximum(x[..., 0], 1e-9)
    assert np.allclose(ratio, ratio[:, :1, :1], rtol=1e-4)


def test_row_labels_give_truth_prediction_and_probability():
    from keras_introspect import Report
    from keras_introspect.targets import Class

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(3, "softmax")]
    )
    x = np.random.default_rng(1).random((4, 4, 4, 1)).astype("float32")
    probabilities = model.predict(x, verbose=0)
    predicted = probabilities.argmax(1)
    truth = [int(predicted[0]), (int(predicted[1]) + 1) % 3, "7", 2.0]
    texts, wrong = Report(model)._row_labels(x, Class(predicted), truth)
    for i in range(4):
        c = predicted[i]
        assert texts[i] == f"true {truth[i]}, predicted {c} ({probabilities[i, c]:.2f})"
    assert wrong == [False, True, c_differs(7, predicted[2]), c_differs(2, predicted[3])]
    names, unmarked = Report(model)._row_labels(x, Class(predicted), ["cat"] * 4)
    assert unmarked is None and names[0].startswith("true cat, predicted")


def c_differs(label, predicted):
    return label != int(predicted)
