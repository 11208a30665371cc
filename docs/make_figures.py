"""Make the pictures of the documentation: run the demo and keep one figure per section.

Run: python docs/make_figures.py     (writes docs/images/<section>.png)

Every picture in `docs/` is made here, by the package's own code: the full
demo (`keras_introspect.demo.run_demo`, Die360 and the c2 network) writes its
report, and the first figure of each section is saved under the section's
anchor.
"""

from __future__ import annotations

import base64
import re
import sys
import tempfile
from pathlib import Path

from keras_introspect.demo import run_demo

IMAGES = Path(__file__).with_name("images")


def main() -> int:
    IMAGES.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as out:
        page = Path(run_demo(out)).read_text(encoding="utf-8")
    sections = re.findall(r'<section id="([^"]+)">(.*?)</section>', page, flags=re.S)
    for anchor, body in sections:
        found = re.search(r'src="data:image/png;base64,([^"]+)"', body)
        if found:
            # names that depend on the data (the most common label) get a fixed one
            stable = "prediction-tree" if anchor.startswith("prediction-tree") else anchor
            path = IMAGES / f"{stable}.png"
            path.write_bytes(base64.b64decode(found.group(1)))
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
