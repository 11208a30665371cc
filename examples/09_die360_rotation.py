"""The thesis' rotation figures (`004` §5.3-5.4): Figs 5.2-5.5 and Table 5.2 on Die360.

1. renders Die360 in the thesis layout (one-degree neighbourhoods in
   rotation space) and trains the eight networks with SGD and momentum, the
   rate and momentum chosen on the training split (`search_sgd`), or loads
   them (`--models DIR` from `05_die360_table.py --models DIR`);
2. Fig. 5.2: one feature's aggregated filter saliency along a one-degree
   sequence, as a strip (`sequence.png`) and an animation (`sequence.gif`),
   and per network the rank correlation of its maps on one-degree
   neighbours against that of the images;
3. Fig. 5.5: the image with the largest disagreement between networks, its
   one-degree neighbours and every network's posteriors (`disagreement.png`);
4. Table 5.2 / Figs 5.3-5.4: activation-maximization exemplars of every
   pooling layer of c1-c4 and c9 (`exemplars.png`), and each pooling
   filter's selectivity for pips (does c9's first pooling layer detect spots?);
5. the report section "rotation" (`report.html`).

Run: python examples/09_die360_rotation.py [--fast] [--models DIR] [--images N]
     [--epochs N] [out_dir]
"""

import argparse
import os
import time

import numpy as np

from keras_introspect import Introspector
from keras_introspect.datasets import DIE360_NETWORKS, die360, fit_die360, search_sgd
from keras_introspect.optimize import ActivationMaximization
from keras_introspect.plotting.rotation import (
    plot_disagreement,
    plot_layer_exemplars,
    plot_rotation_sequence,
    save_rotation_animation,
)
from keras_introspect.probes.rotation import (
    largest_disagreement,
    most_active_channel,
    neighbour_correlation,
    pip_selectivity,
    sequence_saliency,
)
from keras_introspect.report import build_report
from keras_introspect.report.rotation import RotationData

EXEMPLAR_NETWORKS = ["c1", "c2", "c3", "c4", "c9"]

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("out", nargs="?", default="die360_rotation", help="output folder")
parser.add_argument("--fast", action="store_true", help="1 200 images, c1 c2 c9 d5, few steps")
parser.add_argument("--models", help="load die360_<name>.keras from here where present")
parser.add_argument("--images", type=int, help="images to render (default 12 000)")
parser.add_argument("--epochs", type=int, help="epochs per network trained here (default 6)")
args = parser.parse_args()
n = args.images or (1200 if args.fast else 12_000)
epochs = args.epochs or (2 if args.fast else 6)
names = ["c1", "c2", "c9", "d5"] if args.fast else list(DIE360_NETWORKS)
steps = 16 if args.fast else 128
search = {"images": 600, "epochs": 1} if args.fast else {"images": 4000, "epochs": 2}
os.makedirs(args.out, exist_ok=True)
started = time.perf_counter()

x, pips, rot = die360(n=n, seed=0, layout="thesis", return_rotations=True)
print(f"{n} images, mean one-degree neighbours {rot.mean_neighbours:.2f}")
models = {}
for name in names:
    path = os.path.join(args.models or "", f"die360_{name}.keras")
    if args.models and os.path.exists(path):
        import keras

        models[name] = keras.saving.load_model(path)
        how = f"loaded {path}"
    else:
        chosen = search_sgd(name, x, pips, rot.split, **search)
        rate, momentum = chosen.learning_rate, chosen.momentum
        models[name], accuracy = fit_die360(
            name, x, pips, rot.split, learning_rate=rate, momentum=momentum, epochs=epochs
        )
        how = (
            f"SGD {rate:g} / {momentum:g} (searched on the training split), trained {epochs} "
            f"epochs, validation accuracy {accuracy:.4f}"
        )
    print(f"{name}: {how} ({time.perf_counter() - started:.0f} s)", flush=True)

# Fig. 5.2: the most active filter of c2's first pooling layer along a sequence, and
# per network the correlations of its own most active filter of pool1
shown = "c2"
channel = most_active_channel(models[shown], x[:500], "pool1")
start = int(np.flatnonzero(rot.counts == 6)[0])
sequence = rot.sequence(start, 16)
maps = sequence_saliency(models[shown], x, sequence, "pool1", channel)
fig = plot_rotation_sequence(
    x[sequence], maps, rot.angles[sequence], title=f"{shown} pool1 filter {channel}"
)
fig.savefig(os.path.join(args.out, "sequence.png"), dpi=110, bbox_inches="tight")
save_rotation_animation(os.path.join(args.out, "sequence.gif"), x[sequence], maps, fps=3)
print(f"\nFig. 5.2: {shown} pool1 filter {channel} along {len(sequence)} one-degree steps")
print(
    "| network | layer | filter | maps rank corr. | images rank corr. |\n|---|---|---:|---:|---:|"
)
for name in [m for m in names if m.startswith("c")]:
    own = most_active_channel(models[name], x[:500], "pool1")
    if own is None:
        print(f"| {name} | pool1 | all 0 | | |")
        continue
    row = neighbour_correlation(models[name], x, rot, "pool1", own, pairs=200).table[0]
    print(
        f"| {name} | pool1 | {own} | {row['maps rank corr.']:.3f} | "
        f"{row['images rank corr.']:.3f} |"
    )

# Fig. 5.5
found = largest_disagreement(models, x, rot)
fig = plot_disagreement(found, x, class_names=[str(p) for p in range(1, 7)])
fig.savefig(os.path.join(args.out, "disagreement.png"), dpi=110, bbox_inches="tight")
print(
    f"\nFig. 5.5: image {found.index} (pips {pips[found.index]}), disagreement "
    f"{np.nanmax(found.scores):.3f}; predicted pips per network: "
    + ", ".join(
        f"{m} {int(p.argmax()) + 1} ({p.max():.2f})"
        for m, p in zip(found.names, found.posteriors[:, 0], strict=True)
    )
)

# Table 5.2 / Figs 5.3-5.4: exemplars and pip selectivity of every pooling layer
exemplars = {}
print("\n| network | layer | pip selectivity per filter (pips / plain faces) |\n|---|---|---|")
for name in [m for m in EXEMPLAR_NETWORKS if m in models]:
    model = models[name]
    exemplars[name] = {}
    for layer in [layer.name for layer in model.layers if layer.name.startswith("pool")]:
        # a filter's receptive field, or the whole image where the field is larger
        field = Introspector(model).receptive_field(layer)
        inside = all(side <= x.shape[1] for side in field.size)
        am = ActivationMaximization(
            model, steps=steps, receptive_field=inside, init="max", value_range=(0.0, 1.0)
        )
        result = am.generate_for_channels(layer, "all", n=1, x=x[:2000])
        exemplars[name][layer] = result.images[:, 0]
        ratios = pip_selectivity(model, x[:2000], layer)
        print(f"| {name} | {layer} | {', '.join(f'{r:.2f}' for r in ratios)} |")
fig = plot_layer_exemplars(exemplars)
fig.savefig(os.path.join(args.out, "exemplars.png"), dpi=110, bbox_inches="tight")

# the report section
report = build_report(
    models[shown],
    x[:200],
    pips[:200] - 1,
    sections=["rotation"],
    results={"rotation": RotationData(x, rot, models, layer="pool1", channel=channel)},
)
report.save(os.path.join(args.out, "report.html"))
print(f"\nwrote {args.out}/ in {time.perf_counter() - started:.0f} s")
