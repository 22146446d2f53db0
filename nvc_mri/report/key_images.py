"""Key images: reformatted slices through each root exit zone and each lesion, with coloured overlays.

Two views per side: an axial slice through the contact (or the root exit zone when there is no
contact), shown in the radiological convention (patient's right on the viewer's left, anterior
up), and an oblique plane that holds the nerve's course and the direction to the nearest artery,
the plane in which a contact or an indentation is seen best. One axial view per lesion.
Orientation letters on each edge name the patient direction the edge faces (R/L, A/P, S/I).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from nibabel.affines import apply_affine
from PIL import Image
from scipy import ndimage

from nvc_mri.io.volume import Volume
from nvc_mri.labels import Label
from nvc_mri.measure.findings import Findings

COLOURS = {  # RGB, alpha
    Label.BRAINSTEM: ((0.30, 0.55, 1.00), 0.22),
    Label.FACIAL_NERVE: ((1.00, 0.85, 0.10), 0.60),
    Label.VESTIBULOCOCHLEAR_NERVE: ((0.20, 0.90, 0.35), 0.55),
    Label.ARTERY: ((1.00, 0.15, 0.15), 0.55),
    Label.LESION: ((0.90, 0.20, 0.90), 0.45),
}
LEGEND = {Label.BRAINSTEM: "brainstem", Label.FACIAL_NERVE: "CN VII", Label.VESTIBULOCOCHLEAR_NERVE: "CN VIII",
          Label.ARTERY: "artery", Label.LESION: "lesion"}
RAS_LETTERS = (("R", "L"), ("A", "P"), ("S", "I"))  # letter for the + and - direction of each RAS axis
MAX_LESION_IMAGES = 6  # the largest lesions get a key image; a report is not a slice viewer
AXIAL = (np.array([-1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]))  # screen right = patient left, screen up = anterior


@dataclass
class KeyImage:
    """One rendered key image."""

    name: str          # file-safe identifier, e.g. 'left_rez_axial'
    title: str
    caption: str
    png: bytes
    rgb: np.ndarray    # (rows, columns, 3) uint8, the same picture


def plane_samples(volume: Volume, labels: np.ndarray, centre: np.ndarray, right: np.ndarray, up: np.ndarray,
                  fov_mm: float, pixel_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Image (linear) and labels (nearest) on a square plane in world space.

    Parameters
    ----------
    centre : (3,) RAS+ mm
    right, up : (3,) unit vectors (RAS) of the screen's right and up directions
    fov_mm, pixel_mm : float
        Side of the square and pixel size, mm.

    Returns
    -------
    image, labels : (n, n) arrays, row 0 at the top of the screen.
    """
    n = int(round(fov_mm / pixel_mm))
    offsets = (np.arange(n) - (n - 1) / 2) * pixel_mm
    u, v = np.meshgrid(offsets, offsets[::-1])  # v decreases down the rows
    world = centre + u[..., None] * right + v[..., None] * up
    index = (world - volume.affine[:3, 3]) @ np.linalg.inv(volume.affine[:3, :3]).T
    coords = np.moveaxis(index, -1, 0)
    image = ndimage.map_coordinates(volume.array, coords, order=1, mode="constant", cval=0.0)
    label = ndimage.map_coordinates(labels, coords, order=0, mode="constant", cval=0)
    return image, label


def edge_letters(direction: np.ndarray) -> str:
    """Patient direction(s) a screen edge faces: the dominant RAS axis, plus a second one when oblique by > 22.5 degrees."""
    order = np.argsort(-np.abs(direction))
    letters = ""
    for axis in order[:2]:
        if axis == order[0] or abs(direction[axis]) > np.sin(np.radians(22.5)):
            letters += RAS_LETTERS[axis][0 if direction[axis] > 0 else 1]
    return letters


def nerve_plane(labels: Volume, point: np.ndarray, nerve_value: int = Label.FACIAL_NERVE) -> tuple[np.ndarray, np.ndarray] | None:
    """Screen axes of the plane holding the nerve's local direction and the direction to the nearest artery."""
    pts = apply_affine(labels.affine, np.argwhere(labels.array == nerve_value))
    near = pts[np.linalg.norm(pts - point, axis=1) <= 4.0]
    if len(near) < 5:
        return None
    tangent = np.linalg.svd(near - near.mean(0), full_matrices=False)[2][0]
    arteries = apply_affine(labels.affine, np.argwhere(labels.array == Label.ARTERY))
    across = None
    if len(arteries):
        d = np.linalg.norm(arteries - point, axis=1)
        if d.min() <= 8.0:
            across = arteries[np.argmin(d)] - point
            across -= (across @ tangent) * tangent
    if across is None or np.linalg.norm(across) < 1e-3:
        across = np.cross(tangent, [0.0, 0.0, 1.0])
        if np.linalg.norm(across) < 1e-3:
            across = np.array([0.0, 1.0, 0.0])
    across /= np.linalg.norm(across)
    # the axis closer to left-right goes across the screen, pointing to the patient's left as in axial views
    right, up = (tangent, across) if abs(tangent[0]) >= abs(across[0]) else (across, tangent)
    right = right if right[0] <= 0 else -right
    up = up if (up[2] if abs(up[2]) > 0.2 else up[1]) >= 0 else -up
    return right, up


def render(image: np.ndarray, labels: np.ndarray, right: np.ndarray, up: np.ndarray, title: str, fov_mm: float,
           marker: bool, warning: str | None) -> tuple[bytes, np.ndarray]:
    """PNG bytes and RGB pixels of one annotated key image."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2, 4.6), dpi=100, facecolor="black")
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0.02, 0.08, 0.96, 0.84))
    lo, hi = np.percentile(image, [1, 99.5]) if np.any(image) else (0.0, 1.0)
    ax.imshow(image, cmap="gray", vmin=lo, vmax=max(hi, lo + 1e-6), interpolation="bilinear")
    overlay = np.zeros(image.shape + (4,))
    for value, (rgb, alpha) in COLOURS.items():
        mask = labels == value
        overlay[mask, :3], overlay[mask, 3] = rgb, alpha
    ax.imshow(overlay, interpolation="nearest")
    n = image.shape[0]
    if marker:
        ax.add_patch(matplotlib.patches.Circle(((n - 1) / 2, (n - 1) / 2), n / 14, fill=False, color="white", lw=1.2))
    style = dict(color="white", fontsize=12, fontweight="bold", ha="center", va="center")
    for text, (x, y) in ((edge_letters(-right), (0.04, 0.5)), (edge_letters(right), (0.96, 0.5)),
                         (edge_letters(up), (0.5, 0.96)), (edge_letters(-up), (0.5, 0.04))):
        ax.text(x, y, text, transform=ax.transAxes, **style)
    ax.plot([n * 0.06, n * 0.06 + n * 10 / fov_mm], [n * 0.92] * 2, color="white", lw=2)  # 10 mm scale bar
    ax.text(n * 0.06 + n * 5 / fov_mm, n * 0.88, "10 mm", color="white", fontsize=8, ha="center")
    ax.set_axis_off()
    fig.text(0.5, 0.965, title, color="white", fontsize=10, ha="center", va="center")
    legend = "  ".join(LEGEND[v] for v in COLOURS if np.any(labels == v))
    fig.text(0.5, 0.04, legend, color="#dddddd", fontsize=8, ha="center", va="center")
    if warning:
        fig.text(0.5, 0.5, warning, color="#ff5050", fontsize=13, fontweight="bold", ha="center", va="center", alpha=0.8, rotation=30)
    canvas.draw()  # render once; the PNG is encoded from the same pixels
    rgb = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue(), rgb


def _point(values) -> np.ndarray | None:
    return None if values is None else np.asarray(values, float)


def key_images(volume: Volume, labels: Volume, findings: Findings, warning: str | None = None) -> list[KeyImage]:
    """Key images of both root exit zones and every lesion.

    Parameters
    ----------
    volume, labels : Volume
        The image and its label map on the same grid.
    findings : Findings
        Where the contacts and lesions are (RAS+ mm).
    warning : str, optional
        Burned diagonally into every image (used for forced analyses of non-T2 input).

    Lesion images are made for the ``MAX_LESION_IMAGES`` largest lesions, numbered as in the report.
    """
    pixel = max(0.15, min(volume.spacing) / 2)
    out = []
    for side in ("right", "left"):
        f = findings.sides[side]
        centre = _point(f.nvc.contact_point_ras_mm)
        if centre is None:
            centre = _point(f.facial_nerve.root_detachment_point_ras_mm)
        if centre is None:
            continue
        where = (f"{f.nvc.severity}, gap {f.nvc.min_gap_mm:.1f} mm, {f.nvc.vessel}" if f.nvc.contact_point_ras_mm and f.nvc.min_gap_mm is not None
                 else "root detachment point")
        marked = f.nvc.contact_point_ras_mm is not None
        image, label = plane_samples(volume, labels.array, centre, *AXIAL, 60.0, max(pixel, 0.3))
        png, rgb = render(image, label, *AXIAL, f"{side.capitalize()} REZ, axial", 60.0, marked, warning)
        out.append(KeyImage(f"{side}_rez_axial", f"{side.capitalize()} facial nerve REZ, axial",
                            f"Axial slice through the {where} (circle), radiological convention.", png, rgb))
        plane = nerve_plane(labels, centre)
        if plane is not None:
            image, label = plane_samples(volume, labels.array, centre, *plane, 24.0, pixel)
            png, rgb = render(image, label, *plane, f"{side.capitalize()} REZ, nerve-artery plane", 24.0, marked, warning)
            out.append(KeyImage(f"{side}_rez_oblique", f"{side.capitalize()} facial nerve REZ, oblique plane",
                                f"Oblique plane holding the facial nerve and the nearest artery; {where}.", png, rgb))
    largest = sorted(range(len(findings.lesions)), key=lambda i: -findings.lesions[i].volume_mm3)[:MAX_LESION_IMAGES]
    for index in sorted(largest):
        lesion, number = findings.lesions[index], index + 1
        fov = float(np.clip(lesion.max_diameter_mm * 2.5, 30.0, 80.0))
        image, label = plane_samples(volume, labels.array, np.asarray(lesion.centroid_ras_mm), *AXIAL, fov, max(pixel, fov / 256))
        png, rgb = render(image, label, *AXIAL, f"Lesion {number} ({lesion.side}), axial", fov, False, warning)
        out.append(KeyImage(f"lesion{number}_axial", f"Lesion {number}, {lesion.side}",
                            f"Axial slice through the lesion's centroid; {lesion.max_diameter_mm:.1f} mm, {lesion.volume_mm3:.0f} mm3.", png, rgb))
    return out


def montage(images: list[KeyImage], columns: int = 2) -> np.ndarray:
    """The key images tiled into one RGB picture (for the DICOM secondary capture)."""
    if not images:
        return np.zeros((64, 64, 3), np.uint8)
    h, w = images[0].rgb.shape[:2]
    rows = -(-len(images) // columns)
    canvas = np.zeros((rows * h, min(columns, len(images)) * w, 3), np.uint8)
    for k, img in enumerate(images):
        r, c = divmod(k, columns)
        canvas[r * h:(r + 1) * h, c * w:(c + 1) * w] = img.rgb[:h, :w]
    return canvas
