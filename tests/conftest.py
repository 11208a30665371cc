"""Tiny models of every kind the package must handle, as built and reloaded.

Each fixture model comes with `references`: path -> function(model, x) that
computes the layer's activation independently of keras_introspect (Keras
sub-models over the model's own symbolic graph, or layers applied by hand).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # quieter test logs; tests only

import keras
import numpy as np
import pytest

L = keras.layers


def sub(model, layer):
    """Keras sub-model over the model's existing graph (adds no nodes)."""
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, layer.output)


def make_sequential():
    return keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            L.Conv2D(4, 3, activation="relu", name="conv1"),
            L.MaxPooling2D(name="pool1"),
            L.Conv2D(6, 3, padding="same", name="conv2"),
            L.GlobalAveragePooling2D(name="gap"),
            L.Dense(3, activation="softmax", name="out"),
        ],
        name="seq",
    )


def make_functional():
    inputs = keras.Input((16, 16, 3), name="image")
    a = L.Conv2D(4, 3, padding="same", activation="relu", name="conv_a")(inputs)
    b = L.Conv2D(4, 5, padding="same", name="conv_b")(a)
    h = L.Add(name="add")([a, b])
    h = L.AveragePooling2D(2, name="pool")(h)
    h = L.Flatten(name="flat")(h)
    return keras.Model(inputs, L.Dense(2, name="logits")(h), name="func")


def make_nested():
    """Kaggle style: preprocessing + keras.applications backbone + head."""
    backbone = keras.applications.MobileNetV2(
        weights=None, alpha=0.35, include_top=False, input_shape=(32, 32, 3)
    )
    return keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            L.Rescaling(1 / 127.5, offset=-1, name="preprocess"),
            backbone,
            L.GlobalAveragePooling2D(name="gap"),
            L.Dense(4, name="head"),
        ],
        name="kaggle",
    )


def make_nested_two_levels():
    stem_in = keras.Input((16, 16, 3), name="stem_in")
    stem = keras.Model(
        stem_in,
        L.Conv2D(4, 3, strides=2, activation="relu", name="stem_conv")(stem_in),
        name="stem",
    )
    encoder = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            stem,
            L.Conv2D(8, 3, padding="same", name="enc_conv"),
        ],
        name="encoder",
    )
    inputs = keras.Input((16, 16, 3), name="img")
    h = L.Rescaling(2.0, name="scale")(inputs)
    h = encoder(h)
    h = L.GlobalMaxPooling2D(name="gmp")(h)
    return keras.Model(inputs, L.Dense(3, name="dense")(h), name="outer")


def make_multi_io():
    image = keras.Input((12, 12, 1), name="image")
    meta = keras.Input((4,), name="meta")
    h = L.Conv2D(3, 3, activation="relu", name="conv")(image)
    h = L.GlobalAveragePooling2D(name="gap")(h)
    m = L.Dense(3, name="meta_dense")(meta)
    h = L.Concatenate(name="concat")([h, m])
    return keras.Model(
        [image, meta],
        [L.Dense(2, name="cls")(h), L.Dense(1, name="reg")(h)],
        name="multi",
    )


@keras.saving.register_keras_serializable(package="ki_tests")
class SmallNet(keras.Model):
    """A subclassed model (no graph)."""

    def __init__(self, n_classes=3, **kwargs):
        super().__init__(**kwargs)
        self.n_classes = n_classes
        self.conv = L.Conv2D(5, 3, activation="relu", name="sub_conv")
        self.pool = L.MaxPooling2D(name="sub_pool")
        self.flat = L.Flatten(name="sub_flat")
        self.dense = L.Dense(n_classes, name="sub_dense")

    def call(self, x, training=False):
        return self.dense(self.flat(self.pool(self.conv(x))))

    def get_config(self):
        return {**super().get_config(), "n_classes": self.n_classes}


def make_subclassed():
    model = SmallNet(name="small_net")
    model(np.zeros((1, 10, 10, 2), "float32"))
    return model


def _mobilenet_ref(name):
    def ref(model, x):
        backbone = model.layers[1]
        pre = model.layers[0](x)
        return keras.Model(backbone.inputs, backbone.get_layer(name).output)(pre)

    return ref


REFERENCES = {
    "sequential": {
        "conv1": lambda m, x: sub(m, m.get_layer("conv1"))(x),
        "pool1": lambda m, x: sub(m, m.get_layer("pool1"))(x),
        "out": lambda m, x: m(x),
    },
    "functional": {
        "image": lambda m, x: x,
        "add": lambda m, x: sub(m, m.get_layer("add"))(x),
        "flat": lambda m, x: sub(m, m.get_layer("flat"))(x),
    },
    "nested": {
        "preprocess": lambda m, x: m.layers[0](x),
        "mobilenetv2_0.35_32/Conv1": _mobilenet_ref("Conv1"),
        "mobilenetv2_0.35_32/block_3_expand_relu": _mobilenet_ref("block_3_expand_relu"),
        "mobilenetv2_0.35_32/block_6_project_BN": _mobilenet_ref("block_6_project_BN"),
        "mobilenetv2_0.35_32": lambda m, x: m.layers[1](m.layers[0](x)),
        "head": lambda m, x: m(x),
    },
    "nested_two_levels": {
        "encoder/stem/stem_conv": lambda m, x: m.get_layer("encoder").layers[0](x * 2.0),
        "encoder/stem/stem_in": lambda m, x: x * 2.0,
        "encoder/enc_conv": lambda m, x: m.get_layer("encoder")(x * 2.0),
        "dense": lambda m, x: m(x),
    },
    "multi_io": {
        "conv": lambda m, x: sub(m, m.get_layer("conv"))(x),
        "concat": lambda m, x: sub(m, m.get_layer("concat"))(x),
        "meta": lambda m, x: x[1],
    },
    "subclassed": {
        "sub_conv": lambda m, x: m.conv(x),
        "sub_pool": lambda m, x: m.pool(m.conv(x)),
        "sub_dense": lambda m, x: m(x),
    },
}

MAKERS = {
    "sequential": make_sequential,
    "functional": make_functional,
    "nested": make_nested,
    "nested_two_levels": make_nested_two_levels,
    "multi_io": make_multi_io,
    "subclassed": make_subclassed,
}


def sample_input(name, n=5, seed=0):
    rng = np.random.default_rng(seed)
    model_inputs = {
        "sequential": [(16, 16, 3)],
        "functional": [(16, 16, 3)],
        "nested": [(32, 32, 3)],
        "nested_two_levels": [(16, 16, 3)],
        "multi_io": [(12, 12, 1), (4,)],
        "subclassed": [(10, 10, 2)],
    }[name]
    arrays = [rng.uniform(0, 1, (n, *s)).astype("float32") for s in model_inputs]
    if name == "nested":
        arrays[0] *= 255
    return arrays[0] if len(arrays) == 1 else arrays


@pytest.fixture(scope="session")
def built_models():
    keras.utils.set_random_seed(0)
    return {name: make() for name, make in MAKERS.items()}


@pytest.fixture(scope="session")
def reloaded_models(built_models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    out = {}
    for name, model in built_models.items():
        path = folder / f"{name}.keras"
        model.save(path)
        out[name] = keras.saving.load_model(path, compile=False)
    return out


@pytest.fixture(params=["built", "reloaded"])
def variant(request):
    return request.param


@pytest.fixture
def get_model(built_models, reloaded_models, variant):
    """get_model(name) -> the fixture model as built or after a .keras round trip."""
    return lambda name: (built_models if variant == "built" else reloaded_models)[name]


def untrained_digits_cnn():
    """The suite's digits CNN, seeded and compiled but not trained: `(model, x, y)`.

    conv1 and conv2 use valid padding, so conv2's receptive field (5 x 5)
    lies inside the image for every unit. `benchmarks/bench_quality.py`
    trains this same network.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images[..., None] / 16.0).astype("float32")
    y = digits.target
    keras.utils.set_random_seed(0)  # tests only: a reproducible trained model
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            L.Conv2D(8, 3, activation="relu", name="conv1"),
            L.Conv2D(16, 3, activation="relu", name="conv2"),
            L.GlobalAveragePooling2D(name="gap"),
            L.Dense(10, activation="softmax", name="out"),
        ],
        name="digits_cnn",
    )
    model.compile(
        keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model, x, y


@pytest.fixture(scope="session")
def digits_cnn():
    """`untrained_digits_cnn`, trained for 15 epochs on all the digits: `(model, x, y)`."""
    model, x, y = untrained_digits_cnn()
    model.fit(x, y, epochs=15, batch_size=64, verbose=0)
    return model, x, y


@pytest.fixture(scope="session")
def dask_client():
    """Two Dask worker processes with one thread each, as TensorFlow workers run.

    Not the default client: a test passes it, or works inside
    `with dask_client.as_current():`.
    """
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = distributed.Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()


# ------------------------------------------------------------- headless browser
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# After the page has loaded, count the images and those the browser could not decode.
PROBE = (
    '<script>window.addEventListener("load", function () {'
    "var images = document.images, broken = 0;"
    "for (var i = 0; i < images.length; i++) {"
    "if (!(images[i].complete && images[i].naturalWidth > 0)) broken++; }"
    'document.body.setAttribute("data-images", images.length);'
    'document.body.setAttribute("data-broken", broken); });</script>'
)


def browser_or_skip():
    """The path of a headless Chromium; skips the test without one (fails where CI
    requires it: KI_REQUIRE_BROWSER=1)."""
    import os
    import shutil

    browser = next((path for path in map(shutil.which, BROWSERS) if path), None)
    if browser is None:
        if os.environ.get("KI_REQUIRE_BROWSER") == "1":
            pytest.fail("KI_REQUIRE_BROWSER=1 but no Chromium was found")
        pytest.skip("no Chromium installed (.ci/run installs Debian's chromium)")
    return browser


def images_in_browser(browser, page, path):
    """`(images, broken)` a headless browser counts after loading the HTML `page`
    (written to `path` with the probe)."""
    import re
    import subprocess

    path.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"]
    dom = subprocess.run(
        [*command, "--virtual-time-budget=10000", path.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    body = re.search(r'data-images="(\d+)" data-broken="(\d+)"', dom)
    assert body is not None, dom[-500:]
    return int(body.group(1)), int(body.group(2))
