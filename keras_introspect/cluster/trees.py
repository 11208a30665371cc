"""Category tree (Algorithm 1) and filter-wise prediction tree (Algorithm 2) of Dai (`003` §3).

Both work on representative vectors: the flattened feature map of one layer
for an image, averaged over the images of a category for Algorithm 1. The
algorithms themselves are plain functions on arrays (`category_hierarchy`,
`prediction_tree`); the estimators `CategoryTree` and `PredictionTree` feed
them a model's activations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from keras_introspect._memory import check_batch_size
from keras_introspect._repr import html_repr, summary_repr
from keras_introspect._validation import (
    check_number,
    check_one_of,
    check_positive_int,
    check_random_state,
    check_verbose,
)
from keras_introspect.cluster._base import LayerEstimator, pool
from keras_introspect.targets import one_output_layer


def cosine_distance(a, b):
    """`(1 - cos(a_i, b_j)) / 2` for all rows: in [0, 1], 0 for equal directions.

    A zero vector has cosine 0 with everything (distance 1/2).
    """
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    b = np.asarray(b, np.float64).reshape(len(b), -1)
    norms = np.linalg.norm(a, axis=1)[:, None] * np.linalg.norm(b, axis=1)[None]
    dots = a @ b.T
    cos = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
    return (1.0 - np.clip(cos, -1.0, 1.0)) / 2.0


def _distances(a, b, metric):
    if metric == "cosine":
        return cosine_distance(a, b)
    from scipy.spatial.distance import cdist

    return cdist(np.reshape(a, (len(a), -1)), np.reshape(b, (len(b), -1)))


# ------------------------------------------------------------- Algorithm 1


def category_hierarchy(distances):
    """Algorithm 1 of `003`: greedy merging of the closest pair of categories.

    Every category is a node of a complete graph whose edge weights are
    `distances`. While more than one node has no parent, the lightest edge
    between two nodes that are not parent and child is cut, a super node
    is added as the parent of its two ends, and every other node linked to
    either end is re-linked to the super node with the average of its (one
    or two) edge weights to the ends.

    Ties are broken by the lower node numbers. Since each merge re-links the
    two ends' edges with the plain average, the result equals scipy's
    `linkage(method="weighted")` (WPGMA) up to ties.

    Args:
        distances: symmetric `(n, n)` matrix.

    Returns:
        `(n - 1, 4)` linkage matrix in scipy's format: merged node ids (the
        categories are 0..n-1, the k-th super node is n+k), the weight of the
        cut edge, and the number of categories under the super node.
    """
    distances = np.asarray(distances, np.float64)
    n = len(distances)
    if distances.shape != (n, n) or n < 2:
        raise ValueError(
            f"Expected a square distance matrix over at least 2 categories. Received: "
            f"shape {distances.shape}"
        )
    if not np.allclose(distances, distances.T) or not np.all(np.isfinite(distances)):
        raise ValueError("Expected a finite symmetric distance matrix")
    edges = {(i, j): distances[i, j] for i in range(n) for j in range(i + 1, n)}
    size = dict.fromkeys(range(n), 1)
    orphans = set(range(n))  # nodes without a parent
    rows = []
    while len(orphans) > 1:
        (u, v), weight = min(edges.items(), key=lambda item: (item[1], item[0]))
        s = n + len(rows)
        del edges[(u, v)]
        for w in sorted(orphans - {u, v}):
            linked = [edges.pop(key) for key in (_edge(w, u), _edge(w, v)) if key in edges]
            if linked:
                edges[_edge(w, s)] = float(np.mean(linked))
        orphans -= {u, v}
        orphans.add(s)
        size[s] = size[u] + size[v]
        rows.append([u, v, weight, size[s]])
    return np.array(rows, dtype=np.float64)


def _edge(a, b):
    return (a, b) if a < b else (b, a)


def minimum_spanning_tree(distances):
    """Prim's minimum spanning tree of the complete graph on `distances`.

    Returns:
        `(n - 1, 3)` array of edges `(i, j, weight)` with `i < j`, in the
        order they were added (zero weights are edges too).
    """
    distances = np.asarray(distances, np.float64)
    n = len(distances)
    in_tree = np.zeros(n, bool)
    in_tree[0] = True
    best = distances[0].copy()
    parent = np.zeros(n, int)
    edges = []
    for _ in range(n - 1):
        candidates = np.where(in_tree, np.inf, best)
        j = int(np.argmin(candidates))
        i = int(parent[j])
        edges.append((min(i, j), max(i, j), distances[i, j]))
        in_tree[j] = True
        closer = distances[j] < best
        best = np.where(closer, distances[j], best)
        parent = np.where(closer, j, parent)
    return np.array(edges, dtype=np.float64).reshape(-1, 3)


class CategoryTree(LayerEstimator, TransformerMixin, BaseEstimator):
    """Hierarchy of the categories as one layer sees them (`003` Algorithm 1).

    Each category is represented by the mean of its images' feature maps at
    `layer` (flattened). The distance of two categories is
    `(1 - cos) / 2` of their representatives (`metric="cosine"`, the
    paper's) or the Euclidean distance. `category_hierarchy` merges them
    greedily into a tree; the minimum spanning tree of the same graph shows
    which category is central.

    Args:
        model: a built `keras.Model`.
        layer: selector of one layer (the paper: the last convolutional one).
        metric: `"cosine"` or `"euclidean"`.
        pooling: `None` (the flattened map, the paper's), `"avg"` or `"max"`.
        include_noise: add a category `"noise"` of Gaussian noise images with
            the data's channel means and deviations (`003` Fig. 8).
        n_noise: number of noise images (`None`: the mean category size).
        batch_size, verbose: streaming options.
        random_state: seed of the noise images.

    Attributes:
        classes_: the categories (sorted labels, then `"noise"`).
        representatives_: `(n_classes, n_features)` mean vectors.
        counts_: images per category.
        distances_: `(n_classes, n_classes)` distances.
        linkage_: scipy linkage matrix (`scipy.cluster.hierarchy.dendrogram`).
        mst_: `(n_classes - 1, 3)` minimum spanning tree edges `(i, j, weight)`.
        layer_path_: the layer.

    Example:
        >>> tree = ki.CategoryTree(model, layer="conv4").fit(x, y)  # doctest: +SKIP
        >>> tree.to_newick()                                        # doctest: +SKIP
        '((cat:0.02,dog:0.02):0.1,plane:0.12);'
    """

    def __init__(
        self,
        model,
        layer,
        metric="cosine",
        pooling=None,
        include_noise=False,
        n_noise=None,
        batch_size=32,
        random_state=None,
        verbose=0,
    ):
        self.model = model
        self.layer = layer
        self.metric = metric
        self.pooling = pooling
        self.include_noise = include_noise
        self.n_noise = n_noise
        self.batch_size = batch_size
        self.random_state = random_state
        self.verbose = verbose

    def _vectors(self, X):
        pooling = self.pooling

        def reduce(a):
            return pool(a, pooling)

        batches = self._stream(X, self.layer_path_, reduce, key=("pool", pooling))
        return [b.reshape(len(b), -1) for b in batches]

    def fit(self, X, y):
        """Representatives, distances, hierarchy and spanning tree from labelled images.

        Args:
            X: images `(n, ...)` (an array: the labels follow its order).
            y: one label per image.

        Returns:
            self
        """
        from keras_introspect._data import is_stream

        check_one_of(self.metric, "metric", ("cosine", "euclidean"))
        check_one_of(self.pooling, "pooling", (None, "avg", "max"))
        check_one_of(self.include_noise, "include_noise", (True, False))
        check_batch_size(self.batch_size)
        check_verbose(self.verbose)
        if is_stream(X):
            raise TypeError("CategoryTree.fit takes an array of images (the labels follow it)")
        self.layer_path_ = one_output_layer(self._get_introspector(), self.layer).path
        X = self._check_x(X, reset=True)
        if y is None:
            raise ValueError("CategoryTree requires y to be passed, but the target y is None")
        if len(X) < 2:
            raise ValueError(
                f"Expected images of at least 2 categories. Received: n_samples={len(X)}"
            )
        y = np.asarray(y)
        if y.shape != (len(X),):
            raise ValueError(
                f"Expected one label per image ({len(X)}). Received: y with shape {y.shape}"
            )
        classes, codes = np.unique(y, return_inverse=True)
        if len(classes) + bool(self.include_noise) < 2:
            raise ValueError("Expected at least 2 categories in y")
        sums, counts = None, np.bincount(codes, minlength=len(classes))
        start = 0
        for batch in self._vectors(X):
            if sums is None:
                sums = np.zeros((len(classes), batch.shape[1]))
            np.add.at(sums, codes[start : start + len(batch)], batch)
            start += len(batch)
        representatives = sums / counts[:, None]
        names = list(classes)
        if self.include_noise:
            from keras_introspect.probes.out_of_sample import noise_like

            n_noise = round(float(counts.mean())) if self.n_noise is None else self.n_noise
            seed = check_random_state(self.random_state)
            seed = 0 if seed is None else seed
            noise = noise_like(X, check_positive_int(n_noise, "n_noise"), seed=seed)
            noise_mean = np.concatenate(self._vectors(noise)).mean(axis=0)
            representatives = np.vstack([representatives, noise_mean])
            counts = np.append(counts, n_noise)
            names.append("noise")
        self.classes_ = np.asarray(names, dtype=object if self.include_noise else classes.dtype)
        self.representatives_ = representatives
        self.counts_ = counts
        distances = _distances(representatives, representatives, self.metric)
        np.fill_diagonal(distances, 0.0)
        self.distances_ = (distances + distances.T) / 2
        self.linkage_ = category_hierarchy(self.distances_)
        self.mst_ = minimum_spanning_tree(self.distances_)
        return self

    def plot(self, ax=None, orientation="left"):
        """The dendrogram of the categories (`plotting.plot_category_tree`); the Axes."""
        from keras_introspect.plotting.cluster import plot_category_tree

        check_is_fitted(self, "linkage_")
        return plot_category_tree(self, ax=ax, orientation=orientation)

    def _repr_html_(self) -> str:
        return _fitted_display(self, "linkage_")

    def _repr_mimebundle_(self, **kwargs) -> dict:  # (IPython asks this before the HTML)
        return {"text/plain": repr(self), "text/html": self._repr_html_()}

    def transform(self, X):
        """Distance of each image's vector to each category's representative, `(n, n_classes)`."""
        check_is_fitted(self)
        X = self._check_x(X, reset=False)
        vectors = np.concatenate(self._vectors(X))
        return _distances(vectors, self.representatives_, self.metric)

    def to_newick(self) -> str:
        """The hierarchy in Newick format; branch lengths are differences of merge heights."""
        check_is_fitted(self)
        n = len(self.classes_)
        height = np.concatenate([np.zeros(n), self.linkage_[:, 2]])

        def name(i):
            text = str(self.classes_[i])
            if any(c in text for c in " ,;:()[]'"):
                text = "'" + text.replace("'", "''") + "'"
            return text

        def render(node, parent_height):
            length = f":{parent_height - height[node]:.6g}"
            if node < n:
                return name(node) + length
            left, right = (int(v) for v in self.linkage_[node - n, :2])
            inner = f"({render(left, height[node])},{render(right, height[node])})"
            return inner + length

        root = 2 * n - 2
        left, right = (int(v) for v in self.linkage_[root - n, :2])
        return f"({render(left, height[root])},{render(right, height[root])});"

    def to_networkx(self):
        """The hierarchy as a `networkx.DiGraph` (parent -> child edges).

        Nodes are the linkage ids; attributes `name` (categories only) and
        `height` (merge weight, 0 for categories). The spanning tree is
        `nx.Graph` of `mst_` if wanted.
        """
        import networkx as nx

        check_is_fitted(self)
        n = len(self.classes_)
        graph = nx.DiGraph()
        for i, label in enumerate(self.classes_):
            graph.add_node(i, name=str(label), height=0.0)
        for k, (u, v, weight, _) in enumerate(self.linkage_):
            graph.add_node(n + k, height=float(weight))
            graph.add_edge(n + k, int(u))
            graph.add_edge(n + k, int(v))
        return graph

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        tags.target_tags.required = True
        return tags


# ------------------------------------------------------------- Algorithm 2


@dataclass(eq=False)
class TreeNode:
    """A node of a `PredictionTree`.

    Attributes:
        id: leaves are the fitted images `0..c-1`, super nodes `c, c+1, ...`
            in merge order; the root is `-1`.
        children: child nodes (empty for a leaf).
        filters: the reachable filters, sorted.
        critical_filter: the filter removed at this merge (`None` for leaves
            and the root).
        images: indices of the fitted images under the node.
        distance: `(1 - cos) / 2` of the two merged children (0 for leaves).
        vector: the node's representative vector `(spatial, filters)`.
    """

    id: int
    children: list = field(default_factory=list)
    filters: tuple = ()
    critical_filter: int | None = None
    images: tuple = ()
    distance: float = 0.0
    vector: np.ndarray = field(default=None, repr=False)

    @property
    def is_leaf(self) -> bool:
        return not self.children

    def walk(self):
        """This node and every node below it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()

    def __repr__(self) -> str:
        return (
            f"TreeNode(id={self.id}, children={[c.id for c in self.children]}, "
            f"critical_filter={self.critical_filter}, n_filters={len(self.filters)}, "
            f"images={list(self.images)})"
        )


def _masked_cosine(dots, norm_u, norm_v):
    denominator = np.sqrt(norm_u * norm_v)
    return np.divide(dots, denominator, out=np.zeros_like(dots), where=denominator > 0)


def critical_filter(u, v, u_filters, v_filters):
    """The critical filter of merging `u` and `v` (Algorithm 2).

    Among the filters reachable from both nodes, the one whose removal
    divides the cosine of the masked vectors by the most:
    `argmin_F cos(u|U\\{F}, v|V\\{F}) / cos(u|U, v|V)`, where `u|M` keeps the
    filters in `M` of the `(spatial, filters)` map `u`.

    When `cos(u|U, v|V)` is 0 the ratio is undefined and the smallest cosine
    after removal decides (the same filter as for any positive cosine).
    Ties go to the lower filter index.

    Returns:
        `(filter, ratio)`; `(None, nan)` if the nodes share no filter.
    """
    shared = np.array(sorted(set(u_filters) & set(v_filters)), dtype=int)
    if shared.size == 0:
        return None, float("nan")
    u = np.asarray(u, np.float64).reshape(-1, np.shape(u)[-1])
    v = np.asarray(v, np.float64).reshape(-1, np.shape(v)[-1])
    dots = (u * v).sum(axis=0)
    norm_u = (u * u).sum(axis=0)
    norm_v = (v * v).sum(axis=0)
    u_idx = np.array(sorted(u_filters), dtype=int)
    v_idx = np.array(sorted(v_filters), dtype=int)
    dot = dots[shared].sum()
    nu = norm_u[u_idx].sum()
    nv = norm_v[v_idx].sum()
    before = float(_masked_cosine(np.array(dot), np.array(nu), np.array(nv)))
    after = _masked_cosine(dot - dots[shared], nu - norm_u[shared], nv - norm_v[shared])
    if before == 0.0:
        best = int(np.argmin(after))
        return int(shared[best]), float("nan")
    ratio = after / before
    best = int(np.argmin(ratio))
    return int(shared[best]), float(ratio[best])


def prediction_tree(maps):
    """Algorithm 2 of `003`: the filter-wise hierarchical tree of one category.

    The images' feature maps start as children of the root, each reaching
    every filter. Repeatedly the two children of the root closest by
    `(1 - cos) / 2` are replaced by a super node, their average, linked to
    both; its critical filter (see `critical_filter`) is chosen among the
    filters both reach, and it reaches their common filters without it.

    The pseudocode loops "while a child of the root reaches more than one
    filter", which never ends once all images are merged into one node (a
    lone child cannot be paired) and cannot pick a critical filter for two
    nodes that share no filter. Here the loop also stops when fewer than two
    children are left, and pairs sharing no filter are never merged; if no
    pair is left, it stops. Ties go to the lower node ids.

    Args:
        maps: `(c, ..., d)` feature maps of the category's `c` images, filters
            on the last axis (spatial axes in between, or none).

    Returns:
        The root `TreeNode` (id -1).
    """
    maps = np.asarray(maps, np.float64)
    if maps.ndim < 2 or len(maps) < 1:
        raise ValueError(f"Expected maps of shape (images, ..., filters). Received: {maps.shape}")
    c, d = maps.shape[0], maps.shape[-1]
    maps = maps.reshape(c, -1, d)
    every = tuple(range(d))
    children = [TreeNode(id=i, filters=every, images=(i,), vector=maps[i]) for i in range(c)]
    next_id = c
    while len(children) >= 2 and any(len(child.filters) > 1 for child in children):
        flat = np.stack([child.vector.ravel() for child in children])
        dist = cosine_distance(flat, flat)
        best = None
        for a in range(len(children)):
            for b in range(a + 1, len(children)):
                if not set(children[a].filters) & set(children[b].filters):
                    continue
                key = (dist[a, b], children[a].id, children[b].id)
                if best is None or key < best[0]:
                    best = (key, a, b)
        if best is None:
            break
        _, a, b = best
        u, v = children[a], children[b]
        chosen, _ = critical_filter(u.vector, v.vector, u.filters, v.filters)
        node = TreeNode(
            id=next_id,
            children=[u, v],
            filters=tuple(sorted((set(u.filters) & set(v.filters)) - {chosen})),
            critical_filter=chosen,
            images=tuple(sorted(u.images + v.images)),
            distance=float(dist[a, b]),
            vector=(u.vector + v.vector) / 2,
        )
        next_id += 1
        children = [child for k, child in enumerate(children) if k not in (a, b)] + [node]
    return TreeNode(
        id=-1,
        children=children,
        filters=every,
        images=tuple(range(c)),
        vector=maps.mean(axis=0),
    )


@dataclass
class TreePath:
    """The way of one image down a `PredictionTree`.

    Attributes:
        nodes: ids of the nodes passed, from the root's child to a leaf.
        critical_filters: the critical filter of each super node passed.
        activated: whether the image activates each critical filter (its
            largest activation above the threshold).
        activations: that largest activation, per critical filter.
    """

    __repr__ = summary_repr

    nodes: list
    critical_filters: list
    activated: list
    activations: list


class PredictionTree(LayerEstimator, BaseEstimator):
    """Filter-wise prediction tree of one category at one layer (`003` Algorithm 2).

    `fit` takes the images of one category and builds the tree of
    `prediction_tree` from their feature maps at `layer`. `path` follows a
    new image down the tree, at every node to the closest child (the same
    `(1 - cos) / 2` distance), and reports the critical filters on the way
    and whether the image activates them.

    Args:
        model: a built `keras.Model`.
        layer: selector of a layer with filters (channels).
        activation_threshold: a filter counts as activated when its largest
            value over the feature map exceeds this.
        batch_size, verbose: streaming options.

    Attributes:
        root_: the root `TreeNode`; `nodes_`: every node by id.
        n_filters_: filters of the layer; `layer_path_`: the layer.

    Example:
        >>> tree = ki.PredictionTree(model, layer="conv4").fit(x[y == 7])  # doctest: +SKIP
        >>> tree.path(x_new[:1])[0].critical_filters                        # doctest: +SKIP
        [12, 3, 40]
    """

    def __init__(self, model, layer, activation_threshold=0.0, batch_size=32, verbose=0):
        self.model = model
        self.layer = layer
        self.activation_threshold = activation_threshold
        self.batch_size = batch_size
        self.verbose = verbose

    def _maps(self, X):
        return np.concatenate(list(self._stream(X, self.layer_path_)))

    def fit(self, X, y=None):
        """Build the tree from the feature maps of `X` (images of one category).

        Returns:
            self
        """

        check_number(self.activation_threshold, "activation_threshold")
        check_batch_size(self.batch_size)
        check_verbose(self.verbose)
        self.layer_path_ = one_output_layer(self._get_introspector(), self.layer).path
        X = self._check_x(X, reset=True)
        maps = self._maps(X)
        if len(maps) < 2:
            raise ValueError(
                f"Expected at least 2 images of the category. Received: n_samples={len(maps)}"
            )
        self.n_filters_ = maps.shape[-1]
        self.root_ = prediction_tree(maps)
        self.nodes_ = {node.id: node for node in self.root_.walk()}
        return self

    def path(self, X):
        """The path of each image of `X` down the tree.

        Returns:
            A list of `TreePath`, one per image.
        """
        check_is_fitted(self)
        X = self._check_x(X, reset=False)
        paths = []
        for image in self._maps(X):
            vector = image.reshape(-1, image.shape[-1]).astype(np.float64)
            peak = vector.max(axis=0)
            node, passed, critical = self.root_, [], []
            while node.children:
                flat = np.stack([child.vector.ravel() for child in node.children])
                node = node.children[int(np.argmin(cosine_distance(vector.ravel()[None], flat)))]
                passed.append(node.id)
                if node.critical_filter is not None:
                    critical.append(node.critical_filter)
            paths.append(
                TreePath(
                    nodes=passed,
                    critical_filters=critical,
                    activated=[bool(peak[f] > self.activation_threshold) for f in critical],
                    activations=[float(peak[f]) for f in critical],
                )
            )
        return paths

    def plot(self, ax=None, image_labels=None):
        """The tree of filters (`plotting.plot_prediction_tree`); the Axes."""
        from keras_introspect.plotting.grids import plot_prediction_tree

        check_is_fitted(self, "root_")
        return plot_prediction_tree(self, ax=ax, image_labels=image_labels)

    def _repr_html_(self) -> str:
        return _fitted_display(self, "root_")

    def _repr_mimebundle_(self, **kwargs) -> dict:  # (IPython asks this before the HTML)
        return {"text/plain": repr(self), "text/html": self._repr_html_()}

    def predict(self, X):
        """The leaf (fitted image index) each image of `X` reaches, `(n,)`."""
        return np.array([p.nodes[-1] for p in self.path(X)], dtype=np.int64)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        return tags


def _fitted_display(tree, attribute: str) -> str:
    """A fitted tree's notebook display (its picture); before `fit`, scikit-learn's
    diagram of the estimator."""
    from sklearn.exceptions import NotFittedError

    try:
        check_is_fitted(tree, attribute)
    except NotFittedError:
        from sklearn.utils import estimator_html_repr

        return estimator_html_repr(tree)
    return html_repr(tree)
