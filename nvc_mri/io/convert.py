"""Images from memory as :class:`Volume`: nibabel images, SimpleITK images, NumPy arrays with an affine."""

from __future__ import annotations

from typing import Any

import numpy as np

from nvc_mri.errors import InputError
from nvc_mri.io.geometry import check_spacing, check_voxels, nifti_affine_in_mm
from nvc_mri.io.sequence import classify_intensities
from nvc_mri.io.volume import Volume, VolumeMeta, lps_to_ras


def _volume(array: np.ndarray, affine: np.ndarray, source: str) -> Volume:
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 4 and array.shape[3] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise InputError(source, f"expected a 3D image, got shape {array.shape}")
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4) or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise InputError(source, "affine must be a 4x4 voxel -> RAS+ mm matrix with non-zero voxel size")
    check_spacing(source, tuple(np.linalg.norm(affine[:3, :3], axis=0)))
    check_voxels(source, array)
    guess = classify_intensities(array)
    warnings = [] if guess.is_heavily_t2_3d and guess.confidence >= 0.6 else [
        "image from memory has no sequence header; judged from intensities, it may not be heavily T2-weighted"]
    meta = VolumeMeta(source=source, format="nifti", sequence=guess, warnings=warnings)
    return Volume(array=array, affine=affine, meta=meta)


def as_volume(source: Any, affine: np.ndarray | None = None) -> Volume:
    """A :class:`Volume` from a nibabel image, a SimpleITK image or a NumPy array with its affine.

    Parameters
    ----------
    source : nibabel image, SimpleITK.Image, ndarray or Volume
    affine : ndarray (4, 4), optional
        Voxel index -> **RAS+ mm**, required with a NumPy array (as in nibabel).

    Notes
    -----
    SimpleITK geometry is LPS (DICOM convention) and its arrays are ordered (z, y, x); both are
    converted, so the voxels and the RAS+ affine describe the same physical image.
    """
    if isinstance(source, Volume):
        return source
    if hasattr(source, "affine") and hasattr(source, "dataobj"):  # nibabel
        affine, unit_warnings = nifti_affine_in_mm(source.affine, source.header)
        volume = _volume(np.asanyarray(source.dataobj), affine, "nibabel image")
        volume.meta.warnings += unit_warnings
        return volume
    if type(source).__module__.startswith("SimpleITK"):
        import SimpleITK as sitk

        if source.GetDimension() != 3:
            raise InputError("SimpleITK image", f"expected a 3D image, got {source.GetDimension()}D")
        array = np.transpose(sitk.GetArrayFromImage(source), (2, 1, 0))  # (z, y, x) -> (i, j, k)
        direction = np.asarray(source.GetDirection(), float).reshape(3, 3)
        affine_lps = np.eye(4)
        affine_lps[:3, :3] = direction @ np.diag(source.GetSpacing())
        affine_lps[:3, 3] = source.GetOrigin()
        return _volume(array, lps_to_ras(affine_lps), "SimpleITK image")
    if isinstance(source, np.ndarray):
        if affine is None:
            raise InputError("array", "a NumPy array needs its affine (voxel -> RAS+ mm)")
        return _volume(source, affine, "array")
    raise InputError(type(source).__name__, "expected a path, nibabel image, SimpleITK image or NumPy array with affine")
