"""CAV and TCAV: a planted colour feature, and Captum's definition on an analytic model."""

import keras
import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

import keras_introspect as ki

L = keras.layers


def _noise(n, seed):
    return np.random.default_rng(seed).uniform(0, 1, (n, 16, 16, 3)).astype("float32")


def _with_red_patch(x, seed):
    rng = np.random.default_rng(seed)
    x = x.copy()
    for image in x:
        top, left = rng.integers(0, 10, 2)
        image[top : top + 6, left : left + 6] = (1.0, 0.0, 0.0)
    return x


@pytest.fixture(scope="module")
def red_model():
    """Class 1 reads the red channel (and against green and blue), class 0 the opposite.

    The hidden ReLU makes the gradient at "feat" depend on the image.
    """
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            L.Conv2D(3, 1, activation="relu", name="feat"),
            L.GlobalAveragePooling2D(name="gap"),
            L.Dense(2, activation="relu", name="hidden"),
            L.Dense(2, name="logits"),
        ]
    )
    model.get_layer("feat").set_weights([np.eye(3, dtype="float32")[None, None], np.zeros(3)])
    hidden = np.array([[4.0, 1.0], [-2.0, 1.0], [-2.0, 1.0]], "float32")
    model.get_layer("hidden").set_weights([hidden, np.array([0.0, -1.2], "float32")])
    model.get_layer("logits").set_weights(
        [np.array([[-1.0, 1.0], [1.0, 0.0]], "float32"), np.zeros(2, "float32")]
    )
    return model


def test_tcav_finds_the_planted_feature_and_not_a_random_one(red_model):
    concept = _with_red_patch(_noise(30, 1), 2)
    random_concept = _noise(30, 3)
    x = _with_red_patch(_noise(20, 4), 5)
    tcav = ki.TCAV(red_model, "feat", target=[1, 0], n_runs=20, random_state=0)
    result = tcav.fit({"red": concept, "noise": random_concept}, _noise(60, 6)).evaluate(x)
    red = result.scores["red"]
    assert red[0].mean() == pytest.approx(1.0)  # class 1 rises along "red" for every image
    assert red[1].mean() == pytest.approx(0.0)  # class 0 falls
    assert result.p_values["red"][0] < 0.01 and result.significant("red", 0)
    assert not result.significant("noise", 0)
    assert result.accuracies["red"].min() >= 0.9
    rows = result.table
    assert len(rows) == 4 and rows[0]["concept"] == "red" and rows[0]["class"] == 1
    assert "red" in str(result)
    ax = result.plot()  # bars: red (class 1, class 0), noise (...), random (...)
    heights = [bar.get_height() for bar in ax.patches]
    assert heights[:2] == pytest.approx([1.0, 0.0])


def _analytic_gradient(model, x, k):
    """d logit_k / d feat, flattened: Flatten -> Dense(relu) -> Dense, by hand."""
    w_feat = model.get_layer("feat").get_weights()[0][0, 0]
    feat = x @ w_feat  # linear 1x1 conv, no bias
    w1, b1 = model.get_layer("hidden").get_weights()
    w2 = model.get_layer("out").get_weights()[0]
    z = feat.reshape(len(x), -1) @ w1 + b1
    return ((z > 0) * w2[:, k]) @ w1.T


def test_captum_definition_on_an_analytic_model():
    """Captum's TCAV: flattened activations, a CAV per run, the share of inputs whose
    gradient of the class at the layer has a positive dot product with the CAV."""
    rng = np.random.default_rng(0)
    model = keras.Sequential(
        [
            keras.Input((4, 4, 2)),
            L.Conv2D(3, 1, use_bias=False, name="feat"),
            L.Flatten(),
            L.Dense(5, activation="relu", name="hidden"),
            L.Dense(2, name="out"),
        ]
    )
    for layer in model.layers:
        layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()])
    concept = rng.normal(0.5, 1, (20, 4, 4, 2)).astype("float32")
    random = rng.normal(0, 1, (40, 4, 4, 2)).astype("float32")
    x = rng.normal(0, 1, (25, 4, 4, 2)).astype("float32")
    tcav = ki.TCAV(model, "feat", target=[0, 1], n_runs=4, pooling=None, random_state=1)
    result = tcav.fit({"c": concept}, random).evaluate(x)
    for k in (0, 1):
        grads = _analytic_gradient(model, x, k)
        for run, cav in enumerate(tcav.cavs_["c"]):
            captum = np.mean(grads @ cav.vector_ > 0)
            assert result.scores["c"][k][run] == pytest.approx(captum)
            np.testing.assert_allclose(
                cav.sensitivity(x, k), grads @ cav.vector_, rtol=1e-4, atol=1e-5
            )


def test_cav_direction_and_pooled_sensitivity(red_model):
    concept = _with_red_patch(_noise(20, 1), 2)
    negative = _noise(20, 3)
    X = np.concatenate([concept, negative])
    y = np.r_[np.ones(20), np.zeros(20)]
    cav = ki.CAV(red_model, "feat", classifier="logistic", random_state=0).fit(X, y)
    assert cav.accuracy_ == 1.0 and cav.vector_.shape == (3,)
    assert cav.vector_[0] > 0 > cav.vector_[1]  # towards red, away from green
    # the Direction target scores the mean over positions of a . v: the pooled feature . v
    direction = cav.direction()
    feats = cav.features(X)
    intro = ki.Introspector(red_model)
    tap = intro.tap(["feat"])
    (feat,), _ = tap(X)
    bound = ki.targets.BoundTarget(direction, intro)
    score = np.asarray(bound.score([feat], None, np.zeros((len(X), 1), "int32")))
    np.testing.assert_allclose(score, feats @ cav.vector_, rtol=1e-5, atol=1e-6)
    # pooled sensitivity: the gradient summed over positions, dotted with the vector
    grad_sum = _pooled_gradient(red_model, X[:5], 1)
    np.testing.assert_allclose(cav.sensitivity(X[:5], 1), grad_sum @ cav.vector_, rtol=1e-4)


def _pooled_gradient(model, x, k):
    import tensorflow as tf

    feat = model.get_layer("feat")
    with tf.GradientTape() as tape:
        a = feat(tf.constant(x))
        tape.watch(a)
        h = model.get_layer("gap")(a)
        out = model.get_layer("logits")(model.get_layer("hidden")(h))[:, k]
    return tape.gradient(out, a).numpy().sum(axis=(1, 2))


def test_errors(red_model):
    with pytest.raises(NotFittedError):
        ki.CAV(red_model, "feat").direction()
    with pytest.raises(ValueError, match="y"):
        ki.CAV(red_model, "feat").fit(_noise(4, 0), [0, 1, 2, 1])
    with pytest.raises(ValueError, match="pooling"):
        ki.CAV(red_model, "feat", pooling="max").fit(_noise(4, 0), [0, 1, 0, 1])
    cav = ki.CAV(red_model, "feat", pooling=None, random_state=0)
    cav.fit(_noise(8, 0), [0, 1] * 4)
    with pytest.raises(ValueError, match="pooling='avg'"):
        cav.direction()
