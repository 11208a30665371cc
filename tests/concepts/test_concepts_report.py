"""The opt-in "concepts" report section, from the API and from the command line."""

import numpy as np
import pytest
from planted_concepts import make_planted_model, planted_images

from keras_introspect.cli import main
from keras_introspect.report import REGISTRY, build_report


@pytest.fixture(scope="module")
def planted_model():
    return make_planted_model()


def test_concepts_section_is_opt_in():
    assert "concepts" in REGISTRY.names and "concepts" not in REGISTRY.defaults
    assert REGISTRY["concepts"].default is False


def test_concepts_section(planted_model):
    x, _ = planted_images(12, seed=0)
    y = np.r_[np.zeros(6, int), np.ones(6, int)]
    report = build_report(planted_model, x, y, layers=["conv", "pool"], sections=["concepts"])
    html = report.to_html()
    for text in ("Concepts of class 0", "Concepts of class 1", "Concepts per layer"):
        assert text in html


def test_concepts_section_skips_layers_without_feature_maps(planted_model):
    x, _ = planted_images(4, seed=0)
    report = build_report(
        planted_model, x, np.zeros(4, int), layers=["logits"], sections=["concepts"]
    )
    html = report.to_html()
    assert "non-negative values" in html


def test_cli_report_with_the_concepts_section(planted_model, tmp_path):
    x, _ = planted_images(8, seed=1)
    model_path = tmp_path / "planted.keras"
    planted_model.save(model_path)
    np.savez(tmp_path / "images.npz", x=x, y=np.r_[np.zeros(4, int), np.ones(4, int)])
    out = tmp_path / "report.html"
    argv = ["report", str(model_path), str(tmp_path / "images.npz"), "--out", str(out)]
    assert main([*argv, "--sections", "concepts", "--layers", "pool", "--quiet"]) == 0
    assert "Concepts of class 1" in out.read_text()
