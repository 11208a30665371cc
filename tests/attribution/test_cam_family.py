"""Score-CAM, Layer-CAM and Guided Grad-CAM against hand computations, brute-force
references and tf-keras-vis."""

import importlib
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import sample_input

import keras_introspect as ki
from keras_introspect.exceptions import KerasIntrospectWarning

L = keras.layers
T = ki.targets


# ----------------------------------------------------------------- references
def resize(maps, size):
    """Bilinear resize of `(n, h, w, c)` with half-pixel centres, by hand in numpy."""
    out = maps.astype(np.float64)
    for axis, new in ((1, size[0]), (2, size[1])):
        old = out.shape[axis]
        source = np.clip((np.arange(new) + 0.5) * old / new - 0.5, 0, old - 1)
        low = np.floor(source).astype(int)
        high = np.minimum(low + 1, old - 1)
        frac = (source - low).reshape([-1 if a == axis else 1 for a in range(out.ndim)])
        out = np.take(out, low, axis=axis) * (1 - frac) + np.take(out, high, axis=axis) * frac
    return out


def softmax_weights(scores, varies):
    """Softmax over the channels that vary; 0 for the others. `(n, k)`."""
    shifted = np.where(varies, scores, -np.inf)
    e = np.where(varies, np.exp(shifted - shifted.max(axis=1, keepdims=True)), 0.0)
    return e / e.sum(axis=1, keepdims=True)


def scorecam_reference(model, features, x, score, max_n=None, weighting="softmax"):
    """Score-CAM by brute force: one `model(...)` call per (image, channel).

    `features(x)` gives the layer's maps `(n, h, w, c)`, `score(output, i)` the target
    of image `i`. Returns maps at layer resolution and at input resolution.
    """
    acts = np.asarray(features(x), np.float64)
    size = x.shape[1:3]
    cams = []
    for i in range(len(x)):
        a = acts[i]
        channels = np.arange(a.shape[-1])
        if max_n is not None and max_n < len(channels):
            channels = np.argsort(-a.var(axis=(0, 1)), kind="stable")[:max_n]
        scores, varies = [], []
        for k in channels:
            up = tf.image.resize(a[None, :, :, k : k + 1], size, method="bilinear").numpy()[0]
            lo, hi = up.min(), up.max()
            varies.append(hi > lo)
            mask = (up - lo) / (hi - lo) if hi > lo else np.zeros_like(up)
            masked = (x[i : i + 1] * mask).astype("float32")
            scores.append(float(score(model(masked), i)[0]))
        scores, varies = np.array(scores), np.array(varies)
        if weighting == "softmax":
            w = softmax_weights(scores[None], varies[None])[0]
        else:
            w = np.where(varies, scores, 0.0)
        cams.append(np.maximum(np.einsum("hwk,k->hw", a[..., channels], w), 0))
    cams = np.stack(cams)
    up = tf.image.resize(cams[..., None], size, method="bilinear").numpy()[..., 0]
    return cams, up


# ------------------------------------------------------- a model known by hand
KERNEL = np.array(
    [[[[0.5, -0.3, 0.0]], [[0.2, 0.8, 0.0]]], [[[-0.4, 0.6, 0.0]], [[0.9, 0.1, 0.0]]]], "float32"
)  # (2, 2, 1, 3); channel 2 is constant (its bias): a map that masks nothing
BIAS = np.array([0.1, -0.2, 0.3], "float32")
DENSE = np.linspace(-1.0, 1.2, 24, dtype="float32").reshape(12, 2) * np.float32([1.0, -0.7])
DENSE_BIAS = np.array([0.05, -0.1], "float32")


def hand_model(activation=None):
    """(4, 4, 1) -> Conv2D(3, 2, strides=2) -> Flatten -> Dense(2): every value by hand."""
    model = keras.Sequential(
        [
            keras.Input((4, 4, 1)),
            L.Conv2D(3, 2, strides=2, activation=activation, name="feat"),
            L.Flatten(),
            L.Dense(2, name="out"),
        ]
    )
    model.get_layer("feat").set_weights([KERNEL, BIAS])
    model.get_layer("out").set_weights([DENSE, DENSE_BIAS])
    return model


def conv(x):
    """The pre-activation of `feat`: 2 x 2 windows, stride 2, `(n, 2, 2, 3)`."""
    out = np.zeros((len(x), 2, 2, 3))
    for i in range(2):
        for j in range(2):
            patch = x[:, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2, :].astype(np.float64)
            out[:, i, j] = np.einsum("nhwc,hwck->nk", patch, KERNEL) + BIAS
    return out


def logits(x):
    return conv(x).reshape(len(x), 12) @ DENSE + DENSE_BIAS


X_HAND = np.random.default_rng(3).normal(size=(3, 4, 4, 1)).astype("float32")


@pytest.mark.parametrize("weighting", ["softmax", "increase", "score"])
@pytest.mark.parametrize("cls", [0, 1])
def test_score_cam_equals_hand_computation(weighting, cls):
    model, x = hand_model(), X_HAND
    a = conv(x)  # (n, 2, 2, 3)
    up = resize(a, (4, 4))
    low, high = up.min(axis=(1, 2), keepdims=True), up.max(axis=(1, 2), keepdims=True)
    varies = (high > low)[:, 0, 0]  # channel 2 is constant for every image
    assert not varies[:, 2].any() and varies[:, :2].all()
    masks = np.where(high > low, (up - low) / np.where(high > low, high - low, 1), 0)
    scores = np.stack([logits(x * masks[..., k : k + 1])[:, cls] for k in range(3)], axis=1)
    baseline = 0.5
    if weighting == "softmax":
        w = softmax_weights(scores, varies)
    elif weighting == "increase":
        w = scores - logits(np.full_like(x, baseline))[:, cls : cls + 1]
    else:
        w = scores
    w = np.where(varies, w, 0)
    expected = np.maximum(np.einsum("nhwk,nk->nhw", a, w), 0)
    assert expected.any()
    options = {"layer": "feat", "weighting": weighting, "baseline": baseline}
    raw = ki.ScoreCAM(model, cls, upsample=False, **options).explain(x)
    np.testing.assert_allclose(raw, expected, rtol=1e-5, atol=1e-6)
    full = ki.ScoreCAM(model, cls, **options).explain(x)
    np.testing.assert_allclose(full, resize(expected[..., None], (4, 4))[..., 0], atol=1e-5)


def test_score_cam_baseline_cancels_in_the_softmax():
    """The paper's softmax of `score(x * H_k) - score(x_b)` does not depend on `x_b`."""
    model = hand_model()
    maps = [ki.ScoreCAM(model, 0, baseline=b).explain(X_HAND) for b in (0.0, 3.0)]
    np.testing.assert_array_equal(maps[0], maps[1])
    with pytest.raises(ValueError, match=r"Expected `baseline` of the image shape \(4, 4, 1\)"):
        ki.ScoreCAM(model, 0, weighting="increase", baseline=np.zeros((3, 3))).explain(X_HAND)


@pytest.mark.parametrize("cls", [0, 1])
def test_layer_cam_equals_hand_computation(cls):
    """Linear head: d score / d A_ijk is the dense weight of unit (i, j, k)."""
    model, x = hand_model(), X_HAND
    a = conv(x)
    grads = DENSE[:, cls].reshape(2, 2, 3)
    expected = np.maximum(np.einsum("nhwk,hwk->nhw", a, np.maximum(grads, 0)), 0)
    raw = ki.LayerCAM(model, cls, layer="feat", upsample=False).explain(x)
    np.testing.assert_allclose(raw, expected, rtol=1e-5, atol=1e-6)
    full = ki.LayerCAM(model, cls, layer="feat").explain(x)
    np.testing.assert_allclose(full, resize(expected[..., None], (4, 4))[..., 0], atol=1e-5)


@pytest.mark.parametrize("reduce_channels", ["auto", "max", None])
def test_guided_grad_cam_equals_hand_computation(reduce_channels):
    """Guided backprop through the ReLU of `feat` and back through its (non-overlapping)
    windows, times the Grad-CAM map of `feat` resized to the input."""
    model, x, cls = hand_model("relu"), X_HAND, 0
    pre = conv(x)
    a = np.maximum(pre, 0)
    g = DENSE[:, cls].reshape(2, 2, 3)  # d score / d A
    cam = np.maximum(np.einsum("nhwk,k->nhw", a, g.mean(axis=(0, 1))), 0)
    cam = resize(cam[..., None], (4, 4))[..., 0]
    signal = (pre > 0) * np.maximum(g, 0)  # the guided rule at the ReLU
    guided = np.zeros(x.shape)
    for i in range(2):
        for j in range(2):
            guided[:, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2, :] = np.einsum(
                "nk,hwck->nhwc", signal[:, i, j], KERNEL
            )
    expected = guided * cam[..., None]
    if reduce_channels == "max":
        expected = np.abs(expected).max(axis=-1)
    elif reduce_channels == "auto":  # a signed map: summed over colour channels
        expected = expected.sum(axis=-1)
    method = ki.GuidedGradCAM(model, cls, layer="feat", reduce_channels=reduce_channels)
    maps = method.explain(x)
    assert maps.shape == expected.shape and np.count_nonzero(expected) > 10
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-6)
    assert method.layer_path_ == "feat"


# ------------------------------------------------------------ brute force
@pytest.fixture(scope="module")
def cnn():
    keras.utils.set_random_seed(21)
    return keras.Sequential(
        [
            keras.Input((10, 10, 3)),
            L.Conv2D(6, 3, activation="relu", name="conv1"),
            L.MaxPooling2D(name="pool"),
            L.Conv2D(5, 3, activation="relu", name="conv2"),
            L.Flatten(),
            L.Dense(3, name="logits"),
        ]
    )


X = np.random.default_rng(5).uniform(0, 1, (5, 10, 10, 3)).astype("float32")
LABELS = [0, 1, 2, 0, 1]


@pytest.mark.parametrize("layer", ["conv1", "conv2"])
@pytest.mark.parametrize("max_n", [None, 3])
def test_score_cam_equals_brute_force(cnn, layer, max_n):
    features = keras.Model(cnn.inputs[0], cnn.get_layer(layer).output)
    raw, full = scorecam_reference(cnn, features, X, lambda out, i: out[:, LABELS[i]], max_n)
    method = ki.ScoreCAM(cnn, T.Class(LABELS), layer=layer, max_n=max_n)
    np.testing.assert_allclose(method.explain(X), full, rtol=1e-4, atol=1e-6)
    raw_maps = ki.ScoreCAM(cnn, T.Class(LABELS), layer=layer, max_n=max_n, upsample=False)
    np.testing.assert_allclose(raw_maps.explain(X), raw, rtol=1e-4, atol=1e-6)


def test_max_n_keeps_the_channels_of_largest_variance(cnn):
    """Faster Score-CAM: a channel outside the top-N by spatial variance changes nothing;
    max_n >= the number of channels is Score-CAM itself."""
    features = keras.Model(cnn.inputs[0], cnn.get_layer("conv1").output)(X).numpy()
    order = np.argsort(-features.var(axis=(1, 2)), axis=1, kind="stable")
    assert not (order[:, :2] == order[:1, :2]).all()  # per image, not one choice for all
    target = T.Class(LABELS)
    top2 = ki.ScoreCAM(cnn, target, layer="conv1", max_n=2, upsample=False).explain(X)
    for i in range(len(X)):  # Score-CAM of the two chosen channels, softmax over them
        a = features[i]
        scores = []
        for k in order[i, :2]:
            up = tf.image.resize(a[None, :, :, k : k + 1], (10, 10)).numpy()[0]
            mask = (up - up.min()) / (up.max() - up.min())
            scores.append(cnn(X[i : i + 1] * mask)[0, LABELS[i]].numpy())
        w = softmax_weights(np.array([scores]), np.ones((1, 2), bool))[0]
        expected = np.maximum(np.einsum("hwk,k->hw", a[..., order[i, :2]], w), 0)
        np.testing.assert_allclose(top2[i], expected, rtol=1e-4, atol=1e-6)
    full = ki.ScoreCAM(cnn, target, layer="conv1").explain(X)
    for n in (6, 50):
        np.testing.assert_array_equal(ki.ScoreCAM(cnn, target, layer="conv1", max_n=n)(X), full)
    with pytest.raises(ValueError, match=r"Expected `max_n` to be an integer >= 1. Received"):
        ki.ScoreCAM(cnn, target, max_n=0)


@pytest.mark.parametrize("name", ["scorecam", "layercam", "guided_gradcam"])
def test_batch_size_does_not_change_the_maps(cnn, name):
    """Score-CAM's steps split the channels too (batch 1 and 3 < 6 channels of conv1)."""
    method = ki.attribution.maps.get_method(name)(cnn, T.Class(LABELS), layer="conv1")
    reference = method.explain(X, batch_size=len(X) * 6)
    for batch_size in (1, 3):
        np.testing.assert_allclose(
            method.explain(X, batch_size=batch_size), reference, rtol=1e-5, atol=1e-7
        )


def test_several_target_channels_and_progress_bar(cnn, capsys):
    """A target with K channels gives K maps per image, each its own Score-CAM; the
    progress bar counts steps of `batch_size` masked images."""
    target = T.Channel("conv2", [0, 3], "sum")
    maps = ki.ScoreCAM(cnn, target, layer="conv1", batch_size=4, verbose=1).explain(X[:2])
    assert maps.shape == (2, 2, 10, 10)
    assert "6/6" in capsys.readouterr().err  # 2 images x 3 steps of 2 channels x 2 targets
    features = keras.Model(cnn.inputs[0], cnn.get_layer("conv1").output)
    inner = keras.Model(cnn.inputs[0], cnn.get_layer("conv2").output)
    for j, c in enumerate([0, 3]):
        score = lambda out, i, c=c: tf.reduce_sum(out[..., c], axis=[1, 2])  # noqa: E731
        _, expected = scorecam_reference(inner, features, X[:2], score)
        np.testing.assert_allclose(maps[:, j], expected, rtol=1e-4, atol=1e-6)


def test_registered_names_and_attribution_maps(cnn):
    from keras_introspect.attribution.maps import METHODS, get_method

    for name, cls in [
        ("scorecam", ki.ScoreCAM),
        ("layercam", ki.LayerCAM),
        ("guided_gradcam", ki.GuidedGradCAM),
    ]:
        assert METHODS[name] is cls and get_method(name) is cls
        est = ki.AttributionMaps(cnn, name, T.Class(2), method_options={"layer": "conv1"})
        maps = est.fit(X).transform(X)
        np.testing.assert_allclose(
            maps, cls(cnn, T.Class(2), layer="conv1").explain(X).reshape(5, -1), rtol=1e-5
        )


def test_constant_feature_maps_are_said():
    """An image whose feature maps are all constant has no Score-CAM mask at all."""
    model = hand_model()
    with pytest.warns(KerasIntrospectWarning, match="Every attribution of ScoreCAM"):
        ki.ScoreCAM(model, 0, layer="feat").explain(np.ones((1, 4, 4, 1), "float32"))


# ----------------------------------------------- a keras.applications backbone
def test_mobilenet_backbone_in_a_head(built_models):
    """MobileNetV2 (weights=None) at 32 x 32 inside a Sequential head: every method
    runs on the default layer, and Score-CAM equals the brute force at an inner layer."""
    model = built_models["nested"]
    x = sample_input("nested", n=2)
    backbone, pre = model.layers[1], model.layers[0]
    for method in (
        ki.ScoreCAM(model, T.Class(1), max_n=8),
        ki.LayerCAM(model, T.Class(1)),
        ki.GuidedGradCAM(model, T.Class(1)),
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", KerasIntrospectWarning)  # random net: may be 0
            maps = method.explain(x)
        assert maps.shape == (2, 32, 32) and np.isfinite(maps).all(), type(method).__name__
        assert method.layer_path_ == "mobilenetv2_0.35_32/block_13_expand_relu"
    layer = "block_2_add"  # 8 channels at 8 x 8
    inner = keras.Model(backbone.inputs, backbone.get_layer(layer).output)
    features = lambda images: inner(pre(images))  # noqa: E731
    _, expected = scorecam_reference(model, features, x, lambda out, i: out[:, 2])
    maps = ki.ScoreCAM(model, T.Class(2), layer=layer).explain(x)
    assert expected.any()
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- tf-keras-vis
def tf_keras_vis(module):
    """`tf_keras_vis.<module>` (the test is skipped where tf-keras-vis is not installed)."""
    pytest.importorskip("tf_keras_vis")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # its scipy.ndimage import
        return importlib.import_module(f"tf_keras_vis.{module}")


@pytest.fixture(scope="module")
def peer_model():
    keras.utils.set_random_seed(7)
    return keras.Sequential(
        [
            keras.Input((12, 12, 3)),
            L.Conv2D(6, 3, padding="same", activation="relu", name="same"),
            L.Conv2D(8, 3, strides=2, activation="relu", name="down"),
            L.GlobalAveragePooling2D(),
            L.Dense(3, name="logits"),
        ]
    )


XP = np.random.default_rng(0).uniform(0, 1, (4, 12, 12, 3)).astype("float32")


def test_score_cam_agrees_with_tf_keras_vis(peer_model):
    """tf-keras-vis' Scorecam weights each channel by the softmax probability of the
    masked image (no baseline, no softmax over channels): our weighting="score" with that
    probability as target. At a layer of the input's size no resizing is involved and the
    raw maps agree to 3e-8 (measured; asserted 1e-6 relative). At a stride-2 layer
    tf-keras-vis resizes the masks with scipy's zoom (corners aligned) where we use
    half-pixel centres: measured max relative difference 1.1e-3, Pearson 0.9999996."""
    Scorecam = tf_keras_vis("scorecam").Scorecam
    CategoricalScore = tf_keras_vis("utils.scores").CategoricalScore

    probability = T.Score(lambda out: tf.nn.softmax(out)[:, 1], name="p1")
    for layer, rtol in [("same", 1e-6), ("down", 5e-3)]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Keras on tf-keras-vis' inputs
            theirs = Scorecam(peer_model, clone=False)(
                CategoricalScore([1] * 4),
                XP,
                penultimate_layer=layer,
                expand_cam=False,
                normalize_cam=False,
            )
        ours = ki.ScoreCAM(
            peer_model, probability, layer=layer, weighting="score", upsample=False
        ).explain(XP)
        theirs = np.asarray(theirs)
        assert np.abs(ours - theirs).max() <= rtol * np.abs(theirs).max(), layer
        r = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(ours, theirs, strict=True)]
        assert min(r) > 0.9999, layer


def test_layer_cam_agrees_with_tf_keras_vis(peer_model):
    """Same formula: the raw maps agree to float rounding (measured max difference 5e-10
    for maps of about 1e-2)."""
    Layercam = tf_keras_vis("layercam").Layercam
    CategoricalScore = tf_keras_vis("utils.scores").CategoricalScore

    labels = [0, 1, 2, 1]
    for layer in ("same", "down"):
        theirs = Layercam(peer_model, clone=False)(
            CategoricalScore(labels),
            XP,
            penultimate_layer=layer,
            expand_cam=False,
            normalize_cam=False,
        )
        ours = ki.LayerCAM(peer_model, T.Class(labels), layer=layer, upsample=False).explain(XP)
        np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-5, atol=1e-8)


def test_tf_keras_vis_grad_cam_plus_plus_normalises_the_alphas(cnn):
    """tf-keras-vis' GradcamPlusPlus divides the paper's closed-form alphas by their
    spatial sum (ours does not; see docs/attribution.md): its raw map is that formula."""
    GradcamPlusPlus = tf_keras_vis("gradcam_plus_plus").GradcamPlusPlus
    CategoricalScore = tf_keras_vis("utils.scores").CategoricalScore

    probe = keras.Model(cnn.inputs[0], [cnn.get_layer("conv2").output, cnn.layers[-1].output])
    with tf.GradientTape() as tape:
        a, out = probe(tf.constant(X))
        score = tf.gather(out, LABELS, axis=1, batch_dims=1)
    g, a, s = tape.gradient(score, a).numpy(), a.numpy(), score.numpy()
    alpha = g**2 / (2 * g**2 + a.sum(axis=(1, 2), keepdims=True) * g**3 + (g == 0))
    ours = np.maximum(np.einsum("nhwk,nk->nhw", a, (alpha * np.maximum(g, 0)).sum((1, 2))), 0)
    total = alpha.sum(axis=(1, 2), keepdims=True)
    alpha = alpha / np.where(total == 0, 1, total)
    weights = (alpha * np.maximum(np.exp(s)[:, None, None, None] * g, 0)).sum(axis=(1, 2))
    expected = np.maximum(np.einsum("nhwk,nk->nhw", a, weights), 0)
    theirs = GradcamPlusPlus(cnn, clone=False)(
        CategoricalScore(LABELS), X, penultimate_layer="conv2", expand_cam=False,
        normalize_cam=False,
    )  # fmt: skip
    np.testing.assert_allclose(np.asarray(theirs), expected, rtol=1e-4, atol=1e-6)
    mine = ki.GradCAMPlusPlus(cnn, T.Class(LABELS), layer="conv2", upsample=False).explain(X)
    np.testing.assert_allclose(mine, ours, rtol=1e-4, atol=1e-6)
