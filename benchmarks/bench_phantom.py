"""Time to generate one 0.5 mm phantom case on one core (issue target: at most 10 s).

Run: python benchmarks/bench_phantom.py [N_CASES]
Pins every numerical library to one thread before importing NumPy.
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from nvc_mri.phantom import generate  # noqa: E402


def main(n: int = 5) -> None:
    times = []
    for seed in range(100, 100 + n):
        t0 = time.perf_counter()
        case = generate(seed, spacing_mm=(0.5, 0.5, 0.5), slab_mm=60.0)
        times.append(time.perf_counter() - t0)
        print(f"seed {seed}: {case.image.shape} at 0.5 mm, {times[-1]:.1f} s, lesions {[l.type for l in case.truth.lesions]}")
    print(f"median {np.median(times):.1f} s, max {np.max(times):.1f} s over {n} cases (128x128x60 mm, 0.5 mm isotropic)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
