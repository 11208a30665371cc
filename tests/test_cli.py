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
    assert main([*argv, "--format", "npy"]) == 0
    maps = np.load(out / "saliency.npy")
    import keras_introspect as ki

    predicted = model.predict(images, verbose=0).argmax(axis=1)
    expected = ki.Saliency(model, ki.targets.Class(predicted)).explain(images)
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-6)
    # a CAM method with its --layer (it used to be passed to Grad-CAM only)
    assert main([*argv, "--method", "layercam", "--layer", "conv", "--format", "npy"]) == 0
    layercam = ki.LayerCAM(model, ki.targets.Class(predicted), layer="conv").explain(images)
    np.testing.assert_allclose(np.load(out / "layercam.npy"), layercam, rtol=1e-4, atol=1e-6)

    labels_dir = tmp_path / "labels"
    argv = ["cluster", str(path), str(folder), "--layer", "conv", "--out", str(labels_dir)]
    assert main([*argv, "--method", "kmeans", "--n-clusters", "3", "--quiet"]) == 0
    assert len(list(labels_dir.glob("*_clusters.png"))) == 3
    figure = matplotlib.image.imread(labels_dir / "img0_clusters.png")
    assert figure.shape[0] >= 200 and figure.shape[1] >= 400  # the overlay figure, not 14x14
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
    ok = str(tmp_path / "ok.npy")
    # --layer is refused where the method reads none (it used to be ignored)
    cases.append((["saliency", str(path), ok, "--layer", "conv"], "--layer applies to the CAM"))
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


def test_labels_csv_rules_never_shift_or_split_labels(tmp_path):
    """Issue 18, B5: BOM, delimiters, headers, duplicates and encodings."""
    import numpy as np

    from keras_introspect.cli import _UsageError, load_labels

    names = ["a.png", "b.png", "c.png"]

    def labels(text, encoding="utf-8"):
        path = tmp_path / "labels.csv"
        path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
        return load_labels(str(path), names)

    # one column, no header: nothing is dropped
    np.testing.assert_array_equal(labels("3\n0\n1\n"), [3, 0, 1])
    # a byte-order mark is not part of the first label
    np.testing.assert_array_equal(labels("\ufeff0\n1\n2\n"), [0, 1, 2])
    np.testing.assert_array_equal(
        labels("\ufefffile,label\nb.png,1\na.png,0\nc.png,2\n"), [0, 1, 2]
    )
    # ';' and tab delimiters are two columns, not one label per image
    np.testing.assert_array_equal(labels("a.png;4\nb.png;5\nc.png;6\n"), [4, 5, 6])
    np.testing.assert_array_equal(labels("file\tlabel\nc.png\t2\nb.png\t1\na.png\t0\n"), [0, 1, 2])
    # a first row naming an image is data, not a header
    np.testing.assert_array_equal(labels("a.png,7\nb.png,8\nc.png,9\n"), [7, 8, 9])
    # a header word above one column is dropped; a label is never dropped to fit
    np.testing.assert_array_equal(labels("class\n2\n1\n0\n"), [2, 1, 0])
    with pytest.raises(_UsageError, match="holds 4 labels for 3 images"):
        labels("5\n0\n1\n2\n")
    # duplicates and conflicts are refused, naming the rows
    with pytest.raises(_UsageError, match=r"lists 'a.png' twice \(rows 1 and 4, conflicting"):
        labels("a.png,0\nb.png,1\nc.png,2\na.png,1\n")
    with pytest.raises(_UsageError, match=r"lists 'b.png' twice \(rows 3 and 4, the same label"):
        labels("name,label\na.png,0\nb.png,1\nb.png,1\nc.png,2\n")
    with pytest.raises(_UsageError, match=r"row 3 has one field \('c.png'\)"):
        labels("a.png,0\nb.png,1\nc.png\n")
    with pytest.raises(_UsageError, match="is not UTF-8 text"):
        labels("a.png,caf\xe9\nb.png,x\nc.png,y\n", encoding="latin-1")


def test_report_output_path_is_checked_before_any_work(tmp_path, capsys):
    import numpy as np

    _, path, _ = _saved_rgb_model(tmp_path)
    np.save(tmp_path / "ok.npy", np.zeros((2, 16, 16, 3)))
    (tmp_path / "folder.html").mkdir()
    cases = [
        (tmp_path / "missing" / "report.html", "The folder of the report does not exist"),
        (tmp_path / "folder.html", "is a folder"),
    ]
    for out, message in cases:
        argv = ["report", str(path), str(tmp_path / "ok.npy"), "--out", str(out), "--quiet"]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    # --out of saliency must be a folder
    (tmp_path / "file").write_text("x")
    argv = ["saliency", str(path), str(tmp_path / "ok.npy"), "--out", str(tmp_path / "file")]
    assert main([*argv, "--quiet"]) == 2
    assert "is a file; expected a folder" in capsys.readouterr().err


def _png16(path, rgb):
    """Write a 16-bit PNG (Pillow writes 16-bit grey only): the format by hand."""
    import struct
    import zlib

    import numpy as np

    height, width = rgb.shape[:2]
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in rgb.reshape(height, -1))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
    png += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    path.write_bytes(png)
    assert np.asarray(rgb).dtype == np.uint16


def test_images_are_converted_by_one_rule(tmp_path):
    """Issue 18, B6: CMYK, 16-bit grey and RGB, grey + alpha, animated files."""
    import numpy as np
    from PIL import Image

    from keras_introspect.cli import _UsageError, load_images

    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(folder / "a_cmyk.jpg", quality=100)
    Image.fromarray(np.full((8, 8), 257 * 100, np.uint16)).save(folder / "b_grey16.png")
    _png16(folder / "c_rgb16.png", np.full((8, 8, 3), 257 * 100, np.uint16))
    Image.new("LA", (8, 8), (60, 10)).save(folder / "d_grey_alpha.png")
    images, names = load_images(str(folder), (8, 8, 3))
    assert names == ["a_cmyk.jpg", "b_grey16.png", "c_rgb16.png", "d_grey_alpha.png"]
    np.testing.assert_allclose(images[0].mean(axis=(0, 1)), [255, 0, 0], atol=3)  # red, not C/M/Y
    np.testing.assert_allclose(images[1], 100.0, atol=0.5)  # 16-bit grey on the 0-255 scale
    np.testing.assert_allclose(images[2], 100.0, atol=1.0)  # 16-bit RGB on the same scale
    np.testing.assert_allclose(images[3], 60.0)  # alpha dropped
    frames = [Image.new("RGB", (8, 8), (i * 80, 0, 0)) for i in range(3)]
    frames[0].save(folder / "e_animated.png", save_all=True, append_images=frames[1:])
    with pytest.raises(_UsageError, match=r"'e_animated.png'.*animated \(3 frames\)"):
        load_images(str(folder), (8, 8, 3))
    (folder / "e_animated.png").unlink()
    frames[0].save(folder / "f_animated.gif", save_all=True, append_images=frames[1:])
    with pytest.raises(_UsageError, match=r"'f_animated.gif'.*animated \(3 frames\)"):
        load_images(str(folder), (8, 8, 3))


def test_max_images_chooses_before_decoding_and_bad_arrays_exit_2(tmp_path, capsys):
    """B7: the first images are chosen before anything is read; -1 is refused."""
    import numpy as np

    from keras_introspect.cli import _UsageError, load_images

    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        keras.utils.save_img(folder / f"{i}.png", np.full((8, 8, 3), 40 * i, np.uint8))
    (folder / "3.png").write_bytes(b"not an image")  # never read with max_images=3
    images, names = load_images(str(folder), (8, 8, 3), max_images=3)
    assert names == ["0.png", "1.png", "2.png"] and images.shape == (3, 8, 8, 3)
    with pytest.raises(_UsageError, match=r"Could not read image '3\.png'"):
        load_images(str(folder), (8, 8, 3))
    with pytest.raises(_UsageError, match="--max-images must be a positive integer; got -1"):
        load_images(str(folder), (8, 8, 3), max_images=-1)
    np.save(tmp_path / "many.npy", np.arange(10 * 8 * 8 * 3, dtype=np.uint8).reshape(10, 8, 8, 3))
    images, _ = load_images(str(tmp_path / "many.npy"), (8, 8, 3), max_images=4)
    assert images.shape == (4, 8, 8, 3) and images.dtype == np.float32
    np.savez(tmp_path / "objects.npz", x=np.array([None, 1], dtype=object))
    with pytest.raises(_UsageError, match=r"Could not read .*objects\.npz"):
        load_images(str(tmp_path / "objects.npz"), (8, 8, 3))


def test_custom_layers_need_custom_objects_and_say_so_in_one_line(tmp_path, capsys):
    """Issue 18, B8: an unregistered custom layer: a one-line error pointing to
    --custom-objects, which then loads the model."""
    import numpy as np

    from keras_introspect.model.io import custom_objects_from

    source = tmp_path / "layers_of_mine.py"
    source.write_text(
        "import keras\n\n"
        "class TimesTwo(keras.layers.Layer):\n"
        "    def call(self, x):\n"
        "        return x * 2.0\n"
    )
    times_two = custom_objects_from([str(source)])["TimesTwo"]
    model = keras.Sequential(
        [keras.Input((6, 6, 1)), times_two(name="double"), keras.layers.Conv2D(2, 3, name="c")]
    )
    path = tmp_path / "custom.keras"
    model.save(path)
    assert main(["layers", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "uses the class 'TimesTwo'" in err and "--custom-objects" in err
    assert main(["layers", str(path), "--custom-objects", str(source)]) == 0
    assert "double" in capsys.readouterr().out
    assert main(["layers", str(path), "--custom-objects", "no_such_module:X"]) == 2
    assert "Cannot import module 'no_such_module'" in capsys.readouterr().err
    np.testing.assert_equal(len(custom_objects_from(["keras.layers:Dense"])), 1)


def test_results_go_to_stdout_progress_to_stderr_and_quiet_keeps_the_paths(tmp_path, capsys):
    """Issue 19 (item 7): the streams as docs/cli.md states them."""
    import numpy as np

    _, path, rng = _saved_rgb_model(tmp_path)
    np.save(tmp_path / "x.npy", rng.uniform(0, 255, (3, 16, 16, 3)).astype("float32"))
    argv = ["saliency", str(path), str(tmp_path / "x.npy"), "--out", str(tmp_path / "o")]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert out.split() == [str(tmp_path / "o" / f"image_{i:04d}_saliency.png") for i in range(3)]
    assert "wrote 3 saliency maps" in err and "1/1" in err  # the progress bar, on stderr
    assert main([*argv, "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert len(out.split()) == 3 and err == ""
    assert main(["layers", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "rescale" in out and err == ""


def test_tensorflow_start_up_messages_are_silenced(tmp_path):
    """A fresh process: no absl / CUDA / oneDNN lines among our own output."""
    import os
    import subprocess
    import sys

    _, path, _ = _saved_rgb_model(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    run = subprocess.run(
        [sys.executable, "-m", "keras_introspect", "layers", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "rescale" in run.stdout
    assert run.stderr.strip() == "", run.stderr
