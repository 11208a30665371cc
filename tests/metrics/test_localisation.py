"""Pointing game, relevance mass and relevance rank: hand-computed cases, brute-force
references for ties, and the refusal of bad masks."""

import itertools

import numpy as np
import pytest

from keras_introspect._repr import text_table
from keras_introspect.exceptions import KerasIntrospectWarning
from keras_introspect.metrics import (
    LocalisationResult,
    pointing_game,
    relevance_mass,
    relevance_rank,
)


def box_mask(shape, rows, cols):
    """A mask of `shape` ((H, W) or (n, H, W)) marking `rows` x `cols` of every image."""
    mask = np.zeros(shape, bool)
    mask[..., rows, cols] = True
    return mask


def test_pointing_game_hit_and_miss():
    maps = np.zeros((2, 6, 6))
    maps[0, 3, 3] = 1.0  # inside the box
    maps[1, 0, 0] = 1.0  # outside
    masks = np.stack([box_mask((6, 6), slice(2, 5), slice(2, 5))] * 2)
    result = pointing_game(maps, masks)
    assert result.values.tolist() == [1.0, 0.0]
    assert result.mean == 0.5
    assert result.details == {"tolerance": 0.0}


def test_pointing_game_tolerance_is_a_disc_in_pixels():
    maps = np.zeros((1, 8, 8))
    maps[0, 0, 0] = 1.0
    masks = box_mask((1, 8, 8), 3, 4)  # 5 pixels from the maximum (3-4-5 triangle)
    assert pointing_game(maps, masks, tolerance=4.99).values[0] == 0.0
    assert pointing_game(maps, masks, tolerance=5).values[0] == 1.0
    masks[0, 3, 4], masks[0, 4, 4] = False, True  # sqrt(32) = 5.66 away
    assert pointing_game(maps, masks, tolerance=5.6).values[0] == 0.0
    assert pointing_game(maps, masks, tolerance=5.7).values[0] == 1.0


def test_pointing_game_uses_the_signed_maximum():
    maps = np.zeros((1, 4, 4))
    maps[0, 0, 0] = -9.0  # largest magnitude, but negative
    maps[0, 2, 2] = 1.0
    masks = box_mask((1, 4, 4), 2, 2)
    assert pointing_game(maps, masks).values[0] == 1.0
    assert pointing_game(np.abs(maps), masks).values[0] == 0.0


def test_pointing_game_ties_count_as_shares_and_a_constant_map_scores_chance():
    maps = np.zeros((2, 4, 4))
    maps[0, 0, 0] = maps[0, 2, 2] = maps[0, 3, 3] = 1.0  # three maxima, one in the mask
    maps[1] = 0.7  # constant
    masks = np.stack([box_mask((4, 4), 2, 2), box_mask((4, 4), slice(0, 2), slice(None))])
    np.testing.assert_allclose(pointing_game(maps, masks).values, [1 / 3, 8 / 16])


def test_pointing_game_on_maps_with_channels():
    maps = np.zeros((1, 4, 4, 3))
    maps[0, 1, 1, 2] = 5.0  # the maximum is in the last channel
    maps[0, 3, 3, 0] = 4.0
    assert pointing_game(maps, box_mask((1, 4, 4), 1, 1)).values[0] == 1.0
    assert pointing_game(maps, box_mask((1, 4, 4), 3, 3)).values[0] == 0.0


def test_relevance_mass_by_hand():
    maps = np.array(
        [
            [[3.0, 1.0], [-5.0, 0.0]],  # positive: 3 inside, 1 outside
            [[2.0, 2.0], [2.0, 2.0]],  # a quarter inside
        ]
    )
    masks = np.array([[[True, False], [True, False]], [[False, False], [False, True]]])
    result = relevance_mass(maps, masks)
    np.testing.assert_allclose(result.values, [3 / 4, 1 / 4])
    assert result.measure == "relevance mass"
    # all positive relevance inside: 1, whatever the negative relevance outside
    maps[0, 0, 1] = -1.0
    assert relevance_mass(maps, masks).values[0] == 1.0


def test_relevance_mass_with_channels_sums_every_channel_of_a_pixel():
    maps = np.zeros((1, 2, 2, 2))
    maps[0, 0, 0] = [1.0, 2.0]  # 3 inside
    maps[0, 1, 1] = [-4.0, 1.0]  # 1 outside
    assert relevance_mass(maps, box_mask((1, 2, 2), 0, 0)).values[0] == pytest.approx(0.75)


def test_relevance_mass_without_positive_relevance_is_nan_with_a_warning():
    maps = np.stack([-np.ones((3, 3)), np.eye(3)])
    masks = np.stack([np.eye(3, dtype=bool)] * 2)
    with pytest.warns(KerasIntrospectWarning, match=r"Relevance mass is undefined for 1"):
        result = relevance_mass(maps, masks)
    assert np.isnan(result.values[0]) and result.values[1] == 1.0
    assert result.mean == 1.0


def test_relevance_rank_by_hand():
    maps = np.array([[[4.0, 3.0], [2.0, 1.0]]])
    masks = np.array([[[True, False], [True, False]]])  # K = 2; the top two are 4 and 3
    assert relevance_rank(maps, masks).values[0] == 0.5
    masks = np.array([[[True, True], [False, False]]])
    assert relevance_rank(maps, masks).values[0] == 1.0
    masks = np.array([[[False, False], [False, True]]])  # K = 1: top is 4, not in the mask
    assert relevance_rank(maps, masks).values[0] == 0.0


def test_relevance_rank_tie_at_the_kth_value_by_hand():
    # K = 2: 5 (in the mask) for sure, then one of three 3's, of which one is in the mask
    maps = np.array([[[5.0, 3.0, 3.0], [3.0, 0.0, 0.0]]])
    masks = np.array([[[True, True, False], [False, False, False]]])
    assert relevance_rank(maps, masks).values[0] == pytest.approx((1 + 1 / 3) / 2)


def rank_over_every_tie_order(a, mask):
    """The rank accuracy averaged over every order of the map's entries that keeps the
    values sorted: every way of breaking the ties, enumerated."""
    a, mask = a.ravel(), mask.ravel()
    k = int(mask.sum())
    total, count = 0.0, 0
    for order in itertools.permutations(range(a.size)):
        position = np.empty(a.size, int)
        position[list(order)] = np.arange(a.size)
        ranked = sorted(range(a.size), key=lambda i: (-a[i], position[i]))
        total += mask[ranked[:k]].sum() / k
        count += 1
    return total / count


def test_relevance_rank_with_ties_equals_the_mean_over_every_tie_order():
    rng = np.random.default_rng(0)
    maps = rng.integers(0, 3, size=(6, 2, 3)).astype(float)  # 6 entries, many ties
    masks = rng.random((6, 2, 3)) < 0.5
    masks[:, 0, 0] = True  # none empty
    expected = [rank_over_every_tie_order(a, m) for a, m in zip(maps, masks, strict=True)]
    np.testing.assert_allclose(relevance_rank(maps, masks).values, expected, rtol=1e-12)


def test_constant_maps_score_chance_in_both_rank_and_pointing():
    maps = np.full((1, 5, 4), 2.0)
    masks = box_mask((1, 5, 4), slice(None), 0)  # 5 of 20 pixels
    assert relevance_rank(maps, masks).values[0] == pytest.approx(0.25)
    assert pointing_game(maps, masks).values[0] == pytest.approx(0.25)


def test_relevance_rank_with_channels_counts_every_entry():
    maps = np.zeros((1, 2, 2, 2))
    maps[0, 0, 0] = [9.0, 8.0]
    maps[0, 1, 1] = [7.0, 0.5]
    maps[0, 0, 1] = [0.1, 0.2]
    masks = box_mask((1, 2, 2), 0, 0)  # K = 2 entries: the pixel's two channels
    assert relevance_rank(maps, masks).values[0] == 1.0
    masks = box_mask((1, 2, 2), 1, 1)  # its entries are 7 and 0.5; the top two are 9, 8
    assert relevance_rank(maps, masks).values[0] == 0.0


def test_zero_one_masks_of_any_number_type_equal_boolean_masks():
    rng = np.random.default_rng(1)
    maps = rng.normal(size=(3, 5, 5))
    masks = rng.random((3, 5, 5)) < 0.4
    masks[:, 2, 2] = True
    for fn in (pointing_game, relevance_mass, relevance_rank):
        expected = fn(maps, masks).values
        for other in (masks.astype(np.uint8), masks.astype(float), masks[..., None]):
            np.testing.assert_array_equal(fn(maps, other).values, expected)


def test_a_full_mask_scores_one():
    maps = np.random.default_rng(2).normal(size=(2, 4, 4))
    masks = np.ones((2, 4, 4), bool)
    for fn in (pointing_game, relevance_mass, relevance_rank):
        np.testing.assert_allclose(fn(maps, masks).values, [1.0, 1.0])


def test_result_table_str_and_repr():
    maps = np.zeros((2, 3, 3))
    maps[0, 1, 1] = maps[1, 0, 0] = 1.0
    result = pointing_game(maps, np.stack([box_mask((3, 3), 1, 1)] * 2))
    assert isinstance(result, LocalisationResult)
    assert result.table == [
        {"image": 0, "pointing game": 1.0},
        {"image": 1, "pointing game": 0.0},
    ]
    assert str(result) == text_table(result.table)
    assert repr(result) == "LocalisationResult(pointing game, 2 images, mean 0.500)"


MAPS = np.random.default_rng(3).normal(size=(2, 4, 4))
MASKS = np.zeros((2, 4, 4), bool)
MASKS[:, 1:3, 1:3] = True


def with_value(masks, value):
    masks = masks.astype(float)
    masks[0, 0, 0] = value
    return masks


@pytest.mark.parametrize("fn", [pointing_game, relevance_mass, relevance_rank])
@pytest.mark.parametrize(
    ("maps", "masks", "message"),
    [
        (MAPS, MASKS[:1], r"Expected one mask per map, shape \(2, 4, 4\).*shape \(1, 4, 4\)"),
        (MAPS, MASKS[:, :3], r"Expected one mask per map.*shape \(2, 3, 4\)"),
        (MAPS, MASKS[0], r"Expected one mask per map.*shape \(4, 4\)"),
        (MAPS[0], MASKS[0], r"Expected `maps` with one map per image.*shape \(4, 4\)"),
        (
            MAPS,
            with_value(MASKS, 0.5),
            r"boolean masks \(or 0/1 values\).*1 other values, e\.g\. 0\.5",
        ),
        (MAPS, MASKS * 255, r"boolean masks \(or 0/1 values\).*8 other values, e\.g\. 255"),
        (MAPS, with_value(MASKS, np.nan), r"boolean masks.*e\.g\. nan"),
        (MAPS, np.where(MASKS, "y", "n"), r"could not convert|boolean masks"),
        (
            MAPS,
            np.zeros_like(MASKS),
            r"at least one pixel\. Received: empty masks for image\(s\) \[0, 1\]",
        ),
        (MAPS, np.stack([MASKS[0], ~MASKS[0] & False]), r"empty masks for image\(s\) \[1\]"),
        (np.full((2, 4, 4), np.nan), MASKS, r"NaN or infinity"),
    ],
)
def test_bad_maps_and_masks_are_refused(fn, maps, masks, message):
    with pytest.raises(ValueError, match=message):
        fn(maps, masks)


@pytest.mark.parametrize("tolerance", [-1, float("nan"), "2", None, True])
def test_bad_tolerance_is_refused(tolerance):
    with pytest.raises(ValueError, match=r"tolerance"):
        pointing_game(MAPS, MASKS, tolerance=tolerance)


def test_matches_quantus_under_matched_conventions():
    """Quantus' PointingGame, RelevanceMassAccuracy and RelevanceRankAccuracy without
    normalisation or absolute values, on non-negative maps without ties (where Quantus'
    signed mass equals the positive mass, and its tie order does not matter)."""
    quantus = pytest.importorskip("quantus")
    rng = np.random.default_rng(4)
    a = rng.random((6, 1, 10, 10))  # channel first, as Quantus expects; no ties
    s = np.zeros((6, 1, 10, 10))
    for i in range(6):
        top, left = rng.integers(0, 6, size=2)
        s[i, 0, top : top + 4, left : left + 4] = 1.0
    x = rng.random((6, 1, 10, 10))
    y = np.zeros(6, int)
    kwargs = {"abs": False, "normalise": False, "disable_warnings": True}
    call = {"model": None, "x_batch": x, "y_batch": y, "a_batch": a, "s_batch": s}
    call["channel_first"] = True
    for ours, theirs in (
        (pointing_game, quantus.PointingGame),
        (relevance_mass, quantus.RelevanceMassAccuracy),
        (relevance_rank, quantus.RelevanceRankAccuracy),
    ):
        expected = np.asarray(theirs(**kwargs)(**call), float)
        np.testing.assert_allclose(ours(a[:, 0], s[:, 0]).values, expected, rtol=1e-9)
