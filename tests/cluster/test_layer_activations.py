"""LayerActivations as a scikit-learn transformer."""

import pickle

import keras
import numpy as np
import pytest
from conftest import sample_input
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

import keras_introspect as ki


def _vector_model():
    """Takes any number of features, so the common checks' data fits it."""
    x = keras.Input((None,))
    return keras.Model(
        x, keras.layers.Activation("relu", name="relu")(keras.layers.Rescaling(2.0)(x))
    )


# Each expected failure, and why it is expected:
EXPECTED_FAILURES = {
    # Keras itself flips bookkeeping flags (`_called`, `_jit_compile`) on the
    # first call of a model, as `model.predict` would; weights, config and graph
    # are unchanged (see tests/model/test_introspector.py::test_model_is_not_mutated).
    "check_estimators_overwrite_params": "Keras marks a model as called on first use",
}


@parametrize_with_checks(
    [ki.LayerActivations(_vector_model(), layer="relu")],
    expected_failed_checks=lambda est: EXPECTED_FAILURES,
)
def test_sklearn_common_checks(estimator, check):
    check(estimator)


def test_transform_equals_activations(built_models):
    model = built_models["nested"]
    x = sample_input("nested", n=5)
    path = "mobilenetv2_0.35_32/block_3_expand_relu"
    expected = ki.Introspector(model).activations(x, path)[path]
    est = ki.LayerActivations(model, layer="block_3_expand_relu", batch_size=2).fit(x)
    assert est.layer_path_ == path
    np.testing.assert_allclose(est.transform(x), expected.reshape(5, -1), atol=1e-6)
    pooled = ki.LayerActivations(model, layer=path, pooling="max").fit_transform(x)
    np.testing.assert_allclose(pooled, expected.max(axis=(1, 2)), atol=1e-6)
    kept = ki.LayerActivations(model, layer=path, flatten=False).fit_transform(x)
    np.testing.assert_allclose(kept, expected, atol=1e-6)


def test_feature_names_follow_the_flattened_layout(built_models):
    model = built_models["sequential"]
    x = sample_input("sequential", n=2)
    est = ki.LayerActivations(model, layer="pool1").fit(x)
    names = est.get_feature_names_out()
    out = est.transform(x)
    assert names.shape == (out.shape[1],)
    full = ki.Introspector(model).activations(x, "pool1")["pool1"]
    assert names[1 * 7 * 4 + 2 * 4 + 3] == "pool1[1,2,3]"
    assert out[0, 1 * 7 * 4 + 2 * 4 + 3] == full[0, 1, 2, 3]
    pooled = ki.LayerActivations(model, layer="pool1", pooling="avg").fit(x)
    assert list(pooled.get_feature_names_out()) == [f"pool1[{c}]" for c in range(4)]


def test_clone_shares_the_model_and_pickle_round_trips(built_models):
    model = built_models["sequential"]
    est = ki.LayerActivations(model, layer="conv2", pooling="avg")
    assert clone(est).model is model
    x = sample_input("sequential", n=3)
    fitted = est.fit(x)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_allclose(restored.transform(x), fitted.transform(x), atol=1e-6)


def test_in_a_pipeline_on_digits():
    from keras_introspect.datasets import digits, nested_digits_cnn

    x, y = digits()
    keras.utils.set_random_seed(0)  # an untrained model: its features depend on the seed
    model = nested_digits_cnn()
    pipe = make_pipeline(
        ki.LayerActivations(model, layer="pool1", pooling="max"),
        LogisticRegression(max_iter=2000),
    )
    pipe.fit(x[:600], y[:600])
    # Even an untrained conv stack gives features well above chance (0.1):
    # 0.61-0.65 over seeds 0-3.
    assert pipe.score(x[600:900], y[600:900]) > 0.4


def test_bad_arguments(built_models):
    model = built_models["sequential"]
    x = sample_input("sequential", n=2)
    with pytest.raises(ValueError, match="pooling"):
        ki.LayerActivations(model, pooling="mean").fit(x)
    with pytest.raises(ValueError, match="Expected 4D input"):
        ki.LayerActivations(model).fit(x[0])
    with pytest.raises(ValueError, match=r"as in fit"):
        ki.LayerActivations(model, layer="conv1").fit(x).transform(np.zeros((2, 16, 15, 3)))
    with pytest.raises(TypeError, match=r"keras\.Model"):
        ki.LayerActivations("not a model").fit(x)
