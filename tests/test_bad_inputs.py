"""The bad-input matrix: one row per case.

Each row either raises a `ValueError`/`TypeError` whose message names the
value received and what was expected, or, where a sensible answer exists,
gives the right answer (checked against an independent computation).
"""

import warnings

import keras
import numpy as np
import pytest
from conftest import make_sequential
from sklearn.exceptions import NotFittedError

import keras_introspect as ki
from keras_introspect import targets
from keras_introspect.exceptions import (
    AmbiguousLayerError,
    KerasIntrospectWarning,
    LayerNotFoundError,
    ModelNotBuiltError,
    SharedLayerError,
)
from keras_introspect.metrics.road import impute

L = keras.layers


keras.utils.set_random_seed(0)
MODEL = make_sequential()  # conv1, pool1, conv2, gap, out (softmax over 3)
X = np.random.default_rng(0).uniform(size=(2, 16, 16, 3)).astype("float32")
# a signal model and a volume model for the rank-mismatch rows (issue 22)
SIGNAL = keras.Sequential([keras.Input((32, 1)), L.Conv1D(2, 3, name="conv")])
VOLUME = keras.Sequential([keras.Input((8, 8, 8, 1)), L.Conv3D(2, 3, name="conv")])
# attribution, metrics and optimisation of other ranks (issue 22)
ND_SIGNAL = keras.Sequential(
    [keras.Input((12, 2)), L.Conv1D(2, 3, name="conv"), L.Flatten(), L.Dense(2)]
)
ND_SIGNAL_X = np.random.default_rng(1).uniform(size=(2, 12, 2)).astype("float32")
ND_VOLUME = keras.Sequential(
    [keras.Input((6, 6, 6, 1)), L.Conv3D(2, 3, name="conv"), L.Flatten(), L.Dense(2)]
)
ND_VOLUME_X = np.random.default_rng(2).uniform(size=(2, 6, 6, 6, 1)).astype("float32")
ND_FLAT_TO_IMAGE = keras.Sequential(
    [keras.Input((16,)), L.Reshape((4, 4, 1)), L.Conv2D(2, 3, name="conv"), L.Flatten(), L.Dense(2)]
)
ND_SCALAR = keras.Sequential([keras.Input(()), L.Reshape((1,)), L.Dense(2)])


def with_value(x, index, value):
    x = x.copy()
    x[index] = value
    return x


# (id, call, error type, regex the message must match: the value and what is expected)
ERRORS = [
    (
        "unknown layer",
        lambda: ki.GradCAM(MODEL, 0, layer="conv3").explain(X),
        LayerNotFoundError,
        r"No layer matches 'conv3'\. Closest valid names: \['conv2', 'conv1'\]",
    ),
    (
        "ambiguous layer",
        lambda: ki.GradCAM(MODEL, 0, layer="conv").explain(X),
        AmbiguousLayerError,
        r"Expected 'conv' to name one layer\. Received a selector matching 2 layers: "
        r"\['conv1', 'conv2'\]",
    ),
    (
        "layer index out of range",
        lambda: ki.Introspector(MODEL).layer(5),
        LayerNotFoundError,
        r"Expected a layer index in \[-5, 4\]\. Received: index=5",
    ),
    (
        "negative layer index out of range",
        lambda: ki.LayerActivations(MODEL, -6).fit(X),
        LayerNotFoundError,
        r"Expected a layer index in \[-5, 4\]\. Received: index=-6",
    ),
    (
        "Grad-CAM on a layer without spatial axes",
        lambda: ki.GradCAM(MODEL, 0, layer="gap").explain(X),
        ValueError,
        r"Expected a layer with two spatial axes.*Received: layer 'gap' with output shape "
        r"\(None, 6\)",
    ),
    (
        "class out of range",
        lambda: ki.Saliency(MODEL, 3).explain(X),
        ValueError,
        r"Expected class index in the range \[0, 2\].*Received: 3",
    ),
    (
        "negative class out of range",
        lambda: ki.Saliency(MODEL, targets.Class(-4)).explain(X),
        ValueError,
        r"Expected class index in the range \[0, 2\].*Received: -4",
    ),
    (
        "channel out of range",
        lambda: ki.Saliency(MODEL, targets.Channel("conv2", 6)).explain(X),
        ValueError,
        r"Expected channel of 'conv2' in the range \[0, 5\].*Received: 6",
    ),
    (
        "neuron position out of range",
        lambda: ki.Occlusion(MODEL, targets.Neuron("conv1", 0, (14, 0))).explain(X),
        ValueError,
        r"Expected position\[0\] of 'conv1' in the range \[0, 13\].*Received: 14",
    ),
    (
        "neuron channel out of range",
        lambda: ki.Saliency(MODEL, targets.Neuron("conv1", -5, (0, 0))).explain(X),
        ValueError,
        r"Expected channel of 'conv1' in the range \[0, 3\].*Received: -5",
    ),
    (
        "image of the wrong size",
        lambda: ki.Saliency(MODEL, 0).explain(X[:, :12]),
        ValueError,
        r"Expected input of shape \(None, 16, 16, 3\).*Received: x with shape \(2, 12, 16, 3\)",
    ),
    (
        "image with the wrong channels",
        lambda: ki.GradCAM(MODEL, 0).explain(X[..., :1]),
        ValueError,
        r"Expected input of shape \(None, 16, 16, 3\).*Received: x with shape \(2, 16, 16, 1\)",
    ),
    (
        "NaN in the images",
        lambda: ki.Saliency(MODEL, 0).explain(with_value(X, (1, 2, 3, 0), np.nan)),
        ValueError,
        r"Input contains NaN or infinity \(1 values\)\. Expected finite values in `x`",
    ),
    (
        "inf in the images",
        lambda: ki.Occlusion(MODEL, 0, window=4).explain(with_value(X, (0, 0, 0, 0), np.inf)),
        ValueError,
        r"Input contains NaN or infinity \(1 values\)",
    ),
    (
        "NaN in the images of a dataset probe",
        lambda: ki.top_activating(
            MODEL, "conv1", 0, with_value(X, (0, 0, 0, 0), np.nan), k=1, crops=True
        ),
        ValueError,
        r"Input contains NaN or infinity",
    ),
    (
        "empty input",
        lambda: ki.Saliency(MODEL, 0).explain(X[:0]),
        ValueError,
        r"Expected at least one sample\. Received: an empty `x` with shapes \[\(0, 16, 16, 3\)\]",
    ),
    (
        "empty input to an estimator",
        lambda: ki.PixelClusterer(MODEL, "conv1").fit(X[:0]),
        ValueError,
        r"Found array with 0 sample\(s\) \(shape=\(0, 16, 16, 3\)\) while a minimum of 1",
    ),
    (
        "occlusion window larger than the image",
        lambda: ki.Occlusion(MODEL, 0, window=(8, 17)).explain(X),
        ValueError,
        r"Expected `window` no larger than the image \(16 x 16\)\. Received: window=\(8, 17\)",
    ),
    (
        "occlusion stride 0",
        lambda: ki.Occlusion(MODEL, 0, window=4, stride=0),
        ValueError,
        r"Expected `stride` to be an integer >= 1 or a pair of them\. Received: stride=0",
    ),
    (
        "occlusion negative stride",
        lambda: ki.Occlusion(MODEL, 0, window=4, stride=(2, -1)),
        ValueError,
        r"Received: stride=\(2, -1\)",
    ),
    (
        "PixelClusterer.transform before fit",
        lambda: ki.PixelClusterer(MODEL, "conv1").transform(X),
        NotFittedError,
        r"This PixelClusterer instance is not fitted yet",
    ),
    (
        "ImageClusterer.predict before fit",
        lambda: ki.ImageClusterer(MODEL, "gap").predict(X),
        NotFittedError,
        r"This ImageClusterer instance is not fitted yet",
    ),
    (
        "LayerActivations.transform before fit",
        lambda: ki.LayerActivations(MODEL, "conv1").transform(X),
        NotFittedError,
        r"This LayerActivations instance is not fitted yet",
    ),
    (
        "AttributionMaps.transform before fit",
        lambda: ki.AttributionMaps(MODEL).transform(X),
        NotFittedError,
        r"This AttributionMaps instance is not fitted yet",
    ),
    (
        "CategoryTree.transform before fit",
        lambda: ki.CategoryTree(MODEL, "gap").transform(X),
        NotFittedError,
        r"This CategoryTree instance is not fitted yet",
    ),
    (
        "PredictionTree.predict before fit",
        lambda: ki.PredictionTree(MODEL, "conv2").predict(X),
        NotFittedError,
        r"This PredictionTree instance is not fitted yet",
    ),
    # issue 18, D12: one index rule for scalars and arrays (never truncated)
    (
        "fractional per-image classes",
        lambda: targets.Class([0.9, 1.6, 2.2, 0.1]),
        TypeError,
        r"Expected `index` \(one class per image\) to be an integer.*Received: 0\.9",
    ),
    (
        "fractional channels",
        lambda: targets.Channel("conv2", [1.7, 2.2]),
        TypeError,
        r"Expected `index` \(channels\) to be an integer.*Received: 1\.7",
    ),
    (
        "bool per-image classes",
        lambda: targets.Class(np.array([True, False])),
        TypeError,
        r"integers, not bools",
    ),
    (
        "bool scalar class",
        lambda: targets.Class(True),
        TypeError,
        r"integer, not a bool\. Received: True",
    ),
    (
        "2-D label array",
        lambda: targets.Class(np.zeros((2, 2), int)),
        ValueError,
        r"Expected `index` \(one class per image\) as a 1-D sequence.*shape \(2, 2\)",
    ),
    (
        "negative per-image class",
        lambda: targets.Class([0, -1, 2]),
        ValueError,
        r"Expected non-negative `index` \(one class per image\)\. Received: -1 at position 1",
    ),
    (
        "NaN class",
        lambda: targets.Class(float("nan")),
        TypeError,
        r"Received: nan",
    ),
    # D14: NaN / inf parameters
    (
        "NaN occlusion baseline",
        lambda: ki.Occlusion(MODEL, 0, baseline=float("nan")),
        ValueError,
        r"Expected `baseline` to be a finite number\. Received: baseline=nan",
    ),
    (
        "inf in an occlusion baseline image",
        lambda: ki.Occlusion(MODEL, 0, baseline=with_value(X[0], (0, 0, 0), np.inf)),
        ValueError,
        r"Expected `baseline` with finite values\. Received: baseline with 1 NaN or infinite",
    ),
    (
        "NaN SmoothGrad noise",
        lambda: ki.SmoothGrad(MODEL, 0, noise=float("nan")),
        ValueError,
        r"Expected `noise` to be a finite number\. Received: noise=nan",
    ),
    (
        "inf SmoothGrad noise",
        lambda: ki.SmoothGrad(MODEL, 0, noise=np.inf),
        ValueError,
        r"Expected `noise` to be a finite number\. Received: noise=inf",
    ),
    (
        "NaN integrated-gradients baseline",
        lambda: ki.IntegratedGradients(MODEL, 0, baseline=np.full((16, 16, 3), np.nan)),
        ValueError,
        r"Expected `baseline` with finite values\. Received: baseline with 768 NaN",
    ),
    (
        "fractional occlusion window",
        lambda: ki.Occlusion(MODEL, 0, window=4.5),
        ValueError,
        r"Expected `window` to be an integer >= 1 or a pair of them\. Received: window=4\.5",
    ),
    (
        "images given to a 1-D model",
        lambda: ki.top_activating(SIGNAL, "conv", 0, X, crops=False),
        ValueError,
        r"Expected input of shape \(None, 32, 1\) \(batch first; 1-D: 1 spatial axis, then "
        r"channels\)\. Received: x with shape \(2, 16, 16, 3\)",
    ),
    (
        "signals without their channel axis",
        lambda: ki.activation_histogram(SIGNAL, "conv", 0, np.zeros((4, 32))),
        ValueError,
        r"Received: x with shape \(4, 32\); add the channel axis: x\[\.\.\., None\]",
    ),
    (
        "images given to a 3-D model",
        lambda: ki.top_activating_all(VOLUME, "conv", X),
        ValueError,
        r"Expected input of shape \(None, 8, 8, 8, 1\) \(batch first; 3-D: 3 spatial axes, "
        r"then channels\)\. Received: x with shape \(2, 16, 16, 3\)",
    ),
    (
        "volumes given to a 2-D model",
        lambda: ki.Introspector(MODEL).activations(np.zeros((2, 4, 16, 16, 3)), "conv1"),
        ValueError,
        r"Expected input of shape \(None, 16, 16, 3\) \(batch first; 2-D: 2 spatial axes, "
        r"then channels\)\. Received: x with shape \(2, 4, 16, 16, 3\)",
    ),
    (
        "an image size for the field of a 1-D model",
        lambda: ki.Introspector(SIGNAL).receptive_field("conv", input_size=(32, 32)),
        ValueError,
        r"Expected `input_size` with 1 positive int\(s\), the spatial size of an input of "
        r"shape \(None, 32, 1\)\. Received: input_size=\(32, 32\)",
    ),
    (
        "a list of images of several sizes",
        lambda: ki.top_activating(MODEL, "conv1", 0, [X[0], X[1, :8, :8]], crops=False),
        ValueError,
        r"Expected the samples of `x` to share one shape.*Received: x, a list of 2 arrays "
        r"of shapes \[\(8, 8, 3\), \(16, 16, 3\)\]",
    ),
    # rank mismatches of the attribution, metric and optimisation entry points (issue 22)
    (
        "an image window for a signal",
        lambda: ki.Occlusion(ND_SIGNAL, 0, window=(4, 4)).explain(ND_SIGNAL_X),
        ValueError,
        r"Expected `window` with one value per spatial axis of the input \(1\)\. "
        r"Received: window=\(4, 4\)",
    ),
    (
        "a window larger than the volume",
        lambda: ki.Occlusion(ND_VOLUME, 0, window=(2, 2, 9)).explain(ND_VOLUME_X),
        ValueError,
        r"Expected `window` no larger than the input \(6 x 6 x 6\)\. "
        r"Received: window=\(2, 2, 9\)",
    ),
    (
        "a 2-D Grad-CAM layer for a flat vector input",
        lambda: ki.GradCAM(ND_FLAT_TO_IMAGE, 0, layer="conv").explain(np.ones((1, 16))),
        ValueError,
        r"Expected a layer with one spatial axis, output \(batch, l, channels\), for GradCAM "
        r"\(as the input\)\. Received: layer 'conv' with output shape \(None, 2, 2, 2\)",
    ),
    (
        "an image baseline for a volume",
        lambda: ki.IntegratedGradients(ND_VOLUME, 0, baseline=np.zeros((6, 6, 1))).explain(
            ND_VOLUME_X
        ),
        ValueError,
        r"Expected `baseline` of the image shape \(6, 6, 6, 1\)\. Received: baseline with "
        r"shape \(6, 6, 1\)",
    ),
    (
        "an image-shaped occlusion baseline for a signal",
        lambda: ki.RISE(ND_SIGNAL, 0, baseline=np.zeros((12, 12))).explain(ND_SIGNAL_X),
        ValueError,
        r"Expected `baseline` of shape \(12, 2\)\. Received: baseline with shape \(12, 12\)",
    ),
    (
        "quickshift for a signal",
        lambda: ki.LIME(ND_SIGNAL, 0, segmentation="quickshift").explain(ND_SIGNAL_X),
        ValueError,
        r"Expected segmentation='slic', a callable or labels for a signal or volume: "
        r"quickshift segments 2-D images only\. Received: samples of shape \(12, 2\)",
    ),
    (
        "image labels for a signal",
        lambda: ki.KernelSHAP(ND_SIGNAL, 0, segmentation=np.zeros((5, 5), int)).explain(
            ND_SIGNAL_X
        ),
        ValueError,
        r"Expected `segmentation` labels of shape \(12,\) \(or one such map per image\)\. "
        r"Received: labels of shape \(5, 5\)",
    ),
    (
        "SLIC options for the windows of a signal",
        lambda: ki.LIME(ND_SIGNAL, 0, segmentation_options={"compactness": 5}).explain(ND_SIGNAL_X),
        ValueError,
        r"Expected only `n_segments` in `segmentation_options` for a signal.*"
        r"Received: \['compactness'\]",
    ),
    (
        "a model input without any axis besides the batch",
        lambda: ki.Saliency(ND_SCALAR, 0).explain(np.ones((2,))),
        ValueError,
        r"Expected a model input with at least one axis besides the batch axis.*"
        r"Received: inputs of shapes \[\(None,\)\]",
    ),
    (
        "a 2-D mask to impute a signal",
        lambda: impute(np.ones((12, 2)), np.ones((12, 2), bool), n_axes=1),
        ValueError,
        r"Expected `mask` a bool array of shape \(12,\)\. Received: mask with shape \(12, 2\)",
    ),
    (
        "volume maps for signals in deletion",
        lambda: ki.metrics.deletion(ND_SIGNAL, ND_SIGNAL_X, np.ones((2, 12, 2, 2)), 0),
        ValueError,
        r"Expected one map per image, shape \(2, L\), of real numbers\. Received: maps with "
        r"shape \(2, 12, 2, 2\)",
    ),
    (
        "image transforms for a volume",
        lambda: ki.ActivationMaximization(
            ND_VOLUME, 0, steps=1, transforms=[ki.optimize.transforms.Rotate(5)]
        ).generate(),
        ValueError,
        r"Expected no image transforms or GaussianBlur for inputs of shape "
        r"\(None, 6, 6, 6, 1\).*Received: \['Rotate'\]",
    ),
    (
        "decorrelated colours for flat vectors",
        lambda: ki.ActivationMaximization(
            ND_FLAT_TO_IMAGE, 0, steps=1, parameterization="decorrelated"
        ).generate(),
        ValueError,
        r"Expected samples with a channel axis for parameterization='decorrelated'.*"
        r"Received: flat vectors of shape \(16,\)",
    ),
]


@pytest.mark.parametrize(
    "call, error, message", [row[1:] for row in ERRORS], ids=[row[0] for row in ERRORS]
)
def test_bad_input_is_refused_clearly(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_errors_are_value_or_type_errors():
    for _, _, error, _ in ERRORS:
        assert issubclass(error, (ValueError, TypeError))


def test_single_image_without_batch_axis_is_accepted():
    for method in (ki.Saliency(MODEL, 1), ki.GradCAM(MODEL, 1), ki.Occlusion(MODEL, 1, window=4)):
        one = method.explain(X[1])
        np.testing.assert_allclose(one, method.explain(X[1:2]), rtol=1e-6)
        assert one.shape == (1, 16, 16)
    acts = ki.Introspector(MODEL).activations(X[0], "conv1")["conv1"]
    np.testing.assert_allclose(acts, ki.Introspector(MODEL).activations(X[:1], "conv1")["conv1"])


def test_dpgmm_on_a_layer_with_one_channel_clusters_its_values():
    """One channel is a valid 1-D clustering problem: two value levels, two clusters."""
    model = keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(1, 1, use_bias=False, name="c")])
    model.get_layer("c").set_weights([np.ones((1, 1, 1, 1), "float32")])  # identity
    x = np.zeros((4, 8, 8, 1), "float32")
    x[:, :, 4:] = 1.0
    x += np.random.default_rng(0).normal(scale=0.01, size=x.shape).astype("float32")
    clusterer = ki.PixelClusterer(model, "c", random_state=0, max_iter=200).fit(x)
    labels = clusterer.transform(x)
    assert clusterer.n_channels_ == 1 and clusterer.n_clusters_ == 2
    left, right = labels[:, :, :4], labels[:, :, 4:]
    assert len(np.unique(left)) == 1 and len(np.unique(right)) == 1
    assert left[0, 0, 0] != right[0, 0, 0]


def _channels_first_twin():
    """The same network with its convolution computed channels first, and channels last."""
    keras.utils.set_random_seed(3)
    last = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            L.Conv2D(4, 3, activation="relu", name="conv"),
            L.Flatten(),
            L.Dense(2, name="out"),
        ]
    )
    first = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            L.Permute((3, 1, 2)),
            L.Conv2D(4, 3, activation="relu", data_format="channels_first", name="conv"),
            L.Permute((2, 3, 1)),
            L.Flatten(),
            L.Dense(2, name="out"),
        ]
    )
    first.get_layer("conv").set_weights(last.get_layer("conv").get_weights())
    first.get_layer("out").set_weights(last.get_layer("out").get_weights())
    return first, last


def test_channels_first_conv_layer_is_handled_like_its_channels_last_twin():
    first, last = _channels_first_twin()
    x = np.random.default_rng(4).uniform(size=(3, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(first(x), last(x), rtol=1e-5, atol=1e-6)
    strong = int(last.get_layer("conv")(x).numpy().mean(axis=(0, 1, 2)).argmax())
    pairs = [
        lambda m: ki.GradCAM(m, 1, layer="conv").explain(x),
        lambda m: ki.Saliency(m, targets.Channel("conv", strong, aggregate="sum")).explain(x),
        lambda m: ki.Occlusion(m, targets.Neuron("conv", strong, (2, 4)), window=2).explain(x),
        lambda m: ki.Introspector(m).activations(x, "conv", pooling="max")["conv"],
        lambda m: ki.top_activating(m, "conv", 1, x, k=2, crops=True).values,
    ]
    for compute in pairs:
        np.testing.assert_allclose(compute(first), compute(last), rtol=1e-4, atol=1e-6)
    labels = [
        ki.PixelClusterer(m, "conv", method="kmeans", n_clusters=3, random_state=0)
        .fit(x)
        .transform(x)
        for m in (first, last)
    ]
    np.testing.assert_array_equal(labels[0], labels[1])
    assert ki.Introspector(first).layer("conv").channel_axis == 1


def test_a_class_of_a_dense_output_is_its_mean_over_the_positions():
    """Issue 22: a class index on a dense output (a segmentation map) no longer needs a
    `Score`: it is the class' score averaged over every position (`region=None`)."""
    segmenter = keras.Sequential(
        [keras.Input((8, 8, 3)), L.Conv2D(2, 3, padding="same", name="logits")]
    )
    x = np.random.default_rng(0).uniform(size=(2, 8, 8, 3)).astype("float32")
    implicit = ki.Saliency(segmenter, 1).explain(x)
    explicit = ki.Saliency(
        segmenter, targets.Score(lambda y: keras.ops.mean(y[..., 1], axis=(1, 2)))
    ).explain(x)
    assert explicit.any()
    np.testing.assert_allclose(implicit, explicit, rtol=1e-5, atol=1e-8)
    with pytest.raises(ValueError, match="class"):
        ki.Saliency(segmenter, 2).explain(x)  # 2 classes: indices 0 and 1


def test_never_built_sequential_is_refused_with_the_way_out():
    model = keras.Sequential([L.Conv2D(2, 3, name="c"), L.Flatten(), L.Dense(2)])
    x = np.ones((1, 8, 8, 3), "float32")
    with pytest.raises(ModelNotBuiltError, match=r"was never built.*Pass `input_shape`"):
        ki.Saliency(model, 0).explain(x)
    info = ki.Introspector(model, input_shape=(8, 8, 3)).layer("c")
    assert info.output_shape == (None, 6, 6, 2)


@pytest.fixture
def mixed_precision_model():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        keras.utils.set_random_seed(5)
        model = keras.Sequential(
            [
                keras.Input((16, 16, 3)),
                L.Conv2D(4, 3, activation="relu", name="c1"),
                L.MaxPooling2D(),
                L.Conv2D(6, 3, name="c2"),
                L.GlobalAveragePooling2D(),
                L.Dense(3),
                L.Activation("softmax", dtype="float32"),
            ]
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return model


def test_mixed_precision_models_give_finite_float32_maps(mixed_precision_model):
    model = mixed_precision_model
    assert model.get_layer("c1").compute_dtype == "float16"
    methods = [
        ki.Saliency(model, 1),
        ki.GradCAM(model, 1),
        ki.SmoothGrad(model, 1, samples=4),
        ki.IntegratedGradients(model, 1, steps=8),
        ki.Occlusion(model, 1, window=4),
        ki.GuidedBackprop(model, 1),
        ki.Saliency(model, targets.Channel("c2", 1)),
    ]
    for method in methods:
        maps = method.explain(X)
        assert maps.dtype == np.float32 and np.isfinite(maps).all() and maps.any(), method
    # the float16 maps agree with those of a float32 copy of the same weights
    copy = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            L.Conv2D(4, 3, activation="relu"),
            L.MaxPooling2D(),
            L.Conv2D(6, 3),
            L.GlobalAveragePooling2D(),
            L.Dense(3),
            L.Activation("softmax"),
        ]
    )
    copy.set_weights(model.get_weights())
    half, full = ki.Saliency(model, 1).explain(X), ki.Saliency(copy, 1).explain(X)
    np.testing.assert_allclose(half, full, rtol=0.05, atol=0.02 * float(full.max()))


def test_layer_shared_by_two_branches_is_refused_clearly():
    inputs = keras.Input((8, 8, 3))
    shared = L.Conv2D(2, 3, name="shared")
    a, b = shared(inputs), shared(L.Rescaling(2.0)(inputs))
    out = L.Dense(2)(L.Flatten()(L.Add()([a, b])))
    model = keras.Model(inputs, out)
    x = np.ones((1, 8, 8, 3), "float32")
    message = r"Layer 'shared' is called 2 times in one forward pass.*Tap a layer that is called"
    for call in (
        lambda: ki.GradCAM(model, 0, layer="shared").explain(x),
        lambda: ki.Saliency(model, targets.Channel("shared", 0)).explain(x),
        lambda: ki.Introspector(model).activations(x, "shared"),
    ):
        with pytest.raises(SharedLayerError, match=message):
            call()
    # the model output itself is unambiguous
    assert np.isfinite(ki.Saliency(model, 0).explain(x)).all()


def test_integral_floats_and_numpy_scalars_are_accepted_as_indices_and_numbers():
    # one rule: 2.0 is the index 2, np.float32(0.1) a noise level, window=4.0 a window of 4
    assert targets.Class(2.0).index == 2
    assert targets.Class(np.array([0.0, 2.0])).index == [0, 2]
    assert targets.Channel("conv2", np.int64(3)).index == 3
    assert ki.SmoothGrad(MODEL, 0, noise=np.float32(0.1)).noise == pytest.approx(0.1)
    assert ki.Occlusion(MODEL, 0, window=4.0).window == (4, 4)
    np.testing.assert_array_equal(
        ki.Saliency(MODEL, 2.0).explain(X), ki.Saliency(MODEL, 2).explain(X)
    )


def test_gradcam_maps_that_are_all_zero_warn_although_gradients_are_not():
    """D15: the maps are checked, not only the gradients (every pre-ReLU map <= 0)."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((6, 6, 1)),
            L.Conv2D(2, 3, activation="relu", kernel_initializer="ones", name="conv"),
            L.GlobalAveragePooling2D(),
            L.Dense(2, kernel_initializer="ones"),
        ]
    )
    model.layers[-1].set_weights([-np.ones((2, 2), "float32"), np.zeros(2, "float32")])
    x = np.random.default_rng(0).uniform(0.1, 1, (3, 6, 6, 1)).astype("float32")
    # class 0 = -(mean of two positive feature maps): every Grad-CAM weight is negative
    with pytest.warns(KerasIntrospectWarning, match=r"is zero \(3 of 3 images\)\. Its gradients"):
        maps = ki.GradCAM(model, 0, layer="conv").explain(x)
    assert not maps.any()


def test_gradcam_default_layer_skips_dropout_and_reshaping():
    """D16: Conv -> Pool -> Dropout -> Flatten -> Dense picks the pooling layer."""
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            L.Conv2D(2, 3, activation="relu", name="conv"),
            L.MaxPooling2D(name="pool"),
            L.Dropout(0.5, name="drop"),
            L.Flatten(),
            L.Dense(2),
        ]
    )
    x = np.random.default_rng(1).uniform(size=(2, 8, 8, 1)).astype("float32")
    method = ki.GradCAM(model, 1)
    default = method.explain(x)
    assert method.layer_path_ == "pool"
    np.testing.assert_allclose(default, ki.GradCAM(model, 1, layer="pool").explain(x))


@pytest.mark.parametrize("method", [ki.GuidedBackprop, ki.Deconvnet])
def test_guided_rules_work_through_prelu(method):
    """D17: a rectifier with weights (PReLU, as in MTCNN's ONet)."""
    import tensorflow as tf

    keras.utils.set_random_seed(2)
    model = keras.Sequential(
        [
            keras.Input((5, 5, 1)),
            L.Conv2D(3, 3, name="conv"),
            L.PReLU(alpha_initializer=keras.initializers.Constant(0.25), name="prelu"),
            L.Flatten(),
            L.Dense(2),
        ]
    )
    x = np.random.default_rng(3).normal(size=(2, 5, 5, 1)).astype("float32")
    maps = method(model, 1, reduce_channels=None).explain(x)
    # by hand: the gradient arriving at the PReLU output is the dense weight of
    # class 1; the rule keeps its positive part (guided: times PReLU's slope)
    conv, dense = model.get_layer("conv"), model.layers[-1]
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        pre = conv(xt)
    dy = np.broadcast_to(dense.kernel.numpy()[:, 1].reshape(pre.shape[1:]), pre.shape)
    slope = np.where(pre.numpy() > 0, 1.0, 0.25)
    rule = np.maximum(dy, 0) * (slope if method is ki.GuidedBackprop else 1.0)
    expected = tape.gradient(pre, xt, output_gradients=tf.constant(rule, tf.float32)).numpy()
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-6)


def test_zero_maps_warn_instead_of_passing_silently():
    dead = keras.Sequential(
        [keras.Input((4, 4, 1)), L.Flatten(), L.Dense(2, kernel_initializer="zeros")]
    )
    with pytest.warns(KerasIntrospectWarning, match="Every attribution of Saliency"):
        ki.Saliency(dead, 0).explain(np.ones((1, 4, 4, 1), "float32"))


def test_a_layer_named_like_a_group_is_used_with_a_warning_and_reports_pick_by_kind():
    """D13: `select("dense")` with a layer named "dense" says which one it used; the
    report's choices go by class, never by names that collide with groups."""
    from keras_introspect.report.auto import _purity_layers, choose_layers

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((12, 12, 1)),
            L.Conv2D(2, 3, name="conv"),
            L.MaxPooling2D(name="pool"),
            L.Conv2D(2, 3, name="c2"),
            L.MaxPooling2D(name="p2"),
            L.Flatten(name="flat"),
            L.Dense(4, name="dense"),
            L.Dense(2, name="dense_1"),
        ]
    )
    intro = ki.Introspector(model)
    with pytest.warns(KerasIntrospectWarning, match=r"'dense' is both the name of layer"):
        assert [i.path for i in intro.select("dense")] == ["dense"]
    assert [i.path for i in intro.select("Dense")] == ["dense", "dense_1"]
    assert [i.path for i in intro.layers_of_kind("dense")] == ["dense", "dense_1"]
    assert [i.path for i in intro.layers_of_kind("pool")] == ["pool", "p2"]
    # p2's maps are 1 x 1 (nothing to show): the stage outputs are conv and c2
    assert choose_layers(intro) == ["conv", "c2"]
    assert {"dense", "dense_1"} <= set(_purity_layers(intro))


def test_a_step_cap_left_in_the_environment_is_never_silent(monkeypatch):
    """Issue 20: KI_MAX_STEPS is a test hook; a capped call says so."""
    from keras_introspect._validation import capped_steps

    monkeypatch.setenv("KI_MAX_STEPS", "5")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert capped_steps(100) == 5
        assert capped_steps(3) == 3  # below the cap: nothing to say
    messages = [str(w.message) for w in caught if issubclass(w.category, KerasIntrospectWarning)]
    assert messages == [
        "KI_MAX_STEPS=5 caps steps=100 to 5 (a hook for tests and smoke runs; "
        "unset it for real results)"
    ]
