"""Out-of-sample shares against brute-force predictions; noise generation."""

import keras
import numpy as np
import pytest

import keras_introspect as ki


def test_shares_equal_brute_force_argmax(digits_cnn):
    model, x, _ = digits_cnn
    noise = ki.noise_like(x, n=150, seed=1)
    res = ki.out_of_sample(model, {"digits": x[:200], "noise": noise}, batch_size=64)
    for name, images in (("digits", x[:200]), ("noise", noise)):
        predicted = model.predict(images, verbose=0).argmax(axis=1)
        np.testing.assert_array_equal(res.predictions[name], predicted)
        row = res.sets.index(name)
        np.testing.assert_array_equal(res.counts[row], np.bincount(predicted, minlength=10))
    np.testing.assert_allclose(res.shares.sum(axis=1), 100.0)
    # issue 20: .table is one dict per set, str() the text table; .table() warns
    assert [row["set"] for row in res.table] == res.sets
    np.testing.assert_allclose([[row[str(c)] for c in range(10)] for row in res.table], res.shares)
    assert str(res).splitlines()[0].split()[0] == "set" and "noise" in str(res)
    with pytest.warns(FutureWarning, match="now the `.table` property"):
        assert "noise" in res.table()


def test_binary_sigmoid_model():
    model = keras.Sequential(
        [keras.Input((2, 2, 1)), keras.layers.Flatten(), keras.layers.Dense(1, "sigmoid")]
    )
    model.layers[-1].set_weights([np.ones((4, 1)), np.zeros(1)])
    x = np.array([-1.0, 2.0, 3.0]).reshape(3, 1, 1, 1) * np.ones((3, 2, 2, 1))
    res = ki.out_of_sample(model, x, class_names=["cat", "dog"])
    assert res.counts.tolist() == [[1, 2]]
    with pytest.raises(ValueError, match="2 class names"):
        ki.out_of_sample(model, x, class_names=["cat"])


def test_noise_matches_channel_statistics():
    rng = np.random.default_rng(0)
    x = rng.normal([1.0, -2.0, 5.0], [0.5, 2.0, 1.0], size=(40, 6, 6, 3))
    noise = ki.noise_like(x, n=300, seed=2)
    assert noise.shape == (300, 6, 6, 3) and noise.dtype == np.float32
    np.testing.assert_allclose(noise.mean(axis=(0, 1, 2)), x.mean(axis=(0, 1, 2)), atol=0.05)
    np.testing.assert_allclose(noise.std(axis=(0, 1, 2)), x.std(axis=(0, 1, 2)), rtol=0.03)
    np.testing.assert_array_equal(noise, ki.noise_like(x, n=300, seed=2))
    clipped = ki.noise_like(x, n=10, value_range=(0, 1))
    assert clipped.min() >= 0 and clipped.max() <= 1
