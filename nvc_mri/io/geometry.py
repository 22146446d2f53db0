"""Slice-stack geometry from DICOM positions: sort, spacing, gaps, tilt, affine.

All coordinates here are DICOM patient space, **LPS+ millimetres**; the caller converts
the final affine to RAS+.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nvc_mri.config import load_config
from nvc_mri.errors import InputError


@dataclass(frozen=True)
class StackGeometry:
    """Geometry of a sorted slice stack.

    Attributes
    ----------
    order : ndarray of int
        Indices that sort the input slices along the slice normal.
    affine_lps : ndarray, shape (4, 4)
        Voxel (column i, row j, slice k) -> LPS+ mm.
    slice_spacing_mm : float
        Distance between slice centres measured from positions (not SliceThickness).
    warnings : list of str
        Gantry tilt and similar findings that do not stop loading.
    """

    order: np.ndarray
    affine_lps: np.ndarray
    slice_spacing_mm: float
    warnings: list[str]


def stack_geometry(
    path: str,
    positions: np.ndarray,
    orientation: np.ndarray,
    pixel_spacing: tuple[float, float],
) -> StackGeometry:
    """Sort slices along their normal and derive the voxel->LPS affine.

    Parameters
    ----------
    path : str
        Folder or file named in error messages.
    positions : ndarray, shape (N, 3)
        ImagePositionPatient of each slice (LPS mm, centre of the first voxel).
    orientation : ndarray, shape (6,)
        ImageOrientationPatient: row direction cosine then column direction cosine.
    pixel_spacing : (float, float)
        PixelSpacing: (distance between rows, distance between columns) in mm.

    Raises
    ------
    InputError
        Fewer than the minimal number of slices, duplicate positions, missing slices or
        uneven spacing.
    """
    cfg = load_config("io.yaml")
    positions = np.asarray(positions, dtype=np.float64)
    n = len(positions)
    if n < cfg["min_slices"]:
        raise InputError(path, f"only {n} slice(s): a 2D image, not a 3D volume")
    row = np.asarray(orientation[:3], dtype=np.float64)
    col = np.asarray(orientation[3:6], dtype=np.float64)
    row /= np.linalg.norm(row)
    col /= np.linalg.norm(col)
    if abs(row @ col) > 1e-3:
        raise InputError(path, "ImageOrientationPatient row and column directions are not perpendicular")
    normal = np.cross(row, col)
    depth = positions @ normal
    order = np.argsort(depth, kind="stable")
    depth = depth[order]
    gaps = np.diff(depth)
    if np.any(gaps < 1e-4):
        raise InputError(path, "several slices share one position: mixed series or repeated acquisitions")
    spacing = float(np.median(gaps))
    tolerance = max(cfg["slice_spacing_tolerance_mm"], cfg["slice_spacing_tolerance_rel"] * spacing)
    deviation = float(np.max(np.abs(gaps - spacing)))
    if deviation > tolerance:
        missing = np.round(gaps / spacing) - 1
        if np.all(np.abs(gaps - (missing + 1) * spacing) <= tolerance) and missing.sum() > 0:
            raise InputError(
                path, f"{int(missing.sum())} missing slice(s) in the stack (gap of {gaps.max():.3f} mm, spacing {spacing:.3f} mm)"
            )
        raise InputError(
            path, f"inconsistent slice spacing: {gaps.min():.3f} to {gaps.max():.3f} mm (deviation {deviation:.3f} mm)"
        )
    sorted_pos = positions[order]
    step = (sorted_pos[-1] - sorted_pos[0]) / (n - 1)
    warnings: list[str] = []
    tilt = float(np.degrees(np.arccos(np.clip(abs(step @ normal) / np.linalg.norm(step), -1.0, 1.0))))
    if tilt > cfg["gantry_tilt_warn_deg"]:
        warnings.append(
            f"slice stack is sheared by {tilt:.2f} deg (gantry tilt); the affine keeps the shear, nothing was resampled"
        )
    affine = np.eye(4)
    affine[:3, 0] = row * float(pixel_spacing[1])
    affine[:3, 1] = col * float(pixel_spacing[0])
    affine[:3, 2] = step
    affine[:3, 3] = sorted_pos[0]
    return StackGeometry(order=order, affine_lps=affine, slice_spacing_mm=spacing, warnings=warnings)


def check_spacing(path: str, spacing: tuple[float, ...]) -> None:
    """Refuse zero, negative or absurd voxel sizes (mm)."""
    cfg = load_config("io.yaml")
    for axis, s in zip("ijk", spacing):
        if not np.isfinite(s) or s < cfg["min_spacing_mm"] or s > cfg["max_spacing_mm"]:
            raise InputError(
                path,
                f"absurd voxel spacing {s:g} mm along {axis} "
                f"(expected {cfg['min_spacing_mm']}-{cfg['max_spacing_mm']} mm)",
            )


def check_voxels(path: str, array: np.ndarray) -> None:
    """Refuse volumes with NaN/Inf voxels, too few slices or no contrast at all."""
    cfg = load_config("io.yaml")
    if array.ndim != 3 or min(array.shape) < 1:
        raise InputError(path, f"expected a 3D image, got shape {array.shape}")
    if sorted(array.shape)[0] < cfg["min_slices"]:
        raise InputError(path, f"image of shape {array.shape} is 2D (a single slice), not a 3D volume")
    bad = int(array.size - np.count_nonzero(np.isfinite(array)))
    if bad:
        raise InputError(path, f"{bad} voxel(s) are NaN or infinite")
    if float(array.max()) == float(array.min()):
        raise InputError(path, "image is constant (no signal)")


MM_PER_UNIT = {"meter": 1000.0, "mm": 1.0, "micron": 0.001}


def nifti_affine_in_mm(affine: np.ndarray, header) -> tuple[np.ndarray, list[str]]:
    """The affine in mm: a NIfTI may declare its spatial unit metres or microns (``xyzt_units``), which nibabel
    leaves as they are; unknown (0) is taken as mm, as every tool does. Returns the affine and a warning if scaled."""
    affine = np.asarray(affine, dtype=np.float64).copy()
    unit = header.get_xyzt_units()[0] if hasattr(header, "get_xyzt_units") else "unknown"
    scale = MM_PER_UNIT.get(unit, 1.0)
    if scale == 1.0:
        return affine, []
    affine[:3] *= scale
    return affine, [f"NIfTI spatial unit is {unit}s (xyzt_units): voxel sizes and positions were converted to mm"]
