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


def test_default_layer_is_the_last_spatial_one_with_more_than_one_position(built_models):
    """MobileNetV2 at 32 x 32 ends on 1 x 1 maps (out_relu), whose Grad-CAM is a
    constant; the default is the last layer with 2 x 2 maps instead."""
    model = built_models["nested"]
    x = sample_input("nested", n=2)
    method = ki.GradCAM(model, 1)
    maps = method.explain(x)
    assert method.layer_path_ == "mobilenetv2_0.35_32/block_13_expand_relu"
    assert maps.shape == (2, 32, 32)
    assert ki.Introspector(model).layer("out_relu").spatial_shape == (1, 1)
    last = ki.GradCAM(model, 1, layer="out_relu", upsample=False).explain(x)
    assert last.shape == (2, 1, 1)  # one value per image: no picture at all


def _permuted_model(transpose_op=False):
    keras.utils.set_random_seed(3)
    x = keras.Input((9, 6, 1))
    h = keras.layers.Conv2D(3, 3, padding="same", name="first")(x)
    if transpose_op:
        h = keras.ops.transpose(h, (0, 2, 1, 3))
    else:
        h = keras.layers.Permute((2, 1, 3), name="swap")(h)
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="after")(h)
    out = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(h))
    return keras.Model(x, out)


@pytest.mark.parametrize("transpose_op", [False, True])
def test_a_permuted_layer_gives_its_map_in_the_input_orientation(transpose_op):
    model = _permuted_model(transpose_op)
    x = np.random.default_rng(0).normal(size=(2, 9, 6, 1)).astype("float32")
    probe = keras.Model(model.inputs, [model.get_layer("after").output, model.output])
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        feature, out = probe(xt)
        score = out[:, 1]
    grads = tape.gradient(score, feature).numpy()
    cam = np.maximum(np.einsum("nhwk,nk->nhw", feature.numpy(), grads.mean(axis=(1, 2))), 0)
    assert cam.shape == (2, 6, 9)  # the layer runs columns first
    maps = ki.GradCAM(model, 1, layer="after", upsample=False).explain(x)
    np.testing.assert_allclose(maps, cam.transpose(0, 2, 1), rtol=1e-4, atol=1e-6)
    assert ki.GradCAM(model, 1, layer="after").explain(x).shape == (2, 9, 6)
    # by default the permuted layers are passed over
    method = ki.GradCAM(model, 1)
    method.explain(x)
    assert method.layer_path_ == "first"


def test_no_qualifying_layer_says_why():
    """Token tensors (a ViT's `(batch, 17, 2, 16)` read as rows x columns) and 1 x 1
    maps after global pooling are no Grad-CAM layers."""
    tokens = keras.Input((17, 32))
    h = keras.layers.Reshape((17, 2, 16), name="heads")(tokens)
    h = keras.layers.Dense(16, name="value")(h)
    vit = keras.Model(tokens, keras.layers.Dense(2)(keras.layers.Flatten()(h)))
    with pytest.raises(ValueError, match=r"no layer for GradCAM.*value \(Reshape heads"):
        ki.GradCAM(vit, 0).explain(np.zeros((1, 17, 32), "float32"))
    images = keras.Input((8, 8, 1))
    g = keras.layers.GlobalAveragePooling2D(keepdims=True)(images)
    g = keras.layers.Conv2D(2, 1, name="conv_preds")(g)
    pooled = keras.Model(images, keras.layers.Flatten()(g))
    with pytest.raises(ValueError, match=r"conv_preds \(GlobalAveragePooling2D"):
        ki.GradCAM(pooled, 0).explain(np.zeros((1, 8, 8, 1), "float32"))


def test_layer_without_spatial_axes_is_refused():
    model, _, _ = _one_conv()
    with pytest.raises(ValueError, match="two spatial axes"):
        ki.GradCAM(model, 0, layer="out").explain(np.zeros((1, 4, 4, 1)))
