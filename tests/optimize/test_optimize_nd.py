"""Activation maximization, parameterizations, penalties and pixel fooling on signals,
flat vectors and volumes: closed forms on linear models and by-hand penalties."""

import keras
import numpy as np
import pytest

import keras_introspect as ki
from keras_introspect.optimize.parameterization import Parameterization
from keras_introspect.optimize.regularizers import L2, LpNorm, TotalVariation
from keras_introspect.optimize.transforms import Jitter

SHAPES = [(16,), (12, 2), (8, 8, 3), (4, 6, 8, 2)]


@pytest.fixture(autouse=True)
def no_step_cap(monkeypatch):
    monkeypatch.delenv("KI_MAX_STEPS", raising=False)


def linear(shape, seed=0, n_outputs=2, bias=False):
    """`(model, w (n_outputs, *shape))`: Flatten + Dense, logit k = w[k] . x."""
    rng = np.random.default_rng(seed)
    kernel = rng.standard_normal((int(np.prod(shape)), n_outputs)).astype("float32")
    model = keras.Sequential(
        [
            keras.Input(shape),
            keras.layers.Flatten(),
            keras.layers.Dense(n_outputs, use_bias=bias, name="dense"),
        ]
    )
    weights = [kernel, np.zeros(n_outputs, "float32")] if bias else [kernel]
    model.get_layer("dense").set_weights(weights)
    return model, kernel.T.reshape(n_outputs, *shape)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", ["pixel", "fft", "fft_decorrelated"])
def test_parameterizations_are_exactly_invertible_at_every_rank(shape, kind):
    if kind.endswith("decorrelated") and len(shape) == 1:
        with pytest.raises(ValueError, match="channel axis"):
            Parameterization(kind, shape)
        return
    colour = None if shape[-1] == 3 else np.array([[1.0, 0.5], [0.0, 1.0]], "float32")
    p = Parameterization(kind, shape, colour=colour)
    images = np.random.default_rng(0).normal(size=(2, *shape)).astype("float32")
    back = np.asarray(p.to_image(p.from_image(images)))
    np.testing.assert_allclose(back, images, atol=1e-4)


@pytest.mark.parametrize("size", [(16,), (6, 8, 10)])
def test_fourier_parameters_are_the_scaled_spectrum_of_numpy(size):
    """One spectral coefficient gives numpy's inverse real FFT of it, times its 1/f
    scale: `f` the frequency's norm (at least 1 / longest side), times
    `sqrt(prod(size)) / longest side`."""
    p = Parameterization("fft", (*size, 1))
    spectrum_shape = (*size[:-1], size[-1] // 2 + 1)
    assert p.param_shape == (2, 1, *spectrum_shape)
    index = (1,) * len(size)
    z = np.zeros((1, *p.param_shape), "float32")
    z[(0, 0, 0, *index)] = 1.0
    image = np.asarray(p.to_image(z))[0, ..., 0]
    freqs = [np.fft.fftfreq(n)[1] for n in size[:-1]] + [np.fft.rfftfreq(size[-1])[1]]
    f = max(np.sqrt(np.sum(np.square(freqs))), 1 / max(size))
    scale = 1.0 / f * np.sqrt(np.prod(size)) / max(size)
    spectrum = np.zeros(spectrum_shape, complex)
    spectrum[index] = scale
    np.testing.assert_allclose(
        image, np.fft.irfftn(spectrum, s=size, axes=range(len(size))), atol=1e-6
    )


def test_penalties_by_hand_in_1d_and_3d():
    ramp = np.arange(10, dtype="float32").reshape(1, 10, 1)  # steps of 1
    assert float(TotalVariation(beta=2.0).penalty(ramp)[0]) == pytest.approx(1.0)
    i, j, k = np.meshgrid(np.arange(4), np.arange(5), np.arange(6), indexing="ij")
    volume = (i + 2 * j + 3 * k).astype("float32")[None, ..., None]
    assert float(TotalVariation(beta=2.0).penalty(volume)[0]) == pytest.approx(1 + 4 + 9)
    flat = np.array([[1.0, -1.0, 3.0, -3.0]], "float32")  # a vector: no channel axis
    assert float(L2().penalty(flat)[0]) == pytest.approx(5.0)
    assert float(LpNorm(alpha=2.0).penalty(flat)[0]) == pytest.approx(5.0)  # mean 0
    signal = np.array([[[1.0], [3.0]]], "float32")  # mean 2, centred +-1
    assert float(LpNorm(alpha=2.0).penalty(signal)[0]) == pytest.approx(1.0)


@pytest.mark.parametrize("shape", [(16,), (12, 2), (4, 6, 8, 2)])
def test_activation_maximization_of_a_linear_logit_saturates_by_the_weights_sign(shape):
    """Maximising `w . x` over [0, 1]: every entry goes to 1 where w > 0, 0 where w < 0
    (projected gradient ascent moves each by lr * w per step)."""
    model, w = linear(shape, seed=3)
    am = ki.ActivationMaximization(
        model,
        ki.targets.Class(1),
        steps=60,
        learning_rate=0.2,
        optimizer="sgd",
        value_range=(0.0, 1.0),
    )
    result = am.generate(n=2, seed=0)
    assert result.images.shape == (2, *shape)
    expected = (w[1] > 0).astype("float32")
    strong = np.abs(w[1]) > 0.1  # 60 steps of 0.2 |w| cross [0, 1] for these
    np.testing.assert_allclose(
        result.images[:, strong], np.broadcast_to(expected, (2, *shape))[:, strong]
    )
    best = np.sum(np.maximum(w[1], 0))
    assert np.all(result.activation <= best + 1e-4)
    assert np.all(np.diff(result.history["objective"][:, 0]) >= -1e-5)  # never falls


@pytest.mark.parametrize("shape", [(32, 1), (8, 8, 8, 1)])
def test_fourier_activation_maximization_raises_the_objective_in_1d_and_3d(shape):
    model, w = linear(shape, seed=4)
    am = ki.ActivationMaximization(
        model,
        ki.targets.Class(0),
        steps=40,
        learning_rate=0.05,
        parameterization="fft",
        value_range=(0.0, 1.0),
    )
    result = am.generate(n=1, seed=1)
    history = result.history["objective"][:, 0]
    assert result.images.shape == (1, *shape)
    assert history[-1] > history[0] + 0.5 * (np.sum(np.maximum(w[0], 0)) - history[0]) * 0.2
    # the image leans towards the weights' sign
    correlation = np.corrcoef(result.images[0].ravel(), w[0].ravel())[0, 1]
    assert correlation > 0.3


def test_activation_maximization_refuses_2d_operations_on_signals():
    model, _ = linear((12, 2))
    with pytest.raises(ValueError, match=r"no image transforms.*\['Jitter'\]"):
        ki.ActivationMaximization(model, 0, steps=2, transforms=[Jitter(2)]).generate()
    conv = keras.Sequential([keras.Input((12, 2)), keras.layers.Conv1D(3, 3, name="conv")])
    with pytest.raises(ValueError, match="receptive-field patches of images"):
        ki.ActivationMaximization(
            conv, ki.targets.Channel("conv", 1), steps=2, receptive_field=True
        ).generate()


@pytest.mark.parametrize("shape", [(4,), (2, 2), (2, 2, 1, 1)])
def test_fool_flips_a_linear_classifier_after_the_closed_form_number_of_steps(shape):
    """logits = s * [1, -1], s = sum(x); SGD on logit 1 lowers every entry by lr per
    step: s = 4 (0.95 - 0.1 t) < 0 after t = 10 steps (as the image doctest)."""
    model = keras.Sequential(
        [
            keras.Input(shape),
            keras.layers.Flatten(),
            keras.layers.Dense(2, activation="softmax", name="dense"),
        ]
    )
    model.get_layer("dense").set_weights([np.tile([[1.0, -1.0]], (4, 1)), np.zeros(2)])
    x = np.full((1, *shape), 0.95, "float32")
    result = ki.fool(model, x, target=1, learning_rate=0.1, steps=12)
    assert int(result.steps_to_flip[0]) == 10
    np.testing.assert_allclose(result.images, x - 1.2, atol=1e-5)
    spatial = shape if len(shape) == 1 else shape[:-1]
    channels = 1 if len(shape) == 1 else shape[-1]
    assert result.heatmap.shape == (1, *spatial)
    np.testing.assert_allclose(result.heatmap, np.sqrt(channels * 1.2**2), atol=1e-5)
