"""Accuracy of the shipped U-Net on the fixed phantom evaluation sets (never trained on).

Run: python benchmarks/segmentation_accuracy.py [--eval-dir DIR] [--hard-dir DIR] [--weights W]
Missing phantom sets are generated first (``nvc-mri phantom DIR --preset eval|hard``).
Writes predictions and metrics under runs/accuracy/ and the tables into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
from results_md import write_section

from nvc_mri.atomic import atomic_save_nifti
from nvc_mri.io import load_volume
from nvc_mri.phantom import generate
from nvc_mri.phantom.presets import preset_cases
from nvc_mri.phantom.write import write_case
from nvc_mri.segment.evaluate import evaluate_folders
from nvc_mri.segment.inference import configure_threads, run_segmentation
from nvc_mri.segment.model import load_networks

TARGETS = {"brainstem": 0.95, "artery": 0.85, "facial_nerve": 0.80, "vestibulocochlear_nerve": 0.80, "lesion": 0.85}
NERVE_HD95_MM = 1.5


def ensure_preset(name: str, folder: Path) -> None:
    for seed, spec in preset_cases(name):
        case_dir = folder / f"case_{seed:07d}"
        if not (case_dir / "truth.json").is_file():
            write_case(generate(seed, **spec), case_dir, "nifti")


def predict(folder: Path, out: Path, networks) -> dict:
    stats = {"seconds": [], "fallback": 0, "cases": 0}
    for case_dir in sorted(folder.glob("case_*")):
        volume = load_volume(case_dir / "image.nii.gz")
        t0 = time.perf_counter()
        result = run_segmentation(volume, networks=networks, device="cpu")
        stats["seconds"].append(time.perf_counter() - t0)
        stats["fallback"] += int(result.used_fallback)
        stats["cases"] += 1
        atomic_save_nifti(result.labels.to_nifti(dtype=np.uint8), out / f"{case_dir.name}.nii.gz")
    return stats


def table(summary: dict, targets: bool) -> str:
    head = "| structure | cases | Dice mean | Dice median | HD95 mean (mm) | surface Dice 0.5 mm | false-positive cases |"
    rows = [head + (" target |" if targets else ""), "|" + "---|" * (7 + targets)]
    for name, row in summary.items():
        cells = [name, str(row["cases"]), f"{row['dice_mean']:.3f}", f"{row['dice_median']:.3f}", f"{row['hd95_mm_mean']:.2f}",
                 f"{row['surface_dice_0.5mm_mean']:.3f}", str(row["false_positive_cases"])]
        if targets:
            goal = f"Dice >= {TARGETS[name]}"
            ok = row["dice_mean"] >= TARGETS[name]
            if "nerve" in name:
                goal += f", HD95 <= {NERVE_HD95_MM} mm"
                ok = ok and row["hd95_mm_mean"] <= NERVE_HD95_MM
            cells.append(f"{goal}: {'met' if ok else '**not met**'}")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--eval-dir", type=Path, default=Path("runs/phantoms/eval"))
    parser.add_argument("--hard-dir", type=Path, default=Path("runs/phantoms/hard"))
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("runs/accuracy"))
    args = parser.parse_args()
    configure_threads()
    networks = load_networks(args.weights)
    sections = []
    for name, folder in (("eval", args.eval_dir), ("hard", args.hard_dir)):
        ensure_preset(name, folder)
        pred = args.out / name
        stats = predict(folder, pred, networks)
        result = evaluate_folders(pred, folder, pred)
        print(name, json.dumps(result["summary"], indent=1))
        title = ("Fixed evaluation set (`--preset eval`, 40 cases, seeds from 1,000,000; in-plane 0.39-0.6 mm, slices 0.5-1.0 mm, SNR 12-40)"
                 if name == "eval" else "Hard set (`--preset hard`: same designs, SNR 8-12, 0.6x0.6x1.0 mm, oblique slabs)")
        sections.append(f"### {title}\n\n{table(result['summary'], name == 'eval')}\n\n"
                        f"Segmentation time per case (CPU, this run): median {np.median(stats['seconds']):.1f} s; "
                        f"coarse pass not trusted (whole-volume fallback) in {stats['fallback']} of {stats['cases']} cases.")
    weights_sha = networks.sha256[:12] if networks.sha256 else "?"
    text = (f"## Segmentation accuracy (issue 4)\n\n`python benchmarks/segmentation_accuracy.py`, weights sha256 {weights_sha}..., "
            f"{platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d')}. Metrics on each case's own grid "
            "(MONAI: Dice, 95% Hausdorff distance and surface Dice with the real voxel spacing); a structure absent from a "
            "case's truth is left out of its mean and counted as a false-positive case when predicted.\n\n" + "\n\n".join(sections))
    write_section("segmentation-accuracy", text.replace("nan", math.nan.__repr__()))


if __name__ == "__main__":
    main()
