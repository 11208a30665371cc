"""What is explained or optimized: one scalar score per image.

A target is computed from one forward pass of the model (see
`Introspector.tap`): a class score (also over a region of, or at one
position of, a dense output such as a segmentation map or a detection
head), the value of a regression output, a layer's whole output, one channel
(filter) of a layer, one neuron (channel and position), a plain callable on
the model output, or a weighted sum of those. A feature map is reduced to a
scalar by an aggregation, ``"max"``, ``"sum"`` or ``"mean"``: this is the
aggregation extension of gradient saliency to intermediate filters
(Kalmeijer 2016, eqs. 3.4-3.7).

Every attribution and optimization method takes these objects; an integer is
read as `Class(index)` and a callable as `Score(fn)`.

Example:
    >>> from keras_introspect import targets
    >>> t = targets.Class(3) + 0.5 * targets.Channel("conv2", 4)
    >>> t
    Class(3) + 0.5 * Channel('conv2', 4, aggregate='max')
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

from keras_introspect._tensor import channels_last, reduce_axes
from keras_introspect._validation import check_index

AGGREGATES = ("max", "sum", "mean")


def _check_aggregate(aggregate) -> str:
    if aggregate not in AGGREGATES:
        raise ValueError(
            f"Expected `aggregate` to be one of {list(AGGREGATES)}. "
            f"Received: aggregate={aggregate!r}"
        )
    return aggregate


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def as_index(value, what: str) -> int:
    """One index: an integer, or an integral float such as ``2.0``.

    The one rule for every index the package takes (classes, channels,
    positions, per-image labels): fractions, NaN, bools and strings are
    refused, never truncated.
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"Expected {what} to be an integer, not a bool. Received: {value!r}")
    if _is_int(value):
        return int(value)
    if isinstance(value, numbers.Real) and np.isfinite(value) and float(value).is_integer():
        return int(value)
    raise TypeError(
        f"Expected {what} to be an integer (integral floats such as 2.0 are accepted). "
        f"Received: {value!r}"
    )


def as_indices(values, what: str, negative: bool = True) -> list:
    """A 1-D sequence of indices, each by the rule of `as_index`.

    Args:
        values: a list, tuple or 1-D array.
        what: the name used in errors.
        negative: whether negative values (counted from the end) are
            allowed; per-image labels refuse them.
    """
    if isinstance(values, (list, tuple)) and any(isinstance(v, (bool, np.bool_)) for v in values):
        raise TypeError(f"Expected {what} to be integers, not bools. Received: {values!r}")
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(
            f"Expected {what} as a 1-D sequence (one index each). Received: an array of "
            f"shape {array.shape}"
        )
    if array.dtype == bool:
        raise TypeError(f"Expected {what} to be integers, not bools. Received: {values!r}")
    if array.dtype.kind in "iu":
        out = [int(v) for v in array]
    else:
        out = [as_index(v, what) for v in array.tolist()]
    if not negative:
        bad = [(i, v) for i, v in enumerate(out) if v < 0]
        if bad:
            i, v = bad[0]
            raise ValueError(
                f"Expected non-negative {what}. Received: {v} at position {i} "
                f"({len(bad)} negative value(s))"
            )
    return out


def _is_scalar(value) -> bool:
    return isinstance(value, (numbers.Number, np.generic)) or (
        isinstance(value, np.ndarray) and value.ndim == 0
    )


def _free_position(value, what: str) -> int:
    """A position along an axis whose size comes with the data: non-negative."""
    value = as_index(value, what)
    if value < 0:
        raise ValueError(
            f"Expected {what} >= 0: the layer's size depends on the input size, so a "
            f"position cannot count from the end. Received: {value}"
        )
    return value


class Target:
    """Base class of targets: a scalar per image. Supports `+`, `-`, `*` by numbers."""

    def __add__(self, other):
        if isinstance(other, numbers.Number) and other == 0:
            return self  # so that sum(targets) works
        return Sum(_terms(self) + _terms(other))

    def __radd__(self, other):
        if isinstance(other, numbers.Number) and other == 0:
            return self
        return Sum(_terms(other) + _terms(self))

    def __mul__(self, weight):
        if not isinstance(weight, numbers.Real) or isinstance(weight, bool):
            return NotImplemented
        return Sum([(float(weight) * w, t) for w, t in _terms(self)])

    __rmul__ = __mul__

    def __truediv__(self, weight):
        if not isinstance(weight, numbers.Real) or isinstance(weight, bool) or weight == 0:
            return NotImplemented
        return self * (1.0 / weight)

    def __neg__(self):
        return self * -1.0

    def __sub__(self, other):
        return self + (-1.0) * as_target(other)

    def __rsub__(self, other):
        return as_target(other) + (-1.0) * self

    def bind(self, intro) -> Binding:
        """Resolve the target against a model's `Introspector` (the target protocol).

        A leaf target returns a `Binding`: the layer it reads, its score
        function, the integer columns fed to that function and the key of
        everything the traced score depends on. Subclass `Target` and
        implement `bind` to write a target of your own (see `Direction`).
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not implement Target.bind(intro) -> Binding"
        )


def _terms(target) -> list:
    if isinstance(target, Sum):
        return list(target.terms)
    if isinstance(target, Target):
        return [(1.0, target)]
    raise TypeError(
        f"Expected a keras_introspect target (Class, Output, Channel, Neuron, Layer, Score). "
        f"Received: {target!r} of type {type(target).__name__}"
    )


REGION_HELP = (
    "None (the whole output), a position (i, j), a box of slices (e.g. np.s_[2:5, 3:8]), "
    "a boolean mask of the output's spatial shape, a boolean mask per image (n, ...) or "
    "integer positions per image (n, spatial axes)"
)
_OPEN = 2**31 - 1  # the open end of a box (`slice(i, None)`) on an axis of free size


def _parse_region(region):
    """`(kind, value)` of what users pass as a region of a dense output.

    Kinds: ``"all"``, ``"position"`` (a tuple of ints), ``"box"`` (a tuple
    of `(start, stop)` with `stop` `None` for the end), ``"mask"`` (a
    boolean array) and ``"positions"`` (an `(n, spatial axes)` int array).
    """
    if region is None:
        return "all", None
    if isinstance(region, slice):
        region = (region,)
    if isinstance(region, tuple) and any(isinstance(r, slice) for r in region):
        box = []
        for axis, r in enumerate(region):
            what = f"`region` (box) on axis {axis}"
            if not isinstance(r, slice):
                start = as_index(r, what)
                box.append((start, None if start == -1 else start + 1))
                continue
            if r.step not in (None, 1):
                raise ValueError(f"Expected a box without steps. Received: region={region!r}")
            start = 0 if r.start is None else as_index(r.start, what)
            box.append((start, None if r.stop is None else as_index(r.stop, what)))
        return "box", tuple(box)
    if _is_scalar(region) and not isinstance(region, (bool, np.bool_)):
        return "position", (as_index(np.asarray(region).item(), "`region` (position)"),)
    if isinstance(region, (list, tuple)) and region and all(_is_int(r) for r in region):
        return "position", tuple(int(r) for r in region)
    array = np.asarray(region)
    if array.dtype == bool and array.ndim >= 1:
        return "mask", array
    if array.dtype.kind in "iu" and array.ndim == 2:
        return "positions", array.astype(np.int64)
    raise TypeError(f"Expected `region` as {REGION_HELP}. Received: region={_short(region)}")


def _short(value) -> str:
    if isinstance(value, np.ndarray) or hasattr(value, "shape"):
        array = np.asarray(value)
        return f"an array of shape {array.shape} and dtype {array.dtype}"
    return repr(value)


def _region_repr(kind, value) -> str:
    if kind == "box":
        parts = [f"{a}:{'' if b is None else b}" for a, b in value]
        return f"np.s_[{', '.join(parts)}]"
    if kind == "position":
        return repr(value)
    if kind == "mask":
        return f"<mask {value.shape}>"
    return f"<positions {value.shape}>"


def output_names(intro) -> list:
    """The layer names of the model outputs: Keras' `output_names`, or the layers that
    make them (a Sequential has no `output_names`); `[]` if they are not known."""
    names = list(getattr(intro.model, "output_names", None) or [])
    if not names:
        from keras_introspect.model._keras_compat import producing_layer

        layers = [producing_layer(t) for t in getattr(intro.model, "outputs", None) or []]
        names = [layer.name for layer in layers if layer is not None]
    return names if len(names) == len(intro.output_shapes) else []


def _output_description(intro) -> str:
    """`0 'scores' (None, None, None, 2), 1 'boxes' (...)`: every output, for errors."""
    shapes = intro.output_shapes
    names = intro.output_keys or output_names(intro) or [None] * len(shapes)
    return ", ".join(
        f"{i} {n!r} {s}" if n is not None else f"{i} {s}"
        for i, (n, s) in enumerate(zip(names, shapes, strict=True))
    )


def region_mask(region, shape) -> np.ndarray:
    """The positions a region of a dense output covers, as booleans (for pictures).

    Args:
        region: any `region` of `Class` / `Output`, or such a target itself.
        shape: the output's spatial shape, e.g. `(h, w)`.

    Returns:
        bool `shape`, or `(n, *shape)` for a region per image (masks or
        positions per image). `None` (the whole output) covers everything.

    Example:
        >>> import numpy as np
        >>> region_mask(np.s_[1:3, 2], (4, 4)).astype(int)
        array([[0, 0, 0, 0],
               [0, 0, 1, 0],
               [0, 0, 1, 0],
               [0, 0, 0, 0]])
    """
    if isinstance(region, _DenseTarget):
        region = region.region
    shape = tuple(int(n) for n in shape)
    kind, value = _parse_region(region)
    if kind == "all":
        return np.ones(shape, bool)
    if kind == "mask":
        if value.shape[-len(shape) :] != shape or value.ndim not in (len(shape), len(shape) + 1):
            raise ValueError(
                f"Expected a mask of shape {shape} or (n, *{shape}). Received: {value.shape}"
            )
        return value.astype(bool)
    if kind == "positions":
        out = np.zeros((len(value), *shape), bool)
        for i, position in enumerate(value):
            out[(i, *(int(p) % n for p, n in zip(position, shape, strict=True)))] = True
        return out
    if len(value) != len(shape):
        raise ValueError(
            f"Expected a {kind} with {len(shape)} coordinate(s). Received: region={region!r}"
        )
    out = np.zeros(shape, bool)
    if kind == "position":
        out[tuple(int(p) for p in value)] = True
    else:
        out[tuple(slice(a, b) for a, b in value)] = True
    return out


class _DenseTarget(Target):
    """A target read from one model output: a unit (class) of it, over a region."""

    #: what the first column is called in errors
    _what = "class index"

    def _init_region(self, region, aggregate):
        self._region = _parse_region(region)
        self.region = region
        self.aggregate = _check_aggregate(aggregate)

    def _region_text(self) -> str:
        kind, value = self._region
        if kind == "all":
            return ""
        return f", region={_region_repr(kind, value)}"

    def _resolve_region(self, spatial):
        """`(columns, per_image (n, k) or None, key)` of the region on `spatial` axes."""
        kind, value = self._region
        s = len(spatial)
        if kind == "all":
            return (), None, ()
        if kind == "mask":
            return self._resolve_mask(value, spatial)
        if kind == "positions":
            if value.shape[1] != s or not len(value):
                raise ValueError(
                    f"Expected positions per image of shape (n, {s}): one position on the "
                    f"{s} spatial axes of the output {tuple(spatial)}. Received: shape "
                    f"{value.shape}"
                )
            columns = np.stack(
                [_positions_on(value[:, a], n, a) for a, n in enumerate(spatial)], axis=1
            )
            return tuple(columns[0]), columns.astype(np.int32), ()
        if len(value) != s:
            raise ValueError(
                f"Expected a {kind} with {s} coordinate(s): the output has {s} spatial "
                f"axes {tuple(spatial)}. Received: region={self.region!r}"
            )
        if kind == "position":
            columns = tuple(
                _free_position(p, f"region[{a}] (position)")
                if n is None
                else check_index(p, n, f"region[{a}] (position)")
                for a, (p, n) in enumerate(zip(value, spatial, strict=True))
            )
            return columns, None, ()
        columns = []
        for a, ((start, stop), n) in enumerate(zip(value, spatial, strict=True)):
            if n is not None:
                start, stop, _ = slice(start, stop).indices(n)
            else:
                start = _free_position(start, f"region[{a}] (box start)")
                stop = _OPEN if stop is None else _free_position(stop, f"region[{a}] (box stop)")
            if stop <= start:
                raise ValueError(
                    f"Expected a box that is not empty on axis {a} (size {n}). Received: "
                    f"region={_region_repr(kind, value)}"
                )
            columns += [start, stop]
        return tuple(columns), None, ()

    def _resolve_mask(self, mask, spatial):
        s = len(spatial)
        if mask.ndim not in (s, s + 1):
            raise ValueError(
                f"Expected a mask of the output's spatial shape {tuple(spatial)} or one mask "
                f"per image (n, {', '.join(map(str, spatial))}). Received: mask of shape "
                f"{mask.shape}"
            )
        shape = mask.shape[-s:] if s else ()
        if any(n is not None and n != m for n, m in zip(spatial, shape, strict=True)):
            raise ValueError(
                f"Expected a mask of the output's spatial shape {tuple(spatial)}. Received: "
                f"mask of shape {mask.shape}"
            )
        flat = mask.reshape(-1 if mask.ndim == s else len(mask), int(np.prod(shape)))
        if mask.ndim == s:
            flat = flat.reshape(1, -1)
        empty = np.flatnonzero(~flat.any(axis=1))
        if len(empty):
            where = "" if mask.ndim == s else f" (image {empty[0]})"
            raise ValueError(f"Expected a mask with at least one True position{where}")
        per_image = flat.astype(np.int32) if mask.ndim == s + 1 else None
        return tuple(int(v) for v in flat[0]), per_image, (tuple(shape),)

    def _bind_output(self, intro, output, unit_values, logits, many=None):
        """The binding of unit(s) `unit_values` of model output `output` over the region."""
        shape = intro.output_shapes[output]
        spatial = tuple(shape[1:-1])
        kind = self._region[0]
        if len(shape) < 2:
            raise ValueError(
                f"Expected a model output of shape (batch, ..., units). Received: output "
                f"{output} with shape {shape}; the outputs: {_output_description(intro)}"
            )
        if not spatial and kind != "all":
            raise ValueError(
                f"Expected a dense model output (batch, ..., classes) for `region`. Received: "
                f"output {output} with shape {shape}; the outputs: {_output_description(intro)}"
            )
        region_columns, region_per_image, region_key = self._resolve_region(spatial)
        units = np.asarray(unit_values, np.int32)
        per_image = None
        if region_per_image is not None:
            if len(units) > 1 and len(units) != len(region_per_image):
                raise ValueError(
                    f"Expected as many {self._what}es as regions per image. Received: "
                    f"{len(units)} and {len(region_per_image)}"
                )
            first = np.broadcast_to(units, (len(region_per_image),))
            per_image = np.concatenate([first[:, None], region_per_image], axis=1)
        elif len(units) > 1 and many is None:
            per_image = units
        aggregate = self.aggregate
        rank = len(shape)

        def score(activations, outputs, columns):
            import tensorflow as tf

            from keras_introspect.model.tap import pre_activation

            out = outputs[output]
            if logits:
                out = pre_activation(out)
            out = tf.cast(out, tf.float32)
            values = tf.gather(out, columns[:, 0], axis=-1, batch_dims=1)
            if rank == 2:
                return values
            return _over_region(values, columns[:, 1:], kind, aggregate, region_key, output)

        key = (output, logits, kind, aggregate if kind != "position" else None, *region_key)
        if not spatial:
            key = (output, logits)  # a classifier output: the key of earlier releases
        return Binding(
            self,
            None,
            score,
            (int(units[0]), *region_columns),
            key=key,
            per_image=per_image,
            many=many,
            per_image_what="class index" if region_per_image is None else "region",
        )


def _positions_on(values, n, axis):
    if n is None:
        bad = values[values < 0]
        if len(bad):
            raise ValueError(
                f"Expected positions >= 0 on axis {axis}: its size depends on the input size. "
                f"Received: {int(bad[0])}"
            )
        return values
    bad = values[(values < -n) | (values >= n)]
    if len(bad):
        raise ValueError(
            f"Expected positions on axis {axis} in the range [0, {n - 1}]. Received: {int(bad[0])}"
        )
    return values % n


def _over_region(values, columns, kind, aggregate, region_key, output):
    """`(rows,)`: `values` `(rows, *spatial)` aggregated over each row's region."""
    import tensorflow as tf

    spatial_axes = list(range(1, values.shape.rank))
    size = tf.shape(values)[1:]
    if kind == "all":
        return reduce_axes(values, aggregate, spatial_axes)
    if kind in ("position", "positions"):
        tf.debugging.assert_less(
            columns,
            tf.broadcast_to(size, tf.shape(columns)),
            message=f"Region position outside model output {output} for these inputs",
        )
        return tf.gather_nd(values, columns, batch_dims=1)
    if kind == "mask":
        (shape,) = region_key
        if values.shape[1:].is_fully_defined() and tuple(values.shape[1:]) != shape:
            raise ValueError(
                f"Expected a mask of the spatial shape {tuple(values.shape[1:])} of model "
                f"output {output} for these inputs. Received: a mask of shape {shape}"
            )
        tf.debugging.assert_equal(
            size,
            tf.constant(shape, tf.int32),
            message=f"Expected a mask of the spatial shape of model output {output} for "
            f"these inputs; the mask has shape {shape}",
        )
        weights = tf.cast(tf.reshape(columns, [-1, *shape]), tf.float32)
    else:  # a box: start, stop per axis
        weights = None
        for a in range(len(spatial_axes)):
            index = tf.range(size[a])[None, :]
            inside = (index >= columns[:, 2 * a : 2 * a + 1]) & (
                index < columns[:, 2 * a + 1 : 2 * a + 2]
            )
            inside = tf.cast(inside, tf.float32)
            shape = [-1] + [1] * len(spatial_axes)
            shape[a + 1] = size[a]
            inside = tf.reshape(inside, shape)
            weights = inside if weights is None else weights * inside
    return _masked(values, weights, aggregate, spatial_axes)


def _masked(values, weights, aggregate, axes):
    import tensorflow as tf

    if aggregate == "max":
        lowest = tf.fill(tf.shape(values), float("-inf"))
        return tf.reduce_max(tf.where(weights > 0, values, lowest), axis=axes)
    total = tf.reduce_sum(values * weights, axis=axes)
    if aggregate == "sum":
        return total
    return tf.math.divide_no_nan(total, tf.reduce_sum(weights, axis=axes))


class Class(_DenseTarget):
    """The score of one class: a logit by default, also of dense outputs.

    On a classifier output `(batch, classes)` this is the class score. On a
    dense output `(batch, ..., classes)` (segmentation maps, detection
    heads, per-time-step classifiers) the class score map is reduced to one
    value per image over `region` by `aggregate` (the mean by default), or
    read at one position.

    Args:
        index: class index, or a sequence with one class index per image
            (e.g. the labels, or the predicted classes).
        logits: when the model ends in a softmax or sigmoid, explain its
            input (the pre-activation logit) instead of the probability.
            Probabilities saturate, so their gradients vanish for confident
            predictions (Simonyan et al. 2014 use the unnormalised score).
        output: which model output: its position, or its name (a dict
            output's key, or the output layer's name). `None` (default):
            the model's only output, or the first of a list of outputs; a
            model with dict outputs must name one (their order is the sorted
            keys, which nobody means by "the first").
        region: for a dense output, where on its spatial axes: `None` (all
            positions), a position `(i, j)` (one int per spatial axis), a
            box of slices such as `np.s_[2:6, 3:9]`, a boolean mask of the
            output's spatial shape, one mask per image `(n, h, w)`, or one
            position per image as an int array `(n, spatial axes)`. The
            region is an input of the compiled step: another region of the
            same kind (and mask shape) never traces the model again.
        aggregate: ``"mean"`` (default), ``"sum"`` or ``"max"`` of the class
            score over the region (ignored for a position).

    Example:
        >>> Class(281)
        Class(281)
        >>> Class([0, 2, 1], logits=False)
        Class([0, 2, 1], logits=False)
        >>> import numpy as np
        >>> Class(1, output="scores", region=np.s_[2:5, 3:8])
        Class(1, output='scores', region=np.s_[2:5, 3:8])
        >>> Class(1, region=(4, 7))
        Class(1, region=(4, 7))
    """

    def __init__(self, index, logits: bool = True, output=None, region=None, aggregate="mean"):
        if _is_scalar(index):
            self.index = as_index(np.asarray(index).item(), "`index` (class)")
        elif isinstance(index, (Sequence, np.ndarray)) and not isinstance(index, str):
            self.index = as_indices(index, "`index` (one class per image)", negative=False)
            if not self.index:
                raise ValueError("Expected at least one class index. Received: index=[]")
        else:
            raise TypeError(
                "Expected `index` to be a class index or a sequence of one index per "
                f"image. Received: index={index!r}"
            )
        self.logits = bool(logits)
        self.output = output
        self._init_region(region, aggregate)

    @property
    def region_kind(self) -> str:
        """``"all"``, ``"position"``, ``"box"``, ``"mask"`` or ``"positions"`` (one
        position per image): what `region` was read as."""
        return self._region[0]

    def replace(self, **changes) -> Class:
        """A copy with `index`, `logits` or `output` changed, the region and its
        aggregate kept (the metrics score a `Class` target on probabilities this way).

        Example:
            >>> Class(3, region=(1, 2)).replace(logits=False)
            Class(3, logits=False, region=(1, 2))
        """
        unknown = set(changes) - {"index", "logits", "output", "region", "aggregate"}
        if unknown:
            raise TypeError(f"Class.replace() got unexpected fields: {sorted(unknown)}")
        fields = {
            "index": self.index,
            "logits": self.logits,
            "output": self.output,
            "region": self.region,
            "aggregate": self.aggregate,
        }
        return Class(**{**fields, **changes})

    def __repr__(self):
        index = self.index
        if isinstance(index, list) and len(index) > 8:
            index = "[" + ", ".join(map(str, index[:6])) + f", ... ({len(index)} indices)]"
        else:
            index = repr(index)
        extra = "" if self.logits else ", logits=False"
        extra += "" if self.output is None else f", output={self.output!r}"
        extra += self._region_text()
        if self._region[0] not in ("position", "positions") and self.aggregate != "mean":
            extra += f", aggregate={self.aggregate!r}"
        return f"Class({index}{extra})"

    def bind(self, intro):
        output = output_index(intro, self.output)
        shape = intro.output_shapes[output]
        if len(shape) < 2 or shape[-1] is None:
            raise ValueError(
                f"Class targets need a model output of shape (batch, classes) or a dense "
                f"output (batch, ..., classes). Received: output {output} with shape {shape}; "
                f"the outputs: {_output_description(intro)}. Use targets.Output or "
                f"targets.Score(fn) for other outputs"
            )
        n_classes = shape[-1]
        indices = [self.index] if _is_int(self.index) else self.index
        indices = [check_index(i, n_classes, "class index") for i in indices]
        return self._bind_output(intro, output, indices, self.logits)


class Output(_DenseTarget):
    """The value of a model output: a regression head, one unit or several.

    Reads the raw output (no logits are looked for: a regression head is
    linear). On a dense output `(batch, ..., units)` (e.g. the box
    regression of a detection head) the unit is reduced over `region` as
    in `Class`.

    Args:
        output: which model output, by position or name; `None`: the only
            (or first) output.
        index: the unit: `None` for an output of one unit, an int, a
            sequence of units or ``"all"`` (explained in one call, the maps
            get an extra axis of one entry per unit, in the order given).
        region: as in `Class`, for dense outputs.
        aggregate: ``"mean"`` (default), ``"sum"`` or ``"max"`` over the region.

    Example:
        >>> Output()
        Output()
        >>> Output("boxes", 2, region=(3, 4))
        Output('boxes', 2, region=(3, 4))
    """

    _what = "unit"

    def __init__(self, output=None, index=None, region=None, aggregate="mean"):
        self.output = output
        if index is None or (isinstance(index, str) and index == "all"):
            pass
        elif _is_scalar(index):
            index = as_index(np.asarray(index).item(), "`index` (unit)")
        elif isinstance(index, (Sequence, np.ndarray)) and not isinstance(index, str):
            index = as_indices(index, "`index` (units)")
            if not index:
                raise ValueError("Expected at least one unit index. Received: index=[]")
        else:
            raise TypeError(
                "Expected `index` to be None, a unit index, a sequence of them or 'all'. "
                f"Received: index={index!r}"
            )
        self.index = index
        self._init_region(region, aggregate)

    def __repr__(self):
        args = []
        if self.output is not None or self.index is not None:
            args.append(repr(self.output))
        if self.index is not None:
            args.append(repr(self.index))
        text = ", ".join(args) + self._region_text()
        if self._region[0] not in ("position", "positions") and self.aggregate != "mean":
            text += f", aggregate={self.aggregate!r}"
        return f"Output({text.removeprefix(', ')})"

    def bind(self, intro):
        output = output_index(intro, self.output)
        shape = intro.output_shapes[output]
        if len(shape) < 2 or shape[-1] is None:
            raise ValueError(
                f"Expected a model output of shape (batch, units) or (batch, ..., units). "
                f"Received: output {output} with shape {shape}; the outputs: "
                f"{_output_description(intro)}"
            )
        n_units = shape[-1]
        what = f"unit of output {output}"
        if self.index is None:
            if n_units != 1:
                raise ValueError(
                    f"Expected `index` (the unit) for output {output} of shape {shape}: it has "
                    f"{n_units} units. Pass an index in [0, {n_units - 1}], a list or 'all'"
                )
            units, many = [0], None
        elif self.index == "all":
            many = list(range(n_units))
            units = [0]
        elif isinstance(self.index, list):
            many = [check_index(i, n_units, what) for i in self.index]
            units = [0]
        else:
            units, many = [check_index(self.index, n_units, what)], None
        return self._bind_output(intro, output, units, False, many=many)


def output_index(intro, output) -> int:
    """Position of the model output `output` names (see `Class`); errors name the outputs."""
    shapes = intro.output_shapes
    keys = intro.output_keys
    names = output_names(intro)
    if output is None:
        if keys is not None and len(keys) > 1:
            listed = ", ".join(f"{k!r}: {s}" for k, s in zip(keys, shapes, strict=True))
            raise ValueError(
                f"The model has {len(keys)} outputs, a dict {{{listed}}}: name the one to "
                f"explain, e.g. Class(k, output={keys[0]!r})"
            )
        return 0
    if isinstance(output, str):
        for candidates in (keys or [], names):
            if output in candidates:
                return candidates.index(output)
        raise ValueError(
            f"Expected `output` to name a model output: one of {keys or names}. "
            f"Received: output={output!r}. The outputs: {_output_description(intro)}"
        )
    if isinstance(output, (bool, np.bool_)) or not _is_int(output):
        raise TypeError(
            f"Expected `output` as an output's position or name. Received: output={output!r}. "
            f"The outputs: {_output_description(intro)}"
        )
    if not -len(shapes) <= output < len(shapes):
        raise ValueError(
            f"Expected `output` (model output) in the range [0, {len(shapes) - 1}]. Received: "
            f"output={output}. "
            f"The outputs: {_output_description(intro)}"
        )
    return int(output) % len(shapes)


def one_output_layer(intro, selector):
    """`LayerInfo` of the layer `selector` names; it must have one output tensor."""
    info = intro.layer(selector)
    if isinstance(info.output_shape, list) or info.output_shape is None:
        raise ValueError(
            f"Expected a layer with one output tensor. Received: layer {info.path!r} "
            f"with output shape {info.output_shape}"
        )
    return info


class _LayerTarget(Target):
    """A target computed from the output of one layer."""

    def _info(self, intro):
        return one_output_layer(intro, self.layer)


def _reduce(tensor, aggregate: str):
    """A score per row: `tensor` reduced over every axis but the batch."""
    if tensor.shape.rank == 1:
        return tensor
    return reduce_axes(tensor, aggregate, list(range(1, tensor.shape.rank)))


def _reduce_by_column(tensor, codes):
    """A score per row: `tensor` reduced by the aggregate `AGGREGATES[codes[row]]`.

    The aggregate is a column, not part of the graph: "max", "sum" and "mean"
    of one layer share a compiled function. The gradient reaches the chosen
    reduction only (the others get exact zeros).
    """
    import tensorflow as tf

    every = tf.stack([_reduce(tensor, a) for a in AGGREGATES], axis=-1)
    return tf.gather(every, codes, axis=1, batch_dims=1)


class Channel(_LayerTarget):
    """One channel (filter, feature map) of a layer, aggregated to a scalar.

    For a convolutional layer the feature map of the filter is reduced over
    its positions by `aggregate` (Kalmeijer 2016: "max" is less distracting,
    "sum" gives more detail); for a dense layer the channel is one unit.

    Args:
        layer: layer selector (name, path, index, `keras.layers.Layer`).
        index: channel index; a sequence of indices or ``"all"`` explains
            every listed channel in one call (the maps get an extra axis of
            one entry per channel, in the order given).
        aggregate: ``"max"``, ``"sum"`` or ``"mean"`` over the positions.

    Example:
        >>> Channel("conv2", 4, aggregate="sum")
        Channel('conv2', 4, aggregate='sum')
    """

    def __init__(self, layer, index, aggregate: str = "max"):
        self.layer = layer
        if isinstance(index, str) and index == "all":
            pass
        elif _is_scalar(index):
            index = as_index(np.asarray(index).item(), "`index` (channel)")
        elif isinstance(index, (Sequence, np.ndarray)) and not isinstance(index, str):
            index = as_indices(index, "`index` (channels)")
            if not index:
                raise ValueError("Expected at least one channel index. Received: index=[]")
        else:
            raise TypeError(
                "Expected `index` to be a channel index, a sequence of them or 'all'. "
                f"Received: index={index!r}"
            )
        self.index = index
        self.aggregate = _check_aggregate(aggregate)

    def __repr__(self):
        return f"Channel({self.layer!r}, {self.index!r}, aggregate={self.aggregate!r})"

    def bind(self, intro):
        info = self._info(intro)
        n_channels = info.output_shape[info.channel_axis]
        if n_channels is None:
            raise ValueError(f"Layer {info.path!r} has an unknown number of channels")
        if self.index == "all":
            many = list(range(n_channels))
        elif isinstance(self.index, list):
            many = [check_index(i, n_channels, f"channel of {info.path!r}") for i in self.index]
        else:
            many = None
        constant = (
            0
            if many is not None
            else check_index(self.index, n_channels, f"channel of {info.path!r}")
        )
        axis = info.channel_axis

        def score(activation, outputs, columns):
            import tensorflow as tf

            values = tf.gather(
                channels_last(activation, axis), columns[:, 0], axis=-1, batch_dims=1
            )
            if values.shape.rank == 1:  # a dense layer: the unit itself
                return values
            return _reduce_by_column(values, columns[:, 1])

        code = AGGREGATES.index(self.aggregate)
        return Binding(self, info.path, score, (constant, code), many=many, reads_output=False)


class Neuron(_LayerTarget):
    """One unit of a layer: a channel at one spatial position.

    Args:
        layer: layer selector.
        channel: channel index.
        position: spatial index, e.g. `(row, col)` for a 2-D feature map.

    Example:
        >>> Neuron("conv2", 4, (3, 5))
        Neuron('conv2', 4, (3, 5))
    """

    def __init__(self, layer, channel, position):
        self.layer = layer
        self.channel = channel
        self.position = (
            tuple(position) if isinstance(position, (Sequence, np.ndarray)) else (position,)
        )

    def __repr__(self):
        return f"Neuron({self.layer!r}, {self.channel!r}, {self.position!r})"

    def bind(self, intro):
        info = self._info(intro)
        shape = list(info.output_shape[1:])
        axis = info.channel_axis
        n_channels = shape.pop(axis if axis == -1 else 0)
        channel = check_index(self.channel, n_channels, f"channel of {info.path!r}")
        if len(self.position) != len(shape):
            raise ValueError(
                f"Expected a position with {len(shape)} coordinate(s) for layer "
                f"{info.path!r} (spatial shape {tuple(shape)}). Received: position={self.position}"
            )
        position = tuple(
            _free_position(p, f"position[{i}] of {info.path!r}")
            if n is None
            else check_index(p, n, f"position[{i}] of {info.path!r}")
            for i, (p, n) in enumerate(zip(self.position, shape, strict=True))
        )
        free = any(n is None for n in shape)
        path = info.path

        def score(activation, outputs, columns):
            import tensorflow as tf

            # columns: channel, then the position; both are inputs of the
            # compiled function, so another unit of the layer needs no trace
            a = channels_last(activation, axis)
            index = tf.concat([columns[:, 1:], columns[:, :1]], axis=1)
            if not free:
                return tf.gather_nd(a, index, batch_dims=1)
            # the layer's size comes with the data: check it there, before the gather
            # (else the gather's own error can win the race, or, on a GPU, an index
            # out of range silently reads 0)
            size = tf.shape(a)[1:]
            check = tf.debugging.assert_less(
                index,
                tf.broadcast_to(size, tf.shape(index)),
                message=f"Neuron position outside layer {path!r} for these images",
            )
            with tf.control_dependencies([check]):
                return tf.gather_nd(a, index, batch_dims=1)

        return Binding(
            self, info.path, score, (channel, *position), position=position, reads_output=False
        )


class Layer(_LayerTarget):
    """The whole output of a layer, aggregated over all its units.

    Args:
        layer: layer selector.
        aggregate: ``"max"``, ``"sum"`` or ``"mean"``.

    Example:
        >>> Layer("conv2", aggregate="mean")
        Layer('conv2', aggregate='mean')
    """

    def __init__(self, layer, aggregate: str = "mean"):
        self.layer = layer
        self.aggregate = _check_aggregate(aggregate)

    def __repr__(self):
        return f"Layer({self.layer!r}, aggregate={self.aggregate!r})"

    def bind(self, intro):
        info = self._info(intro)

        def score(activation, outputs, columns):
            import tensorflow as tf

            return _reduce_by_column(tf.cast(activation, tf.float32), columns[:, 0])

        code = AGGREGATES.index(self.aggregate)
        return Binding(self, info.path, score, (code,), reads_output=False)


class Score(Target):
    """A custom score: `fn(output) -> (batch,)` on the model output.

    For regression heads, detection scores, or any other scalar. `output`
    is the model output tensor (a list for multi-output models); `fn` must
    use TensorFlow / `keras.ops` operations so it can be differentiated and
    compiled.

    Example:
        >>> import keras
        >>> t = Score(lambda y: keras.ops.sum(y[:, :2], axis=1), name="first two")
        >>> t
        Score('first two')
    """

    def __init__(self, fn, name: str | None = None):
        if not callable(fn):
            raise TypeError(f"Expected `fn` to be callable. Received: fn={fn!r}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "score")

    def __repr__(self):
        return f"Score({self.name!r})"

    def bind(self, intro):
        fn, name = self.fn, self.name

        def score(activations, outputs, columns):
            import tensorflow as tf

            value = tf.cast(fn(outputs[0] if len(outputs) == 1 else list(outputs)), tf.float32)
            if value.shape.rank == 2 and value.shape[1] == 1:
                value = value[:, 0]
            if value.shape.rank != 1:
                raise ValueError(
                    f"Expected the score {name!r} to return one value per image, shape "
                    f"(batch,). Received: shape {tuple(value.shape)}"
                )
            return value

        # the function itself is the key: another function is another graph
        return Binding(self, None, score, key=(fn,))


class Sum(Target):
    """A weighted sum of targets; built by `+`, `-` and `*` on targets."""

    def __init__(self, terms):
        self.terms = [(float(w), t) for w, t in terms]
        for _, t in self.terms:
            if isinstance(t, Sum) or not isinstance(t, Target):
                raise TypeError(f"Expected leaf targets in a Sum. Received: {t!r}")

    def __repr__(self):
        parts = []
        for w, t in self.terms:
            text = repr(t) if w == 1 else f"{w:g} * {t!r}"
            parts.append(text)
        return " + ".join(parts)


def as_target(target) -> Target:
    """Normalise what users pass as a target: a `Target`, a class index or a callable."""
    if isinstance(target, Target):
        return target
    if _is_scalar(target) and not isinstance(target, (bool, np.bool_)):
        return Class(target)
    if callable(target):
        return Score(target)
    raise TypeError(
        "Expected a target: a class index, a keras_introspect.targets object "
        f"(Class, Output, Channel, Neuron, Layer, Score, or a sum of them) or a callable. "
        f"Received: target={target!r}"
    )


class Binding:
    """A leaf target resolved against one model: the target protocol.

    Compiled functions call `score(activation, outputs, columns)` inside a
    traced forward pass and are cached by `key`; everything else that
    varies between targets of the same kind must come in through `columns`,
    so that a new target object does not trace the model again.

    Args:
        target: the `Target` that was bound.
        path: the layer path whose activation `score` reads (as
            `Introspector.layer(...).path`), or `None` for the model output.
        score: `score(activation, outputs, columns) -> (rows,)` float32
            tensor: `activation` is the tapped tensor of `path` (`None`
            without a path), `outputs` the flat list of model outputs and
            `columns` an int32 `(rows, len(columns))` tensor with this
            target's columns for every row.
        columns: the integer values the score reads per row (class,
            channel, position): inputs, never part of the graph.
        key: hashable; whatever else the traced score depends on (options,
            constant arrays). Two bindings of one type, path and key must
            compute the same function of `columns`.
        per_image: optional int32 values per image: `(n,)` of the first
            column (per-image classes), or `(n, k)` of the first `k` columns
            (per-image classes and regions of a dense output).
        per_image_what: what `per_image` holds, for errors.
        many: optional list of values of the first column explained in one
            call, one output each (`Channel(layer, "all")`).
        position: the spatial position of a single unit, if the target has
            one (used to restrict occlusion to its receptive field).
        reads_output: whether `score` reads `outputs` (default `True`). A
            binding with a `path` that does not (the built-in `Channel`,
            `Neuron`, `Layer` and `Direction`) lets the forward pass stop
            once its layer has run; `outputs` is then `[None]`.
    """

    def __init__(
        self,
        target,
        path,
        score,
        columns=(0,),
        key=(),
        per_image=None,
        many=None,
        position=None,
        per_image_what: str = "class index",
        reads_output: bool = True,
    ):
        if not callable(score):
            raise TypeError(f"Expected `score` to be callable. Received: score={score!r}")
        self.target = target
        self.path = path
        self.score = score
        self.columns = tuple(int(c) for c in columns) or (0,)
        self.key = key
        self.per_image = per_image
        self.many = many
        self.position = position
        self.per_image_what = per_image_what
        self.reads_output = bool(reads_output)

    @property
    def constant(self) -> int:
        """The first column (class or channel index)."""
        return self.columns[0]


class Direction(_LayerTarget):
    """How strongly a layer's activations point along a direction, e.g. a concept vector.

    At every position of the layer the activation vector `a` (its channels)
    is compared with `vector`: by the dot product `a . v`, or by the cosine
    `a . v / (|a| |v|)`. The per-position values are then aggregated to one
    scalar per image. A layer without spatial axes (dense) has one position.

    Args:
        layer: layer selector.
        vector: `(channels,)` direction in the layer's channel space.
        aggregate: ``"mean"``, ``"max"`` or ``"sum"`` over positions.
        similarity: ``"dot"`` or ``"cosine"``.

    A new vector is a new graph (it is part of the target's key); another
    class or channel elsewhere in a sum is not.

    Example:
        >>> Direction("conv2", [1.0, 0.0, -1.0], similarity="cosine")
        Direction('conv2', (3,), aggregate='mean', similarity='cosine')
    """

    SIMILARITIES = ("dot", "cosine")

    def __init__(self, layer, vector, aggregate: str = "mean", similarity: str = "dot"):
        self.layer = layer
        vector = np.asarray(vector, np.float32)
        if vector.ndim != 1 or not len(vector) or not np.all(np.isfinite(vector)):
            raise ValueError(
                "Expected `vector` as a finite 1-D array of one value per channel. "
                f"Received: vector with shape {vector.shape}"
            )
        if similarity not in self.SIMILARITIES:
            raise ValueError(
                f"Expected `similarity` to be one of {list(self.SIMILARITIES)}. "
                f"Received: similarity={similarity!r}"
            )
        if similarity == "cosine" and not np.any(vector):
            raise ValueError("Expected a non-zero `vector` for similarity='cosine'")
        self.vector = vector
        self.aggregate = _check_aggregate(aggregate)
        self.similarity = similarity

    def __repr__(self):
        return (
            f"Direction({self.layer!r}, {self.vector.shape}, aggregate={self.aggregate!r}, "
            f"similarity={self.similarity!r})"
        )

    def bind(self, intro):
        info = self._info(intro)
        n_channels = info.output_shape[info.channel_axis]
        if n_channels != len(self.vector):
            raise ValueError(
                f"Expected a vector of {n_channels} values, one per channel of layer "
                f"{info.path!r}. Received: vector with {len(self.vector)} values"
            )
        vector, axis = self.vector, info.channel_axis
        aggregate, cosine = self.aggregate, self.similarity == "cosine"

        def score(activation, outputs, columns):
            import tensorflow as tf

            a = channels_last(activation, axis)
            v = tf.constant(vector)
            value = tf.tensordot(a, v, axes=[[a.shape.rank - 1], [0]])
            if cosine:
                norm = tf.norm(a, axis=-1) * float(np.linalg.norm(vector))
                value = tf.math.divide_no_nan(value, norm)
            return _reduce(value, aggregate)

        key = (aggregate, self.similarity, vector.tobytes())
        return Binding(self, info.path, score, key=key, reads_output=False)


def _bound_leaf(target, intro) -> Binding:
    binding = target.bind(intro)
    if not isinstance(binding, Binding):
        raise TypeError(
            f"Expected {type(target).__name__}.bind(intro) to return a targets.Binding. "
            f"Received: {binding!r}"
        )
    return binding


class BoundTarget:
    """A target resolved against one model; used inside compiled functions.

    Each leaf owns integer columns of a `params` matrix (its class, channel
    or position per row), so per-image classes, other channels and other
    units need no re-tracing.

    Attributes:
        paths: layers whose activations the score needs (tap these).
        leaves: `(weight, Binding)` of each term, in order.
        n_columns: columns of `params` (all leaves together).
        n_outputs: how many scores per image (> 1 for `Channel(..., "all")`).
        output_labels: the channel indices behind those scores.
    """

    def __init__(self, target, intro):
        target = as_target(target)
        self.target = target
        self.leaves = [(w, _bound_leaf(t, intro)) for w, t in _terms(target)]
        self.offsets = list(np.cumsum([0] + [len(leaf.columns) for _, leaf in self.leaves]))
        self.n_columns = int(self.offsets[-1])
        self.paths = list(dict.fromkeys(leaf.path for _, leaf in self.leaves if leaf.path))
        many = [(i, leaf) for i, (_, leaf) in enumerate(self.leaves) if leaf.many is not None]
        if len(many) > 1:
            raise ValueError(
                "Expected at most one term with several channels in a sum of targets. "
                f"Received: {target!r}"
            )
        self._many = many[0] if many else None
        self.n_outputs = len(many[0][1].many) if many else 1
        self.output_labels = list(many[0][1].many) if many else None
        per_image = [leaf for _, leaf in self.leaves if leaf.per_image is not None]
        shortest = min(per_image, key=lambda leaf: len(leaf.per_image), default=None)
        self.n_per_image = None if shortest is None else len(shortest.per_image)
        self._per_image_what = None if shortest is None else shortest.per_image_what

    @property
    def structure(self) -> tuple:
        """What a compiled function of this target depends on.

        Class, channel and position indices are `params` columns, not part
        of the traced graph, so targets that differ only in them share one
        compiled function.
        """
        leaves = tuple(
            (weight, type(leaf.target), leaf.path, len(leaf.columns), leaf.key)
            for weight, leaf in self.leaves
        )
        return (leaves, self.n_outputs)

    @property
    def inner_only(self) -> bool:
        """Whether the score reads inner activations only (Neuron, Channel, Layer
        and Direction targets and sums of them; a custom binding says so with
        `reads_output=False`): a forward pass may then stop once their layers
        have run (`Tap(truncate=True)`), and the compiled graph holds the model up
        to those layers, not the whole model."""
        return bool(self.paths) and all(
            leaf.path and not leaf.reads_output for _, leaf in self.leaves
        )

    @property
    def neuron(self):
        """The only leaf when the target is a single `Neuron`, else `None`."""
        if len(self.leaves) == 1 and self.leaves[0][1].position is not None:
            return self.leaves[0][1]
        return None

    def check_n_samples(self, n: int | None) -> None:
        """Raise if per-image class indices do not match the number of images."""
        if n is not None and self.n_per_image is not None and self.n_per_image != n:
            raise ValueError(
                f"Expected one {self._per_image_what} per image ({n} images). Received: "
                f"{self.n_per_image} value(s) in {self.target!r}"
            )

    def params(self, start: int, n: int) -> np.ndarray:
        """`(n, n_columns)` int32 columns for images `start ... start + n - 1`."""
        out = np.empty((n, self.n_columns), np.int32)
        for j, (_, leaf) in zip(self.offsets, self.leaves, strict=False):
            out[:, j : j + len(leaf.columns)] = leaf.columns
            if leaf.per_image is None:
                continue
            part = leaf.per_image[start : start + n]
            if len(part) < n:
                raise ValueError(
                    f"Expected one {leaf.per_image_what} per image. Received: "
                    f"{len(leaf.per_image)} value(s) in {self.target!r} for more images"
                )
            if part.ndim == 1:
                out[:, j] = part
            else:
                out[:, j : j + part.shape[1]] = part
        return out

    def expand(self, params: np.ndarray) -> np.ndarray:
        """Repeat each row `n_outputs` times, one row per listed channel."""
        if self._many is None:
            return params
        index, leaf = self._many
        column = self.offsets[index]
        out = np.repeat(params, self.n_outputs, axis=0)
        out[:, column] = np.tile(np.asarray(leaf.many, np.int32), len(params))
        return out

    def score(self, activations, output, params):
        """`(rows,)` float32 scores from one tapped forward pass.

        Args:
            activations: tensors of the layers in `paths`, in that order
                (a tap may return more after them; they are ignored).
            output: the model output (any structure).
            params: `(rows, n_columns)` int32 columns (`params`/`expand`).
        """
        import tensorflow as tf

        by_path = dict(zip(self.paths, activations[: len(self.paths)], strict=True))
        outputs = tf.nest.flatten(output)
        total = None
        for j, (weight, leaf) in zip(self.offsets, self.leaves, strict=False):
            source = by_path[leaf.path] if leaf.path else None
            value = leaf.score(source, outputs, params[:, j : j + len(leaf.columns)])
            value = value if weight == 1 else weight * value
            total = value if total is None else total + value
        return tf.reshape(total, [-1])
