"""The example scripts run as documented."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(name, *args, timeout=300):
    """Run an example script with capped optimisation steps; it must exit 0."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KI_MAX_STEPS": "16"}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


@pytest.mark.parametrize(
    "name", ["02_saliency.py", "03_feature_visualization.py", "04_clustering.py"]
)
def test_example_runs(name, tmp_path):
    out = tmp_path / "figure.png"
    result = _run(name, str(out))
    assert out.stat().st_size > 10_000
    accuracy = float(result.stdout.split("test accuracy ")[1].split()[0])
    assert accuracy > 0.7  # the model was trained before being explained


def test_die360_table_runs_in_fast_mode(tmp_path):
    out = tmp_path / "table.md"
    _run("05_die360_table.py", "--fast", str(out))
    rows = [line.split("|") for line in out.read_text().splitlines()[2:]]
    assert [r[1].strip() for r in rows] == ["c1", "c2", "d5"]
    for row in rows:  # the script stops if a parameter count is not the thesis'
        assert 0.0 <= float(row[4]) <= 1.0
        low, high = (float(v) for v in row[6].strip(" []").split(","))
        assert (row[7].strip() == "yes") == (low <= float(row[4]) <= high)


def test_die360_rotation_figures_run_in_fast_mode(tmp_path):
    result = _run("09_die360_rotation.py", "--fast", str(tmp_path))
    for name in ("sequence.png", "sequence.gif", "disagreement.png", "exemplars.png"):
        assert (tmp_path / name).stat().st_size > 5_000
    assert "Rotation: the largest disagreement" in (tmp_path / "report.html").read_text()
    assert "| c9 | pool1 |" in result.stdout


def test_scale_out_gives_the_in_memory_clusters(tmp_path):
    pytest.importorskip("distributed")
    pytest.importorskip("zarr", minversion="3")
    out = tmp_path / "scale.png"
    result = _run("06_scale_out.py", str(out))
    assert out.stat().st_size > 10_000
    assert "in memory vs Dask: ARI 1.000, identical labels 1.000" in result.stdout


def test_signals_volumes_example_finds_the_planted_structure(tmp_path):
    """examples/07_signals_volumes.py (issue 22), fast mode."""
    out = _run("07_signals_volumes.py", str(tmp_path), "--fast").stdout
    for name in ("signals.png", "volumes.png", "volume_slices.png", "dense.png"):
        assert (tmp_path / name).stat().st_size > 5_000
    accuracies = [float(a) for a in re.findall(r"accuracy (\d\.\d+)", out)]
    assert len(accuracies) == 3 and min(accuracies) > 0.9  # trained before being explained
    # the maps sit on the planted structure, far above its share of the input
    tone = re.search(r"occlusion 8: (\d+)% of the map on the tone", out)
    assert int(tone.group(1)) > 50  # the tone covers 25 % of the samples
    assert "Grad-CAM maximum on the blob: 100%" in out
    square = re.search(r"saliency: (\d+)% of the map in the explained square", out)
    assert int(square.group(1)) > 50  # the square covers about 10 % of the pixels


def test_the_dpgmm_depth_example_prints_one_count_per_block(tmp_path):
    """examples/08_dpgmm_depth.py (issue 23, item 7), fast mode: few clusters per block."""
    from skimage.color import rgb2hed
    from skimage.filters import threshold_otsu

    from keras_introspect.datasets.images import sample_images

    out = tmp_path / "depth.png"
    stdout = _run("08_dpgmm_depth.py", str(out), "--fast", timeout=600).stdout
    assert out.stat().st_size > 10_000
    line = re.search(r"clusters per block: (.*)", stdout).group(1)
    counts = {k: int(v) for k, v in (item.split("=") for item in line.split())}
    assert list(counts) == [f"block{b}_conv2" for b in (1, 2, 3, 4)]
    # few clusters owning >= 1 % of the pixels at every depth, never the cap of 50
    assert all(1 <= n <= 12 for n in counts.values())
    for block, (layer, n) in enumerate(counts.items()):
        row = re.search(rf"^{layer}\s+(\d+)\s+(\d+)\s+(\d+)\s+\d+\s+\d+$", stdout, re.M)
        # the cropped maps cover the 128-pixel photo exactly: (128 / 2**block)**2 pixels
        assert int(row.group(1)) == (128 >> block) ** 2
        # the table's column is the same count, at most the components owning a pixel
        assert int(row.group(2)) == n and int(row.group(3)) >= n
    trend = re.search(r"first block (\d+) -> last block (\d+): the count (.*)", stdout)
    first, last = counts["block1_conv2"], counts["block4_conv2"]
    assert (int(trend.group(1)), int(trend.group(2))) == (first, last)
    assert trend.group(3) == ("falls" if last < first else "does not fall")
    # chance in Fig. 3 is the stained share of the photo, worked out here
    photo = sample_images(["immunohistochemistry"], size=128)["immunohistochemistry"] / 255.0
    dab = rgb2hed(photo)[..., 2]
    chance = re.search(r"DAB-stained pixels cover (\d+)% of the photo", stdout).group(1)
    assert int(chance) == round(100 * (dab > threshold_otsu(dab)).mean())
    # the clusters' shares of the photo add up to the whole photo
    shares = [int(s) for s in re.findall(r"^  cluster \d+: (\d+)% of the pixels", stdout, re.M)]
    assert 1 <= len(shares) <= last and abs(sum(shares) - 100) <= len(shares)
    assert re.search(r"background lightest \(cluster \d+\): \d+ region centres", stdout)
    # Fig. 3 at the scale of cells (--fast: the photo upsampled to 1024 px), against the nuclei
    from scipy.stats import binom
    from skimage.morphology import binary_opening, disk

    big = sample_images(["immunohistochemistry"], size=1024)["immunohistochemistry"] / 255.0
    haematoxylin = rgb2hed(big)[..., 0]
    nuclei = binary_opening(haematoxylin > threshold_otsu(haematoxylin), disk(4))
    section = stdout.split("Fig. 3 at 1024 px, block4_conv2: ")[1]
    chance = re.search(r"nuclei \(haematoxylin, Otsu, opened\) cover (\d+)%", section).group(1)
    assert int(chance) == round(100 * nuclei.mean())
    per_cluster = re.findall(r"(\d+) region centres, (\d+) on a nucleus", section)
    summary = re.search(
        r"1024 px: (\d+) of (\d+) region centres on a nucleus \((\d+)%; chance (\d+)%, "
        r"binomial tail p = ([\d.e+-]+)\), on (\d+) of the (\d+) nuclei",
        section,
    )
    on, n, percent, _, p, hit, n_objects = summary.groups()
    on, n, hit = int(on), int(n), int(hit)
    # the summary adds up the clusters; a nucleus hit twice counts once
    assert n == sum(int(a) for a, _ in per_cluster) and on == sum(int(b) for _, b in per_cluster)
    assert 0 <= hit <= on <= n and int(percent) == round(100 * on / n)
    assert float(p) == float(f"{binom.sf(on - 1, n, nuclei.mean()):.1g}")
    from skimage.measure import label

    assert int(n_objects) == label(nuclei).max() > 100  # the photo's nuclei, not a few blobs
