"""Receptive fields through transposed convolutions and interpolating upsampling.

Each field is checked against the brute-force support of one unit's input
gradient (positive weights and inputs: no path cancels, so the bounding box of
the non-zero gradient is the field, clipped to the input), on every unit of
small models in 1-D, 2-D and 3-D, for every phase of the period.
"""

import itertools
from fractions import Fraction

import keras
import numpy as np
import pytest
from field_models import chain, gradient_box, positive

import keras_introspect as ki
from keras_introspect.model.receptive_field import ReceptiveField

L = keras.layers
TRANSPOSED = {1: L.Conv1DTranspose, 2: L.Conv2DTranspose, 3: L.Conv3DTranspose}


def compare(model, positions=None):
    """`(field, [(position, reported slices, gradient box)])` for the layer 'last'."""
    keras.utils.set_random_seed(0)
    field = ki.Introspector(model).receptive_field("last", strict=True)
    size = model.input_shape[1:-1]
    out = model.output_shape[1:-1]
    if positions is None:
        positions = list(itertools.product(*[range(n) for n in out]))
    x = np.random.default_rng(0).uniform(0.5, 1.0, (1, *model.input_shape[1:]))
    boxes = [gradient_box(model, x.astype("float32"), p) for p in positions]
    return field, [(p, field.slices(p, size), b) for p, b in zip(positions, boxes, strict=True)]


def contains(outer, inner) -> bool:
    return all(o.start <= i.start and i.stop <= o.stop for o, i in zip(outer, inner, strict=True))


# ------------------------------------------------------ transposed convolutions
# (kernel, stride, padding, output_padding); after a valid conv with kernel 3 and
# stride 2 on 9 positions (4 units that see pixels 0..8: no edge unit reads a
# missing unit that would reach into the input, so every unit is exact).
TRANSPOSED_CASES = [
    (3, 2, "valid", None),
    (4, 2, "valid", None),
    (4, 3, "valid", 1),
    (3, 1, "same", None),
    (4, 2, "same", None),
    (5, 3, "same", None),
    (3, 2, "same", 1),
    (5, 2, "same", 1),
]


@pytest.mark.parametrize("kernel, stride, padding, output_padding", TRANSPOSED_CASES)
def test_1d_transposed_conv_fields_equal_the_gradient_support(
    kernel, stride, padding, output_padding
):
    model = chain(
        (9, 1),
        [
            positive(L.Conv1D, 2, 3, strides=2),
            positive(
                L.Conv1DTranspose,
                1,
                kernel,
                strides=stride,
                padding=padding,
                output_padding=output_padding,
                name="last",
            ),
        ],
    )
    field, rows = compare(model)
    n_in = 4
    for position, reported, box in rows:
        if box is None:
            # output padding adds units past the last input unit's window: they
            # read no input (only the bias); their field is that of the missing unit
            assert output_padding and position[0] >= (n_in - 1) * stride + kernel
            continue
        assert reported == box, (position, field)


def test_2d_and_3d_transposed_conv_fields_equal_the_gradient_support():
    image = chain(
        (9, 7, 1),
        [
            positive(L.Conv2D, 2, 3, strides=(2, 1)),
            positive(L.Conv2DTranspose, 2, (3, 4), strides=(2, 3), padding="same"),
            positive(L.Conv2D, 1, 2, name="last"),
        ],
    )
    volume = chain(
        (9, 5, 7, 1),
        [
            positive(L.Conv3D, 2, 3, strides=(2, 1, 2)),
            positive(L.Conv3DTranspose, 1, (4, 2, 3), strides=(2, 2, 1), name="last"),
        ],
    )
    for model in (image, volume):
        field, rows = compare(model)
        assert field.phases is not None
        for position, reported, box in rows:
            assert reported == box, (model.name, position, field)


def test_transposed_conv_hand_worked_values():
    # stride 2, kernel 3, 'same' (pad (3 - 2) // 2 = 0): output 2q reads input units
    # q - 1 (tap 2) and q (tap 0); output 2q + 1 reads q (tap 1)
    model = chain((8, 1), [L.Conv1DTranspose(1, 3, strides=2, padding="same", name="last")])
    field = ki.Introspector(model).receptive_field("last")
    assert field.phases == (((-1, 1), (0, 1)),)
    assert field.stride == (Fraction(1, 2),) and field.size == (2,) and field.offset == (-1,)
    assert [field.bounds((j,))[0] for j in range(4)] == [(-1, 1), (0, 1), (0, 2), (1, 2)]
    # stride 1: an ordinary window read backwards, kernel 3 -> units j - 2 .. j
    plain = chain((8, 8, 1), [L.Conv2DTranspose(1, 3, name="last")])
    assert ki.Introspector(plain).receptive_field("last") == ReceptiveField(
        (3, 3), (1, 1), (-2, -2)
    )


def test_transposed_conv_edge_units_contain_their_support():
    """On 10 positions the strided conv leaves pixel 9 unseen; the transposed conv's
    last units read a conv unit past the edge, which would see it: their fields
    are wider than the support there, never narrower."""
    model = chain(
        (10, 1),
        [
            positive(L.Conv1D, 2, 3, strides=2),
            positive(L.Conv1DTranspose, 1, 4, strides=2, name="last"),
        ],
    )
    _, rows = compare(model)
    wider = [p for p, reported, box in rows if reported != box]
    assert all(contains(reported, box) for _, reported, box in rows)
    assert wider == [(8,), (9,)]
    assert all(box[0].stop == 9 for p, _, box in rows if p in wider)


def test_transposed_conv_whose_units_read_nothing_has_no_field():
    model = chain((8, 1), [L.Conv1DTranspose(1, 1, strides=2, name="last")])
    reason = ki.Introspector(model).layer("last").receptive_field_reason
    assert "some output units read no input" in reason


# ----------------------------------------------------- interpolating upsampling
def exact_taps(u: int, j: int, cubic: bool) -> tuple:
    """Source units that output unit `j` of an upsampling by `u` interpolates, in
    exact arithmetic (half-pixel centres: the sample is at (j + 1/2) / u - 1/2)."""
    x = Fraction(2 * j + 1, 2 * u) - Fraction(1, 2)
    low = x.numerator // x.denominator
    if x == low:
        return low, low
    return (low - 1, low + 2) if cubic else (low, low + 1)


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_interpolated_upsampling_fields_match_the_gradient_support(interpolation):
    """Even factors (and every bicubic factor) are exact on every unit. Bilinear
    by an odd factor samples every `u`-th unit exactly on a source unit; float32
    can give a neighbour a ~1e-7 weight there, so the field counts it: on those
    units the field contains the support, elsewhere it equals it."""
    factors = (2, 3)
    model = chain(
        (8, 9, 1),
        [
            positive(L.Conv2D, 2, (2, 3), strides=(2, 3)),
            L.UpSampling2D(factors, interpolation=interpolation),
            positive(L.Conv2D, 1, 2, name="last"),
        ],
    )
    field, rows = compare(model)
    assert field.phases is not None
    for position, reported, box in rows:
        assert contains(reported, box), (position, field)
        # the last conv reads upsampled units i, i + 1; only odd-factor bilinear
        # units on a source unit may be wider
        exact_phase = [
            any(exact_taps(u, i, False)[0] == exact_taps(u, i, False)[1] for i in (p, p + 1))
            for u, p in zip(factors, position, strict=True)
        ]
        may_differ = interpolation == "bilinear" and exact_phase[1]
        if not may_differ:
            assert reported == box, (position, field)


def test_bilinear_upsampling_hand_worked_values():
    model = chain((8, 1, 1), [L.UpSampling2D((2, 1), interpolation="bilinear", name="last")])
    field = ki.Introspector(model).receptive_field("last")
    # unit 2q samples q - 1/4 (units q - 1, q), unit 2q + 1 samples q + 1/4 (q, q + 1)
    assert field.phases == (((-1, 1), (0, 2)), None)
    assert field.stride == (Fraction(1, 2), 1)
    assert field.center((3, 0)) == (1.5, 0.0)  # unit 3 sees units 1, 2
    # by 3: the middle unit samples a source unit exactly; float32's 1/3 is above
    # 1/3, so the neighbour it may weight is the next one
    three = chain((8, 1), [L.UpSampling1D(3)])
    bilinear = ki.Introspector(
        chain((8, 8, 1), [L.UpSampling2D(3, interpolation="bilinear", name="last")])
    ).receptive_field("last")
    assert bilinear.phases[0] == ((-1, 1), (0, 2), (0, 2))
    assert ki.Introspector(three).receptive_field(1).phases == (((0, 1), (0, 1), (0, 1)),)


def test_resizing_by_whole_factors_matches_the_gradient_support():
    for interpolation in ("nearest", "bilinear", "bicubic"):
        # 10 -> 8 units, then up by 2 rows and down by 4 columns
        model = chain(
            (10, 10, 1),
            [
                positive(L.Conv2D, 2, 3),
                L.Resizing(16, 2, interpolation=interpolation),
                positive(L.Conv2D, 1, 1, name="last"),
            ],
        )
        field, rows = compare(model)
        for position, reported, box in rows:
            assert reported == box, (interpolation, position, field)


def test_resampling_without_a_rule_says_why():
    def reason(layer, shape=(8, 8, 1)):
        return ki.Introspector(chain(shape, [layer])).layer("last").receptive_field_reason

    assert "not by a whole factor" in reason(L.Resizing(12, 8, name="last"))
    assert "crops or pads to an aspect ratio" in reason(
        L.Resizing(16, 8, crop_to_aspect_ratio=True, name="last")
    )
    assert "antialiasing" in reason(L.Resizing(4, 4, antialias=True, name="last"))
    assert "(lanczos3)" in reason(L.UpSampling2D(2, interpolation="lanczos3", name="last"))
    free = reason(L.Resizing(16, 16, name="last"), shape=(None, None, 1))
    assert "pass `input_size=`" in free
    free_model = chain((None, None, 1), [L.Resizing(16, 16, interpolation="nearest", name="last")])
    field = ki.Introspector(free_model).receptive_field("last", input_size=(8, 4))
    assert field.phases == (((0, 1), (0, 1)), ((0, 1),) * 4)


# ------------------------------------------------------- positions and centres
def test_positions_must_be_whole_and_centres_interpolate():
    field = ki.Introspector(
        chain((8, 1), [L.Conv1D(1, 3, strides=2), L.UpSampling1D(2, name="last")])
    ).receptive_field("last")
    assert field.bounds((np.int64(2),)) == ((2, 5),) == field.bounds((2.0,))
    with pytest.raises(ValueError, match="whole numbers"):
        field.bounds((2.5,))
    with pytest.raises(ValueError, match="whole numbers"):
        field.slices((1.5,), (8,))
    # units 0, 1 see pixels 0..2 (centre 1), units 2, 3 pixels 2..4 (centre 3)
    assert [field.center((p,))[0] for p in (0, 1, 1.5, 1.75, 2)] == [1.0, 1.0, 2.0, 2.5, 3.0]
    affine = ReceptiveField((5,), (2,), (-1,))
    assert affine.center((1.5,)) == (4.0,)  # -1 + 1.5 * 2 + (5 - 1) / 2


def test_layer_at_an_input_size_gives_shape_and_field():
    model = chain(
        (None, 1),
        [
            L.Conv1D(1, 3, strides=2, padding="same"),
            L.Conv1DTranspose(1, 3, strides=2, name="last"),
        ],
    )
    intro = ki.Introspector(model)
    at = intro.layer("last", input_size=(11,))
    # 'same' with stride 2 on 11 pads 1 before: conv unit q sees 2q - 1 .. 2q + 1
    assert at.spatial_shape == (13,) and at.receptive_field is not None
    assert at.receptive_field == intro.receptive_field("last", input_size=(11,))
    assert at.receptive_field.bounds((4,)) == ((1, 6),)  # conv units 1, 2
    assert intro.layer("last").receptive_field is None
    assert intro.layer("last", input_size=(11,)).path == "last"


def test_receptive_field_activation_maximization_refuses_periodic_fields():
    """Its patch is placed by `(p - unit) * stride`, which an upsampled layer's
    units do not follow: a clear error instead of a misplaced (or fractional) patch."""
    from keras_introspect.targets import Channel

    model = chain(
        (16, 16, 3),
        [L.Conv2D(2, 3, strides=2), L.UpSampling2D(2, name="up"), L.Conv2D(2, 3, name="last")],
    )
    with pytest.raises(ValueError, match="repeat with a period"):
        ki.ActivationMaximization(model, Channel("last", 0), receptive_field=True).generate()
