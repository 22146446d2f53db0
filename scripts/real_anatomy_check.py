"""Sanity check of the shipped U-Net on real anatomy: ../shared/data/real/t2w-m2208.nii.gz (1 mm T2).

Run: python scripts/real_anatomy_check.py [PATH] [--out docs/real_t2w_overlay.png]
Prints the brainstem's connected pieces and where the largest lies (RAS+ mm, relative to the
volume), and saves three orthogonal slices through it with the labels overlaid.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from scipy import ndimage  # noqa: E402

from nvc_mri.io import load_volume  # noqa: E402
from nvc_mri.labels import Label  # noqa: E402
from nvc_mri.segment.inference import configure_threads, run_segmentation  # noqa: E402

COLOURS = ListedColormap([(0, 0, 0, 0), (1.0, 0.85, 0.2, 0.45), (0.1, 0.9, 0.2, 0.9), (0.2, 0.6, 1.0, 0.9), (1.0, 0.1, 0.1, 0.9), (0.8, 0.2, 1.0, 0.6)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", nargs="?", default=str(Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "real" / "t2w-m2208.nii.gz"))
    parser.add_argument("--out", default="docs/real_t2w_overlay.png")
    args = parser.parse_args()
    configure_threads()
    volume = load_volume(args.path).as_canonical()
    result = run_segmentation(volume, device="cpu")
    labels = result.labels.array
    pieces, n = ndimage.label(labels == Label.BRAINSTEM, structure=np.ones((3, 3, 3)))
    sizes = sorted(np.bincount(pieces.ravel())[1:].tolist(), reverse=True)
    voxel = float(abs(np.linalg.det(volume.affine[:3, :3])))
    report = {"brainstem_pieces": n, "piece_volumes_mm3": [round(s * voxel) for s in sizes[:5]], "used_fallback": result.used_fallback,
              "coarse_reason": result.coarse_reason, "label_voxels": {Label(v).name: int((labels == v).sum()) for v in range(1, 6)}}
    if n:
        main_piece = pieces == (int(np.argmax(np.bincount(pieces.ravel())[1:])) + 1)
        centre = np.argwhere(main_piece).mean(0)
        world = volume.affine @ np.r_[centre, 1]
        extent = np.ptp(np.argwhere(main_piece), 0) * volume.spacing
        report |= {"centroid_voxel": centre.round(1).tolist(), "centroid_ras_mm": world[:3].round(1).tolist(),
                   "centroid_fraction_of_volume": (centre / np.array(volume.shape)).round(2).tolist(), "extent_mm": extent.round(1).tolist()}
    else:
        centre = np.array(volume.shape) / 2
    print(json.dumps(report, indent=1))
    i, j, k = (int(round(c)) for c in centre)
    image = volume.array
    views = [("sagittal (x = %d)" % i, image[i].T, labels[i].T, "A", "P"), ("coronal (y = %d)" % j, image[:, j].T, labels[:, j].T, "R", "L"),
             ("axial (z = %d)" % k, image[:, :, k].T, labels[:, :, k].T, "R", "L")]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.6))
    for ax, (title, img, lab, right, left) in zip(axes, views):
        ax.imshow(img, cmap="gray", origin="lower")
        ax.imshow(lab, cmap=COLOURS, vmin=0, vmax=5, origin="lower", interpolation="nearest")
        ax.set_title(title)
        ax.set_axis_off()
        ax.text(0.98, 0.5, right, transform=ax.transAxes, color="w", ha="right")  # array index grows to the right: R or A
        ax.text(0.02, 0.5, left, transform=ax.transAxes, color="w")
    fig.suptitle("Shipped U-Net on a real 1 mm T2 (t2w-m2208): yellow brainstem, green CN VII, blue CN VIII, red artery, purple lesion")
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90)
    print(f"overlay written to {args.out}")


if __name__ == "__main__":
    main()
