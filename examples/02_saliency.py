"""Class saliency, filter saliency (max and sum), Grad-CAM and occlusion, side by side.

A small nested CNN is trained on the spot on scikit-learn's digits (a few
seconds, nothing is downloaded). For a few test images the script shows:

- class saliency: gradient of the predicted class logit (Simonyan et al.);
- filter saliency of the most active filter of the inner layer
  ``features/conv3``, with the feature map aggregated by max and by sum (the
  extension of gradient saliency to intermediate filters, Kalmeijer 2016);
- Grad-CAM of the predicted class on ``features/conv2``;
- occlusion of the predicted class with a 2x2 zero window.

Run: python examples/02_saliency.py [output.png]
"""

import sys

import keras
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import keras_introspect as ki
from keras_introspect.datasets import digits, nested_digits_cnn

T = ki.targets

x, y = digits()
keras.utils.set_random_seed(0)
model = nested_digits_cnn()
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x[:1500], y[:1500], epochs=15, batch_size=64, verbose=0)
_, accuracy = model.evaluate(x[1500:], y[1500:], verbose=0)
print(f"test accuracy {accuracy:.3f}")

images = x[1500:1506]
predicted = model.predict(images, verbose=0).argmax(axis=1)
conv3 = ki.Introspector(model).activations(images, "conv3", pooling="max")
filters = conv3["features/conv3"].argmax(axis=1)  # the most active filter of each image

columns = {
    "image": images[..., 0],
    "class saliency": ki.Saliency(model, T.Class(predicted)).explain(images),
    # All 32 filters of conv3 in one call each, then the most active filter per image.
    "filter saliency (max)": ki.Saliency(model, T.Channel("conv3", "all", aggregate="max")).explain(
        images
    )[np.arange(len(images)), filters],
    "filter saliency (sum)": ki.Saliency(model, T.Channel("conv3", "all", aggregate="sum")).explain(
        images
    )[np.arange(len(images)), filters],
    "Grad-CAM (conv2)": ki.GradCAM(model, T.Class(predicted), layer="conv2").explain(images),
    "occlusion 2x2": ki.Occlusion(model, T.Class(predicted), window=2, stride=1).explain(images),
}

occlusion, saliency = columns["occlusion 2x2"], columns["class saliency"]
agreement = np.mean(
    [
        np.corrcoef(np.abs(o).ravel(), s.ravel())[0, 1]
        for o, s in zip(occlusion, saliency, strict=True)
    ]
)
print(f"mean correlation of |occlusion| and class saliency: {agreement:.2f}")

fig, axes = plt.subplots(len(images), len(columns), figsize=(2 * len(columns), 2 * len(images)))
for col, (title, maps) in enumerate(columns.items()):
    for row in range(len(images)):
        ax = axes[row, col]
        ax.imshow(maps[row], cmap="gray" if col == 0 else "inferno")
        ax.set_xticks([])
        ax.set_yticks([])
        if row == 0:
            ax.set_title(title, fontsize=8)
        if col == 0:
            ax.set_ylabel(f"true {y[1500 + row]}, pred {predicted[row]}", fontsize=8)
        if col in (2, 3):
            ax.set_xlabel(f"filter {filters[row]}", fontsize=7)
fig.tight_layout()
out = sys.argv[1] if len(sys.argv) > 1 else "02_saliency.png"
fig.savefig(out, dpi=80)
print(f"wrote {out}")
