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
