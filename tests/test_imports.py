"""How the package's modules import each other (issue 20): no module imports another
module's underscore name, and the module-level imports form no cycle."""

import ast
import importlib.util
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "keras_introspect"


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path, ast.parse(path.read_text(encoding="utf-8"))


def _imported(name, node):
    """`(module, names)` of an import statement inside the package, else None."""
    if isinstance(node, ast.ImportFrom):
        module = node.module or ""
        if node.level:  # relative
            base = name.split(".")[: -node.level] if node.level else []
            module = ".".join([*base, module]) if module else ".".join(base)
        if module.split(".")[0] == "keras_introspect":
            return module, [a.name for a in node.names]
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.split(".")[0] == "keras_introspect":
                return alias.name, []
    return None


def _is_module(name):
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def test_no_module_imports_another_modules_private_name():
    found = []
    for name, path, tree in _modules():
        for node in ast.walk(tree):
            imported = _imported(name, node)
            if imported is None:
                continue
            module, names = imported
            for item in names:
                private = item.startswith("_") and not item.startswith("__")
                if private and module != name and not _is_module(f"{module}.{item}"):
                    found.append(f"{path.relative_to(PACKAGE.parent)}: {module}.{item}")
    assert not found, found


def test_no_module_reads_another_modules_private_attribute():
    """`stores._is_zarr(x)` is the same reach into another module as importing it."""
    found = []
    for name, path, tree in _modules():
        aliases = {}
        for node in ast.walk(tree):
            imported = _imported(name, node)
            if imported is None or not isinstance(node, ast.ImportFrom):
                continue
            module, _ = imported
            for alias in node.names:
                if _is_module(f"{module}.{alias.name}"):
                    aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                found.append(f"{path.relative_to(PACKAGE.parent)}: {node.value.id}.{node.attr}")
    assert not found, found


def _cycles(graph):
    cycles = set()

    def visit(node, stack, seen):
        for nxt in sorted(graph.get(node, ())):
            if nxt in stack:
                cycles.add(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in seen:
                seen.add(nxt)
                visit(nxt, [*stack, nxt], seen)

    for start in sorted(graph):
        visit(start, [start], {start})
    return sorted(cycles)


def test_module_level_imports_form_no_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})  # the check finds one
    graph = {}
    for name, _, tree in _modules():
        edges = set()
        for node in tree.body:  # module level only: imports inside functions are lazy
            imported = _imported(name, node)
            if imported is None:
                continue
            module, names = imported
            targets = [f"{module}.{n}" for n in names if _is_module(f"{module}.{n}")]
            edges.update(targets or [module])
        graph[name] = {e for e in edges if e != name}
    assert len(graph) > 50
    assert not _cycles(graph)


# Edges: what users run (they may import everything); the rest computes.
# (the explorer writes a site: like the report, it draws what the computation returned)
EDGES = ("report", "explore", "plotting", "cli", "callbacks", "demo", "__init__", "__main__")


def test_computation_never_imports_the_report_the_cli_or_plotting():
    """Computation modules do not reach up into the report or the CLI; plotting is
    imported only by a result's own `plot()` method, when it is called."""
    found = []
    for name, _, tree in _modules():
        parts = name.split(".")
        if len(parts) == 1 or parts[1] in EDGES:
            continue
        functions = {}
        for function in ast.walk(tree):
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(function):
                    functions.setdefault(id(inner), function.name)
        for node in ast.walk(tree):
            imported = _imported(name, node)
            if imported is None:
                continue
            top = imported[0].split(".")[1] if "." in imported[0] else ""
            if top in ("report", "cli", "callbacks", "demo"):
                found.append(f"{name} imports {imported[0]}")
            elif top == "plotting" and functions.get(id(node)) != "plot":
                found.append(f"{name} imports {imported[0]} outside a plot() method")
    assert not found, found


KERAS_PRIVATE = (
    "_flatten_layers",
    "_keras_history",
    "_keras_logits",
    "_build_shapes_dict",
    "_dtype_policy",
    "_manual_input_spec",
    "_inputs_struct",
    "_nodes_by_depth",
    "._functional",
    "summary_pb2",
    "keras.src",
)


def test_private_keras_and_tensorflow_access_lives_in_one_module():
    """Issue 20, item 4: `model/_keras_compat.py` holds every such access (each with
    its own test in tests/model/test_keras_compat.py)."""
    found = []
    for _, path, _ in _modules():
        if path.name == "_keras_compat.py":
            continue
        text = path.read_text(encoding="utf-8")
        found += [f"{path.name}: {name}" for name in KERAS_PRIVATE if name in text]
    assert not found, found


def test_the_report_document_renders_and_computes_nothing():
    """Issue 20, item 1 (first step): `report/document.py` is the page only: it imports
    no computation module (only the version and the atomic file writer)."""
    tree = ast.parse((PACKAGE / "report" / "document.py").read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        found = _imported("keras_introspect.report.document", node)
        if found is not None:
            imported.add(found[0])
    assert imported <= {"keras_introspect", "keras_introspect._files"}, imported


def _functions_of(tree):
    """`{id(node): name of the innermost function holding it}` for a module's nodes."""
    functions = {}
    for function in ast.walk(tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(function):
                functions[id(inner)] = function.name  # inner functions are walked later
    return functions


def _part(name):
    """The package part a module belongs to: `cluster`, `distributed`, `_sources`, ..."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_cluster_and_distributed_do_not_import_each_other():
    """Issue 20, item 2: the estimators fit through the `ActivationSource` protocol
    (`_sources.py`), so `cluster/` does not depend on `distributed/` and
    `distributed/` never imports `cluster/`. The one door: `LayerEstimator._source`
    imports the Dask source inside the method, when it is given stored activations."""
    forbidden = {"cluster": "distributed", "distributed": "cluster"}
    found, lazy = [], []
    for name, _, tree in _modules():
        part = _part(name)
        functions = _functions_of(tree)
        for node in ast.walk(tree):
            imported = _imported(name, node)
            if imported is None:
                continue
            target = _part(imported[0])
            if part == "_sources" and target in ("cluster", "distributed"):
                found.append(f"{name} imports {imported[0]}")
            elif forbidden.get(part) != target:
                continue
            elif id(node) not in functions or part == "distributed":
                found.append(f"{name} imports {imported[0]}")
            else:
                lazy.append((name, functions[id(node)], imported[0]))
    assert not found, found
    assert lazy == [
        ("keras_introspect.cluster._base", "_source", "keras_introspect.distributed.source")
    ]


def _private_members(tree):
    """Underscore names a module's classes define: methods and attributes set on `self`."""
    names = set()
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        for node in ast.walk(cls):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names.add(node.name)
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.ctx, ast.Store)
                and isinstance(node.value, ast.Name)
                and node.value.id == "self"
            ):
                names.add(node.attr)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def test_distributed_touches_no_private_member_of_the_estimators():
    """Issue 20, item 2: the estimators write their own fitted state and call their
    own private methods; `distributed/` only computes and returns (grep-style: no
    `x._fit_sample(...)`, `x._labeler()`, `x._scaling` in it), and passes no
    hand-counted `stacklevel` into them."""
    trees = {name: (path, tree) for name, path, tree in _modules()}
    private = set()
    for name, (_, tree) in trees.items():
        if _part(name) == "cluster":
            private |= _private_members(tree)
    assert {"_fit_sample", "_keep_used", "_labeler", "_get_introspector", "_scaling"} <= private
    found = []
    for name, (path, tree) in trees.items():
        if _part(name) != "distributed":
            continue
        if "stacklevel" in path.read_text(encoding="utf-8"):
            found.append(f"{name}: stacklevel")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in private
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            ):
                found.append(f"{name}: .{node.attr}")
    assert not found, found
