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
Layers that mix every position (Flatten, Dense on vectors, global pooling,
resizing) have no field; `Undefined` carries the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from keras_introspect.model import _kinds as kinds


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of the units of one layer, per spatial axis.

    Attributes:
        size: extent in input pixels, e.g. `(h, w)`.
        stride: distance in input pixels between neighbouring units (the jump).
        offset: input coordinate of the first pixel seen by unit `(0, 0)`;
            negative when the field starts in the padding.
        input_index: which model input the field refers to.

    Example:
        >>> rf = ReceptiveField(size=(5, 5), stride=(2, 2), offset=(-1, -1))
        >>> rf.bounds((3, 0))
        ((5, 10), (-1, 4))
        >>> rf.slices((3, 0), input_size=(16, 16))
        (slice(5, 10, None), slice(0, 4, None))
    """

    size: tuple
    stride: tuple
    offset: tuple
    input_index: int = 0

    def bounds(self, position) -> tuple:
        """Unclipped `(start, stop)` per axis (stop exclusive) of a unit's field."""
        position = _as_tuple(position, len(self.size), "position")
        return tuple(
            (o + p * s, o + p * s + n)
            for o, p, s, n in zip(self.offset, position, self.stride, self.size, strict=True)
        )

    def slices(self, position, input_size) -> tuple:
        """Slices of the input (clipped to `input_size`) seen by the unit at `position`."""
        input_size = _as_tuple(input_size, len(self.size), "input_size")
        return tuple(
            slice(max(start, 0), min(stop, limit))
            for (start, stop), limit in zip(self.bounds(position), input_size, strict=True)
        )

    def center(self, position) -> tuple:
        """Input coordinate (float) of the centre of a unit's field."""
        return tuple((start + stop - 1) / 2 for start, stop in self.bounds(position))


@dataclass(frozen=True)
class Undefined:
    """Why a layer has no receptive field."""

    reason: str


def _as_tuple(value, n: int, name: str) -> tuple:
    if isinstance(value, int):
        value = (value,) * n
    value = tuple(int(v) for v in value)
    if len(value) != n:
        raise ValueError(f"Expected `{name}` with {n} values. Received: {name}={value}")
    return value


def input_field(n_spatial: int, input_index: int) -> ReceptiveField:
    """The field of the model input itself: every unit sees one pixel."""
    ones = (1,) * n_spatial
    return ReceptiveField(ones, ones, (0,) * n_spatial, input_index)


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
}
_MERGE = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"}
_CONV = kinds.CONV
_POOL = kinds.POOL
# Layers after which no output unit has a local field.
_MIXING = {
    "Flatten": "flattens all positions into one vector",
    "Reshape": "reshapes away the spatial grid",
    "Permute": "permutes axes",
    "GroupNormalization": "normalises over all positions",
    "Resizing": "resamples the pixel grid",
    "UpSampling1D": "resamples the pixel grid",
    "UpSampling2D": "resamples the pixel grid",
    "UpSampling3D": "resamples the pixel grid",
}
_MIXING.update(dict.fromkeys(kinds.GLOBAL_POOL, "pools over all positions"))
_MIXING.update(
    dict.fromkeys(kinds.TRANSPOSED_CONV, "is a transposed convolution (fractional stride)")
)
_PADDING = {"ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D"}
_CROPPING = {"Cropping1D", "Cropping2D", "Cropping3D"}


# Every class name some rule below handles.
_RULED = frozenset(
    _POINTWISE
    | _MERGE
    | _CONV
    | _POOL
    | _PADDING
    | _CROPPING
    | set(_MIXING)
    | {"Dense", "Softmax", "LayerNormalization"}
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
            "input size, which is not fixed; pass input_shape"
        )
    size_out = math.ceil(size_in / stride)
    return max((size_out - 1) * stride + kernel - size_in, 0) // 2


def _window(field, layer, kernel, strides, dilation, padding, in_shape):
    data_format = getattr(layer, "data_format", "channels_last") or "channels_last"
    sizes_in = _spatial(in_shape, data_format)
    n = len(field.size)
    if len(kernel) != n:
        return Undefined(f"{layer.name} has {len(kernel)} spatial axes, its input {n}")
    size, stride, offset = [], [], []
    for axis in range(n):
        k_eff = dilation[axis] * (kernel[axis] - 1) + 1
        pad = _pad_before(padding, sizes_in[axis], k_eff, strides[axis], layer.name)
        if isinstance(pad, Undefined):
            return pad
        jump = field.stride[axis]
        size.append(field.size[axis] + (k_eff - 1) * jump)
        stride.append(jump * strides[axis])
        offset.append(field.offset[axis] - pad * jump)
    return ReceptiveField(tuple(size), tuple(stride), tuple(offset), field.input_index)


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
    starts = [min(f.offset[a] for f in fields) for a in range(len(first.size))]
    stops = [max(f.offset[a] + f.size[a] for f in fields) for a in range(len(first.size))]
    size = tuple(stop - start for start, stop in zip(starts, stops, strict=True))
    return ReceptiveField(size, first.stride, tuple(starts), first.input_index)


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
    for f in in_fields:
        if f is None:
            return Undefined(f"an input of {layer.name} comes from an operation outside any layer")
        if isinstance(f, Undefined):
            return f
    in_shape = in_shapes[0]
    if kind in _MIXING:
        return Undefined(f"{name} {layer.name} {_MIXING[kind]}")
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
    if kind in _PADDING or kind in _CROPPING:
        attr = layer.padding if kind in _PADDING else layer.cropping
        sign = -1 if kind in _PADDING else 1
        pairs = _pairs(attr, len(field.size))
        offset = tuple(
            o + sign * before * s
            for o, (before, _), s in zip(field.offset, pairs, field.stride, strict=True)
        )
        return ReceptiveField(field.size, field.stride, offset, field.input_index)
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
