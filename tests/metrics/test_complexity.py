"""Sparseness and complexity: values worked out by hand and by independent formulas."""

import math

import numpy as np
import pytest

from keras_introspect._repr import text_table
from keras_introspect.exceptions import KerasIntrospectWarning
from keras_introspect.metrics import ComplexityResult, complexity, sparseness


def gini_by_pairs(values):
    """Gini index as the mean absolute difference over all pairs, halved and
    divided by the mean: sum_ij |a_i - a_j| / (2 N sum a) (no sorting)."""
    a = np.abs(np.asarray(values, np.float64)).ravel()
    return np.abs(a[:, None] - a[None, :]).sum() / (2 * a.size * a.sum())


def entropy_by_hand(values):
    a = np.abs(np.asarray(values, np.float64)).ravel()
    return -sum(v / a.sum() * math.log(v / a.sum()) for v in a if v > 0)


@pytest.mark.parametrize("side", [1, 2, 3, 5])
def test_one_hot_map_has_gini_n_minus_1_over_n_and_entropy_0(side):
    maps = np.zeros((1, side, side))
    maps[0, side // 2, side - 1] = -2.5  # the sign does not count
    n_pixels = side * side
    assert sparseness(maps).values[0] == pytest.approx((n_pixels - 1) / n_pixels, abs=1e-12)
    assert complexity(maps).values[0] == 0.0


def test_constant_map_has_gini_0_and_entropy_ln_n():
    maps = np.full((2, 4, 5), 0.3)
    np.testing.assert_allclose(sparseness(maps).values, [0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(complexity(maps).values, [math.log(20)] * 2, rtol=1e-12)


def test_hand_computed_values():
    # |a| = 0, 1, 2, 3: Gini = sum |a_i - a_j| / (2 N sum a) = 20 / 48
    maps = np.array([[[0.0, -1.0], [2.0, 3.0]]])
    assert sparseness(maps).values[0] == pytest.approx(20 / 48)
    # shares 1/6, 2/6, 3/6
    expected = -(1 / 6 * math.log(1 / 6) + 2 / 6 * math.log(2 / 6) + 3 / 6 * math.log(3 / 6))
    assert complexity(maps).values[0] == pytest.approx(expected)
    # two equal entries of four: ln 2
    assert complexity(np.array([[[1.0, 0.0], [0.0, -1.0]]])).values[0] == pytest.approx(math.log(2))


def test_random_maps_equal_the_independent_formulas_also_with_channels():
    rng = np.random.default_rng(0)
    for maps in (rng.normal(size=(4, 6, 5)), rng.normal(size=(3, 4, 4, 3))):
        maps[0].flat[:7] = 0.0  # some exact zeros (0 ln 0 = 0)
        np.testing.assert_allclose(sparseness(maps).values, [gini_by_pairs(m) for m in maps])
        np.testing.assert_allclose(complexity(maps).values, [entropy_by_hand(m) for m in maps])


def test_neither_measure_depends_on_scale_or_sign():
    maps = np.random.default_rng(1).normal(size=(3, 5, 5))
    for fn in (sparseness, complexity):
        np.testing.assert_allclose(fn(maps).values, fn(-1e3 * maps).values, rtol=1e-12)


def test_a_sparser_map_scores_higher_sparseness_and_lower_complexity():
    spread = np.ones((1, 8, 8))
    focused = np.zeros((1, 8, 8))
    focused[0, 2:4, 2:4] = 1.0
    assert sparseness(focused).mean > sparseness(spread).mean
    assert complexity(focused).mean < complexity(spread).mean
    assert complexity(focused).mean == pytest.approx(math.log(4))


def test_map_of_zeros_is_nan_with_a_warning_and_left_out_of_the_mean():
    maps = np.zeros((3, 4, 4))
    maps[1, 0, 0] = 1.0
    maps[2] = 1.0
    for fn, finite in ((sparseness, [15 / 16, 0.0]), (complexity, [0.0, math.log(16)])):
        with pytest.warns(KerasIntrospectWarning, match=r"undefined for 1 image\(s\).*\[0\]"):
            result = fn(maps)
        assert np.isnan(result.values[0])
        np.testing.assert_allclose(result.values[1:], finite, atol=1e-12)
        assert result.mean == pytest.approx(np.mean(finite))


def test_result_table_str_and_repr():
    maps = np.zeros((2, 2, 2))
    maps[0, 0, 0] = 1.0
    maps[1] = 1.0
    result = sparseness(maps)
    assert isinstance(result, ComplexityResult)
    assert result.table == [{"image": 0, "sparseness": 0.75}, {"image": 1, "sparseness": 0.0}]
    assert str(result) == text_table(result.table)
    assert repr(result) == "ComplexityResult(sparseness, 2 images, mean 0.375)"
    assert complexity(maps).table[1]["complexity"] == pytest.approx(math.log(4))


def test_tf_tensors_and_lists_are_accepted():
    tf = pytest.importorskip("tensorflow")
    maps = np.random.default_rng(2).random((2, 3, 3))
    expected = sparseness(maps).values
    np.testing.assert_allclose(sparseness(tf.constant(maps)).values, expected)
    np.testing.assert_allclose(sparseness(maps.tolist()).values, expected)


@pytest.mark.parametrize("fn", [sparseness, complexity])
@pytest.mark.parametrize(
    ("maps", "message"),
    [
        (
            np.ones((4, 4)),
            r"shape \(n, H, W\) or \(n, H, W, C\)\. Received: maps with shape \(4, 4\)",
        ),
        (np.ones((1, 2, 2, 2, 2)), r"Received: maps with shape \(1, 2, 2, 2, 2\)"),
        (np.ones((0, 4, 4)), r"Received: maps with shape \(0, 4, 4\)"),
        (np.full((1, 2, 2), np.nan), r"NaN or infinity"),
        (np.full((1, 2, 2), np.inf), r"NaN or infinity"),
        (np.array([[["a", "b"]]]), r"could not convert|Expected `maps` with real values"),
    ],
)
def test_bad_maps_are_refused(fn, maps, message):
    with pytest.raises(ValueError, match=message):
        fn(maps)


def test_complex_maps_are_refused():
    with pytest.raises(ValueError, match=r"Complex|real values"):
        sparseness(np.ones((1, 2, 2), complex))


def test_matches_quantus_under_matched_conventions():
    """Quantus' Sparseness and Complexity with abs=True and without normalisation; its
    Sparseness adds 1e-7 to every entry, hence the tolerance."""
    quantus = pytest.importorskip("quantus")
    rng = np.random.default_rng(3)
    a = rng.normal(size=(4, 1, 8, 8))  # channel first, as Quantus expects
    x = rng.random((4, 1, 8, 8))
    y = np.zeros(4, int)
    kwargs = {"abs": True, "normalise": False, "disable_warnings": True}
    call = {"model": None, "x_batch": x, "y_batch": y, "a_batch": a, "channel_first": True}
    theirs_gini = np.asarray(quantus.Sparseness(**kwargs)(**call))
    theirs_entropy = np.asarray(quantus.Complexity(**kwargs)(**call))
    np.testing.assert_allclose(sparseness(a[:, 0]).values, theirs_gini, atol=1e-5)
    np.testing.assert_allclose(complexity(a[:, 0]).values, theirs_entropy, rtol=1e-6)
