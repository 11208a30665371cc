"""Result objects print as summaries, not as hundreds of lines of arrays (issue 19, item 8)."""

import keras
import numpy as np

import keras_introspect as ki


def _model(size, classes, activation=None):
    """conv -> flatten -> dense, seeded: the small model both tests explain."""
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((size, size, 1)),
            keras.layers.Conv2D(2, 3, name="conv"),
            keras.layers.Flatten(),
            keras.layers.Dense(classes, activation=activation),
        ]
    )


def test_results_print_short():
    model = _model(8, 3)
    x = np.random.default_rng(0).uniform(size=(20, 8, 8, 1)).astype("float32")
    results = [
        ki.fool(model, x, 1, steps=2),
        ki.top_activating(model, "conv", 1, x, k=3, crops=True),
        ki.activation_histogram(model, "conv", 1, x),
        ki.ActivationMaximization(model, ki.targets.Channel("conv", 0), steps=2).generate(n=2),
    ]
    for result in results:
        text = repr(result)
        assert len(text.splitlines()) == 1 and len(text) < 900, text
        assert text.startswith(type(result).__name__ + "(")
    assert "images=<array (20, 8, 8, 1) float32>" in repr(results[0])
    assert "values=[" in repr(results[1])  # three values are shown in full


def test_every_result_has_a_table_and_prints_it():
    """Issue 20: `.table` (a list of dicts) and `str()` (that table as text)."""
    from keras_introspect._repr import text_table

    model = _model(6, 2, activation="softmax")
    x = np.random.default_rng(0).random((4, 6, 6, 1)).astype("float32")
    maps = ki.Saliency(model, 0).explain(x)
    curves = ki.metrics.deletion(model, x, maps, 0, steps=4, random_baseline=True)
    results = {
        "curves": (curves, len(x)),
        "exemplars": (ki.top_activating_all(model, "conv", x, k=2), 2 * 2),
        "am": (ki.ActivationMaximization(model, ki.targets.Class(1), steps=2).generate(n=3), 3),
        "fool": (ki.fool(model, x, target=1, steps=2), len(x)),
        "cascade": (ki.metrics.randomization_check("saliency", model, x, 0), 2),
    }
    for name, (result, n_rows) in results.items():
        assert isinstance(result.table, list) and len(result.table) == n_rows, name
        assert str(result) == text_table(result.table), name
    assert [row["auc"] for row in curves.table] == [float(a) for a in curves.auc]
    fool = results["fool"][0]
    assert [row["steps to flip"] for row in fool.table] == fool.steps_to_flip.tolist()
