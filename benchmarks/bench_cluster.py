"""Pixel clustering of a VGG16 early layer: scikit-learn vs TensorFlow DPGMM.

`PixelClusterer(method="dpgmm")` on `block1_conv2` of VGG16 (weights=None) at
224 x 224: every pixel of the layer is a point with 64 values (50 176 points
per image). For 1 and 8 images (scikit-image's sample photos), the mixture
is fitted on all points ("full") or on a seeded sample, with
`backend="sklearn"` (BayesianGaussianMixture, the reference) and
`backend="tensorflow"` (keras_introspect's DPGMM), both at the paper's
settings (at most 50 components, concentration 0.2, full covariances,
max_iter=100, the same k-means start).

Reported per run: fit time, predict time (labels of every pixel of the
images), peak resident memory of the run above the memory before it, the
clusters in use, the lower bound, and the ARI between the two backends'
label maps. Every run is a fresh subprocess, so memory peaks and first-call
costs (tracing) are not shared; fit times include them.

Run: python benchmarks/bench_cluster.py            (about 10 minutes on 2 cores)
     python benchmarks/bench_cluster.py --quick    (64 x 64, smoke test)
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

LAYER = "block1_conv2"
# (images, fit points: None = all, backends)
RUNS = [
    (1, None, ("sklearn", "tensorflow")),
    (1, 5_000, ("sklearn", "tensorflow")),
    (8, 20_000, ("sklearn", "tensorflow")),
    (8, None, ("tensorflow",)),
]


def _images(n, size):
    import numpy as np
    import skimage

    names = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "cat"]
    names += ["colorwheel", "retina"]
    images = []
    for name in names[:n]:
        image = getattr(skimage.data, name)()[..., :3]
        image = skimage.transform.resize(image, (size, size), anti_aliasing=True)
        images.append(image.astype("float32") * 255)
    return np.stack(images)


def _peak_rss_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass


def run_one(n_images, sample, backend, size, labels_path):
    """One configuration, in this process; prints a JSON line."""
    import keras
    import numpy as np

    import keras_introspect as ki

    keras.utils.set_random_seed(0)  # the same random weights in every run
    vgg = keras.applications.VGG16(weights=None, include_top=False, input_shape=(size, size, 3))
    x = keras.applications.vgg16.preprocess_input(_images(n_images, size))
    points = n_images * size * size
    clusterer = ki.PixelClusterer(
        vgg,
        LAYER,
        backend=backend,
        sample_size=sample or points,
        batch_size=4,
        random_state=0,
    )
    warnings.simplefilter("ignore")
    _reset_peak()
    before = _peak_rss_mb()
    start = time.perf_counter()
    clusterer.fit(x)
    fit = time.perf_counter() - start
    start = time.perf_counter()
    labels = clusterer.transform(x)
    predict = time.perf_counter() - start
    peak = _peak_rss_mb() - before
    np.save(labels_path, labels)
    print(
        json.dumps(
            {
                "fit_s": fit,
                "predict_s": predict,
                "peak_mb": peak,
                "n_clusters": int(clusterer.n_clusters_),
                "n_iter": int(clusterer.n_iter_),
                "lower_bound": float(clusterer.mixture_.lower_bound_),
                "fit_points": int(clusterer.n_points_fit_),
            }
        )
    )


def main(quick):
    import numpy as np
    from sklearn.metrics import adjusted_rand_score

    size = 64 if quick else 224
    print(f"PixelClusterer dpgmm, VGG16(weights=None) {LAYER} at {size}x{size}, 64 channels")
    header = (
        "| images | fit points | backend | fit s | predict s | peak MB | clusters "
        "| iterations | lower bound | ARI vs sklearn |"
    )
    print(header)
    print("|---" * 10 + "|")
    folder = tempfile.mkdtemp()
    for n_images, sample, backends in RUNS:
        if quick and n_images > 1:
            continue
        results = {}
        for backend in backends:
            path = os.path.join(folder, f"{n_images}_{sample}_{backend}.npy")
            command = [sys.executable, __file__, "--run", str(n_images), str(sample), backend]
            command += [str(size), path]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(done.stderr[-3000:])
                raise SystemExit(done.returncode)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            result["labels"] = np.load(path)
            results[backend] = result
            ari = ""
            if backend == "tensorflow" and "sklearn" in results:
                ari = adjusted_rand_score(
                    results["sklearn"]["labels"].ravel(), result["labels"].ravel()
                )
                ari = f"{ari:.3f}"
            print(
                f"| {n_images} | {result['fit_points']:,} | {backend} | {result['fit_s']:.1f} "
                f"| {result['predict_s']:.1f} | {result['peak_mb']:.0f} "
                f"| {result['n_clusters']} | {result['n_iter']} "
                f"| {result['lower_bound']:.6g} | {ari} |",
                flush=True,
            )
        if len(results) == 2:
            speedup = results["sklearn"]["fit_s"] / results["tensorflow"]["fit_s"]
            print(f"|  |  | fit speed-up | {speedup:.1f}x |  |  |  |  |  |  |", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--run":
        n, sample, backend, size, path = sys.argv[2:7]
        run_one(int(n), None if sample == "None" else int(sample), backend, int(size), path)
    else:
        main(quick="--quick" in sys.argv)
