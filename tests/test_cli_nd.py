"""`keras-introspect saliency` and `build_report` on signals, volumes, dense outputs (issue 22)."""

import warnings

import matplotlib.image
import numpy as np
import pytest
from nd_models import segmentation_fcn, signal_cnn, volume_cnn

import keras_introspect as ki
from keras_introspect.cli import main
from keras_introspect.plotting.nd import RED, signal_strip, slice_grid
from keras_introspect.report.auto import plan_report

T = ki.targets


def _saved(tmp_path, fx, n=3):
    path = tmp_path / "model.keras"
    fx.model.save(path)
    np.save(tmp_path / "x.npy", fx.x[:n])
    return str(path), str(tmp_path / "x.npy")


def _png(path):
    return matplotlib.image.imread(path)[..., :3]


def test_saliency_of_signals_writes_npy_and_strips(tmp_path, capsys):
    fx = signal_cnn()
    model, x = _saved(tmp_path, fx)
    out = tmp_path / "out"
    argv = ["saliency", model, x, "--out", str(out), "--quiet"]
    assert main([*argv, "--format", "npy"]) == 0
    predicted = fx.model.predict(fx.x[:3], verbose=0).argmax(axis=1)
    expected = ki.Saliency(fx.model, T.Class(predicted)).explain(fx.x[:3])
    maps = np.load(out / "saliency.npy")
    assert maps.shape == (3, 128)
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-6)
    assert main(argv) == 0
    written = capsys.readouterr().out.split()
    assert written[-3:] == [str(out / f"image_{i:04d}_saliency.png") for i in range(3)]
    strip = _png(out / "image_0001_saliency.png")
    # the strip of the signal and its map, 4 pixels per sample (512 // 128)
    expected = signal_strip(fx.x[1], maps[1]).repeat(4, axis=1)
    assert strip.shape == expected.shape
    np.testing.assert_allclose(strip, expected, atol=1 / 255 + 1e-6)


def test_saliency_of_volumes_writes_slice_grids_and_the_peak(tmp_path, capsys):
    fx = volume_cnn()
    model, x = _saved(tmp_path, fx, n=2)
    out = tmp_path / "out"
    argv = ["saliency", model, x, "--out", str(out), "--quiet", "--target", "1"]
    assert main([*argv, "--method", "gradcam", "--layer", "conv2"]) == 0
    names = [p.split("/")[-1] for p in capsys.readouterr().out.split()]
    assert names == [
        "image_0000_gradcam.png",
        "image_0000_gradcam_peak.png",
        "image_0001_gradcam.png",
        "image_0001_gradcam_peak.png",
    ]
    maps = ki.GradCAM(fx.model, T.Class(1), layer="conv2").explain(fx.x[:2])
    _, grid = slice_grid(fx.x[0], maps[0])
    np.testing.assert_allclose(_png(out / "image_0000_gradcam.png"), grid, atol=1 / 255 + 1e-6)
    assert _png(out / "image_0000_gradcam_peak.png").shape == (16, 16 * 3 + 2, 3)


def test_saliency_of_a_dense_output_in_a_region(tmp_path, capsys):
    fx = segmentation_fcn()
    model, x = _saved(tmp_path, fx, n=2)
    out = tmp_path / "out"
    argv = ["saliency", model, x, "--out", str(out), "--quiet", "--region", "2:6,3:9"]
    assert main([*argv, "--target", "1", "--format", "npy"]) == 0
    expected = ki.Saliency(fx.model, T.Class(1, region=np.s_[2:6, 3:9])).explain(fx.x[:2])
    np.testing.assert_allclose(np.load(out / "saliency.npy"), expected, rtol=1e-4, atol=1e-7)
    assert main([*argv, "--output", "seg"]) == 0  # 'pred': the class most present in the box
    picture = _png(out / "image_0000_saliency.png")
    red = np.all(np.isclose(picture, RED, atol=1 / 255), axis=-1)
    box = np.zeros((16, 16), bool)
    box[2:6, 3:9] = True
    assert red[box].sum() == 16 and not red[~box].any()  # the box's border: 4 + 4 + 2 + 2 + 4
    capsys.readouterr()
    base = argv[:-2]
    with pytest.raises(SystemExit):
        main([*base, "--region", "1,x"])
    assert "expected a position 'i,j' or a box" in capsys.readouterr().err
    assert main([*base, "--region", "1,2,3"]) == 2
    assert "a position with 2 coordinate(s)" in capsys.readouterr().err
    assert main([*base, "--output", "boxes"]) == 2
    assert "one of ['seg']" in capsys.readouterr().err


@pytest.mark.parametrize("make", [signal_cnn, volume_cnn, segmentation_fcn])
def test_build_report_chooses_sections_for_signals_volumes_and_dense_outputs(make, tmp_path):
    fx = make()
    x, y = fx.x[:6], fx.y[:6] if fx.y.ndim == 1 else None
    plan = plan_report(fx.model, x, y, am_steps=2, n_quality=4)
    rank = fx.x.ndim
    if rank != 4:  # signals and volumes: the image-only sections say why they are skipped
        for name in ("filters", "features", "exemplars", "clustering", "quality"):
            assert f"Skipped for {'signal' if rank == 3 else 'volume'} inputs" in plan.skipped[name]
    else:  # a dense output
        assert "dense model output" in plan.skipped["quality"]
        assert plan.dense and "seg" not in plan.layers
    sections = ["summary", "saliency", "histograms", "twin"]
    sections += ["occlusion"] if rank != 5 else []  # 3-D occlusion with the report's stride: slow
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no section may fail
        report = ki.build_report(fx.model, x, y, sections=sections, am_steps=2)
    page = report.save(tmp_path / "report.html")
    assert "could not be computed" not in open(page, encoding="utf-8").read()
