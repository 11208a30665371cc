"""`Introspector`: every layer of a Keras 3 model, its activations and fields."""

from __future__ import annotations

import dataclasses
import html
import threading
import weakref
from dataclasses import dataclass

import keras
import numpy as np

from keras_introspect._data import Batches, InputSpec
from keras_introspect._memory import (
    Halver,
    concat_pieces,
    resolve_batch_size,
)
from keras_introspect._progress import progress_bar
from keras_introspect._tensor import reduce_axes
from keras_introspect._validation import (
    check_backend,
    check_model,
    check_one_of,
    check_verbose,
)
from keras_introspect.exceptions import ModelNotBuiltError
from keras_introspect.model import receptive_field as rf
from keras_introspect.model._instrument import first_input, recording
from keras_introspect.model._keras_compat import (
    build_shapes,
    direct_sublayers,
    dtype_policy,
    producing_layer,
)
from keras_introspect.model.selectors import of_kind, select, select_one
from keras_introspect.model.tap import COMPUTE_DTYPES, Tap, producers


@dataclass(frozen=True)
class LayerInfo:
    """One entry of the flat layer list.

    Attributes:
        path: names from the outer model down, joined by "/" (layer names may
            contain dots, never slashes).
        name: the layer's own name.
        type: class name, e.g. "Conv2D".
        layer: the `keras.layers.Layer` object (shared with the model).
        depth: nesting depth (0 for layers of the outer model).
        is_container: whether the layer holds other layers (a nested model).
        input_of: for an `InputLayer`, `(container, position)`: the layer stands
            for that input of the container; `None` otherwise.
        output_shape: static output shape with batch axis `None` (a list for
            layers with several outputs); `None` until analysed or if unused.
        n_params: number of weights.
        receptive_field: `ReceptiveField`, or `None` when undefined. Past a
            squeeze-and-excitation gate it is the *local* field of the
            spatial path, and `global_context` says so.
        receptive_field_reason: why `receptive_field` is `None`.
        channel_axis: axis of channels in the output (1 for channels_first).
        n_calls: how often the layer runs in one forward pass.
    """

    path: str
    name: str
    type: str
    layer: object = dataclasses.field(repr=False)
    depth: int = 0
    is_container: bool = False
    input_of: tuple | None = dataclasses.field(default=None, repr=False)
    output_shape: object = None
    n_params: int = 0
    receptive_field: rf.ReceptiveField | None = None
    receptive_field_reason: str | None = None
    channel_axis: int = -1
    n_calls: int = 0

    @property
    def global_context(self) -> str | None:
        """Where the units also receive a summary of the whole input (a gate with a
        globally pooled branch), or `None`: then `receptive_field` is all they see."""
        field = self.receptive_field
        return field.global_context if field is not None else None

    @property
    def spatial_shape(self) -> tuple | None:
        """Output shape without batch and channel axes, e.g. `(h, w)`; `None` if unknown."""
        shape = self.output_shape
        if shape is None or isinstance(shape, list):
            return None
        inner = list(shape[1:])
        if inner:
            inner.pop(self.channel_axis % len(shape) - 1)
        return tuple(inner)


def _children(layer) -> list:
    if isinstance(layer, keras.Model):
        return list(layer.layers)
    return direct_sublayers(layer)


def _input_layers(container) -> dict:
    """`{id(InputLayer): position}` for a Functional container."""
    try:
        inputs = container.inputs or []
    except (AttributeError, ValueError):
        return {}
    out = {}
    for position, tensor in enumerate(keras.tree.flatten(inputs)):
        layer = producing_layer(tensor)
        if layer is not None:
            out[id(layer)] = position
    return out


def _channel_axis(layer) -> int:
    if getattr(layer, "data_format", None) == "channels_first":
        return 1
    axis = getattr(layer, "axis", None)
    return 1 if axis == 1 and type(layer).__name__ == "BatchNormalization" else -1


def _walk(model) -> list:
    infos, seen = [], {id(model)}

    def visit(container, prefix: str, depth: int):
        inputs = _input_layers(container)
        for layer in _children(container):
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            children = _children(layer)
            position = inputs.get(id(layer))
            infos.append(
                LayerInfo(
                    path=prefix + layer.name,
                    name=layer.name,
                    type=type(layer).__name__,
                    layer=layer,
                    depth=depth,
                    is_container=bool(children),
                    input_of=(container, position) if position is not None else None,
                    channel_axis=_channel_axis(layer),
                )
            )
            if children:
                visit(layer, prefix + layer.name + "/", depth + 1)

    visit(model, "", 0)
    return infos


def _shape(outputs):
    import tensorflow as tf

    flat = tf.nest.flatten(outputs)
    shapes = [tuple(t.shape) for t in flat if hasattr(t, "shape")]
    return shapes[0] if len(shapes) == 1 else shapes


_SESSION_ATTRIBUTE = "_keras_introspect_session"
_SESSIONS_LOCK = threading.Lock()


def _specs_from(input_shape):
    if input_shape is None:
        return None
    shapes = input_shape
    if not (isinstance(shapes, (list, tuple)) and shapes and isinstance(shapes[0], (list, tuple))):
        shapes = [shapes]
    try:
        return [
            InputSpec((None, *(None if d is None else int(d) for d in s)), "float32")
            for s in shapes
        ]
    except (TypeError, ValueError) as err:
        raise ValueError(
            "Expected `input_shape` as a tuple of ints per input, without batch "
            f"axis, e.g. (32, 32, 3). Received: input_shape={input_shape!r}"
        ) from err


def _model_specs(model):
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if inputs:
        return [InputSpec(tuple(t.shape), str(t.dtype)) for t in keras.tree.flatten(inputs)]
    shapes = build_shapes(model)
    if shapes and len(shapes) == 1:
        shape = next(iter(shapes.values()))
        if shape and isinstance(shape[0], (int, type(None))):
            return [InputSpec((None, *shape[1:]), "float32")]
    return None


def _conflicts(given, known) -> bool:
    return len(given) != len(known) or any(
        len(g.shape) != len(k.shape)
        or any(kd is not None and kd != gd for gd, kd in zip(g.shape, k.shape, strict=True))
        for g, k in zip(given, known, strict=True)
    )


def _build_if_needed(model, given, input_shape) -> None:
    if model.built:
        known = _model_specs(model)
        if given and known and _conflicts(given, known):
            raise ValueError(
                f"Expected `input_shape` to match the model's inputs "
                f"{[k.shape[1:] for k in known]}. Received: input_shape={input_shape!r}"
            )
        return
    if given is None:
        raise ModelNotBuiltError(
            f"Model {model.name!r} was never built, so its layers have no weights "
            "or shapes yet. Pass `input_shape` (one sample, no batch axis), e.g. "
            "Introspector(model, input_shape=(32, 32, 3)), or call the model on "
            "data first"
        )
    zeros = [np.zeros((1, *s.shape[1:]), "float32") for s in given]
    model(zeros[0] if len(zeros) == 1 else zeros, training=False)


class ModelSession:
    """What is known about one live model, shared by every object that uses it.

    One session exists per model object: the flat layer list, the analysed
    shapes and receptive fields, and every compiled TensorFlow function built
    for the model (attribution steps, scans, optimisation loops), keyed by
    what their graph depends on. Compiled functions read the model's
    variables, so a session stays valid when weights change (`fit`,
    `set_weights`); it is rebuilt when the layers themselves change.

    The model holds its session (an attribute that Keras neither tracks nor
    saves) and the session holds the model through a weak reference, so a
    deleted model and its session form a cycle that Python's garbage
    collector frees, compiled functions included. Use
    `ModelSession.of(model)`; `Introspector(model)` is a view of it.
    """

    def __init__(self, model, given_specs):
        self._model = weakref.ref(model)
        self.lock = threading.RLock()
        self.given_specs = given_specs
        self.entries = _walk(model)
        self.layer_ids = _layer_ids(self.entries)
        self.analysed = None
        self.analysis = None  # "keras graph" (no tracing) or "trace", once analysed
        self.output_shapes = None
        self.compiled = {}
        self.trace_count = 0

    @classmethod
    def of(cls, model, input_shape=None) -> ModelSession:
        """The session of `model`, made (and the model built) on first use."""
        given = _specs_from(input_shape)
        with _SESSIONS_LOCK:
            session = model.__dict__.get(_SESSION_ATTRIBUTE)
            if session is not None and not session.serves(model):
                session = None  # a copy of a model, or its layers changed
            if session is None:
                _build_if_needed(model, given, input_shape)
                session = cls(model, given)
                object.__setattr__(model, _SESSION_ATTRIBUTE, session)  # not tracked by Keras
                return session
        if given is not None:
            known = session.given_specs or _model_specs(model)
            if known is None:
                session.given_specs = given
            elif _conflicts(given, known):
                raise ValueError(
                    f"Expected `input_shape` to match the model's inputs "
                    f"{[k.shape[1:] for k in known]} (for a model that takes any size, the "
                    "shape its layer table was first analysed with). Received: "
                    f"input_shape={input_shape!r}"
                )
        return session

    def serves(self, model) -> bool:
        """Whether this session describes `model` as it is now: the same object, the
        same layers, each with the same activation function and dtype policy."""
        return self._model() is model and _layer_ids(_walk(model)) == self.layer_ids

    @property
    def model(self):
        return self._model()

    def cached(self, key, build):
        """The compiled object stored under `key`, built by `build()` once."""
        found = self.compiled.get(key)
        if found is not None:
            return found
        with self.lock:
            found = self.compiled.get(key)
            if found is None:
                found = build()
                self.compiled[key] = found
            return found

    def note_trace(self) -> None:
        """Count one trace (called from inside every traced function)."""
        self.trace_count += 1

    def __deepcopy__(self, memo):
        return None  # a deep copy of a model gets its own session on first use

    def __reduce__(self):
        return (type(None), ())


def _layer_ids(entries) -> tuple:
    """What compiled graphs depend on besides the weights: the layers themselves, and
    what can be swapped on a layer in place (its activation, its dtype policy)."""
    return tuple(
        (
            id(info.layer),
            id(getattr(info.layer, "activation", None)),
            str(dtype_policy(info.layer)),
        )
        for info in entries
    )


class Introspector:
    """A flat view of every layer of a Keras 3 model, nested models expanded.

    It resolves layer selectors, builds sub-models and taps (activations of
    inner layers and the model output from one differentiable forward pass),
    computes receptive fields and streams activations over datasets. It never
    changes the model: no layer is rebuilt, re-wired or re-compiled.

    Args:
        model: a built `keras.Model` (Sequential, Functional, nested at any
            depth, multi-input/-output, or subclassed). A Sequential or
            subclassed model that was never built is built from `input_shape`
            (as calling it would).
        input_shape: shape of one sample without batch axis, e.g. `(32, 32, 3)`,
            or a list of shapes for several inputs. Needed for models that were
            never built, and for the layer table of subclassed models.

    Raises:
        ModelNotBuiltError: the model was never built and `input_shape` is None.
        UnsupportedBackendError: Keras does not run on TensorFlow.

    Example:
        >>> import keras, keras_introspect as ki
        >>> model = keras.Sequential([keras.Input((8, 8, 1)),
        ...     keras.layers.Conv2D(2, 3, name="conv"), keras.layers.Flatten(name="flat")])
        >>> intro = ki.Introspector(model)
        >>> intro.layer_paths
        ['conv', 'flat']
        >>> intro.receptive_field("conv")
        ReceptiveField(size=(3, 3), stride=(1, 1), offset=(0, 0), input_index=0)
        >>> acts = intro.activations(np.zeros((5, 8, 8, 1)), layers="conv")
        >>> acts["conv"].shape
        (5, 6, 6, 2)
    """

    def __init__(self, model, input_shape=None):
        check_backend()
        check_model(model)
        self.model = model
        self.input_shape = input_shape
        self._session = ModelSession.of(model, input_shape)
        self._entries = self._session.entries

    @property
    def session(self) -> ModelSession:
        """The `ModelSession` shared by every object working on this model."""
        return self._session

    @property
    def trace_count(self) -> int:
        """Functions traced for this model so far, by any object (a diagnostic)."""
        return self._session.trace_count

    def cached(self, key, build):
        """A compiled function shared by every object of this model (see `ModelSession`).

        `key` must name everything the traced graph depends on; what
        varies between calls (indices, seeds, baselines) is passed as input.
        """
        return self._session.cached(key, build)

    def note_trace(self) -> None:
        """Count one trace; every function given to `cached` calls it when traced."""
        self._session.note_trace()

    @property
    def input_specs(self) -> list | None:
        """Expected shape (batch first) and dtype of each model input, if known."""
        return self._session.given_specs or _model_specs(self.model)

    # ---------------------------------------------------------------- layers
    @property
    def layer_paths(self) -> list:
        """Paths of all layers, nested models expanded, in model order."""
        return [info.path for info in self._entries]

    @property
    def layers(self) -> list:
        """`LayerInfo` of all layers, with shapes and receptive fields."""
        return self._analyse()

    def select(self, selector) -> list:
        """`LayerInfo` of every layer matched by `selector` (see module docs), analysed.

        A string that names a layer and a group alike (a layer named "dense")
        selects the layer, with a `KerasIntrospectWarning`; `layers_of_kind`
        always gives the group.
        """
        return select(selector, self._analyse(), warn_groups=True)

    def layers_of_kind(self, kind: str) -> list:
        """Analysed `LayerInfo` of every layer of a kind, chosen by class, never by name.

        Args:
            kind: ``"all"`` (every layer but containers and inputs),
                ``"conv"``, ``"pool"`` or ``"dense"``. Unlike `select("dense")`,
                which means the layer *named* "dense" when there is one, this
                is always the group.
        """
        return of_kind(kind, self._analyse())

    def layer(self, selector, input_size=None) -> LayerInfo:
        """`LayerInfo` of the one layer matched by `selector`.

        Args:
            selector: one layer.
            input_size: `None` (the model's own input shape), or the spatial
                size of the input, e.g. `(H, W)`, `(L,)` or `(D, H, W)` (a list
                of them for several inputs): then `output_shape`,
                `receptive_field` and `receptive_field_reason` are those for
                inputs of that size (for a model of free input size; one trace
                per size, cached). Checked against a fixed size.

        Example:
            >>> x = keras.Input((None, None, 3))
            >>> y = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="conv")(x)
            >>> at = Introspector(keras.Model(x, y)).layer("conv", input_size=(32, 32))
            >>> at.spatial_shape, at.receptive_field.offset
            ((16, 16), (0, 0))
        """
        info = select_one(selector, self._analyse())
        if input_size is None:
            return info
        result = self._fields_at(input_size)[info.path]
        if "calls" not in result:  # the model's own size: the table's entry
            return info
        found = result.get("field")
        reason = info.receptive_field_reason
        if isinstance(found, rf.Undefined):
            reason = found.reason
        elif isinstance(found, rf.ReceptiveField):
            reason = None
        return dataclasses.replace(
            info,
            output_shape=result.get("shape", info.output_shape),
            receptive_field=found if isinstance(found, rf.ReceptiveField) else None,
            receptive_field_reason=reason,
        )

    def _analyse(self) -> list:
        """Trace the model once to read output shapes and receptive fields."""
        session = self._session
        if session.analysed is not None:
            return session.analysed
        with session.lock:
            if session.analysed is None:
                session.output_shapes, session.analysed = self._analysis()
        return session.analysed

    def _analysis(self) -> tuple:
        """`(output_shapes, analysed entries)`: from Keras' own graph where it has
        one (no tracing), else from one traced forward pass."""
        specs = self.input_specs
        if specs is None:
            raise ValueError(
                f"Cannot tell the input shape of model {self.model.name!r} (a "
                "subclassed model). Pass `input_shape` to Introspector"
            )
        found = self._graph_results() if self._session.given_specs is None else None
        self._session.analysis = "keras graph" if found is not None else "trace"
        output_shapes, results = found if found is not None else self._traced_results()
        analysed = []
        for info in self._entries:
            result = results[info.path]
            field = result.get("field")
            reason = None
            if result["calls"] == 0:
                reason = "not called in the forward pass"
            elif field is None:
                reason = "its input comes from an operation outside any layer"
            elif isinstance(field, rf.Undefined):
                reason = field.reason
            analysed.append(
                dataclasses.replace(
                    info,
                    output_shape=result.get("shape"),
                    n_params=int(info.layer.count_params()) if info.layer.built else 0,
                    receptive_field=field if isinstance(field, rf.ReceptiveField) else None,
                    receptive_field_reason=reason,
                    n_calls=result["calls"],
                )
            )
        return output_shapes, analysed

    def _inputs_of(self) -> dict:
        """`{id(container): [LayerInfo of its InputLayers]}`."""
        inputs_of = {}
        for info in self._entries:
            if info.input_of is not None:
                inputs_of.setdefault(id(info.input_of[0]), []).append(info)
        return inputs_of

    def _traced_results(self, specs=None) -> tuple:
        """Shapes, fields and call counts recorded while one forward pass is traced
        (for `specs`, default the model's input specs)."""
        inputs_of = self._inputs_of()
        import tensorflow as tf

        specs = specs or self.input_specs
        by_layer = {id(info.layer): info for info in self._entries}
        results = {info.path: {"calls": 0} for info in self._entries}
        fields = {}
        output_shapes = []

        def field_of(tensor, follow=True, depth=0):
            for source in producers(tensor):
                found = fields.get(source.ref())
                if found is not None:
                    return found
            # element-wise TensorFlow ops outside any layer (x + 3.0, x * gate)
            op = getattr(tensor, "op", None)
            if not follow or op is None or depth > 64 or op.type not in rf.ELEMENTWISE_TF_OPS:
                return None
            operands = [t for t in op.inputs if t.op.type != "Const"]
            operand_fields = [field_of(t, True, depth + 1) for t in operands]
            if any(f is None for f in operand_fields):
                return None
            found = rf.propagate_op(
                op,
                operand_fields,
                [tuple(t.shape) for t in operands],
                tuple(tensor.shape),
                kind=op.type,
            )
            fields[tensor.ref()] = found
            return found

        def on_call(layer, args, kwargs, outputs):
            ins = [t for t in tf.nest.flatten(first_input(args, kwargs)) if tf.is_tensor(t)]
            for child in inputs_of.get(id(layer), ()):
                tensor = ins[child.input_of[1]]
                results[child.path].update(
                    calls=1, shape=tuple(tensor.shape), field=field_of(tensor)
                )
            outs = [t for t in tf.nest.flatten(outputs) if tf.is_tensor(t)]
            result = results[by_layer[id(layer)].path]
            result["calls"] += 1
            if result["calls"] > 1 or not outs:
                return
            known = field_of(outs[0], follow=False)
            if known is None:
                known = rf.propagate(
                    layer,
                    [field_of(t) for t in ins],
                    [tuple(t.shape) for t in ins],
                    tuple(outs[0].shape),
                )
                for t in outs:
                    fields.setdefault(t.ref(), known)
            result.update(shape=_shape(outputs), field=known)

        def forward(*inputs):
            for i, tensor in enumerate(inputs):
                fields[tensor.ref()] = rf.model_input_field(tuple(tensor.shape), i)
            for info in self._entries:
                if info.input_of is not None and info.input_of[0] is self.model:
                    tensor = inputs[info.input_of[1]]
                    results[info.path].update(
                        calls=1, shape=tuple(tensor.shape), field=fields[tensor.ref()]
                    )
            output = self.model(inputs[0] if len(inputs) == 1 else list(inputs), training=False)
            output_shapes.extend(tuple(t.shape) for t in tf.nest.flatten(output))
            return tf.constant(0)

        signature = [tf.TensorSpec(s.shape, s.dtype) for s in specs]
        with recording([info.layer for info in self._entries], on_call):
            tf.function(forward, autograph=False).get_concrete_function(*signature)
        return output_shapes, results

    def _graph_results(self):  # noqa: C901 - issue 20 splits it
        """Shapes, fields and call counts read from Keras' symbolic graph, or `None`.

        Functional and built Sequential models (nested at any depth) keep
        every call as a node with static output shapes, so the receptive
        fields are propagated over the nodes without running TensorFlow.
        `None` (use a trace) for subclassed models, shared layers, nested
        models called on other shapes than they were built for, or any
        structure the walk does not know.
        """
        from keras_introspect.model._keras_compat import graph_of, is_symbolic, node_calls

        inputs_of = self._inputs_of()
        by_layer = {id(info.layer): info for info in self._entries}
        results = {info.path: {"calls": 0} for info in self._entries}
        fields = {}  # id(KerasTensor) -> field; the tensors live in the model's graph

        def shape(t):
            return tuple(t.shape)

        def run(graph, in_fields) -> bool:
            for tensor, field in zip(graph.inputs, in_fields, strict=True):
                fields[id(tensor)] = field
            for op, args, kwargs, outs in node_calls(graph):
                main = first_input(args, kwargs)
                if isinstance(main, dict):
                    return False
                ins = [t for t in keras.tree.flatten(main) if is_symbolic(t)]
                info = by_layer.get(id(op))
                if info is None:  # an operation outside any layer (x * 2.0)
                    if isinstance(op, keras.layers.Layer):
                        return False
                    operands = [t for t in keras.tree.flatten((args, kwargs)) if is_symbolic(t)]
                    known = rf.propagate_op(
                        op,
                        [fields.get(id(t)) for t in operands],
                        [shape(t) for t in operands],
                        shape(outs[0]) if outs else (),
                    )
                    for t in outs:
                        fields[id(t)] = known
                    continue
                result = results[info.path]
                result["calls"] += 1
                if result["calls"] > 1 or not outs:
                    return False  # shared layers: the trace tells calls apart
                in_fields = [fields.get(id(t)) for t in ins]
                if info.is_container:
                    inner = graph_of(op)
                    if (
                        inner is None
                        or len(ins) != len(inner.inputs)
                        or any(shape(a) != shape(b) for a, b in zip(ins, inner.inputs, strict=True))
                    ):
                        return False
                    for child in inputs_of.get(id(op), ()):
                        position = child.input_of[1]
                        results[child.path].update(
                            calls=1, shape=shape(ins[position]), field=in_fields[position]
                        )
                    if not run(inner, in_fields):
                        return False
                    out_fields = [fields.get(id(t)) for t in inner.outputs]
                    for t, field in zip(outs, out_fields, strict=True):
                        fields[id(t)] = field
                    known = out_fields[0]
                else:
                    known = rf.propagate(op, in_fields, [shape(t) for t in ins], shape(outs[0]))
                    for t in outs:
                        fields[id(t)] = known
                shapes = [shape(t) for t in outs]
                result.update(shape=shapes[0] if len(shapes) == 1 else shapes, field=known)
            return True

        graph = graph_of(self.model)
        if graph is None:
            return None
        top = []
        for i, tensor in enumerate(graph.inputs):
            top.append(rf.model_input_field(shape(tensor), i))
        for info in inputs_of.get(id(self.model), ()):
            tensor = graph.inputs[info.input_of[1]]
            results[info.path].update(calls=1, shape=shape(tensor), field=top[info.input_of[1]])
        if not run(graph, top):
            return None
        return [shape(t) for t in graph.outputs], results

    @property
    def output_keys(self) -> list | None:
        """The keys of a model whose outputs are a dict, in the order of `output_shapes`
        (Keras flattens a dict by sorted keys); `None` for other models."""
        try:
            structure = self.model.output
        except (AttributeError, ValueError):
            return None
        return sorted(structure) if isinstance(structure, dict) else None

    @property
    def output_shapes(self) -> list:
        """Static shape (batch axis `None`) of each model output, in order."""
        self._analyse()
        return list(self._session.output_shapes)

    def summary_rows(self) -> list:
        """The layer table as dicts: index, path, depth, type, output_shape,
        params, receptive_field (text, "-" where undefined; "+global" marks a
        local field whose units also see a gate over the whole input; "axes"
        a permuted field)."""
        rows = []
        for index, info in enumerate(self._analyse()):
            field = info.receptive_field
            if field is not None:
                text = (
                    "x".join(map(str, field.extent))
                    + " /"
                    + "x".join(map(str, field.in_input_order(field.stride)))
                )
                if field.axes is not None:
                    text += " (axes " + ",".join(map(str, field.axes)) + ")"
                if field.global_context is not None:
                    text += " +global"
            else:
                text = "-"
            shape = str(info.output_shape).replace("None", "?") if info.output_shape else "-"
            rows.append(
                {
                    "index": index,
                    "path": info.path,
                    "depth": info.depth,
                    "type": info.type,
                    "output_shape": shape,
                    "params": info.n_params,
                    "receptive_field": text,
                }
            )
        return rows

    def _repr_html_(self) -> str:
        """The layer table in a notebook: path (indented by nesting), type, output
        shape, weights and receptive field, escaped."""
        from keras_introspect._repr import html_table

        rows = [
            {
                "#": row["index"],
                "path": row["path"],
                "type": row["type"],
                "output shape": row["output_shape"],
                "params": f"{row['params']:,}",
                "receptive field": row["receptive_field"],
            }
            for row in self.summary_rows()
        ]
        title = html.escape(f"Introspector of {self.model.name!r}: {len(rows)} layers")
        return f"<div class='ki-result'><p><b>{title}</b></p>{html_table(rows, len(rows))}</div>"

    def summary(self, print_fn=None) -> None:
        """Print the layer table: path, type, output shape, weights, receptive field."""
        print_fn = print_fn or print
        rows = [("#", "path", "type", "output shape", "params", "receptive field")]
        for row in self.summary_rows():
            name = row["path"]
            if row["depth"]:
                name = "  " * row["depth"] + name.rsplit("/", 1)[-1]
            rows.append(
                (
                    str(row["index"]),
                    name,
                    row["type"],
                    row["output_shape"],
                    f"{row['params']:,}",
                    row["receptive_field"],
                )
            )
        widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
        line = lambda r: "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()  # noqa: E731
        print_fn(
            f'Model "{self.model.name}" - {len(rows) - 1} layers '
            "(receptive field: size /stride in input pixels; +global: the local field "
            "of a layer that also sees a gate pooled over the whole input)"
        )
        print_fn(line(rows[0]))
        print_fn("-" * len(line(rows[0])))
        for row in rows[1:]:
            print_fn(line(row))

    # ------------------------------------------------------- fields, models
    def receptive_field(self, selector, strict: bool = False, input_size=None):
        """Receptive field of a layer's units in input pixels.

        Args:
            selector: one layer.
            strict: raise `ValueError` with the reason instead of returning None.
            input_size: for a model of free input size (`Input((None, None, 3))`),
                the spatial size of the input, e.g. `(H, W)`, `(L,)` or
                `(D, H, W)` (a list of them for several inputs): fields that
                depend on it ('same' padding with strides) are computed for
                that size, once per size. Checked against a fixed size.

        Returns:
            `ReceptiveField(size, stride, offset)` (one value per spatial axis of
            the layer: `(l,)` for signals and flat vectors, `(h, w)`,
            `(d, h, w)`), or `None` where undefined (after Flatten/Dense, global
            pooling, resizing by a factor that is not whole); the reason is in
            `layer(selector).receptive_field_reason`.
        """
        info = self.layer(selector, input_size=input_size)
        field, reason = info.receptive_field, info.receptive_field_reason
        if field is None and strict:
            raise ValueError(f"Layer {info.path!r} has no receptive field: {reason}")
        return field

    def _fields_at(self, input_size) -> dict:
        """`{path: {"field": ...}}` for inputs of spatial size `input_size`; one
        trace per size, kept in the session (without a free axis: the table's)."""
        specs = self.input_specs
        sizes = input_size
        if not (isinstance(sizes, list) and sizes and isinstance(sizes[0], (list, tuple))):
            sizes = [sizes]
        if specs is None or len(sizes) != len(specs):
            raise ValueError(
                f"Expected `input_size` for each of the model's {len(specs or [])} input(s). "
                f"Received: input_size={input_size!r}"
            )
        concrete = []
        for size, spec in zip(sizes, specs, strict=True):
            inner = list(spec.shape[1:])
            size = (size,) if isinstance(size, int) else tuple(size)
            n = len(inner) - 1 if len(inner) >= 2 else len(inner)
            if len(size) != n or any(not isinstance(v, (int, np.integer)) or v < 1 for v in size):
                raise ValueError(
                    f"Expected `input_size` with {n} positive int(s), the spatial size of an "
                    f"input of shape {spec.shape}. Received: input_size={input_size!r}"
                )
            for axis, value in enumerate(size):
                if inner[axis] is not None and inner[axis] != value:
                    raise ValueError(
                        f"Expected `input_size` to match the model's fixed input size "
                        f"{tuple(inner[:n])}. Received: input_size={input_size!r}"
                    )
                inner[axis] = int(value)
            concrete.append(InputSpec((None, *inner), spec.dtype))
        if all(c.shape == s.shape for c, s in zip(concrete, specs, strict=True)):
            return {info.path: {"field": info.receptive_field} for info in self._analyse()}
        key = ("receptive fields", tuple(c.shape for c in concrete))
        return self.cached(key, lambda: self._traced_results(concrete)[1])

    def tap(
        self, layers, backward: str | None = None, compute_dtype=None, truncate: bool = False
    ) -> Tap:
        """A differentiable `Tap` returning `(activations, model_output)`.

        Args:
            layers: layer selector(s); may be `[]` for the output only.
            backward: `None`, `"guided"` or `"deconvnet"`: gradient rule for
                rectifiers (see `keras_introspect.model.backward`).
            compute_dtype: `None`, `"bfloat16"` or `"float16"`: run the
                float32 layers in that precision (see `Tap`).
            truncate: stop the forward pass once `layers` have run (the
                returned output is then `None`; see `Tap`).
        """
        check_one_of(compute_dtype, "compute_dtype", COMPUTE_DTYPES)
        infos = (
            select(layers, self._analyse()) if not (isinstance(layers, list) and not layers) else []
        )
        entries = [info.layer for info in self._entries]
        return Tap(self.model, infos, backward, entries, compute_dtype, truncate)

    def submodel(self, layers) -> keras.Model:
        """A `keras.Model` from the model inputs to the output(s) of `layers`.

        The sub-model shares the weights of the model (nothing is copied) and
        works for layers inside nested models. Its output is one tensor for one
        layer, a list for several.
        """
        from keras_introspect.model.submodel import TapModel

        return TapModel(self.model, self.tap(layers))

    # ----------------------------------------------------------- activations
    def _compiled_fn(self, infos, pooling, signature):
        import tensorflow as tf

        key = ("activations", tuple(i.path for i in infos), pooling, repr(signature))

        def build():
            # the model's output is not returned: stop once the layers have run
            tap = Tap(self.model, infos, truncate=True)

            def run(inputs):
                self.note_trace()
                activations, _ = tap(inputs)
                if pooling is None:
                    return activations
                return [_pool(a, info, pooling) for a, info in zip(activations, infos, strict=True)]

            return tf.function(run, input_signature=[signature], autograph=False)

        return self.cached(key, build)

    def activations(self, x, layers, batch_size: int = 32, verbose: int = 0, pooling=None) -> dict:
        """Activations of `layers` for every sample of `x`, streamed in batches.

        Args:
            x: images: numpy array or tf tensor `(n, ...)` (a single sample
                without batch axis is accepted), a list/dict of them for
                multi-input models, a `tf.data.Dataset` or `PyDataset`
                (yielding `x` or `(x, y)`), or a generator of batches.
            layers: layer selector(s).
            batch_size: samples per forward pass; results do not depend on it.
                ``"auto"``: as many as fit in a quarter of the memory available.
            verbose: 0 silent, 1 progress bar, 2 one line at the end.
            pooling: `None`, `"avg"` or `"max"` over the spatial axes (done
                on the device, so only `(n, channels)` is kept in memory).

        Returns:
            `{path: np.ndarray}` with arrays of shape `(n, *layer_output_shape)`
            (or `(n, channels)` when pooled), in the order of `layers`.
        """
        import tensorflow as tf

        check_one_of(pooling, "pooling", (None, "avg", "max"))
        verbose = check_verbose(verbose)
        batch_size = resolve_batch_size(batch_size, self, factor=1)  # forward only
        infos = select(layers, self._analyse())
        batches = Batches(x, batch_size, self.input_specs)
        progbar = progress_bar(batches.n_batches, verbose=verbose, unit_name="batch")
        out, parts, start = None, None, 0
        fn = None
        halver = Halver(batch_size, "Introspector.activations")
        for step, batch in enumerate(batches):
            shapes = [a.shape[1:] for a in tf.nest.flatten(batch)]
            if fn is None:
                signature = tf.nest.map_structure(
                    lambda a: tf.TensorSpec((None, *a.shape[1:]), tf.as_dtype(a.dtype)),
                    batch,
                )
                fn = self._compiled_fn(infos, pooling, signature)
                first_shapes = shapes
            elif shapes != first_shapes:
                raise ValueError(
                    "Expected every batch of `x` to hold samples of one shape: activations "
                    "are stacked into one array. Received: samples of shape "
                    f"{shapes[0] if len(shapes) == 1 else shapes} after "
                    f"{first_shapes[0] if len(first_shapes) == 1 else first_shapes}; call "
                    "activations once per input size"
                )
            values = concat_pieces(
                halver.map(lambda piece, fn=fn: [np.asarray(v) for v in fn(piece)], batch)
            )
            n = values[0].shape[0]
            if batches.n_samples is not None:
                if out is None:
                    out = [np.empty((batches.n_samples, *v.shape[1:]), v.dtype) for v in values]
                for target, v in zip(out, values, strict=True):
                    target[start : start + n] = v
            else:
                parts = parts or [[] for _ in values]
                for part, v in zip(parts, values, strict=True):
                    part.append(v)
            start += n
            progbar.update(step + 1)
        if out is None:
            out = [np.concatenate(p) for p in parts]
        return {info.path: v for info, v in zip(infos, out, strict=True)}

    def __repr__(self) -> str:
        return f"<Introspector model={self.model.name!r} layers={len(self._entries)}>"


def _pool(tensor, info, pooling):
    """`pooling` ("avg" or "max") over the spatial axes of a layer's output."""
    rank = tensor.shape.rank
    if rank is None or rank < 3:
        raise ValueError(
            f"Expected a layer with spatial axes for pooling={pooling!r}. Received: "
            f"layer {info.path!r} with output shape {tuple(tensor.shape)}"
        )
    axes = list(range(2, rank)) if info.channel_axis == 1 else list(range(1, rank - 1))
    return reduce_axes(tensor, pooling, axes)
