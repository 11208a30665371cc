"""Activation maximization: the input that a class, layer, filter or neuron likes most.

Starting from an initial image, gradient ascent on the pixels (or on a
Fourier / decorrelated parameterization of them) maximises a target of the
model with its weights fixed (Erhan et al. 2009; Dai 2019, eq. 1-2):

    x* = argmax_x  objective(T(x)) - sum_i weight_i * R_i(x)

with random transforms `T` (robustness) and regularizers `R_i` (of the
pixels, or, for `Diversity`, of a layer's activations). For a
filter of an inner convolutional layer, `receptive_field=True` optimises
only the filter's receptive field: an input of receptive-field size run
through the layers up to the filter (Kalmeijer 2016, §3.1.1 "Proposed
Extension"; init from the most activating dataset patch, §4.4).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from keras_introspect._data import Batches
from keras_introspect._memory import check_batch_size, resolve_batch_size
from keras_introspect._progress import progress_bar
from keras_introspect._repr import Tabular, summary_repr
from keras_introspect._tensor import channels_last
from keras_introspect._validation import (
    UNSET,
    capped_steps,
    check_backend,
    check_model,
    check_number,
    check_one_of,
    check_positive_int,
    check_seed,
    check_value_range,
    check_verbose,
    renamed,
)
from keras_introspect.model.tap import COMPUTE_DTYPES
from keras_introspect.optimize import transforms as tr
from keras_introspect.optimize._engine import OPTIMIZERS, Loop, padded_runs, run_steps
from keras_introspect.optimize.parameterization import KINDS, Parameterization, colour_matrix
from keras_introspect.optimize.regularizers import (
    Diversity,
    GaussianBlur,
    check_regularizers,
    history_names,
)
from keras_introspect.targets import BoundTarget, Channel, Neuron, as_target

INITS = ("random", "mean", "max")


@dataclass
class AMResult(Tabular):
    """What `ActivationMaximization.generate` returns.

    Leading axes: `(n,)` for one objective; `(K, n)` for K channels at once
    (`generate_for_channels`, or a `Channel` target with several indices).

    Attributes:
        images: the optimised images, `(*lead, H, W, C)`, in the model's
            input range (receptive-field patches in receptive-field mode).
        history: `{name: (steps, *lead)}`: ``"objective"`` per step (of the
            transformed image the step saw) and one entry per penalty.
        activation: the objective on the final images, untransformed, `lead`.
        best_dataset_activation: the largest objective over the dataset
            images (per channel, `(K,)`), when `x` was given; else `None`.
        snapshots: images every `snapshot_every` steps,
            `(n_snapshots, *lead, H, W, C)`, or `None`.
        snapshot_steps: the step after which each snapshot was taken.
        channels: the channel of each entry of the K axis, or `None`.
        placed: in receptive-field mode with `place=True`, the patches pasted
            into full-size images at their unit's position.
        boxes: `(*lead, 2, 2)` `[start, stop)` rows and columns of each patch
            in the full image, clipped to it (receptive-field mode).
        positions: `(*lead, 2)` the unit of the full-size feature map each
            patch stands for (receptive-field mode): the most activating
            dataset unit for ``init="max"``, else the `Neuron`'s position or
            the centre. Pasted there (`placed`), a patch gives that unit the
            value in `activation` when its field lies inside the image.
        seed: the seed used.
    """

    __repr__ = summary_repr

    images: np.ndarray
    history: dict
    activation: np.ndarray
    best_dataset_activation: np.ndarray | float | None = None
    snapshots: np.ndarray | None = None
    snapshot_steps: list = field(default_factory=list)
    channels: list | None = None
    placed: np.ndarray | None = None
    boxes: np.ndarray | None = None
    positions: np.ndarray | None = None
    seed: int = 0

    def plot(self, **options):
        """The optimised images, one panel each (`plotting.plot_feature_visualization`);
        a Figure. Also the notebook display's picture."""
        from keras_introspect.plotting.grids import plot_feature_visualization

        return plot_feature_visualization(self, **options)

    @property
    def table(self) -> list:
        """One dict per optimised image: its channel (for K channels), its number and
        its final activation, beside the best dataset image's when known."""
        activation = np.asarray(self.activation)
        lead = activation.reshape(-1, activation.shape[-1]) if activation.ndim > 1 else None
        best = self.best_dataset_activation
        rows = []
        if lead is None:
            for i, a in enumerate(activation.ravel()):
                row = {"image": i, "activation": float(a)}
                if best is not None:
                    row["best dataset"] = float(np.asarray(best).ravel()[0])
                rows.append(row)
            return rows
        channels = self.channels if self.channels is not None else list(range(len(lead)))
        bests = None if best is None else np.asarray(best).ravel()
        for k, (channel, values) in enumerate(zip(channels, lead, strict=True)):
            for i, a in enumerate(values):
                row = {"channel": int(channel), "image": i, "activation": float(a)}
                if bests is not None:
                    row["best dataset"] = float(bests[k])
                rows.append(row)
        return rows

    def animation(self, format: str = "gif", fps: float = 4.0, value_range=None, scale: int = 1):
        """The snapshots as an animated GIF or PNG (APNG), one frame per snapshot.

        Each frame tiles the images of one snapshot: one row per channel
        (the K axis; a single row without it), one column per image, with a
        1-pixel white gap, so a frame is `(K H + K - 1) x (n W + n - 1)`
        pixels times `scale`. Pillow stores a frame identical to the one
        before it as a longer display of that frame.

        Args:
            format: ``"gif"`` or ``"png"`` (APNG).
            fps: frames per second (> 0).
            value_range: `(low, high)` shown black to white (the model's
                input range); `None`: the snapshots' own minimum and maximum,
                the same for every frame.
            scale: each pixel becomes a `scale x scale` block (nearest).

        Returns:
            The file's bytes.

        Raises:
            ValueError: the result has no snapshots (generate with
                `snapshot_every`), or the images have neither 1 nor 3 channels.
        """
        from keras_introspect._files import ANIMATION_FORMATS, animation_bytes

        check_one_of(format, "format", ANIMATION_FORMATS)
        fps = check_number(fps, "fps", 0.0, strict=True)
        scale = check_positive_int(scale, "scale")
        frames = _tiled_frames(self.snapshots, value_range, scale)
        grey = frames.shape[-1] == 1
        return animation_bytes([f[..., 0] if grey else f for f in frames], format, fps)

    def save_animation(self, path, fps: float = 4.0, value_range=None, scale: int = 1) -> str:
        """Write the snapshots as an animated GIF (``.gif``) or APNG (``.png``, ``.apng``).

        See `animation` for the frames and the arguments; the file is
        written atomically. Returns the path.

        Example:
            >>> import numpy as np, keras, keras_introspect as ki
            >>> model = keras.Sequential([keras.Input((8, 8, 1)),
            ...     keras.layers.Conv2D(4, 3, activation="relu", name="conv")])
            >>> am = ki.ActivationMaximization(model, ki.targets.Channel("conv", 2), steps=8,
            ...                                snapshot_every=2, value_range=(0.0, 1.0))
            >>> am.generate(n=2).save_animation("am.gif")  # doctest: +SKIP
            'am.gif'
        """
        from keras_introspect._files import animation_format, check_output_path, write_atomic

        path = check_output_path(path, "animation")
        data = self.animation(animation_format(path), fps, value_range, scale)
        return write_atomic(path, data)

    @property
    def exceeds_dataset(self):
        """Whether the final activation is above the best dataset image's."""
        if self.best_dataset_activation is None:
            return None
        best = np.asarray(self.best_dataset_activation)
        if self.activation.ndim == 2:
            best = best[:, None]
        return self.activation > best


class ActivationMaximization:
    """Images that maximise a target of a model (class, layer, channel, neuron, sums).

    Signals `(L, C)`, flat vectors `(L,)` and volumes `(D, H, W, C)` are
    optimised too, with the pixel and Fourier parameterizations (1-D and 3-D
    spectra), decorrelated colours where there are channels, and the
    penalties (`LpNorm`, `TotalVariation` along every axis, `L2`,
    `Diversity`); the image transforms, `GaussianBlur` and
    `receptive_field=True` are for images only.

    Args:
        model: a Keras 3 model with one image input `(H, W, C)` (or a
            signal, vector or volume input).
        target: what to maximise: a `keras_introspect.targets` object or a
            weighted sum of them (a negative weight minimises that term), or
            a class index. Class targets use the logits behind a softmax by
            default. Needed by `generate`; `generate_for_channels` takes its
            channels itself, so `None` is fine there.
        objective: the former name of `target` (a `FutureWarning`; removed
            in the next release).
        steps: optimisation steps (capped by the environment variable
            ``KI_MAX_STEPS`` when set, for tests and smoke runs).
        learning_rate: step size of the optimizer.
        optimizer: ``"adam"`` or ``"sgd"`` (plain gradient ascent).
        regularizers: `keras_introspect.optimize.regularizers` objects
            (`LpNorm`, `TotalVariation`, `L2`, `GaussianBlur`, `Diversity`),
            or `None`. With `Diversity` the `n` images of an objective are
            optimised in one run together (a run then holds at least `n`
            rows, whatever `batch_size`).
        transforms: `keras_introspect.optimize.transforms` objects applied
            at every step (`Pad` first, then `Jitter`, `Rotate`, `Scale`,
            `RandomFlip`, `Blur`), or `None`.
        parameterization: ``"pixel"``, ``"fft"``, ``"decorrelated"`` or
            ``"fft_decorrelated"`` (see `optimize.parameterization`).
        init: ``"random"`` (Gaussian with the dataset's channel mean/std when
            `x` is given, else mid-range or N(0, 1)), ``"mean"`` (the
            dataset's mean image), ``"max"`` (the dataset images, or
            receptive-field patches, that activate the target most), or an
            array of images `(H, W, C)` / `(n, H, W, C)`.
        value_range: `(low, high)` of valid inputs of the model (e.g.
            `(0, 255)` for a model with a `Rescaling` layer); `None` leaves
            the pixels unbounded.
        receptive_field: for a `Channel` or `Neuron` target of an inner
            layer, optimise an input of the filter's receptive-field size
            run through the layers up to it; the objective is the filter's
            unit whose field is that patch (see `_Patch`).
        snapshot_every: keep the image every this many steps (to show
            early-stopped results), or `None`.
        batch_size: images optimised together (rows; ``"auto"``: as many as
            fit in a quarter of the memory available); more images run in
            several independent batches with identical results.
        compute_dtype: `None`, ``"bfloat16"`` or ``"float16"`` (see
            `Introspector.tap`).
        image_shape: `(H, W, C)` of the images to optimise, for a model that
            takes any size (input `(None, None, C)`); default: the model's.
        relu_warmup: the open-ReLU warm-up of Xplique's MaCo: during the
            first `relu_warmup` steps every ReLU's backward pass is
            ``dx = dy`` (the gradient passes where the ReLU's input is
            negative too) instead of ``dx = dy * [x > 0]``; the forward pass,
            hence the objective and its history, is unchanged. Lets the
            optimisation start from units that are dead for the initial
            image. 0 (default): none. See `optimize._warmup`.
        verbose: 0 silent, 1 progress bar, 2 one line at the end.

    Example:
        >>> import numpy as np, keras, keras_introspect as ki
        >>> model = keras.Sequential([keras.Input((8, 8, 1)),
        ...     keras.layers.Conv2D(4, 3, activation="relu", name="conv")])
        >>> am = ki.ActivationMaximization(model, ki.targets.Channel("conv", 2),
        ...                                steps=20, value_range=(0.0, 1.0))
        >>> res = am.generate(n=2, seed=0)
        >>> res.images.shape, res.history["objective"].shape
        ((2, 8, 8, 1), (20, 2))
    """

    def __init__(
        self,
        model,
        target=None,
        *,
        steps: int = 256,
        learning_rate: float = 0.05,
        optimizer: str = "adam",
        regularizers=None,
        transforms=None,
        parameterization: str = "pixel",
        init="random",
        value_range=None,
        receptive_field: bool = False,
        snapshot_every: int | None = None,
        batch_size: int = 64,
        compute_dtype=None,
        image_shape=None,
        relu_warmup: int = 0,
        verbose: int = 0,
        objective=UNSET,
    ):
        check_model(model)
        self.model = model
        target = renamed(target, objective, "target", "objective", "ActivationMaximization")
        self.target = None if target is None else as_target(target)
        self.steps = check_positive_int(steps, "steps")
        self.learning_rate = check_number(learning_rate, "learning_rate", 0.0, strict=True)
        check_one_of(optimizer, "optimizer", OPTIMIZERS)
        self.optimizer = optimizer
        self.regularizers = check_regularizers(regularizers)
        self.transforms = tr.check_transforms(transforms)
        check_one_of(parameterization, "parameterization", KINDS)
        self.parameterization = parameterization
        if isinstance(init, str):
            check_one_of(init, "init", INITS)
        else:
            init = np.asarray(init, np.float32)
        self.init = init
        self.value_range = check_value_range(value_range)
        if not isinstance(receptive_field, bool):
            raise ValueError(
                f"Expected `receptive_field` to be True or False. Received: {receptive_field!r}"
            )
        self.receptive_field = receptive_field
        self.snapshot_every = (
            None if snapshot_every is None else check_positive_int(snapshot_every, "snapshot_every")
        )
        self.batch_size = check_batch_size(batch_size)
        check_one_of(compute_dtype, "compute_dtype", COMPUTE_DTYPES)
        self.compute_dtype = compute_dtype
        self.image_shape = image_shape
        if (
            isinstance(relu_warmup, bool)
            or not isinstance(relu_warmup, (int, np.integer))
            or relu_warmup < 0
        ):
            raise ValueError(
                "Expected `relu_warmup` to be an integer >= 0. "
                f"Received: relu_warmup={relu_warmup!r}"
            )
        self.relu_warmup = int(relu_warmup)
        self.verbose = check_verbose(verbose)
        self._intro = None

    # ------------------------------------------------------------- public
    def generate(self, n: int = 1, seed: int = 0, x=None, place: bool = False) -> AMResult:
        """Optimise `n` images from `n` seeded starts.

        Args:
            n: number of images (independent starts).
            seed: integer seed of the random start and transforms; the same
                seed gives the same images, whatever `batch_size`.
            x: dataset images (array, tensor, `tf.data.Dataset`, ...) for
                ``init="mean"``/``"max"``, for the colour statistics of the
                decorrelated parameterizations, and to compare the result
                with the best dataset activation.
            place: in receptive-field mode, also paste each patch into a
                full-size image at its unit's position (`AMResult.placed`).

        Returns:
            `AMResult`.
        """
        if self.target is None:
            raise ValueError(
                "generate() needs a target: ActivationMaximization(model, target). "
                "generate_for_channels(layer, channels) needs none"
            )
        return self._run(self.target, n, seed, x, place)

    @property
    def objective(self):
        """The former name of `target` (read-only; removed in the next release)."""
        return self.target

    def generate_for_channels(
        self,
        layer,
        channels="all",
        n: int = 1,
        seed: int = 0,
        x=None,
        aggregate: str = "mean",
        place: bool = False,
    ) -> AMResult:
        """Optimise images for many channels of `layer` in one batched run.

        Every (channel, image) pair is one row of the same compiled
        optimisation, so all channels cost about as much as one batch, not
        one run each. The constructor's `target` is not used (it may be None).

        Args:
            layer: layer selector.
            channels: ``"all"`` or a list of channel indices.
            n, seed, x, place: as `generate`.
            aggregate: how each channel's feature map becomes the objective
                (``"mean"``, ``"max"``, ``"sum"``; ignored in
                receptive-field mode, which reads the unit seeing the patch).

        Returns:
            `AMResult` whose arrays start with one entry per channel.
        """
        if not (channels == "all" or isinstance(channels, (list, tuple, np.ndarray))):
            channels = [channels]
        return self._run(Channel(layer, channels, aggregate=aggregate), n, seed, x, place)

    # ------------------------------------------------------------ set-up
    def _introspector(self):
        if self._intro is None:
            check_backend()
            from keras_introspect.model.introspector import Introspector

            self._intro = Introspector(self.model)
        return self._intro

    def _image_spec(self, intro) -> tuple:
        specs = intro.input_specs
        if specs is None or len(specs) != 1:
            raise ValueError(
                "ActivationMaximization needs a model with one image input. Received: "
                f"{'unknown inputs' if specs is None else f'{len(specs)} inputs'}"
            )
        shape = specs[0].shape
        if not 2 <= len(shape) <= 5:
            raise ValueError(
                f"Expected a model input of shape (batch, H, W, C) (or (batch, L), "
                f"(batch, L, C), (batch, D, H, W, C)). Received: input shape {shape}"
            )
        if len(shape) != 4:
            self._check_other_rank(shape)
        if self.image_shape is None:
            if any(d is None for d in shape[1:]):
                raise ValueError(
                    "The model takes images of any size (input shape "
                    f"{shape}): pass the size to optimise, image_shape=(H, W, C)"
                )
            return tuple(shape[1:]), specs[0].dtype
        given = tuple(self.image_shape)
        if len(given) != len(shape) - 1 or any(
            not isinstance(g, int) or g < 1 or (d is not None and d != g)
            for g, d in zip(given, shape[1:], strict=True)
        ):
            raise ValueError(
                f"Expected `image_shape` (H, W, C) of positive integers that the model "
                f"accepts (input shape {shape}). Received: image_shape={self.image_shape!r}"
            )
        return given, specs[0].dtype

    def _check_other_rank(self, shape) -> None:
        """Signals, vectors and volumes: pixel and Fourier parameterizations, the
        penalties; the image transforms and the blur are 2-D operations."""
        two_d = [type(t).__name__ for t in self.transforms]
        two_d += [type(r).__name__ for r in self.regularizers if isinstance(r, GaussianBlur)]
        if two_d:
            raise ValueError(
                f"Expected no image transforms or GaussianBlur for inputs of shape {shape} "
                f"(they resample 2-D images; pass transforms=[]). Received: {two_d}"
            )
        if self.receptive_field:
            raise ValueError(
                "receptive_field=True optimises receptive-field patches of images (2-D). "
                f"Received: a model input of shape {shape}"
            )

    def _rf_leaf(self, bound, image_size):
        """The single Channel/Neuron leaf optimised in receptive-field mode."""
        if len(bound.leaves) != 1 or not isinstance(bound.leaves[0][1].target, (Channel, Neuron)):
            raise ValueError(
                "receptive_field=True optimises one filter: expected a single Channel or "
                f"Neuron target (a weight is allowed). Received: objective={bound.target!r}"
            )
        weight, leaf = bound.leaves[0]
        info = self._intro.layer(leaf.path)
        field_, grid = info.receptive_field, info.spatial_shape
        if None in self._intro.input_specs[0].shape[1:]:
            # a model of free input size: the field and the layer's size at the size optimised
            info = self._intro.layer(info.path, input_size=tuple(image_size))
            field_, grid = info.receptive_field, info.spatial_shape
        if field_ is not None and field_.axes is not None:
            raise ValueError(
                f"receptive_field=True needs a layer whose spatial axes are in the input's "
                f"order; a Permute reordered those of {info.path!r} (axes {field_.axes})"
            )
        if field_ is None or len(field_.size) != 2:
            reason = info.receptive_field_reason or "it is not a 2-D feature map"
            raise ValueError(
                f"receptive_field=True needs a layer with a receptive field; "
                f"{info.path!r} has none: {reason}"
            )
        if field_.phases is not None:
            raise ValueError(
                f"receptive_field=True needs units whose fields are shifted copies of one "
                f"another; {info.path!r} follows an upsampling (its units' fields repeat "
                f"with a period, phases={field_.phases}): use receptive_field=False"
            )
        return _Patch.plan(weight, leaf, info, field_, image_size, grid)

    # --------------------------------------------------------------- run
    def _run(self, target, n, seed, x, place):
        n = check_positive_int(n, "n")
        seed = check_seed(seed)
        steps = capped_steps(self.steps)
        intro = self._introspector()
        image_shape, dtype = self._image_spec(intro)
        bound = BoundTarget(target, intro)
        bound.check_n_samples(n)
        K = bound.n_outputs
        multi = bound.output_labels is not None  # a K axis: several channels at once
        rf = self._rf_leaf(bound, image_shape[:2]) if self.receptive_field else None
        if place and rf is None:
            raise ValueError("place=True needs receptive_field=True (the patch is placed)")
        if isinstance(self.init, str) and self.init in ("mean", "max") and x is None:
            raise ValueError(
                f"init={self.init!r} needs the dataset: pass `x` to generate(). Received: x=None"
            )
        shape = image_shape if rf is None else (*rf.size, image_shape[2])
        diverse = any(isinstance(r, Diversity) for r in self.regularizers)
        if diverse and rf is not None:
            raise ValueError(
                "The Diversity regularizer needs whole images: it is not available with "
                "receptive_field=True"
            )

        data = _DatasetScan(self, intro, bound, rf, image_shape, n, x) if x is not None else None
        colour = None
        if self.parameterization.endswith("decorrelated") and len(shape) > 1:
            colour = colour_matrix(
                None if data is None else data.colour_sample, n_channels=shape[-1]
            )
        param = Parameterization(self.parameterization, shape, self.value_range, colour)

        # rows: (image j, output k) -> row j * K + k, as BoundTarget.params / expand order them
        cols = bound.expand(bound.params(0, n))
        row_image = np.repeat(np.arange(n), K)
        row_output = np.tile(np.arange(K), n)
        start_images = self._init_images(shape, n, K, seed, data, row_image, row_output, rf)
        draws = _transform_draws(seed, n, steps, max(1, tr.n_random(self.transforms)))

        batch_size = resolve_batch_size(self.batch_size, intro)
        groups = None
        if diverse:  # a run holds every image of its objectives (Diversity compares them)
            groups = max(1, min(K, batch_size // n))
            rows_per_run = n * groups
            runs = list(_grouped_runs(n, K, groups))
        else:
            rows_per_run = min(batch_size, n * K)
            runs = [
                (take, np.arange(rows_per_run) < count)
                for take, count in padded_runs(n * K, rows_per_run)
            ]
        chunk = self.snapshot_every or (steps if self.verbose == 0 else max(1, steps // 25))

        progbar = progress_bar(steps * len(runs), verbose=self.verbose, unit_name="step")
        warm = min(self.relu_warmup, steps)
        loop, warmup = None, None
        if steps > warm:  # else every step is a warm-up step
            loop = self._loop(intro, bound, rf, param, rows_per_run, dtype, groups)
        if warm:
            warm_loop = self._loop(intro, bound, rf, param, rows_per_run, dtype, groups, True)
            warmup = (warm_loop, warm)
        evaluate = self._evaluator(intro, bound, rf, rows_per_run, dtype)
        images, histories, snapshots, finals, order = [], [], [], [], []
        for take, real in runs:
            run_snaps = []

            def draws_of(t0, t1, take=take):
                return draws[t0:t1][:, row_image[take]]

            def snapshot(z, run_snaps=run_snaps):
                run_snaps.append(np.asarray(param.to_image(z)))

            z, hist = run_steps(
                loop,
                param.from_image(start_images[take]),
                cols[take],
                steps,
                chunk,
                draws_of,
                self.learning_rate,
                progbar,
                snapshot if self.snapshot_every else None,
                warmup,
            )
            final = np.asarray(param.to_image(z))
            images.append(final[real])
            finals.append(np.asarray(evaluate(final, cols[take]))[real])
            histories.append({k: h[:, real] for k, h in hist.items()})
            if run_snaps:
                snapshots.append(np.stack(run_snaps)[:, real])
            order.append(take[real])
        rows = np.argsort(np.concatenate(order))  # runs' real rows -> rows (j, k) in order

        def arrange(a, axis=0):
            """Rows `(j, k)` on `axis` (in run order) -> leading `(n,)` or `(K, n)` there."""
            a = np.moveaxis(a, axis, 0)[rows]
            a = a.reshape(n, K, *a.shape[1:])
            a, lead = (np.swapaxes(a, 0, 1), 2) if multi else (a[:, 0], 1)
            return np.moveaxis(a, list(range(lead)), list(range(axis, axis + lead)))

        result = AMResult(
            images=arrange(np.concatenate(images)),
            history={
                k: arrange(np.concatenate([h[k] for h in histories], axis=1), axis=1)
                for k in histories[0]
            },
            activation=arrange(np.concatenate(finals)),
            snapshots=arrange(np.concatenate(snapshots, axis=1), axis=1) if snapshots else None,
            snapshot_steps=(
                [min(t + chunk, steps) for t in range(0, steps, chunk)] if snapshots else []
            ),
            channels=bound.output_labels,
            seed=seed,
        )
        if data is not None:
            best = data.best
            result.best_dataset_activation = best if multi else float(best[0])
        if rf is not None:
            result.positions, result.boxes, result.placed = self._boxes(
                rf, image_shape, result.images, data, K, n, place, multi
            )
        return result

    # ---------------------------------------------------------- compiled
    def _score_fn(self, intro, bound, rf, dtype, groups=None, open_relu=False):
        """`score(images, cols) -> {"objective": (rows,), ...}`.

        With `groups` (objectives per run), also the penalty of each
        `Diversity` regularizer under its history name, from the same
        forward pass. With `open_relu`, the forward pass is traced with the
        warm-up's backward rule (`_warmup`).
        """
        import tensorflow as tf

        from keras_introspect.model._instrument import patching
        from keras_introspect.optimize._warmup import open_relu_wrappers

        opened = open_relu_wrappers([info.layer for info in intro.layers]) if open_relu else []
        if rf is None:
            diverse = []
            if groups is not None:
                names = history_names(self.regularizers)
                penalties = [r for r in self.regularizers if not isinstance(r, GaussianBlur)]
                diverse = [
                    (name, r, intro.layer(r.layer))
                    for name, r in zip(names, penalties, strict=True)
                    if isinstance(r, Diversity)
                ]
            paths = list(dict.fromkeys([*bound.paths, *(info.path for _, _, info in diverse)]))
            truncate = bound.inner_only
            tap = intro.tap(paths, compute_dtype=self.compute_dtype, truncate=truncate)

            def score(images, cols):
                intro.note_trace()
                with patching(opened):
                    activations, output = tap(tf.cast(images, dtype))
                values = {"objective": bound.score(activations, output, cols)}
                by_path = dict(zip(paths, activations, strict=True))
                for name, r, info in diverse:
                    a = channels_last(by_path[info.path], info.channel_axis)
                    values[name] = r.penalty(a, groups)
                return values

            return score
        tap = intro.tap([rf.info.path], compute_dtype=self.compute_dtype, truncate=True)

        def score(images, cols):
            intro.note_trace()
            with patching(opened):
                (activation,), _ = tap(tf.cast(images, dtype))
            a = channels_last(activation, rf.info.channel_axis)
            unit = a[(slice(None), *rf.unit)]
            return {"objective": rf.weight * tf.gather(unit, cols[:, 0], axis=-1, batch_dims=1)}

        return score

    def _key(self, bound, rf, rows, kind):
        return (
            "activation maximization",
            kind,
            bound.structure,
            None if rf is None else rf.unit,
            rows,
            self.compute_dtype,
        )

    def _loop(self, intro, bound, rf, param, rows, dtype, groups=None, open_relu=False):
        key = (
            *self._key(bound, rf, rows, "warm-up loop" if open_relu else "loop"),
            repr(param),
            None if param.colour is None else param.colour.tobytes(),
            repr(self.transforms),
            repr(self.regularizers),
            self.optimizer,
            groups,
        )

        def build():
            score = self._score_fn(intro, bound, rf, dtype, groups, open_relu)
            return Loop(
                score,
                ["objective"],
                param,
                self.transforms,
                self.regularizers,
                self.optimizer,
                rows,
                bound.n_columns,
            )

        # shared by every optimizer object of the model (see ModelSession)
        return intro.cached(key, build)

    def _evaluator(self, intro, bound, rf, rows, dtype):
        """`evaluate(images, cols) -> (rows,)` objectives of the final images."""
        import tensorflow as tf

        from keras_introspect.probes._scan import served_store

        key = self._key(bound, rf, rows, "score")

        def build():
            score = self._score_fn(intro, bound, rf, dtype)
            return tf.function(
                lambda images, cols: score(images, cols)["objective"],
                autograph=False,
                reduce_retracing=True,
            )

        store = served_store(intro)
        if (
            rf is not None
            or store is None
            or self.compute_dtype is not None
            or not bound.inner_only
            or not set(bound.paths) <= set(store.paths)
        ):
            return intro.cached(key, build)

        def evaluate(images, cols):
            # a report's store reads images of its own size through the graph it
            # traced already: no graph of the model to score a few images
            if store.unusable or images.shape[1:] != store.x.shape[1:]:
                return intro.cached(key, build)(images, cols)
            try:
                activations = [tf.constant(a) for a in store.read(images, bound.paths)]
            except Exception:  # e.g. a shared layer among the store's: score on its own
                return intro.cached(key, build)(images, cols)
            return bound.score(activations, None, tf.constant(cols))

        return evaluate

    # ------------------------------------------------------------- inits
    def _init_images(self, shape, n, K, seed, data, row_image, row_output, rf):
        init = self.init
        if isinstance(init, np.ndarray):
            images = init if init.ndim == 4 else init[None]
            if images.shape[1:] != tuple(shape) or images.shape[0] not in (1, n):
                raise ValueError(
                    f"Expected `init` images of shape {tuple(shape)} or ({n}, *{tuple(shape)}) "
                    f"(one per image of generate(n={n})). Received: init with shape {init.shape}"
                )
            images = np.broadcast_to(images, (n, *shape))[row_image]
        elif init == "mean":
            images = np.broadcast_to(data.mean_patch(shape), (n * K, *shape))
        elif init == "max":
            images = data.top_images[row_output, row_image]
        else:
            images = np.stack([self._noise(shape, seed, j, data) for j in row_image])
        images = np.asarray(images, np.float32)
        if self.value_range is not None:
            images = np.clip(images, *self.value_range)
        return images

    def _noise(self, shape, seed, image, data):
        rng = np.random.default_rng([seed, image, 0])
        if data is not None:
            mean, std = data.channel_mean, data.channel_std
        elif self.value_range is not None:
            low, high = self.value_range
            mean, std = (low + high) / 2.0, (high - low) / 8.0
        else:
            mean, std = 0.0, 1.0  # Kalmeijer 2016, §4.4: zero mean, unit deviation
        return rng.normal(size=shape) * std + mean

    def _boxes(self, rf, image_shape, images, data, K, n, place, multi):
        size = image_shape[:2]
        if isinstance(self.init, str) and self.init == "max":
            positions = data.top_positions  # (K, n, 2)
            canvases = data.top_source  # (K, n, H, W, C)
        else:
            centre = tuple((d - 1) // 2 for d in rf.grid)
            if rf.leaf.position is not None:
                centre = rf.leaf.position
            positions = np.broadcast_to(np.array(centre), (K, n, 2))
            base = data.mean_image if data is not None else np.zeros(image_shape, np.float32)
            canvases = np.broadcast_to(base, (K, n, *image_shape))
        starts = [rf.start(p) for p in positions.reshape(-1, 2)]
        boxes = np.array(
            [
                [[max(a, 0), min(a + h, d)] for a, h, d in zip(st, rf.size, size, strict=True)]
                for st in starts
            ]
        ).reshape(K, n, 2, 2)
        placed = None
        if place:
            patches = images.reshape(K, n, *images.shape[-3:])
            placed = np.array(canvases, np.float32, copy=True)
            for (k, j), st in zip(np.ndindex(K, n), starts, strict=True):
                _paste(placed[k, j], patches[k, j], st, rf.size)
            placed = placed if multi else placed[0]
        positions = np.array(positions)
        return (positions if multi else positions[0]), (boxes if multi else boxes[0]), placed

    def __repr__(self):
        return (
            f"ActivationMaximization(model={self.model.name!r}, target={self.target!r}, "
            f"steps={self.steps}, parameterization={self.parameterization!r})"
        )

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_intro"] = None
        return state


@dataclass
class _Patch:
    """How one filter's receptive field is optimised on its own.

    The patch has the field's size. The unit read in the patch's feature map
    is the one whose field (with the layer's offset and stride) overlaps the
    patch most: the whole patch for valid padding and for stride-1 same
    padding, all but part of one stride otherwise (Kalmeijer 2016, §5.3,
    saw such borders ignored).

    Attributes:
        weight: the weight of the target term (negative: minimise).
        leaf: the bound Channel/Neuron leaf.
        info: the layer's `LayerInfo`.
        field: its `ReceptiveField`.
        size: patch size `(h, w)`.
        unit: the unit read in the patch's feature map.
        grid: the layer's spatial size for the images optimised (for a model
            of free input size, at that size); `None` where unknown.
    """

    weight: float
    leaf: object
    info: object
    field: object
    size: tuple
    unit: tuple
    grid: tuple | None = None

    @classmethod
    def plan(cls, weight, leaf, info, field_, image_size, grid=None):
        if any(s > d for s, d in zip(field_.size, image_size, strict=True)):
            raise ValueError(
                f"The receptive field of {info.path!r} ({field_.size}) is larger than the "
                f"input ({tuple(image_size)}): optimise the whole image (receptive_field=False)"
            )
        unit = []
        for offset, stride, size in zip(field_.offset, field_.stride, field_.size, strict=True):
            overlaps = [
                min(offset + i * stride + size, size) - max(offset + i * stride, 0)
                for i in range(size // stride + 2)
            ]
            unit.append(int(np.argmax(overlaps)))
        return cls(weight, leaf, info, field_, tuple(field_.size), tuple(unit), grid)

    def start(self, position) -> tuple:
        """Input coordinates of the patch's first pixel for the unit at `position`."""
        return tuple(
            (p - u) * s for p, u, s in zip(position, self.unit, self.field.stride, strict=True)
        )


def _paste(canvas, patch, starts, sizes) -> None:
    """Write `patch` into `canvas` at `starts` (parts outside are dropped)."""
    source, target = [], []
    for start, size, limit in zip(starts, sizes, canvas.shape, strict=False):
        lo, hi = max(start, 0), min(start + size, limit)
        target.append(slice(lo, hi))
        source.append(slice(lo - start, hi - start))
    canvas[tuple(target)] = patch[tuple(source)]


def _grouped_runs(n: int, K: int, groups: int):
    """Yield `(take, real)` per run of `groups` whole objectives, `n * groups` rows each.

    Row `j * groups + g` of a run is image `j` of objective `k0 + g` (global
    row `j * K + k0 + g`), so `Diversity` finds the images of one objective
    at rows `r % groups == g`. The last run is padded with copies of the
    last objective (whole groups, so they never meet the real rows);
    `real` marks the rows that are not copies.
    """
    for k0 in range(0, K, groups):
        objectives = np.arange(k0, k0 + groups)
        real = np.broadcast_to(objectives < K, (n, groups)).ravel()
        take = (np.arange(n)[:, None] * K + np.minimum(objectives, K - 1)[None]).ravel()
        yield take, real


def _tiled_frames(snapshots, value_range, scale: int) -> np.ndarray:
    """`(n_snapshots, Hf, Wf, C)` uint8 frames: the images of each snapshot tiled."""
    if snapshots is None:
        raise ValueError(
            "This result has no snapshots to animate: generate it with "
            "ActivationMaximization(..., snapshot_every=k)"
        )
    snaps = np.asarray(snapshots, np.float32)
    steps, (H, W, C) = snaps.shape[0], snaps.shape[-3:]
    if C not in (1, 3):
        raise ValueError(f"Expected images with 1 or 3 channels to animate. Received: {C} channels")
    grid = snaps.reshape(steps, -1, snaps.shape[-4], H, W, C)  # (steps, K, n, H, W, C)
    low, high = check_value_range(value_range) or (float(snaps.min()), float(snaps.max()))
    scaled = np.clip((grid - low) / max(high - low, 1e-12), 0.0, 1.0)
    pixels = np.round(scaled * 255.0).astype(np.uint8)
    K, n = grid.shape[1:3]
    frames = np.full((steps, K * (H + 1) - 1, n * (W + 1) - 1, C), 255, np.uint8)
    for k in range(K):
        for j in range(n):
            top, left = k * (H + 1), j * (W + 1)
            frames[:, top : top + H, left : left + W] = pixels[:, k, j]
    return frames.repeat(scale, axis=1).repeat(scale, axis=2)


def _transform_draws(seed, n, steps, n_random) -> np.ndarray:
    """`(steps, n, n_random)` uniform draws, one stream per image (batch-independent)."""
    draws = np.empty((steps, n, n_random), np.float32)
    for j in range(n):
        draws[:, j] = np.random.default_rng([seed, j, 1]).random((steps, n_random))
    return draws


def _dataset_scores(intro, bound, spec, kept=False):
    """Compiled `(images, cols (K, n_columns)) -> [(b, K) scores]` of the target; with
    `kept`, `spec` is a list of specs of the activations of `bound.paths` read
    beforehand (`probes._scan.ActivationStore`), passed instead of the images."""
    import tensorflow as tf

    tap = None if kept else intro.tap(bound.paths or [], truncate=bound.inner_only)

    def scores(*args):
        intro.note_trace()
        cols = args[-1]
        b, K = tf.shape(args[0])[0], tf.shape(cols)[0]
        if kept:  # each image's activations once per output
            activations, output = [tf.repeat(a, K, axis=0) for a in args[:-1]], None
        else:
            activations, output = tap(tf.repeat(args[0], K, axis=0))
        return [tf.reshape(bound.score(activations, output, tf.tile(cols, [b, 1])), [b, K])]

    signature = [*(spec if kept else [spec]), tf.TensorSpec((None, bound.n_columns), tf.int32)]
    return tf.function(scores, input_signature=signature, autograph=False)


def _dataset_units(intro, rf, spec, kept=False):
    """Compiled `(images, channels) -> [best unit value, its flat position]` per channel;
    with `kept`, the layer's activations read beforehand instead of the images."""
    import tensorflow as tf

    weight, info = rf.weight, rf.info
    tap = None if kept else intro.tap([info.path], truncate=True)

    def scores(source, channels):
        intro.note_trace()
        a = source if kept else tap(source)[0][0]
        a = tf.gather(channels_last(a, info.channel_axis), channels, axis=-1)
        flat = tf.reshape(a, [tf.shape(a)[0], -1, tf.shape(channels)[0]])
        # the objective is weight * unit: rank units by it; the map's spatial size
        # comes from the images (a model of free input size)
        return [
            tf.reduce_max(weight * flat, axis=1),
            tf.argmax(weight * flat, axis=1, output_type=tf.int32),
            tf.shape(a)[1:-1],
        ]

    signature = [spec[0] if kept else spec, tf.TensorSpec((None,), tf.int32)]
    return tf.function(scores, input_signature=signature, autograph=False)


class _DatasetScan:
    """One pass over the dataset: mean image, colour statistics, best activations.

    Keeps, per output k, the `n` images (or, in receptive-field mode, the
    patches of the strongest units) that score highest, for ``init="max"``.
    """

    def __init__(self, am, intro, bound, rf, image_shape, n, x):
        import tensorflow as tf

        from keras_introspect.probes._scan import stored
        from keras_introspect.probes.out_of_sample import ChannelMoments
        from keras_introspect.probes.top_activating import crop, keep_images, merge_top

        total = 0.0
        moments = ChannelMoments()
        samples = []
        want_top = isinstance(am.init, str) and am.init == "max"
        # activations a report read beforehand for these images: no forward graph
        read = [rf.info.path] if rf is not None else bound.paths if bound.inner_only else None
        read_before = stored(intro, x, read) if read else None
        kept_input = read_before is not None
        if rf is None:
            # (K, n_columns) target columns; per-image classes: the first
            extra = bound.expand(bound.params(0, 1))
            key = ("activation maximization", "dataset", bound.structure)
            build = lambda spec: _dataset_scores(intro, bound, spec, kept_input)  # noqa: E731
        else:
            leaf = rf.leaf
            extra = np.asarray([leaf.constant] if leaf.many is None else list(leaf.many), np.int32)
            key = ("activation maximization", "dataset units", rf.info.path, rf.weight)
            build = lambda spec: _dataset_units(intro, rf, spec, kept_input)  # noqa: E731

        fn = None
        best = None
        kept = {}
        start = 0
        size = resolve_batch_size(am.batch_size, intro, factor=1)
        for batch in Batches(x, size, intro.input_specs):
            total = total + batch.sum(0, dtype=np.float64)
            moments.add(batch)
            if sum(len(s) for s in samples) < 20000:
                pixels = batch.reshape(-1, batch.shape[-1])
                samples.append(pixels[:: max(1, len(pixels) // 2000)])
            source = [a[start : start + len(batch)] for a in read_before] if kept_input else [batch]
            if fn is None:
                spec = [tf.TensorSpec((None, *a.shape[1:]), tf.as_dtype(a.dtype)) for a in source]
                spec, key = (spec, (*key, "stored")) if kept_input else (spec[0], key)
                fn = intro.cached((*key, repr(spec)), lambda spec=spec: build(spec))
            out = [np.asarray(o) for o in fn(*source, extra)]
            values = out[0].T.astype(np.float64)  # (K, b) objective values
            b = values.shape[1]
            index = np.broadcast_to(np.arange(start, start + b), values.shape)
            positions = None
            if rf is not None:
                positions = np.stack(np.unravel_index(out[1].T, tuple(out[2])), axis=-1)
            best = merge_top(best, (values, index, positions), n)
            if want_top:
                kept = keep_images(kept, best[1], batch, start)
            start += b
        self.mean_image = (total / start).astype(np.float32)
        self.channel_mean, self.channel_std = moments.mean, moments.std
        self.colour_sample = np.concatenate(samples)[:, None, None, :]
        best_values, best_index, best_positions = best
        self.best = best_values[:, 0].astype(np.float32)
        self.rf = rf
        self.image_shape = image_shape
        if want_top:
            if start < n:
                raise ValueError(
                    f"init='max' takes the n={n} most activating dataset images. Received: "
                    f"{start} images in `x`"
                )
            self.top_source = np.stack([[kept[i] for i in row] for row in best_index])
            if rf is None:
                self.top_images = self.top_source.astype(np.float32)
            else:
                self.top_positions = best_positions
                self.top_images = np.array(
                    [
                        [crop(img, rf.start(p), rf.size) for img, p in zip(imgs, ps, strict=True)]
                        for imgs, ps in zip(self.top_source, self.top_positions, strict=True)
                    ],
                    np.float32,
                )

    def mean_patch(self, shape):
        """The mean image, or its centre patch of `shape` in receptive-field mode."""
        H, W = self.image_shape[:2]
        h, w = shape[:2]
        top, left = (H - h) // 2, (W - w) // 2
        return self.mean_image[top : top + h, left : left + w]
