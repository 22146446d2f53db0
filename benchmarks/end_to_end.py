"""End to end on the fixed phantom evaluation set: image -> U-Net -> measure, against the truth (issue 5, criterion 3).

Run: python benchmarks/end_to_end.py [--eval-dir DIR] [--pred-dir DIR] [--record]
Uses the label maps that benchmarks/segmentation_accuracy.py wrote (runs/accuracy/eval), segmenting
any case that lacks one. Writes docs/bland_altman_gap.png and, with --record, a RESULTS.md section.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from nvc_mri.measure import measure

sys.path.insert(0, str(Path(__file__).parent))
from measure_on_truth import confusion  # noqa: E402
from results_md import target_table, write_section  # noqa: E402


def predicted_labels(case_dir: Path, pred_dir: Path) -> nib.Nifti1Image:
    path = pred_dir / f"{case_dir.name}.nii.gz"
    if not path.is_file():
        from nvc_mri.atomic import atomic_save_nifti
        from nvc_mri.io import load_volume
        from nvc_mri.segment.inference import run_segmentation

        atomic_save_nifti(run_segmentation(load_volume(case_dir / "image.nii.gz"), device="cpu").labels.to_nifti(dtype=np.uint8), path)
    return nib.load(path)


def lesion_overlap_sides(truth_labels: np.ndarray, predicted: np.ndarray, affine: np.ndarray) -> set[str]:
    """Sides (patient's) where predicted lesion voxels overlap true lesion voxels."""
    from nvc_mri.labels import Label

    both = np.argwhere((truth_labels == Label.LESION) & (predicted == Label.LESION))
    if len(both) == 0:
        return set()
    x = (both @ affine[:3, :3].T + affine[:3, 3])[:, 0]
    midline = float(np.mean((np.argwhere(truth_labels == Label.BRAINSTEM) @ affine[:3, :3].T + affine[:3, 3])[:, 0]))
    return {"right" if xi >= midline else "left" for xi in x}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--eval-dir", type=Path, default=Path("runs/phantoms/eval"))
    parser.add_argument("--pred-dir", type=Path, default=Path("runs/accuracy/eval"))
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    sides, lesions = [], []
    for case_dir in sorted(args.eval_dir.glob("case_*")):
        truth = json.loads((case_dir / "truth.json").read_text())
        img = predicted_labels(case_dir, args.pred_dir)
        image = np.asarray(nib.load(case_dir / "image.nii.gz").dataobj, np.float32)
        found = measure(np.asarray(img.dataobj), img.affine, image)
        for side in ("right", "left"):
            t, m = truth["sides"][side], found.sides[side]
            sides.append(dict(case=case_dir.name, side=side, true_nvc=t["nvc"], nvc=m.nvc.nvc, true_gap=t["min_gap_mm"],
                              gap=m.nvc.min_gap_mm, status=m.status, true_severity=t["severity"], severity=m.nvc.severity))
        overlap = lesion_overlap_sides(np.asarray(nib.load(case_dir / "labels.nii.gz").dataobj), np.asarray(img.dataobj), img.affine)
        for side in ("right", "left"):
            true_here = [x for x in truth["lesions"] if x["side"] == side]
            found_here = [x for x in found.lesions if x.side == side]
            # a true lesion counts as found only where a flagged lesion's label overlaps it (not any flag on that side)
            lesions.append(dict(case=case_dir.name, side=side, true=bool(true_here), found=bool(found_here),
                                detected=bool(found_here) and side in overlap, big=any(x["max_diameter_mm"] >= 5 for x in true_here)))
    positives = [s for s in sides if s["true_nvc"]]
    negatives = [s for s in sides if not s["true_nvc"]]
    near = [s for s in sides if s["true_gap"] <= 2.0 and s["gap"] is not None]
    big = [x for x in lesions if x["big"]]
    free = [x for x in lesions if not x["true"]]
    stats = {
        "sensitivity": float(np.mean([bool(s["nvc"]) for s in positives])) if positives else float("nan"),
        "specificity": float(np.mean([not s["nvc"] for s in negatives])) if negatives else float("nan"),
        "gap MAE (true gap 0-2 mm)": float(np.mean([abs(s["gap"] - s["true_gap"]) for s in near])) if near else float("nan"),
        "lesion sensitivity (>= 5 mm)": float(np.mean([x["detected"] for x in big])) if big else float("nan"),
        "false lesion flags (lesion-free sides)": float(np.mean([x["found"] for x in free])) if free else float("nan"),
        "unknown sides": sum(s["status"] == "unknown" for s in sides), "sides": len(sides), "nvc sides": len(positives),
        "near sides": len(near),
    }
    print(json.dumps(stats, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if near:
        truth_gap, measured = np.array([s["true_gap"] for s in near]), np.array([s["gap"] for s in near])
        mean, diff = (truth_gap + measured) / 2, measured - truth_gap
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.scatter(mean, diff, s=14)
        for y, style in ((diff.mean(), "-"), (diff.mean() + 1.96 * diff.std(), "--"), (diff.mean() - 1.96 * diff.std(), "--")):
            ax.axhline(y, color="k", linestyle=style, linewidth=0.8)
        ax.set_xlabel("mean of measured and true gap (mm)")
        ax.set_ylabel("measured - true gap (mm)")
        ax.set_title(f"End-to-end gap, phantom eval set (n={len(near)} sides with a true gap <= 2 mm)")
        fig.tight_layout()
        fig.savefig("docs/bland_altman_gap.png", dpi=100)
    if args.record:
        targets = {"sensitivity": (">=", 0.95), "specificity": (">=", 0.95), "gap MAE (true gap 0-2 mm)": ("<=", 0.3),
                   "lesion sensitivity (>= 5 mm)": (">=", 0.95), "false lesion flags (lesion-free sides)": ("<=", 0.05)}
        text = (f"## End to end: image -> U-Net -> measurement (issue 5)\n\n`python benchmarks/end_to_end.py --record`, fixed eval set, "
                f"{time.strftime('%Y-%m-%d')}: {stats['sides']} sides, {stats['nvc sides']} with a true NVC (contact or deformity in the REZ), "
                f"{stats['unknown sides']} reported unknown. A true lesion counts as detected only where a flagged lesion's "
                "label overlaps it (a flag elsewhere on that side does not count).\n\n" + target_table(stats, targets)
                + "\n\nNVC per side (rows: truth, columns: measured):\n\n" + confusion(sides, "true_nvc", "nvc")
                + "\n\nSeverity:\n\n" + confusion(sides, "true_severity", "severity")
                + "\n\nBland-Altman plot of the gap: `docs/bland_altman_gap.png`.")
        write_section("end-to-end", text)


if __name__ == "__main__":
    main()
