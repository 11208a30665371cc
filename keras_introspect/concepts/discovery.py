"""`ConceptDiscovery`: the concepts a layer uses for a class, found without labels.

Pieces of the class's images (fixed crops as in CRAFT, Fel et al. 2023, or
superpixels as in ACE, Ghorbani et al. 2019) are passed through the model;
their activations at the layer, averaged over the positions, are
non-negative points `A` (after a ReLU). They are factorised, `A ~ U W`
with `U, W >= 0` (NMF, CRAFT), or clustered (k-means, ACE; or the
Dirichlet-process Gaussian mixture of Malmgren-Hansen et al., which also
says how many concepts there are). The rows of `W` are the concept vectors;
any activation is then written on them by non-negative least squares, which
gives per-image coefficients (`transform`), per-pixel concept maps
(`concept_maps`), and, by removing concepts from the layer's activations and
watching the class score, their importance (`importance`: CRAFT's Sobol
total indices, or plain deletion).

Ghorbani, Wexler, Zou, Kim: "Towards Automatic Concept-based Explanations",
NeurIPS 2019. Fel, Picard, Bethune, Boissin, Vigouroux, Colin, Cadene,
Serre: "CRAFT: Concept Recursive Activation FacTorization for
Explainability", CVPR 2023.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from keras_introspect._memory import check_batch_size
from keras_introspect._repr import summary_repr
from keras_introspect._sklearn import ModelEstimatorMixin
from keras_introspect._validation import (
    check_number,
    check_one_of,
    check_positive_int,
    check_random_state,
    check_verbose,
)
from keras_introspect.concepts._engine import (
    check_images,
    intervened_scores,
    layer_info,
    nnls,
)
from keras_introspect.concepts.crops import PIECES, Pieces, default_patch_size
from keras_introspect.model import Introspector

METHODS = ("nmf", "kmeans", "dpgmm")
IMPORTANCE = ("sobol", "deletion")
# a piece whose pooled activation is below this share of the largest shows nothing
_EMPTY = 1e-6


@dataclasses.dataclass(repr=False)
class ConceptExemplars:
    """The pieces that express each concept most.

    Attributes:
        images: float32 `(n_concepts, k, h, w, C)` pieces, strongest first.
        indices: `(n_concepts, k)` piece indices (rows of `crop_origins_`).
        values: `(n_concepts, k)` their coefficients of the concept.
    """

    images: np.ndarray
    indices: np.ndarray
    values: np.ndarray

    __repr__ = summary_repr

    def plot(self, value_range=None, names=None):
        """A grid: one row of exemplars per concept."""
        from keras_introspect.plotting.concepts import plot_concept_exemplars

        return plot_concept_exemplars(self, value_range=value_range, names=names)


class ConceptDiscovery(ModelEstimatorMixin, TransformerMixin, BaseEstimator):
    """Discover the concepts of a layer from pieces of a class's images.

    Args:
        model: a built `keras.Model`.
        layer: selector of a layer with non-negative outputs (after a ReLU),
            also inside a nested backbone.
        method: `"nmf"` (CRAFT), `"kmeans"` (ACE) or `"dpgmm"` (a
            Dirichlet-process mixture, which chooses the number of concepts).
        n_concepts: concepts for `"nmf"` and `"kmeans"`; `None`: the number
            the Dirichlet-process mixture finds (`dpgmm_n_concepts_`).
        crops: `"patches"` (square crops on a grid) or `"superpixels"` (SLIC).
        patch_size: side of the crops (default: a quarter of the image).
        stride: of the crops' grid (default: 80 % of `patch_size`, as CRAFT).
        n_segments: superpixels per image (SLIC's target).
        fill: value of the pixels of a superpixel's box outside the
            superpixel: `"mean"` (the images' mean colour, ACE's grey) or a
            number.
        max_concepts: most components the Dirichlet process may use.
        alpha: concentration of the Dirichlet process (000's 0.2).
        min_share: a mixture component is a concept when it holds at least
            this share of the pieces (ACE also drops clusters with too few
            members); the others are mixtures of concepts or outliers.
        target: the class explained by `importance`: an index or a
            `targets` target; `None`: the class most often predicted for the
            images of `fit`.
        batch_size: images per forward pass.
        random_state: seed of the factorisation or clustering.
        verbose: 0 silent, 1 progress bars.

    Attributes:
        layer_path_: path of the layer; map_shape_: its spatial shape.
        n_concepts_: concepts found; concepts_: float32 `(n_concepts_,
            channels)` unit concept vectors, the most present first.
        crop_coefficients_: `(n_crops_, n_concepts_)` coefficients of the
            pieces (empty pieces, whose activation is zero, are left out).
        crop_labels_: the strongest concept of each piece.
        crop_origins_: `(n_crops_, 5)` image index, top, left, height, width.
        crops_: float32 thumbnails `(n_crops_, s, s, C)` of the pieces.
        dpgmm_n_concepts_: concepts the Dirichlet process found (`None` when
            it was not fitted: `method` nmf/kmeans with `n_concepts` given).
        target_: the class explained by `importance`.

    Example:
        >>> cd = ki.ConceptDiscovery(model, "conv3", method="dpgmm",
        ...                          random_state=0).fit(x_class)      # doctest: +SKIP
        >>> cd.n_concepts_                                              # doctest: +SKIP
        >>> maps = cd.concept_maps(x_class[:4])       # (4, H, W, n_concepts_)  # doctest: +SKIP
        >>> cd.importance(x_class)                    # Sobol total indices  # doctest: +SKIP
    """

    def __init__(
        self,
        model,
        layer,
        method="nmf",
        n_concepts=None,
        crops="patches",
        patch_size=None,
        stride=None,
        n_segments=15,
        fill="mean",
        max_concepts=20,
        alpha=0.2,
        min_share=0.05,
        target=None,
        batch_size=64,
        random_state=None,
        verbose=0,
    ):
        self.model = model
        self.layer = layer
        self.method = method
        self.n_concepts = n_concepts
        self.crops = crops
        self.patch_size = patch_size
        self.stride = stride
        self.n_segments = n_segments
        self.fill = fill
        self.max_concepts = max_concepts
        self.alpha = alpha
        self.min_share = min_share
        self.target = target
        self.batch_size = batch_size
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def _check_params(self, shape):
        check_one_of(self.method, "method", METHODS)
        check_one_of(self.crops, "crops", PIECES)
        if self.n_concepts is not None:
            check_positive_int(self.n_concepts, "n_concepts")
            if self.method == "dpgmm":
                raise ValueError(
                    "method='dpgmm' chooses the number of concepts; pass `max_concepts` "
                    f"(its upper bound) instead. Received: n_concepts={self.n_concepts}"
                )
        check_positive_int(self.max_concepts, "max_concepts")
        check_number(self.alpha, "alpha", minimum=0, strict=True)
        share = check_number(self.min_share, "min_share", minimum=0)
        if share >= 1:
            raise ValueError(f"Expected `min_share` in [0, 1). Received: {share}")
        if not (isinstance(self.fill, str) and self.fill == "mean"):
            check_number(self.fill, "fill")
        check_positive_int(self.n_segments, "n_segments")
        check_batch_size(self.batch_size)
        check_verbose(self.verbose)
        size = default_patch_size(shape) if self.patch_size is None else self.patch_size
        size = check_positive_int(size, "patch_size")
        if size > min(shape[:2]):
            raise ValueError(
                f"Expected `patch_size` at most the image size {shape[:2]}. Received: {size}"
            )
        stride = max(1, int(size * 0.8)) if self.stride is None else self.stride
        return size, check_positive_int(stride, "stride"), check_random_state(self.random_state)

    def fit(self, X, y=None):
        """Find the concepts in pieces of the images `X` (usually of one class).

        Args:
            X: images `(n, H, W, C)` as the model takes them.
            y: ignored.

        Returns:
            self
        """
        intro = Introspector(self.model)
        info = layer_info(intro, self.layer)
        X = check_images(X, "X", intro, images_only=True)
        size, stride, seed = self._check_params(X.shape[1:])
        self.layer_path_ = info.path
        self.input_shape_ = tuple(X.shape[1:])
        self.n_features_in_ = int(np.prod(self.input_shape_))
        self.map_shape_ = tuple(info.output_shape[1:-1])
        pieces = Pieces(X, self.crops, size, stride, self.n_segments, self.fill)
        if not len(pieces):
            raise ValueError("No piece of the images is large enough to use; lower n_segments")
        acts = self._pooled(intro, info, pieces)
        norms = np.linalg.norm(acts, axis=1)
        keep = np.flatnonzero(norms > _EMPTY * norms.max())
        if len(keep) < 2:
            raise ValueError(
                f"Expected at least 2 pieces with a non-zero activation in {info.path!r}. "
                f"Received: {len(keep)} of {len(pieces)}"
            )
        acts = acts[keep]
        directions = acts / np.linalg.norm(acts, axis=1, keepdims=True)
        labels = None
        self.dpgmm_n_concepts_ = None
        if self.method == "dpgmm" or self.n_concepts is None:
            labels = self._dpgmm_labels(directions, seed)
            self.dpgmm_n_concepts_ = int(labels.max()) + 1
        r = self.n_concepts or self.dpgmm_n_concepts_
        if self.method == "nmf":
            concepts, coefficients = self._nmf(acts, r, seed)
        else:
            if self.method == "kmeans":
                labels = self._kmeans_labels(directions, r, seed)
            concepts = np.stack([acts[labels == k].mean(axis=0) for k in range(labels.max() + 1)])
            concepts = concepts / np.linalg.norm(concepts, axis=1, keepdims=True)
            coefficients = nnls(acts, concepts)
        order = np.argsort(-coefficients.sum(axis=0), kind="stable")
        self.concepts_ = concepts[order].astype(np.float32)
        self.crop_coefficients_ = coefficients[:, order]
        self.n_concepts_ = len(order)
        self.crop_labels_ = self.crop_coefficients_.argmax(axis=1)
        self.crop_origins_ = pieces.origins[keep]
        self.n_crops_ = len(keep)
        thumb = (size, size)
        self.crops_ = pieces.resized(keep, thumb)
        self.target_ = self._default_target(X) if self.target is None else self.target
        return self

    def _pooled(self, intro, info, pieces):
        """Pooled activations `(n_pieces, channels)` of every piece, non-negative."""
        spatial = len(info.output_shape) > 2
        size = self.input_shape_[:2]
        indices = np.arange(len(pieces))
        acts = intro.activations(
            pieces.batches(indices, self.batch_size, size),
            info.path,
            batch_size=self.batch_size,
            verbose=self.verbose,
            pooling="avg" if spatial else None,
        )[info.path].astype(np.float64)
        low = float(acts.min())
        if low < -1e-6 * max(float(np.abs(acts).max()), 1e-12):
            raise ValueError(
                f"Concept discovery needs non-negative activations (after a ReLU). Received: "
                f"layer {info.path!r} with values down to {low:.3g}; choose its activation "
                "layer or a pooling layer after it"
            )
        return np.maximum(acts, 0.0)

    def _nmf(self, acts, r, seed):
        from sklearn.decomposition import NMF
        from sklearn.exceptions import ConvergenceWarning

        # scikit-learn's default start: NNDSVDA, random when r exceeds the channels
        reducer = NMF(n_components=r, max_iter=1000, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            u = reducer.fit_transform(acts)
        w = reducer.components_
        norms = np.linalg.norm(w, axis=1)
        norms[norms == 0] = 1.0
        return w / norms[:, None], (u * norms[None]).astype(np.float32)

    def _kmeans_labels(self, directions, r, seed):
        from sklearn.cluster import KMeans

        if len(directions) < r:
            raise ValueError(
                f"Expected at least n_concepts={r} non-empty pieces. Received: {len(directions)}"
            )
        return KMeans(n_clusters=r, n_init=10, random_state=seed).fit_predict(directions)

    def _dpgmm_labels(self, directions, seed):
        """Labels of the pieces' directions by a Dirichlet-process mixture.

        Components holding at least `min_share` of the pieces are the
        concepts, labelled 0, 1, ... by decreasing share; the pieces of the
        others are labelled -1.
        """
        from sklearn.exceptions import ConvergenceWarning

        from keras_introspect.cluster.dpgmm import DPGMM

        points = 10.0 * directions  # the paper's [0, 10] scale
        full = points.shape[1] <= 64
        variance = np.var(points, axis=0, ddof=1)
        ridge = 1e-6 * max(float(variance.mean()), 1e-12)
        prior = (
            np.atleast_2d(np.cov(points.T)) + ridge * np.eye(points.shape[1])
            if full
            else variance + ridge
        )
        mixture = DPGMM(
            n_components=min(self.max_concepts, len(points)),
            weight_concentration_prior=self.alpha,
            covariance_type="full" if full else "diag",
            covariance_prior=prior,
            max_iter=100,
            random_state=seed,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            labels = mixture.fit(points).predict(points)
        self.mixture_ = mixture
        counts = np.bincount(labels, minlength=mixture.n_components)
        kept = np.flatnonzero(counts >= max(1, self.min_share * len(labels)))
        kept = kept[np.argsort(-counts[kept], kind="stable")]
        compact = np.full(mixture.n_components, -1)
        compact[kept] = np.arange(len(kept))
        return compact[labels]

    def _default_target(self, X) -> int:
        out = []
        for start in range(0, len(X), self.batch_size):
            pred = self.model(X[start : start + self.batch_size], training=False)
            import tensorflow as tf

            out.append(np.asarray(tf.nest.flatten(pred)[0]))
        predicted = np.concatenate(out).reshape(len(X), -1).argmax(axis=1)
        return int(np.bincount(predicted).argmax())

    # ---------------------------------------------------------- transform
    def _intro_info(self):
        check_is_fitted(self, "concepts_")
        intro = Introspector(self.model)
        return intro, layer_info(intro, self.layer_path_)

    def _x(self, intro, x, name="x"):
        x = check_images(x, name, intro, images_only=True)
        if tuple(x.shape[1:]) != self.input_shape_:
            raise ValueError(
                f"Expected images of shape {self.input_shape_} as in fit. Received: {name} "
                f"with shape {x.shape}"
            )
        return x

    def transform(self, X):
        """Concept coefficients of whole images: their pooled activation on the concepts.

        Args:
            X: images `(n, H, W, C)`.

        Returns:
            float32 `(n, n_concepts_)`, non-negative.
        """
        intro, info = self._intro_info()
        X = self._x(intro, X, "X")
        pooling = "avg" if len(info.output_shape) > 2 else None
        acts = intro.activations(X, info.path, batch_size=self.batch_size, pooling=pooling)
        return nnls(np.maximum(acts[info.path], 0), self.concepts_)

    def coefficients(self, x) -> np.ndarray:
        """Concept coefficients at every position of the layer, `(n, *map_shape_, n_concepts_)`."""
        intro, info = self._intro_info()
        x = self._x(intro, x)
        acts = intro.activations(x, info.path, batch_size=self.batch_size)[info.path]
        flat = np.maximum(acts.reshape(-1, acts.shape[-1]), 0)
        return nnls(flat, self.concepts_).reshape(*acts.shape[:-1], self.n_concepts_)

    def concept_maps(self, x) -> np.ndarray:
        """Per-pixel concept maps: `coefficients` upsampled to the images (bilinear, as Grad-CAM).

        Returns:
            float32 `(n, H, W, n_concepts_)`.
        """
        import tensorflow as tf

        coefficients = self.coefficients(x)
        if coefficients.ndim != 4:
            raise ValueError(
                f"Concept maps need a layer with 2-D feature maps. Received: {self.layer_path_!r}"
                f" with output shape (n, {', '.join(map(str, self.map_shape_))}, channels)"
            )
        size = self.input_shape_[:2]
        return np.asarray(tf.image.resize(coefficients, size, method="bilinear"), np.float32)

    # --------------------------------------------------------- importance
    def importance(self, x, method="sobol", nb_design=32, target=None, per_image=False, seed=0):
        """Each concept's importance for the class, from the layer's activations of `x`.

        The layer's output is replaced by the concept reconstruction
        `(U * m) @ W` with masks `m` on the concepts, and the class score
        read at the model output.

        - `"sobol"` (CRAFT): Sobol total indices of the concepts, from
          `nb_design * (n_concepts_ + 1)` quasi-random masks per image
          (Jansen's estimator): the share of the score's variance that each
          concept accounts for, interactions included.
        - `"deletion"`: the drop of the score when the concept alone is
          removed, `f(U W) - f(U W without concept k)`.

        Args:
            x: images `(n, H, W, C)`.
            method: `"sobol"` or `"deletion"`.
            nb_design: `"sobol"`: base designs per image (a power of 2).
            target: the class (default: `target_`).
            per_image: return `(n, n_concepts_)` instead of the mean over images.
            seed: of the scrambled Sobol sequence.

        Returns:
            float64 `(n_concepts_,)` (or per image).
        """
        check_one_of(method, "method", IMPORTANCE)
        intro, info = self._intro_info()
        x = self._x(intro, x)
        target = self.target_ if target is None else target
        coefficients = self.coefficients(x)
        r = self.n_concepts_
        if method == "deletion":
            masks = np.concatenate([np.ones((1, r)), 1 - np.eye(r)]).astype(np.float32)
        else:
            masks = sobol_masks(r, check_positive_int(nb_design, "nb_design"), seed)
        rows = np.repeat(np.arange(len(x)), len(masks))
        scores = intervened_scores(
            intro,
            info,
            target,
            x,
            coefficients,
            self.concepts_,
            rows,
            np.tile(masks, (len(x), 1)),
            max(self.batch_size, len(masks)),
        ).reshape(len(x), len(masks))
        if method == "deletion":
            values = scores[:, :1] - scores[:, 1:]
        else:
            values = jansen_total(scores, nb_design, r)
        return values if per_image else values.mean(axis=0)

    def exemplars(self, k=8) -> ConceptExemplars:
        """The `k` pieces with the largest coefficient of each concept."""
        check_is_fitted(self, "concepts_")
        k = min(check_positive_int(k, "k"), self.n_crops_)
        indices = np.argsort(-self.crop_coefficients_, axis=0, kind="stable")[:k].T
        values = np.take_along_axis(self.crop_coefficients_.T, indices, axis=1)
        return ConceptExemplars(self.crops_[indices], indices, values)


def sobol_masks(d: int, nb_design: int, seed: int) -> np.ndarray:
    """The `nb_design * (d + 1)` masks of Jansen's estimator: the rows of `A`, then
    those of `A_B^(i)` (`A` with column `i` from `B`) for each concept `i`."""
    from scipy.stats import qmc

    if nb_design & (nb_design - 1):
        raise ValueError(f"Expected `nb_design` to be a power of 2. Received: {nb_design}")
    points = qmc.Sobol(2 * d, scramble=True, rng=seed).random_base2(int(np.log2(nb_design)))
    a, b = points[:, :d], points[:, d:]
    rows = [a]
    for i in range(d):
        mixed = a.copy()
        mixed[:, i] = b[:, i]
        rows.append(mixed)
    return np.concatenate(rows).astype(np.float32)


def jansen_total(scores, nb_design: int, d: int) -> np.ndarray:
    """Jansen's total-order indices `(..., d)` from scores `(..., nb_design * (d + 1))`."""
    scores = np.asarray(scores, np.float64)
    n = nb_design
    f_a = scores[..., :n]
    f_c = scores[..., n:].reshape(*scores.shape[:-1], d, n)
    variance = np.maximum(np.var(f_a, axis=-1, ddof=1 if n > 1 else 0), 1e-12)
    return np.sum((f_a[..., None, :] - f_c) ** 2, axis=-1) / (2 * n * variance[..., None])
