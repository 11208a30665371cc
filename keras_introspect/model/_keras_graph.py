"""Reading the symbolic graph Keras keeps for Functional and Sequential models.

The one place that reads Keras 3's graph internals. A Functional model (and
the Functional inside a built Sequential, `Sequential._functional`) is a
`keras.src.ops.function.Function`: `_nodes_by_depth` maps a depth to the
`Node`s of that depth (deepest first is execution order), each with its
`operation`, `arguments` (`SymbolicArguments` with `.args` / `.kwargs`),
`outputs` (KerasTensors, static shapes known) and `is_input`. A test
(`tests/model/test_analysis.py`) fails if a Keras release changes these.
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
