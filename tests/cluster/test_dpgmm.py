"""The TensorFlow DPGMM against scikit-learn's BayesianGaussianMixture."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import BayesianGaussianMixture
from sklearn.utils.estimator_checks import parametrize_with_checks

from keras_introspect.cluster import DPGMM


def _blobs(seed=0, dims=5):
    rng = np.random.default_rng(seed)
    spec = [(0.0, 0.5, 300), (3.0, 1.0, 500), (8.0, 0.3, 200), (-4.0, 0.8, 400)]
    x = np.concatenate([rng.normal(c, s, (n, dims)) for c, s, n in spec])
    y = np.repeat(np.arange(4), [n for _, _, n in spec])
    return x, y


def _fit_both(x, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = BayesianGaussianMixture(
            weight_concentration_prior_type="dirichlet_process", **params
        ).fit(x)
        ours = DPGMM(**params).fit(x)
    return reference, ours


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_same_lower_bound_and_labels_as_scikit_learn(covariance_type):
    x, _ = _blobs()
    params = dict(
        n_components=12,
        weight_concentration_prior=0.2,
        covariance_type=covariance_type,
        random_state=0,
        max_iter=150,
    )
    reference, ours = _fit_both(x, **params)
    # same k-means start, same updates: the whole trajectory agrees
    assert ours.lower_bound_ == pytest.approx(reference.lower_bound_, rel=0.01)
    n = min(len(reference.lower_bounds_), len(ours.lower_bounds_))
    np.testing.assert_allclose(ours.lower_bounds_[:n], reference.lower_bounds_[:n], rtol=1e-4)
    assert adjusted_rand_score(reference.predict(x), ours.predict(x)) >= 0.95
    np.testing.assert_allclose(ours.weights_, reference.weights_, atol=1e-3)
    np.testing.assert_allclose(
        ours.score_samples(x), reference.score_samples(x), rtol=1e-3, atol=1e-3
    )
    np.testing.assert_allclose(ours.predict_proba(x).sum(axis=1), 1.0, rtol=1e-6)
    assert ours.converged_ == reference.converged_


def test_same_result_from_random_start():
    x, _ = _blobs(seed=1, dims=3)
    reference, ours = _fit_both(
        x, n_components=8, init_params="random", random_state=5, max_iter=60
    )
    assert ours.lower_bound_ == pytest.approx(reference.lower_bound_, rel=0.01)
    assert adjusted_rand_score(reference.predict(x), ours.predict(x)) >= 0.95


def test_four_blobs_leave_four_components():
    x, y = _blobs()
    gmm = DPGMM(n_components=20, weight_concentration_prior=0.2, random_state=0).fit(x)
    assert (gmm.weights_ > 0.01).sum() == 4
    assert adjusted_rand_score(y, gmm.predict(x)) >= 0.95


def test_results_do_not_depend_on_chunk_size():
    x, _ = _blobs(dims=4)
    a = DPGMM(n_components=6, random_state=0, max_iter=20, chunk_size=4096).fit(x)
    b = DPGMM(n_components=6, random_state=0, max_iter=20, chunk_size=97).fit(x)
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=1e-5)
    np.testing.assert_array_equal(a.predict(x), b.predict(x))


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_scores_of_some_components_are_those_columns(covariance_type):
    x, _ = _blobs(dims=40)  # 40 dims: the full whitening's split product runs too
    gmm = DPGMM(n_components=8, covariance_type=covariance_type, random_state=0, max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gmm.fit(x)
    full = gmm._estimate_weighted_log_prob(x)
    some = gmm._estimate_weighted_log_prob(x, [5, 0, 3])
    np.testing.assert_allclose(some, full[:, [5, 0, 3]], rtol=1e-5, atol=1e-3)


def test_fit_predict_equals_predict_and_pickles():
    x, _ = _blobs(dims=2)
    gmm = DPGMM(n_components=5, random_state=0)
    labels = gmm.fit_predict(x)
    np.testing.assert_array_equal(labels, gmm.predict(x))
    restored = pickle.loads(pickle.dumps(gmm))
    np.testing.assert_array_equal(restored.predict(x), labels)


def test_errors():
    x, _ = _blobs(dims=2)
    with pytest.raises(NotFittedError):
        DPGMM().predict(x)
    with pytest.raises(ValueError, match="covariance_type"):
        DPGMM(covariance_type="tied").fit(x)
    with pytest.raises(ValueError, match="at least n_components=50 points"):
        DPGMM(n_components=50).fit(x[:10])
    with pytest.raises(ValueError, match="degrees_of_freedom_prior"):
        DPGMM(degrees_of_freedom_prior=0.5).fit(x)
    with pytest.raises(ValueError, match="ill-defined"):
        # collapsed points with no regularisation at all
        DPGMM(n_components=2, reg_covar=0.0, covariance_prior=np.zeros((2, 2))).fit(
            np.ones((20, 2))
        )
    fitted = DPGMM(n_components=3, random_state=0).fit(x)
    with pytest.raises(ValueError, match="features"):
        fitted.predict(x[:, :1])


@parametrize_with_checks(
    [DPGMM(n_components=3, random_state=0, max_iter=20)],
    expected_failed_checks=lambda est: {},
)
def test_sklearn_common_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)
