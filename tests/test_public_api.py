"""The public names resolve, and importing the package is cheap and side-effect free."""

import json
import subprocess
import sys

import keras_introspect as ki


def test_every_public_name_resolves():
    for name in ki.__all__:
        assert getattr(ki, name) is not None, name


def test_import_is_lazy_and_sets_nothing():
    code = (
        "import json, os, sys; before = dict(os.environ); import keras_introspect; "
        "heavy = [m for m in ('tensorflow', 'keras', 'sklearn', 'matplotlib') "
        "if m in sys.modules]; "
        "print(json.dumps({'heavy': heavy, 'env_changed': dict(os.environ) != before}))"
    )
    result = json.loads(subprocess.check_output([sys.executable, "-c", code], text=True))
    assert result == {"heavy": [], "env_changed": False}


def test_the_metrics_package_imports_no_tensorflow():
    """`import keras_introspect.metrics` stays light: every metric imports TensorFlow
    when it runs (IROF's superpixels pulled the attribution package in at import)."""
    code = "import sys; import keras_introspect.metrics; print('tensorflow' in sys.modules)"
    assert subprocess.check_output([sys.executable, "-c", code], text=True).strip() == "False"


def test_one_vocabulary_across_the_public_api():
    """Issue 20, item 5: every public callable, its parameters held to one vocabulary.

    - what is explained or optimised is `target` (former names only as deprecated
      keywords defaulting to the UNSET sentinel);
    - functions take `seed`, estimators (classes with `fit`) `random_state`;
    - `verbose` defaults to 0;
    - data comes as `x` (or `X` for scikit-learn estimators), never before the model.
    """
    import inspect

    import keras_introspect as ki
    from keras_introspect._validation import UNSET

    former = {"objective", "target_class", "labels"}
    modules = [ki, ki.metrics, ki.targets, ki.datasets]
    checked, problems = 0, []
    for module in modules:
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if not callable(obj):
                continue
            function = obj.__init__ if inspect.isclass(obj) else obj
            try:
                parameters = list(inspect.signature(function).parameters.values())
            except (TypeError, ValueError):
                continue
            parameters = [p for p in parameters if p.name != "self"]
            checked += 1
            names = [p.name for p in parameters]
            estimator = inspect.isclass(obj) and hasattr(obj, "fit")
            for p in parameters:
                if p.name in former and p.default is not UNSET:
                    problems.append(f"{name}: {p.name} (say target)")
                if p.name == "verbose" and p.default not in (0, inspect.Parameter.empty):
                    problems.append(f"{name}: verbose={p.default}")
                if p.name == "random_state" and not estimator and p.default is not UNSET:
                    problems.append(f"{name}: random_state in a function (say seed)")
                if p.name == "seed" and estimator:
                    problems.append(f"{name}: seed in an estimator (say random_state)")
            if "model" in names and "x" in names and names.index("x") < names.index("model"):
                problems.append(f"{name}: x before model")
    assert checked > 40
    assert not problems, problems
