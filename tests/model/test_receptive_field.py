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
    transposed = chain((8, 8), [L.Conv2DTranspose(1, 3, name="up")])
    reason = ki.Introspector(transposed).layer("up").receptive_field_reason
    assert reason == "Conv2DTranspose up is a transposed convolution (fractional stride)"


def test_field_geometry_helpers():
    field = ReceptiveField(size=(5, 3), stride=(2, 2), offset=(-1, 0))
    assert field.bounds((3, 1)) == ((5, 10), (2, 5))
    assert field.slices((0, 0), (8, 8)) == (slice(0, 4), slice(0, 3))
    assert field.center((0, 0)) == (1.0, 1.0)
    with pytest.raises(ValueError, match="position"):
        field.bounds((1, 2, 3))
