"""What is explained or optimized: one scalar score per image.

A target is computed from one forward pass of the model (see
`Introspector.tap`): a class score, a layer's whole output, one channel
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
        f"Expected a keras_introspect target (Class, Channel, Neuron, Layer, Score). "
        f"Received: {target!r} of type {type(target).__name__}"
    )


class Class(Target):
    """The score of one class: a logit by default.

    Args:
        index: class index, or a sequence with one class index per image
            (e.g. the labels, or the predicted classes).
        logits: when the model ends in a softmax or sigmoid, explain its
            input (the pre-activation logit) instead of the probability.
            Probabilities saturate, so their gradients vanish for confident
            predictions (Simonyan et al. 2014 use the unnormalised score).
        output: which model output: its position, or for a model with dict
            outputs its key (or the output layer's name). `None` (default):
            the model's only output, or the first of a list of outputs; a
            model with dict outputs must name one (their order is the sorted
            keys, which nobody means by "the first").

    Example:
        >>> Class(281)
        Class(281)
        >>> Class([0, 2, 1], logits=False)
        Class([0, 2, 1], logits=False)
    """

    def __init__(self, index, logits: bool = True, output=None):
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

    def __repr__(self):
        index = self.index
        if isinstance(index, list) and len(index) > 8:
            index = "[" + ", ".join(map(str, index[:6])) + f", ... ({len(index)} indices)]"
        else:
            index = repr(index)
        extra = "" if self.logits else ", logits=False"
        extra += "" if self.output is None else f", output={self.output!r}"
        return f"Class({index}{extra})"

    def bind(self, intro):
        shapes = intro.output_shapes
        output = output_index(intro, self.output)
        shape = shapes[output]
        if len(shape) != 2:
            raise ValueError(
                f"Class targets need a model output of shape (batch, classes). Received: "
                f"output {output} with shape {shape}; use targets.Score(fn) for other outputs"
            )
        n_classes = shape[1]
        indices = [self.index] if _is_int(self.index) else self.index
        indices = [check_index(i, n_classes, "class index") for i in indices]
        logits = self.logits

        def score(activations, outputs, columns):
            import tensorflow as tf

            from keras_introspect.model.tap import pre_activation

            out = outputs[output]
            if logits:
                out = pre_activation(out)
            return tf.gather(tf.cast(out, tf.float32), columns[:, 0], axis=1, batch_dims=1)

        per_image = None if _is_int(self.index) else np.asarray(indices, np.int32)
        return Binding(self, None, score, (indices[0],), key=(output, logits), per_image=per_image)


def output_index(intro, output) -> int:
    """Position of the model output `output` names (see `Class`); errors name the outputs."""
    shapes = intro.output_shapes
    keys = intro.output_keys
    names = list(getattr(intro.model, "output_names", None) or [])
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
            f"Received: output={output!r}"
        )
    return check_index(output, len(shapes), "`output` (model output)")


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
        aggregate, axis = self.aggregate, info.channel_axis

        def score(activation, outputs, columns):
            import tensorflow as tf

            a = channels_last(activation, axis)
            return _reduce(tf.gather(a, columns[:, 0], axis=-1, batch_dims=1), aggregate)

        return Binding(self, info.path, score, (constant,), key=(aggregate,), many=many)


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
            if free:  # the layer's size comes with the data: check it there
                size = tf.shape(a)[1:]
                tf.debugging.assert_less(
                    index,
                    tf.broadcast_to(size, tf.shape(index)),
                    message=f"Neuron position outside layer {path!r} for these images",
                )
            return tf.gather_nd(a, index, batch_dims=1)

        return Binding(self, info.path, score, (channel, *position), position=position)


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
        aggregate = self.aggregate

        def score(activation, outputs, columns):
            import tensorflow as tf

            return _reduce(tf.cast(activation, tf.float32), aggregate)

        return Binding(self, info.path, score, key=(aggregate,))


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
        f"(Class, Channel, Neuron, Layer, Score, or a sum of them) or a callable. "
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
        per_image: optional `(n,)` int32 values of the first column, one per
            image (per-image classes).
        many: optional list of values of the first column explained in one
            call, one output each (`Channel(layer, "all")`).
        position: the spatial position of a single unit, if the target has
            one (used to restrict occlusion to its receptive field).
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
        return Binding(self, info.path, score, key=key)


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
        per_image = [leaf.per_image for _, leaf in self.leaves if leaf.per_image is not None]
        self.n_per_image = min((len(p) for p in per_image), default=None)

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
    def neuron(self):
        """The only leaf when the target is a single `Neuron`, else `None`."""
        if len(self.leaves) == 1 and self.leaves[0][1].position is not None:
            return self.leaves[0][1]
        return None

    def check_n_samples(self, n: int | None) -> None:
        """Raise if per-image class indices do not match the number of images."""
        if n is not None and self.n_per_image is not None and self.n_per_image != n:
            raise ValueError(
                f"Expected one class index per image ({n} images). Received: "
                f"{self.n_per_image} indices in {self.target!r}"
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
                    f"Expected one class index per image. Received: "
                    f"{len(leaf.per_image)} indices in {self.target!r} for more images"
                )
            out[:, j] = part
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
