"""Pixel clustering beyond memory: activations in a Zarr store, clustering on Dask.

A small CNN is trained on the spot on scikit-learn's digits, upsampled to
24 x 24, and saved as a `.keras` file. Then, on a Dask `LocalCluster` of two
worker processes (a real cluster works the same way, see docs/scale.md):

- `activations_to_zarr`: every worker loads the model file once and writes
  its chunks of `conv1` activations into a resumable Zarr store;
- `PixelClusterer.fit(store)`: the value range and a seeded sample of pixels
  are read chunk by chunk on the workers, and the DPGMM is fitted on the
  sample;
- `transform_to_zarr`: every chunk is labelled where it is, and the label
  maps are written into a second store;
- the same clusterer fitted in memory on the same images gives the same
  label maps (adjusted Rand index 1).

Needs the optional extra: python3 -m pip install ".[distributed]"
Run: python examples/06_scale_out.py [output.png]
"""

import sys
import tempfile
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import adjusted_rand_score

import keras_introspect as ki
from keras_introspect.datasets import digits_model
from keras_introspect.exceptions import KerasIntrospectWarning
from keras_introspect.plotting import plot_label_maps


def main(out):
    from dask.distributed import Client, LocalCluster

    # DPGMM fits on activations rarely pass the strict convergence test within
    # max_iter; that is a warning, and the clusters are usable as they are
    warnings.simplefilter("ignore", KerasIntrospectWarning)
    model, x, _, accuracy = digits_model(size=24)
    print(f"test accuracy {accuracy:.3f}")
    options = dict(sample_size=20_000, random_state=0, batch_size=50)

    with (
        tempfile.TemporaryDirectory() as folder,
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        folder = Path(folder)
        model.save(folder / "digits.keras")
        acts = ki.distributed.activations_to_zarr(
            folder / "digits.keras",
            "conv1",
            x,
            folder / "conv1.zarr",
            chunk_images=100,
            batch_size=50,
            client=client,
            verbose=0,
        )
        print(f"stored {acts.shape} activations in {acts.numblocks[0]} chunks")

        clusterer = ki.PixelClusterer(model, "conv1", **options).fit(folder / "conv1.zarr")
        labels = clusterer.transform_to_zarr(folder / "conv1.zarr", folder / "labels.zarr")
        print(
            f"{clusterer.n_clusters_} DPGMM clusters from a sample of "
            f"{clusterer.n_points_fit_:,} of {clusterer.n_points_:,} pixels"
        )
        stored = labels.compute()

    in_memory = ki.PixelClusterer(model, "conv1", **options).fit(x).transform(x)
    ari = adjusted_rand_score(in_memory.ravel(), stored.ravel())
    print(f"in memory vs Dask: ARI {ari:.3f}, identical labels {np.mean(in_memory == stored):.3f}")

    fig = plot_label_maps(
        list(stored[:6]), titles=[f"image {i}" for i in range(6)], images=x[0], ncols=7
    )
    fig.suptitle("conv1 pixel clusters, labelled on Dask workers (input: image 0)", y=1.12)
    fig.savefig(out, dpi=90, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {out}")


if __name__ == "__main__":  # Dask starts worker processes: keep the work under this guard
    main(sys.argv[1] if len(sys.argv) > 1 else "scale_out.png")
