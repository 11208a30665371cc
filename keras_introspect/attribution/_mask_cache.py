"""Masks of one `explain` call, upsampled on the device once and kept for all its images.

RISE and Sobol attribution score every image against the same masks, in steps
of `m` masks. Upsampling a step's masks for every chunk of images would cost
as much as the forward passes on a small model, so `StepMasks` upsamples each
step once per call and keeps the result on the device while the kept masks
fit `MASK_CACHE_BYTES` (beyond it a step is upsampled again for each chunk of
images: the same values, more work).
"""

from __future__ import annotations

import numpy as np

from keras_introspect.attribution._base import compile_step

# upsampled masks kept on the device for the images of one call, up to this size
MASK_CACHE_BYTES = 1 << 30


class StepMasks:
    """The masks `(m, *size)` float32 of steps `first:first + m` of one call.

    Args:
        intro: the model's `Introspector` (holds the compiled upsampling, shared by
            every object of the model).
        key: what the upsampling graph depends on (method, grid shape, size, ...).
        upsample: `upsample(*parts) -> (m, *size)` float32 tensor, traced once per key.
        rows: host arrays with one entry per mask (grids, shifts, ...); a step's
            slice of each is its input. The last step is padded with zero rows to
            `m` rows (one trace per size); a zero grid must upsample to a zero mask.
        size: the spatial shape of the masks.

    `upsampled_rows` counts the mask rows upsampled (padding included): a
    diagnostic of the cache. The owner drops the object at the end of its call,
    which frees the kept masks.
    """

    def __init__(self, intro, key, upsample, rows, size):
        import tensorflow as tf

        self.rows = [np.asarray(a) for a in rows]
        self.size = tuple(int(n) for n in size)
        self.upsampled_rows = 0
        self._kept = {}  # (first, m) -> masks on the device
        self._bytes = 0
        specs = [tf.TensorSpec((None, *a.shape[1:]), tf.as_dtype(a.dtype)) for a in self.rows]

        def build():
            def step(*parts):
                intro.note_trace()
                return upsample(*parts)

            return compile_step(step, specs)

        self._fn = intro.cached(("step masks", key, tuple(map(repr, specs))), build)

    def __len__(self):
        return len(self.rows[0])

    def __call__(self, first: int, m: int):
        """The masks of rows `first:first + m` (zero masks after the last row)."""
        found = self._kept.get((first, m))
        if found is not None:
            return found
        parts = [a[first : first + m] for a in self.rows]
        pad = m - len(parts[0])
        if pad:
            parts = [np.concatenate([p, np.zeros((pad, *p.shape[1:]), p.dtype)]) for p in parts]
        masks = self._fn(*parts)
        self.upsampled_rows += m
        nbytes = 4 * m * int(np.prod(self.size))
        if self._bytes + nbytes <= MASK_CACHE_BYTES:
            self._kept[(first, m)] = masks
            self._bytes += nbytes
        return masks
