"""Write phantom cases to disk: NIfTI or a DICOM series, labels and truth.json."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from nvc_mri.atomic import atomic_dir
from nvc_mri.io.dicom_write import write_dicom_series
from nvc_mri.phantom.generate import PhantomCase


def write_case(case: PhantomCase, folder: str | Path, fmt: str = "nifti") -> Path:
    """Write one case into ``folder`` (created or replaced atomically).

    Files: ``image.nii.gz`` (int16) or ``dicom/`` (a CISS- or FIESTA-like MR series of patient
    ``PHANTOM^<seed>``), ``labels.nii.gz`` (uint8) and ``truth.json`` (RAS+ mm).
    """
    folder = Path(folder)
    seed = case.truth.seed
    with atomic_dir(folder) as tmp:
        if fmt == "nifti":
            img = nib.Nifti1Image(np.clip(np.round(case.image.array), -32768, 32767).astype(np.int16), case.image.affine)
            img.set_sform(case.image.affine, code=1)
            img.set_qform(case.image.affine, code=1)
            img.header.set_xyzt_units("mm")
            nib.save(img, tmp / "image.nii.gz")
        elif fmt == "dicom":
            preset = "FIESTA" if case.image.meta.sequence.name == "FIESTA" else "CISS"
            write_dicom_series(case.image, tmp / "dicom", preset=preset, patient_name=f"PHANTOM^{seed}",
                               patient_id=f"PHANTOM{seed}", series_number=3)
        else:
            raise ValueError(f"unknown format {fmt!r} (nifti or dicom)")
        lab = nib.Nifti1Image(case.labels.array.astype(np.uint8), case.labels.affine)
        lab.set_sform(case.labels.affine, code=1)
        lab.set_qform(case.labels.affine, code=1)
        nib.save(lab, tmp / "labels.nii.gz")
        (tmp / "truth.json").write_text(case.truth.model_dump_json(indent=2))
    return folder
