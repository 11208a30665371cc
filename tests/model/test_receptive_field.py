"""Receptive fields: hand-worked values and a brute-force gradient check."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_introspect as ki
from keras_introspect.model.receptive_field import ReceptiveField

L = keras.layers
POSITIVE = keras.initializers.RandomUniform(0.1, 1.0)


def conv(filters, k, **kw):
    return L.Conv2D(filters, k, kernel_initializer=POSITIVE, bias_initializer="zeros", **kw)


def chain(size, layers):
    x = keras.Input((*size, 1))
    h = x
    for layer in layers:
        h = layer(h)
    return keras.Model(x, h)


def residual(size):
    x = keras.Input((*size, 1))
    a = conv(2, 3, padding="same", name="a")(x)
    b = conv(2, 5, padding="same", strides=1, name="b")(a)
    h = L.Add(name="add")([a, b])
    return keras.Model(x, L.AveragePooling2D(2, name="last")(h))


def nested(size):
    inner_in = keras.Input((*size, 1))
    inner = keras.Model(inner_in, conv(2, 3, strides=2, name="inner_conv")(inner_in), name="inner")
    x = keras.Input((*size, 1))
    h = L.ZeroPadding2D(((1, 0), (2, 1)), name="pad")(x)
    h = L.Cropping2D(((1, 0), (2, 1)), name="crop")(h)
    return keras.Model(x, conv(1, 3, name="last")(inner(h)))


ARCHITECTURES = {
    "valid stride 2": lambda s: chain(s, [conv(2, 3, strides=2), conv(1, 3, name="last")]),
    "same stride 2 odd": lambda s: chain(
        s,
        [
            conv(2, 3, strides=2, padding="same"),
            conv(1, 3, padding="same", name="last"),
        ],
    ),
    "dilated": lambda s: chain(s, [conv(2, 3, dilation_rate=2), conv(1, 2, name="last")]),
    "pool and pad": lambda s: chain(
        s,
        [
            L.ZeroPadding2D(2),
            conv(2, 5),
            L.AveragePooling2D(3, strides=2, padding="same"),
            conv(1, (3, 1), name="last"),
        ],
    ),
    "residual": residual,
    "nested with crop": nested,
}


def brute_force_region(model, size, position):
    """Input pixels whose gradient for one output unit is non-zero."""
    x = tf.constant(np.random.default_rng(0).uniform(0.5, 1.0, (1, *size, 1)).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = model(x)[0, position[0], position[1], 0]
    g = np.abs(tape.gradient(y, x).numpy()[0, ..., 0]) > 0
    rows, cols = np.nonzero(g)
    return slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1)


@pytest.mark.parametrize("name", list(ARCHITECTURES))
@pytest.mark.parametrize("size", [(21, 21), (24, 19)])
def test_field_equals_nonzero_gradient_region(name, size):
    keras.utils.set_random_seed(1)
    model = ARCHITECTURES[name](size)
    intro = ki.Introspector(model)
    field = intro.receptive_field("last")
    out_h, out_w = model.output_shape[1:3]
    for position in [(out_h // 2, out_w // 2), (0, 0), (out_h - 1, out_w - 1)]:
        expected = brute_force_region(model, size, position)
        assert field.slices(position, size) == expected, (name, position, field)


def test_hand_worked_values():
    model = chain(
        (32, 32),
        [
            L.Conv2D(1, 7, strides=2, padding="same"),
            L.MaxPooling2D(3, strides=2, padding="same"),
            L.Conv2D(1, 3, padding="same", name="last"),
        ],
    )
    field = ki.Introspector(model).receptive_field("last")
    # 7 -> 7 + (3-1)*2 = 11 -> 11 + (3-1)*4 = 19; jumps 2, 4; offset -2, -2 - 0*2, -2 - 1*4
    assert field == ReceptiveField(size=(19, 19), stride=(4, 4), offset=(-6, -6))


def test_mobilenet_fields_contain_the_gradient_region(built_models):
    model = built_models["nested"]
    intro = ki.Introspector(model)
    backbone = model.layers[1]
    for name in ("Conv1", "block_2_add", "block_6_depthwise"):
        field = intro.receptive_field(name)
        probe = keras.Model(backbone.inputs, backbone.get_layer(name).output)
        x = tf.constant(np.random.default_rng(0).uniform(0, 255, (1, 32, 32, 3)).astype("float32"))
        centre = (probe.output_shape[1] // 2, probe.output_shape[2] // 2)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(probe(model.layers[0](x))[0, centre[0], centre[1]])
        g = np.abs(tape.gradient(y, x).numpy()[0]).sum(-1) > 0
        box = np.zeros_like(g)
        box[field.slices(centre, (32, 32))] = True
        assert g.any() and not (g & ~box).any(), name


def test_undefined_fields_have_reasons(built_models):
    intro = ki.Introspector(built_models["sequential"])
    assert intro.receptive_field("gap") is None
    assert "all positions" in intro.layer("gap").receptive_field_reason
    assert intro.receptive_field("out") is None
    with pytest.raises(ValueError, match="has no receptive field"):
        intro.receptive_field("out", strict=True)
    resized = chain((8, 8), [L.Resizing(12, 12, name="up")])
    reason = ki.Introspector(resized).layer("up").receptive_field_reason
    assert reason == "Resizing up resamples 8 to 12 positions (not by a whole factor)"


def test_field_geometry_helpers():
    field = ReceptiveField(size=(5, 3), stride=(2, 2), offset=(-1, 0))
    assert field.bounds((3, 1)) == ((5, 10), (2, 5))
    assert field.slices((0, 0), (8, 8)) == (slice(0, 4), slice(0, 3))
    assert field.center((0, 0)) == (1.0, 1.0)
    with pytest.raises(ValueError, match="position"):
        field.bounds((1, 2, 3))
    permuted = ReceptiveField(size=(5, 3), stride=(2, 1), offset=(0, -1), axes=(1, 0))
    assert permuted.bounds((1, 2)) == ((1, 4), (2, 7))  # rows from layer axis 1
    assert permuted.center((1, 2)) == (2.0, 4.0)
    assert "axes=(1, 0)" in repr(permuted) and "axes" not in repr(field)


# --------------------------------------------- gates, raw keras.ops, permutes
def _gradient_box(probe, x, position, hold_pooling=False, monkeypatch=None):
    """Bounding box (slices) of the input pixels with a non-zero gradient for the
    units at `position` (summed over channels and a batch of inputs), and whether
    every pixel has one. `hold_pooling` stops the gradient at every global
    average pooling: squeeze-and-excitation branches are then held fixed."""
    if hold_pooling:
        pooling = L.GlobalAveragePooling2D
        call = pooling.call
        monkeypatch.setattr(
            pooling, "call", lambda self, *a, **k: tf.stop_gradient(call(self, *a, **k))
        )
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(probe(x, training=False)[:, position[0], position[1]])
    g = np.abs(tape.gradient(y, x).numpy()).sum(axis=(0, -1)) > 0
    if hold_pooling:
        monkeypatch.undo()
    rows, cols = np.nonzero(g)
    return (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1)), bool(g.all())


SE_LAYERS = {
    "EfficientNetB0": ["block1a_se_excite", "block2a_bn", "block2b_dwconv", "block3a_project_conv"],
    "MobileNetV3Small": [
        "expanded_conv_squeeze_excite_mul",
        "expanded_conv_1_depthwise_bn",
        "expanded_conv_2_depthwise_bn",
    ],
}


@pytest.mark.parametrize("family", list(SE_LAYERS))
def test_squeeze_excitation_layers_keep_their_local_field(family, monkeypatch):
    """Past a squeeze-and-excitation gate, the reported field is the gradient support
    of a unit through the main path (the pooled branch held fixed), and the layer is
    flagged: with the branch free, every pixel has a gradient."""
    size = 32
    model = getattr(keras.applications, family)(
        weights=None, input_shape=(size, size, 3), classes=3
    )
    intro = ki.Introspector(model)
    x = np.random.default_rng(0).uniform(0, 255, (3, size, size, 3)).astype("float32")
    for name in SE_LAYERS[family]:
        info = intro.layer(name)
        field = info.receptive_field
        assert field is not None and info.global_context is not None, name
        assert "se" in info.global_context or "squeeze" in info.global_context, info.global_context
        probe = keras.Model(model.inputs, model.get_layer(name).output)
        h, w = info.spatial_shape
        for position in [(h // 2, w // 2), (0, 0), (h - 1, 0)]:
            box, _ = _gradient_box(probe, x, position, True, monkeypatch)
            assert box == field.slices(position, (size, size)), (name, position, field)
        if field.size[0] < size:
            _, everywhere = _gradient_box(probe, x, (h // 2, w // 2))
            assert everywhere, name  # the gate brings in global context
    rows = {row["path"]: row for row in intro.summary_rows()}
    assert rows[SE_LAYERS[family][0]]["receptive_field"].endswith("+global")
    # before the first gate, nothing is flagged
    assert intro.layer(intro.layer_paths[2]).global_context is None


def test_raw_keras_ops_between_layers_keep_fields():
    """ConvNeXt adds its residuals with `x + y` on tensors and MobileNetV3 builds its
    hard sigmoid from `x + 3` and `* (1 / 6)`: fields run through both."""
    size = 32
    convnext = keras.applications.ConvNeXtTiny(
        weights=None, include_top=False, input_shape=(size, size, 3)
    )
    intro = ki.Introspector(convnext)
    spatial = [
        i for i in intro.layers if isinstance(i.output_shape, tuple) and len(i.output_shape) == 4
    ]
    assert all(i.receptive_field is not None for i in spatial), [
        (i.path, i.receptive_field_reason) for i in spatial if i.receptive_field is None
    ][:3]
    x = np.random.default_rng(1).uniform(0, 255, (2, size, size, 3)).astype("float32")
    for name in (
        "convnext_tiny_stage_0_block_2_depthwise_conv",
        "convnext_tiny_stage_1_block_1_depthwise_conv",
    ):
        probe = keras.Model(convnext.inputs, convnext.get_layer(name).output)
        h, w = probe.output_shape[1:3]
        for position in [(h // 2, w // 2), (0, w - 1)]:
            box, _ = _gradient_box(probe, x, position)
            assert box == intro.receptive_field(name).slices(position, (size, size)), name
    mobile = keras.applications.MobileNetV3Small(
        weights=None, include_top=False, input_shape=(size, size, 3)
    )
    infos = ki.Introspector(mobile).layers
    # the gates are `relu6(x + 3) * (1 / 6)` on tensors, broadcast over the feature map
    # (at 32 x 32 the last three maps are 1 x 1: nothing is broadcast there)
    gated = [
        i for i in infos if i.name.endswith("squeeze_excite_mul") and i.spatial_shape != (1, 1)
    ]
    assert len(gated) == 6
    assert all(i.receptive_field is not None and i.global_context for i in gated)


def _permuted(size, transpose_op=False):
    x = keras.Input((*size, 1))
    h = conv(2, 3, name="first")(x)
    h = keras.ops.transpose(h, (0, 2, 1, 3)) if transpose_op else L.Permute((2, 1, 3))(h)
    h = conv(2, (3, 1), strides=(2, 1), name="last")(h)
    return keras.Model(x, h)


@pytest.mark.parametrize("transpose_op", [False, True])
def test_permuted_spatial_axes_are_tracked(transpose_op):
    """After a Permute (or keras.ops.transpose) the layer's first axis runs along the
    input's columns: the field says so, and its slices equal the gradient support."""
    keras.utils.set_random_seed(2)
    size = (13, 10)
    model = _permuted(size, transpose_op)
    field = ki.Introspector(model).receptive_field("last")
    assert field.axes == (1, 0)
    # layer axis 0 (input columns): 3 + 2 = 5 wide, stride 2; axis 1 (rows): 3 tall
    assert field.extent == (3, 5) and field.in_input_order(field.stride) == (1, 2)
    out_h, out_w = model.output_shape[1:3]
    x = np.random.default_rng(0).uniform(0.5, 1, (1, *size, 1)).astype("float32")
    for position in [(0, 0), (out_h // 2, out_w // 2), (out_h - 1, out_w - 1)]:
        box, _ = _gradient_box(model, x, position)
        assert box == field.slices(position, size), position


def test_augmentation_layers_pass_fields_on():
    """Kaggle-style heads start with augmentation, the identity at inference: the
    backbone behind it keeps its fields."""
    x = keras.Input((16, 16, 3))
    h = L.RandomFlip("horizontal", name="flip")(x)
    h = L.RandomRotation(0.1, name="rotate")(h)
    h = conv(2, 3, name="last")(h)
    intro = ki.Introspector(keras.Model(x, h))
    assert intro.receptive_field("last") == ReceptiveField((3, 3), (1, 1), (0, 0))
    assert L.RandomFlip()(np.ones((1, 4, 4, 3)), training=False).numpy().min() == 1
