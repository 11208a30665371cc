"""The command line: layer table, demo, and one-line errors with exit code 2."""

import keras
import pytest

from keras_introspect.cli import main


def test_layers_prints_table(built_models, tmp_path, capsys):
    path = tmp_path / "nested.keras"
    built_models["nested"].save(path)
    assert main(["layers", str(path)]) == 0
    out = capsys.readouterr().out
    assert "mobilenetv2_0.35_32" in out and "block_3_expand_relu" in out
    assert "3x3 /2x2" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "No model file"), (b"not a model", "Could not load a Keras model")],
)
def test_bad_model_file_exits_2(tmp_path, capsys, content, message):
    path = tmp_path / "model.keras"
    if content is not None:
        path.write_bytes(content)
    assert main(["layers", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("keras-introspect: error:") and message in err
    assert len(err.strip().splitlines()) == 1


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["layers"])
    assert info.value.code == 2


def test_unbuilt_model_file_needs_input_shape(tmp_path, capsys):
    model = keras.Sequential([keras.layers.Dense(2, name="d")])
    path = tmp_path / "unbuilt.keras"
    model.save(path)
    assert main(["layers", str(path)]) == 2
    assert "input_shape" in capsys.readouterr().err
    assert main(["layers", str(path), "--input-shape", "5"]) == 0


def test_demo_runs(capsys):
    assert main(["demo", "--fast", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Held-out accuracy" in out and "features/conv3" in out
