"""Loading saved Keras models with errors that say what went wrong."""

from __future__ import annotations

import os


def load_model(path, custom_objects=None):
    """Load a `.keras` (Keras 3) or legacy `.h5` model file without compiling it.

    Args:
        path: file path.
        custom_objects: optional dict of custom layers/functions by name.

    Returns:
        The `keras.Model`.

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: the file is not a model Keras can load (the message gives
            Keras' reason, e.g. an unknown custom layer).

    Example:
        >>> model = ki.load_model("classifier.keras")  # doctest: +SKIP
    """
    import keras

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No model file at {path!r}")
    if os.path.isdir(path):
        raise ValueError(
            f"Expected a .keras or .h5 model file. Received a directory: {path!r} "
            "(TensorFlow SavedModel folders cannot be loaded as Keras 3 models; "
            "re-save with model.save('model.keras'))"
        )
    try:
        return keras.saving.load_model(path, custom_objects=custom_objects, compile=False)
    except Exception as err:  # Keras raises many types for unreadable files
        missing = unknown_class(err)
        if missing is not None:
            raise ValueError(
                f"{path!r} uses the class {missing!r}, which Keras does not know here: "
                "pass it in `custom_objects` (the CLI: --custom-objects module:name, or a "
                "Python file that defines it)"
            ) from err
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"Could not load a Keras model from {path!r}: {first}") from err


def unknown_class(error) -> str | None:
    """The class name in Keras' "Could not locate class 'X'" (or "Unknown layer: 'X'"), if any."""
    import re

    text = str(error)
    for pattern in (r"Could not locate class '([^']+)'", r"Unknown (?:layer|object)[^']*'([^']+)'"):
        found = re.search(pattern, text)
        if found:
            return found.group(1)
    return None


def custom_objects_from(specs) -> dict:
    """`{name: object}` from `module:name` strings or paths of Python files.

    A `module:name` imports `module` and takes its attribute `name` (also
    `module:` for every public class of the module); a `.py` file is run
    and every class it defines is taken (with `keras.saving`'s
    registrations it made).

    Raises:
        ValueError: a module, file or name that cannot be found (one line).
    """
    import importlib
    import importlib.util
    import inspect

    found = {}
    for spec in specs or ():
        if spec.endswith(".py"):
            if not os.path.isfile(spec):
                raise ValueError(f"No Python file at {spec!r} for --custom-objects")
            module_spec = importlib.util.spec_from_file_location(
                f"_ki_custom_{len(found)}", os.path.abspath(spec)
            )
            module = importlib.util.module_from_spec(module_spec)
            try:
                module_spec.loader.exec_module(module)
            except Exception as err:
                raise ValueError(f"Running {spec!r} failed: {type(err).__name__}: {err}") from err
            found.update(
                {n: v for n, v in vars(module).items() if inspect.isclass(v) and not n[:1] == "_"}
            )
            continue
        module_name, _, name = spec.partition(":")
        if not module_name or not _:
            raise ValueError(
                f"Expected --custom-objects as module:name or a .py file. Received: {spec!r}"
            )
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise ValueError(f"Cannot import module {module_name!r} for {spec!r}: {err}") from err
        if not name:
            found.update(
                {n: v for n, v in vars(module).items() if inspect.isclass(v) and n[:1] != "_"}
            )
        elif not hasattr(module, name):
            raise ValueError(f"Module {module_name!r} has no {name!r} (from {spec!r})")
        else:
            found[name] = getattr(module, name)
    return found
