"""Time of `nvc-mri analyze` on a CISS-sized DICOM phantom, everything included.

Run: python benchmarks/bench_analyze.py [--device cpu|cuda] [--record]
The study (448x448x80 at 0.47x0.47x1.0 mm, a clinical CISS slab, as a classic DICOM series) is
analysed by the real command line in a fresh process, three times: wall time of the whole
command (interpreter start, imports, loading the DICOM series, segmentation, measurement, key
images, HTML, NIfTI, DICOM SEG/SR/key images), the report's own stage timings and peak resident
memory. Target (2-core CPU): at most 20 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

CASE = dict(spacing_mm=(0.47, 0.47, 1.0), fov_mm=448 * 0.47, slab_mm=80.0, contrast="ciss", orientation="axial")
TARGET_S = 20.0


def make_study(folder: Path) -> Path:
    from nvc_mri.phantom import ConflictSpec, generate
    from nvc_mri.phantom.write import write_case

    study = folder / "ciss_448x448x80"
    if not (study / "dicom").is_dir():
        case = generate(4243, left=ConflictSpec(kind="deformity", segment="root_detachment_point", vessel="AICA"), **CASE)
        write_case(case, study, "dicom")
    return study / "dicom"


def run_once(study: Path, out: Path, device: str) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    subprocess.run([shutil.which("nvc-mri") or "nvc-mri", "analyze", str(study), "-o", str(out), "--device", device],
                   check=True, capture_output=True, text=True, env=dict(os.environ, COLUMNS="200"))
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    report = json.loads((out / "report.json").read_text())
    return {"wall_s": wall, "peak_gb": max(peak, before) / 2**20, "stages": report["timings_s"], "shape": report["input"]["shape"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--folder", type=Path, default=Path("runs/analyze_bench"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--record", action="store_true", help="write the table into benchmarks/RESULTS.md")
    args = parser.parse_args()
    study = make_study(args.folder)
    runs = [run_once(study, args.folder / "out", args.device) for _ in range(args.repeats)]
    for r in runs:
        print(json.dumps(r))
    median = sorted(r["wall_s"] for r in runs)[len(runs) // 2]
    stages = runs[-1]["stages"]
    print(f"analyze {tuple(runs[0]['shape'])}: median {median:.1f} s wall (target <= {TARGET_S:.0f} s)")
    if args.record:
        sys.path.insert(0, str(Path(__file__).parent))
        from results_md import write_section

        machine = "dev machine (2 cores, no GPU)" if args.device == "cpu" else args.device
        rows = "\n".join(f"| run {i} | {r['wall_s']:.1f} | {r['peak_gb']:.2f} |" for i, r in enumerate(runs, 1))
        stage_text = ", ".join(f"{k} {v:.1f} s" for k, v in stages.items())
        write_section("analyze_speed", f"""## `analyze` end to end (issue 6)

`python benchmarks/bench_analyze.py --record`, {machine}, {platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d')}.
A 448x448x80 CISS phantom at 0.47x0.47x1.0 mm as a classic DICOM series; the `nvc-mri analyze` command in a fresh
process (interpreter start and imports included), all outputs (JSON, HTML with key images, labels, DICOM SEG, SR, key images).

| run | wall s | peak memory GB |
|---|---|---|
{rows}

Median **{median:.1f} s** (target <= {TARGET_S:.0f} s: {'met' if median <= TARGET_S else '**not met**'}). Stages of the last run (from
`report.json`): {stage_text}.
""")


if __name__ == "__main__":
    main()
