"""Agreement with Xplique's TCAV and CRAFT where their conventions match ours."""

import keras
import numpy as np
import pytest
from planted_concepts import make_planted_model, planted_images
from scipy.optimize import linear_sum_assignment

import keras_introspect as ki


@pytest.fixture(scope="module")
def planted_model():
    return make_planted_model()


xplique = pytest.importorskip("xplique")


def _split(model, at):
    """Xplique's g (input -> layer) and h (layer -> logits) of a Sequential model."""
    inputs = keras.Input(model.input_shape[1:])
    h = inputs
    for layer in model.layers[: at + 1]:
        h = layer(h)
    g = keras.Model(inputs, h)
    latent = keras.Input(h.shape[1:])
    h = latent
    for layer in model.layers[at + 1 :]:
        h = layer(h)
    return g, keras.Model(latent, h)


def test_tcav_score_and_directional_derivatives_match_xplique(planted_model):
    from xplique.concepts import Tcav

    x, _ = planted_images(12, seed=3)
    concept, _ = planted_images(20, seed=4)
    concept[..., 1] = 0  # red squares only
    random = np.random.default_rng(0).uniform(0, 1, (20, 24, 24, 3)).astype("float32")
    X = np.concatenate([concept, random])
    y = np.r_[np.ones(20), np.zeros(20)]
    cav = ki.CAV(planted_model, "pool", pooling=None, random_state=0).fit(X, y)
    vector = cav.vector_.reshape(12, 12, 4)
    peer = Tcav(planted_model, "pool")
    for label in (0, 1):
        np.testing.assert_allclose(
            cav.sensitivity(x, label),
            peer.directional_derivative(x, label, vector).numpy(),
            rtol=1e-4,
            atol=1e-6,
        )
        ours = np.mean(cav.sensitivity(x, label) > 0)
        assert ours == pytest.approx(peer.score(x, label, vector))


def test_craft_finds_the_same_concepts_and_ranking(planted_model):
    from xplique.concepts import CraftTf

    x, _ = planted_images(8, seed=0)
    g, h = _split(planted_model, 1)  # conv, pool | gap, logits
    peer = CraftTf(g, h, number_of_concepts=2, batch_size=64, patch_size=8)
    peer.fit(x, class_id=0)
    theirs = peer.factorization.concept_bank_w
    theirs = theirs / np.linalg.norm(theirs, axis=1, keepdims=True)
    cd = ki.ConceptDiscovery(planted_model, "pool", n_concepts=2, patch_size=8, target=0)
    cd.set_params(random_state=0).fit(x)
    cosine = cd.concepts_ @ theirs.T
    rows, cols = linear_sum_assignment(-cosine)
    assert cosine[rows, cols].min() > 0.99  # the same two concept vectors
    their_importance = peer.estimate_importance(x, nb_design=16)
    ours = cd.importance(x, nb_design=16)
    # the same concept is the most important (the red square decides class 0)
    assert cols[np.argmax(ours)] == np.argmax(their_importance)
