"""Time to generate one 0.5 mm phantom case on one core (issue target: at most 10 s).

Run: python benchmarks/bench_phantom.py [N_CASES] [--lesions]
Pins every numerical library to one thread before importing NumPy. ``--lesions`` times every
lesion kind (vestibular schwannoma Koos I-IV, meningioma, epidermoid, arachnoid cyst) on
N_CASES seeds each instead of the seed-drawn mix, since large lesions render the most
supersampled voxels.
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from nvc_mri.phantom import generate  # noqa: E402

LESION_KINDS = [{"type": "vestibular_schwannoma", "koos": k} for k in (1, 2, 3, 4)] + [
    {"type": t} for t in ("meningioma", "epidermoid", "arachnoid_cyst")]


def _timed(seed: int, **options) -> float:
    t0 = time.perf_counter()
    generate(seed, spacing_mm=(0.5, 0.5, 0.5), slab_mm=60.0, **options)
    return time.perf_counter() - t0


def _summary(label: str, times: list[float]) -> None:
    print(f"{label}: median {np.median(times):.1f} s, max {np.max(times):.1f} s over {len(times)} cases "
          "(128x128x60 mm, 0.5 mm isotropic)")


def main(n: int, lesions: bool) -> None:
    if not lesions:
        times = []
        for seed in range(100, 100 + n):
            times.append(_timed(seed))
            print(f"seed {seed}: {times[-1]:.1f} s")
        _summary("seed-drawn mix", times)
        return
    every = []
    for kind in LESION_KINDS:
        label = kind["type"] + (f" Koos {kind['koos']}" if "koos" in kind else "")
        times = [_timed(seed, lesion=kind) for seed in range(100, 100 + n)]
        every += times
        _summary(label, times)
    _summary("all lesion kinds", every)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n_cases", nargs="?", type=int, default=5)
    parser.add_argument("--lesions", action="store_true", help="time each lesion kind instead of the seed-drawn mix")
    args = parser.parse_args()
    main(args.n_cases, args.lesions)
