"""Layer-CAM (Jiang et al. 2021)."""

from __future__ import annotations

from keras_introspect.attribution.gradcam import GradCAM


class LayerCAM(GradCAM):
    """Feature maps weighted position by position by their positive gradients.

    Jiang et al. (2021), "LayerCAM: Exploring Hierarchical Class Activation
    Maps for Localization": `relu(sum_c relu(d score / d A_c) * A_c)`, the
    product taken at every position, with `A` the feature maps of `layer`.
    Unlike Grad-CAM's one weight per channel (the spatial mean of the
    gradient), each position keeps its own weight, so the maps stay sharp
    at shallow layers, where a channel's gradient changes from place to
    place. Arguments and layer choice as `GradCAM`.

    Returns (from `explain(x)`):
        float32 `(n, H, W)` (or `(n, h, w)` at layer resolution).

    Example:
        >>> import numpy as np, keras, keras_introspect as ki
        >>> keras.utils.set_random_seed(4)
        >>> model = keras.Sequential([keras.Input((8, 8, 1)),
        ...     keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
        ...     keras.layers.Flatten(), keras.layers.Dense(2)])
        >>> ki.LayerCAM(model, 1, layer="conv").explain(np.ones((2, 8, 8, 1))).shape
        (2, 8, 8)
    """

    def _combine(self, grads, activations):
        import tensorflow as tf

        return tf.reduce_sum(tf.nn.relu(grads) * activations, axis=-1)
