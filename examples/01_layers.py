"""The layer table and activations of a Kaggle-style nested model.

A MobileNetV2 backbone (random weights: nothing is downloaded) sits inside a
Sequential head with a preprocessing layer, as in many Kaggle notebooks.
keras_introspect lists every layer, the backbone's inner layers included, and
returns their activations from one forward pass.

Run: python examples/01_layers.py
"""

import keras
import numpy as np

import keras_introspect as ki

backbone = keras.applications.MobileNetV2(
    weights=None, alpha=0.35, include_top=False, input_shape=(64, 64, 3)
)
model = keras.Sequential(
    [
        keras.Input((64, 64, 3)),
        keras.layers.Rescaling(1 / 127.5, offset=-1, name="preprocess"),
        backbone,
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dense(5, activation="softmax", name="head"),
    ],
    name="kaggle_style",
)

intro = ki.Introspector(model)
intro.summary(print_fn=lambda line: print(line) if "block_1" not in line else None)

images = np.random.default_rng(0).uniform(0, 255, (10, 64, 64, 3)).astype("float32")
acts = intro.activations(
    images,
    layers=["Conv1", "block_3_expand_relu", "out_relu", "head"],
    batch_size=4,
    verbose=1,
)
print()
for path, values in acts.items():
    field = intro.receptive_field(path)
    where = f"receptive field {field.size} stride {field.stride}" if field else "no receptive field"
    print(f"{path:<45} {values.shape!s:<20} {where}")

# The same numbers as a Keras sub-model of the backbone, fed the preprocessed images:
inner = keras.Model(backbone.inputs, backbone.get_layer("block_3_expand_relu").output)
manual = np.asarray(inner(model.get_layer("preprocess")(images)))
path = "mobilenetv2_0.35_64/block_3_expand_relu"
print(f"\nmax |introspector - manual| for {path}: {np.abs(acts[path] - manual).max():.2e}")
