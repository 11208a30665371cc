"""Receptive fields: which input pixels can influence one unit of a layer.

A field is propagated layer by layer from the model input with the standard
recurrence (Araujo et al., "Computing Receptive Fields of Convolutional Neural
Networks", Distill 2019). For a window layer with kernel `k`, dilation `d`,
stride `s` and `p` pixels of padding before the first position::

    size'   = size + (d * (k - 1)) * stride_in
    stride' = stride_in * s
    offset' = offset - p * stride_in

`offset` is the input coordinate of the first pixel of the field of unit 0
(negative when padding reaches outside the image). Unit `i` then covers
input pixels `offset + i * stride ... offset + i * stride + size - 1`.
Layers that mix every position (Flatten, Dense on vectors, global pooling)
have no field; `Undefined` carries the reason.

Upsampling makes the field periodic, not affine: nearest-neighbour
upsampling by `u` repeats each unit `u` times (unit `i` sees what unit
`i // u` saw); bilinear and bicubic upsampling (`UpSampling2D`, `Resizing`
by a whole factor) read the two or four source units around each sample,
and one where the sample falls on a source unit; a transposed convolution
with stride `s` (`Conv1DTranspose` to `Conv3DTranspose`, any padding) reads,
at output unit `q * s + r`, the input units `q + (r + p - m * d) / s` of its
taps `m` where that is whole. Each axis is kept as a period `P`, a jump `S`
per period and the bounds of the `P` units of one period (`phases`); every
rule maps such an axis to another (`P = 1` is the recurrence itself), so
fields stay exact through decoders, and a period that turns out affine (a
transposed convolution undoing a strided one) collapses back to `P = 1`.

Exactness. The field of a unit is the bounding box of the input pixels with a
non-zero gradient (positive weights, no cancelling paths), clipped to the
input: the tests check equality by brute force in 1-D, 2-D and 3-D. Like the
recurrence, the rules treat each layer's grid as unbounded: a unit at the
edge of a layer that reads positions past the edge (padding, a transposed
convolution's or an interpolation's border) is given the fields of those
missing units too. Where those reach into the input (a strided 'valid'
layer that leaves the last pixels unseen, cropping) an edge unit's field can
be wider than its support; it always contains it. Bilinear upsampling by an
odd factor samples some units exactly on a source unit; TensorFlow computes
that sample in float32 a rounding error off (the scale `1 / u` is not exact),
giving the neighbour on that side a weight near 1e-7, so the field counts that
neighbour (whether the rounding shows depends on the factor, the position and
the hardware).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from fractions import Fraction

from keras_introspect.model import _kinds as kinds


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of the units of one layer, per spatial axis.

    `size`, `stride` and `offset` are given per spatial axis *of the layer*
    (the order of its output); `axes` says which input axis each one runs
    along when a `Permute` reordered them. `bounds`, `slices` and `center`
    take a unit's position in the layer and answer in the input's order.

    Attributes:
        size: extent in input pixels, e.g. `(h, w)`.
        stride: distance in input pixels between neighbouring units (the jump).
        offset: input coordinate of the first pixel seen by unit `(0, 0)`;
            negative when the field starts in the padding.
        input_index: which model input the field refers to.
        axes: for each spatial axis of the layer, the input axis it runs
            along; `None` when they are in the input's order.
        global_context: `None`, or where the units also receive a summary of
            the whole input (a squeeze-and-excitation gate: a product with a
            globally pooled branch). The field is then the *local* field of
            the spatial path; that layer's gate adds context from everywhere.
        phases: `None`, or after upsampling (nearest, bilinear, bicubic) or a
            transposed convolution, per axis `None` or the `(start, stop)` of
            the units `0 .. P-1` of one period (unit `i + P` sees the field of
            unit `i` moved by `P * stride`). Then `size` is the largest
            extent, `stride` the mean distance (an int or a `Fraction`) and
            `offset` the start of unit 0: summaries, so `offset + i * stride`
            is *not* unit `i`'s start; `bounds`, `slices` and `center` are
            exact.

    Any rank: one value per spatial axis, `(l,)` for signals (and flat
    vectors reshaped inside the model), `(h, w)` for images, `(d, h, w)` for
    volumes.

    Example:
        >>> rf = ReceptiveField(size=(5, 5), stride=(2, 2), offset=(-1, -1))
        >>> rf.bounds((3, 0))
        ((5, 10), (-1, 4))
        >>> rf.slices((3, 0), input_size=(16, 16))
        (slice(5, 10, None), slice(0, 4, None))
        >>> ReceptiveField((5, 3), (2, 1), (0, 0), axes=(1, 0)).bounds((1, 0))
        ((0, 3), (2, 7))
    """

    size: tuple
    stride: tuple
    offset: tuple
    input_index: int = 0
    axes: tuple | None = None
    global_context: str | None = None
    phases: tuple | None = None

    def __repr__(self) -> str:
        text = (
            f"ReceptiveField(size={self.size}, stride={self.stride}, offset={self.offset}, "
            f"input_index={self.input_index}"
        )
        if self.axes is not None:
            text += f", axes={self.axes}"
        if self.global_context is not None:
            text += f", global_context={self.global_context!r}"
        if self.phases is not None:
            text += f", phases={self.phases}"
        return text + ")"

    def in_input_order(self, values) -> tuple:
        """Per-layer-axis `values` reordered to the input's axes."""
        values = tuple(values)
        if self.axes is None:
            return values
        out = [None] * len(values)
        for layer_axis, input_axis in enumerate(self.axes):
            out[input_axis] = values[layer_axis]
        return tuple(out)

    @property
    def extent(self) -> tuple:
        """`size` in the input's axis order (equal to `size` unless permuted)."""
        return self.in_input_order(self.size)

    def bounds(self, position) -> tuple:
        """Unclipped `(start, stop)` per input axis (stop exclusive) of a unit's field;
        `position` is the unit's index in the layer's output (whole numbers: a
        fractional one raises `ValueError`)."""
        position = _as_tuple(position, len(self.size), "position")
        return self.in_input_order(_at(*_axis(self, axis), p) for axis, p in enumerate(position))

    def slices(self, position, input_size) -> tuple:
        """Slices of the input (clipped to `input_size`) seen by the unit at `position`."""
        input_size = _as_tuple(input_size, len(self.size), "input_size")
        return tuple(
            slice(max(start, 0), min(stop, limit))
            for (start, stop), limit in zip(self.bounds(position), input_size, strict=True)
        )

    def center(self, position) -> tuple:
        """Input coordinates (floats, input order) of the centre of the field of the
        unit at `position`.

        At a whole position it is the field's middle, `(start + stop - 1) / 2`.
        A fractional position (a cluster's mean) is interpolated linearly between
        the centres of the two units around it, per axis: exact for an affine
        field, and piecewise linear through the phases of an upsampled one.
        """
        if len(position) != len(self.size):
            raise ValueError(
                f"Expected `position` with {len(self.size)} values. Received: position={position}"
            )
        if self.phases is None:
            return self.in_input_order(
                float(o + p * s + (n - 1) / 2)
                for o, p, s, n in zip(self.offset, position, self.stride, self.size, strict=True)
            )
        centres = []
        for axis, p in enumerate(position):
            low = math.floor(p)
            a, b = (sum(_at(*_axis(self, axis), i)) / 2 - 0.5 for i in (low, low + 1))
            centres.append(float(a + (p - low) * (b - a)))
        return self.in_input_order(centres)


@dataclass(frozen=True)
class Undefined:
    """Why a layer has no receptive field."""

    reason: str


def _whole(v, name: str, value) -> int:
    """`v` as an int; a fractional value is refused (never truncated)."""
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real) and float(v).is_integer():
        return int(v)
    raise ValueError(
        f"Expected `{name}` of whole numbers (a unit's index; `center` takes fractional "
        f"positions). Received: {name}={value}"
    )


def _as_tuple(value, n: int, name: str) -> tuple:
    if isinstance(value, numbers.Integral):
        value = (value,) * n
    value = tuple(_whole(v, name, value) for v in value)
    if len(value) != n:
        raise ValueError(f"Expected `{name}` with {n} values. Received: {name}={value}")
    return value


def _axis(field, axis: int) -> tuple:
    """`(P, S, phases)` of one axis: period, jump per period, bounds of one period."""
    phases = None if field.phases is None else field.phases[axis]
    if phases is None:
        o, n = field.offset[axis], field.size[axis]
        return 1, field.stride[axis], ((o, o + n),)
    return len(phases), int(field.stride[axis] * len(phases)), phases


def _at(period: int, jump: int, phases, i: int) -> tuple:
    """`(start, stop)` of unit `i` of a periodic axis."""
    q, r = divmod(int(i), period)
    start, stop = phases[r]
    return start + q * jump, stop + q * jump


def _reduce(period: int, jump: int, bounds) -> tuple:
    """The shortest period that describes the same units (period 1 when they are affine)."""
    for p in range(1, period):
        if period % p or (jump * p) % period:
            continue
        shift = jump * p // period
        if all(
            bounds[r + p] == (bounds[r][0] + shift, bounds[r][1] + shift) for r in range(period - p)
        ):
            return p, shift, tuple(bounds[:p])
    return period, jump, tuple(bounds)


def _with_axes(field, axes: list):
    """`field` with each axis replaced by a `(P, S, phases)` triple."""
    size, stride, offset, phases = [], [], [], []
    for period, jump, bounds in axes:
        period, jump, bounds = _reduce(period, jump, bounds)
        offset.append(bounds[0][0])
        size.append(max(stop - start for start, stop in bounds))
        quotient = Fraction(jump, period)
        stride.append(int(quotient) if quotient.denominator == 1 else quotient)
        phases.append(None if period == 1 else tuple(bounds))
    return dataclasses.replace(
        field,
        size=tuple(size),
        stride=tuple(stride),
        offset=tuple(offset),
        phases=None if all(p is None for p in phases) else tuple(phases),
    )


def _sample_axis(period: int, jump: int, phases, a: int, b: int, taps) -> tuple:
    """Axis after a layer whose output unit `q * a + r` reads the input units
    `q * b + taps[r][0]` to `q * b + taps[r][1]` (`r < a`).

    A window of stride `t` is `a = 1, b = t`; upsampling by `u` is `a = u, b = 1`
    (a transposed convolution too, with its stride). The field of a run of input
    units is the box around theirs; each repeats every `period` units, moved by
    `jump`, so the extremes lie within one period of the run's ends.
    """
    new_period = a * period // math.gcd(period, b)

    def run(first: int, last: int) -> tuple:
        starts = range(first, min(last, first + period - 1) + 1)
        stops = range(max(first, last - period + 1), last + 1)
        return (
            min(_at(period, jump, phases, i)[0] for i in starts),
            max(_at(period, jump, phases, i)[1] for i in stops),
        )

    bounds = tuple(
        run((j // a) * b + taps[j % a][0], (j // a) * b + taps[j % a][1]) for j in range(new_period)
    )
    return new_period, jump * (math.lcm(period, b) // period), bounds


def _map_axis(period: int, jump: int, phases, t: int, first: int, last: int) -> tuple:
    """Axis after a window: output unit `j` reads input units `j * t + first` to
    `j * t + last`."""
    return _sample_axis(period, jump, phases, 1, t, ((first, last),))


def input_field(n_spatial: int, input_index: int) -> ReceptiveField:
    """The field of the model input itself: every unit sees one pixel."""
    ones = (1,) * n_spatial
    return ReceptiveField(ones, ones, (0,) * n_spatial, input_index)


def model_input_field(shape, input_index: int):
    """The field of a model input of static `shape` (batch first).

    `(b, ..., C)`: one spatial axis per axis between batch and channels. A flat
    vector `(b, L)` counts as one axis of `L` positions without channels, so a
    signal reshaped from it inside the model (`Reshape((L, 1))`) keeps a field
    in the vector's coordinates.

    Example:
        >>> model_input_field((None, 1024), 0)
        ReceptiveField(size=(1,), stride=(1,), offset=(0,), input_index=0)
        >>> model_input_field((None,), 1)
        Undefined(reason='input 1 has no spatial axes')
    """
    rank = len(shape)
    if rank >= 3:
        return input_field(rank - 2, input_index)
    if rank == 2:
        return input_field(1, input_index)
    return Undefined(f"input {input_index} has no spatial axes")


# Layers that act on each position independently (at inference time).
_POINTWISE = {
    "InputLayer",
    "Activation",
    "ReLU",
    "LeakyReLU",
    "PReLU",
    "ELU",
    "ThresholdedReLU",
    "BatchNormalization",
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "Rescaling",
    "Normalization",
    "Identity",
    "ActivityRegularization",
    "Masking",
    "UnitNormalization",
    # keras.applications' own per-position layers (ConvNeXt): a per-channel
    # scale, and residual-branch dropping (identity at inference)
    "LayerScale",
    "StochasticDepth",
    # augmentation: the identity at inference (checked on Keras 3.x: each returns its
    # input with training=False; a changed shape is caught below)
    "RandomFlip",
    "RandomRotation",
    "RandomTranslation",
    "RandomZoom",
    "RandomContrast",
    "RandomBrightness",
    "RandomSaturation",
    "RandomHue",
    "RandomSharpness",
    "RandomGrayscale",
    "RandomColorJitter",
    "RandomColorDegeneration",
    "RandomShear",
    "RandomPerspective",
    "RandomElasticTransform",
    "RandomInvert",
    "RandomGaussianBlur",
    "RandomErasing",
    "Solarization",
}
_MERGE = kinds.MERGE
_CONV = kinds.CONV
_POOL = kinds.POOL
# Layers after which no output unit has a local field.
_MIXING = {
    "Flatten": "flattens all positions into one vector",
    "GroupNormalization": "normalises over all positions",
}
_MIXING.update(dict.fromkeys(kinds.GLOBAL_POOL, "pools over all positions"))
_TRANSPOSED = kinds.TRANSPOSED_CONV
_PADDING = {"ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D"}
_CROPPING = {"Cropping1D", "Cropping2D", "Cropping3D"}
_UPSAMPLING = {"UpSampling1D", "UpSampling2D", "UpSampling3D"}


# Per-position layers that still mix the last axis: pointwise on a feature map
# (they act on the channels), mixing on a flat vector (its last axis is the positions).
_MIXES_LAST_AXIS = {"UnitNormalization", "Masking", "Softmax", "LayerNormalization", "Dense"}

# Every class name some rule below handles.
_RULED = frozenset(
    _POINTWISE
    | _MERGE
    | _CONV
    | _POOL
    | _PADDING
    | _CROPPING
    | _UPSAMPLING
    | _TRANSPOSED
    | set(_MIXING)
    | {"Dense", "Softmax", "LayerNormalization", "Permute", "Reshape", "Resizing"}
)

# keras.ops operations (nodes of a Functional graph that are not layers) that act
# on each position alone: unary functions and broadcasting arithmetic. `x + 3.0`
# and `layers.ReLU(6.0)(x + 3.0) * (1 / 6)` (MobileNetV3's hard sigmoid) are such.
_SAME_NAME = {
    "Maximum",
    "Minimum",
    "Abs",
    "Square",
    "Sqrt",
    "Exp",
    "Log",
    "Tanh",
    "Sign",
    "Relu",
    "Relu6",
    "Sigmoid",
    "Softplus",
    "Softsign",
    "Elu",
    "Selu",
    "LeakyRelu",
}
ELEMENTWISE_OPS = frozenset(
    _SAME_NAME
    | {
        "Add",
        "Subtract",
        "Multiply",
        "Divide",
        "TrueDivide",
        "Power",
        "Negative",
        "Absolute",
        "Clip",
        "Cast",
        "HardSigmoid",
        "HardSilu",
        "Silu",
        "Gelu",
    }
)
# The same, as TensorFlow op types (what a traced forward pass records).
ELEMENTWISE_TF_OPS = frozenset(
    _SAME_NAME | {"AddV2", "Add", "Sub", "Mul", "RealDiv", "Div", "Pow", "Neg", "ClipByValue"}
)


def _kind(layer) -> str | None:
    """The first class name in the MRO that a rule exists for."""
    for cls in type(layer).__mro__:
        name = cls.__name__
        if name in _RULED:
            return name
    return None


def _spatial(shape, data_format: str) -> tuple:
    return tuple(shape[2:]) if data_format == "channels_first" else tuple(shape[1:-1])


def _pad_before(padding: str, size_in, kernel: int, stride: int, layer_name: str):
    if padding == "valid":
        return 0
    if padding == "causal":
        return kernel - 1
    if stride == 1:
        return (kernel - 1) // 2
    if size_in is None:
        return Undefined(
            f"'same' padding with stride {stride} in {layer_name} depends on the "
            "input size, which is not fixed; pass `input_size=` to receptive_field"
        )
    size_out = math.ceil(size_in / stride)
    return max((size_out - 1) * stride + kernel - size_in, 0) // 2


def _window(field, layer, kernel, strides, dilation, padding, in_shape):
    data_format = getattr(layer, "data_format", "channels_last") or "channels_last"
    sizes_in = _spatial(in_shape, data_format)
    n = len(field.size)
    if len(kernel) != n:
        return Undefined(f"{layer.name} has {len(kernel)} spatial axes, its input {n}")
    axes = []
    for axis in range(n):
        k_eff = dilation[axis] * (kernel[axis] - 1) + 1
        pad = _pad_before(padding, sizes_in[axis], k_eff, strides[axis], layer.name)
        if isinstance(pad, Undefined):
            return pad
        axes.append(_map_axis(*_axis(field, axis), strides[axis], -pad, k_eff - 1 - pad))
    return _with_axes(field, axes)


def _float32_above(u: int) -> bool:
    """Whether `1 / u` rounded to float32 (the scale TensorFlow's resize uses) is
    above `1 / u`: then a sample that falls exactly on a source unit is computed a
    rounding error past it."""
    import numpy as np

    return Fraction(float(np.float32(1) / np.float32(u))) > Fraction(1, u)


def _resize_taps(interpolation: str, a: int, b: int) -> tuple | None:
    """Per phase `r < a`, the first and last input unit (relative to `q * b`) that
    output unit `q * a + r` reads when a grid is resized by `a / b` (`a` or `b`
    is 1) with half-pixel centres, as `tf.image.resize` does: the sample sits at
    `x = (j + 1/2) * b / a - 1/2`. Nearest reads `floor(x + 1/2)`; bilinear
    `floor(x)` and the next (only `x` where it is a whole number); bicubic
    `floor(x) - 1` to `floor(x) + 2` (only `x`, likewise). `None`: no rule.

    A bilinear sample that is a whole number in exact arithmetic is computed in
    float32 as `x` plus or minus a rounding error when upsampling by an odd
    factor (the scale `1 / a` is not exact), which gives the neighbour on that
    side a weight of about 1e-7: that neighbour is counted (the field contains
    the gradient's support; it is one unit wider than the exact arithmetic at
    those phases). Bicubic weights come from a table and stay exact.
    """
    taps = []
    for r in range(a):
        x = Fraction(2 * r + 1, 2 * a) * b - Fraction(1, 2)
        low = math.floor(x)
        whole = x == low
        if interpolation == "nearest":
            first = last = math.floor(x + Fraction(1, 2))
        elif interpolation == "bilinear":
            first, last = low, low + 1
            if whole:
                first = last = low
                if a > 1 and a % 2:  # float32 noise: see above
                    first, last = (low, low + 1) if _float32_above(a) else (low - 1, low)
        elif interpolation == "bicubic":
            first, last = (low, low) if whole else (low - 1, low + 2)
        else:
            return None
        taps.append((first, last))
    return tuple(taps)


def _resampled(field, layer, factors, interpolation):
    """Field after resizing each axis by `factors` (`(a, b)`: `b` input units
    become `a` output units; one of them is 1)."""
    axes = []
    for axis, (a, b) in enumerate(factors):
        taps = _resize_taps(interpolation, a, b)
        if taps is None:
            return Undefined(
                f"{type(layer).__name__} {layer.name} interpolates ({interpolation}) "
                "between positions with a kernel that has no rule"
            )
        axes.append(_sample_axis(*_axis(field, axis), a, b, taps))
    return _with_axes(field, axes)


def _upsample(field, layer, factors):
    """Field after upsampling by whole factors: nearest (unit `i` is unit `i // u`
    repeated), bilinear or bicubic (the neighbours each unit interpolates)."""
    factors = _as_tuple(factors, len(field.size), "size")
    interpolation = getattr(layer, "interpolation", "nearest")
    return _resampled(field, layer, [(u, 1) for u in factors], interpolation)


def _resizing(field, layer, in_shape):
    """Field after `keras.layers.Resizing` to a whole multiple (or a whole
    fraction) of a fixed input size, without antialiasing or aspect-ratio fitting."""
    data_format = getattr(layer, "data_format", "channels_last") or "channels_last"
    sizes_in = _spatial(in_shape, data_format)
    what = f"Resizing {layer.name}"
    if len(field.size) != 2 or len(sizes_in) != 2:
        return Undefined(f"{what} resizes a grid that is not 2-D")
    if any(getattr(layer, f"{how}_to_aspect_ratio", False) for how in ("crop", "pad")):
        return Undefined(f"{what} crops or pads to an aspect ratio")
    if None in sizes_in:
        return Undefined(
            f"{what} resamples by a factor that depends on the input size, which is not "
            "fixed; pass `input_size=` to receptive_field"
        )
    factors = []
    for n_in, n_out in zip(sizes_in, (layer.height, layer.width), strict=True):
        if n_out % n_in and n_in % n_out:
            return Undefined(
                f"{what} resamples {n_in} to {n_out} positions (not by a whole factor)"
            )
        factors.append((n_out // n_in, 1) if n_out >= n_in else (1, n_in // n_out))
    if getattr(layer, "antialias", False) and any(b > 1 for _, b in factors):
        return Undefined(f"{what} downsamples with antialiasing (a wider kernel)")
    return _resampled(field, layer, factors, layer.interpolation)


def _transposed(field, layer):
    """Field after a transposed convolution.

    TensorFlow computes it as the gradient of a convolution with the same
    kernel, stride `s`, dilation `d` and padding: output unit `j` receives input
    unit `i` through tap `m` where `j = i * s + m * d - p`, `p` the padding
    before of that convolution ('valid': 0; 'same': half the excess of the
    window, which does not depend on the size). So output unit `q * s + r` reads
    the input units `q + (r + p - m * d) / s` for the taps where that is whole.
    """
    n = len(field.size)
    kernel, strides, dilation = layer.kernel_size, layer.strides, layer.dilation_rate
    if len(kernel) != n:
        return Undefined(f"{layer.name} has {len(kernel)} spatial axes, its input {n}")
    output_padding = getattr(layer, "output_padding", None)
    axes = []
    for axis in range(n):
        s, d = strides[axis], dilation[axis]
        k_eff = d * (kernel[axis] - 1) + 1
        pad = 0
        if layer.padding == "same":
            if output_padding is None:
                pad = max(k_eff - s, 0) // 2
            else:
                pad = max(k_eff - k_eff % 2 - output_padding[axis], 0) // 2
        taps = []
        for r in range(s):
            read = [
                (r + pad - m * d) // s for m in range(kernel[axis]) if (r + pad - m * d) % s == 0
            ]
            if not read:
                return Undefined(
                    f"{type(layer).__name__} {layer.name}: some output units read no input "
                    f"(kernel {kernel[axis]} with dilation {d} and stride {s})"
                )
            taps.append((min(read), max(read)))
        axes.append(_sample_axis(*_axis(field, axis), s, 1, taps))
    return _with_axes(field, axes)


def _pairs(value, n: int) -> list:
    """ZeroPadding/Cropping `padding`/`cropping` attribute as n (before, after) pairs."""
    if isinstance(value, int):
        return [(value, value)] * n
    value = list(value)
    if n == 1 and len(value) == 2 and all(isinstance(v, int) for v in value):
        return [tuple(value)]
    return [(v, v) if isinstance(v, int) else tuple(v) for v in value]


def _union(fields: list):
    first = fields[0]
    if any(f.input_index != first.input_index for f in fields):
        return Undefined("combines several model inputs")
    if any(f.stride != first.stride for f in fields):
        return Undefined("combines branches with different strides")
    if any(f.axes != first.axes for f in fields):
        return Undefined("combines branches whose spatial axes are in different orders")
    context = next((f.global_context for f in fields if f.global_context), None)
    if any(f.phases is not None for f in fields):
        axes = []
        for a in range(len(first.size)):
            period = math.lcm(*(_axis(f, a)[0] for f in fields))
            jump = int(first.stride[a] * period)
            bounds = []
            for i in range(period):
                each = [_at(*_axis(f, a), i) for f in fields]
                bounds.append((min(b[0] for b in each), max(b[1] for b in each)))
            axes.append((period, jump, tuple(bounds)))
        return dataclasses.replace(_with_axes(first, axes), global_context=context)
    starts = [min(f.offset[a] for f in fields) for a in range(len(first.size))]
    stops = [max(f.offset[a] + f.size[a] for f in fields) for a in range(len(first.size))]
    size = tuple(stop - start for start, stop in zip(starts, stops, strict=True))
    return dataclasses.replace(first, size=size, offset=tuple(starts), global_context=context)


def _aligned_spatial(shape, rank: int) -> tuple:
    """The spatial dims of `shape` broadcast (numpy rules) against a channels-last
    tensor of `rank`: missing leading axes count as 1."""
    shape = (1,) * (rank - len(shape)) + tuple(shape)
    return tuple(shape[1:-1])


def combine(name: str, in_fields: list, in_shapes: list, out_shape):
    """Field of an element-wise combination (a merge layer, or `x * y` on tensors).

    An input whose spatial axes are all 1 while the output's are not is
    broadcast over every position: a gate such as squeeze-and-excitation's
    `x * sigmoid(dense(mean(x)))`. It adds *global context*, not a local
    field: the output keeps the local field of its spatial inputs, marked
    with `global_context`. Inputs that are not tensors (`x + 3.0`) are not in
    `in_fields`.
    """
    rank = len(out_shape)
    out_spatial = tuple(out_shape[1:-1])
    local, context = [], None
    for field, shape in zip(in_fields, in_shapes, strict=True):
        spatial = _aligned_spatial(shape, rank) if rank >= 3 else ()
        if spatial != out_spatial and all(d == 1 for d in spatial):
            context = f"{name} combines it with a branch that sees the whole input"
            continue
        if field is None:
            return Undefined(f"an input of {name} comes from an operation outside any layer")
        if isinstance(field, Undefined):
            return field
        local.append(field)
    if not local:
        return Undefined(f"{name} has no input with spatial axes")
    field = _union(local) if len(local) > 1 else local[0]
    if isinstance(field, ReceptiveField) and context and field.global_context is None:
        field = dataclasses.replace(field, global_context=context)
    return field


def _permute(field, name: str, dims, rank: int):
    """Field after reordering axes; `dims` are 1-based over the non-batch axes."""
    dims = [int(d) for d in dims]
    if dims[-1] != rank - 1:
        return Undefined(f"{name} moves the channel axis")
    order = [d - 1 for d in dims[:-1]]  # layer axis i <- input spatial axis order[i]
    axes = field.axes or tuple(range(len(field.size)))
    new_axes = tuple(axes[i] for i in order)
    return dataclasses.replace(
        field,
        size=tuple(field.size[i] for i in order),
        stride=tuple(field.stride[i] for i in order),
        offset=tuple(field.offset[i] for i in order),
        axes=None if new_axes == tuple(range(len(new_axes))) else new_axes,
        phases=None if field.phases is None else tuple(field.phases[i] for i in order),
    )


def propagate_op(op, in_fields: list, in_shapes: list, out_shape, kind=None):
    """Field of the output of a keras.ops operation outside any layer (`kind`: its
    class name, or a TensorFlow op type with `ELEMENTWISE_TF_OPS`)."""
    kind = kind or type(op).__name__
    name = getattr(op, "name", kind)
    if kind in ELEMENTWISE_OPS or kind in ELEMENTWISE_TF_OPS:
        return combine(name, in_fields, in_shapes, out_shape)
    if kind == "Transpose" and len(in_fields) == 1:
        field, axes = in_fields[0], getattr(op, "axes", None)
        if not isinstance(field, ReceptiveField):
            return (
                field
                if isinstance(field, Undefined)
                else Undefined(f"an input of {name} comes from an operation outside any layer")
            )
        rank = len(in_shapes[0])
        if axes is None or int(axes[0]) != 0:
            return Undefined(f"transpose {name} moves the batch axis")
        return _permute(field, name, list(axes)[1:], rank)
    return Undefined(f"no receptive-field rule for keras.ops {kind} ({name})")


def propagate(layer, in_fields: list, in_shapes: list, out_shape):
    """Receptive field of `layer`'s output, given the fields of its inputs.

    Args:
        layer: the Keras layer.
        in_fields: `ReceptiveField`, `Undefined` or `None` (not traceable) per
            input tensor.
        in_shapes: static shape per input tensor.
        out_shape: static shape of the output.

    Returns:
        `ReceptiveField` or `Undefined`.
    """
    kind = _kind(layer)
    name = type(layer).__name__
    if not in_fields:
        return Undefined(f"{layer.name} has no tensor input")
    if kind in _MERGE and kind != "Concatenate":
        return combine(layer.name, in_fields, in_shapes, out_shape)
    for f in in_fields:
        if f is None:
            return Undefined(f"an input of {layer.name} comes from an operation outside any layer")
        if isinstance(f, Undefined):
            return f
    in_shape = in_shapes[0]
    if kind in _MIXING:
        return Undefined(f"{name} {layer.name} {_MIXING[kind]}")
    if kind == "Reshape":
        return _reshape(in_fields[0], layer.name, in_shape, out_shape)
    if len(in_shape) == 2:
        return _on_vector(kind, layer, in_fields, in_shape, out_shape)
    if kind == "Permute":
        return _permute(in_fields[0], f"Permute {layer.name}", layer.dims, len(in_shape))
    if kind == "Dense" and len(in_shape) <= 2:
        return Undefined(f"Dense {layer.name} acts on a vector: every output sees every position")
    if kind in _MERGE:
        axis = getattr(layer, "axis", -1)
        if kind == "Concatenate" and axis not in (-1, len(in_shape) - 1):
            return Undefined(f"{layer.name} concatenates along axis {axis}")
        field = _union(in_fields)
    elif len(in_fields) > 1:
        return Undefined(f"{name} {layer.name} takes several inputs and has no rule")
    else:
        field = in_fields[0]
    if (
        kind in _CONV
        or kind in _POOL
        or kind in _PADDING
        or kind in _CROPPING
        or kind in _UPSAMPLING
        or kind in _TRANSPOSED
        or kind == "Resizing"
    ):
        return _geometric(kind, layer, field, in_shape)
    return _per_position(kind, layer, field, in_shape, out_shape)


def _on_vector(kind, layer, in_fields, in_shape, out_shape):
    """Field after a layer on a flat vector `(b, L)` (a model input before its
    `Reshape`): its last axis holds the positions, so only element-wise layers keep
    the field."""
    name = type(layer).__name__
    if kind == "Dense":
        return Undefined(f"Dense {layer.name} acts on a vector: every output sees every position")
    if len(in_fields) > 1 or kind not in _POINTWISE or kind in _MIXES_LAST_AXIS:
        return Undefined(f"{name} {layer.name} mixes the positions of a vector")
    if tuple(out_shape) != tuple(in_shape):
        return Undefined(f"{name} {layer.name} changes the shape of a vector")
    return in_fields[0]


def _reshape(field, name: str, in_shape, out_shape):
    """Field after a reshape that keeps the positions in order.

    A flat vector `(b, L)` reshaped to a signal `(b, L / C, C)` is a window of
    `C` positions with stride `C` over the vector (`C = 1`: the field itself);
    a signal squeezed back to `(b, L)` (`C = 1`) keeps its field; a reshape
    that changes no axis (`(b, h, w, c)` to itself) too. Every other reshape
    (patches, flattening, moving positions into channels) mixes the grid.
    """
    inner_in, inner_out = tuple(in_shape[1:]), tuple(out_shape[1:])
    if inner_in == inner_out and None not in inner_in:
        return field
    if len(inner_in) == 1 and len(inner_out) == 2 and None not in inner_in + inner_out:
        length, channels = inner_out
        if length * channels == inner_in[0] and field.phases is None:
            (size,), (stride,) = field.size, field.stride
            return dataclasses.replace(
                field, size=(size + (channels - 1) * stride,), stride=(stride * channels,)
            )
    if len(inner_in) == 2 and inner_in[1] == 1 and inner_out == inner_in[:1]:
        return field
    return Undefined(f"Reshape {name} reshapes away the spatial grid")


def _geometric(kind, layer, field, in_shape):
    """Field after a window (convolution, pooling) or a shift (padding, cropping)."""
    if kind in _CONV:
        return _window(
            field,
            layer,
            layer.kernel_size,
            layer.strides,
            layer.dilation_rate,
            layer.padding,
            in_shape,
        )
    if kind in _POOL:
        ones = (1,) * len(layer.pool_size)
        return _window(field, layer, layer.pool_size, layer.strides, ones, layer.padding, in_shape)
    if kind in _UPSAMPLING:
        return _upsample(field, layer, layer.size)
    if kind in _TRANSPOSED:
        return _transposed(field, layer)
    if kind == "Resizing":
        return _resizing(field, layer, in_shape)
    attr = layer.padding if kind in _PADDING else layer.cropping
    sign = -1 if kind in _PADDING else 1
    pairs = _pairs(attr, len(field.size))
    # output unit j is input unit j + sign * before
    return _with_axes(
        field,
        [
            _map_axis(*_axis(field, axis), 1, sign * before, sign * before)
            for axis, (before, _) in enumerate(pairs)
        ],
    )


def _per_position(kind, layer, field, in_shape, out_shape):
    """`field` itself for a layer that acts on each position alone, else `Undefined`."""
    name = type(layer).__name__
    pointwise = kind in _POINTWISE or kind in _MERGE
    if kind in ("Softmax", "LayerNormalization"):
        axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
        pointwise = all(a in (-1, len(in_shape) - 1) for a in axes)
    if kind == "Dense":
        pointwise = len(in_shape) > 2
    if not pointwise:
        if kind is None:
            return Undefined(f"no receptive-field rule for {name} ({layer.name})")
        return Undefined(f"{name} {layer.name} mixes all positions")
    if len(out_shape) != len(in_shape) or tuple(out_shape[1:-1]) != tuple(in_shape[1:-1]):
        return Undefined(f"{name} {layer.name} changes the spatial shape")
    return field
