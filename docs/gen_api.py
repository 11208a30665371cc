"""Write `docs/api.md`, the API reference, from the docstrings of the public names.

Run: python docs/gen_api.py            (rewrites docs/api.md)
     python docs/gen_api.py --check    (exit 1 if docs/api.md is out of date)

The public names are `keras_introspect.__all__` and those of the modules
listed in `MODULES` (their `__all__`, or the classes and functions they
define); each entry gives the signature and the docstring as written.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path

OUT = Path(__file__).with_name("api.md")

# (title, module): sub-packages whose `__all__` is documented besides the top level
MODULES = (
    ("Targets", "keras_introspect.targets"),
    ("Explanation quality", "keras_introspect.metrics"),
    ("Scale-out: Zarr stores and Dask", "keras_introspect.distributed"),
    ("Optimisation regularizers", "keras_introspect.optimize.regularizers"),
    ("Optimisation transforms", "keras_introspect.optimize.transforms"),
    ("Plotting", "keras_introspect.plotting"),
    ("Report", "keras_introspect.report"),
    ("Embedded data", "keras_introspect.datasets"),
    ("Exceptions", "keras_introspect.exceptions"),
)


def _signature(name, obj) -> str:
    try:
        return f"{name}{inspect.signature(obj)}"
    except (TypeError, ValueError):
        return name


def _entry(qualified, obj) -> list:
    doc = inspect.getdoc(obj) or "(no docstring)"
    summary, _, rest = doc.partition("\n")
    lines = [f"### `{qualified}`", ""]
    if callable(obj):
        lines += ["```python", _signature(qualified, obj), "```", ""]
    lines += [summary.strip(), ""]
    if rest.strip():
        lines += ["```text", rest.strip("\n"), "```", ""]
    if inspect.isclass(obj):
        # the class's own members and those it inherits from the package's classes
        # (Report's page methods come from report.document.Document)
        members = {}
        for klass in reversed(obj.__mro__):
            if klass.__module__.startswith("keras_introspect"):
                members.update(vars(klass))
        for attr, member in sorted(members.items()):
            if attr.startswith("_") or not (
                inspect.isfunction(member) or isinstance(member, property)
            ):
                continue
            target = member.fget if isinstance(member, property) else member
            head = f"{qualified}.{attr}"
            member_doc = (inspect.getdoc(target) or "").partition("\n")[0]
            shown = head if isinstance(member, property) else _signature(head, target)
            lines.append(f"- `{shown}`: {member_doc}")
        lines.append("")
    return lines


def _section(title, module, names) -> list:
    lines = [f"## {title}", "", f"`{module.__name__}`", ""]
    for name in names:
        obj = getattr(module, name)
        if inspect.ismodule(obj):
            continue
        lines += _entry(f"{module.__name__.replace('keras_introspect', 'ki')}.{name}", obj)
    return lines


def _public(module) -> list:
    """`__all__`, or the classes and functions the module defines without a leading _."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            name
            for name, obj in vars(module).items()
            if not name.startswith("_")
            and (inspect.isclass(obj) or inspect.isfunction(obj))
            and obj.__module__ == module.__name__
        ]
    return sorted(names)


def render() -> str:
    import keras_introspect as ki

    lines = [
        "# API reference",
        "",
        "Generated from the docstrings by `python docs/gen_api.py` (a test keeps it current).",
        "`ki` is `import keras_introspect as ki`.",
        "",
    ]
    lines += _section("Top level", ki, ki.__all__)
    for title, name in MODULES:
        module = importlib.import_module(name)
        lines += _section(title, module, _public(module))
    return "\n".join(lines).rstrip() + "\n"


def main(argv) -> int:
    text = render()
    if "--check" in argv:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is out of date: run python docs/gen_api.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
