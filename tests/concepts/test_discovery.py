"""ConceptDiscovery recovers planted concepts and ranks the deciding one first."""

import keras
import numpy as np
import pytest
from planted_concepts import make_planted_model, planted_images
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score

import keras_introspect as ki
from keras_introspect.concepts.discovery import jansen_total, sobol_masks


@pytest.fixture(scope="module")
def planted_model():
    return make_planted_model()


@pytest.fixture(scope="module")
def planted():
    return planted_images(16, seed=0)


def _ari(cd, x, masks):
    """ARI of the strongest concept at every planted pixel against the planted squares."""
    labels = cd.concept_maps(x).argmax(axis=-1)
    planted_pixels = masks > 0
    return adjusted_rand_score(masks[planted_pixels], labels[planted_pixels])


def _concept_of(cd, channel):
    """The concept whose vector is largest on the colour channel (0 red, 1 green)."""
    return int(np.argmax(cd.concepts_[:, channel]))


@pytest.mark.parametrize(
    "method, crops", [("nmf", "patches"), ("dpgmm", "patches"), ("dpgmm", "superpixels")]
)
def test_planted_concepts_are_recovered_and_ranked(planted_model, planted, method, crops):
    x, masks = planted
    cd = ki.ConceptDiscovery(
        planted_model, "pool", method=method, crops=crops, patch_size=8, fill=0.0, random_state=0
    ).fit(x)
    # n_concepts=None: the Dirichlet process counts the two planted squares
    assert cd.n_concepts_ == 2 and cd.dpgmm_n_concepts_ == 2
    assert _ari(cd, x, masks) >= 0.9
    red, green = _concept_of(cd, 0), _concept_of(cd, 1)
    assert {red, green} == {0, 1}
    # the red square decides class 0 (its logit reads the red channel only), the green one class 1
    for target, deciding in ((0, red), (1, green)):
        sobol = cd.importance(x, target=target)
        deletion = cd.importance(x, method="deletion", target=target)
        assert np.argmax(sobol) == deciding and np.argmax(deletion) == deciding
        # the other square does not enter the class's logit: (almost) no effect
        assert sobol[1 - deciding] < 0.01 * sobol[deciding]
        assert deletion[1 - deciding] < 0.01 * deletion[deciding]


def test_deletion_is_the_logit_drop_worked_out_by_hand(planted_model, planted):
    """Logit 0 is 10 x the mean over the pooled map of the red activation. With the concepts'
    reconstruction in place, deleting the red concept removes exactly its share."""
    x, _ = planted
    cd = ki.ConceptDiscovery(planted_model, "pool", n_concepts=2, patch_size=8, random_state=0)
    cd.fit(x)
    red = _concept_of(cd, 0)
    u = cd.coefficients(x)  # (n, 12, 12, 2)
    expected = 10 * (u[..., red : red + 1] * cd.concepts_[red]).mean(axis=(1, 2))[:, 0]
    got = cd.importance(x, method="deletion", target=0, per_image=True)[:, red]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_transform_exemplars_and_shapes(planted_model, planted):
    x, _ = planted
    cd = ki.ConceptDiscovery(planted_model, "pool", method="kmeans", n_concepts=2, patch_size=8)
    cd.set_params(random_state=0).fit(x)
    coeffs = cd.transform(x)
    assert coeffs.shape == (len(x), 2) and (coeffs >= 0).all()
    # every image has one red and one green square of the same size: equal coefficients
    red, green = _concept_of(cd, 0), _concept_of(cd, 1)
    np.testing.assert_allclose(coeffs[:, red], coeffs[0, red], rtol=1e-3)
    ex = cd.exemplars(k=3)
    assert ex.images.shape == (2, 3, 8, 8, 3)
    # the red concept's exemplars are red pieces, the green one's green
    assert ex.images[red, ..., 0].sum() > 5 * ex.images[red, ..., 1].sum()
    assert ex.images[green, ..., 1].sum() > 5 * ex.images[green, ..., 0].sum()
    assert cd.target_ in (0, 1)
    assert clone(cd).get_params()["model"] is planted_model


def test_no_retrace_for_another_class_or_fit(planted_model, planted):
    x, _ = planted
    cd = ki.ConceptDiscovery(planted_model, "pool", n_concepts=2, patch_size=8, random_state=0)
    cd.fit(x).importance(x[:2], target=0, nb_design=8)
    intro = ki.Introspector(planted_model)
    before = intro.trace_count
    cd.importance(x[:3], target=1, nb_design=8)
    ki.ConceptDiscovery(planted_model, "pool", n_concepts=2, patch_size=8, random_state=1).fit(
        x
    ).importance(x[:2], target=1, nb_design=8)
    assert intro.trace_count == before


def test_errors(planted_model, planted):
    x, _ = planted
    with pytest.raises(NotFittedError):
        ki.ConceptDiscovery(planted_model, "pool").transform(x)
    with pytest.raises(ValueError, match="max_concepts"):
        ki.ConceptDiscovery(planted_model, "pool", method="dpgmm", n_concepts=3).fit(x)
    with pytest.raises(ValueError, match="method"):
        ki.ConceptDiscovery(planted_model, "pool", method="pca").fit(x)
    linear = keras.Sequential(
        [keras.Input((24, 24, 3)), keras.layers.Conv2D(2, 1, name="lin"), keras.layers.Flatten()]
    )
    linear.get_layer("lin").set_weights([-np.ones((1, 1, 3, 2), "float32"), np.zeros(2, "float32")])
    with pytest.raises(ValueError, match="non-negative"):
        ki.ConceptDiscovery(linear, "lin", patch_size=8).fit(x)
    with pytest.raises(ValueError, match=r"nope"):
        ki.ConceptDiscovery(planted_model, "nope").fit(x)


def test_jansen_estimator_on_an_additive_function():
    """f(m) = 3 m_0 + m_1 with m ~ U(0, 1): total indices 9/10 and 1/10 (no interaction)."""
    masks = sobol_masks(3, 1024, seed=0)
    scores = 3 * masks[:, 0] + masks[:, 1]
    np.testing.assert_allclose(jansen_total(scores, 1024, 3), [0.9, 0.1, 0.0], atol=0.02)
