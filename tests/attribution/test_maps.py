"""AttributionMaps as a scikit-learn transformer."""

import pickle

import keras
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import keras_introspect as ki

L = keras.layers


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(11)
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            L.Conv2D(3, 3, activation="relu", name="conv"),
            L.GlobalAveragePooling2D(),
            L.Dense(2, name="out"),
        ]
    )


def _x(n=6):
    return np.random.default_rng(0).normal(size=(n, 8, 8, 1)).astype("float32")


def test_transform_equals_the_method(model):
    x = _x()
    est = ki.AttributionMaps(
        model, "smoothgrad", target=1, method_options={"samples": 4, "seed": 2}, flatten=False
    )
    expected = ki.SmoothGrad(model, 1, samples=4, seed=2).explain(x)
    np.testing.assert_allclose(est.fit_transform(x), expected, rtol=1e-6)
    flat = ki.AttributionMaps(model, "gradcam", target=0, method_options={"layer": "conv"})
    flat = flat.fit(x).transform(x)
    cam = ki.GradCAM(model, 0, layer="conv").explain(x)
    np.testing.assert_allclose(flat, cam.reshape(6, -1), rtol=1e-6)


def test_options_are_parameters(model):
    est = ki.AttributionMaps(model, "occlusion", target=0, method_options={"window": 4})
    assert est.get_params()["method_options"] == {"window": 4}
    est.set_params(method_options={"window": 2}, method="occlusion")
    assert est.method_options == {"window": 2}
    copy = clone(est)
    assert copy.model is model and copy.get_params()["method_options"] == {"window": 2}
    maps = ki.AttributionMaps(model, "occlusion", method_options={"window": 2})
    assert maps.fit(_x(2)).transform(_x(2)).shape == (2, 64)


def test_the_old_keyword_spelling_still_works_with_a_warning(model):
    """Issue 20: `AttributionMaps(..., window=2)` is deprecated for one release."""
    with pytest.warns(FutureWarning, match=r"method_options=\{'window': 2\}"):
        old = ki.AttributionMaps(model, "occlusion", window=2)
    assert old.method_options == {"window": 2}
    new = ki.AttributionMaps(model, "occlusion", method_options={"window": 2})
    np.testing.assert_array_equal(old.fit_transform(_x(2)), new.fit_transform(_x(2)))


def test_in_a_pipeline_and_pickled(model):
    x = _x(10)
    y = np.arange(10) % 2
    pipe = make_pipeline(ki.AttributionMaps(model, "saliency", target=1), LogisticRegression())
    pipe.fit(x, y)
    assert pipe.predict(x).shape == (10,)
    restored = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_allclose(restored.predict_proba(x), pipe.predict_proba(x), rtol=1e-6)


def test_unknown_method(model):
    with pytest.raises(ValueError, match="Expected `method` to be one of"):
        ki.AttributionMaps(model, "deeplift").fit(_x(1))


def test_every_entry_point_looks_methods_up_in_one_place(model):
    """Issue 20: `get_method` is the one lookup; the report, the metrics and the
    estimator refuse an unknown name with the same message."""
    from keras_introspect import metrics
    from keras_introspect.attribution.maps import METHODS, get_method

    assert get_method("occlusion") is METHODS["occlusion"]
    assert get_method(ki.GradCAM) is ki.GradCAM
    with pytest.raises(TypeError, match="method name or an attribution class"):
        get_method(3)
    message = r"Expected `method` to be one of \['deconvnet'"
    with pytest.raises(ValueError, match=message):
        ki.Report(model).add_saliency(_x(1), 0, methods=("deeplift",))
    with pytest.raises(ValueError, match=message):
        metrics.randomization_check("deeplift", model, _x(1), 0)
    with pytest.raises(ValueError, match=message):
        ki.AttributionMaps(model, "deeplift").fit(_x(1))


def test_method_options_must_be_a_dict(model):
    with pytest.raises(TypeError, match="Expected `method_options` to be a dict"):
        ki.AttributionMaps(model, "occlusion", method_options=[("window", 2)]).fit(_x(1))
