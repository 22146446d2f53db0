"""Is there CSF between an artery and a nerve? The image's own answer, below the labels' resolution.

A label map places a surface only to within half a voxel, so a vessel touching a nerve and one
0.2-0.4 mm away can give the same labels. The T2 image still tells them apart the way a
radiologist does: a CSF cleft between two dark structures brightens the voxels between them
(partial volume), touching structures leave them dark.

:func:`csf_cleft_fraction` samples the image on short lines from the nerve's surface to the
artery's surface (both from the tube models of :mod:`nvc_mri.measure.contact`) along the stretch of
nerve facing the artery. At each place along the nerve a small fan of lines turned round the nerve's
axis is sampled and the darkest of them kept (its brightest point): a touching artery leaves one dark
bridge, which a tube model turned a little from where the artery is would miss, while a cleft
brightens every line across it. The median over the places, scaled to the local intensity levels,
is the answer: 0 = as dark as the two axes, 1 = as bright as the surrounding CSF.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import map_coordinates

from nvc_mri.labels import Label
from nvc_mri.measure.contact import Approach
from nvc_mri.measure.fields import box_around
from nvc_mri.measure.nerve import NerveCourse

LINE_OFFSETS_MM = np.arange(-0.4, 0.41, 0.2)  # lines along the nerve around the closest approach
LEVELS_RADIUS_MM = 4.0                         # the local CSF level comes from this neighbourhood
CSF_PERCENTILE = 90.0                          # of the unlabelled (CSF) voxels nearby
FAN_DEG = (-20.0, 0.0, 20.0)                   # lines turned round the nerve's axis from the one facing the artery


def local_csf_level(image: np.ndarray, labels: np.ndarray, affine: np.ndarray, centre_mm: np.ndarray) -> float | None:
    """CSF intensity around ``centre_mm``: a high percentile of the unlabelled voxels nearby (None when too few)."""
    corners = centre_mm + LEVELS_RADIUS_MM * (2 * np.array(list(np.ndindex(2, 2, 2))) - 1)  # a cube around the centre
    inverse = np.linalg.inv(affine)
    box = box_around(corners @ inverse[:3, :3].T + inverse[:3, 3], 0, labels.shape)
    csf = image[box][labels[box] == Label.BACKGROUND]
    return float(np.percentile(csf, CSF_PERCENTILE)) if len(csf) >= 10 else None


def csf_cleft_fraction(image: np.ndarray, labels: np.ndarray, affine: np.ndarray, course: NerveCourse,
                       approach: Approach, nerve_label: int = Label.FACIAL_NERVE) -> float | None:
    """CSF signal between the artery and the nerve at their closest approach, as a fraction of the local CSF level.

    Parameters
    ----------
    image, labels : ndarray
        The T2 image and its label map on the acquisition grid.
    affine : ndarray (4, 4)
        Voxel -> RAS+ mm of both.
    course, approach
        The nerve's centreline and radius; the artery's tube model at the closest approach.
    nerve_label : int
        The nerve's label value. A turned line that crosses the labels of another structure (the brainstem,
        whose signal lies between the nerves' and CSF's; the other nerve of the bundle; a lesion) is not looking
        at the cleft between these two and is left out; the line facing the artery's model always counts.

    Returns
    -------
    float or None
        About 0 when nothing bright separates the two (touching), rising towards 1 as the cleft widens
        to a voxel or more. None without an artery tube model or when the local levels are unclear.
    """
    if approach.artery is None:
        return None
    bright = local_csf_level(image, labels, affine, approach.nerve_point_mm)
    if bright is None:
        return None
    inverse = np.linalg.inv(affine)

    def sample(volume: np.ndarray, points: np.ndarray, order: int = 1) -> np.ndarray:
        return map_coordinates(volume, (points @ inverse[:3, :3].T + inverse[:3, 3]).T, order=order, mode="nearest")

    t = np.linspace(-0.1, 1.1, 13)  # 0 nerve surface, 1 artery surface (a little beyond both)
    angles = np.radians(FAN_DEG)
    peaks, axes = [], []
    for shift in LINE_OFFSETS_MM:
        axis = course.point_at(approach.arc_mm + shift)
        foot = approach.artery.foot(axis)[0][0]
        distance = float(np.linalg.norm(foot - axis))
        side = np.cross(course.tangent_at(approach.arc_mm + shift), foot - axis)
        if distance < 1e-6 or np.linalg.norm(side) < 1e-6:
            continue
        towards = (foot - axis) / distance
        side /= np.linalg.norm(side)
        out = np.outer(np.cos(angles), towards) + np.outer(np.sin(angles), side)  # (fan, 3) unit, nerve -> artery
        depth = course.radius_mm + t * (distance - approach.artery.radius_mm - course.radius_mm)
        lines = (axis + out[:, None, :] * depth[None, :, None]).reshape(-1, 3)
        line_peaks = sample(image, lines).reshape(len(angles), -1).max(1)
        between = sample(labels, lines, order=0).reshape(len(angles), -1)[:, 1:-1]
        clear = np.isin(between, (Label.BACKGROUND, Label.ARTERY, nerve_label)).all(1)
        clear[np.argmin(np.abs(angles))] = True  # the line facing the artery's model always counts
        peaks.append(float(line_peaks[clear].min()))  # the darkest line's peak; a line across another structure says nothing
        axes.append(float(sample(image, np.vstack([foot, axis])).mean()))
    if not peaks:
        return None
    dark = float(np.median(axes))
    return float((np.median(peaks) - dark) / (bright - dark)) if bright > dark else None
