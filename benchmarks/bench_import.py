"""Import cost of keras_introspect on top of TensorFlow + Keras.

Each measurement runs in a fresh interpreter (median of N runs):
  floor:   import tensorflow, keras
  package: import tensorflow, keras, keras_introspect
  first:   ... and resolve ki.Introspector (imports the model package)

Run: python benchmarks/bench_import.py [N]
"""

import statistics
import subprocess
import sys

SNIPPETS = {
    "tensorflow + keras": "import tensorflow, keras",
    "+ import keras_introspect": "import tensorflow, keras, keras_introspect",
    "+ ki.Introspector resolved": (
        "import tensorflow, keras, keras_introspect as ki; ki.Introspector"
    ),
}


def measure(code: str) -> float:
    timed = f"import time; t = time.perf_counter(); {code}; print(time.perf_counter() - t)"
    out = subprocess.check_output(
        [sys.executable, "-c", timed],
        text=True,
        stderr=subprocess.DEVNULL,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": ""},
    )
    return float(out.strip().splitlines()[-1])


def main(n: int = 5) -> None:
    results = {
        label: statistics.median(measure(code) for _ in range(n))
        for label, code in SNIPPETS.items()
    }
    floor = results["tensorflow + keras"]
    print(f"{'what':<30} {'median s':>9} {'added s':>9}")
    for label, seconds in results.items():
        print(f"{label:<30} {seconds:9.3f} {seconds - floor:9.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
