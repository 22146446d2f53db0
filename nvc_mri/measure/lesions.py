"""Lesions of the cerebellopontine angle: size, canal and cistern parts, brainstem relation, Koos grade.

* Volume: labelled voxels times voxel volume (mm3). Maximal diameter: largest distance between
  voxel centres, plus the voxel's extent in that direction (mm).
* Intracanalicular part: lesion beyond the porus of the internal auditory canal, the canal
  being traced back ``iac_length_mm`` from the lateral end of that side's facial nerve.
* Brainstem compression: how deep the lesion reaches into where the brainstem would be without
  the mass, taken as the mirror image of the other half of the brainstem (mm). The mirror plane
  passes midway between the two facial nerves' root exit points (or the brainstem's centre).
* Koos grade (vestibular schwannoma): I intracanalicular only; II into the CPA without touching
  the brainstem; III touching it; IV compressing it by ``lesion_brainstem_compression_mm`` or more.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from nibabel.affines import apply_affine
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError, cKDTree


@dataclass(frozen=True)
class Canal:
    """Internal auditory canal of one side: porus and unit axis towards the fundus (RAS+ mm)."""

    porus: np.ndarray
    axis: np.ndarray


def canal_from_nerve(points: np.ndarray, iac_length_mm: float) -> Canal | None:
    """The canal from a nerve centreline ordered medial -> lateral (its last 4 mm give the axis)."""
    if points is None or len(points) < 10:
        return None
    s = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))]
    tail = points[s >= s[-1] - 4.0]
    axis = tail[-1] - tail[0]
    if np.linalg.norm(axis) < 1e-6:
        return None
    axis = axis / np.linalg.norm(axis)
    return Canal(points[-1] - axis * (iac_length_mm - 0.5), axis)


def max_diameter_mm(points: np.ndarray, voxel_axes: np.ndarray) -> float:
    """Largest extent of a voxel set (centres, RAS+ mm), voxel size included; ``voxel_axes`` = affine[:3, :3]."""
    if len(points) == 1:
        return float(np.linalg.norm(voxel_axes, axis=0).max())
    try:
        hull = points[ConvexHull(points).vertices] if len(points) > 10 else points
    except QhullError:  # a flat lesion (one slice thick): its 2D outline still bounds the diameter
        hull = points[:: max(1, len(points) // 3000)]
    d = np.linalg.norm(hull[:, None] - hull[None], axis=-1)
    i, j = np.unravel_index(np.argmax(d), d.shape)
    direction = (hull[j] - hull[i]) / max(d[i, j], 1e-9)
    return float(d[i, j] + np.abs(direction @ voxel_axes).sum())


@dataclass(frozen=True)
class MirrorPlane:
    """Mid-sagittal plane: a point and unit normal (RAS+ mm)."""

    point: np.ndarray
    normal: np.ndarray

    def reflect(self, points: np.ndarray) -> np.ndarray:
        return points - 2.0 * np.outer((points - self.point) @ self.normal, self.normal)


def mirrored_depth_mm(points: np.ndarray, brainstem_index: np.ndarray, affine: np.ndarray, plane: MirrorPlane) -> np.ndarray:
    """Depth (mm) of ``points`` inside the mirror image of the brainstem (0 outside).

    Parameters
    ----------
    points : ndarray (N, 3)
        RAS+ mm of the lesion's voxels.
    brainstem_index : ndarray (M, 3)
        Voxel indices of the brainstem on the grid of ``affine``.
    """
    if len(brainstem_index) < 4:
        return np.zeros(len(points))
    shape = brainstem_index.max(0) + 3
    mask = np.zeros(shape, bool)
    mask[tuple((brainstem_index + 1).T)] = True
    boundary = mask & ~ndimage.binary_erosion(mask)
    to_world = lambda idx: apply_affine(affine, idx - 1)
    mirrored_all = plane.reflect(to_world(np.argwhere(mask)))
    mirrored_surface = plane.reflect(to_world(np.argwhere(boundary)))
    step = float(np.linalg.norm(affine[:3, :3], axis=0).max())
    inside = cKDTree(mirrored_all).query(points, distance_upper_bound=0.75 * step)[0] < np.inf
    depth = np.zeros(len(points))
    if inside.any():
        depth[inside] = cKDTree(mirrored_surface).query(points[inside])[0]
    return depth


@dataclass(frozen=True)
class LesionMeasure:
    side: str
    volume_mm3: float
    max_diameter_mm: float
    centroid_ras_mm: list[float]
    intracanalicular_mm3: float
    cisternal_mm3: float
    axis_offset_mm: float | None  # lesion centroid to the canal axis (extended into the cistern)
    contacts_brainstem: bool
    brainstem_compression_mm: float
    touches_facial_nerve: bool
    voxels: np.ndarray  # RAS+ mm of the lesion's voxel centres


def lesion_components(lesion_mask: np.ndarray, affine: np.ndarray, min_volume_mm3: float) -> list[np.ndarray]:
    """Voxel index arrays of the 26-connected lesion components of at least ``min_volume_mm3``."""
    found = ndimage.find_objects(lesion_mask.astype(np.uint8))
    if not found:
        return []
    within = found[0]  # the lesion voxels' bounding box: labelling only there
    labelled, n = ndimage.label(lesion_mask[within], structure=np.ones((3, 3, 3)))
    voxel = abs(np.linalg.det(affine[:3, :3]))
    sizes = np.bincount(labelled.ravel())[1:]
    order = np.argsort(sizes)[::-1]
    boxes = ndimage.find_objects(labelled)
    return [np.argwhere(labelled[boxes[i]] == i + 1) + [b.start + w.start for b, w in zip(boxes[i], within)]
            for i in order if sizes[i] * voxel >= min_volume_mm3]


def measure_lesion(index: np.ndarray, affine: np.ndarray, side: str, canal: Canal | None, brainstem_index: np.ndarray,
                   facial_mm: np.ndarray, plane: MirrorPlane, config: dict) -> LesionMeasure:
    """Measures of one lesion component (voxel indices on the grid of ``affine``)."""
    voxel_axes = affine[:3, :3]
    spacing = np.linalg.norm(voxel_axes, axis=0)
    points = index @ voxel_axes.T + affine[:3, 3]
    voxel = abs(np.linalg.det(voxel_axes))
    canal_part = np.zeros(len(points), bool)
    offset = None
    if canal is not None:
        rel = points - canal.porus
        along = rel @ canal.axis
        radial = np.linalg.norm(rel - np.outer(along, canal.axis), axis=1)
        # the porus is located to within a few mm: tissue at its mouth still counts as canal
        canal_part = (along > -config["porus_tolerance_mm"]) & (radial <= config["iac_radius_mm"])
        centre = points.mean(0) - canal.porus
        offset = float(np.linalg.norm(centre - (centre @ canal.axis) * canal.axis))
    touch_mm = float(spacing.max()) * 1.01
    brainstem_mm = brainstem_index @ voxel_axes.T + affine[:3, 3]
    contacts = bool(len(brainstem_mm)) and bool(np.any(cKDTree(brainstem_mm).query(points, distance_upper_bound=touch_mm)[0] <= touch_mm))
    compression = float(mirrored_depth_mm(points, brainstem_index, affine, plane).max()) if contacts else 0.0
    touches = bool(len(facial_mm)) and bool(np.any(cKDTree(facial_mm).query(points, distance_upper_bound=touch_mm)[0] <= touch_mm))
    return LesionMeasure(
        side=side, volume_mm3=float(len(points) * voxel), max_diameter_mm=max_diameter_mm(points, voxel_axes),
        centroid_ras_mm=[float(v) for v in points.mean(0)], intracanalicular_mm3=float(canal_part.sum() * voxel),
        cisternal_mm3=float((~canal_part).sum() * voxel), axis_offset_mm=offset, contacts_brainstem=contacts, brainstem_compression_mm=compression,
        touches_facial_nerve=touches, voxels=points,
    )


def koos_grade(m: LesionMeasure, config: dict) -> int:
    """Koos grade I-IV from the lesion's canal/cistern parts and brainstem relation."""
    if m.cisternal_mm3 < config["cpa_extension_min_mm3"] and m.intracanalicular_mm3 > 0:
        return 1
    if not m.contacts_brainstem:
        return 2
    return 4 if m.brainstem_compression_mm >= config["lesion_brainstem_compression_mm"] else 3


@dataclass(frozen=True)
class LesionSignal:
    """A lesion's median T2 signal relative to the CSF around it and to the brainstem (None: not measurable)."""

    csf_ratio: float | None
    brainstem_ratio: float | None


SIGNAL_SHELL_MM = (1.0, 8.0)  # the CSF level comes from unlabelled voxels this far from the lesion


def lesion_signal(image: np.ndarray, labels: np.ndarray, index: np.ndarray, spacing_mm: np.ndarray,
                  brainstem_level: float | None) -> LesionSignal:
    """Median signal of a lesion's core (voxel indices ``index``) against the CSF around it and the brainstem's level.

    The CSF level is the median of the bright unlabelled voxels 1-8 mm from the lesion (those above 0.6 of that
    shell's 95th percentile: CSF, not the bone of the canal or the cerebellum beside it). Measured there, not as a
    high percentile of the whole image, it is not lifted by noise or lowered by a bias field, which put
    epidermoids (about 0.8 of CSF) under a fixed CSF-like threshold on noisy scans. (``cleft.local_csf_level``, a
    high percentile within 4 mm of a point, suits a contact between thin structures, not a mass 5-30 mm across
    inside the bony canal, where such a cube holds little CSF.)

    Parameters
    ----------
    image, labels : ndarray
        The T2 image and the label map on one grid.
    index : ndarray (n, 3)
        The lesion's voxel indices.
    spacing_mm : ndarray (3,)
        Voxel size along the array axes (mm).
    brainstem_level : float or None
        Median signal of the brainstem label.
    """
    margin = np.ceil(SIGNAL_SHELL_MM[1] / spacing_mm).astype(int) + 1
    lower, upper = np.maximum(index.min(0) - margin, 0), np.minimum(index.max(0) + margin + 1, labels.shape)
    box = tuple(slice(a, b) for a, b in zip(lower, upper))
    inside = np.zeros(upper - lower, bool)
    inside[tuple((index - lower).T)] = True
    distance = ndimage.distance_transform_edt(~inside, sampling=spacing_mm)
    shell = image[box][(distance > SIGNAL_SHELL_MM[0]) & (distance <= SIGNAL_SHELL_MM[1]) & (labels[box] == 0)]
    # the lesion's core, a voxel and more inside its edge: a cyst's wall and the partial volume of its rim left out
    core = ndimage.distance_transform_edt(inside, sampling=spacing_mm)[tuple((index - lower).T)] > spacing_mm.max()
    median = float(np.median(image[tuple(index[core].T)] if core.sum() >= 20 else image[tuple(index.T)]))
    csf_level = float(np.median(shell[shell > 0.6 * np.percentile(shell, 95)])) if len(shell) >= 20 and shell.max() > 0 else 0.0
    csf_ratio = median / csf_level if csf_level > 0 else None
    brainstem_ratio = median / brainstem_level if brainstem_level else None
    return LesionSignal(csf_ratio, brainstem_ratio)


def type_guess(m: LesionMeasure, signal: LesionSignal | None, nerve_ends_in_lesion: bool, config: dict) -> tuple[str, str]:
    """A lesion type guess and its basis.

    On heavily T2-weighted images an arachnoid cyst has the signal of CSF and an epidermoid a little less
    (``config['lesion_csf_like_min_ratio']``, ``config['arachnoid_cyst_min_ratio']``, against the CSF around the
    lesion). A solid lesion mostly within the internal auditory canal is a vestibular schwannoma. Otherwise a
    solid lesion with a canal part is told by its signal where the image gives it: schwannomas are brighter than
    the brainstem, meningiomas about as bright or darker (``config['schwannoma_min_brainstem_ratio']``); without
    the image, by being centred on the canal's axis or holding the end of the facial nerve's traced course
    (``nerve_ends_in_lesion``: a schwannoma growing along the nerve into the canal hides it, and the labels stop
    there). A solid lesion outside the canal is a meningioma.
    """
    canal = m.intracanalicular_mm3 > 1.0
    csf_ratio = signal.csf_ratio if signal is not None else None
    brainstem_ratio = signal.brainstem_ratio if signal is not None else None
    if csf_ratio is not None and csf_ratio >= config["lesion_csf_like_min_ratio"]:
        if csf_ratio >= config["arachnoid_cyst_min_ratio"]:
            return "arachnoid_cyst", f"signal of CSF ({csf_ratio:.2f} of the CSF around it)"
        return "epidermoid", f"signal near CSF's, below it ({csf_ratio:.2f} of the CSF around it)"
    if canal and m.intracanalicular_mm3 >= 0.5 * m.volume_mm3:
        return "vestibular_schwannoma", "solid lesion mostly within the internal auditory canal"
    cue = None
    if canal and m.axis_offset_mm is not None and m.axis_offset_mm <= 0.32 * m.max_diameter_mm:
        cue = f"centred on the canal's axis (offset {m.axis_offset_mm:.1f} mm)"
    elif canal and nerve_ends_in_lesion:
        cue = "holding the end of the facial nerve's traced course"
    if canal and brainstem_ratio is not None:
        basis = f"solid lesion with a canal part{', ' + cue if cue else ''}, T2 signal {brainstem_ratio:.2f} x the brainstem's"
        if brainstem_ratio >= config["schwannoma_min_brainstem_ratio"]:
            return "vestibular_schwannoma", basis + " (schwannomas are brighter than the brainstem)"
        return "meningioma", basis + " (meningiomas are about as bright or darker)"
    if cue:
        return "vestibular_schwannoma", f"solid lesion in the internal auditory canal, {cue}"
    if signal is None and m.axis_offset_mm is None:
        return "unknown", "no image and no canal to judge by"
    where = "eccentric to the canal" if canal else "outside the internal auditory canal"
    return "meningioma", f"solid lesion {where} (broad-based, offset {m.axis_offset_mm or 0:.1f} mm from the canal axis)"
