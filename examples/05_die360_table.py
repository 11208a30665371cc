"""Table 5.1 of the thesis (`004`): every network trained on rendered Die360 images.

The thesis renders 49 200 grey 32 x 32 views of a die (labelled by the pip
count of the bottom-right face), trains CNNs with 1, 2, 3, 4 or 9
convolutions of 3 filters (`c1` ... `c9`) and two-layer perceptrons with 5,
10 or 20 hidden units (`d5` ... `d20`) with SGD and momentum, and reports
the validation accuracy on a random 80/20 split: the mean over runs and the
distance to the best and worst run. This script does the same with
`datasets.die360` and `datasets.die360_network`:

1. renders the images (`--layout thesis`: connected one-degree
   neighbourhoods in rotation space, as the thesis' §5.5 describes them;
   `--layout uniform`: independent uniform rotations, a harder task);
2. per network, chooses SGD's learning rate and momentum by a small search
   on the training split only (`datasets.search_sgd`);
3. trains `--runs` runs (seeds 0, 1, ...) and prints the table beside the
   thesis' figures, with whether our mean lies in the thesis' [min, max]
   widened by 0.005.

Run: python examples/05_die360_table.py [--fast] [--layout thesis|uniform] [--runs N]
     [--images N] [--epochs N] [--only c1 c9 ...] [--models DIR] [out.md]

`--fast` (for CI) trains c1, c2 and d5 once on 3 000 images for 3 epochs
after a one-epoch search: it checks that everything runs, not the
accuracies. The full run's time and result are in `docs/datasets.md`.
"""

import argparse
import os
import time

import numpy as np

from keras_introspect.datasets import DIE360_NETWORKS, die360, fit_die360, search_sgd

# Table 5.1: parameters, mean validation accuracy, +max and -min distance
THESIS = {
    "c1": (4644, 0.9971, 0.0011, 0.0025),
    "c2": (1272, 0.9966, 0.0006, 0.0015),
    "c3": (492, 0.9945, 0.0023, 0.0040),
    "c4": (360, 0.9764, 0.0110, 0.0124),
    "c9": (996, 0.9991, 0.0009, 0.0012),
    "d5": (5161, 0.9966, 0.0017, 0.0011),
    "d10": (10316, 0.9990, 0.0004, 0.0007),
    "d20": (20626, 0.9995, 0.0002, 0.0002),
}
WIDEN = 0.005
FAST_NETWORKS = ["c1", "c2", "d5"]

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("out", nargs="?", help="also write the table to this Markdown file")
parser.add_argument("--fast", action="store_true", help="c1, c2, d5; 3 000 images (smoke run)")
parser.add_argument("--layout", choices=["thesis", "uniform"], default="thesis")
parser.add_argument("--runs", type=int, default=1, help="training runs (seeds) per network")
parser.add_argument("--images", type=int, help="images to render (default 49 200)")
parser.add_argument("--epochs", type=int, help="epochs per run (default 12)")
parser.add_argument("--only", nargs="+", choices=list(DIE360_NETWORKS), help="these networks")
parser.add_argument("--models", help="save each network's first run here (.keras)")
args = parser.parse_args()
n = args.images or (3000 if args.fast else 49_200)
epochs = args.epochs or (3 if args.fast else 12)
search = {"images": 1000, "epochs": 1} if args.fast else {"images": 8000, "epochs": 4}
names = args.only or (FAST_NETWORKS if args.fast else list(DIE360_NETWORKS))

started = time.perf_counter()
x, pips, rot = die360(n=n, seed=0, layout=args.layout, return_rotations=True)
print(f"rendered {n} Die360 images ({args.layout} layout) in {time.perf_counter() - started:.0f} s")
print(f"class shares (pips 1-6): {np.round(np.bincount(pips, minlength=7)[1:] / n, 3)}")
validation = rot.neighbours[rot.validation]
near = ((validation >= 0) & (validation < rot.split)).any(1).mean()
print(
    f"one-degree neighbours per image: mean {rot.mean_neighbours:.2f}, all six for "
    f"{(rot.counts == 6).mean():.1%}; validation images with a neighbour in training: {near:.1%}"
)

rows = []
for name in names:
    chosen = search_sgd(name, x, pips, rot.split, seed=0, **search)
    print(f"{name}: SGD search on the training split\n{chosen}", flush=True)
    scores = []
    for run in range(args.runs):
        model, accuracy = fit_die360(
            name,
            x,
            pips,
            rot.split,
            learning_rate=chosen.learning_rate,
            momentum=chosen.momentum,
            epochs=epochs,
            seed=run,
        )
        scores.append(accuracy)
        if args.models and run == 0:
            os.makedirs(args.models, exist_ok=True)
            model.save(os.path.join(args.models, f"die360_{name}.keras"))
        print(f"  run {run}: {accuracy:.4f} ({time.perf_counter() - started:.0f} s)", flush=True)
    mean = float(np.mean(scores))
    rows.append((name, model.count_params(), chosen, mean, max(scores), min(scores)))

lines = [
    f"| network | parameters | SGD rate / momentum | ours ({args.layout}, {n} images, {epochs} "
    f"epochs, {args.runs} run{'s' if args.runs > 1 else ''}) | thesis | thesis [min, max] "
    f"± {WIDEN} | inside |",
    "|---|---:|---:|---:|---:|---:|---|",
]
for name, params, chosen, mean, best, worst in rows:
    t_params, t_mean, t_plus, t_minus = THESIS[name]
    low, high = t_mean - t_minus - WIDEN, t_mean + t_plus + WIDEN
    spread = f" +{best - mean:.4f} / -{mean - worst:.4f}" if args.runs > 1 else ""
    inside = "yes" if low <= mean <= high else ("no, below" if mean < low else "no, above")
    lines.append(
        f"| {name} | {params:,} | {chosen.learning_rate:g} / {chosen.momentum:g} | "
        f"{mean:.4f}{spread} | {t_mean:.4f} +{t_plus:.4f} / -{t_minus:.4f} | "
        f"[{low:.4f}, {high:.4f}] | {inside} |"
    )
    if params != t_params:
        raise SystemExit(f"{name}: {params} parameters, the thesis has {t_params}")
table = "\n".join(lines)
print()
print(table)
if args.out:
    with open(args.out, "w", encoding="utf-8") as handle:
        handle.write(table + "\n")
print(f"\ntotal {time.perf_counter() - started:.0f} s")
