"""The command line: layer table, demo, and one-line errors with exit code 2."""

import keras
import pytest

from keras_introspect.cli import main


def test_layers_prints_table(built_models, tmp_path, capsys):
    path = tmp_path / "nested.keras"
    built_models["nested"].save(path)
    assert main(["layers", str(path)]) == 0
    out = capsys.readouterr().out
    assert "mobilenetv2_0.35_32" in out and "block_3_expand_relu" in out
    assert "3x3 /2x2" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "No model file"), (b"not a model", "Could not load a Keras model")],
)
def test_bad_model_file_exits_2(tmp_path, capsys, content, message):
    path = tmp_path / "model.keras"
    if content is not None:
        path.write_bytes(content)
    assert main(["layers", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("keras-introspect: error:") and message in err
    assert len(err.strip().splitlines()) == 1


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["layers"])
    assert info.value.code == 2


def test_unbuilt_model_file_needs_input_shape(tmp_path, capsys):
    model = keras.Sequential([keras.layers.Dense(2, name="d")])
    path = tmp_path / "unbuilt.keras"
    model.save(path)
    assert main(["layers", str(path)]) == 2
    assert "input_shape" in capsys.readouterr().err
    assert main(["layers", str(path), "--input-shape", "5"]) == 0


def _saved_rgb_model(tmp_path):
    """A nested model taking 16x16 RGB images, saved as .keras."""
    import numpy as np

    keras.utils.set_random_seed(0)
    inner_in = keras.Input((16, 16, 3))
    inner = keras.Model(
        inner_in, keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inner_in), name="body"
    )
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Rescaling(1 / 255.0, name="rescale"),
            inner,
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(3, activation="softmax", name="out"),
        ]
    )
    path = tmp_path / "model.keras"
    model.save(path)
    rng = np.random.default_rng(0)
    return model, path, rng


def test_saliency_and_cluster_on_a_folder_of_pngs(tmp_path, capsys):
    import matplotlib.image
    import numpy as np

    from keras_introspect.cli import load_images

    model, path, rng = _saved_rgb_model(tmp_path)
    folder = tmp_path / "images"
    folder.mkdir()
    for i, size in enumerate([(16, 16), (20, 24), (16, 16)]):
        matplotlib.image.imsave(folder / f"img{i}.png", rng.random((*size, 3)))
    (folder / "notes.txt").write_text("not an image")
    images, names = load_images(str(folder), (16, 16, 3))
    assert images.shape == (3, 16, 16, 3) and names == ["img0.png", "img1.png", "img2.png"]
    assert 0 <= images.min() and images.max() <= 255 and images.max() > 1  # PNG range

    out = tmp_path / "maps"
    argv = ["saliency", str(path), str(folder), "--out", str(out), "--quiet"]
    assert main([*argv, "--method", "gradcam", "--target", "1"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"img{i}_gradcam.png" for i in range(3)]
    assert main([*argv, "--format", "npy"]) == 0
    maps = np.load(out / "saliency.npy")
    import keras_introspect as ki

    predicted = model.predict(images, verbose=0).argmax(axis=1)
    expected = ki.Saliency(model, ki.targets.Class(predicted)).explain(images)
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-6)

    labels_dir = tmp_path / "labels"
    argv = ["cluster", str(path), str(folder), "--layer", "conv", "--out", str(labels_dir)]
    assert main([*argv, "--method", "kmeans", "--n-clusters", "3", "--quiet"]) == 0
    assert len(list(labels_dir.glob("*_clusters.png"))) == 3
    assert main([*argv, "--method", "kmeans", "--n-clusters", "3", "--format", "npy"]) == 0
    labels = np.load(labels_dir / "labels.npy")
    assert labels.shape == (3, 14, 14) and labels.max() <= 2
    assert "clusters at body/conv" in capsys.readouterr().err


def test_saliency_and_cluster_errors_exit_2(tmp_path, capsys):
    import numpy as np

    _, path, _ = _saved_rgb_model(tmp_path)
    np.save(tmp_path / "wrong.npy", np.zeros((2, 8, 8, 3)))
    cases = [
        (["saliency", str(path), str(tmp_path / "missing")], "No images"),
        (["saliency", str(path), str(tmp_path / "wrong.npy")], "the model takes (16, 16, 3)"),
        (["saliency", str(tmp_path / "none.keras"), str(tmp_path / "wrong.npy")], "No model file"),
        (["cluster", str(path), str(tmp_path), "--layer", "conv"], "No image files"),
    ]
    np.save(tmp_path / "ok.npy", np.zeros((2, 16, 16, 3)))
    cases.append(
        (["saliency", str(path), str(tmp_path / "ok.npy"), "--target", "cat"], "--target expects")
    )
    cases.append(
        (["cluster", str(path), str(tmp_path / "ok.npy"), "--layer", "nope"], "No layer matches")
    )
    for argv, message in cases:
        assert main([*argv, "--out", str(tmp_path / "o"), "--quiet"]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("keras-introspect: error:") and message in err, err
        assert len(err.strip().splitlines()) == 1


def test_report_on_a_nested_backbone_and_a_folder_of_pngs(built_models, tmp_path, capsys):
    import re

    import matplotlib.image
    import numpy as np

    model_path = tmp_path / "kaggle.keras"
    built_models["nested"].save(model_path)
    folder = tmp_path / "pngs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = ["file,label"]
    for i in range(9):
        matplotlib.image.imsave(folder / f"im{i}.png", rng.random((40, 36, 3)))
        rows.append(f"im{i}.png,{'abc'[i % 3]}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "report.html"
    sections = ["summary", "saliency", "exemplars", "purity", "category-tree"]
    argv = ["report", str(model_path), str(folder), "--labels", str(tmp_path / "labels.csv")]
    assert main([*argv, "--sections", *sections, "--out", str(out), "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    page = out.read_text()
    titles = re.findall(r'<section id="[^"]+"><h2>([^<]+)</h2>', page)
    assert titles[0] == "Model: kaggle" and "Layer-wise purity" in titles
    # the chosen layers are inside the nested backbone
    assert any(t.startswith("Exemplars of mobilenetv2_0.35_32/") for t in titles)
    assert "labels=the given labels" in page
    # the leaves of the category tree (its Newick string) are the CSV's labels
    newick = re.search(r"<code>([^<]+)</code>", page).group(1)
    assert sorted(re.findall(r"[(,]([a-z]+):", newick)) == ["a", "b", "c"]


@pytest.mark.parametrize("mode", ["caffe", "torch", "symmetric"])
def test_preprocess_matches_keras_applications(mode):
    import numpy as np

    from keras_introspect.cli import with_preprocessing

    identity = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Identity()], name="id")
    wrapped = with_preprocessing(identity, mode)
    x = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype("float32")
    reference = keras.applications.imagenet_utils.preprocess_input(
        x.copy(), mode={"symmetric": "tf"}.get(mode, mode)
    )
    np.testing.assert_allclose(wrapped.predict(x, verbose=0), reference, rtol=1e-5, atol=1e-3)
    assert with_preprocessing(identity, "none") is identity


def test_labels_csv_forms(tmp_path):
    import numpy as np

    from keras_introspect.cli import _UsageError, load_labels

    names = ["a.png", "b.png", "c.png"]
    two = tmp_path / "two.csv"
    two.write_text("name,label\nc.png,2\na.png,0\nb.png,1\n")
    np.testing.assert_array_equal(load_labels(str(two), names), [0, 1, 2])
    one = tmp_path / "one.csv"
    one.write_text("label\ncat\ndog\ncat\n")
    assert load_labels(str(one), names).tolist() == ["cat", "dog", "cat"]
    short = tmp_path / "short.csv"
    short.write_text("a.png,0\n")
    with pytest.raises(_UsageError, match=r"no label for 2 image\(s\)"):
        load_labels(str(short), names)
    with pytest.raises(_UsageError, match="holds 1 labels for 3 images"):
        (tmp_path / "few.csv").write_text("x\n")
        load_labels(str(tmp_path / "few.csv"), names)
    with pytest.raises(_UsageError, match="No labels file"):
        load_labels(str(tmp_path / "missing.csv"), names)
