"""Peak memory of load_volume on the real 512x512x120 T1 series (issue: < 3x the float32 volume).

Run: python benchmarks/bench_load_memory.py [FOLDER]
Prints the peak traced allocation during the load (tracemalloc sees NumPy buffers).
"""

from __future__ import annotations

import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

from nvc_mri.io import load_volume

REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "real" / "vs-seg-001-t1c-dicom"


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else REAL
    load_volume(folder)  # warm imports and caches so that only the load itself is measured
    tracemalloc.start()
    t0 = time.perf_counter()
    vol = load_volume(folder)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    nbytes = vol.array.size * np.dtype(np.float32).itemsize
    print(f"volume {vol.shape} float32 = {nbytes / 2**20:.1f} MiB")
    print(f"peak traced allocation during load = {peak / 2**20:.1f} MiB ({peak / nbytes:.2f}x the volume)")
    print(f"load time = {seconds:.2f} s")


if __name__ == "__main__":
    main()
