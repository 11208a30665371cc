"""Layer selectors: how users name layers, everywhere in keras_introspect.

A selector is a path (`"mobilenetv2_0.35_64/Conv1"`), a `LayerInfo`, a layer name, a unique
suffix of a path, an index into the flat layer list (negative too), a
`keras.layers.Layer`, a class name (`"Conv2D"`), one of the groups `"all"`,
`"conv"`, `"pool"`, `"dense"`, a regular expression matched against paths, or
a list of any of these.
"""

from __future__ import annotations

import difflib
import numbers
import re

from keras_introspect.exceptions import AmbiguousLayerError, LayerNotFoundError
from keras_introspect.model import _kinds as kinds

_GROUPS = {
    "conv": kinds.CONV | kinds.TRANSPOSED_CONV,
    "pool": kinds.POOL | kinds.GLOBAL_POOL,
    "dense": kinds.DENSE,
}
_REGEX_CHARS = set(".^$*+?{}[]|()\\")


def _is_leaf(info) -> bool:
    return not info.is_container and info.type != "InputLayer"


def _in_group(info, group: str) -> bool:
    if group == "all":
        return _is_leaf(info)
    names = {cls.__name__ for cls in type(info.layer).__mro__}
    return _is_leaf(info) and bool(names & _GROUPS[group])


def _not_found(selector, infos, why: str = "") -> LayerNotFoundError:
    # a top-level layer's path is its name: list each candidate once
    candidates = list(dict.fromkeys([i.path for i in infos] + [i.name for i in infos]))
    close = difflib.get_close_matches(str(selector), candidates, n=5, cutoff=0.5)
    hint = f" Closest valid names: {close}." if close else ""
    first = [i.path for i in infos[:8]]
    return LayerNotFoundError(
        f"No layer matches {selector!r}{why}.{hint} Expected a layer path or name "
        f"(e.g. {first}), an index in [-{len(infos)}, {len(infos) - 1}], a class name, "
        "'all', 'conv', 'pool', 'dense' or a regular expression"
    )


def _select_one_item(selector, infos, warn_groups=True) -> list:  # noqa: C901 - issue 20 splits it
    import keras

    if hasattr(selector, "path") and hasattr(selector, "layer"):  # a LayerInfo
        selector = selector.path
    if isinstance(selector, keras.layers.Layer):
        found = [i for i in infos if i.layer is selector]
        if not found:
            raise _not_found(
                getattr(selector, "name", selector),
                infos,
                " (layer object not in this model)",
            )
        return found[:1]
    if isinstance(selector, numbers.Integral) and not isinstance(selector, bool):
        if not -len(infos) <= selector < len(infos):
            raise LayerNotFoundError(
                f"Expected a layer index in [-{len(infos)}, {len(infos) - 1}]. "
                f"Received: index={selector}"
            )
        return [infos[selector]]
    if not isinstance(selector, str):
        raise TypeError(
            "Expected a layer selector (str, int, keras.layers.Layer or a list of "
            f"them). Received: {selector!r} of type {type(selector).__name__}"
        )
    for match in (
        lambda i: i.path == selector,
        lambda i: i.name == selector,
        lambda i: i.path.endswith("/" + selector),
    ):
        found = [i for i in infos if match(i)]
        if len(found) == 1:
            if warn_groups and (selector in _GROUPS or selector == "all"):
                _warn_name_over_group(selector, found[0])
            return found
        if found:
            raise AmbiguousLayerError(
                f"{selector!r} names {len(found)} layers: {[i.path for i in found]}. "
                "Use the full path"
            )
    if selector in _GROUPS or selector == "all":
        return [i for i in infos if _in_group(i, selector)]
    found = [i for i in infos if i.type == selector]
    if found:
        return found
    if _REGEX_CHARS & set(selector):
        try:
            pattern = re.compile(selector)
        except re.error:
            pattern = None
        if pattern is not None:
            found = [i for i in infos if pattern.fullmatch(i.path)]
            if found:
                return found
    raise _not_found(selector, infos)


def _warn_name_over_group(selector, info) -> None:
    import warnings

    from keras_introspect.exceptions import KerasIntrospectWarning

    way_out = {
        "dense": "'Dense'",
        "conv": "'Conv2D' (or 'Conv1D', ...)",
        "pool": "'MaxPooling2D' (or another pooling class)",
        "all": "Introspector.layers_of_kind('all')",
    }[selector]
    warnings.warn(
        f"{selector!r} is both the name of layer {info.path!r} and a group of layers; the "
        f"layer {info.path!r} was used. For the group, pass a class name such as {way_out}, "
        f"or Introspector.layers_of_kind({selector!r})",
        KerasIntrospectWarning,
        stacklevel=5,
    )


def spread(items, k: int) -> list:
    """Up to `k` items evenly spread over `items`: the last of each of `k` equal parts.

    Example:
        >>> spread(range(10), 3)
        [2, 6, 9]
    """
    items = list(items)
    if len(items) <= k:
        return items
    return [items[round((i + 1) * len(items) / k) - 1] for i in range(k)]


def of_kind(kind: str, infos) -> list:
    """The leaf layers of a group, by their class, never by name: `"all"`, `"conv"`,
    `"pool"` or `"dense"` (a layer *named* "dense" does not change the answer)."""
    if kind not in _GROUPS and kind != "all":
        raise ValueError(f"Expected a kind in {['all', *_GROUPS]}. Received: kind={kind!r}")
    return [i for i in infos if _in_group(i, kind)]


def select(selector, infos, warn_groups: bool = False) -> list:
    """All layers matched by `selector` (in model order for groups, else as given).

    A string that is both a layer's name and a group (`"dense"`) means the
    layer; with `warn_groups` (where users pass selectors of several layers) a
    `KerasIntrospectWarning` says so for a single string. Lists of names, paths
    the package passes itself and selectors of one layer never warn.
    """
    items = selector if isinstance(selector, (list, tuple)) else [selector]
    if isinstance(selector, (list, tuple)):
        warn_groups = False  # a list of names: the layers are meant
    if not items:
        raise ValueError("Expected at least one layer selector. Received: an empty list")
    out, seen = [], set()
    for item in items:
        for info in _select_one_item(item, infos, warn_groups):
            if info.path not in seen:
                seen.add(info.path)
                out.append(info)
    if not out:
        raise _not_found(selector, infos, " (the group is empty in this model)")
    return out


def select_one(selector, infos):
    """The single layer matched by `selector`; raise if it matches several."""
    found = select(selector, infos, warn_groups=False)
    if len(found) > 1:
        raise AmbiguousLayerError(
            f"Expected {selector!r} to name one layer. Received a selector matching "
            f"{len(found)} layers: {[i.path for i in found][:10]}"
        )
    return found[0]
