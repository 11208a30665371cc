"""Attribution of inputs of any rank: flat vectors, signals (1-D) and volumes (3-D).

Analytic checks on linear models (the gradient is the weights), brute-force
occlusion, RISE, Score-CAM and Shapley values, closed forms of the CAM family
on a conv -> global average pooling -> dense head, and planted structure: a
1-D CNN trained on the spot must look at the informative segment of a signal,
a 3-D CNN at the blob that decides the class.
"""

import itertools

import keras
import numpy as np
import pytest
from nd_models import signal_cnn, volume_cnn

import keras_introspect as ki
from keras_introspect.attribution.occlusion import window_starts
from keras_introspect.attribution.surrogate import superpixels

T = ki.targets
L = keras.layers

# (sample shape, reshape inside the model): a flat vector, a flat vector reshaped
# to a signal inside (the published audio CNN's layout), a signal, a volume
SHAPES = {
    "vector": ((24,), None),
    "vector reshaped": ((24,), (24, 1)),
    "signal": ((20, 3), None),
    "volume": ((5, 6, 4, 2), None),
}


def linear_model(shape, seed: int = 0, n_outputs: int = 2, reshape_to=None):
    """`(model, weights (n_outputs, *shape))`: Flatten + Dense without bias, so the
    gradient of output k is `weights[k]` (a flat vector input may be reshaped to
    `reshape_to` inside the model first, as a published audio CNN does)."""
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape))
    kernel = rng.standard_normal((size, n_outputs)).astype("float32")
    layers = [keras.Input(shape)]
    if reshape_to is not None:
        layers.append(L.Reshape(reshape_to))
    layers += [L.Flatten(), L.Dense(n_outputs, use_bias=False, name="dense")]
    model = keras.Sequential(layers)
    model.get_layer("dense").set_weights([kernel])
    return model, kernel.T.reshape(n_outputs, *shape)


def resize_axis(a, out, axis):
    """Linear resize of one axis with half-pixel centres and clamped edges (numpy),
    the convention of `tf.image.resize(..., "bilinear")`."""
    n = a.shape[axis]
    src = np.clip((np.arange(out) + 0.5) * n / out - 0.5, 0, n - 1)
    low = np.floor(src).astype(int)
    high = np.minimum(low + 1, n - 1)
    shape = [1] * a.ndim
    shape[axis] = out
    frac = (src - low).reshape(shape)
    return np.take(a, low, axis) * (1 - frac) + np.take(a, high, axis) * frac


def resize(a, size):
    """`(n, *spatial)` -> `(n, *size)`, axis by axis (linear interpolation is separable)."""
    for axis, out in enumerate(size, start=1):
        a = resize_axis(a, out, axis)
    return a


def channel_reduce(a, shape, how):
    if len(shape) == 1:
        return a
    return np.abs(a).max(-1) if how == "max" else a.sum(-1)


# ------------------------------------------------------------------ linear models
@pytest.mark.parametrize("kind", SHAPES)
def test_gradient_maps_of_a_linear_model_are_its_weights(kind):
    shape, reshape = SHAPES[kind]
    model, w = linear_model(shape, seed=3, reshape_to=reshape)
    x = np.random.default_rng(4).normal(size=(3, *shape)).astype("float32")
    target = T.Class([0, 1, 1])
    kept = ki.Saliency(model, target, reduce_channels=None).explain(x)
    np.testing.assert_allclose(kept, w[[0, 1, 1]], rtol=1e-5, atol=1e-6)
    spatial = shape if len(shape) == 1 else shape[:-1]
    saliency = ki.Saliency(model, target).explain(x)
    assert saliency.shape == (3, *spatial)
    np.testing.assert_allclose(
        saliency, channel_reduce(w[[0, 1, 1]], shape, "max"), rtol=1e-5, atol=1e-6
    )
    contributions = w[[0, 1, 1]] * x
    np.testing.assert_allclose(
        ki.GradientInput(model, target).explain(x),
        channel_reduce(contributions, shape, "sum"),
        rtol=1e-4,
        atol=1e-5,
    )
    ig = ki.IntegratedGradients(model, target, steps=3)
    np.testing.assert_allclose(
        ig.explain(x), channel_reduce(contributions, shape, "sum"), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(ig.delta_, 0, atol=1e-3)  # completeness, exact here
    eg = ki.ExpectedGradients(model, target, baselines=np.zeros((2, *shape)), samples=3)
    np.testing.assert_allclose(
        eg.explain(x), channel_reduce(contributions, shape, "sum"), rtol=1e-4, atol=1e-5
    )
    # a linear model has no rectifier: guided backprop and the deconvnet are the gradient
    guided = ki.GuidedBackprop(model, target, reduce_channels=None).explain(x)
    np.testing.assert_allclose(guided, w[[0, 1, 1]], rtol=1e-5, atol=1e-6)
    smooth = ki.SmoothGrad(model, target, samples=3, reduce_channels=None).explain(x)
    np.testing.assert_allclose(smooth, w[[0, 1, 1]], rtol=1e-5, atol=1e-6)


def brute_force_occlusion(w, x, window, stride, baseline):
    """Mean drop of the linear score `w . x` over the windows covering each position."""
    spatial = x.shape if w.ndim == x.ndim and len(x.shape) == 1 else x.shape[:-1]
    starts = [window_starts(n, k, s) for n, k, s in zip(spatial, window, stride, strict=True)]
    total, count = np.zeros(spatial), np.zeros(spatial)
    for corner in itertools.product(*starts):
        where = tuple(slice(c, c + k) for c, k in zip(corner, window, strict=True))
        occluded = x.copy()
        occluded[where] = baseline[where] if np.ndim(baseline) else baseline
        total[where] += np.sum(w * (x - occluded))
        count[where] += 1
    return total / count


@pytest.mark.parametrize(
    "kind, window, stride",
    [
        ("vector", 5, 3),
        ("vector reshaped", (7,), (4,)),
        ("signal", 6, 4),
        ("volume", (2, 3, 3), (2, 2, 1)),
        ("volume", 3, 2),
    ],
)
def test_occlusion_of_a_linear_model_equals_brute_force(kind, window, stride):
    shape, reshape = SHAPES[kind]
    model, w = linear_model(shape, seed=5, reshape_to=reshape)
    rng = np.random.default_rng(6)
    x = rng.normal(size=(2, *shape)).astype("float32")
    spatial = shape if len(shape) == 1 else shape[:-1]
    baseline = rng.normal(size=spatial).astype("float32")  # one value per position
    occ = ki.Occlusion(model, 1, window=window, stride=stride, baseline=baseline)
    maps = occ.explain(x, batch_size=7)
    n = len(spatial)
    per_axis = (lambda v: v if isinstance(v, tuple) else (v,) * n)(window)
    strides = (lambda v: v if isinstance(v, tuple) else (v,) * n)(stride)
    assert occ.window_ == per_axis and maps.shape == (2, *spatial)
    full_base = baseline if len(shape) == 1 else np.repeat(baseline[..., None], shape[-1], -1)
    for i in range(2):
        expected = brute_force_occlusion(w[1], x[i], per_axis, strides, full_base)
        np.testing.assert_allclose(maps[i], expected, rtol=1e-4, atol=1e-4)


def test_rise_with_masks_that_keep_everything_gives_the_score_everywhere():
    for shape in [(16, 2), (6, 6, 6, 1), (16,)]:
        model, w = linear_model(shape, seed=1)
        x = np.ones((1, *shape), "float32")
        maps = ki.RISE(model, 0, n_masks=8, grid=2, p=1.0).explain(x)
        np.testing.assert_allclose(maps, np.full_like(maps, w[0].sum()), rtol=1e-4)


@pytest.mark.parametrize("shape, n_axes", [((18, 2), 1), ((6, 5, 7, 1), 3)])
def test_rise_maps_equal_the_masks_scored_one_by_one(shape, n_axes):
    """The device path (masks upsampled and shifted in the compiled step) against the
    masks `masks()` returns, applied and scored with `model.predict`."""
    model, _ = linear_model(shape, seed=2)
    x = np.random.default_rng(0).uniform(size=(1, *shape)).astype("float32")
    rise = ki.RISE(model, 1, n_masks=12, grid=3, p=0.5, seed=3)
    maps = rise.explain(x)
    masks = rise.masks(shape, n_axes=n_axes)
    assert masks.shape == (12, *shape[:n_axes]) and 0 <= masks.min() and masks.max() <= 1
    scores = model.predict(x * masks[..., None], verbose=0)[:, 1]
    expected = np.tensordot(scores, masks, axes=1) / (12 * 0.5)
    np.testing.assert_allclose(maps[0], expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "shape, cell", [((16, 1), (slice(0, 8),)), ((8, 8, 8, 1), (slice(0, 4),) * 3)]
)
def test_sobol_indices_of_a_model_reading_one_cell(shape, cell):
    """The model reads the first cell only, so its score is `c * A[:, 0]` on the rows
    of `A` and `c * B[:, 0]` on those of `A_B^(0)`: Jansen's index of that cell
    follows from the design by hand, every other cell gets exactly 0."""
    spatial = shape[:-1]
    weights = np.zeros(spatial, "float32")
    weights[cell] = 1.0
    model, _ = linear_model(shape, n_outputs=1)
    model.get_layer("dense").set_weights([weights.reshape(-1, 1)])
    sobol = ki.SobolAttribution(model, 0, grid_size=2, nb_design=8)
    maps = sobol.explain(np.ones((1, *shape), "float32"))
    assert maps.shape == (1, *spatial) and sobol.indices_.shape == (1, *(2,) * len(spatial))
    a, b = sobol.design(n_axes=len(spatial))
    first = (0,) * len(spatial)
    a0, b0 = a[(slice(None), *first)], b[(slice(None), *first)]
    expected = np.sum((a0 - b0) ** 2) / (2 * 8 * np.var(a0, ddof=1))
    inside = np.zeros(spatial, bool)
    inside[cell] = True
    assert np.all(maps[0][~inside] == 0)
    np.testing.assert_allclose(maps[0][inside], expected, rtol=1e-4)


@pytest.mark.parametrize("kind", ["vector", "vector reshaped", "signal"])
def test_kernel_shap_on_windows_of_a_signal_gives_the_segment_sums(kind):
    """A linear model's Shapley values (baseline 0) are each segment's `w . x`; 1-D
    inputs are cut into windows of equal length."""
    shape, reshape = SHAPES[kind]
    model, w = linear_model(shape, seed=8, reshape_to=reshape)
    x = np.random.default_rng(9).normal(size=(2, *shape)).astype("float32")
    options = {"n_segments": 4}
    shap = ki.KernelSHAP(model, 0, n_samples=16, segmentation_options=options)
    maps = shap.explain(x)
    labels = np.arange(shape[0]) * 4 // shape[0]
    np.testing.assert_array_equal(shap.segments_, np.stack([labels, labels]))
    for i in range(2):
        per_position = (w[0] * x[i]).reshape(shape[0], -1).sum(-1)
        sums = np.array([per_position[labels == j].sum() for j in range(4)])
        np.testing.assert_allclose(shap.coefficients_[i], sums, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(maps[i], sums[labels], rtol=1e-4, atol=1e-4)
    lime = ki.LIME(model, 0, n_samples=64, segmentation_options=options, alpha=0.0)
    lime.explain(x[:1])
    np.testing.assert_allclose(lime.coefficients_[0], shap.coefficients_[0], rtol=1e-3, atol=1e-3)


def test_slic_cuts_volumes_into_supervoxels_that_respect_edges():
    volume = np.zeros((8, 8, 8, 1))
    volume[:, :, 4:] = 1.0  # two flat halves
    labels = superpixels(volume, n_axes=3, n_segments=8, compactness=0.1)
    assert labels.shape == (8, 8, 8)
    assert set(labels[..., :4].ravel()).isdisjoint(labels[..., 4:].ravel())
    model, w = linear_model((8, 8, 8, 1), seed=2)
    shap = ki.KernelSHAP(model, 0, n_samples=300, segmentation=labels)
    maps = shap.explain(volume[None].astype("float32"))
    expected = np.zeros(labels.max() + 1)
    np.add.at(expected, labels.ravel(), (w[0] * volume)[..., 0].ravel())
    np.testing.assert_allclose(shap.coefficients_[0], expected, rtol=1e-3, atol=1e-3)
    assert maps.shape == (1, 8, 8, 8)
    default = ki.LIME(model, 0, n_samples=40, segmentation_options={"n_segments": 4})
    default.explain(volume[None].astype("float32"))
    assert default.segments_.shape == (1, 8, 8, 8) and default.segments_.max() >= 1


# -------------------------------------------------------------------- CAM family
def gap_head_model(shape, conv, seed=0):
    """conv (relu) -> conv "feat" -> global average pooling -> dense: d score_k / d A_c
    is `W[c, k] / positions` everywhere, so the CAM maps have closed forms."""
    keras.utils.set_random_seed(seed)
    n = len(shape) - 1
    pool = {1: L.GlobalAveragePooling1D, 3: L.GlobalAveragePooling3D}[n]
    model = keras.Sequential(
        [
            keras.Input(shape),
            conv(4, 3, activation="relu", name="first"),
            conv(5, 3, activation="relu", name="feat"),
            pool(),
            L.Dense(2, name="dense"),
        ]
    )
    return model, keras.Model(model.inputs, model.get_layer("feat").output)


CAM_CASES = {"signal": ((22, 2), L.Conv1D), "volume": ((7, 8, 6, 1), L.Conv3D)}


@pytest.mark.parametrize("kind", CAM_CASES)
def test_cam_family_closed_forms_in_1d_and_3d(kind):
    shape, conv = CAM_CASES[kind]
    model, feat = gap_head_model(shape, conv, seed=3)
    x = np.random.default_rng(1).uniform(size=(2, *shape)).astype("float32")
    a = feat.predict(x, verbose=0)  # (n, *spatial, c)
    positions = np.prod(a.shape[1:-1])
    g = model.get_layer("dense").get_weights()[0][:, 1] / positions  # the gradient per channel
    cam = np.maximum((a * g).sum(-1), 0)
    raw = ki.GradCAM(model, 1, layer="feat", upsample=False).explain(x)
    np.testing.assert_allclose(raw, cam, rtol=1e-4, atol=1e-6)
    up = ki.GradCAM(model, 1, layer="feat").explain(x)
    assert up.shape == (2, *shape[:-1])
    np.testing.assert_allclose(up, resize(cam, shape[:-1]), rtol=1e-4, atol=1e-5)
    layercam = ki.LayerCAM(model, 1, layer="feat", upsample=False).explain(x)
    np.testing.assert_allclose(
        layercam, np.maximum((a * np.maximum(g, 0)).sum(-1), 0), rtol=1e-4, atol=1e-6
    )
    # Grad-CAM++ with a constant gradient: alpha = 1 / (2 + sum(A) g), w = sum(alpha) relu(g)
    total = a.sum(axis=tuple(range(1, a.ndim - 1)))  # (n, c)
    alpha = np.where(g != 0, 1.0 / (2.0 + total * g), 0.0)
    weights = positions * alpha * np.maximum(g, 0)
    expected = np.maximum(np.einsum("n...c,nc->n...", a, weights), 0)
    plus = ki.GradCAMPlusPlus(model, 1, layer="feat", upsample=False).explain(x)
    np.testing.assert_allclose(plus, expected, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("kind", CAM_CASES)
def test_score_cam_equals_masks_scored_one_by_one(kind):
    shape, conv = CAM_CASES[kind]
    model, feat = gap_head_model(shape, conv, seed=4)
    x = np.random.default_rng(2).uniform(size=(1, *shape)).astype("float32")
    a = feat.predict(x, verbose=0)[0]  # (*spatial, c)
    spatial = shape[:-1]
    up = resize(np.moveaxis(a, -1, 0), spatial)  # (c, *spatial)
    low = up.reshape(len(up), -1).min(1)
    high = up.reshape(len(up), -1).max(1)
    varies = high > low
    extra = (1,) * len(spatial)
    masks = (up - low.reshape(-1, *extra)) / np.where(varies, high - low, 1).reshape(-1, *extra)
    scores = model.predict(x * masks[..., None], verbose=0)[:, 0]
    e = np.where(varies, np.exp(scores - scores[varies].max()), 0)
    weights = e / e.sum()
    cam = np.maximum(np.tensordot(a, weights, axes=([-1], [0])), 0)
    maps = ki.ScoreCAM(model, 0, layer="feat").explain(x)
    np.testing.assert_allclose(maps[0], resize(cam[None], spatial)[0], rtol=1e-3, atol=1e-5)


def test_guided_gradcam_is_guided_backprop_times_gradcam_in_3d():
    shape, conv = CAM_CASES["volume"]
    model, _ = gap_head_model(shape, conv, seed=3)
    x = np.random.default_rng(3).uniform(size=(2, *shape)).astype("float32")
    guided = ki.GuidedBackprop(model, 1, reduce_channels="sum").explain(x)
    cam = ki.GradCAM(model, 1, layer="feat").explain(x)
    maps = ki.GuidedGradCAM(model, 1, layer="feat").explain(x)
    np.testing.assert_allclose(maps, guided * cam, rtol=1e-4, atol=1e-6)
    kept = ki.GuidedGradCAM(model, 1, layer="feat", reduce_channels=None).explain(x)
    assert kept.shape == (2, *shape)


def test_cam_default_layer_follows_the_input_rank():
    model, _ = gap_head_model(*CAM_CASES["signal"], seed=2)
    cam = ki.GradCAM(model, 0)
    cam.explain(np.ones((1, 22, 2), "float32"))
    assert cam.layer_path_ == "feat"


# ----------------------------------------------------- receptive-field occlusion
@pytest.mark.parametrize(
    "shape, conv, pool, position",
    [
        ((24, 1), L.Conv1D, L.MaxPooling1D, (3,)),
        ((12, 12, 12, 1), L.Conv3D, L.MaxPooling3D, (1, 2, 1)),
    ],
)
def test_receptive_field_occlusion_of_an_inner_neuron_equals_the_whole_input(
    shape, conv, pool, position
):
    keras.utils.set_random_seed(7)
    model = keras.Sequential(
        [
            keras.Input(shape),
            conv(3, 3, activation="relu", name="conv1"),
            pool(2),
            conv(4, 3, name="conv2"),
            L.Flatten(),
            L.Dense(2),
        ]
    )
    x = np.random.default_rng(4).uniform(size=(2, *shape)).astype("float32")
    target = T.Neuron("conv2", 2, position)
    fast = ki.Occlusion(model, target, window=2, receptive_field=True)
    whole = ki.Occlusion(model, target, window=2, receptive_field=False)
    maps = fast.explain(x)
    np.testing.assert_allclose(maps, whole.explain(x), rtol=1e-5, atol=1e-6)
    assert fast.n_windows_ < whole.n_windows_
    # the neuron sees 8 positions per axis (3 + (3 - 1) * 2 + 1), from 2 * position
    field = tuple(slice(2 * p, 2 * p + 8) for p in position)
    outside = np.ones(shape[:-1], bool)
    outside[field] = False
    assert np.all(maps[:, outside] == 0) and np.any(maps[:, ~outside])
    n = len(position)
    assert fast.n_windows_ == 4**n  # windows of 2 on the 8 positions of the field


# ------------------------------------------------------------- planted structure
@pytest.mark.parametrize("flat", [False, True])
def test_signal_cnn_looks_at_the_informative_segment(flat):
    """The tone of one of two frequencies fills one segment of a noisy signal: the
    trained 1-D CNN's maps peak on it (`flat`: the input is a flat vector reshaped
    inside the model, explained with respect to that vector)."""
    fx = signal_cnn(flat=flat)
    assert fx.accuracy >= 0.9
    x, y, inside = fx.x[:16], fx.y[:16], fx.truth[:16]
    near = np.zeros_like(inside)  # grown by half the receptive field of conv2 (17)
    for i, row in enumerate(inside):
        where = np.flatnonzero(row)
        near[i, max(where[0] - 8, 0) : where[-1] + 9] = True
    model, target = fx.model, T.Class(y)
    saliency = ki.Saliency(model, target).explain(x)
    assert saliency.shape == inside.shape
    share = (saliency * inside).sum(1) / saliency.sum(1)
    assert np.median(share) > 0.5  # the segment is a quarter of the signal
    for maps in (
        saliency,
        ki.GradCAM(model, target, layer="conv2").explain(x),
        ki.Occlusion(model, target, window=8, stride=4).explain(x),
    ):
        assert maps.shape == inside.shape
        assert np.mean(near[np.arange(16), maps.argmax(1)]) >= 0.8


def test_volume_cnn_looks_at_the_blob():
    """A Gaussian blob decides the class: saliency, Grad-CAM and occlusion of class 1
    put their peak and much of their mass on it (the ball around it is 3 % of the
    volume)."""
    fx = volume_cnn()
    assert fx.accuracy >= 0.9
    blobs = np.flatnonzero(fx.y == 1)[:6]
    x, truth = fx.x[blobs], fx.truth[blobs]
    methods = {
        "saliency": ki.Saliency(fx.model, 1),
        "gradcam": ki.GradCAM(fx.model, 1, layer="conv2"),
        "occlusion": ki.Occlusion(fx.model, 1, window=4, stride=2),
    }
    for name, method in methods.items():
        maps = np.maximum(method.explain(x), 0)
        assert maps.shape == truth.shape
        for m, ball in zip(maps, truth, strict=True):
            assert m[ball].sum() / m.sum() > 0.3, name
            assert ball.ravel()[m.argmax()], name
