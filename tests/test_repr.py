"""Result objects print as summaries, not as hundreds of lines of arrays (issue 19, item 8)."""

import keras
import numpy as np

import keras_introspect as ki


def test_results_print_short():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(2, 3, name="conv"),
            keras.layers.Flatten(),
            keras.layers.Dense(3),
        ]
    )
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
