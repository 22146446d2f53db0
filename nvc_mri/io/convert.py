"""Voxels and geometry as a :class:`Volume`: nibabel images, SimpleITK images, NumPy arrays with an affine,
and the checks every source that has no DICOM header goes through."""

from __future__ import annotations

from typing import Any

import numpy as np

from nvc_mri.errors import InputError
from nvc_mri.io.geometry import check_spacing, check_voxels, nifti_affine_in_mm
from nvc_mri.io.sequence import SequenceGuess, classify_intensities
from nvc_mri.io.volume import Volume, VolumeMeta, lps_to_ras


def as_intensities(source: str, array: np.ndarray) -> np.ndarray:
    """float32 voxels; complex data become their magnitude, colour data are refused, trailing axes of
    length 1 (x, y, z, 1, 1) are dropped."""
    if array.dtype.names is not None:  # nibabel's RGB24/RGBA32
        raise InputError(source, "colour (RGB) image, not MR intensities")
    if np.iscomplexobj(array):
        array = np.abs(array)
    while array.ndim > 3 and array.shape[-1] == 1:
        array = array[..., 0]
    return array.astype(np.float32, copy=False)


def judged_from_intensities(array: np.ndarray, what: str) -> tuple[SequenceGuess, list[str]]:
    """The sequence of an image that carries no sequence header (``what``: "NIfTI", "NRRD", ...), judged from
    its intensities (CSF brighter than brain), and a warning when the image does not clearly look heavily
    T2-weighted or is a label map."""
    guess = classify_intensities(array)
    if guess.family == "label_map":
        return guess, [guess.reasons[0]]
    if guess.is_heavily_t2_3d and guess.confidence >= 0.6:
        return guess, []
    return guess, [
        f"{what} has no sequence header; judged from intensities, "
        + ("CSF does not look clearly brighter than brain: this may not be a heavily T2-weighted image"
           if not guess.is_heavily_t2_3d else "it looks heavily T2-weighted, but the guess is weak")]


def volume_from_array(array: np.ndarray, affine: np.ndarray, source: str, fmt: str, what: str,
                      warnings: list[str] | None = None) -> Volume:
    """A :class:`Volume` from voxels in index order (i, j, k) and their voxel -> **RAS+ mm** affine, checked
    (3D, voxel size, finite voxels) and with the sequence judged from the image.

    Parameters
    ----------
    source : str
        The file, or a word for an object in memory, named in errors.
    fmt : str
        ``VolumeMeta.format`` ("nifti", "nrrd", "metaimage", "mgh").
    what : str
        How warnings name the source ("NIfTI", "NRRD", "image from memory").
    warnings : list of str, optional
        Warnings found while reading (orientation, units), kept before the sequence warning.
    """
    array = as_intensities(source, np.asanyarray(array))
    if array.ndim != 3:
        raise InputError(source, f"expected a 3D image, got shape {array.shape}")
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise InputError(source, "affine must be a finite 4x4 voxel -> RAS+ mm matrix with non-zero voxel size")
    check_spacing(source, tuple(np.linalg.norm(affine[:3, :3], axis=0)))
    check_voxels(source, array)
    guess, sequence_warnings = judged_from_intensities(array, what)
    meta = VolumeMeta(source=source, format=fmt, sequence=guess, warnings=list(warnings or []) + sequence_warnings)
    return Volume(array=array, affine=affine, meta=meta)


def sitk_voxels_and_affine(image: Any, source: str) -> tuple[np.ndarray, np.ndarray]:
    """A 3D SimpleITK image's voxels in index order (i, j, k) and its voxel -> RAS+ mm affine.

    SimpleITK geometry is LPS (DICOM convention) and its arrays are ordered (z, y, x); both are converted, so
    the voxels and the affine describe the same physical image. A 4D image of one volume is taken as 3D.
    """
    import SimpleITK as sitk

    if image.GetDimension() == 4 and image.GetSize()[3] == 1:
        image = image[:, :, :, 0]
    if image.GetDimension() != 3:
        raise InputError(source, f"expected a 3D image, got {image.GetDimension()}D (size {image.GetSize()})")
    if image.GetNumberOfComponentsPerPixel() > 1 and not image.GetPixelIDTypeAsString().startswith("complex"):
        raise InputError(source, f"{image.GetNumberOfComponentsPerPixel()} values per voxel (a vector or colour "
                                 "image), not MR intensities")
    array = np.transpose(sitk.GetArrayFromImage(image), (2, 1, 0))  # (z, y, x) -> (i, j, k)
    affine_lps = np.eye(4)
    affine_lps[:3, :3] = np.asarray(image.GetDirection(), float).reshape(3, 3) @ np.diag(image.GetSpacing())
    affine_lps[:3, 3] = image.GetOrigin()
    return array, lps_to_ras(affine_lps)


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
    what = "image from memory"
    if isinstance(source, Volume):
        return source
    if hasattr(source, "affine") and hasattr(source, "dataobj"):  # nibabel
        affine, unit_warnings = nifti_affine_in_mm(source.affine, source.header)
        return volume_from_array(source.dataobj, affine, "nibabel image", "nifti", what, unit_warnings)
    if type(source).__module__.startswith("SimpleITK"):
        array, affine = sitk_voxels_and_affine(source, "SimpleITK image")
        return volume_from_array(array, affine, "SimpleITK image", "nifti", what)
    if isinstance(source, np.ndarray):
        if affine is None:
            raise InputError("array", "a NumPy array needs its affine (voxel -> RAS+ mm)")
        return volume_from_array(source, affine, "array", "nifti", what)
    raise InputError(type(source).__name__, "expected a path, nibabel image, SimpleITK image or NumPy array with affine")
