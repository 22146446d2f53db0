"""Batch throughput: studies per hour for 20 phantom studies with 1 and 2 local workers.

Run: python benchmarks/bench_batch.py [--record]
The studies are CISS phantoms of the `eval` kind (about 256x256x70 at 0.5x0.5x0.7 mm) as NIfTI
files; each configuration is a fresh `nvc-mri batch` process (model loading per worker included).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

N_STUDIES = 20


def make_studies(folder: Path) -> Path:
    from nvc_mri.phantom import generate
    from nvc_mri.phantom.write import write_case

    root = folder / "studies"
    root.mkdir(parents=True, exist_ok=True)
    for seed in range(5000, 5000 + N_STUDIES):
        target = root / f"study_{seed}.nii.gz"
        if not target.is_file():
            case = write_case(generate(seed, contrast="ciss", spacing_mm=(0.5, 0.5, 0.7), slab_mm=50), folder / "cases" / str(seed), "nifti")
            shutil.copy(case / "image.nii.gz", target)
    return root


def run(root: Path, out: Path, workers: int) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run([shutil.which("nvc-mri") or "nvc-mri", "batch", str(root), "-o", str(out), "--workers", str(workers)],
                   capture_output=True, text=True, env=dict(os.environ, COLUMNS="200"))
    seconds = time.perf_counter() - t0
    counts = json.loads((out / "batch.json").read_text())
    return {"workers": workers, "seconds": seconds, "per_hour": 3600 * counts["done"] / seconds, **counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--folder", type=Path, default=Path("runs/batch_bench"))
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    root = make_studies(args.folder)
    results = [run(root, args.folder / f"out{w}", w) for w in (1, 2)]
    for r in results:
        print(json.dumps(r))
    ratio = results[1]["per_hour"] / results[0]["per_hour"]
    print(f"2 workers / 1 worker throughput: {ratio:.2f}x")
    if args.record:
        sys.path.insert(0, str(Path(__file__).parent))
        from results_md import write_section

        rows = "\n".join(f"| {r['workers']} | {r['done']} | {r['failed']} | {r['seconds']:.0f} | {r['per_hour']:.0f} |" for r in results)
        write_section("batch_throughput", f"""## Batch throughput (issue 7)

`python benchmarks/bench_batch.py --record`, dev machine (2 cores, no GPU), {platform.processor() or platform.machine()},
{time.strftime('%Y-%m-%d')}. {N_STUDIES} CISS phantom studies (NIfTI, about 256x256x70 at 0.5x0.5x0.7 mm), the whole
`nvc-mri batch` command, all outputs per study (JSON, HTML, labels).

| workers | done | failed | wall s | studies per hour |
|---|---|---|---|---|
{rows}

Ratio 2 workers / 1 worker: **{ratio:.2f}x**. With 2 cores, 1 worker runs inference on 2 torch threads and 2 workers
on 1 thread each; more workers pay off only where there are more cores than one worker uses (or on a cluster).
""")


if __name__ == "__main__":
    main()
