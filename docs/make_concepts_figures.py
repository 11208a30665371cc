"""Make the pictures of docs/concepts.md: concepts of the demo's c2 network on Die360.

Run: python docs/make_concepts_figures.py [--model die360_c2.keras]

Trains the demo network as `keras-introspect demo` does (or loads it), then runs the
worked example of the page on the validation images of class 2 (three pips) and
writes docs/images/concepts-*.png with the numbers quoted in the page.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

IMAGES = Path(__file__).with_name("images")


def main() -> int:
    import keras
    import matplotlib

    matplotlib.use("Agg")

    import keras_introspect as ki
    from keras_introspect.datasets.die360 import die360
    from keras_introspect.demo import FULL, train_die360
    from keras_introspect.plotting.concepts import (
        plot_concept_counts,
        plot_concept_exemplars,
        plot_concept_importance,
        plot_concept_maps,
    )

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="load (or save after training) the c2 network here")
    args = parser.parse_args()
    if args.model and os.path.exists(args.model):
        model = keras.models.load_model(args.model)
        x, pips = die360(n=FULL[0], seed=0)
        y = np.asarray(pips) - 1
    else:
        model, x, y, _, _ = train_die360("c2", n=FULL[0], epochs=FULL[1])
        if args.model:
            model.save(args.model)
    split = int(0.8 * len(x))
    x, y = x[split:], y[split:]
    IMAGES.mkdir(exist_ok=True)

    x3 = x[y == 2][:40]  # three pips
    started = time.perf_counter()
    cd = ki.ConceptDiscovery(model, "pool2", method="dpgmm", target=2, random_state=0).fit(x3)
    importance = cd.importance(x3)
    print(f"class 2 at pool2: {cd.n_concepts_} concepts from {cd.n_crops_} crops, importance")
    print("  " + ", ".join(f"{k}: {v:.2f}" for k, v in enumerate(importance)))
    print(f"  ({time.perf_counter() - started:.1f} s)")
    plot_concept_exemplars(cd.exemplars(8), value_range=(0, 1)).savefig(
        IMAGES / "concepts-exemplars.png", dpi=80
    )
    plot_concept_maps(x3[:3], cd.concept_maps(x3[:3]), value_range=(0, 1)).savefig(
        IMAGES / "concepts-maps.png", dpi=80
    )
    plot_concept_importance(importance).figure.savefig(
        IMAGES / "concepts-importance.png", dpi=80, bbox_inches="tight"
    )
    rows = []
    for cls in range(6):
        xc = x[y == cls][:40]
        for layer in ("pool1", "pool2"):
            found = ki.ConceptDiscovery(model, layer, method="dpgmm", random_state=0).fit(xc)
            rows.append({"class": cls, "layer": layer, "n_concepts": found.n_concepts_})
    print("concepts per layer:", rows)
    plot_concept_counts(rows).figure.savefig(
        IMAGES / "concepts-per-layer.png", dpi=80, bbox_inches="tight"
    )
    for name in ("exemplars", "maps", "importance", "per-layer"):
        print(f"wrote {IMAGES / f'concepts-{name}.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
