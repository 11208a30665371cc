"""Grad-CAM and Grad-CAM++ against hand computations."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import sample_input

import keras_introspect as ki
from keras_introspect.exceptions import KerasIntrospectWarning

L = keras.layers


def _one_conv():
    model = keras.Sequential(
        [
            keras.Input((4, 4, 1)),
            L.Conv2D(2, 3, name="conv"),
            L.GlobalAveragePooling2D(),
            L.Dense(2, name="out"),
        ]
    )
    kernel = np.arange(18, dtype="float32").reshape(3, 3, 1, 2) / 10 - 0.8
    model.get_layer("conv").set_weights([kernel, np.array([0.1, -0.2], "float32")])
    v = np.array([[1.0, -2.0], [0.5, 3.0]], "float32")
    model.get_layer("out").set_weights([v, np.zeros(2, "float32")])
    return model, kernel, v


def test_grad_cam_equals_hand_computation():
    model, kernel, v = _one_conv()
    x = np.random.default_rng(0).normal(size=(2, 4, 4, 1)).astype("float32")
    feature = np.zeros((2, 2, 2, 2), "float32")  # valid 3x3 convolution, by loops
    for i in range(2):
        for j in range(2):
            patch = x[:, i : i + 3, j : j + 3, :]
            feature[:, i, j, :] = np.einsum("nhwc,hwck->nk", patch, kernel) + np.array([0.1, -0.2])
    for cls in (0, 1):
        weights = v[:, cls] / 4.0  # d(mean of A_k)/dA_ijk = 1/4, times the dense weight
        expected = np.maximum(np.einsum("nhwk,k->nhw", feature, weights), 0)
        explain = ki.GradCAM(model, cls, layer="conv", upsample=False).explain
        if expected.any():
            cam = explain(x)
        else:  # every weighted sum is <= 0: the all-zero maps are said, not silent
            with pytest.warns(KerasIntrospectWarning, match="Its gradients are not zero"):
                cam = explain(x)
        np.testing.assert_allclose(cam, expected, rtol=1e-5, atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", KerasIntrospectWarning)  # class 1: zero, as above
        up = ki.GradCAM(model, 1, layer="conv").explain(x)
    assert up.shape == (2, 4, 4)
    resized = tf.image.resize(expected[..., None], (4, 4), method="bilinear")[..., 0]
    np.testing.assert_allclose(up, resized, rtol=1e-5, atol=1e-6)


def test_grad_cam_plus_plus_equals_hand_computation():
    model, _, v = _one_conv()
    x = np.random.default_rng(1).normal(size=(2, 4, 4, 1)).astype("float32")
    feature = keras.Model(model.inputs[0], model.get_layer("conv").output)(x).numpy()
    g = np.broadcast_to(v[:, 0] / 4.0, feature.shape)
    alpha = g**2 / (2 * g**2 + feature.sum(axis=(1, 2), keepdims=True) * g**3)
    weights = (alpha * np.maximum(g, 0)).sum(axis=(1, 2))
    expected = np.maximum(np.einsum("nhwk,nk->nhw", feature, weights), 0)
    cam = ki.GradCAMPlusPlus(model, 0, layer="conv", upsample=False).explain(x)
    np.testing.assert_allclose(cam, expected, rtol=1e-4, atol=1e-6)


def test_grad_cam_inside_nested_backbone_equals_head_tail(get_model):
    model = get_model("nested_two_levels")
    x = sample_input("nested_two_levels", n=3)
    encoder = model.get_layer("encoder")
    stem = encoder.get_layer("stem")
    head = keras.Model(stem.inputs[0], stem.get_layer("stem_conv").output)
    feature = head(tf.constant(x) * 2.0)
    with tf.GradientTape() as tape:
        tape.watch(feature)
        h = encoder.get_layer("enc_conv")(feature)
        score = model.get_layer("dense")(model.get_layer("gmp")(h))[:, 2]
    grads = tape.gradient(score, feature).numpy()
    weights = grads.mean(axis=(1, 2))
    expected = np.maximum(np.einsum("nhwk,nk->nhw", feature.numpy(), weights), 0)
    method = ki.GradCAM(model, 2, layer="stem_conv", upsample=False)
    np.testing.assert_allclose(method.explain(x), expected, rtol=1e-4, atol=1e-6)
    assert method.layer_path_ == "encoder/stem/stem_conv"


def test_default_layer_is_the_last_spatial_one(built_models):
    model = built_models["nested"]
    method = ki.GradCAM(model, 1)
    maps = method.explain(sample_input("nested", n=2))
    assert method.layer_path_ == "mobilenetv2_0.35_32/out_relu"
    assert maps.shape == (2, 32, 32)


def test_layer_without_spatial_axes_is_refused():
    model, _, _ = _one_conv()
    with pytest.raises(ValueError, match="two spatial axes"):
        ki.GradCAM(model, 0, layer="out").explain(np.zeros((1, 4, 4, 1)))
