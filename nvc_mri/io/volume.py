"""The ``Volume``: voxels that always travel with their geometry.

Conventions
-----------
* ``array`` is indexed ``[i, j, k]``. For DICOM input ``i`` is the column index
  (along a row), ``j`` the row index and ``k`` the slice index, as in NIfTI.
* ``affine`` maps voxel indices ``(i, j, k, 1)`` to **RAS+ world millimetres**, the
  NIfTI/nibabel convention: coordinates grow towards the patient's Right, Anterior
  and Superior. DICOM patient space is LPS+ (towards Left, Posterior, Superior);
  the two differ by the sign of x and y (see :func:`lps_to_ras`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import nibabel as nib
import numpy as np
from nibabel.affines import apply_affine
from nibabel.orientations import apply_orientation, inv_ornt_aff, io_orientation, ornt_transform
from pydantic import BaseModel, Field

from nvc_mri.io.sequence import SequenceGuess

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def lps_to_ras(affine_lps: np.ndarray) -> np.ndarray:
    """Convert a voxel->LPS affine (DICOM) into a voxel->RAS affine (NIfTI)."""
    return LPS_TO_RAS @ affine_lps


def volume_centre_mm(shape: tuple[int, int, int], affine: np.ndarray) -> np.ndarray:
    """World mm (in ``affine``'s convention, RAS+ here) of the centre of a volume of ``shape`` voxels."""
    return apply_affine(affine, (np.asarray(shape) - 1) / 2.0)


class VolumeMeta(BaseModel):
    """What a volume is and where it came from. Holds no patient identifiers."""

    source: str = Field(description="the path given to load_volume")
    format: str = Field(description="'nifti', 'nrrd', 'metaimage', 'mgh', 'dicom' (classic single-frame) or "
                                    "'dicom-enhanced' (multi-frame)")
    modality: str | None = "MR"
    sequence: SequenceGuess
    series_instance_uid: str | None = None
    study_instance_uid: str | None = None
    frame_of_reference_uid: str | None = None
    series_number: int | None = None
    series_description: str | None = None
    series_part: str | None = Field(None, description="which part of a series holding several was loaded, e.g. 'echo 2 (TE 90 ms)'")
    manufacturer: str | None = None
    source_files: list[str] = Field(default_factory=list)
    selection_reason: str | None = Field(None, description="why this series was chosen among the series found")
    warnings: list[str] = Field(default_factory=list)
    header: dict[str, Any] = Field(default_factory=dict, description="sequence-relevant header values (no PHI)")

    @property
    def is_heavily_t2_3d(self) -> bool:
        return self.sequence.is_heavily_t2_3d


@dataclass(frozen=True)
class Volume:
    """A 3D image with its voxel->RAS+ mm affine and metadata.

    Attributes
    ----------
    array : ndarray, float32, shape (I, J, K)
        Voxel intensities.
    affine : ndarray, shape (4, 4)
        Voxel index -> RAS+ world coordinates in millimetres.
    meta : VolumeMeta
        Source, series, sequence guess and warnings.
    headers : tuple of pydicom Dataset
        DICOM input only: the source instances' headers without pixel data (classic: one per
        slice, in slice order ``k``; enhanced: the one multi-frame header). Derived DICOM
        objects (SEG, SR, key images) reference them; they hold patient data, never log them.
    """

    array: np.ndarray
    affine: np.ndarray
    meta: VolumeMeta = field(compare=False)
    headers: tuple = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.array.ndim != 3:
            raise ValueError(f"Volume needs a 3D array, got shape {self.array.shape}")
        if self.affine.shape != (4, 4):
            raise ValueError("affine must be 4x4")

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.array.shape)  # type: ignore[return-value]

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size along i, j, k in millimetres."""
        return tuple(float(s) for s in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]

    @property
    def orientation(self) -> str:
        """Three-letter code of the direction each array axis points to, e.g. ``'LPS'``."""
        return "".join(nib.aff2axcodes(self.affine))

    def with_array(self, array: np.ndarray) -> "Volume":
        """A volume on the same grid with other voxels (for example a label map)."""
        if array.shape != self.array.shape:
            raise ValueError(f"shape {array.shape} does not match the grid {self.array.shape}")
        return replace(self, array=array)

    def as_canonical(self) -> "Volume":
        """The same voxels viewed in RAS+ axis order (axes permuted/flipped, never resampled).

        For an oblique acquisition the axes are the closest to R, A and S.
        """
        ornt = io_orientation(self.affine)
        if np.array_equal(ornt, [[0, 1], [1, 1], [2, 1]]):
            return self
        array = apply_orientation(self.array, ornt)
        affine = self.affine @ inv_ornt_aff(ornt, self.array.shape)
        return replace(self, array=array, affine=affine)

    def reorient_like(self, array: np.ndarray, reference: "Volume") -> np.ndarray:
        """Bring an array on this volume's axis order onto ``reference``'s axis order.

        Used to put labels computed on the canonical view back on the input grid.
        """
        transform = ornt_transform(io_orientation(self.affine), io_orientation(reference.affine))
        return apply_orientation(array, transform)

    def world_corners(self) -> np.ndarray:
        """RAS+ mm coordinates of the 8 corner voxel centres, shape (8, 3)."""
        n = np.array(self.shape) - 1
        idx = np.array([[a, b, c] for a in (0, n[0]) for b in (0, n[1]) for c in (0, n[2])], dtype=float)
        return apply_affine(self.affine, idx)

    def to_nifti(self, dtype: Any = np.float32) -> nib.Nifti1Image:
        """A NIfTI image with this geometry (sform and qform set, code 'scanner')."""
        img = nib.Nifti1Image(np.asarray(self.array, dtype=dtype), self.affine)
        img.set_sform(self.affine, code=1)
        img.set_qform(self.affine, code=1)
        img.header.set_xyzt_units("mm", "sec")
        return img
