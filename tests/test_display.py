"""Notebook display (issue 25, item 1): every result object renders as escaped HTML
with its picture embedded as a PNG and its table's numbers, and `ki.show` draws
plain arrays.

Each display is parsed: the image must decode as a PNG of the figure's size, the
cells must be the numbers of `.table`, and text from the data must come out escaped.
"""

import base64
import html.parser

import keras
import numpy as np
import pytest

import keras_introspect as ki

PNG = b"\x89PNG\r\n\x1a\n"


class Page(html.parser.HTMLParser):
    """The images, table cells and text of a display."""

    def __init__(self):
        super().__init__()
        self.images, self.cells, self.iframes, self.text = [], [], [], []
        self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs)
        elif tag == "iframe":
            self.iframes.append(attrs)
        elif tag == "td":
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "td":
            self.cells.append(self._cell)
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell += data


def parse(markup: str) -> Page:
    page = Page()
    page.feed(markup)
    page.close()
    return page


def png_size(attrs) -> tuple:
    """(width, height) of an `<img>`'s embedded PNG, checked to be one."""
    prefix = "data:image/png;base64,"
    assert attrs["src"].startswith(prefix)
    data = base64.b64decode(attrs["src"][len(prefix) :])
    assert data[:8] == PNG
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _model():
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(3, 3, activation="relu", name="conv"),
            keras.layers.Conv2D(4, 3, activation="relu", name="conv2"),
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(3, activation="softmax", name="out"),
        ]
    )


@pytest.fixture(scope="module")
def computed():
    model = _model()
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(12, 8, 8, 1)).astype("float32")
    y = np.arange(12) % 3
    maps = ki.Saliency(model, ki.targets.Class(y)).explain(x)
    results = {
        "AMResult": ki.ActivationMaximization(
            model, ki.targets.Channel("conv", 0), steps=2
        ).generate(n=2),
        "Exemplars": ki.top_activating_all(model, "conv", x, k=2, crops=True),
        "ActivationHistogram": ki.activation_histogram(model, "conv", 1, x),
        "OutOfSample": ki.out_of_sample(model, {"digits": x, "noise": x[::-1] * 0.5}),
        "PurityResult": ki.layerwise_purity(model, x, y, layers=["conv", "conv2"]),
        "Composition": ki.ImageClusterer(
            model, "conv2", method="kmeans", n_clusters=2, random_state=0
        )
        .fit(x, y)
        .composition(y),
        "CausalCurves": ki.metrics.deletion(model, x, maps, ki.targets.Class(y), steps=3),
        "RandomizationResult": ki.metrics.randomization_check("saliency", model, x[:4], 0),
        "MapComparison": ki.metrics.compare_with_random_twin("saliency", model, x[:4], 0),
        "CategoryTree": ki.CategoryTree(model, "gap").fit(x, y),
        "PredictionTree": ki.PredictionTree(model, "conv2").fit(x[y == 0]),
    }
    return model, x, y, results


DISPLAYED = (
    "AMResult",
    "Exemplars",
    "ActivationHistogram",
    "OutOfSample",
    "PurityResult",
    "Composition",
    "CausalCurves",
    "RandomizationResult",
    "MapComparison",
    "CategoryTree",
    "PredictionTree",
)


@pytest.mark.parametrize("name", DISPLAYED)
def test_result_displays_its_figure_and_table(computed, name):
    import matplotlib.pyplot as plt

    plt.close("all")  # (figures other tests left open)
    result = computed[3][name]
    assert type(result).__name__ == name
    markup = result._repr_html_()
    page = parse(markup)
    # one embedded PNG: the figure `.plot()` draws, nothing loaded from elsewhere
    assert len(page.images) == 1
    width, height = png_size(page.images[0])
    assert width > 50 and height > 50
    assert "<script" not in markup.lower()
    # the cells are `.table`'s values, in order (the first rows)
    rows = getattr(result, "table", None)
    if isinstance(rows, list):
        expected = [
            f"{v:.3f}" if isinstance(v, (float, np.floating)) else str(v)
            for row in rows[:20]
            for v in row.values()
        ]
        assert page.cells == expected
    # the summary is the short repr, never a dump of arrays
    assert f"{name}" in "".join(page.text)
    assert len(markup) < 400_000
    assert not plt.get_fignums()  # the figure was closed: the notebook shows it once


def test_text_from_the_data_is_escaped():
    result = ki.probes.OutOfSample(
        sets=["<script>alert(1)</script>", "b&c"],
        counts=np.array([[2, 0], [1, 1]]),
        shares=np.array([[100.0, 0.0], [50.0, 50.0]]),
        predictions={},
        class_names=["<b>cat</b>", "dog"],
    )
    markup = result._repr_html_()
    assert "<script>" not in markup and "<b>cat</b>" not in markup
    page = parse(markup)
    assert page.cells[:3] == ["<script>alert(1)</script>", "100.000", "0.000"]
    assert page.cells[3] == "b&c"


def test_long_tables_are_cut_and_counted():
    from keras_introspect._repr import MAX_HTML_ROWS

    n = MAX_HTML_ROWS + 7
    curves = ki.metrics.CausalCurves(
        "deletion",
        np.linspace(0, 1, 3),
        np.zeros((n, 3)),
        np.zeros((n, 3)),
        np.arange(n, dtype=float),
    )
    page = parse(curves._repr_html_())
    assert page.cells == [str(i) if j == 0 else f"{i:.3f}" for i in range(20) for j in (0, 1)]
    assert "... and 7 more rows" in "".join(page.text)


def test_a_result_without_a_picture_says_why():
    from keras_introspect.metrics.quality import QualityResult

    result = QualityResult(ki.targets.Class(0), None, True, "softmax saturated")
    page = parse(result._repr_html_())
    assert not page.images
    assert "No figure: No curves to plot: softmax saturated" in "".join(page.text)


def test_unfitted_trees_show_the_estimator_diagram(computed):
    model = computed[0]
    markup = ki.CategoryTree(model, "gap")._repr_html_()
    assert "sk-" in markup and "<img" not in markup  # scikit-learn's diagram


def test_introspector_shows_every_layer_with_its_receptive_field(computed):
    model = computed[0]
    intro = ki.Introspector(model)
    page = parse(intro._repr_html_())
    rows = intro.summary_rows()
    assert len(page.cells) == 6 * len(rows)
    by_path = {page.cells[i + 1]: page.cells[i + 5] for i in range(0, len(page.cells), 6)}
    assert by_path["conv"] == "3x3 /1x1" and by_path["conv2"] == "5x5 /1x1"


def test_report_is_shown_in_a_sandboxed_iframe(computed):
    model = computed[0]
    report = ki.Report(model, title="a <b>report</b>")
    report.add_table([{"layer": "<conv>", "value": 1.5}], title="T")
    markup = report._repr_html_()
    page = parse(markup)
    (frame,) = page.iframes
    assert frame["sandbox"] == "allow-same-origin"
    # the attribute holds the page itself, unescaped by the parser: it is the report
    assert frame["srcdoc"] == report.to_html()[: len(frame["srcdoc"])]
    assert "&lt;conv&gt;" in frame["srcdoc"]
    assert "<b>report</b>" not in markup.split("srcdoc", 1)[0]


def test_show_draws_arrays_as_the_overlay_grid():
    x = np.random.default_rng(0).uniform(size=(3, 8, 8, 3))
    maps = np.zeros((3, 8, 8))
    maps[:, 2:4, 2:4] = 1.0
    fig = ki.show(x, {"a": maps, "b": -maps})
    assert len(fig.axes) == 3 * 3
    titles = [ax.get_title() for ax in fig.axes[:3]]
    assert titles[1:] == ["a", "b"]
    fig2 = ki.show(x, maps)
    assert len(fig2.axes) == 3 * 2
    import matplotlib.pyplot as plt

    plt.close("all")


def test_the_example_notebook_runs_and_every_result_shows_a_picture(monkeypatch):
    """`examples/notebook_display.ipynb`, executed as Jupyter would (nbclient, a real
    kernel): the result cells show HTML with an embedded PNG, the `ki.show` cell a
    figure, the introspector cell the layer table."""
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("ipykernel")
    from pathlib import Path

    monkeypatch.setenv("KI_FAST_EXAMPLES", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    path = Path(__file__).parents[1] / "examples" / "notebook_display.ipynb"
    notebook = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3").execute()
    cells = [c for c in notebook.cells if c.cell_type == "code"]
    errors = [o for c in cells for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    shown = [
        next((o.data for o in c.outputs if o.output_type in ("execute_result", "display_data")), {})
        for c in cells
    ]
    assert "held-out accuracy" in "".join(o.get("text", "") for o in cells[0].outputs)
    assert "conv2" in shown[1]["text/html"] and "receptive field" in shown[1]["text/html"]
    assert "image/png" in shown[2]  # ki.show's figure, drawn by the inline backend
    for data in shown[3:]:
        page = parse(data["text/html"])
        assert len(page.images) == 1, data["text/html"][:300]
        png_size(page.images[0])


def test_fitted_trees_answer_ipythons_mimebundle_with_their_picture(computed):
    """IPython asks `_repr_mimebundle_` first; scikit-learn's would show the diagram."""
    tree = computed[3]["CategoryTree"]
    bundle = tree._repr_mimebundle_()
    assert bundle["text/plain"] == repr(tree)
    assert len(parse(bundle["text/html"]).images) == 1
