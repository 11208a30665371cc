"""What the estimators of `cluster/` share: the model, the input checks,
the activation source of one layer, the sample, the value scaling and the
mixture behind them.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from keras_introspect._data import as_array, is_stream
from keras_introspect._memory import check_batch_size
from keras_introspect._sklearn import ModelEstimatorMixin
from keras_introspect._sources import ActivationSource, ModelSource, is_array_source
from keras_introspect._validation import (
    check_finite,
    check_number,
    check_one_of,
    check_positive_int,
    check_verbose,
)
from keras_introspect.exceptions import KerasIntrospectWarning
from keras_introspect.model import Introspector


class LayerEstimator(ModelEstimatorMixin):
    """Mixin for estimators that read one layer of a Keras `model`."""

    def _get_introspector(self) -> Introspector:
        # the model's shared session: analysed once, compiled scans reused
        return Introspector(self.model)

    def _check_x(self, X, reset: bool):
        """`X` as numpy (streams pass through); records the sample shape on `reset`."""
        if is_stream(X):
            return X
        X = as_array(X, "X")
        name = type(self).__name__
        specs = self._get_introspector().input_specs
        if specs is not None and len(specs) != 1:
            raise ValueError(
                f"{name} takes models with one input. Received: a model with {len(specs)} inputs"
            )
        rank = len(specs[0].shape) if specs is not None else X.ndim
        if X.ndim != rank:
            raise ValueError(
                f"Expected {rank}D input of shape (n_samples, ...) as the model takes "
                f"{specs[0].shape if specs else 'it'}. Received: X with shape {X.shape}. "
                "Reshape your data: a single sample as X[np.newaxis]"
            )
        if X.shape[0] == 0:
            raise ValueError(
                f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 is required."
            )
        if 0 in X.shape[1:]:
            raise ValueError(
                f"Found array with 0 feature(s) (shape={X.shape}) while a minimum of 1 is required."
            )
        check_finite(X, "X")
        if reset:
            self.input_shape_ = tuple(X.shape[1:])
            self.n_features_in_ = int(np.prod(self.input_shape_))
        elif self.input_shape_ is not None and tuple(X.shape[1:]) != self.input_shape_:
            if X.ndim == 2:
                raise ValueError(
                    f"X has {X.shape[1]} features, but {name} is expecting "
                    f"{self.n_features_in_} features as input."
                )
            raise ValueError(
                f"Expected samples of shape {self.input_shape_} as in fit. Received: "
                f"X with shape {X.shape}"
            )
        return X

    def _source(self, X, info, reset: bool) -> ActivationSource:
        """The activations of layer `info` for `X`, as an `ActivationSource`.

        Stored activations (a dask or Zarr array, a store's path) are opened
        and checked by `keras_introspect.distributed`, imported only then;
        images are checked by `_check_x` (`reset`: the input shape is
        recorded, for stored activations the model's).
        """
        if is_array_source(X):
            from keras_introspect.distributed.source import DaskSource

            source = DaskSource.open(X, info, type(self).__name__, self.verbose)
            if reset:
                self._record_model_input_shape()
            return source
        X = self._check_x(X, reset=reset)
        return ModelSource(self._get_introspector(), info, X, self.batch_size, self.verbose)

    def _record_model_input_shape(self) -> None:
        """The image shape the model takes, for later calls with images (a fit that
        saw activations only)."""
        specs = self._get_introspector().input_specs
        shape = tuple(specs[0].shape[1:]) if specs else None
        if shape is not None and None not in shape:
            self.input_shape_ = shape
            self.n_features_in_ = math.prod(shape)
        else:
            self.input_shape_ = None

    def _stream(self, X, path, reduce=None, key=()):
        """Yield one numpy array per batch: the layer's output, channels last.

        `reduce(tensor) -> tensor` runs on the device before the copy back;
        `key` names what it computes (the compiled scan is shared by every
        estimator of the model with the same key), so `reduce` must read
        nothing but the values in `key`.
        """
        intro = self._get_introspector()
        source = ModelSource(intro, intro.layer(path), X, self.batch_size, self.verbose)
        for _, chunk in source.iter_chunks(reduce, key):
            yield chunk


def pool(activation, pooling):
    """`pooling` (`None`, `"avg"`, `"max"`) over the spatial axes of a tensor."""
    from keras_introspect._tensor import reduce_spatial

    return activation if pooling is None else reduce_spatial(activation, pooling)


class Scaling:
    """Affine map of activation values onto `scale`, learned from a range.

    The paper rescales every layer's values to [0, 10] before the mixture is
    fitted (`000` §2); the range is the minimum and maximum seen in `fit`.
    """

    def __init__(self, scale):
        self.scale = scale
        self.low = np.inf
        self.high = -np.inf

    def update(self, values) -> None:
        if values.size:
            self.low = min(self.low, float(values.min()))
            self.high = max(self.high, float(values.max()))

    def _factor(self):
        span = self.high - self.low
        return (self.scale[1] - self.scale[0]) / (span if span > 0 else 1.0)

    def __call__(self, values):
        if self.scale is None:
            return values
        return (values - self.low) * self._factor() + self.scale[0]

    def inverse(self, values):
        if self.scale is None:
            return values
        return (values - self.scale[0]) / self._factor() + self.low


def check_scale(scale):
    if scale is None:
        return None
    if not isinstance(scale, (tuple, list)) or len(scale) != 2:
        raise ValueError(f"Expected `scale` to be None or (low, high). Received: scale={scale!r}")
    low = check_number(scale[0], "scale[0]")
    high = check_number(scale[1], "scale[1]")
    if not high > low:
        raise ValueError(f"Expected scale[0] < scale[1]. Received: scale={scale!r}")
    return (low, high)


class SmallestKeys:
    """A seeded uniform sample without replacement, drawn while streaming.

    Every item added gets a uniform key from `random`, in arrival order; the
    `size` items with the smallest keys are kept (all when `size` is
    `None`), in arrival order. The sample depends only on the order of the
    items, not on how they are split into calls to `add`, so a sample drawn
    while streaming is the one `sample_indices` chooses by index.
    """

    def __init__(self, size, random):
        self.size = size
        self.random = random
        self.keys = np.empty(0)
        self.items = None

    def add(self, items) -> None:
        self.keys = np.concatenate([self.keys, self.random.random_sample(len(items))])
        self.items = items if self.items is None else np.concatenate([self.items, items])
        if self.size is not None and len(self.keys) > self.size:
            keep = np.sort(np.argpartition(self.keys, self.size)[: self.size])
            self.keys, self.items = self.keys[keep], self.items[keep]


#: keys drawn per piece when a sample is chosen by index (8 MB of float64)
KEY_PIECE = 2**20


def sample_indices(random, n_points, sample_size):
    """Sorted indices of the points `SmallestKeys` keeps when they arrive in index order.

    The same seeded draw, over the points' indices instead of their values,
    a piece at a time, so memory stays bounded whatever `n_points`: when the
    number of points is known, each chunk of a source is asked for its share
    only, and `random` is left where the streaming draw leaves it.
    """
    sample = SmallestKeys(sample_size, random)
    for start in range(0, n_points, KEY_PIECE):
        sample.add(np.arange(start, min(start + KEY_PIECE, n_points)))
    return sample.items


def check_range(low, high, name) -> None:
    """Refuse activations whose range is not finite (NaN or infinity in them)."""
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(
            f"Input contains NaN or infinity: the activations given to {name} range over "
            f"[{low}, {high}]"
        )


class MixtureMixin:
    """Fit a clustering of points and predict compact labels.

    Labels are `0 .. n_clusters_ - 1`, ordered by decreasing weight: the
    mixture's components (or k-means centres) that own at least one of the
    fitted points, the largest first. Points are assigned to the most
    probable of those, so a component left empty by `fit` never appears.
    """

    def _check_mixture_params(self):
        check_one_of(self.method, "method", ("dpgmm", "kmeans", "gmm"))
        check_one_of(self.backend, "backend", ("tensorflow", "sklearn"))
        check_one_of(self.covariance_type, "covariance_type", ("full", "diag", "tied", "spherical"))
        check_batch_size(self.batch_size)
        check_verbose(self.verbose)
        check_positive_int(self.max_iter, "max_iter")
        if self.method == "dpgmm":
            check_positive_int(self.max_components, "max_components")
            check_number(self.alpha, "alpha", minimum=0, strict=True)
            min_weight = check_number(self.min_weight, "min_weight", minimum=0.0)
            if not min_weight < 1:
                raise ValueError(
                    f"Expected 0 <= min_weight < 1. Received: min_weight={self.min_weight!r}"
                )
            check_one_of(self.init_params, "init_params", INIT_PARAMS)
            check_one_of(self.covariance_prior, "covariance_prior", COVARIANCE_PRIORS)
            check_number(self.reg_covar, "reg_covar", minimum=0.0)
            if self.backend == "tensorflow" and self.covariance_type not in ("full", "diag"):
                raise ValueError(
                    "backend='tensorflow' fits covariance_type 'full' or 'diag'. Received: "
                    f"covariance_type={self.covariance_type!r}; use backend='sklearn' for it"
                )
        elif self.n_clusters is None:
            raise ValueError(f"method={self.method!r} needs `n_clusters` (an integer >= 1)")
        else:
            check_positive_int(self.n_clusters, "n_clusters")
        return check_scale(self.scale)

    def _make_mixture(self, scaled):
        if self.method == "kmeans":
            from sklearn.cluster import KMeans

            return KMeans(n_clusters=self.n_clusters, n_init=1, random_state=self.random_state)
        if self.method == "gmm":
            from sklearn.mixture import GaussianMixture

            return GaussianMixture(
                n_components=self.n_clusters,
                covariance_type=self.covariance_type,
                max_iter=self.max_iter,
                random_state=self.random_state,
            )
        kwargs = dict(
            n_components=min(self.max_components, scaled.shape[0]),
            covariance_prior=_covariance_prior(scaled, self.covariance_type, self.covariance_prior),
            weight_concentration_prior=self.alpha,
            covariance_type=self.covariance_type,
            init_params=self.init_params,
            reg_covar=self.reg_covar,
            max_iter=self.max_iter,
            random_state=self.random_state,
        )
        if self.backend == "tensorflow":
            from keras_introspect.cluster.dpgmm import DPGMM

            return DPGMM(verbose=self.verbose, **kwargs)
        from sklearn.mixture import BayesianGaussianMixture

        return BayesianGaussianMixture(
            weight_concentration_prior_type="dirichlet_process", **kwargs
        )

    def _fit_points(self, points, scaling: Scaling, stacklevel: int = 3):
        """Fit the mixture on `points` `(n, features)` (raw values); returns their labels.

        `stacklevel` points the convergence warning at the user's call.
        """
        from sklearn.exceptions import ConvergenceWarning

        if points.shape[0] < 2:
            raise ValueError(
                f"Expected at least 2 points to cluster. Received: n_samples={points.shape[0]}"
            )
        scaled = scaling(points.astype(np.float64))
        self.mixture_ = self._make_mixture(scaled)
        if self.method == "kmeans" and points.shape[0] < self.n_clusters:
            raise ValueError(
                f"Expected at least n_clusters={self.n_clusters} points. "
                f"Received: {points.shape[0]}"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.mixture_.fit(scaled)
        components = self._components(scaled)
        counts = np.bincount(components.argmax(axis=1), minlength=components.shape[1])
        self._keep_used(counts, scaling, stacklevel + 1, components)
        return self._labels(components)

    def _keep_used(self, counts, scaling: Scaling, stacklevel: int, scores=None) -> None:
        """After `mixture_.fit`: its convergence, and the clusters that hold points.

        `counts` are the fitted points per component. The components holding
        any are counted in `n_components_used_`; with `method="dpgmm"`, those
        owning at least `min_weight` of the points become the labels (the
        points of the others go to the most probable of them, by `scores`),
        the largest weight first (k-means: the share of points), with their
        centres in activation units and `shares_`, their share of the fitted
        points once those are reassigned.
        """
        mixture = self.mixture_
        self.n_iter_ = int(mixture.n_iter_)
        if self.method == "kmeans":
            self.converged_ = bool(mixture.n_iter_ < mixture.max_iter)
        else:
            self.converged_ = bool(mixture.converged_)
        if not self.converged_:
            warnings.warn(
                f"{type(self).__name__}: the {self.method} fit stopped at max_iter="
                f"{mixture.max_iter} before its convergence test passed; the clusters are "
                "usable, a larger max_iter refines them",
                KerasIntrospectWarning,
                stacklevel=stacklevel,
            )
        weight = counts / counts.sum() if self.method == "kmeans" else mixture.weights_
        used = np.flatnonzero(counts)
        self.n_components_used_ = len(used)
        shares = counts / counts.sum()
        if self.method == "dpgmm" and scores is not None:
            kept = used[shares[used] >= self.min_weight]
            used = kept if len(kept) else np.array([int(counts.argmax())])
        used = used[np.argsort(-weight[used], kind="stable")]
        if scores is not None:
            shares = np.bincount(scores[:, used].argmax(axis=1), minlength=len(used))
            self.shares_ = shares / shares.sum()
        else:
            self.shares_ = shares[used]
        self.components_ = used
        self.n_clusters_ = len(used)
        self.weights_ = weight[used]
        centres = mixture.cluster_centers_ if self.method == "kmeans" else mixture.means_
        self.cluster_centers_ = scaling.inverse(np.asarray(centres)[used])
        self._scaling = scaling

    def _components(self, scaled):
        """Per point, a score per component: larger is more probable."""
        return PointLabeler(self.method, self.mixture_, None, None).scores(scaled)

    def _labels(self, components):
        """Compact labels from per-component scores: the most probable used component."""
        return components[:, self.components_].argmax(axis=1).astype(np.int32)

    def _labeler(self) -> PointLabeler:
        """The labeller of raw points, sent with every chunk a source labels."""
        return PointLabeler(self.method, self.mixture_, self.components_, self._scaling)


class PointLabeler:
    """Labels of raw points after a fit: the scaling, the clustering, the used components.

    Small and picklable: the Dask paths send it to the workers, which label
    their chunks with exactly the arithmetic of the in-memory path.
    """

    def __init__(self, method, mixture, components, scaling):
        self.method = method
        # k-means needs only its centres (scikit-learn's and dask-ml's alike)
        self.mixture = mixture if method != "kmeans" else None
        self.centers = np.asarray(mixture.cluster_centers_) if method == "kmeans" else None
        self.components = components
        self.scaling = scaling

    def scores(self, scaled):
        """`(n, n_components)`: larger is more probable."""
        if self.method == "kmeans":
            from sklearn.metrics.pairwise import euclidean_distances

            return -euclidean_distances(scaled, self.centers)
        from keras_introspect._sklearn import weighted_log_prob

        return weighted_log_prob(self.mixture, scaled)

    #: points labelled at once: bounds the float64 copies whatever the batch or chunk
    SLICE = 2**16

    def __call__(self, points):
        """Compact labels `(n,)` int32 of raw points `(n, features)`."""
        labels = np.empty(len(points), dtype=np.int32)
        for start in range(0, len(points), self.SLICE):
            part = points[start : start + self.SLICE]
            labels[start : start + len(part)] = self._label(part)
        return labels

    def _label(self, points):
        from keras_introspect.cluster.dpgmm import DPGMM

        scaled = self.scaling(points.astype(np.float64))
        if isinstance(self.mixture, DPGMM):
            # DPGMM scores only the used components (often a third of them)
            scores = self.mixture._estimate_weighted_log_prob(scaled, self.components)
        else:
            scores = self.scores(scaled)[:, self.components]
        return scores.argmax(axis=1)


#: `init_params` of the mixtures (scikit-learn's names)
INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")
#: `covariance_prior` of the clusterers: see `_covariance_prior`
COVARIANCE_PRIORS = ("data", "unit")


def _covariance_prior(points, covariance_type, kind="data"):
    """The prior of the components' covariances (the Wishart scale).

    `"data"`: scikit-learn's default, the data covariance, with a small
    ridge. The data covariance is singular when the points span fewer
    dimensions than they have (flat image regions, dead channels);
    components left without points then have a singular covariance and the
    fit fails. A ridge of 1e-6 of the mean variance keeps them well defined
    and changes nothing measurable otherwise.

    `"unit"`: the identity in the units of `scale` (a variance of 1 per
    feature on the [0, 10] scale of `000`), whatever the data's spread: a
    cluster narrower than that needs many points to be kept apart.
    """
    if points.shape[0] < 2:
        return None
    if kind == "unit":
        d = points.shape[1]
        if covariance_type in ("full", "tied"):
            return np.eye(d)
        return np.ones(d) if covariance_type == "diag" else 1.0
    variance = np.var(points, axis=0, ddof=1)
    ridge = 1e-6 * max(float(variance.mean()), 1e-12)
    if covariance_type in ("full", "tied"):
        return np.atleast_2d(np.cov(points.T)) + ridge * np.eye(points.shape[1])
    if covariance_type == "diag":
        return variance + ridge
    return float(variance.mean()) + ridge
