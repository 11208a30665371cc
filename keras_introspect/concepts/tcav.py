"""`TCAV`: testing with concept activation vectors (Kim et al. 2018).

For a class `k` and a concept `C`, the TCAV score is the fraction of the
class's images whose score for `k` increases along the concept's CAV (a
positive directional derivative). A CAV learnt from a concept that means
nothing to the model still points somewhere, so the score is compared with
scores of CAVs learnt between random image sets: `n_runs` CAVs of the
concept against random sets, `n_runs` of random sets against random sets,
and a two-sided t-test between the two groups of scores.
"""

from __future__ import annotations

import dataclasses
import numbers

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from keras_introspect._memory import check_batch_size
from keras_introspect._repr import Tabular, summary_repr, text_table
from keras_introspect._sklearn import ModelEstimatorMixin
from keras_introspect._validation import (
    check_number,
    check_one_of,
    check_positive_int,
    check_random_state,
    check_verbose,
)
from keras_introspect.concepts._engine import check_images, layer_gradients, layer_info
from keras_introspect.concepts.cav import CAV, CLASSIFIERS
from keras_introspect.model import Introspector


@dataclasses.dataclass(repr=False)
class TCAVResult(Tabular):
    """TCAV scores of every concept for every class.

    Attributes:
        layer: path of the layer.
        concepts: concept names.
        classes: the explained targets (class indices, or target reprs).
        scores: `{concept: (n_classes, n_runs)}` TCAV scores of the concept's CAVs.
        random_scores: `(n_classes, n_runs)` scores of random-vs-random CAVs.
        accuracies: `{concept: (n_runs,)}` held-out accuracies of the CAVs.
        p_values: `{concept: (n_classes,)}` two-sided t-test against the random scores.
        alpha: significance level of `significant`.
    """

    layer: str
    concepts: list
    classes: list
    scores: dict
    random_scores: np.ndarray
    accuracies: dict
    p_values: dict
    alpha: float

    __repr__ = summary_repr

    def significant(self, concept, k=0) -> bool:
        """Whether the concept's scores for class position `k` differ from random ones."""
        return bool(self.p_values[concept][k] < self.alpha)

    @property
    def table(self) -> list:
        """One row per (concept, class): mean and std of the scores, random ones, p-value."""
        rows = []
        for concept in self.concepts:
            for k, cls in enumerate(self.classes):
                s, r = self.scores[concept][k], self.random_scores[k]
                rows.append(
                    {
                        "concept": concept,
                        "class": cls,
                        "tcav": float(s.mean()),
                        "std": float(s.std()),
                        "random": float(r.mean()),
                        "random_std": float(r.std()),
                        "p_value": float(self.p_values[concept][k]),
                        "significant": self.significant(concept, k),
                        "cav_accuracy": float(self.accuracies[concept].mean()),
                    }
                )
        return rows

    def _repr_html_(self) -> str:
        return "<pre>" + text_table(self.table) + "</pre>"

    def plot(self, ax=None):
        """Bar chart of the scores (mean and std over runs), random scores alongside."""
        from keras_introspect.plotting.concepts import plot_tcav

        return plot_tcav(self, ax=ax)


def _p_value(a, b) -> float:
    """Two-sided Welch t-test; scores that do not vary give 0 (different) or 1 (equal)."""
    import warnings

    from scipy.stats import ttest_ind

    if np.std(a) == 0 and np.std(b) == 0:
        return 0.0 if np.mean(a) != np.mean(b) else 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nearly constant scores
        return float(ttest_ind(a, b, equal_var=False).pvalue)


class TCAV(ModelEstimatorMixin, BaseEstimator):
    """Concept sensitivity of classes, tested against random concepts (Kim et al. 2018).

    `fit(concepts, random)` learns, for every concept, `n_runs` CAVs of the
    concept's images against random sets drawn from `random`, and `n_runs`
    CAVs of random sets against other random sets (the null). `evaluate(x)`
    computes, for each class of `target`, the gradient of its score with
    respect to the layer once per image, and from it the TCAV score of every
    CAV: the fraction of images with a positive directional derivative.

    Args:
        model: a built `keras.Model`.
        layer: layer selector, also inside a nested backbone.
        target: a class index, a list of class indices (one row each), or a
            `keras_introspect.targets` target.
        n_runs: CAVs per concept, and random CAVs.
        pooling, classifier, C, standardize, test_size: of each `CAV`.
        alpha: significance level of the t-test.
        batch_size: images per forward pass.
        random_state: seed of the random sets and of the classifiers.
        verbose: 0 silent.

    Attributes:
        layer_path_: path of the layer.
        concepts_: concept names.
        cavs_: `{concept: [CAV, ...]}` and `random_cavs_`: `[CAV, ...]`.

    Example:
        >>> tcav = ki.TCAV(model, "conv3", target=2, n_runs=10, random_state=0)  # doctest: +SKIP
        >>> result = tcav.fit({"stripes": x_stripes}, x_random).evaluate(x_class2)  # doctest: +SKIP
        >>> print(result)                                            # doctest: +SKIP
    """

    def __init__(
        self,
        model,
        layer,
        target,
        n_runs=10,
        pooling="avg",
        classifier="sgd",
        C=1.0,
        standardize=True,
        test_size=0.33,
        alpha=0.05,
        batch_size=32,
        random_state=None,
        verbose=0,
    ):
        self.model = model
        self.layer = layer
        self.target = target
        self.n_runs = n_runs
        self.pooling = pooling
        self.classifier = classifier
        self.C = C
        self.standardize = standardize
        self.test_size = test_size
        self.alpha = alpha
        self.batch_size = batch_size
        self.random_state = random_state
        self.verbose = verbose

    def _cav(self, seed):
        return CAV(
            self.model,
            self.layer,
            pooling=self.pooling,
            classifier=self.classifier,
            C=self.C,
            standardize=self.standardize,
            test_size=self.test_size,
            batch_size=self.batch_size,
            random_state=seed,
        )

    def _targets(self):
        target = self.target
        if isinstance(target, (list, tuple, np.ndarray)):
            if len(target) == 0:
                raise ValueError("Expected at least one class in `target`. Received: []")
            return list(target), [int(t) for t in target]
        label = int(target) if isinstance(target, numbers.Integral) else repr(target)
        return [target], [label]

    def fit(self, concepts, random):
        """Learn the concepts' CAVs and the random CAVs.

        Args:
            concepts: `{name: images}` of every concept, or one array of
                images (named "concept").
            random: images of no concept in particular (at least 4). Each
                run draws random sets from them of the size of the concept
                set, or half of them when there are fewer: as many random
                images as twice the concept images are best.

        Returns:
            self
        """
        check_positive_int(self.n_runs, "n_runs")
        check_one_of(self.pooling, "pooling", ("avg", None))
        check_one_of(self.classifier, "classifier", CLASSIFIERS)
        check_number(self.alpha, "alpha", minimum=0, strict=True)
        check_batch_size(self.batch_size)
        check_verbose(self.verbose)
        seed = check_random_state(self.random_state)
        if not isinstance(concepts, dict):
            concepts = {"concept": concepts}
        if not concepts:
            raise ValueError("Expected at least one concept. Received: concepts={}")
        rng = np.random.default_rng(seed)
        probe = self._cav(None)
        self.layer_path_ = layer_info(Introspector(self.model), self.layer).path
        pool = probe.features(random)
        if len(pool) < 4:
            raise ValueError(
                f"Expected at least 4 random images (two random sets of 2). Received: {len(pool)}"
            )
        self.concepts_ = [str(name) for name in concepts]
        self.cavs_ = {}
        for name, images in concepts.items():
            positive = probe.features(images)
            m = min(len(positive), len(pool) // 2)
            runs = []
            for _ in range(self.n_runs):
                negative = pool[rng.choice(len(pool), m, replace=False)]
                runs.append(self._fit_pair(positive, negative, int(rng.integers(2**31 - 1))))
            self.cavs_[str(name)] = runs
        m = min(max(len(v) for v in concepts.values()), len(pool) // 2)
        self.random_cavs_ = []
        for _ in range(self.n_runs):
            order = rng.permutation(len(pool))
            first, second = pool[order[:m]], pool[order[m : 2 * m]]
            self.random_cavs_.append(self._fit_pair(first, second, int(rng.integers(2**31 - 1))))
        return self

    def _fit_pair(self, positive, negative, seed):
        features = np.concatenate([positive, negative])
        y = np.r_[np.ones(len(positive), int), np.zeros(len(negative), int)]
        return self._cav(seed).fit_features(features, y, seed)

    def evaluate(self, x) -> TCAVResult:
        """TCAV scores of the fitted concepts for the images `x` of the explained class(es).

        Args:
            x: images `(n, ...)` (usually of the class explained).

        Returns:
            `TCAVResult`.
        """
        check_is_fitted(self, "cavs_")
        intro = Introspector(self.model)
        info = layer_info(intro, self.layer_path_)
        x = check_images(x, "x", intro)
        targets, labels = self._targets()
        vectors = {c: np.stack([cav.vector_ for cav in runs]) for c, runs in self.cavs_.items()}
        null = np.stack([cav.vector_ for cav in self.random_cavs_])
        scores = {c: [] for c in self.concepts_}
        random_scores = []
        for t in targets:
            grads = layer_gradients(intro, info, t, x, self.batch_size, self.pooling)
            for c in self.concepts_:
                scores[c].append(np.mean(grads @ vectors[c].T > 0, axis=0))
            random_scores.append(np.mean(grads @ null.T > 0, axis=0))
        random_scores = np.array(random_scores)
        scores = {c: np.array(s) for c, s in scores.items()}
        p_values = {
            c: np.array([_p_value(s[k], random_scores[k]) for k in range(len(targets))])
            for c, s in scores.items()
        }
        accuracies = {c: np.array([v.accuracy_ for v in runs]) for c, runs in self.cavs_.items()}
        return TCAVResult(
            layer=self.layer_path_,
            concepts=list(self.concepts_),
            classes=labels,
            scores=scores,
            random_scores=random_scores,
            accuracies=accuracies,
            p_values=p_values,
            alpha=float(self.alpha),
        )
