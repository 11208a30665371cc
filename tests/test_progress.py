"""Every status message goes to stderr (issue 20, item 6): Keras' progress bars too,
so standard output holds results only."""

import keras
import numpy as np

import keras_introspect as ki


def test_progress_bars_write_to_stderr_only(capsys):
    model = keras.Sequential(
        [keras.Input((6, 6, 1)), keras.layers.Conv2D(2, 3, name="conv"), keras.layers.Flatten()]
    )
    x = np.random.default_rng(0).random((4, 6, 6, 1)).astype("float32")
    acts = ki.Introspector(model).activations(x, "conv", batch_size=2, verbose=1)
    assert acts["conv"].shape == (4, 4, 4, 2)
    maps = ki.Saliency(model, ki.targets.Channel("conv", 0), verbose=1).explain(x)
    assert maps.shape == (4, 6, 6)
    out, err = capsys.readouterr()
    assert out == ""
    assert "2/2" in err  # the two batches of the scan, counted on stderr
