"""Table 5.1 of the thesis (`004`): every network trained on rendered Die360 images.

The thesis renders 49 200 grey 32 x 32 views of a die (labelled by the pip
count of the bottom-right face), trains CNNs with 1, 2, 3, 4 or 9
convolutions of 3 filters (`c1` ... `c9`) and two-layer perceptrons with 5,
10 or 20 hidden units (`d5` ... `d20`), and reports the validation accuracy
on an 80/20 split (mean, and the distance to the minimum and maximum over
runs). This script does the same with `datasets.die360` and
`datasets.die360_network` (Adam instead of the thesis' tuned SGD) and prints
the table beside the thesis' figures. The parameter counts are the thesis'
exactly.

Run: python examples/05_die360_table.py [--fast] [--runs N] [--images N] [--epochs N]
     [--only c1 c9 ...] [out.md]

`--fast` (for CI) renders 1 500 images and trains 3 epochs: it checks that
everything runs, not the accuracies. The full run (20 000 images, 40
epochs, one run) takes about 15 minutes on 2 CPU cores; its result is in
`docs/datasets.md`.
"""

import argparse
import time

import numpy as np

from keras_introspect.datasets import DIE360_NETWORKS, die360
from keras_introspect.demo import train_die360

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

# Adam's learning rate; the nine 3-filter ReLU convolutions of c9 die at 5e-3
LEARNING_RATES = {"c9": 1e-3}

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("out", nargs="?", help="also write the table to this Markdown file")
parser.add_argument("--fast", action="store_true", help="1 500 images, 3 epochs (smoke run)")
parser.add_argument("--runs", type=int, default=1, help="training runs (seeds) per network")
parser.add_argument("--images", type=int, help="images to render (default 20 000)")
parser.add_argument("--epochs", type=int, help="epochs per network (default 40)")
parser.add_argument("--only", nargs="+", choices=list(DIE360_NETWORKS), help="these networks")
args = parser.parse_args()
n = args.images or (1500 if args.fast else 20_000)
epochs = args.epochs or (3 if args.fast else 40)

started = time.perf_counter()
data = die360(n=n, seed=0)
print(f"rendered {n} Die360 images in {time.perf_counter() - started:.0f} s")
print(f"class shares (pips 1-6): {np.round(np.bincount(data[1], minlength=7)[1:] / n, 3)}")

rows = []
for name in args.only or DIE360_NETWORKS:
    scores, params = [], None
    for run in range(args.runs):
        rate = LEARNING_RATES.get(name, 5e-3)
        model, *_, accuracy = train_die360(
            name, epochs=epochs, seed=run, data=data, learning_rate=rate
        )
        scores.append(accuracy)
        params = model.count_params()
    mean = float(np.mean(scores))
    rows.append((name, params, mean, max(scores) - mean, mean - min(scores)))
    print(f"{name}: {mean:.4f} ({time.perf_counter() - started:.0f} s)", flush=True)

lines = [
    f"| network | parameters | validation accuracy ({n} images, {epochs} epochs, "
    f"{args.runs} run{'s' if args.runs > 1 else ''}) | thesis parameters | thesis accuracy |",
    "|---|---:|---:|---:|---:|",
]
for name, params, mean, plus, minus in rows:
    t_params, t_mean, t_plus, t_minus = THESIS[name]
    spread = f" +{plus:.4f} / -{minus:.4f}" if args.runs > 1 else ""
    lines.append(
        f"| {name} | {params:,} | {mean:.4f}{spread} | {t_params:,} | "
        f"{t_mean:.4f} +{t_plus:.4f} / -{t_minus:.4f} |"
    )
table = "\n".join(lines)
print()
print(table)
if args.out:
    with open(args.out, "w", encoding="utf-8") as handle:
        handle.write(table + "\n")
print(f"\ntotal {time.perf_counter() - started:.0f} s")
