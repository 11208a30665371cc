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


def test_choose_layers_prefers_pooling_then_convolutions():
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
    assert choose_layers(introspector(convs)) == ["b", "c"]  # global pooling is no candidate
    with pytest.raises(ValueError, match="no convolution or pooling"):
        choose_layers(introspector(die360_network("d5")))


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
    assert SECTIONS[0] == "summary" and len(SECTIONS) == 14
