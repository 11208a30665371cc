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


_NORMALS = np.array([f[0] for f in _FACES], float)
_US = np.array([f[1] for f in _FACES], float)
_VS = np.array([f[2] for f in _FACES], float)
_COUNTS = np.array([f[3] for f in _FACES])


def _pip_table(pips):
    """Which of the 3 x 3 lattice points `(-_A, 0, _A)^2` of a face hold a pip."""
    table = np.zeros((3, 3), bool)
    for pu, pv in _PIPS[pips]:
        table[round(pu / _A) + 1, round(pv / _A) + 1] = True
    return table


_PIP_TABLES = np.stack([_pip_table(int(p)) for p in _COUNTS])  # (6 faces, 3, 3)
_CHUNK = 8192  # rotations per vectorised step (bounds memory)
# one-degree steps in rotation space: +x, -x, +y, -y, +z, -z
STEPS = np.array([(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)])
LAYOUTS = ("uniform", "thesis")
THESIS_IMAGES = 49_200


def _rotation(angles):
    return _rotations(np.asarray(angles, float).reshape(1, 3))[0]


def _rotations(angles):
    """`(n, 3)` angles in degrees about x, y, z -> `(n, 3, 3)` matrices `Rz @ Ry @ Rx`."""
    a = np.deg2rad(np.asarray(angles, float))
    c, s = np.cos(a), np.sin(a)
    one, zero = np.ones(len(a)), np.zeros(len(a))
    rx = np.stack([one, zero, zero, zero, c[:, 0], -s[:, 0], zero, s[:, 0], c[:, 0]], 1)
    ry = np.stack([c[:, 1], zero, s[:, 1], zero, one, zero, -s[:, 1], zero, c[:, 1]], 1)
    rz = np.stack([c[:, 2], -s[:, 2], zero, s[:, 2], c[:, 2], zero, zero, zero, one], 1)
    return rz.reshape(-1, 3, 3) @ ry.reshape(-1, 3, 3) @ rx.reshape(-1, 3, 3)


def _project(points, size, projection):
    """3-D points `(..., 3)` -> image `(rows, cols)` for a `size` x `size` image."""
    scale = 0.26 * size
    if projection == "perspective":
        factor = (_CAMERA - 1.0) / (_CAMERA - points[..., 2])
    else:
        factor = 1.0
    centre = (size - 1) / 2
    return centre - scale * points[..., 1] * factor, centre + scale * points[..., 0] * factor


def _geometry(rotations, size, projection):
    """Every face of every rotated die: normals, in-plane axes, visibility, projected corners.

    Returns `(normals, us, vs, visible, rows, cols, areas)` with shapes
    `(n, 6, 3)` x 3, `(n, 6)`, `(n, 6, 4)` x 2, `(n, 6)` (area 0 when hidden).
    """
    normals = np.einsum("nij,fj->nfi", rotations, _NORMALS)
    us = np.einsum("nij,fj->nfi", rotations, _US)
    vs = np.einsum("nij,fj->nfi", rotations, _VS)
    if projection == "perspective":  # the face's plane faces the camera at (0, 0, _CAMERA)
        visible = normals[..., 2] * _CAMERA - 1.0 > 1e-9
    else:
        visible = normals[..., 2] > 1e-9
    signs = np.array([(-1, -1), (1, -1), (1, 1), (-1, 1)], float)
    corners = (
        normals[:, :, None]
        + signs[None, None, :, :1] * us[:, :, None]
        + signs[None, None, :, 1:] * vs[:, :, None]
    )
    rows, cols = _project(corners, size, projection)
    areas = 0.5 * np.abs(
        np.einsum("nfk,nfk->nf", cols, np.roll(rows, 1, -1))
        - np.einsum("nfk,nfk->nf", rows, np.roll(cols, 1, -1))
    )
    return normals, us, vs, visible, rows, cols, np.where(visible, areas, 0.0)


def _labels(angles, projection="perspective", ambiguity=1.5):
    """Pip count of the bottom-right face of each rotation, 0 where the view is discarded.

    The bottom-right face is the face whose centre lies furthest towards the
    bottom-right corner among faces with at least `_SIGNIFICANT` of the
    visible area; the view is kept when that face is also the largest and at
    least `ambiguity` times larger than the next significant face.
    """
    angles = np.asarray(angles, float).reshape(-1, 3)
    out = np.zeros(len(angles), np.int64)
    for start in range(0, len(angles), _CHUNK):
        part = slice(start, start + _CHUNK)
        *_, visible, rows, cols, areas = _geometry(_rotations(angles[part]), 64, projection)
        significant = visible & (areas >= _SIGNIFICANT * areas.sum(1, keepdims=True))
        towards = np.where(significant, rows.mean(-1) + cols.mean(-1), -np.inf)
        bottom_right = towards.argmax(1)
        by_area = np.argsort(-np.where(significant, areas, -1.0), axis=1, kind="stable")
        first = np.take_along_axis(areas, by_area[:, :1], 1)[:, 0]
        second = np.take_along_axis(areas, by_area[:, 1:2], 1)[:, 0]
        several = significant.sum(1) > 1
        kept = (by_area[:, 0] == bottom_right) & ~(several & (first < ambiguity * second))
        out[part] = np.where(kept, _COUNTS[bottom_right], 0)
    return out


def _render(angles, size, projection, supersample):
    """Images `(n, size, size)` float32 of the die at `angles` `(n, 3)`, by ray casting.

    Each supersampled pixel centre is cast onto the plane of every visible
    face; a pixel whose hit lies inside the face's square shows the face's
    shade (one light), darkened inside a pip's disc. Front faces of a convex
    body never overlap, so at most one face covers a pixel.
    """
    big = size * supersample
    centre, scale = (big - 1) / 2, 0.26 * big
    grid = (np.arange(big, dtype=np.float32) - centre) / scale
    px, py = grid[None, :], -grid[:, None]  # x grows with the column, y with the row upwards
    angles = np.asarray(angles, float).reshape(-1, 3)
    images = np.zeros((len(angles), size, size), np.float32)
    step = max(1, _CHUNK // (big * big // 64))
    with np.errstate(divide="ignore", invalid="ignore"):
        for start in range(0, len(angles), step):
            normals, us, vs, visible, *_ = _geometry(
                _rotations(angles[start : start + step]), big, projection
            )
            canvas = np.zeros((len(normals), big, big), np.float32)
            for face in range(6):  # a ray parallel to a face's plane never hits it (inf, nan)
                shown = np.flatnonzero(visible[:, face])
                if not len(shown):
                    continue
                n, u, v = (
                    a[shown, face].astype(np.float32)[:, :, None, None] for a in (normals, us, vs)
                )
                if projection == "perspective":
                    depth = np.float32(_CAMERA - 1.0)
                    ray = n[:, 0] * px + n[:, 1] * py - n[:, 2] * depth
                    reach = (1.0 - n[:, 2] * _CAMERA) / ray
                    s = _CAMERA * u[:, 2] + reach * (u[:, 0] * px + u[:, 1] * py - u[:, 2] * depth)
                    t = _CAMERA * v[:, 2] + reach * (v[:, 0] * px + v[:, 1] * py - v[:, 2] * depth)
                    hit = reach > 0
                else:  # visible faces have n_z > 0
                    z = (1.0 - n[:, 0] * px - n[:, 1] * py) / n[:, 2]
                    s = u[:, 0] * px + u[:, 1] * py + u[:, 2] * z
                    t = v[:, 0] * px + v[:, 1] * py + v[:, 2] * z
                    hit = True
                inside = hit & (np.abs(s) <= 1) & (np.abs(t) <= 1)
                i = np.clip(np.rint(s / _A), -1, 1)
                j = np.clip(np.rint(t / _A), -1, 1)
                near = (s - i * _A) ** 2 + (t - j * _A) ** 2 < _PIP_RADIUS**2
                pip = _PIP_TABLES[face][i.astype(int) + 1, j.astype(int) + 1] & near
                shade = (0.35 + 0.6 * np.maximum(0.0, normals[shown, face] @ _LIGHT)).astype(
                    np.float32
                )[:, None, None]
                value = np.where(pip, np.float32(0.15) * shade, shade)
                canvas[shown] = np.where(inside, value, canvas[shown])
            images[start : start + step] = canvas.reshape(
                -1, size, supersample, size, supersample
            ).mean(axis=(2, 4))
    return images


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
    size = check_positive_int(size, "size")
    supersample = check_positive_int(supersample, "supersample")
    check_one_of(projection, "projection", ("perspective", "orthographic"))
    check_number(ambiguity, "ambiguity", minimum=1.0)
    angles = tuple(angles)
    *_, visible, rows, cols, areas = _geometry(_rotations([angles]), size, projection)
    label = int(_labels([angles], projection, ambiguity)[0])
    described = [
        (int(_COUNTS[f]), float(areas[0, f]), (float(rows[0, f].mean()), float(cols[0, f].mean())))
        for f in np.flatnonzero(visible[0])
    ]
    image = _render([angles], size, projection, supersample)[0]
    return DieView(image, label or None, described, angles)


@dataclass
class DieRotations:
    """Where each Die360 image lies in rotation space, and its one-degree neighbours.

    Attributes:
        angles: `(n, 3)` int64 rotation about x, y and z in whole degrees, 0..359.
        neighbours: `(n, 6)` int64: the image whose rotation differs by +1, -1
            degree about x, then y, then z (`STEPS`), or -1 where that
            rotation is not in the dataset.
        split: the first `split` images are the training split, the others
            the validation split (the images are in a seeded random order).

    Example:
        >>> x, y, rot = die360(n=600, layout="thesis", return_rotations=True)
        >>> rot.mean_neighbours > 4  # 5.69 at the thesis' 49 200 images
        True
        >>> path = rot.sequence(0, length=5)
        >>> np.abs(np.diff(rot.angles[path], axis=0)).sum(1).tolist()  # one degree per step
        [1, 1, 1, 1]
    """

    angles: np.ndarray
    neighbours: np.ndarray
    split: int

    @property
    def counts(self) -> np.ndarray:
        """`(n,)` number of one-degree neighbours of each image (0..6)."""
        return (self.neighbours >= 0).sum(1)

    @property
    def mean_neighbours(self) -> float:
        """Mean number of one-degree neighbours per image."""
        return float(self.counts.mean())

    @property
    def train(self) -> np.ndarray:
        """Indices of the training split (the first 80 %)."""
        return np.arange(self.split)

    @property
    def validation(self) -> np.ndarray:
        """Indices of the validation split (the last 20 %)."""
        return np.arange(self.split, len(self.angles))

    def sequence(self, start=0, length=16) -> np.ndarray:
        """Indices of a walk of one-degree steps from image `start` (004 §5.4).

        Each step keeps the direction of the step before while the image
        there exists, else takes the first unvisited neighbour (in `STEPS`
        order); the walk stops after `length` images or where every
        neighbour is visited.
        """
        from keras_introspect._validation import check_index

        current = check_index(start, len(self.angles), "image")
        length = check_positive_int(length, "length")
        path, seen, direction = [current], {current}, None
        while len(path) < length:
            row = self.neighbours[current]
            order = ([direction] if direction is not None else []) + list(range(len(STEPS)))
            nxt = next((d for d in order if row[d] >= 0 and int(row[d]) not in seen), None)
            if nxt is None:
                break
            direction, current = nxt, int(row[nxt])
            path.append(current)
            seen.add(current)
        return np.asarray(path, np.int64)


def one_degree_neighbours(angles) -> np.ndarray:
    """`(n, 6)` indices of the rotations one degree away from each of `angles` `(n, 3)`.

    Column `k` holds the index of the rotation `angles + STEPS[k]` (modulo
    360) among `angles`, or -1 where it is absent.

    Example:
        >>> one_degree_neighbours([(0, 0, 0), (1, 0, 0), (0, 0, 359)])[0].tolist()
        [1, -1, -1, -1, -1, 2]
    """
    angles = np.asarray(angles, np.int64).reshape(-1, 3) % 360
    keys = (angles[:, 0] * 360 + angles[:, 1]) * 360 + angles[:, 2]
    order = np.argsort(keys, kind="stable")
    ranked = keys[order]
    out = np.full((len(angles), len(STEPS)), -1, np.int64)
    for k, step in enumerate(STEPS):
        other = (angles + step) % 360
        wanted = (other[:, 0] * 360 + other[:, 1]) * 360 + other[:, 2]
        at = np.minimum(np.searchsorted(ranked, wanted), len(ranked) - 1)
        found = ranked[at] == wanted
        out[found, k] = order[at[found]]
    return out


def _quotas(total, parts):
    return [total // parts + (k < total % parts) for k in range(parts)]


def _thesis_angles(n, rng, projection, ambiguity, regions, coarse=6):
    """Rotations of the thesis layout: `regions` solid blocks of kept rotations per class.

    On a `coarse`-degree grid over all 360^3 rotations the kept views of each
    pip count are found, and each region is centred (seeded choice) among the
    grid points deepest inside them (distance to any rotation with another
    label or discarded, rotation space wrapping at 360). Around the centre the
    whole-degree rotations of that label connected to it are taken nearest
    first (the largest one-degree step along any axis, then the Euclidean
    distance): a compact block in which nearly every rotation has all six
    one-degree neighbours.
    """
    from scipy import ndimage

    axis = np.arange(0, 360, coarse)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    labels = _labels(grid, projection, ambiguity).reshape(len(axis), len(axis), len(axis))
    pad = len(axis) // 4
    taken, chosen = set(), []
    for cls, quota in zip(range(1, 7), _quotas(n, 6), strict=True):
        padded = np.pad(labels == cls, pad, mode="wrap")
        depth = ndimage.distance_transform_edt(padded)[pad:-pad, pad:-pad, pad:-pad]
        for part in _quotas(quota, regions):
            if depth.max() <= 0:
                raise RuntimeError(f"Die360: no region of rotations left for {cls} pips")
            deep = np.argwhere(depth >= 0.8 * depth.max())
            centre = deep[rng.integers(len(deep))]
            half = int(np.ceil(part ** (1 / 3) / 2)) + 2
            while True:
                steps = np.arange(-half, half + 1)
                box = np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), -1).reshape(-1, 3)
                same = _labels(box + centre * coarse, projection, ambiguity) == cls
                side = 2 * half + 1
                parts, _ = ndimage.label(same.reshape(side, side, side))
                component = parts.ravel() == parts[half, half, half]
                free = np.array(
                    [tuple(a) not in taken for a in (box + centre * coarse) % 360], bool
                )
                pick = np.flatnonzero(component & free)
                if len(pick) >= part:
                    break
                half += 3
            offsets = box[pick]
            ranking = np.lexsort(((offsets**2).sum(1), np.abs(offsets).max(1)))
            block = (offsets[ranking[:part]] + centre * coarse) % 360
            taken.update(map(tuple, block))
            chosen.append((block, cls))
            # the next region of this class starts away from this one
            reach = int(np.ceil((half + 1) / coarse)) * 2
            idx = np.stack(np.meshgrid(*[np.arange(-reach, reach + 1)] * 3, indexing="ij"), -1)
            near = (idx.reshape(-1, 3) + centre) % len(axis)
            depth[near[:, 0], near[:, 1], near[:, 2]] = 0
    angles = np.concatenate([block for block, _ in chosen])
    labels = np.concatenate([np.full(len(block), cls) for block, cls in chosen])
    return angles.astype(np.int64), labels.astype(np.int64)


def _uniform_angles(n, rng, projection, ambiguity):
    """Whole-degree rotations drawn uniformly, kept while they pass the prominence rule."""
    angles, labels, draws = [], [], 0
    while sum(len(a) for a in angles) < n:
        batch = rng.integers(0, 360, size=(max(64, 3 * n), 3))
        draws += len(batch)
        found = _labels(batch, projection, ambiguity)
        angles.append(batch[found > 0])
        labels.append(found[found > 0])
        if draws > 100 * n + 1000:
            raise RuntimeError("Die360: too few views pass the prominence rule; lower `ambiguity`")
    return np.concatenate(angles)[:n], np.concatenate(labels)[:n]


def die360(
    n=None,
    size=32,
    seed=0,
    projection="perspective",
    ambiguity=1.5,
    supersample=4,
    return_angles=False,
    layout="uniform",
    regions=1,
    return_rotations=False,
):
    """Die360 images: `n` kept views of the die at whole-degree rotations.

    Two layouts of the rotations:

    - ``"uniform"``: rotations drawn uniformly from the 360^3 whole-degree
      angles; views that fail the prominence rule (see `render_die`) are
      discarded, and drawing goes on until `n` are kept (about 45 % are
      kept). Images are nearly never one degree apart. Default `n`: 1 000.
    - ``"thesis"``: as `004` §5.1/§5.5 describe it, connected one-degree
      neighbourhoods: per pip count, `regions` compact blocks of
      whole-degree rotations that pass the prominence rule, so that nearly
      every image has its 6 one-degree neighbours (+-1 degree about one
      axis) in the dataset too (mean 5.69 at the default size, 76 % have
      all six). The
      classes are balanced (n / 6 each). Default `n`: 49 200, the thesis'.

    In both layouts the images come in a seeded random order and the first
    80 % are the training split (`DieRotations.split`), so a one-degree
    neighbour of nearly every validation image of the thesis layout is in
    the training split, as in the thesis.

    Args:
        n: number of images (default 1 000 uniform, 49 200 thesis).
        size: image side (the thesis uses 32).
        seed: integer seed; the same seed gives the same images and split.
        projection, ambiguity, supersample: see `render_die`.
        return_angles: also return the rotation of each image.
        layout: ``"uniform"`` or ``"thesis"``.
        regions: blocks of rotations per pip count (thesis layout); more
            blocks give more varied views with fewer one-degree neighbours.
        return_rotations: also return a `DieRotations` (angles, one-degree
            neighbours, split), e.g. to walk sequences.

    Returns:
        `(x, y)`: float32 images `(n, size, size, 1)` in [0, 1] and int64 pip
        counts 1..6 (use `y - 1` as class index); with `return_angles`,
        also `(n, 3)` angles in degrees; with `return_rotations`, a
        `DieRotations` last.

    Example:
        >>> x, y = die360(n=12, seed=0)
        >>> x.shape, set(y.tolist()) <= {1, 2, 3, 4, 5, 6}
        ((12, 32, 32, 1), True)
        >>> x, y, rot = die360(n=1200, layout="thesis", return_rotations=True)
        >>> np.bincount(y).tolist(), rot.split
        ([0, 200, 200, 200, 200, 200, 200], 960)
    """
    check_one_of(layout, "layout", LAYOUTS)
    if n is None:
        n = THESIS_IMAGES if layout == "thesis" else 1000
    n = check_positive_int(n, "n")
    size = check_positive_int(size, "size")
    supersample = check_positive_int(supersample, "supersample")
    check_one_of(projection, "projection", ("perspective", "orthographic"))
    check_number(ambiguity, "ambiguity", minimum=1.0)
    rng = np.random.default_rng(check_seed(seed))
    if layout == "uniform":
        angles, labels = _uniform_angles(n, rng, projection, ambiguity)
    else:
        regions = check_positive_int(regions, "regions")
        if n < 6 * regions:
            raise ValueError(
                f"Expected n >= 6 * regions for the thesis layout. Received: n={n}, "
                f"regions={regions}"
            )
        angles, labels = _thesis_angles(n, rng, projection, ambiguity, regions)
        order = rng.permutation(n)
        angles, labels = angles[order], labels[order]
    x = _render(angles, size, projection, supersample)[..., np.newaxis]
    out = (x, labels)
    if return_angles:
        out += (angles,)
    if return_rotations:
        out += (DieRotations(angles, one_degree_neighbours(angles), int(0.8 * n)),)
    return out


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
