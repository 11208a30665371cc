"""Algorithms 1 and 2 of Dai (`003` §3) and the tree estimators."""

import keras
import numpy as np
import pytest
from scipy.cluster.hierarchy import cophenet, linkage
from scipy.sparse.csgraph import minimum_spanning_tree as scipy_mst
from scipy.spatial.distance import squareform

import keras_introspect as ki
from keras_introspect.cluster import (
    category_hierarchy,
    critical_filter,
    minimum_spanning_tree,
    prediction_tree,
)
from keras_introspect.cluster.trees import cosine_distance


def _identity_model(shape):
    """The model's only layer returns its input, so activations are the data."""
    inputs = keras.Input(shape)
    return keras.Model(inputs, keras.layers.Activation("linear", name="identity")(inputs))


# --------------------------------------------------------------- Algorithm 1


def test_algorithm_1_merges_the_two_close_pairs_first():
    means = np.array(
        [
            [1.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 1.0, 0.0],
            [0.99, 0.1, 0.0, 0.0],
            [0.0, 0.0, 0.98, 0.15],
        ]
    )
    distances = cosine_distance(means, means)
    # by hand: (1 - cos) / 2 of categories 0 and 2, and of 1 and 3
    cos_02 = 0.99 / np.hypot(0.99, 0.1)
    cos_13 = 0.98 / np.hypot(0.98, 0.15)
    assert distances[0, 2] == pytest.approx((1 - cos_02) / 2)
    assert distances[0, 1] == pytest.approx(0.5)
    z = category_hierarchy(distances)
    first, second, last = ({int(a), int(b)} for a, b in z[:, :2])
    assert {frozenset(first), frozenset(second)} == {frozenset({0, 2}), frozenset({1, 3})}
    assert sorted(z[:2, 2]) == pytest.approx(sorted([(1 - cos_02) / 2, (1 - cos_13) / 2]))
    assert last == {4, 5}
    # the super nodes' edge is the average of the four cross distances, averaged twice
    d = distances
    expected = ((d[0, 1] + d[2, 1]) / 2 + (d[0, 3] + d[2, 3]) / 2) / 2
    assert z[2, 2] == pytest.approx(expected)
    assert list(z[:, 3]) == [2, 2, 4]


def test_algorithm_1_equals_weighted_linkage_on_random_graphs():
    rng = np.random.default_rng(3)
    for n in (3, 6, 11):
        points = rng.normal(size=(n, 5))
        distances = cosine_distance(points, points)
        np.fill_diagonal(distances, 0)
        z = category_hierarchy(distances)
        reference = linkage(squareform(distances, checks=False), method="weighted")
        np.testing.assert_allclose(z[:, 2], reference[:, 2])
        np.testing.assert_allclose(cophenet(z), cophenet(reference))


def test_minimum_spanning_tree_matches_scipy():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(9, 4))
    distances = np.linalg.norm(points[:, None] - points[None], axis=-1)
    edges = minimum_spanning_tree(distances)
    assert edges.shape == (8, 3)
    assert edges[:, 2].sum() == pytest.approx(scipy_mst(distances).sum())
    # a spanning tree: every node reached
    assert set(edges[:, :2].ravel().astype(int)) == set(range(9))


def test_category_hierarchy_rejects_bad_matrices():
    with pytest.raises(ValueError, match="square"):
        category_hierarchy(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="symmetric"):
        category_hierarchy(np.array([[0.0, 1.0], [2.0, 0.0]]))


def test_category_tree_estimator_on_identity_features():
    x = np.array(
        [[1, 0, 0], [1, 0.1, 0], [0.9, 0.2, 0], [0, 1, 0], [0, 1, 0.1], [0, 0, 1]], "float32"
    )
    y = np.array(["a", "a", "b", "c", "c", "d"])
    tree = ki.CategoryTree(_identity_model((3,)), layer="identity").fit(x, y)
    assert list(tree.classes_) == ["a", "b", "c", "d"]
    np.testing.assert_allclose(tree.representatives_[0], x[:2].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(
        tree.distances_, cosine_distance(tree.representatives_, tree.representatives_), atol=1e-12
    )
    # a and b are closest, so they merge first
    assert {int(v) for v in tree.linkage_[0, :2]} == {0, 1}
    newick = tree.to_newick()
    assert newick.endswith(";") and newick.count("(") == 3
    for name in "abcd":
        assert name + ":" in newick
    graph = tree.to_networkx()
    assert graph.number_of_nodes() == 7 and graph.number_of_edges() == 6
    distances = tree.transform(x[:2])
    np.testing.assert_allclose(distances, cosine_distance(x[:2], tree.representatives_))
    euclid = ki.CategoryTree(_identity_model((3,)), "identity", metric="euclidean").fit(x, y)
    assert euclid.distances_[0, 2] == pytest.approx(
        np.linalg.norm(x[:2].mean(0) - x[3:5].mean(0)), rel=1e-6
    )


def test_category_tree_with_noise_category(digits_cnn):
    model, x, y = digits_cnn
    tree = ki.CategoryTree(model, "gap", include_noise=True, random_state=0).fit(x[:300], y[:300])
    assert list(tree.classes_)[-1] == "noise"
    assert tree.linkage_.shape == (10, 4)
    assert tree.counts_[-1] == round(np.bincount(y[:300]).mean())
    with pytest.raises(ValueError, match="one label per image"):
        ki.CategoryTree(model, "gap").fit(x[:10], y[:9])
    # issue 20: random_state as scikit-learn takes it; a RandomState gives one seed
    drawn = int(np.random.RandomState(5).randint(2**31 - 1))
    by_state = ki.CategoryTree(
        model, "gap", include_noise=True, random_state=np.random.RandomState(5)
    ).fit(x[:300], y[:300])
    by_int = ki.CategoryTree(model, "gap", include_noise=True, random_state=drawn)
    np.testing.assert_array_equal(by_state.linkage_, by_int.fit(x[:300], y[:300]).linkage_)
    with pytest.raises(ValueError, match="None, an integer >= 0 or a numpy RandomState"):
        ki.CategoryTree(model, "gap", include_noise=True, random_state=-1).fit(x[:30], y[:30])


# --------------------------------------------------------------- Algorithm 2


def test_critical_filter_worked_out_by_hand():
    # u = (2, 1, 0, 1), v = (1, 2, 0, 1): cos = 5/6. Without each shared filter:
    #   F=0: (0,1,0,1).(0,2,0,1) = 3 / sqrt(2*5)  -> ratio 1.138
    #   F=1: (2,0,0,1).(1,0,0,1) = 3 / sqrt(5*2)  -> ratio 1.138
    #   F=2: unchanged                             -> ratio 1
    #   F=3: (2,1,0,0).(1,2,0,0) = 4 / 5          -> ratio 0.96, the smallest
    u = np.array([[2.0, 1, 0, 1]])
    v = np.array([[1.0, 2, 0, 1]])
    chosen, ratio = critical_filter(u, v, range(4), range(4))
    assert chosen == 3
    assert ratio == pytest.approx(0.8 / (5 / 6))
    # with filter 3 no longer reachable from v, the answer is among the shared 0..2
    chosen, _ = critical_filter(u, v, range(4), (0, 1, 2))
    assert chosen in (0, 1, 2)
    assert critical_filter(u, v, (0,), (1,)) == (None, pytest.approx(np.nan, nan_ok=True))


def test_prediction_tree_on_two_hand_built_maps():
    # the same two vectors spread over 2 spatial positions (filters last)
    u = np.array([[2.0, 1, 0, 1], [0, 0, 0, 0]])
    v = np.array([[1.0, 2, 0, 1], [0, 0, 0, 0]])
    root = prediction_tree(np.stack([u, v]))
    (node,) = root.children
    assert node.critical_filter == 3
    assert node.filters == (0, 1, 2)
    assert [c.id for c in node.children] == [0, 1]
    assert node.images == (0, 1)
    assert node.distance == pytest.approx((1 - 5 / 6) / 2)
    np.testing.assert_allclose(node.vector, (u + v) / 2)


def test_prediction_tree_invariants_on_random_maps():
    rng = np.random.default_rng(1)
    maps = rng.random((7, 3, 3, 5))
    root = prediction_tree(maps)
    nodes = list(root.walk())
    leaves = [n for n in nodes if n.is_leaf]
    assert sorted(n.id for n in leaves) == list(range(7))
    for node in nodes:
        if node.is_leaf or node is root:
            continue
        u, v = node.children
        shared = set(u.filters) & set(v.filters)
        assert node.critical_filter in shared
        assert set(node.filters) == shared - {node.critical_filter}
        assert node.images == tuple(sorted(u.images + v.images))
    # the loop stopped by one of the documented conditions
    children = root.children
    assert (
        len(children) < 2
        or all(len(c.filters) <= 1 for c in children)
        or all(
            not set(a.filters) & set(b.filters) for a in children for b in children if a is not b
        )
    )


def test_prediction_tree_estimator_and_paths():
    # feature maps are the inputs: 2x2 positions, 4 filters
    rng = np.random.default_rng(0)
    x = rng.random((6, 2, 2, 4)).astype("float32")
    x[:, :, :, 2] = 0.0  # filter 2 never fires
    tree = ki.PredictionTree(_identity_model((2, 2, 4)), "identity").fit(x)
    assert tree.n_filters_ == 4
    reference = prediction_tree(x)
    assert [n.id for n in tree.root_.walk()] == [n.id for n in reference.walk()]
    # a fitted image walks down to its own leaf
    np.testing.assert_array_equal(tree.predict(x), np.arange(6))
    (path,) = tree.path(x[3:4])
    assert path.nodes[-1] == 3
    assert path.critical_filters == [
        tree.nodes_[i].critical_filter for i in path.nodes if tree.nodes_[i].children
    ]
    peak = x[3].reshape(-1, 4).max(axis=0)
    assert path.activations == pytest.approx([peak[f] for f in path.critical_filters])
    assert path.activated == [bool(peak[f] > 0) for f in path.critical_filters]
    with pytest.raises(ValueError, match="at least 2 images"):
        ki.PredictionTree(_identity_model((2, 2, 4)), "identity").fit(x[:1])
