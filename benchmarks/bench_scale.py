"""Pixel clustering in memory vs on Dask: time and peak memory as the images grow.

The layer is VGG16's `block1_conv2` (`weights=None`, nothing downloaded)
at 112x112: 112*112*64 float32 = 3.2 MB of activations per image, 25 M
points of 64 features for 2 000 images. The images are random crops and
flips of scikit-image's sample photographs, written once into a Zarr array.
Each measurement runs in a fresh interpreter and reports its peak resident
memory (`ru_maxrss`, TensorFlow and the model included):

- `floor`: TensorFlow, the model and one forward pass;
- `activations`: `Introspector.activations` of n images, what a user
  holds before clustering with scikit-learn (3.2 MB per image);
- `memory`: `PixelClusterer.fit(x).transform(x)` on images in memory (the
  activations streamed, the images and label maps held);
- `dask`: the images as a dask array over their Zarr store,
  `activations_to_zarr`, `PixelClusterer.fit(path)`,
  `transform_to_zarr` - the threaded scheduler in this process;
- `cluster`: the same on a `LocalCluster` of 2 single-thread workers (peak of
  the driver and of each worker).

The clustering is the paper's DPGMM (50 components, alpha 0.2, full
covariance) on a seeded sample of 20 000 pixels, 50 iterations. The subset
check compares the label maps of the `memory` and `dask` paths on the same
images (ARI and the share of identical labels).

Run: python benchmarks/bench_scale.py            (about 20 minutes on 2 cores)
     python benchmarks/bench_scale.py --quick    (32x32 images, 40 and 80 of them)
"""

import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

LAYER = "block1_conv2"
CHUNK = 32  # images per chunk: 100 MB of activations at 112x112
BATCH = 16  # a divisor of CHUNK: the two paths run the same batches, bit for bit
CLUSTER = dict(sample_size=20_000, max_iter=50, random_state=0, batch_size=BATCH)


def prepare(folder, size, n):
    """The model file and the image store (not measured)."""
    import keras
    import numpy as np
    import zarr
    from skimage import data, transform

    keras.utils.set_random_seed(0)
    model = keras.applications.VGG16(weights=None, include_top=False, input_shape=(size, size, 3))
    model.save(os.path.join(folder, "vgg16.keras"))
    photos = [
        data.astronaut(),
        data.coffee(),
        data.chelsea(),
        data.rocket(),
        data.immunohistochemistry(),
    ]
    rng = np.random.default_rng(0)
    images = zarr.open_array(
        os.path.join(folder, "images.zarr"),
        mode="w",
        shape=(n, size, size, 3),
        chunks=(CHUNK, size, size, 3),
        dtype="float32",
    )
    for start in range(0, n, CHUNK):
        batch = []
        for _ in range(min(CHUNK, n - start)):
            photo = photos[rng.integers(len(photos))]
            side = int(rng.integers(size, min(photo.shape[:2]) + 1))
            r, c = (int(rng.integers(0, d - side + 1)) for d in photo.shape[:2])
            crop = transform.resize(photo[r : r + side, c : c + side], (size, size))
            batch.append(crop[:, ::-1] if rng.random() < 0.5 else crop)
        images[start : start + len(batch)] = (np.stack(batch) * 255).astype("float32")


def measure(mode, folder, n):
    """One measurement, in this (fresh) interpreter; prints a JSON line."""
    import resource

    import dask.array as da
    import numpy as np

    import keras_introspect as ki

    model = ki.load_model(os.path.join(folder, "vgg16.keras"))
    images = da.from_zarr(os.path.join(folder, "images.zarr"))[:n]
    out = {"mode": mode, "n": n}
    start = time.perf_counter()
    if mode == "floor":
        ki.Introspector(model).activations(images[:1].compute(), LAYER)
    elif mode == "activations":
        acts = ki.Introspector(model).activations(images.compute(), LAYER, batch_size=BATCH)
        out["gb_held"] = acts[LAYER].nbytes / 1e9
    elif mode == "memory":
        x = images.compute()
        pc = ki.PixelClusterer(model, LAYER, **CLUSTER).fit(x)
        labels = pc.transform(x)
        np.save(os.path.join(folder, f"memory_{n}.npy"), labels)
        out["n_clusters"] = pc.n_clusters_
    else:
        client = None
        if mode == "cluster":
            from distributed import Client, LocalCluster

            client = Client(LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None))
        acts_path = os.path.join(folder, f"acts_{mode}_{n}.zarr")
        source = os.path.join(folder, "vgg16.keras") if client else model
        ki.distributed.activations_to_zarr(
            source,
            LAYER,
            images,
            acts_path,
            chunk_images=CHUNK,
            batch_size=BATCH,
            client=client,
            overwrite=True,
            verbose=0,
        )
        out["extract_s"] = time.perf_counter() - start
        pc = ki.PixelClusterer(model, LAYER, **CLUSTER).fit(acts_path)
        out["fit_s"] = time.perf_counter() - start - out["extract_s"]
        labels = pc.transform_to_zarr(
            acts_path, os.path.join(folder, f"labels_{mode}_{n}.zarr"), overwrite=True
        )
        out["label_s"] = time.perf_counter() - start - out["extract_s"] - out["fit_s"]
        out["n_clusters"] = pc.n_clusters_
        if client is not None:
            peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
            out["worker_peaks_gb"] = sorted(v / 2**20 for v in peaks.values())
            client.close()
        out["labels"] = labels.shape
    out["seconds"] = time.perf_counter() - start
    out["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print("RESULT " + json.dumps(out))


def run(mode, folder, n):
    done = subprocess.run(
        [sys.executable, __file__, "--measure", mode, folder, str(n)],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"{mode} n={n} failed:\n{done.stderr[-3000:]}")
    result = json.loads(lines[-1][len("RESULT ") :])
    print(json.dumps(result), flush=True)
    return result


def main():
    import tempfile

    import numpy as np
    import zarr
    from sklearn.metrics import adjusted_rand_score

    quick = "--quick" in sys.argv
    size, sizes = (32, (40, 80)) if quick else (112, (250, 1000, 2000))
    with tempfile.TemporaryDirectory() as folder:
        prepare(folder, size, max(sizes))
        results = [run("floor", folder, 1)]
        for n in sizes[:2]:
            results += [run("activations", folder, n), run("memory", folder, n)]
        for n in sizes:
            results.append(run("dask", folder, n))
        results.append(run("cluster", folder, sizes[-1]))
        n = sizes[0]
        memory = np.load(os.path.join(folder, f"memory_{n}.npy")).ravel()
        for mode in ("dask",):
            disk = zarr.open_group(os.path.join(folder, f"labels_{mode}_{n}.zarr"))["labels"][:]
            print(
                f"subset n={n}: ARI(memory, {mode}) = "
                f"{adjusted_rand_score(memory, disk.ravel()):.6f}, identical labels "
                f"{np.mean(memory == disk.ravel()):.6f}"
            )
        cluster_labels = zarr.open_group(os.path.join(folder, f"labels_cluster_{sizes[-1]}.zarr"))[
            "labels"
        ][:]
        dask_labels = zarr.open_group(os.path.join(folder, f"labels_dask_{sizes[-1]}.zarr"))[
            "labels"
        ][:]
        print(
            f"n={sizes[-1]}: identical labels, threaded vs LocalCluster: "
            f"{np.mean(cluster_labels == dask_labels):.6f}"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--measure":
        measure(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main()
