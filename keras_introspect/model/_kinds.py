"""Families of Keras layer classes, by class name (one list for the whole package)."""

CONV = frozenset(
    {
        "Conv1D",
        "Conv2D",
        "Conv3D",
        "DepthwiseConv1D",
        "DepthwiseConv2D",
        "SeparableConv1D",
        "SeparableConv2D",
    }
)
TRANSPOSED_CONV = frozenset({"Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"})
POOL = frozenset(
    {
        "MaxPooling1D",
        "MaxPooling2D",
        "MaxPooling3D",
        "AveragePooling1D",
        "AveragePooling2D",
        "AveragePooling3D",
    }
)
GLOBAL_POOL = frozenset(
    {
        "GlobalAveragePooling1D",
        "GlobalAveragePooling2D",
        "GlobalAveragePooling3D",
        "GlobalMaxPooling1D",
        "GlobalMaxPooling2D",
        "GlobalMaxPooling3D",
    }
)
DENSE = frozenset({"Dense", "EinsumDense"})
# Layers that combine several tensors element-wise (or along channels).
MERGE = frozenset({"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"})
# Rectifying non-linearities that guided backprop / deconvnet rules act on:
# stand-alone layers, and names of `activation=` functions.
RECTIFIER_LAYERS = frozenset({"ReLU", "LeakyReLU", "ELU", "PReLU"})
RECTIFIER_ACTIVATIONS = frozenset({"relu", "relu6", "leaky_relu", "elu"})
# Layers that only pass their input on (at inference) or reshape it: never the
# default layer of a method (Grad-CAM's feature maps are those of the layer before).
PASS_THROUGH = frozenset(
    {
        "Dropout",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "SpatialDropout3D",
        "GaussianDropout",
        "GaussianNoise",
        "AlphaDropout",
        "ActivityRegularization",
        "Identity",
        "Reshape",
        "Permute",
        "Flatten",
        "RepeatVector",
        "Cropping2D",
        "ZeroPadding2D",
        "InputLayer",
    }
)


def is_preprocessing(layer) -> bool:
    """Whether `layer` is one of Keras' preprocessing layers (no weights to learn)."""
    return ".preprocessing." in type(layer).__module__
