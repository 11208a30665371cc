"""Die360: grey projections of a rotated 3-D die, labelled by pip count (`004` §5.1).

A unit cube with the faces of a standard die (opposite faces add up to
seven) is rotated about its three axes by whole degrees, shaded by one
light, and projected onto the image (perspective or orthographic). The label
is the pip count of the bottom-right face. As in the thesis, a view is kept
only when that face is the visually most prominent one: views where another
face is larger, or where the largest two faces are too close in size to say,
are discarded.

Everything is numpy and scikit-image; nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from keras_introspect._validation import check_number, check_one_of, check_positive_int, check_seed

# face: (normal, in-plane u, in-plane v, pips); opposite faces add up to 7
_FACES = (
    ((0, 0, 1), (1, 0, 0), (0, 1, 0), 1),
    ((0, 0, -1), (-1, 0, 0), (0, 1, 0), 6),
    ((1, 0, 0), (0, 0, -1), (0, 1, 0), 2),
    ((-1, 0, 0), (0, 0, 1), (0, 1, 0), 5),
    ((0, 1, 0), (1, 0, 0), (0, 0, -1), 3),
    ((0, -1, 0), (1, 0, 0), (0, 0, 1), 4),
)
_A = 0.5
_PIPS = {
    1: [(0, 0)],
    2: [(-_A, -_A), (_A, _A)],
    3: [(-_A, -_A), (0, 0), (_A, _A)],
    4: [(-_A, -_A), (-_A, _A), (_A, -_A), (_A, _A)],
    5: [(-_A, -_A), (-_A, _A), (_A, -_A), (_A, _A), (0, 0)],
    6: [(-_A, -_A), (-_A, 0), (-_A, _A), (_A, -_A), (_A, 0), (_A, _A)],
}
_PIP_RADIUS = 0.19
_CAMERA = 6.0  # distance of the perspective camera from the die's centre
_LIGHT = np.array([-0.4, 0.5, 1.0]) / np.linalg.norm([-0.4, 0.5, 1.0])
_SIGNIFICANT = 0.05  # faces under this share of the visible area do not count


@dataclass
class DieView:
    """One rendered projection.

    Attributes:
        image: float32 `(size, size)` in [0, 1].
        label: pip count of the bottom-right face if the view is kept, else `None`.
        faces: per visible face, `(pips, projected area in pixels, (row, col) centroid)`.
        angles: rotation about x, y and z in degrees.
    """

    image: np.ndarray
    label: int | None
    faces: list = field(default_factory=list)
    angles: tuple = ()


def _rotation(angles):
    ax, ay, az = np.deg2rad(angles)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _project(points, size, projection):
    """3-D points `(m, 3)` -> image `(rows, cols)` for a `size` x `size` image."""
    scale = 0.26 * size
    if projection == "perspective":
        factor = (_CAMERA - 1.0) / (_CAMERA - points[:, 2])
    else:
        factor = np.ones(len(points))
    centre = (size - 1) / 2
    return centre - scale * points[:, 1] * factor, centre + scale * points[:, 0] * factor


def _area(rows, cols):
    return 0.5 * abs(np.dot(cols, np.roll(rows, 1)) - np.dot(rows, np.roll(cols, 1)))


def _visible_faces(rotation, size, projection):
    faces = []
    for normal, u, v, pips in _FACES:
        normal, u, v = (rotation @ np.asarray(a, float) for a in (normal, u, v))
        centre = normal  # the cube spans [-1, 1]^3
        toward = np.array([0, 0, _CAMERA]) - centre if projection == "perspective" else (0, 0, 1)
        if np.dot(normal, toward) <= 1e-9:
            continue
        corners = np.array(
            [centre + su * u + sv * v for su, sv in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
        )
        rows, cols = _project(corners, size, projection)
        faces.append((pips, normal, u, v, rows, cols, _area(rows, cols)))
    return faces


def _label(faces, ambiguity):
    """Pip count of the bottom-right face if it is clearly the most prominent, else None."""
    total = sum(f[-1] for f in faces)
    significant = [f for f in faces if f[-1] >= _SIGNIFICANT * total]
    # bottom-right: the face whose centre lies furthest towards the bottom-right corner
    bottom_right = max(significant, key=lambda f: f[4].mean() + f[5].mean())
    by_area = sorted(significant, key=lambda f: -f[-1])
    if by_area[0] is not bottom_right:
        return None
    if len(by_area) > 1 and by_area[0][-1] < ambiguity * by_area[1][-1]:
        return None
    return bottom_right[0]


def render_die(angles, size=32, projection="perspective", ambiguity=1.5, supersample=4):
    """Render the die rotated by `angles` (degrees about x, y, z).

    Args:
        angles: three rotation angles in degrees.
        size: image side in pixels.
        projection: `"perspective"` or `"orthographic"`.
        ambiguity: the bottom-right face must be at least this many times
            larger (projected area) than the next face for the view to be kept.
        supersample: render this many times larger and average down
            (anti-aliasing).

    Returns:
        `DieView`.

    Example:
        >>> view = render_die((0, 0, 0), size=32)     # the face with one pip, head-on
        >>> view.label, view.image.shape
        (1, (32, 32))
    """
    from skimage.draw import polygon

    size = check_positive_int(size, "size")
    supersample = check_positive_int(supersample, "supersample")
    check_one_of(projection, "projection", ("perspective", "orthographic"))
    check_number(ambiguity, "ambiguity", minimum=1.0)
    rotation = _rotation(angles)
    big = size * supersample
    faces = _visible_faces(rotation, big, projection)
    canvas = np.zeros((big, big))
    theta = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    for pips, normal, u, v, rows, cols, _ in faces:
        shade = 0.35 + 0.6 * max(0.0, float(np.dot(normal, _LIGHT)))
        rr, cc = polygon(rows, cols, canvas.shape)
        canvas[rr, cc] = shade
        for pu, pv in _PIPS[pips]:
            ring = [
                normal + (pu + _PIP_RADIUS * np.cos(t)) * u + (pv + _PIP_RADIUS * np.sin(t)) * v
                for t in theta
            ]
            prow, pcol = _project(np.array(ring), big, projection)
            rr, cc = polygon(prow, pcol, canvas.shape)
            canvas[rr, cc] = 0.15 * shade
    image = canvas.reshape(size, supersample, size, supersample).mean(axis=(1, 3))
    label = _label(faces, ambiguity)
    described = [
        (f[0], f[-1] / supersample**2, (f[4].mean() / supersample, f[5].mean() / supersample))
        for f in faces
    ]
    return DieView(image.astype(np.float32), label, described, tuple(angles))


def die360(
    n=1000,
    size=32,
    seed=0,
    projection="perspective",
    ambiguity=1.5,
    supersample=4,
    return_angles=False,
):
    """Die360 images: `n` kept views of the die at random whole-degree rotations.

    Rotations are drawn uniformly from the 360^3 whole-degree angles; views
    that fail the prominence rule (see `render_die`) are discarded, and
    drawing goes on until `n` are kept (about 45 % are kept).

    Args:
        n: number of images.
        size: image side (the thesis uses 32).
        seed: integer seed; the same seed gives the same images.
        projection, ambiguity, supersample: see `render_die`.
        return_angles: also return the rotation of each image.

    Returns:
        `(x, y)`: float32 images `(n, size, size, 1)` in [0, 1] and int64 pip
        counts 1..6 (use `y - 1` as class index); with `return_angles`,
        also `(n, 3)` angles in degrees.

    Example:
        >>> x, y = die360(n=12, seed=0)
        >>> x.shape, set(y.tolist()) <= {1, 2, 3, 4, 5, 6}
        ((12, 32, 32, 1), True)
    """
    n = check_positive_int(n, "n")
    rng = np.random.default_rng(check_seed(seed))
    images, labels, kept = [], [], []
    draws = 0
    while len(images) < n:
        angles = tuple(int(a) for a in rng.integers(0, 360, size=3))
        draws += 1
        rotation = _rotation(angles)
        faces = _visible_faces(rotation, size, projection)
        if _label(faces, ambiguity) is None:
            continue
        view = render_die(angles, size, projection, ambiguity, supersample)
        images.append(view.image)
        labels.append(view.label)
        kept.append(angles)
        if draws > 100 * n + 1000:
            raise RuntimeError("Die360: too few views pass the prominence rule; lower `ambiguity`")
    x = np.stack(images)[..., np.newaxis]
    y = np.asarray(labels, dtype=np.int64)
    if return_angles:
        return x, y, np.asarray(kept, dtype=np.int64)
    return x, y


# name: (pooling blocks, convolutions per block) of a CNN, or hidden units of an MLP
DIE360_NETWORKS = {
    "c1": (1, 1),
    "c2": (2, 1),
    "c3": (3, 1),
    "c4": (4, 1),
    "c9": (3, 3),
    "d5": 5,
    "d10": 10,
    "d20": 20,
}


def die360_network(name="c2", size=32, filters=3):
    """An untrained network of `004` §5.2 for Die360, by its thesis name.

    ``c<k>`` networks alternate `k` convolutions (``filters`` 3x3 filters,
    stride 1, same padding, ReLU) with 2x2 max pooling (stride 2); ``c9``
    has three convolutions before each of its three poolings. A dense
    softmax layer over the 6 classes follows. ``d<h>`` networks are
    two-layer perceptrons with `h` sigmoid hidden units. With the default
    3 filters the parameter counts are the thesis' (Table 5.1), e.g. c2:
    1 272.

    Layer names: ``conv1``, ``pool1``, ``conv2``, ... (``conv1_1``,
    ``conv1_2``, ... for c9), ``flatten``, ``classes``; for MLPs
    ``flatten``, ``hidden``, ``classes``.

    Args:
        name: one of `DIE360_NETWORKS`.
        size: image side of the grey inputs.
        filters: filters per convolution.

    Returns:
        An uncompiled `keras.Sequential` whose input is `(size, size, 1)` in
        [0, 1] and whose output is the softmax over pip counts 1..6 (class
        index = pips - 1).

    Example:
        >>> die360_network("c2").count_params()
        1272
        >>> die360_network("d20").count_params()
        20626
    """
    import keras

    check_one_of(name, "name", tuple(DIE360_NETWORKS))
    size = check_positive_int(size, "size")
    layers = [keras.Input((size, size, 1), name="image")]
    shape = DIE360_NETWORKS[name]
    if isinstance(shape, tuple):
        blocks, per_block = shape
        for b in range(1, blocks + 1):
            for c in range(1, per_block + 1):
                conv = f"conv{b}" if per_block == 1 else f"conv{b}_{c}"
                layers.append(
                    keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=conv)
                )
            layers.append(keras.layers.MaxPooling2D(2, name=f"pool{b}"))
        layers.append(keras.layers.Flatten(name="flatten"))
    else:
        layers.append(keras.layers.Flatten(name="flatten"))
        layers.append(keras.layers.Dense(shape, activation="sigmoid", name="hidden"))
    layers.append(keras.layers.Dense(6, activation="softmax", name="classes"))
    return keras.Sequential(layers, name=f"die360_{name}")
