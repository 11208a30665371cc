"""Record what layers receive and return during one forward pass.

Keras 3 runs every layer through `Layer.__call__`, which ends in `self.call`.
While a `recording` block is open, `call` of the chosen layers is shadowed by
an instance attribute that forwards to the original and reports the call.
The block restores the layers exactly on exit, so the user's model is left as
it was; it is meant to be open only while a forward pass is traced, so compiled
functions carry no trace of it. This works the same for Sequential, Functional,
nested and subclassed models, and needs no graph surgery (which, in Keras 3,
would add inbound nodes to the user's layers).
"""

from __future__ import annotations

import contextlib
import threading

_LOCK = threading.RLock()


def _recorder(layer, inner, on_call):
    def call(*args, **kwargs):
        outputs = inner(*args, **kwargs)
        on_call(layer, args, kwargs, outputs)
        return outputs

    return call


@contextlib.contextmanager
def recording(layers, on_call):
    """Within the block, `on_call(layer, args, kwargs, outputs)` follows each call.

    Args:
        layers: the layers to watch (duplicates are watched once).
        on_call: callback invoked after each call of a watched layer.
    """
    with _LOCK:
        saved = []
        try:
            seen = set()
            for layer in layers:
                if id(layer) in seen:
                    continue
                seen.add(id(layer))
                had_own = "call" in layer.__dict__
                saved.append((layer, had_own, layer.__dict__.get("call")))
                object.__setattr__(layer, "call", _recorder(layer, layer.call, on_call))
            yield
        finally:
            for layer, had_own, previous in reversed(saved):
                if had_own:
                    object.__setattr__(layer, "call", previous)
                else:
                    object.__delattr__(layer, "call")


def first_input(args, kwargs):
    """The main input of a layer call (first positional argument or `inputs=`)."""
    if args:
        return args[0]
    for key in ("inputs", "x"):
        if key in kwargs:
            return kwargs[key]
    return None
