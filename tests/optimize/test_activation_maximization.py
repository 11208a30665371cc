"""Activation maximization on a CNN trained on the spot (scikit-learn digits)."""

import numpy as np
import pytest

import keras_introspect as ki
from keras_introspect.optimize import regularizers as reg
from keras_introspect.optimize import transforms as tr
from keras_introspect.targets import Channel, Class, Neuron

RANGE = (0.0, 1.0)


@pytest.fixture(autouse=True)
def no_step_cap(monkeypatch):
    monkeypatch.delenv("KI_MAX_STEPS", raising=False)


def conv2(model, images):
    """conv2 activations (n, 4, 4, 16) by Keras itself."""
    import keras

    sub = keras.Model(model.inputs[0], model.get_layer("conv2").output)
    return np.asarray(sub(np.asarray(images, "float32")))


def test_channel_am_beats_the_best_dataset_image_within_256_steps(digits_cnn):
    model, x, _ = digits_cnn
    am = ki.ActivationMaximization(model, Channel("conv2", 5), steps=256, value_range=RANGE)
    res = am.generate(n=2, seed=0, x=x)
    brute = conv2(model, x)[..., 5].max(axis=(1, 2)).max()
    assert res.best_dataset_activation == pytest.approx(brute, rel=1e-5)
    assert np.all(res.activation > brute)
    assert np.all(res.exceeds_dataset)
    # the reported activation is the objective of the returned images
    np.testing.assert_allclose(
        conv2(model, res.images)[..., 5].max(axis=(1, 2)), res.activation, rtol=1e-5
    )
    assert res.images.min() >= 0.0 and res.images.max() <= 1.0


def test_objective_history_increases_on_average(digits_cnn):
    model, _x, _ = digits_cnn
    am = ki.ActivationMaximization(
        model, Class(3), steps=128, value_range=RANGE, transforms=[tr.Jitter(1)]
    )
    history = am.generate(n=3, seed=1).history["objective"]  # (steps, n)
    assert history.shape == (128, 3)
    assert np.all(np.diff(history, axis=0).mean(axis=0) > 0)
    quarter = len(history) // 4
    assert np.all(history[-quarter:].mean(axis=0) > history[:quarter].mean(axis=0))


def total_variation(images):
    return np.abs(np.diff(images, axis=1)).sum() + np.abs(np.diff(images, axis=2)).sum()


def test_total_variation_regularizer_lowers_total_variation(digits_cnn):
    model, _, _ = digits_cnn
    kwargs = dict(steps=100, value_range=RANGE)
    plain = ki.ActivationMaximization(model, Channel("conv2", 5), **kwargs).generate(n=2, seed=3)
    smooth = ki.ActivationMaximization(
        model, Channel("conv2", 5), regularizers=[reg.TotalVariation(weight=10.0)], **kwargs
    ).generate(n=2, seed=3)
    assert total_variation(smooth.images) < 0.8 * total_variation(plain.images)
    assert smooth.history["total_variation"].shape == (100, 2)


def test_same_seed_same_images_whatever_the_batch_size(digits_cnn):
    model, _, _ = digits_cnn
    kwargs = dict(steps=30, value_range=RANGE, transforms=[tr.Jitter(1), tr.Rotate(10)])
    a = ki.ActivationMaximization(model, Channel("conv1", 2), **kwargs).generate(n=3, seed=7)
    b = ki.ActivationMaximization(model, Channel("conv1", 2), batch_size=2, **kwargs).generate(
        n=3, seed=7
    )
    c = ki.ActivationMaximization(model, Channel("conv1", 2), **kwargs).generate(n=3, seed=8)
    np.testing.assert_allclose(a.images, b.images, atol=1e-5)
    assert np.abs(a.images - c.images).max() > 0.1


def test_all_channels_in_one_run_equal_separate_runs(digits_cnn):
    model, _, _ = digits_cnn
    am = ki.ActivationMaximization(model, 0, steps=20, value_range=RANGE)
    together = am.generate_for_channels("conv2", [4, 9, 11], n=2, seed=0, aggregate="mean")
    assert together.images.shape == (3, 2, 8, 8, 1)
    assert together.channels == [4, 9, 11]
    assert together.history["objective"].shape == (20, 3, 2)
    for k, channel in enumerate([4, 9, 11]):
        alone = am.generate_for_channels("conv2", channel, n=2, seed=0, aggregate="mean")
        assert alone.images.shape == (1, 2, 8, 8, 1)  # the channel axis is kept
        np.testing.assert_allclose(together.images[k], alone.images[0], atol=1e-4)
        np.testing.assert_allclose(together.activation[k], alone.activation[0], rtol=1e-4)
    means = conv2(model, together.images.reshape(-1, 8, 8, 1)).mean(axis=(1, 2))
    np.testing.assert_allclose(
        means.reshape(3, 2, 16)[np.arange(3), :, [4, 9, 11]], together.activation, rtol=1e-4
    )


def test_negative_weight_minimises(digits_cnn):
    model, x, _ = digits_cnn
    am = ki.ActivationMaximization(
        model,
        -1.0 * Channel("conv2", 5, aggregate="mean"),
        steps=60,
        value_range=RANGE,
        init="mean",
    )
    res = am.generate(n=1, x=x)
    start = conv2(model, x.mean(axis=0, keepdims=True))[..., 5].mean()
    final = conv2(model, res.images)[..., 5].mean()
    assert final < start
    assert res.activation[0] == pytest.approx(-final, rel=1e-5)


def test_am_of_a_channel_inside_a_nested_backbone(built_models):
    model = built_models["nested"]
    intro = ki.Introspector(model)
    path = next(p for p in intro.layer_paths if p.endswith("block_1_expand_relu"))
    am = ki.ActivationMaximization(
        model,
        Channel(path, 3, aggregate="mean"),
        steps=40,
        value_range=(0.0, 255.0),
        learning_rate=2.0,
    )
    res = am.generate(n=1, seed=0)
    h = res.history["objective"][:, 0]
    assert h[-1] > h[0]
    sub = intro.submodel(path)
    np.testing.assert_allclose(
        np.asarray(sub(res.images))[..., 3].mean(), res.activation[0], rtol=1e-4
    )


def test_receptive_field_mode_optimises_the_unit_s_field(digits_cnn):
    """conv2 (two valid 3x3 convs) sees a 5 x 5 field: the patch *is* the unit's input."""
    model, x, _ = digits_cnn
    am = ki.ActivationMaximization(
        model,
        Channel("conv2", 5),
        steps=150,
        value_range=RANGE,
        receptive_field=True,
        init="max",
    )
    res = am.generate(n=2, seed=0, x=x, place=True)
    assert res.images.shape == (2, 5, 5, 1)
    acts = conv2(model, x)[..., 5]
    best = np.sort(acts.max(axis=(1, 2)))[::-1]  # the top images' best units
    # init "max" starts from the two best units' fields: their values are the first objectives
    np.testing.assert_allclose(res.history["objective"][0], best[:2], rtol=1e-5)
    assert res.best_dataset_activation == pytest.approx(best[0], rel=1e-5)
    assert np.all(res.activation > best[0])
    # pasted back at the unit's position, the patch gives that unit the same activation
    for j in range(2):
        (r0, r1), (c0, c1) = res.boxes[j]
        unit = conv2(model, res.placed[j : j + 1])[0, r0, c0, 5]
        assert (r1 - r0, c1 - c0) == (5, 5)
        assert unit == pytest.approx(res.activation[j], rel=1e-5)
        np.testing.assert_array_equal(res.placed[j, r0:r1, c0:c1], res.images[j])


def test_receptive_field_mode_for_a_neuron_places_at_its_position(digits_cnn):
    model, _, _ = digits_cnn
    am = ki.ActivationMaximization(
        model, Neuron("conv2", 2, (1, 3)), steps=20, value_range=RANGE, receptive_field=True
    )
    res = am.generate(n=1, place=True)
    np.testing.assert_array_equal(res.boxes[0], [[1, 6], [3, 8]])
    assert conv2(model, res.placed)[0, 1, 3, 2] == pytest.approx(res.activation[0], rel=1e-5)


def test_init_max_full_image_starts_from_the_best_dataset_images(digits_cnn):
    model, x, _ = digits_cnn
    am = ki.ActivationMaximization(model, Channel("conv1", 1), steps=5, init="max")
    res = am.generate(n=3, x=x)
    scores = np.sort(conv2_free_conv1(model, x)[..., 1].max(axis=(1, 2)))[::-1]
    np.testing.assert_allclose(res.history["objective"][0], scores[:3], rtol=1e-5)


def conv2_free_conv1(model, images):
    import keras

    return np.asarray(keras.Model(model.inputs[0], model.get_layer("conv1").output)(images))


def test_init_array_and_snapshots(digits_cnn):
    model, x, _ = digits_cnn
    am = ki.ActivationMaximization(
        model, Class(2), steps=12, init=x[0], snapshot_every=4, value_range=RANGE
    )
    res = am.generate(n=2)
    assert res.snapshots.shape == (3, 2, 8, 8, 1)
    assert res.snapshot_steps == [4, 8, 12]
    np.testing.assert_array_equal(res.snapshots[-1], res.images)
    kernel, bias = model.get_layer("out").get_weights()
    logits = conv2(model, x[:1]).mean(axis=(1, 2)) @ kernel + bias  # before the softmax
    np.testing.assert_allclose(res.history["objective"][0], logits[0, 2], rtol=1e-5)


@pytest.mark.parametrize("kind", ["fft", "decorrelated", "fft_decorrelated"])
def test_other_parameterizations_raise_the_objective(digits_cnn, kind):
    model, x, _ = digits_cnn
    am = ki.ActivationMaximization(
        model,
        Channel("conv2", 5, aggregate="mean"),
        steps=60,
        parameterization=kind,
        value_range=RANGE,
        init="mean",
        learning_rate=0.1,
        transforms=[tr.Jitter(1), tr.Scale((0.9, 1.1)), tr.Blur(0.5)],
        regularizers=[reg.LpNorm(0.01), reg.GaussianBlur(0.5, sigma=0.5, every=10)],
    )
    res = am.generate(n=1, x=x)
    h = res.history["objective"][:, 0]
    assert h[-10:].mean() > h[:10].mean()
    assert 0.0 <= res.images.min() and res.images.max() <= 1.0
    assert list(res.history) == ["objective", "lp_norm"]


def test_compiled_loop_is_shared_between_objects_and_channels(digits_cnn):
    """Channel indices are inputs of the compiled loop, not part of its graph."""
    model, _, _ = digits_cnn
    ki.ActivationMaximization(model, Channel("conv1", 4), steps=3).generate(n=2, seed=0)
    before = ki.Introspector(model).trace_count
    ki.ActivationMaximization(model, Channel("conv1", 6), steps=3).generate(n=2, seed=1)
    assert ki.Introspector(model).trace_count == before


def test_step_cap_from_the_environment(digits_cnn, monkeypatch):
    model, _, _ = digits_cnn
    monkeypatch.setenv("KI_MAX_STEPS", "7")
    res = ki.ActivationMaximization(model, Class(1), steps=256).generate()
    assert res.history["objective"].shape == (7, 1)
    monkeypatch.setenv("KI_MAX_STEPS", "zero")
    with pytest.raises(ValueError, match="KI_MAX_STEPS"):
        ki.ActivationMaximization(model, Class(1)).generate()


def test_progress_bar(digits_cnn, capsys):
    model, _, _ = digits_cnn
    ki.ActivationMaximization(model, Class(1), steps=10, verbose=1).generate()
    out, err = capsys.readouterr()
    assert "10/10" in err and out == ""  # status on stderr (issue 20)


def test_bad_arguments_are_refused(digits_cnn, built_models):
    model, _x, _ = digits_cnn
    AM = ki.ActivationMaximization
    with pytest.raises(ValueError, match="parameterization"):
        AM(model, 0, parameterization="wavelet")
    with pytest.raises(ValueError, match="optimizer"):
        AM(model, 0, optimizer="lbfgs")
    with pytest.raises(ValueError, match="value_range"):
        AM(model, 0, value_range=(1, 0))
    with pytest.raises(ValueError, match="needs the dataset"):
        AM(model, 0, init="mean").generate()
    with pytest.raises(ValueError, match="single Channel or Neuron"):
        AM(model, 0, receptive_field=True).generate()
    with pytest.raises(ValueError, match="place=True"):
        AM(model, 0).generate(place=True)
    with pytest.raises(ValueError, match="has none"):
        AM(model, Channel("out", 0), receptive_field=True).generate()
    with pytest.raises(ValueError, match="init"):
        AM(model, 0, init=np.zeros((3, 3, 1))).generate()
    with pytest.raises(ValueError, match="one image input"):
        AM(built_models["multi_io"], 0).generate()


def same_padded_model():
    import keras

    keras.utils.set_random_seed(3)  # tests only: a fixed model, so the checks below are fixed
    return keras.Sequential(
        [
            keras.Input((12, 12, 1)),
            keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1"),
            keras.layers.Conv2D(4, 3, padding="same", name="c2"),
            keras.layers.MaxPooling2D(name="pool"),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
        ]
    )


def test_patch_plan_reads_the_unit_whose_field_is_the_patch():
    from keras_introspect.optimize.activation_maximization import _Patch

    intro = ki.Introspector(same_padded_model())
    plans = {}
    for layer in ("c1", "c2", "pool"):
        info = intro.layer(layer)
        plans[layer] = _Patch.plan(1.0, None, info, info.receptive_field, (12, 12))
    assert plans["c1"].size == (3, 3) and plans["c1"].unit == (1, 1)  # offset -1, stride 1
    assert plans["c2"].size == (5, 5) and plans["c2"].unit == (2, 2)  # offset -2, stride 1
    # pool: size 6, stride 2, offset -2: unit 1 covers [0, 6), the whole patch
    assert plans["pool"].size == (6, 6) and plans["pool"].unit == (1, 1)
    assert plans["pool"].start((3, 4)) == (4, 6)


def test_same_padding_patch_placed_back_gives_the_same_unit_value():
    model = same_padded_model()
    x = np.random.default_rng(0).uniform(size=(30, 12, 12, 1)).astype("float32")
    am = ki.ActivationMaximization(
        model, Channel("pool", 1), steps=10, value_range=RANGE, receptive_field=True, init="max"
    )
    res = am.generate(n=4, x=x, place=True)
    sub = ki.Introspector(model).submodel("pool")
    acts = np.asarray(sub(x))[..., 1]
    best = np.sort(acts.max(axis=(1, 2)))[::-1][:4]  # the top images' best units
    inside = 0
    for j, (r, c) in enumerate(res.positions):
        assert res.boxes[j].tolist() == [
            [max(2 * r - 2, 0), min(2 * r + 4, 12)],
            [max(2 * c - 2, 0), min(2 * c + 4, 12)],
        ]
        if 0 < r < 5 and 0 < c < 5:  # the unit's field lies inside the image
            inside += 1
            assert res.history["objective"][0, j] == pytest.approx(best[j], rel=1e-5)
            value = np.asarray(sub(res.placed[j : j + 1]))[0, r, c, 1]
            assert value == pytest.approx(res.activation[j], rel=1e-5)
    assert inside


def test_target_is_the_name_and_generate_for_channels_needs_none():
    """Issue 20: `target` as everywhere; the former `objective=` warns; a batched
    run over channels needs no dummy target."""
    import warnings

    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(3, 3, name="conv")])
    am = ki.ActivationMaximization(model, steps=3)
    result = am.generate_for_channels("conv", "all", n=1)
    assert result.images.shape[:2] == (3, 1)
    with pytest.raises(ValueError, match="generate\\(\\) needs a target"):
        am.generate()
    with pytest.warns(FutureWarning, match="pass target="):
        old = ki.ActivationMaximization(model, objective=ki.targets.Channel("conv", 1), steps=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        new = ki.ActivationMaximization(model, ki.targets.Channel("conv", 1), steps=3)
    np.testing.assert_array_equal(old.generate(seed=2).images, new.generate(seed=2).images)
    assert old.objective is old.target
