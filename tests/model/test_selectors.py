"""Every way of naming a layer, and the errors for wrong names."""

import pytest

import keras_introspect as ki
from keras_introspect.exceptions import (
    AmbiguousLayerError,
    KerasIntrospectWarning,
    LayerNotFoundError,
)


@pytest.fixture(scope="module")
def intro(built_models):
    return ki.Introspector(built_models["nested_two_levels"])


def paths(intro, selector):
    return [i.path for i in intro.select(selector)]


def test_name_path_suffix_index_object(intro, built_models):
    model = built_models["nested_two_levels"]
    assert paths(intro, "stem_conv") == ["encoder/stem/stem_conv"]
    assert paths(intro, "encoder/stem/stem_conv") == ["encoder/stem/stem_conv"]
    assert paths(intro, "stem/stem_conv") == ["encoder/stem/stem_conv"]
    assert paths(intro, 0) == [intro.layer_paths[0]]
    assert paths(intro, -1) == ["dense"]
    conv = model.get_layer("encoder").get_layer("enc_conv")
    assert paths(intro, conv) == ["encoder/enc_conv"]
    assert paths(intro, intro.layer("gmp")) == ["gmp"]


def test_groups_class_names_regex_lists(intro):
    assert paths(intro, "conv") == ["encoder/stem/stem_conv", "encoder/enc_conv"]
    assert paths(intro, "Conv2D") == ["encoder/stem/stem_conv", "encoder/enc_conv"]
    assert paths(intro, "pool") == ["gmp"]
    with pytest.warns(KerasIntrospectWarning, match="'dense' is both the name of layer"):
        assert paths(intro, "dense") == ["dense"]  # the name wins, and it is said
    assert [i.path for i in intro.layers_of_kind("dense")] == ["dense"]
    assert paths(intro, r"encoder/.*conv") == [
        "encoder/stem/stem_conv",
        "encoder/enc_conv",
    ]
    assert paths(intro, ["dense", "scale", "dense"]) == ["dense", "scale"]
    everything = paths(intro, "all")
    assert "encoder" not in everything and "img" not in everything  # containers, inputs
    assert everything == [
        "scale",
        "encoder/stem/stem_conv",
        "encoder/enc_conv",
        "gmp",
        "dense",
    ]


def test_unknown_name_lists_closest(intro):
    with pytest.raises(LayerNotFoundError, match=r"stem_cnv.*Closest valid names: \[.*stem_conv"):
        intro.select("stem_cnv")


def test_index_out_of_range(intro):
    n = len(intro.layer_paths)
    for index in (n, -n - 1):
        with pytest.raises(LayerNotFoundError, match=rf"\[-{n}, {n - 1}\].*index={index}"):
            intro.select(index)


def test_ambiguous_name_and_single_layer_contexts(built_models):
    intro = ki.Introspector(built_models["nested"])
    with pytest.raises(AmbiguousLayerError, match="one layer"):
        intro.layer("conv")
    assert intro.layer("Conv1").path == "mobilenetv2_0.35_32/Conv1"


def test_duplicate_names_in_two_nested_models_are_ambiguous():
    import keras

    def block(name):
        i = keras.Input((4,))
        return keras.Model(i, keras.layers.Dense(2, name="fc")(i), name=name)

    x = keras.Input((4,))
    model = keras.Model(x, keras.layers.Add()([block("left")(x), block("right")(x)]))
    intro = ki.Introspector(model)
    with pytest.raises(AmbiguousLayerError, match=r"\['left/fc', 'right/fc'\]"):
        intro.select("fc")
    assert paths(intro, "right/fc") == ["right/fc"]


def test_wrong_types(intro):
    with pytest.raises(TypeError, match="layer selector"):
        intro.select(2.5)
    with pytest.raises(ValueError, match="at least one"):
        intro.select([])
