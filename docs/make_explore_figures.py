"""Make the screenshots of docs/explore.md: explore the demo model, photograph its pages.

Run: python docs/make_explore_figures.py   (writes docs/images/explore-*.png;
needs a headless Chromium: chromium, chromium-browser or google-chrome)

The demo's c2 network is trained on Die360 (`keras_introspect.demo`), the
explorer writes its site with `keras_introspect.explore`, and headless
Chromium takes a screenshot of the index, a layer page (ordered by "most
selective for class 3 pips" through its own select box), a unit page and
an image page.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

IMAGES = Path(__file__).with_name("images")
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# on a layer page: choose "most selective for class 2" (3 pips) in the select box
ORDER_BY_CLASS = (
    '<script>window.addEventListener("load", function () {'
    'var s = document.getElementById("cls"); s.value = "2";'
    's.dispatchEvent(new Event("change")); });</script>'
)


def screenshot(browser, page: Path, target: Path, size=(1100, 760), script="") -> None:
    """A PNG of `page` as headless Chromium renders it (`script` added before `</body>`)."""
    if script:
        shown = page.with_name(f"_shot_{page.name}")
        shown.write_text(
            page.read_text(encoding="utf-8").replace("</body>", script + "</body>"),
            encoding="utf-8",
        )
        page = shown
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size={size[0]},{size[1]}",
            f"--screenshot={target}",
            "--virtual-time-budget=5000",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    print(f"wrote {target}")


def main() -> int:
    import keras_introspect as ki
    from keras_introspect.demo import train_die360

    browser = next((p for p in map(shutil.which, BROWSERS) if p), None)
    if browser is None:
        print("no headless Chromium found", file=sys.stderr)
        return 1
    IMAGES.mkdir(exist_ok=True)
    model, x, y, _, accuracy = train_die360("c2", n=3000, epochs=15)
    print(f"c2 trained: accuracy {accuracy:.3f}")
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "site"
        ki.explore(
            model,
            x[2400:],
            y[2400:],
            out=out,
            class_names=[f"{p} pips" for p in range(1, 7)],
            samples=6,
            verbose=1,
        )
        screenshot(browser, out / "index.html", IMAGES / "explore-index.png", (1100, 1100))
        screenshot(
            browser,
            out / "layers" / "flatten.html",
            IMAGES / "explore-layer.png",
            script=ORDER_BY_CLASS,
        )
        screenshot(
            browser, out / "units" / "conv2" / "1.html", IMAGES / "explore-unit.png", (1100, 1000)
        )
        screenshot(browser, out / "images" / "0.html", IMAGES / "explore-image.png", (1100, 700))
    return 0


if __name__ == "__main__":
    sys.exit(main())
