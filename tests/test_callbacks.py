"""IntrospectionCallback during model.fit: TensorBoard summaries, report, history."""

import glob
import re

import keras
import pytest
import tensorflow as tf

import keras_introspect as ki


def _data():
    from keras_introspect.datasets import digits

    x, y = digits()
    return x[:300] / 16.0, y[:300]


def _model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
            keras.layers.Flatten(name="flat"),
            keras.layers.Dense(10, activation="softmax", name="out"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def _scalars(log_dir):
    found = {}
    for path in glob.glob(f"{log_dir}/*"):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "scalars":
                    found.setdefault(value.tag, []).append(
                        (event.step, float(tf.make_ndarray(value.tensor)))
                    )
                else:
                    found.setdefault(value.tag, []).append((event.step, None))
    return found


def test_sections_every_second_epoch(tmp_path):
    x, y = _data()
    model = _model()
    callback = ki.IntrospectionCallback(
        x[:200],
        y[:200],
        sections=("gradcam", "purity"),
        every=2,
        log_dir=tmp_path / "logs",
        report=tmp_path / "training.html",
        layers=["conv", "flat", "out"],
    )
    model.fit(x, y, epochs=4, batch_size=64, verbose=0, callbacks=[callback])
    assert [r["epoch"] for r in callback.history_] == [2, 4]
    assert callback.history_[0]["gradcam"] == y[:4].tolist()
    for record in callback.history_:
        assert set(record["purity"]) == {"conv", "flat", "out"}
        assert all(0.1 <= v <= 1.0 for v in record["purity"].values())
    # the purity rows equal a direct call on the final model
    direct = ki.layerwise_purity(model, x[:200], y[:200], layers=["out"], seed=0)
    assert callback.history_[-1]["purity"]["out"] == pytest.approx(direct.purity[0])
    scalars = _scalars(tmp_path / "logs")
    assert [step for step, _ in scalars["purity/out"]] == [2, 4]
    assert scalars["purity/out"][-1][1] == pytest.approx(direct.purity[0], abs=1e-6)
    assert [step for step, _ in scalars["gradcam"]] == [2, 4]
    page = (tmp_path / "training.html").read_text()
    assert page.count("data:image/png;base64,") == 4  # Grad-CAM and purity, twice
    assert re.search(r"gradcam, epoch 4", page) and "Layer-wise purity, epoch 2" in page


def test_arguments_are_checked():
    x, y = _data()
    with pytest.raises(ValueError, match="needs labels"):
        ki.IntrospectionCallback(x, sections=("purity",))
    with pytest.raises(ValueError, match="Unknown section"):
        ki.IntrospectionCallback(x, y, sections=("tsne",))
    with pytest.raises(ValueError, match="one label per image"):
        ki.IntrospectionCallback(x, y[:5])
    with pytest.raises(ValueError, match="every"):
        ki.IntrospectionCallback(x, y, every=0)


def test_predicted_classes_without_labels_and_a_report_object():
    x, y = _data()
    model = _model()
    report = ki.Report(model, "fit")
    callback = ki.IntrospectionCallback(x[:8], sections="saliency", report=report, n_maps=2)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    assert [s.title for s in report.sections] == ["saliency, epoch 1"]
    # without labels the maps explain the predicted classes (after the epoch)
    predicted = model.predict(x[:2], verbose=0).argmax(axis=1)
    assert callback.history_ == [{"epoch": 1, "saliency": predicted.tolist()}]


def test_bad_paths_and_labels_are_refused_before_training(tmp_path):
    """Issue 18, C10: checked in __init__, not at the end of epoch 1."""
    x, y = _data()
    with pytest.raises(ValueError, match=r"The folder of the report does not exist"):
        ki.IntrospectionCallback(x[:8], y[:8], report=tmp_path / "missing" / "r.html")
    with pytest.raises(TypeError, match=r"Expected `y` \(a class index per image\)"):
        ki.IntrospectionCallback(x[:8], y[:8].astype(str), sections="gradcam")
    with pytest.raises(TypeError, match=r"Received: 0\.5"):
        ki.IntrospectionCallback(x[:8], y[:8] + 0.5, sections="saliency")
    # purity takes any labels; integral floats are class indices
    ki.IntrospectionCallback(x[:8], y[:8].astype(str), sections="purity")
    callback = ki.IntrospectionCallback(x[:8], y[:8].astype(float), sections="saliency")
    assert callback._classes.tolist() == y[:4].tolist()


def test_a_failing_section_warns_and_training_goes_on(tmp_path):
    x, y = _data()
    model = _model()
    callback = ki.IntrospectionCallback(
        x[:32], y[:32], sections=("purity", "saliency"), layers="no_such_layer", n_maps=2
    )
    from keras_introspect.exceptions import KerasIntrospectWarning

    with pytest.warns(KerasIntrospectWarning, match=r"section 'purity' failed after epoch [12]"):
        history = model.fit(x, y, epochs=2, verbose=0, callbacks=[callback])
    assert len(history.history["loss"]) == 2
    assert [r["epoch"] for r in callback.history_] == [1, 2]
    assert "no_such_layer" in callback.history_[0]["errors"]["purity"]
    assert callback.history_[1]["saliency"] == y[:2].tolist()


def _images(log_dir, tag):
    """The last images written under `tag`, decoded: `(n, H, W, 3)` uint8."""
    import numpy as np

    found = None
    for path in glob.glob(f"{log_dir}/*"):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == tag:
                    pngs = tf.make_ndarray(value.tensor)[2:]
                    found = np.stack([tf.image.decode_png(p).numpy() for p in pngs])
    return found


def test_every_attribution_method_is_a_section(tmp_path):
    """Issue 21, item 8: any name of METHODS, with its options; a signed method's
    images are drawn with signed_overlay. The images written equal the overlays of
    maps computed directly on the trained model."""
    import numpy as np

    from keras_introspect.callbacks import section_names
    from keras_introspect.plotting import signed_overlay
    from keras_introspect.plotting.overlay import is_signed

    assert {"purity", "occlusion", "integrated_gradients", "rise"} <= set(section_names())
    assert set(ki.callbacks.SECTIONS) == set(section_names())
    x, y = _data()
    model = _model()
    options = {"occlusion": {"window": 4, "stride": 2}, "integrated_gradients": {"steps": 8}}
    callback = ki.IntrospectionCallback(
        x[:8],
        y[:8],
        sections=("occlusion", "integrated_gradients"),
        log_dir=tmp_path / "logs",
        n_maps=3,
        options=options,
    )
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    target = ki.targets.Class(y[:3])
    for name, method in [
        ("occlusion", ki.Occlusion),
        ("integrated_gradients", ki.IntegratedGradients),
    ]:
        maps = method(model, target, **options[name]).explain(x[:3])
        assert is_signed(maps)  # both say for and against: drawn red / blue
        expected = [signed_overlay(i, m) for i, m in zip(x[:3], maps, strict=True)]
        expected = np.round(np.stack(expected) * 255)
        written = _images(tmp_path / "logs", name)
        assert written.shape == (3, 8, 8, 3)
        np.testing.assert_allclose(written, expected, atol=1)
    with pytest.raises(ValueError, match="options"):
        ki.IntrospectionCallback(x[:8], y[:8], sections="saliency", options={"rise": {}})
