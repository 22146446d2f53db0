"""Make docs/phantom.png: axial and oblique slices through the REZ of a few phantom cases, with labels.

Run: python scripts/make_phantom_figure.py [OUT.png]
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from scipy.ndimage import map_coordinates  # noqa: E402

from nvc_mri.phantom import ConflictSpec, LesionSpec, generate  # noqa: E402

COLOURS = ListedColormap(["none", "#f5a623", "#2ecc71", "#e74c3c", "#9b59b6", "#3498db"][1:])
CASES = [
    (7, dict(contrast="ciss", left=ConflictSpec(kind="deformity", segment="attached_segment", vessel="AICA"),
             right=ConflictSpec(kind="none"), lesion_probability=0.0), "left", "CISS: AICA indents CN VII (attached segment)"),
    (12, dict(contrast="fiesta", right=ConflictSpec(kind="contact", segment="root_exit_point", vessel="PICA"),
              left=ConflictSpec(kind="near_miss", segment="cisternal", vessel="AICA", gap_mm=1.0), lesion_probability=0.0),
     "right", "FIESTA: PICA contacts CN VII at the root exit point"),
    (3, dict(contrast="ciss", lesion=LesionSpec(type="vestibular_schwannoma", koos=3, side="left"),
             right=ConflictSpec(kind="contact", segment="transition_zone", vessel="AICA"), left=ConflictSpec()),
     "left", "CISS: vestibular schwannoma, Koos III"),
]


def _plane(case, centre, normal, size=48.0, step=0.25):
    """Resample image and labels on a plane through ``centre`` (RAS mm) with the given normal."""
    normal = np.asarray(normal, float) / np.linalg.norm(normal)
    u = np.cross(normal, [0, 0, 1.0]) if abs(normal[2]) < 0.9 else np.array([1.0, 0, 0])
    u /= np.linalg.norm(u)
    v = np.cross(normal, u)
    t = np.arange(-size / 2, size / 2, step)
    pts = centre + t[:, None, None] * u + t[None, :, None] * v
    ijk = (pts.reshape(-1, 3) - case.image.affine[:3, 3]) @ np.linalg.inv(case.image.affine[:3, :3]).T
    img = map_coordinates(case.image.array, ijk.T, order=1).reshape(len(t), len(t))
    lab = map_coordinates(case.labels.array, ijk.T, order=0).reshape(len(t), len(t))
    return img.T[::-1], lab.T[::-1]


def main(out: Path) -> None:
    fig, axes = plt.subplots(len(CASES), 4, figsize=(16, 4.2 * len(CASES)))
    for row, (seed, options, side, title) in zip(axes, CASES):
        case = generate(seed, spacing_mm=(0.45, 0.45, 0.6), slab_mm=50, **options)
        t = case.truth.sides[side]
        centre = np.array(t.contact_point_ras_mm or t.root_detachment_point_ras_mm)
        if case.truth.lesions:
            centre = np.array(case.truth.lesions[0].centroid_ras_mm)
        head_z = np.array(case.truth.head_to_world)[:3, 2]
        rep_to_point = centre - np.array(t.root_exit_point_ras_mm)
        oblique = np.cross(rep_to_point, head_z) if np.linalg.norm(rep_to_point) > 1 else [0, 1, 0]
        for col, (normal, kind) in enumerate(((head_z, "axial"), (oblique, "oblique along CN VII"))):
            img, lab = _plane(case, centre, normal)
            ax_img, ax_lab = row[2 * col], row[2 * col + 1]
            vmax = np.percentile(img, 99.5)
            ax_img.imshow(img, cmap="gray", vmin=0, vmax=vmax)
            ax_lab.imshow(img, cmap="gray", vmin=0, vmax=vmax)
            ax_lab.imshow(np.ma.masked_equal(lab, 0), cmap=COLOURS, vmin=1, vmax=5, alpha=0.55, interpolation="nearest")
            ax_img.set_title(f"{title}\n{kind} slice", fontsize=9)
            ax_lab.set_title("labels: brainstem, CN VII, CN VIII, artery, lesion", fontsize=8)
            for ax in (ax_img, ax_lab):
                ax.set_xticks([])
                ax.set_yticks([])
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "docs" / "phantom.png")
