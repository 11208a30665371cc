"""Every private Keras / TensorFlow access of the package, each named and wrapped.

Nothing outside this module reads an underscore attribute of a Keras object
or a TensorFlow module that is not public API. Each function below names
what it relies on; `tests/model/test_keras_compat.py` has one test per
access that fails with "Keras <version> changed <what>" when a release
changes it, so an upgrade says which access broke.

The symbolic graph: a Functional model (and the Functional inside a built
Sequential, `Sequential._functional`) is a `keras.src.ops.function.Function`:
`_nodes_by_depth` maps a depth to the `Node`s of that depth (deepest first
is execution order), each with its `operation`, `arguments`
(`SymbolicArguments` with `.args` / `.kwargs`), `outputs` (KerasTensors,
static shapes known) and `is_input`.
"""

from __future__ import annotations


def graph_of(model):
    """The Keras `Function` holding `model`'s graph, or `None` (subclassed, unbuilt)."""
    import keras

    graph = getattr(model, "_functional", None) if isinstance(model, keras.Sequential) else model
    if graph is None or not isinstance(getattr(graph, "_nodes_by_depth", None), dict):
        return None
    try:
        graph.inputs, graph.outputs  # noqa: B018 - both must exist
    except (AttributeError, ValueError):
        return None
    return graph


def node_calls(graph):
    """`(operation, args, kwargs, outputs)` of every call in `graph`, in execution order."""
    by_depth = graph._nodes_by_depth
    for depth in sorted(by_depth, reverse=True):
        for node in by_depth[depth]:
            if node.operation is None or node.is_input:
                continue
            yield node.operation, node.arguments.args, node.arguments.kwargs, list(node.outputs)


def is_symbolic(value) -> bool:
    """Whether `value` is a KerasTensor (an edge of the graph)."""
    import keras

    return isinstance(value, keras.KerasTensor)


# ------------------------------------------------------------------ layers
def direct_sublayers(layer) -> list:
    """The layers `layer` holds directly (`Layer._flatten_layers`, not recursive)."""
    return list(layer._flatten_layers(include_self=False, recursive=False))


def all_sublayers(layer) -> list:
    """Every layer inside `layer`, nested ones too (`Layer._flatten_layers`)."""
    return list(layer._flatten_layers(include_self=False, recursive=True))


def producing_layer(tensor):
    """The layer whose call made the symbolic `tensor` (`KerasTensor._keras_history`),
    or `None`."""
    history = getattr(tensor, "_keras_history", None)
    return history[0] if history is not None else None


def build_shapes(model):
    """The input shapes a subclassed model was built with (`_build_shapes_dict`), or
    `None`."""
    return getattr(model, "_build_shapes_dict", None)


def keras_logits(tensor):
    """The logits Keras attaches to the output of its softmax / sigmoid
    (`_keras_logits`), or `None`."""
    return getattr(tensor, "_keras_logits", None)


# The attribute holding a layer's dtype policy (shadowed for mixed precision).
DTYPE_POLICY = "_dtype_policy"
# A Functional's explicit input spec, read before its Inputs' shapes (shadowed to
# let a truncated pass take patches of any size).
MANUAL_INPUT_SPEC = "_manual_input_spec"


def dtype_policy(layer):
    """`layer`'s dtype policy object (`_dtype_policy`), or `None`."""
    return getattr(layer, DTYPE_POLICY, None)


def is_functional_graph(layer) -> bool:
    """Whether `layer` checks its inputs as a Functional does (`_inputs_struct`)."""
    return hasattr(layer, "_inputs_struct")


# -------------------------------------------------------------- TensorFlow
def summary_metadata(plugin: str):
    """TensorBoard's `SummaryMetadata` for a plugin (a TensorFlow protobuf with no
    public constructor), so logs are written without the tensorboard package."""
    from tensorflow.core.framework import summary_pb2

    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin)
    )
