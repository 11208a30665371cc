"""The section registry and the plan: build_report is a plan and a loop (issue 20, item 1)."""

import re

import keras
import numpy as np
import pytest

from keras_introspect.datasets import die360_network
from keras_introspect.exceptions import KerasIntrospectWarning
from keras_introspect.report import REGISTRY, SECTIONS, build_report, plan_report
from keras_introspect.report.auto import _penultimate
from keras_introspect.report.sections import SectionRegistry


@pytest.fixture(scope="module")
def model_and_images():
    keras.utils.set_random_seed(0)
    model = die360_network("c2")
    x = np.random.default_rng(0).random((8, 32, 32, 1)).astype("float32")
    return model, x, np.arange(8) % 3


def _html(section) -> str:
    return "".join(map(str, section.blocks))


def _figures_masked(section) -> str:
    return re.sub(r"data:image/png;base64,[^\"]+", "PNG", _html(section))


def test_a_registered_section_runs_in_its_place_per_layer_or_skipped(model_and_images):
    model, x, y = model_and_images
    calls = []

    def mean_image(report, plan):
        calls.append(("mean", len(plan.x)))
        report.add_table([{"mean": float(plan.x.mean())}], title="Mean image")

    def per_layer(report, plan, layer):
        calls.append(("layer", layer))
        report.add_text(f"Layer {layer}", str(plan.channels[layer]))

    try:
        REGISTRY.register("mean", mean_image, title="Mean", after="summary")
        REGISTRY.register("per-layer", per_layer, per_layer=True)
        REGISTRY.register(
            "never",
            lambda report, plan: calls.append("never ran"),
            title="Never",
            skip=lambda plan: f"not for {plan.model.name}",
            before="per-layer",
        )
        assert REGISTRY.names[:3] == ("summary", "mean", "saliency")
        assert REGISTRY.names[-2:] == ("never", "per-layer")
        plan = plan_report(model, x, y, sections=["summary", "mean", "never", "per-layer"])
        assert plan.layers == ["pool1", "pool2"]
        assert plan.skipped == {"never": "not for die360_c2"}
        assert plan.steps == 1 + 1 + 1 + 2  # the per-layer section: one line per layer
        assert "never: skipped: not for die360_c2" in str(plan)
        assert plan.table[2] == {"section": "never", "runs": False, "why not": "not for die360_c2"}

        report = build_report(model, x, y, sections=["summary", "mean", "never", "per-layer"])
        titles = [s.title for s in report.sections]
        assert titles == ["Model: die360_c2", "Mean image", "Never", "Layer pool1", "Layer pool2"]
        assert calls == [("mean", 8), ("layer", "pool1"), ("layer", "pool2")]
        assert report.sections[1].blocks  # the table
        assert float(x.mean()) == pytest.approx(
            float(re.search(r"<td>([0-9.]+)</td>", _html(report.sections[1])).group(1)), abs=1e-3
        )
        assert "not for die360_c2" in _html(report.sections[2])
    finally:
        for name in ("mean", "per-layer", "never"):
            if name in REGISTRY:
                REGISTRY.unregister(name)
    assert REGISTRY.names == SECTIONS


def test_the_registry_refuses_what_it_cannot_place():
    registry = SectionRegistry()

    @registry.register("a", title="A")
    def a(report, plan):
        pass

    assert a.__name__ == "a"  # the decorator returns the function
    with pytest.raises(ValueError, match="registered already"):
        registry.register("a", a)
    with pytest.raises(ValueError, match="No section 'z'"):
        registry.register("b", a, after="z")
    with pytest.raises(ValueError, match="not both"):
        registry.register("b", a, before="a", after="a")
    with pytest.raises(TypeError, match="callable"):
        registry.register("b", "not a function")
    registry.register("b", a, before="a")
    registry.register("a", lambda r, p: None, replace=True, title="A2")  # stays in place
    assert registry.names == ("b", "a") and registry["a"].title == "A2"
    with pytest.raises(KeyError, match="No section 'c'"):
        registry.unregister("c")


def test_precomputed_results_render_exactly_as_computed_ones(model_and_images, monkeypatch):
    """The quality, purity and occlusion sections given their results render the same
    page as when they compute them, and compute nothing."""
    from keras_introspect.cluster import purity as purity_module
    from keras_introspect.cluster.purity import layerwise_purity
    from keras_introspect.metrics import quality as quality_module
    from keras_introspect.metrics.quality import explanation_quality
    from keras_introspect.report import builder

    monkeypatch.setenv("KI_MAX_STEPS", "3")
    model, x, y = model_and_images
    names = ["occlusion", "purity", "quality"]
    computed = build_report(model, x, y, sections=names, n_quality=4)

    plan = plan_report(model, x, y, sections=names, n_quality=4)
    n = plan.n_quality
    results = {
        "quality": explanation_quality(
            model,
            plan.x[:n],
            plan.class_target(plan.explained[:n]),
            options={"occlusion": plan.occlusion},
        ),
        "purity": layerwise_purity(model, plan.x, plan.y, layers=plan.purity_layers, seed=0),
        "occlusion": builder.explain_maps(
            model, plan.shown, "occlusion", plan.targets, plan.occlusion
        ),
    }

    def refuse(*args, **kwargs):
        raise AssertionError("computed again")

    monkeypatch.setattr(quality_module, "explanation_quality", refuse)
    monkeypatch.setattr(purity_module, "layerwise_purity", refuse)
    monkeypatch.setattr(builder, "explain_maps", refuse)
    given = build_report(model, x, y, sections=names, n_quality=4, results=results)
    assert [s.title for s in given.sections] == [s.title for s in computed.sections]
    for a, b in zip(computed.sections, given.sections, strict=True):
        assert _figures_masked(a) == _figures_masked(b)
        shown = {k: str(v) for k, v in b.params.items()}
        if a.title.startswith("Layer-wise purity"):  # what the result records, no more
            assert shown == {"method": "kmeans", "labels": "the given labels"}
        else:
            assert {k: str(v) for k, v in a.params.items()} == shown
    # the figures too, pixel for pixel
    assert _html(computed.sections[0]) == _html(given.sections[0])
    with pytest.raises(ValueError, match="keyed by section names"):
        build_report(model, x, y, results={"lime": None})


def test_a_per_layer_section_failing_at_one_layer_keeps_the_other(model_and_images, monkeypatch):
    from keras_introspect.report.builder import Report

    model, x, y = model_and_images
    original = Report.add_filter_saliency

    def fails_at_pool1(self, images, layer, *args, **kwargs):
        if layer == "pool1":
            raise RuntimeError("pool1 is on fire")
        return original(self, images, layer, *args, **kwargs)

    monkeypatch.setattr(Report, "add_filter_saliency", fails_at_pool1)
    monkeypatch.setenv("KI_MAX_STEPS", "3")
    with pytest.warns(KerasIntrospectWarning, match="section 'filters' failed"):
        report = build_report(model, x, y, sections=["filters"], n_channels=1)
    titles = [s.title for s in report.sections]
    assert titles == ["Filter saliency", "Filter saliency at pool2"]
    assert "RuntimeError: pool1 is on fire" in _html(report.sections[0])


def test_the_plan_says_why_a_section_does_not_apply(model_and_images):
    model, x, _ = model_and_images
    plan = plan_report(model, x, np.arange(8) % 2, sections=["category-tree", "quality"])
    assert plan.classifier and plan.labels_given
    assert plan.skipped == {"category-tree": "Needs at least 3 categories among the labels."}
    assert plan.sections == ["category-tree", "quality"]
    # the shown images are the first of each label, then the next ones
    assert plan.pick.tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(plan.shown, x[:4])
    np.testing.assert_array_equal(plan.targets.index, plan.explained[:4])


def test_run_first_sections_are_computed_first_and_shown_in_their_place(
    model_and_images, monkeypatch
):
    """`RUN_FIRST` changes when a section is computed (memory), never where it appears."""
    from keras_introspect.report import auto

    model, x, y = model_and_images
    calls = []
    try:
        REGISTRY.register(
            "early", lambda r, p: calls.append("early") or r.add_text("Early", "a"), after="summary"
        )
        REGISTRY.register("late", lambda r, p: calls.append("late") or r.add_text("Late", "b"))
        monkeypatch.setattr(auto, "RUN_FIRST", ("late",))
        report = build_report(model, x, y, sections=["summary", "early", "late"])
        assert calls == ["late", "early"]
        assert [s.title for s in report.sections] == ["Model: die360_c2", "Early", "Late"]
        # a report passed in keeps its own sections first
        from keras_introspect.report import Report

        given = Report(model).add_text("Mine", "c")
        build_report(model, x, y, sections=["early", "late"], report=given)
        assert [s.title for s in given.sections] == ["Mine", "Early", "Late"]
    finally:
        for name in ("early", "late"):
            if name in REGISTRY:
                REGISTRY.unregister(name)
    assert auto.RUN_FIRST == ("late",)  # (restored by monkeypatch after the test)


def test_the_filter_sections_read_every_layer_in_one_graph(model_and_images):
    import keras_introspect as ki

    model, x, y = model_and_images
    keras.utils.set_random_seed(0)
    fresh = die360_network("c2")  # a session of its own: its graphs are this report's
    fresh.set_weights(model.get_weights())
    build_report(fresh, x, y, sections=["filters"], n_channels=1)
    intro = ki.Introspector(fresh)
    keys = [k for k in intro.session.compiled if k[0] == "activations"]
    # one graph: the layers and the penultimate layer (the plan's store), unpooled; the
    # channels' means come from it too
    assert [(k[1], k[2]) for k in keys] == [(("pool1", "pool2", _penultimate(intro)), None)]
    # activations given to the section must be of its images
    from keras_introspect.report import Report

    with pytest.raises(ValueError, match="Expected `activations` of the 3 images"):
        Report(fresh).add_filter_saliency(x[:3], "pool1", 0, activations=np.zeros((2, 8, 8, 4)))


def test_a_section_named_twice_runs_once(model_and_images):
    model, x, y = model_and_images
    report = build_report(model, x, y, sections=["summary", "summary"])
    assert [s.title for s in report.sections] == ["Model: die360_c2"]
