"""Feature visualization extras: diversity, flips and padding, open-ReLU warm-up, animation."""

import base64
import io
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import keras_introspect as ki
from keras_introspect.optimize import regularizers as reg
from keras_introspect.optimize import transforms as tr
from keras_introspect.targets import Channel

RANGE = (0.0, 1.0)
L = keras.layers


@pytest.fixture(autouse=True)
def no_step_cap(monkeypatch):
    monkeypatch.delenv("KI_MAX_STEPS", raising=False)


def penalty(activations, groups=1):
    return np.asarray(reg.Diversity("any").penalty(np.asarray(activations, "float32"), groups))


def gram_cosines(a):
    """`(n, n)` cosine similarities of the flattened Gram matrices, by numpy."""
    a = a.reshape(len(a), -1, a.shape[-1]).astype(np.float64)
    g = np.einsum("rpc,rpd->rcd", a, a).reshape(len(a), -1)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    return g @ g.T


def mean_pairwise(matrix):
    n = len(matrix)
    return (matrix.sum() - np.trace(matrix)) / (n * (n - 1))


# ------------------------------------------------------------------ diversity
def test_diversity_penalty_on_hand_made_activations():
    a = np.random.default_rng(0).random((1, 2, 2, 3))
    np.testing.assert_allclose(penalty(np.concatenate([a, a])), [1.0, 1.0], rtol=1e-6)
    # one position, two channels: image A uses channel 0, B both, C channel 1
    A, B, C = [[[[1.0, 0.0]]]], [[[[1.0, 1.0]]]], [[[[0.0, 1.0]]]]
    np.testing.assert_allclose(penalty(np.concatenate([A, C])), [0.0, 0.0], atol=1e-7)
    # G_A = [[1, 0], [0, 0]], G_B = all ones: cos = 1 / (1 * 2)
    np.testing.assert_allclose(penalty(np.concatenate([A, B])), [0.5, 0.5], rtol=1e-6)
    # three images: A (0.5 + 0) / 2, B (0.5 + 0.5) / 2, C (0 + 0.5) / 2
    np.testing.assert_allclose(penalty(np.concatenate([A, B, C])), [0.25, 0.5, 0.25], rtol=1e-6)
    # rows (image-major) A, C, B, C of two objectives: {A, B} and {C, C}
    np.testing.assert_allclose(
        penalty(np.concatenate([A, C, B, C]), groups=2), [0.5, 1.0, 0.5, 1.0], rtol=1e-6
    )
    # an all-zero Gram matrix is similar to nothing (no NaN); one image: no others
    np.testing.assert_allclose(penalty(np.concatenate([A, np.zeros_like(A)])), [0.0, 0.0])
    np.testing.assert_allclose(penalty(A), [0.0])


def conv2_of(model, images):
    sub = keras.Model(model.inputs[0], model.get_layer("conv2").output)
    return np.asarray(sub(np.asarray(images, "float32")))


def test_diversity_makes_the_images_of_a_channel_differ(digits_cnn):
    model, _, _ = digits_cnn
    target = Channel("conv2", 5, aggregate="mean")
    kwargs = dict(steps=64, value_range=RANGE)
    plain = ki.ActivationMaximization(model, target, **kwargs).generate(n=3, seed=0)
    diverse = ki.ActivationMaximization(
        model, target, regularizers=[reg.Diversity("conv2", 10.0)], **kwargs
    ).generate(n=3, seed=0)
    # measured independently: Gram matrices of conv2 (numpy) and pixel distances
    similar = mean_pairwise(gram_cosines(conv2_of(model, plain.images)))
    apart = mean_pairwise(gram_cosines(conv2_of(model, diverse.images)))
    assert similar > 0.95 and apart < 0.5
    flat = [r.images.reshape(3, -1) for r in (plain, diverse)]
    dist = [mean_pairwise(np.linalg.norm(f[:, None] - f[None], axis=-1)) for f in flat]
    assert dist[1] > 1.0 > 0.5 > dist[0]
    assert diverse.history["diversity"].shape == (64, 3)


def test_diversity_compares_only_the_images_of_one_channel(digits_cnn):
    model, x, _ = digits_cnn
    init = x[[3, 10]]
    kwargs = dict(
        steps=6, value_range=RANGE, init=init, regularizers=[reg.Diversity("conv2", 10.0)]
    )
    am = ki.ActivationMaximization(model, **kwargs)
    both = am.generate_for_channels("conv2", [1, 5], n=2)
    assert both.history["diversity"].shape == (6, 2, 2)
    # first step, by numpy: the cosine of the two start images' conv2 Gram matrices
    start = gram_cosines(conv2_of(model, init))[0, 1]
    np.testing.assert_allclose(both.history["diversity"][0], np.full((2, 2), start), rtol=1e-4)
    for k, c in enumerate([1, 5]):
        alone = ki.ActivationMaximization(model, Channel("conv2", c, aggregate="mean"), **kwargs)
        np.testing.assert_allclose(both.images[k], alone.generate(n=2).images, atol=1e-5)
    # one objective per run (batch_size 2 = n): the same images
    am.batch_size = 2
    np.testing.assert_allclose(am.generate_for_channels("conv2", [1, 5], n=2).images, both.images)


def test_diversity_is_refused_in_receptive_field_mode(digits_cnn):
    model, _, _ = digits_cnn
    am = ki.ActivationMaximization(
        model,
        Channel("conv2", 1),
        steps=2,
        receptive_field=True,
        regularizers=[reg.Diversity("conv1")],
    )
    with pytest.raises(ValueError, match="receptive_field"):
        am.generate(n=2)


# ----------------------------------------------------------- flip and padding
def run(transforms, x, u):
    return np.asarray(tr.apply(transforms, tf.constant(x), tf.constant(u, tf.float32)))


def test_random_flip_mirrors_where_the_draw_is_below_one_half():
    x = np.arange(12, dtype="float32").reshape(2, 2, 3, 1)
    out = run([tr.RandomFlip()], x, [[0.2], [0.7]])
    np.testing.assert_array_equal(out[0, :, :, 0], [[2, 1, 0], [5, 4, 3]])
    np.testing.assert_array_equal(out[1], x[1])
    both = tr.RandomFlip(horizontal=True, vertical=True)
    assert both.n_random == 2
    out = run([both], x, [[0.9, 0.1], [0.3, 0.3]])  # rows only; rows and columns
    np.testing.assert_array_equal(out[0, :, :, 0], [[3, 4, 5], [0, 1, 2]])
    np.testing.assert_array_equal(out[1, :, :, 0], [[11, 10, 9], [8, 7, 6]])
    out = run([tr.RandomFlip(horizontal=False, vertical=True)], x, [[0.4], [0.6]])
    np.testing.assert_array_equal(out[0, :, :, 0], [[3, 4, 5], [0, 1, 2]])


def test_pad_constant_and_reflect_by_hand():
    x = np.arange(1, 10, dtype="float32").reshape(1, 3, 3, 1)
    out = np.asarray(tr.Pad(1, value=0.5).apply(tf.constant(x)))[0, :, :, 0]
    expected = np.full((5, 5), 0.5)
    expected[1:4, 1:4] = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    np.testing.assert_array_equal(out, expected)
    out = np.asarray(tr.Pad(1, mode="reflect").apply(tf.constant(x)))[0, :, :, 0]
    np.testing.assert_array_equal(
        out,
        [[5, 4, 5, 6, 5], [2, 1, 2, 3, 2], [5, 4, 5, 6, 5], [8, 7, 8, 9, 8], [5, 4, 5, 6, 5]],
    )
    # wider than the image: the mirror repeats (rows 0 1 0 1 | 0 1 | 0 1 ...)
    x = np.arange(1, 7, dtype="float32").reshape(1, 2, 3, 1)
    out = np.asarray(tr.Pad(2, mode="reflect").apply(tf.constant(x)))[0, :, :, 0]
    top, bottom = [3, 2, 1, 2, 3, 2, 1], [6, 5, 4, 5, 6, 5, 4]
    np.testing.assert_array_equal(out, [top, bottom] * 3)


def test_pad_comes_first_and_shows_at_the_borders_after_a_shift():
    x = np.random.default_rng(0).random((1, 6, 6, 2)).astype("float32")
    np.testing.assert_array_equal(run([tr.Pad(2)], x, [[0.0]]), x)  # centre crop: unchanged
    # Jitter(2): floor(0.9 * 5) - 2 = +2 rows, floor(0.5 * 5) - 2 = 0 columns
    out = run([tr.Pad(2, value=-1.0), tr.Jitter(2)], x, [[0.9, 0.5]])
    np.testing.assert_allclose(out[0, 2:], x[0, :-2], atol=1e-6)
    np.testing.assert_array_equal(out[0, :2], -1.0)
    with pytest.raises(ValueError, match="Pad"):
        tr.check_transforms([tr.Jitter(1), tr.Pad(2)])
    with pytest.raises(ValueError, match="mode"):
        tr.Pad(2, mode="wrap")
    with pytest.raises(ValueError, match="axis"):
        tr.RandomFlip(horizontal=False)


@pytest.mark.parametrize("mode", ["constant", "reflect"])
def test_pad_and_flip_are_linear_with_an_exact_adjoint(mode):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(2, 7, 7, 3)), rng.normal(size=(2, 7, 7, 3))
    transforms = [tr.Pad(3, mode=mode), tr.RandomFlip(True, True), tr.Rotate(20.0)]
    u = tf.constant(rng.random((2, tr.n_random(transforms))), tf.float32)
    xt = tf.constant(x, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        inner = tf.reduce_sum(tr.apply(transforms, xt, u) * y)
    adjoint = tape.gradient(inner, xt)
    np.testing.assert_allclose(float(inner), float(tf.reduce_sum(xt * adjoint)), rtol=1e-4)


def test_flip_and_pad_are_seeded_per_image(digits_cnn):
    model, _, _ = digits_cnn
    transforms = [tr.Pad(2, value=0.5), tr.Jitter(2), tr.RandomFlip(True, True)]
    kwargs = dict(steps=20, value_range=RANGE, transforms=transforms)
    a = ki.ActivationMaximization(model, Channel("conv2", 3), **kwargs).generate(n=3, seed=4)
    b = ki.ActivationMaximization(model, Channel("conv2", 3), batch_size=2, **kwargs)
    c = ki.ActivationMaximization(model, Channel("conv2", 3), **kwargs).generate(n=3, seed=5)
    np.testing.assert_allclose(b.generate(n=3, seed=4).images, a.images, atol=1e-5)
    assert np.abs(a.images - c.images).max() > 0.1


# -------------------------------------------------------------- relu warm-up
def dead_unit_model(kind):
    """`relu(2 x - 1)` per pixel of a 2 x 2 image, the ReLU in three forms."""
    inputs = keras.Input((2, 2, 1))
    if kind == "activation=":
        out = L.Conv2D(1, 1, activation="relu", name="unit")(inputs)
    else:
        pre = L.Conv2D(1, 1, name="pre")(inputs)
        out = (L.ReLU if kind == "ReLU" else lambda name: L.Activation("relu", name=name))(
            name="unit"
        )(pre)
    model = keras.Model(inputs, out)
    conv = model.layers[1]
    conv.set_weights([np.full((1, 1, 1, 1), 2.0, "float32"), np.array([-1.0], "float32")])
    return model


@pytest.mark.parametrize("kind", ["activation=", "ReLU", "Activation"])
def test_relu_warmup_passes_the_gradient_of_a_dead_unit(kind):
    """Objective mean_p relu(2 x_p - 1) from x = 0: pre-activation -1, dead.

    Plain gradient: 0. Warm-up (dx = dy): d/dx_p = 2 / 4 = 0.5, so SGD with
    rate 0.5 adds 0.25 per step: 0.25, 0.5, 0.75; at 0.75 the unit is alive
    (2 * 0.75 - 1 = 0.5) and the plain fourth step adds 0.25 again.
    """
    model = dead_unit_model(kind)
    kwargs = dict(
        steps=4, optimizer="sgd", learning_rate=0.5, init=np.zeros((2, 2, 1)), snapshot_every=1
    )
    target = Channel("unit", 0, aggregate="mean")
    plain = ki.ActivationMaximization(model, target, **kwargs).generate()
    np.testing.assert_array_equal(plain.images, 0.0)
    np.testing.assert_array_equal(plain.history["objective"], 0.0)
    warm = ki.ActivationMaximization(model, target, relu_warmup=3, **kwargs).generate()
    steps = warm.snapshots[:, 0, :, :, 0]  # (4, 2, 2)
    np.testing.assert_allclose(
        steps, np.broadcast_to([[[0.25]], [[0.5]], [[0.75]], [[1.0]]], (4, 2, 2))
    )
    # the forward pass is the real model's: relu, not the identity
    np.testing.assert_allclose(warm.history["objective"][:, 0], [0.0, 0.0, 0.0, 0.5], atol=1e-7)
    seen = np.asarray(model(np.concatenate([np.zeros((1, 2, 2, 1)), warm.snapshots[:3, 0]])))
    np.testing.assert_allclose(
        seen.mean(axis=(1, 2, 3)), warm.history["objective"][:, 0], atol=1e-7
    )
    assert warm.activation[0] == pytest.approx(1.0)  # relu(2 * 1 - 1)


def test_relu_warmup_traces_one_more_loop_never_per_step():
    kwargs = dict(steps=6, optimizer="sgd", snapshot_every=1, value_range=RANGE)
    target = Channel("unit", 0, aggregate="mean")
    model = dead_unit_model("ReLU")
    before = ki.Introspector(model).trace_count
    ki.ActivationMaximization(model, target, **kwargs).generate(n=2, seed=0)
    plain = ki.Introspector(model).trace_count - before

    model = dead_unit_model("ReLU")
    before = ki.Introspector(model).trace_count
    am = ki.ActivationMaximization(model, target, relu_warmup=3, **kwargs)
    am.generate(n=2, seed=0)
    warm = ki.Introspector(model).trace_count - before
    assert warm == plain + 1  # the warm-up loop, whatever the number of chunks and steps
    am.generate(n=2, seed=1)
    am.relu_warmup = 5
    am.generate(n=2, seed=2)
    assert ki.Introspector(model).trace_count - before == warm
    with pytest.raises(ValueError, match="relu_warmup"):
        ki.ActivationMaximization(model, target, relu_warmup=-1)


# ------------------------------------------------------------------ animation
def frames_of(data):
    image = Image.open(io.BytesIO(data))
    frames = []
    for i in range(image.n_frames):
        image.seek(i)
        frames.append(np.asarray(image.convert("L")))
    return image, frames


def test_animation_has_one_frame_per_snapshot_tiled_per_channel(digits_cnn, tmp_path):
    model, _, _ = digits_cnn
    am = ki.ActivationMaximization(model, steps=6, snapshot_every=2, value_range=RANGE)
    res = am.generate_for_channels("conv2", [1, 5, 7], n=2, seed=0)
    assert res.snapshots.shape == (3, 3, 2, 8, 8, 1)
    path = res.save_animation(tmp_path / "am.gif", fps=5)
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == 3
        # 3 channels x 2 images of 8 x 8 with 1-pixel gaps: (2 * 9 - 1) x (3 * 9 - 1)
        assert gif.size == (17, 26)
        assert gif.info["duration"] == 200
    res.save_animation(tmp_path / "am.png", value_range=RANGE, scale=2)
    image, frames = frames_of((tmp_path / "am.png").read_bytes())
    assert image.format == "PNG" and len(frames) == 3 and image.size == (34, 52)
    # pixel values: channel 5 (row 1), image 1 (column 1) of the second snapshot
    tile = frames[1][2 * 9 : 2 * 9 + 16 : 2, 2 * 9 : 2 * 9 + 16 : 2]
    np.testing.assert_array_equal(tile, np.round(res.snapshots[1, 1, 1, ..., 0] * 255))
    one = ki.ActivationMaximization(model, Channel("conv2", 5), steps=4, snapshot_every=1)
    _, frames = frames_of(one.generate(n=3).animation("gif"))
    assert len(frames) == 4 and frames[0].shape == (8, 3 * 9 - 1)


def test_animation_needs_snapshots(digits_cnn, tmp_path):
    model, _, _ = digits_cnn
    res = ki.ActivationMaximization(model, Channel("conv2", 5), steps=2).generate()
    with pytest.raises(ValueError, match="snapshot_every"):
        res.save_animation(tmp_path / "am.gif")
    res.snapshots = np.zeros((2, 1, 8, 8, 1), "float32")
    with pytest.raises(ValueError, match=r"\.gif, \.png"):
        res.save_animation(tmp_path / "am.mp4")


def test_report_embeds_the_animation_only_when_asked(digits_cnn):
    model, x, _ = digits_cnn
    report = ki.Report(model, "am").add_feature_visualization(
        "conv2", [1, 5], x=x[:32], value_range=RANGE, steps=8, animation=True
    )
    page = report.to_html()
    (data,) = re.findall(r'src="data:image/gif;base64,([^"]+)"', page)
    image, frames = frames_of(base64.b64decode(data))
    assert len(frames) == 8  # steps 8 // 16 -> a snapshot every step
    assert image.size == (8 * 8, 8 * (2 * 9 - 1))  # scale 64 // 8
    plain = ki.Report(model, "am").add_feature_visualization(
        "conv2", [1, 5], x=x[:32], value_range=RANGE, steps=8
    )
    assert "image/gif" not in plain.to_html()
