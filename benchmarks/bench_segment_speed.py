"""End-to-end segmentation time and peak memory on clinical-size volumes, coarse-to-fine vs naive.

Run: python benchmarks/bench_segment_speed.py [--device cpu|cuda] [--record]
Each measurement runs in a fresh subprocess (peak RSS = that process's maximum resident memory,
Python and torch included). "naive" = the same fine network slid over the whole volume at 0.5 mm.
Targets (2-core CPU): at most 15 s and 3 GB per volume.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

VOLUMES = {
    "CISS slab 448x448x80 at 0.47x0.47x1.0 mm": dict(spacing_mm=(0.47, 0.47, 1.0), fov_mm=448 * 0.47, slab_mm=80.0),
    "512x512x160 at 0.4x0.4x0.5 mm": dict(spacing_mm=(0.4, 0.4, 0.5), fov_mm=512 * 0.4, slab_mm=80.0),
}


def make_volume(name: str, folder: Path) -> Path:
    from nvc_mri.phantom import generate
    from nvc_mri.phantom.write import write_case

    path = folder / name.split(" at ")[0].replace(" ", "_")
    if not (path / "image.nii.gz").is_file():
        write_case(generate(4242, contrast="ciss", orientation="axial", **VOLUMES[name]), path, "nifti")
    return path / "image.nii.gz"


def measure_once(image: str, device: str, naive: bool) -> None:
    """Child process: load, segment, print JSON with seconds and peak RSS."""
    from nvc_mri.io import load_volume
    from nvc_mri.segment.inference import configure_threads, run_segmentation

    configure_threads()
    t0 = time.perf_counter()
    volume = load_volume(image)
    result = run_segmentation(volume, device=device, force_fallback=naive)
    seconds = time.perf_counter() - t0
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps({"shape": volume.shape, "seconds": seconds, "peak_gb": peak_gb, "fallback": result.used_fallback,
                      "timings": result.timings_s}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--folder", type=Path, default=Path("runs/speed_phantoms"))
    parser.add_argument("--record", action="store_true", help="write the table into benchmarks/RESULTS.md")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        measure_once(args.child[0], args.child[1], args.child[2] == "naive")
        return
    rows = []
    for name in VOLUMES:
        image = make_volume(name, args.folder)
        runs = {}
        for mode in ("coarse-to-fine", "naive"):
            out = subprocess.run([sys.executable, __file__, "--child", str(image), args.device, "naive" if mode == "naive" else "roi"],
                                 capture_output=True, text=True, check=True)
            runs[mode] = json.loads(out.stdout.strip().splitlines()[-1])
            print(name, mode, runs[mode])
        ratio = runs["naive"]["seconds"] / runs["coarse-to-fine"]["seconds"]
        print(f"{name}: coarse-to-fine {runs['coarse-to-fine']['seconds']:.1f} s, naive {runs['naive']['seconds']:.1f} s, ratio {ratio:.1f}x")
        rows.append((name, runs, ratio))
    if args.record:
        sys.path.insert(0, str(Path(__file__).parent))
        from results_md import write_section

        lines = [f"## Segmentation speed (issue 4)\n\n`python benchmarks/bench_segment_speed.py --device {args.device} --record`, "
                 f"{'dev machine (2 cores, no GPU)' if args.device == 'cpu' else args.device}, {platform.processor() or platform.machine()}, "
                 f"{time.strftime('%Y-%m-%d')}. Load + segment + labels back on the input grid, fresh process each; "
                 "peak = maximum resident memory of that process.\n",
                 "| volume | coarse-to-fine | peak memory | naive (whole volume at 0.5 mm) | naive peak | speed-up | target |",
                 "|---|---|---|---|---|---|---|"]
        for name, runs, ratio in rows:
            fast, slow = runs["coarse-to-fine"], runs["naive"]
            ok = fast["seconds"] <= 15 and fast["peak_gb"] <= 3
            lines.append(f"| {name} | {fast['seconds']:.1f} s | {fast['peak_gb']:.2f} GB | {slow['seconds']:.1f} s | {slow['peak_gb']:.2f} GB | "
                         f"{ratio:.1f}x | <= 15 s, <= 3 GB: {'met' if ok else '**not met**'} |")
        write_section(f"segmentation-speed-{args.device}", "\n".join(lines))


if __name__ == "__main__":
    main()
