"""scikit-learn glue shared by the estimators that wrap a Keras model.

Private scikit-learn helpers are used here only, so a change in scikit-learn
needs one fix.
"""

from __future__ import annotations

from sklearn.base import clone


class ModelEstimatorMixin:
    """For estimators whose `model` parameter is a Keras model.

    - `clone` shares the Keras model instead of deep-copying it (the
      estimators never change the model, and copying one is slow and loses
      compiled state);
    - compiled TensorFlow functions live in the model's session
      (`ModelSession`), never on the estimator, so pickling needs no care.
    """

    def __sklearn_clone__(self):
        params = self.get_params(deep=False)
        params = {k: v if k == "model" else clone(v, safe=False) for k, v in params.items()}
        return type(self)(**params)


def weighted_log_prob(mixture, X):
    """`(n, n_components)` log of weight times density, before normalisation.

    scikit-learn's mixtures compute it privately; `predict_proba` would
    underflow to zero for points far from every component. `DPGMM` defines
    the same method.
    """
    return mixture._estimate_weighted_log_prob(X)
