"""Receptive fields of 1-D and 3-D models, flat inputs and free input sizes (issue 22).

Every field is checked against the brute-force support of the input gradient
of one unit, as `test_receptive_field.py` does in 2-D: with positive weights
and inputs, no path cancels, so the bounding box of the non-zero gradient is
exactly the field (clipped to the input).
"""

import itertools

import keras
import numpy as np
import pytest
from field_models import chain, conv, gradient_box

import keras_introspect as ki
from keras_introspect.model.receptive_field import ReceptiveField

L = keras.layers


ONE_D = {
    "valid stride 2": lambda n: chain(
        (n, 1), [conv(1, 2, 3, strides=2), conv(1, 1, 3, name="last")]
    ),
    "same stride 2": lambda n: chain(
        (n, 1),
        [conv(1, 2, 4, strides=2, padding="same"), conv(1, 1, 3, padding="same", name="last")],
    ),
    "dilated and causal": lambda n: chain(
        (n, 1),
        [conv(1, 2, 3, dilation_rate=2, padding="causal"), conv(1, 1, 2, name="last")],
    ),
    "pool, pad and crop": lambda n: chain(
        (n, 1),
        [
            L.ZeroPadding1D((2, 1)),
            conv(1, 2, 5),
            L.AveragePooling1D(3, strides=2, padding="same"),
            L.Cropping1D((1, 0)),
            conv(1, 1, 3, strides=2, name="last"),
        ],
    ),
    "upsampled": lambda n: chain(
        (n, 1),
        [
            conv(1, 2, 3, strides=2),
            L.UpSampling1D(3),
            conv(1, 2, 4),
            conv(1, 1, 2, strides=2, name="last"),
        ],
    ),
    "flat input reshaped": lambda n: chain(
        (n,),
        [L.Reshape((n, 1)), conv(1, 2, 5, strides=2), conv(1, 1, 3, name="last")],
    ),
    "flat input as frames of 2": lambda n: chain(
        (n,),
        [L.Rescaling(2.0), L.Reshape((n // 2, 2)), conv(1, 2, 3), conv(1, 1, 2, name="last")],
    ),
}


def unet(shape):
    """Encoder, nearest upsampling back, a skip connection concatenated."""
    rank = len(shape) - 1
    up = {1: L.UpSampling1D, 2: L.UpSampling2D, 3: L.UpSampling3D}[rank]
    x = keras.Input(shape)
    skip = conv(rank, 2, 3, padding="same", name="skip")(x)
    h = conv(rank, 2, 3, strides=2, padding="same")(skip)
    h = conv(rank, 2, 3, padding="same")(h)
    h = up(2)(h)
    h = L.Concatenate(name="cat")([h, skip])
    return keras.Model(x, conv(rank, 1, 3, padding="same", name="last")(h))


THREE_D = {
    "upsampled": lambda s: chain(
        (*s, 1),
        [conv(3, 2, 2, strides=2), L.UpSampling3D((2, 1, 3)), conv(3, 1, (3, 2, 2), name="last")],
    ),
    "same stride 2": lambda s: chain(
        (*s, 1),
        [conv(3, 2, 3, strides=2, padding="same"), conv(3, 1, (3, 1, 2), name="last")],
    ),
    "anisotropic strides and dilation": lambda s: chain(
        (*s, 1),
        [
            conv(3, 2, (2, 3, 1), strides=(1, 2, 1)),
            conv(3, 2, 2, dilation_rate=(2, 1, 3)),
            conv(3, 1, 2, name="last"),
        ],
    ),
    "pool, pad and crop": lambda s: chain(
        (*s, 1),
        [
            L.ZeroPadding3D(((1, 0), (2, 1), (0, 2))),
            conv(3, 2, 3),
            L.AveragePooling3D(2),
            L.Cropping3D(((0, 1), (1, 0), (1, 1))),
            conv(3, 1, 2, name="last"),
        ],
    ),
}


def corners(shape):
    """The first, middle and last unit of a grid."""
    return sorted({tuple(p) for p in itertools.product(*[(0, n // 2, n - 1) for n in shape])})


@pytest.mark.parametrize("name", list(ONE_D))
@pytest.mark.parametrize("length", [30, 34])
def test_1d_field_equals_nonzero_gradient_region(name, length):
    keras.utils.set_random_seed(1)
    model = ONE_D[name](length)
    field = ki.Introspector(model).receptive_field("last", strict=True)
    assert len(field.size) == 1
    x = np.random.default_rng(0).uniform(0.5, 1.0, (1, *model.input_shape[1:]))
    for position in corners(model.output_shape[1:-1]):
        expected = gradient_box(model, x.astype("float32"), position)
        assert field.slices(position, (length,)) == expected, (name, position, field)


@pytest.mark.parametrize("name", list(THREE_D))
def test_3d_field_equals_nonzero_gradient_region(name):
    keras.utils.set_random_seed(1)
    size = (9, 12, 11)
    model = THREE_D[name](size)
    field = ki.Introspector(model).receptive_field("last", strict=True)
    assert len(field.size) == 3
    x = np.random.default_rng(0).uniform(0.5, 1.0, (1, *size, 1)).astype("float32")
    for position in corners(model.output_shape[1:-1]):
        assert field.slices(position, size) == gradient_box(model, x, position), (name, position)


def test_hand_worked_values_in_1d_and_3d():
    signal = chain(
        (64, 1),
        [
            L.Conv1D(1, 7, strides=2, padding="same"),  # 7 /2, pad 2 -> offset -2
            L.MaxPooling1D(3, strides=2, padding="same"),  # 7 + 2*2 = 11 /4, pad 0
            L.Conv1D(1, 3, dilation_rate=2, name="last"),  # 11 + 4*4 = 27 /4
        ],
    )
    assert ki.Introspector(signal).receptive_field("last") == ReceptiveField((27,), (4,), (-2,))
    volume = chain(
        (16, 16, 8, 1),
        [
            L.Conv3D(1, (3, 3, 1), strides=(2, 2, 1)),  # (3, 3, 1) /(2, 2, 1)
            L.MaxPooling3D((2, 2, 2)),  # (5, 5, 2) /(4, 4, 2)
            L.ZeroPadding3D((1, 0, 0)),
            L.Conv3D(1, 3, name="last"),  # (13, 13, 6) /(4, 4, 2), offset -4 on axis 0
        ],
    )
    assert ki.Introspector(volume).receptive_field("last") == ReceptiveField(
        (13, 13, 6), (4, 4, 2), (-4, 0, 0)
    )


def test_flat_input_fields_and_what_mixes_a_vector():
    """A flat input `(n, L)` is one axis of positions: a Reshape to `(L / C, C)` is a
    window of C with stride C; layers that mix the vector end the field."""
    model = chain((12,), [L.Reshape((4, 3), name="frames"), L.Conv1D(1, 2, name="last")])
    intro = ki.Introspector(model)
    assert intro.receptive_field(0) == ReceptiveField((1,), (1,), (0,))
    assert intro.receptive_field("frames") == ReceptiveField((3,), (3,), (0,))
    assert intro.receptive_field("last") == ReceptiveField((6,), (3,), (0,))
    for layer, reason in [
        (L.Dense(12, name="mix"), "acts on a vector"),
        (L.UnitNormalization(name="mix"), "mixes the positions of a vector"),
        (L.Softmax(name="mix"), "mixes the positions of a vector"),
        (L.Reshape((2, 2, 3), name="mix"), "reshapes away the spatial grid"),
    ]:
        intro = ki.Introspector(chain((12,), [layer]))
        assert intro.receptive_field("mix") is None
        assert reason in intro.layer("mix").receptive_field_reason
    # element-wise layers on the vector keep its field
    kept = ki.Introspector(chain((12,), [L.Rescaling(0.5), L.Dropout(0.1, name="drop")]))
    assert kept.receptive_field("drop") == ReceptiveField((1,), (1,), (0,))


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_free_size_fields_are_computed_per_input_size(rank):
    """'Same' padding with a stride pads by an amount that depends on the size: the
    table has no field, `input_size=` gives the field of that size, which equals the
    gradient support, each size analysed once."""
    keras.utils.set_random_seed(3)
    model = chain(
        (*(None,) * rank, 1),
        [
            conv(rank, 2, 3, strides=2, padding="same"),
            conv(rank, 1, 3, padding="same", name="last"),
        ],
    )
    intro = ki.Introspector(model)
    assert intro.receptive_field("last") is None
    assert "input_size=" in intro.layer("last").receptive_field_reason
    with pytest.raises(ValueError, match="has no receptive field: 'same' padding"):
        intro.receptive_field("last", strict=True)
    before = len(intro.session.compiled)
    for n in (10, 11):
        size = (n,) * rank
        field = intro.receptive_field("last", input_size=size)
        assert field.size == (7,) * rank and field.stride == (2,) * rank
        # 'same' with stride 2 and k = 3 pads (n + 1) % 2 before: 0 at 10, 1 at 11
        assert field.offset == (-2 - (n % 2),) * rank
        x = np.random.default_rng(0).uniform(0.5, 1.0, (1, *size, 1)).astype("float32")
        out = model(x).shape[1:-1]
        for position in corners(out)[:4]:
            assert field.slices(position, size) == gradient_box(model, x, position)
    assert intro.receptive_field("last", input_size=(10,) * rank).offset == (-2,) * rank
    assert len(intro.session.compiled) == before + 2  # one analysis per size, cached


def test_input_size_is_checked():
    fixed = ki.Introspector(chain((12, 1), [L.Conv1D(1, 3, name="last")]))
    assert fixed.receptive_field("last", input_size=(12,)) == fixed.receptive_field("last")
    with pytest.raises(ValueError, match=r"fixed input size \(12,\)"):
        fixed.receptive_field("last", input_size=(13,))
    with pytest.raises(ValueError, match="Expected `input_size` with 1 positive int"):
        fixed.receptive_field("last", input_size=(12, 12))


@pytest.mark.parametrize("shape", [(24, 1), (12, 10, 1), (8, 6, 10, 1)])
def test_upsampled_decoder_fields_equal_nonzero_gradient_region(shape):
    """After nearest upsampling a field is periodic (two neighbours see the same
    units); through a skip connection it is the union, still exact."""
    keras.utils.set_random_seed(2)
    model = unet(shape)
    field = ki.Introspector(model).receptive_field("last", strict=True)
    size = shape[:-1]
    x = np.random.default_rng(0).uniform(0.5, 1.0, (1, *shape)).astype("float32")
    for position in [*corners(model.output_shape[1:-1]), tuple(n // 2 + 1 for n in size)]:
        assert field.slices(position, size) == gradient_box(model, x, position), position


def test_upsampling_hand_worked_and_bilinear_undefined():
    model = chain((16, 1), [L.Conv1D(1, 3, strides=2), L.UpSampling1D(2, name="up")])
    field = ki.Introspector(model).receptive_field("up")
    # units 2q and 2q + 1 both see conv unit q: pixels 2q .. 2q + 2
    assert field.phases == (((0, 3), (0, 3)),)
    assert (field.size, field.stride, field.offset) == ((3,), (1,), (0,))
    assert [field.bounds((i,)) for i in range(4)] == [((0, 3),), ((0, 3),), ((2, 5),), ((2, 5),)]
    assert field.center((2,)) == (3.0,) and field.center((2.5,)) == (3.0,)
    assert "phases=" in repr(field)
    lanczos = chain((8, 8, 1), [L.UpSampling2D(2, interpolation="lanczos3", name="up")])
    reason = ki.Introspector(lanczos).layer("up").receptive_field_reason
    assert reason == (
        "UpSampling2D up interpolates (lanczos3) between positions with a kernel that has no rule"
    )
