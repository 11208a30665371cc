"""One contract for every attribution method (the Xplique-style common test)."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import sample_input

import keras_introspect as ki
from keras_introspect.exceptions import KerasIntrospectWarning

T = ki.targets

# few, compact superpixels: SLIC on the tests' random images would give one segment
SEGMENTS = {"n_segments": 4, "compactness": 50}
METHODS = {
    "saliency": lambda m, t: ki.Saliency(m, t),
    "gradient_input": lambda m, t: ki.GradientInput(m, t),
    "smoothgrad": lambda m, t: ki.SmoothGrad(m, t, samples=3, seed=5),
    "vargrad": lambda m, t: ki.VarGrad(m, t, samples=3, seed=5),
    "integrated_gradients": lambda m, t: ki.IntegratedGradients(m, t, steps=4),
    "expected_gradients": lambda m, t: ki.ExpectedGradients(
        m, t, baselines=np.zeros((2, *m.input_shape[1:]), "float32"), samples=3
    ),
    "gradcam": lambda m, t: ki.GradCAM(m, t),
    "gradcam++": lambda m, t: ki.GradCAMPlusPlus(m, t),
    "scorecam": lambda m, t: ki.ScoreCAM(m, t),
    "faster_scorecam": lambda m, t: ki.ScoreCAM(m, t, max_n=3, weighting="increase"),
    "layercam": lambda m, t: ki.LayerCAM(m, t),
    "guided_gradcam": lambda m, t: ki.GuidedGradCAM(m, t),
    "guided_backprop": lambda m, t: ki.GuidedBackprop(m, t),
    "deconvnet": lambda m, t: ki.Deconvnet(m, t),
    "occlusion": lambda m, t: ki.Occlusion(m, t, window=4, stride=3),
    "rise": lambda m, t: ki.RISE(m, t, n_masks=20, grid=3, seed=2),
    "sobol": lambda m, t: ki.SobolAttribution(m, t, grid_size=2, nb_design=4, seed=2),
    "lime": lambda m, t: ki.LIME(m, t, n_samples=20, segmentation_options=SEGMENTS),
    "kernel_shap": lambda m, t: ki.KernelSHAP(m, t, n_samples=20, segmentation_options=SEGMENTS),
}


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(12)
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((10, 10, 3)),
            L.Conv2D(4, 3, activation="relu", name="conv1"),
            L.MaxPooling2D(name="pool"),
            L.Conv2D(4, 3, activation="relu", name="conv2"),
            L.Flatten(),
            L.Dense(3, activation="softmax", name="out"),
        ]
    )


X = np.random.default_rng(0).uniform(0, 1, (5, 10, 10, 3)).astype("float32")


@pytest.mark.parametrize("name", METHODS)
def test_same_maps_for_every_input_kind_and_batch_size(model, name):
    reference = METHODS[name](model, T.Class([0, 1, 2, 0, 1])).explain(X, batch_size=64)
    assert reference.shape == (5, 10, 10) and reference.dtype == np.float32
    assert np.any(reference)
    method = METHODS[name](model, T.Class([0, 1, 2, 0, 1]))
    variants = {
        "batch 1": method.explain(X, batch_size=1),
        "batch 3": method.explain(X, batch_size=3),
        "tf tensor": method.explain(tf.constant(X), batch_size=2),
        "tf.data batched": method.explain(tf.data.Dataset.from_tensor_slices(X).batch(2)),
        "tf.data (x, y)": method.explain(
            tf.data.Dataset.from_tensor_slices((X, np.zeros(5))).batch(4)
        ),
        "generator": method.explain(X[i : i + 2] for i in range(0, 5, 2)),
    }
    for label, maps in variants.items():
        np.testing.assert_allclose(maps, reference, rtol=1e-4, atol=1e-6, err_msg=label)
    explain_one = lambda: METHODS[name](model, T.Class(0)).explain(X[0])  # noqa: E731 - no batch axis
    if np.any(reference[0]):
        single = explain_one()
    else:  # an all-zero map (Grad-CAM's ReLU) is said, not passed silently
        with pytest.warns(KerasIntrospectWarning, match=r"is zero \(1 of 1 images\)"):
            single = explain_one()
    np.testing.assert_allclose(single[0], reference[0], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["saliency", "gradcam", "occlusion", "smoothgrad"])
def test_fixture_models_as_built_and_reloaded(get_model, name):
    model = get_model("nested")
    x = sample_input("nested", n=2)
    maps = METHODS[name](model, T.Class(1)).explain(x)
    assert maps.shape == (2, 32, 32) and np.isfinite(maps).all()
    inner_target = T.Channel("block_3_expand_relu", 2, "sum")
    if name == "gradcam":
        with pytest.raises(ValueError, match="does not depend on layer"):
            ki.GradCAM(model, inner_target).explain(x)
        inner = ki.GradCAM(model, inner_target, layer="block_2_add").explain(x)
    else:
        inner = METHODS[name](model, inner_target).explain(x)
    assert inner.shape == (2, 32, 32) and np.isfinite(inner).all()


@pytest.mark.parametrize(
    "name",
    [
        "saliency",
        "gradcam",
        "occlusion",
        "integrated_gradients",
        "scorecam",
        "guided_gradcam",
        "rise",
    ],
)
def test_multi_input_and_subclassed_models(get_model, name):
    multi = get_model("multi_io")
    maps = METHODS[name](multi, T.Class(1)).explain(sample_input("multi_io", n=3))
    assert maps.shape == (3, 12, 12)
    sub = get_model("subclassed")
    with warnings.catch_warnings():
        # this random net's Grad-CAM maps are all zero (the ReLU of negative sums); the
        # warning saying so is tested in tests/test_bad_inputs.py
        warnings.simplefilter("ignore", KerasIntrospectWarning)
        maps = METHODS[name](sub, T.Class(0)).explain(sample_input("subclassed", n=2))
    assert maps.shape == (2, 10, 10)


def test_progress_bar(model, capsys):
    ki.Saliency(model, 0, batch_size=2, verbose=1).explain(X)
    assert "3/3" in capsys.readouterr().err  # status on stderr (issue 20)


# ---------------------------------------------------------------- other ranks
def _nd_model(kind):
    """A small CNN on signals `(12, 2)`, volumes `(6, 6, 6, 2)` or flat vectors `(12,)`
    reshaped to a signal inside the model."""
    keras.utils.set_random_seed(12)
    L = keras.layers
    if kind == "volume":
        conv, pool, shape, head = L.Conv3D, L.MaxPooling3D, (6, 6, 6, 2), []
    else:
        conv, pool, shape = L.Conv1D, L.MaxPooling1D, (12, 2) if kind == "signal" else (12,)
        head = [] if kind == "signal" else [L.Reshape((12, 1))]
    return keras.Sequential(
        [
            keras.Input(shape),
            *head,
            conv(4, 3, activation="relu", name="conv1"),
            pool(name="pool"),
            conv(4, 2, activation="relu", name="conv2"),
            L.Flatten(),
            L.Dense(3, activation="softmax", name="out"),
        ]
    )


ND_MODELS = {kind: _nd_model(kind) for kind in ("signal", "volume", "vector")}
ND_X = {
    kind: np.random.default_rng(1).uniform(0, 1, (5, *m.input_shape[1:])).astype("float32")
    for kind, m in ND_MODELS.items()
}
ND_SEGMENTS = {
    "signal": {"n_segments": 4},
    "vector": {"n_segments": 4},
    "volume": {"n_segments": 4, "compactness": 50},
}


def _nd_method(name, kind, model, target):
    if name in ("lime", "kernel_shap"):
        cls = ki.LIME if name == "lime" else ki.KernelSHAP
        return cls(model, target, n_samples=20, segmentation_options=ND_SEGMENTS[kind])
    return METHODS[name](model, target)


@pytest.mark.parametrize("kind", ND_MODELS)
@pytest.mark.parametrize("name", METHODS)
def test_signals_volumes_and_vectors_give_the_same_maps_for_every_input_kind(name, kind):
    """Maps have the input's shape without its channel axis, and the same values
    whatever the batch size or the kind of input (1-D and 3-D rows of the contract)."""
    model, x = ND_MODELS[kind], ND_X[kind]
    spatial = x.shape[1:] if kind == "vector" else x.shape[1:-1]
    with warnings.catch_warnings():
        # a random net's Grad-CAM may be all zero for one image (said by a warning,
        # tested above); here only the agreement between input kinds matters
        warnings.simplefilter("ignore", KerasIntrospectWarning)
        method = _nd_method(name, kind, model, T.Class([0, 1, 2, 0, 1]))
        reference = method.explain(x, batch_size=64)
        assert reference.shape == (5, *spatial) and reference.dtype == np.float32
        variants = {
            "batch 1": method.explain(x, batch_size=1),
            "tf.data batched": method.explain(tf.data.Dataset.from_tensor_slices(x).batch(2)),
        }
        single = _nd_method(name, kind, model, T.Class(0)).explain(x[0])
    assert np.any(reference)
    for label, maps in variants.items():
        np.testing.assert_allclose(maps, reference, rtol=1e-4, atol=1e-6, err_msg=label)
    np.testing.assert_allclose(single[0], reference[0], rtol=1e-4, atol=1e-6)
