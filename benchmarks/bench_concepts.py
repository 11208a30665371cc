"""Concept discovery vs Xplique's CRAFT, and TCAV vs Xplique's Cav/Tcav, in one process.

The same model (the demo's Die360 c2 network), layer, images of one class, crops
(8 x 8 windows, stride 6, resized to the input) and number of concepts:

- time: `ConceptDiscovery(method="nmf").fit(x)` + `importance(x)` (Sobol, 32 designs)
  against `CraftTf.fit(x)` + `estimate_importance(nb_design=32)`; after one warm-up
  call each (tracing excluded), the median of `--repeats` rounds.
- concept-deletion fidelity: each method's most important concept (Sobol; for ours also
  by its deletion importance) is removed from the layer's activations of the images,
  `A - u_k w_k` (clipped at 0) with each method's own coefficients, and the class logit
  is read through the rest of the model: the mean drop of the logit (larger: the top
  concept matters more to the class; Sobol indices are unsigned, so a concept whose
  removal raises the logit can rank first).
- stability: each seed fits on a random 80 % of the images; the concept vectors of two
  seeds are matched by the Hungarian algorithm on their cosines; the mean matched
  cosine over all pairs of seeds (1: the same concepts every time).
- TCAV: `TCAV(n_runs=10).fit(...).evaluate(x)` against the same 10 + 10 CAVs and
  scores with Xplique's `Cav` and `Tcav` (which has no random runs of its own).

Run: nice -n 10 python benchmarks/bench_concepts.py [--model die360_c2.keras] [--quick]
"""

import argparse
import itertools
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
from scipy.optimize import linear_sum_assignment

import keras_introspect as ki

LAYER = "pool2"
PATCH = 8


def die360(model_path, quick):
    from keras_introspect.datasets.die360 import die360 as render
    from keras_introspect.demo import FAST, FULL, train_die360

    n, epochs = FAST if quick else FULL
    if model_path and os.path.exists(model_path):
        model = keras.models.load_model(model_path)
        x, pips = render(n=n, seed=0)
        y = np.asarray(pips) - 1
    else:
        model, x, y, _, _ = train_die360("c2", n=n, epochs=epochs)
        if model_path:
            model.save(model_path)
    split = int(0.8 * len(x))
    return model, x[split:], y[split:]


def split(model, at):
    """Xplique's g (input -> layer) and h (layer -> output) of a Sequential model."""
    names = [layer.name for layer in model.layers]
    cut = names.index(at) + 1
    inputs = keras.Input(model.input_shape[1:])
    h = inputs
    for layer in model.layers[:cut]:
        h = layer(h)
    latent = keras.Input(h.shape[1:])
    out = latent
    for layer in model.layers[cut:]:
        out = layer(out)
    return keras.Model(inputs, h), keras.Model(latent, out)


def logits_head(model, at):
    """The class logits from the layer's activations (the softmax's input), one graph."""
    import tensorflow as tf

    names = [layer.name for layer in model.layers]
    rest = model.layers[names.index(at) + 1 :]

    @tf.function
    def head(a):
        for layer in rest[:-1]:
            a = layer(a)
        last = rest[-1]
        return tf.matmul(a, last.kernel) + last.bias

    return head


def timed(fns, repeats):
    for fn in fns.values():
        fn()  # warm-up
    times = {name: [] for name in fns}
    names = list(fns)
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def deletion_drop(head, acts, coefficients, concepts, top, cls):
    """Mean drop of the class logit when concept `top` is removed from the activations."""
    removed = coefficients[..., top : top + 1] * concepts[top]
    before = np.asarray(head(acts))[:, cls]
    after = np.asarray(head(np.maximum(acts - removed, 0).astype("float32")))[:, cls]
    return float(np.mean(before - after))


def stability(banks):
    """Mean matched cosine between the concept vectors of every pair of fits."""
    scores = []
    for a, b in itertools.combinations(banks, 2):
        a = a / np.linalg.norm(a, axis=1, keepdims=True)
        b = b / np.linalg.norm(b, axis=1, keepdims=True)
        cosine = a @ b.T
        rows, cols = linear_sum_assignment(-cosine)
        scores.append(cosine[rows, cols].mean())
    return float(np.mean(scores))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="load (or save after training) the c2 network here")
    parser.add_argument("--quick", action="store_true", help="the demo's fast training")
    parser.add_argument("--cls", type=int, default=2, help="class explained (pips - 1)")
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--concepts", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from xplique.concepts import Cav, CraftTf, Tcav

    model, x, y = die360(args.model, args.quick)
    cls, r = args.cls, args.concepts
    xc = x[y == cls][: args.images]
    print(
        f"{platform.processor() or platform.machine()}, keras {keras.__version__}; Die360 c2, "
        f"layer {LAYER}, class {cls}: {len(xc)} images, {r} concepts, {PATCH}x{PATCH} crops"
    )
    g, h = split(model, LAYER)
    head = logits_head(model, LAYER)

    def ours(seed=0, images=xc):
        cd = ki.ConceptDiscovery(
            model, LAYER, n_concepts=r, patch_size=PATCH, target=cls, random_state=seed
        ).fit(images)
        return cd, cd.importance(images, nb_design=32)

    def theirs(images=xc):
        craft = CraftTf(g, h, number_of_concepts=r, batch_size=64, patch_size=PATCH)
        craft.fit(images, class_id=cls)
        return craft, craft.estimate_importance(nb_design=32)

    times = timed({"ours": ours, "xplique": theirs}, args.repeats)

    cd, importance = ours()
    craft, their_importance = theirs()
    acts = np.asarray(g.predict(xc, verbose=0))
    drop_ours = deletion_drop(
        head, acts, cd.coefficients(xc), cd.concepts_, int(np.argmax(importance)), cls
    )
    drop_ours_deletion = deletion_drop(
        head,
        acts,
        cd.coefficients(xc),
        cd.concepts_,
        int(np.argmax(cd.importance(xc, method="deletion"))),
        cls,
    )
    their_w = craft.factorization.concept_bank_w
    drop_theirs = deletion_drop(
        head, acts, craft.transform(xc), their_w, int(np.argmax(their_importance)), cls
    )

    rng = np.random.default_rng(0)
    subsets = [rng.choice(len(xc), int(0.8 * len(xc)), replace=False) for _ in range(args.seeds)]
    banks_ours = [ours(seed, xc[s])[0].concepts_ for seed, s in enumerate(subsets)]
    banks_dpgmm = [
        ki.ConceptDiscovery(model, LAYER, method="dpgmm", patch_size=PATCH, random_state=seed)
        .fit(xc[s])
        .concepts_
        for seed, s in enumerate(subsets)
    ]
    banks_theirs = [theirs(xc[s])[0].factorization.concept_bank_w for s in subsets]
    same_count = len({len(b) for b in banks_dpgmm}) == 1

    print("\n| what | keras_introspect | Xplique CRAFT | ratio |")
    print("|---|---|---|---|")
    print(
        f"| fit + Sobol importance, {len(xc)} images, {r} concepts | {times['ours']:.2f} s | "
        f"{times['xplique']:.2f} s | {times['xplique'] / times['ours']:.1f}x faster |"
    )
    print(
        f"| logit drop deleting the top concept | {drop_ours:.3f} | {drop_theirs:.3f} | "
        f"{drop_ours / drop_theirs:.2f} |"
    )
    print(
        f"| same, our top concept by `importance(method='deletion')` | {drop_ours_deletion:.3f} "
        f"| {drop_theirs:.3f} | {drop_ours_deletion / drop_theirs:.2f} |"
    )
    print(
        f"| stability over {args.seeds} seeds (80 % subsets), mean matched cosine | "
        f"{stability(banks_ours):.3f} | {stability(banks_theirs):.3f} | |"
    )
    print(
        f"| DPGMM (ours only): concepts per seed {[len(b) for b in banks_dpgmm]}, stability | "
        f"{stability(banks_dpgmm) if same_count else float('nan'):.3f} | n/a | |"
    )

    # TCAV: 6 pips (class 5) as the concept against the other classes as random images
    concept = x[y == 5][:60]
    random = x[y != 5][:120]
    explained = x[y == 5][60:120]
    n_runs = 10

    def tcav_ours():
        return (
            ki.TCAV(model, LAYER, target=5, n_runs=n_runs, pooling=None, random_state=0)
            .fit({"six": concept}, random)
            .evaluate(explained)
        )

    draws = np.random.default_rng(0)
    plans = [draws.choice(len(random), len(concept), replace=False) for _ in range(3 * n_runs)]

    def tcav_theirs():
        cav, tcav = Cav(model, LAYER, batch_size=64), Tcav(model, LAYER, batch_size=64)
        scores = []
        for plan in plans[:n_runs]:
            scores.append(tcav.score(explained, 5, cav.fit(concept, random[plan])))
        for a, b in zip(plans[n_runs::2], plans[n_runs + 1 :: 2], strict=True):
            scores.append(tcav.score(explained, 5, cav.fit(random[a], random[b])))
        return scores

    t = timed({"ours": tcav_ours, "xplique": tcav_theirs}, args.repeats)
    score = tcav_ours().scores["six"][0].mean()
    print(
        f"| TCAV, {n_runs} concept + {n_runs} random CAVs, {len(explained)} images | "
        f"{t['ours']:.2f} s | {t['xplique']:.2f} s (Cav + Tcav) | "
        f"{t['xplique'] / t['ours']:.1f}x faster |"
    )
    print(f"\nTCAV score of 'six pips' for class 6: {score:.2f}")


if __name__ == "__main__":
    main()
