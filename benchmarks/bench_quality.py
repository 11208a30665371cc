"""Explanation quality of every attribution method on CNNs trained on the spot.

Two classifiers are trained here, on embedded data:

- *digits*: the test suite's CNN (two 3x3 convolutions, global average
  pooling, softmax) on scikit-learn's 8x8 digits, 15 epochs, scored on 256
  held-out images;
- *Die360 c2*: the demo's network (`datasets.die360_network("c2")`) on 8000
  rendered dice, 40 epochs, scored on 256 validation images.

For every method: deletion and insertion AUC (20 steps) of its maps (for
the label) and of random maps, under two conventions: the library's
defaults (class logit, black baseline, normalised curves) and the report's
(class probability, blurred baseline, raw curves); then the Spearman
similarity of its maps, on 64 images, after randomising the top layer, the
top two and every layer (cascading), for a random other class, and on a
random twin; with the seconds each took.

Run: python benchmarks/bench_quality.py            (about 6 minutes on 2 cores)
     python benchmarks/bench_quality.py --quick    (32 images, 2 methods, fewer epochs)
"""

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


METHODS = {
    "saliency": {},
    "gradient_input": {},
    "smoothgrad": {"samples": 16},
    "integrated_gradients": {"steps": 16},
    "guided_backprop": {},
    "gradcam": {},
    "gradcam++": {},
    "occlusion": None,  # window from the image size
}


def digits_cnn(epochs):
    """The test suite's digits CNN, trained with the last 256 images held out."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from conftest import untrained_digits_cnn

    model, x, y = untrained_digits_cnn()
    model.fit(x[:-256], y[:-256], epochs=epochs, batch_size=64, verbose=0)
    accuracy = float(model.evaluate(x[-256:], y[-256:], verbose=0)[1])
    return model, x[-256:], y[-256:], accuracy


def die360_cnn(quick):
    from keras_introspect.demo import FAST, FULL, train_die360

    n, epochs = FAST if quick else FULL
    model, x, y, _, accuracy = train_die360("c2", n=n, epochs=epochs, verbose=0)
    return model, x[-256:], y[-256:], accuracy


CONVENTIONS = [
    # (title, score the probability?, baseline, normalize)
    ("class logit, baseline 0, normalised curves (the library's defaults)", False, 0.0, True),
    ("class probability, blurred baseline, raw curves (the report's choice)", True, "blur", False),
]


def options_for(name, x):
    options = METHODS[name]
    if options is None:
        window = max(2, x.shape[1] // 6)
        options = {"window": window, "stride": max(1, window // 2)}
    return options


def causal(model, x, y, maps, methods):
    from keras_introspect import metrics, targets

    tables = []
    for title, probability, baseline, normalize in CONVENTIONS:
        scored = targets.Class(y, logits=not probability)
        rows = []
        for name in methods:
            start = time.perf_counter()
            kwargs = {"baseline": baseline, "normalize": normalize, "random_baseline": True}
            down = metrics.deletion(model, x, maps[name], scored, **kwargs)
            up = metrics.insertion(model, x, maps[name], scored, **kwargs)
            rows.append(
                {
                    "method": name,
                    "deletion": down.mean_auc,
                    "deletion, random maps": down.random_mean_auc,
                    "insertion": up.mean_auc,
                    "insertion, random maps": up.random_mean_auc,
                    "beats random": "both"
                    if down.beats_random and up.beats_random
                    else (
                        "deletion"
                        if down.beats_random
                        else "insertion"
                        if up.beats_random
                        else "no"
                    ),
                    "s": time.perf_counter() - start,
                }
            )
        tables.append((title, rows))
    return tables


def sanity(model, x, y, methods):
    """The sanity checks on the first 64 images."""
    from keras_introspect import metrics, targets

    few, target = x[:64], targets.Class(y[:64])
    rows = []
    for name in methods:
        options = options_for(name, x)
        start = time.perf_counter()
        cascade = metrics.randomization_check(name, model, few, target, options=options)
        logit = metrics.random_logit_check(name, model, few, y[:64], options=options)
        twin = metrics.compare_with_random_twin(name, model, few, target, options=options)
        rows.append(
            {
                "method": name,
                "top layer random": cascade.mean[0],
                "top two": cascade.mean[1],
                "all layers": cascade.mean[-1],
                "other class": logit.mean,
                "random twin": twin.mean,
                "s": time.perf_counter() - start,
            }
        )
    return rows


def report(name, model, x, y, accuracy, methods):
    from keras_introspect import targets
    from keras_introspect.attribution.maps import METHODS as CLASSES

    print(f"\n### {name} (held-out accuracy {accuracy:.3f}), {len(x)} images\n")
    target = targets.Class(y)
    maps = {m: CLASSES[m](model, target, **options_for(m, x)).explain(x) for m in methods}
    for title, rows in causal(model, x, y, maps, methods):
        print(f"Deletion / insertion AUC, {title}:\n")
        print(table(rows) + "\n")
    print("Spearman similarity to the trained model's maps (64 images):\n")
    print(table(sanity(model, x, y, methods)))


def table(rows) -> str:
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |"]
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(columns) - 1)) + "|")
    for row in rows:
        cells = [row["method"]]
        for c in columns[1:]:
            value = row[c]
            if isinstance(value, str):
                cells.append(value)
            else:
                cells.append(f"{value:.1f}" if c == "s" else f"{value:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(quick=False):
    import warnings

    warnings.filterwarnings("ignore", message=".*is zero.*")  # a dead filter in a twin
    methods = ["saliency", "gradcam", "occlusion"] if quick else list(METHODS)
    n = 32 if quick else 256
    model, x, y, accuracy = digits_cnn(3 if quick else 15)
    report("digits CNN", model, x[:n], y[:n], accuracy, methods)
    model, x, y, accuracy = die360_cnn(quick)
    report("Die360 c2", model, x[:n], y[:n], accuracy, methods)


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
