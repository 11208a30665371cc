"""The explorer: a static site of every unit of every chosen layer of a model.

`explore(model, x, y, layers, out)` computes (`explore.compute`, cached in
`out/_cache`) and writes the pages (`explore.site`); see `docs/explore.md`.

`keras_introspect.explore` names both this package and the function: once
a submodule is imported, Python binds the package to that attribute of
`keras_introspect`, so the package itself is callable and calls the
function (`ki.explore(model, x, ...)` works either way).
"""

import inspect
import sys
import types

from keras_introspect.explore.explorer import ExploreResult, explore

__all__ = ["ExploreResult", "explore"]


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return explore(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
__signature__ = inspect.signature(explore)  # what `inspect` and `help` show for the call
