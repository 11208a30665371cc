"""Figures of the explanation-quality metrics (`keras_introspect.metrics`)."""

from __future__ import annotations

import numpy as np


def _mean_curve(curves: np.ndarray) -> np.ndarray:
    finite = np.isfinite(curves).all(axis=1)
    return curves[finite].mean(axis=0) if finite.any() else np.full(curves.shape[1], np.nan)


def _std_curve(curves: np.ndarray) -> np.ndarray:
    finite = np.isfinite(curves).all(axis=1)
    return curves[finite].std(axis=0) if finite.any() else np.full(curves.shape[1], np.nan)


def plot_causal_curves(results, size=(4.0, 3.0), ylim=None):
    """Mean deletion and insertion curves per method, with the random maps' band.

    Args:
        results: `{method name: [CausalCurves, ...]}` (deletion and / or
            insertion results of `metrics.deletion` / `metrics.insertion`).
        size: of each panel, in inches.
        ylim: fixed y-axis limits, e.g. `(0, 1)` for raw probabilities, so
            that small differences are not zoomed into seeming large ones;
            `None` lets matplotlib choose.

    Returns:
        the matplotlib Figure: one panel per kind, one colour per method; the
        random maps' mean curve is dashed, inside a band of one standard
        deviation over the images; the legend gives each method's mean AUC
        (random maps' in brackets).
    """
    import matplotlib.pyplot as plt

    kinds = []
    for curves in results.values():
        for result in curves:
            if result.kind not in kinds:
                kinds.append(result.kind)
    fig, axes = plt.subplots(1, len(kinds), figsize=(size[0] * len(kinds), size[1]), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, kind in zip(axes[0], kinds, strict=True):
        for i, (name, curves) in enumerate(results.items()):
            colour = colours[i % len(colours)]
            for result in curves:
                if result.kind != kind:
                    continue
                label = f"{name} {result.mean_auc:.3f}"
                if result.random_curves is not None:
                    label += f" ({result.random_mean_auc:.3f})"
                    mean = _mean_curve(result.random_curves)
                    spread = _std_curve(result.random_curves)
                    ax.fill_between(
                        result.fractions, mean - spread, mean + spread, color=colour, alpha=0.12
                    )
                    ax.plot(result.fractions, mean, color=colour, linestyle="--", alpha=0.6)
                ax.plot(result.fractions, _mean_curve(result.curves), color=colour, label=label)
        ax.set_title(f"{kind} (AUC; random maps dashed, with band)", fontsize=9)
        ax.set_xlabel(f"fraction of pixels {'deleted' if kind == 'deletion' else 'inserted'}")
        ax.set_ylabel("score")
        if ylim is not None:
            ax.set_ylim(*ylim)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_randomization(results, absolute=False, ax=None):
    """Similarity to the trained model's maps as layers are randomised (Adebayo et al. Fig. 2).

    Args:
        results: `{method name: RandomizationResult}`.
        absolute: plot the similarity of the absolute maps.
        ax: Axes to draw on (default: a new figure).

    Returns:
        the Axes: x the randomised layers, top first; y the mean similarity.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.2))
    layers, measure = [], "similarity"
    for name, result in results.items():
        values = result.mean_abs if absolute else result.mean
        ax.plot(np.arange(len(result.layers)), values, marker="o", label=name)
        if len(result.layers) > len(layers):
            layers = result.layers
        measure = result.measure
    ax.set_xticks(np.arange(len(layers)))
    ax.set_xticklabels([layer.rsplit("/", 1)[-1] for layer in layers], rotation=45, ha="right")
    ax.axhline(0.0, color="grey", linewidth=0.5)
    ax.set_ylim(min(-0.1, ax.get_ylim()[0]), 1.05)
    mode = next(iter(results.values())).mode if results else ""
    ax.set_xlabel(f"randomised ({mode}, top first)")
    ax.set_ylabel(f"{measure}{' of |map|' if absolute else ''}")
    ax.legend(fontsize=7)
    ax.figure.tight_layout()
    return ax
