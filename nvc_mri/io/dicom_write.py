"""Write a ``Volume`` as a classic single-frame MR DICOM series (used by the phantom and tests)."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID, generate_uid

from nvc_mri.io.dicom_headers import MR_IMAGE
from nvc_mri.io.volume import LPS_TO_RAS, Volume

# Header values of the two families the phantom imitates.
SEQUENCE_PRESETS = {
    "CISS": dict(Manufacturer="SIEMENS", ManufacturerModelName="Phantom Skyra", SequenceName="*ci3d1",
                 SeriesDescription="t2_ciss3d_tra_iso", ScanningSequence="GR", SequenceVariant=["SK", "SS"],
                 ScanOptions="", RepetitionTime=5.6, EchoTime=2.5, FlipAngle=50.0),
    "FIESTA": dict(Manufacturer="GE MEDICAL SYSTEMS", ManufacturerModelName="Phantom Discovery", SequenceName="fiesta3d",
                   SeriesDescription="AX 3D FIESTA-C IAC", ScanningSequence="GR", SequenceVariant=["SS"],
                   ScanOptions="FC", RepetitionTime=5.2, EchoTime=2.4, FlipAngle=55.0),
}


def write_dicom_series(
    volume: Volume,
    folder: str | Path,
    *,
    preset: str = "CISS",
    patient_name: str = "PHANTOM^1",
    patient_id: str = "PHANTOM1",
    study_uid: str | None = None,
    series_uid: str | None = None,
    series_number: int = 1,
    overrides: dict | None = None,
    transfer_syntax: str | None = None,
) -> list[Path]:
    """Write ``volume`` as one DICOM file per slice (MR Image Storage).

    Intensities are stored as unsigned 16-bit integers with RescaleSlope/Intercept
    chosen so that the float values round-trip to within slope/2.

    Parameters
    ----------
    volume : Volume
        Voxels and RAS+ affine; slices are taken along the third array axis.
    folder : path
        Created if needed; files are named ``IM00001.dcm`` ...
    preset : {"CISS", "FIESTA"}
        Vendor-like header values (SequenceName, SeriesDescription, timing).
    overrides : dict, optional
        Extra or replacement header attributes (keyword -> value).
    transfer_syntax : str, optional
        Compress with this transfer syntax UID (e.g. RLE Lossless); uncompressed by default.

    Returns
    -------
    list of Path
        The files written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    frame_uid = generate_uid()
    affine_lps = LPS_TO_RAS @ volume.affine
    spacing = np.linalg.norm(affine_lps[:3, :3], axis=0)
    row_dir = affine_lps[:3, 0] / spacing[0]
    col_dir = affine_lps[:3, 1] / spacing[1]
    data = np.asarray(volume.array, dtype=np.float64)
    lo, hi = float(data.min()), float(data.max())
    slope = max((hi - lo) / 4095.0, 1e-6)
    now = _dt.datetime(2026, 1, 1, 12, 0, 0)
    header = dict(SEQUENCE_PRESETS[preset])
    header.update(overrides or {})
    paths = []
    for k in range(volume.shape[2]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MR_IMAGE
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID = MR_IMAGE
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = ds.AcquisitionDate = now.strftime("%Y%m%d")
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = ds.AcquisitionTime = now.strftime("%H%M%S")
        ds.Modality = "MR"
        ds.PatientName = patient_name
        ds.PatientID = patient_id
        ds.PatientBirthDate = ""
        ds.PatientSex = "O"
        ds.ReferringPhysicianName = ""
        ds.AccessionNumber = ""
        ds.StudyID = "1"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = series_number
        ds.InstanceNumber = k + 1
        ds.AcquisitionNumber = 1
        ds.FrameOfReferenceUID = frame_uid
        ds.PositionReferenceIndicator = ""
        ds.BodyPartExamined = "HEAD"
        ds.PatientPosition = "HFS"
        ds.MRAcquisitionType = "3D"
        ds.MagneticFieldStrength = 3.0
        ds.EchoTrainLength = 1
        ds.ImagingFrequency = 123.2
        ds.ImagedNucleus = "1H"
        ds.ProtocolName = header["SeriesDescription"]
        for key, value in header.items():
            setattr(ds, key, value)
        ds.PixelSpacing = [float(f"{spacing[1]:.6f}"), float(f"{spacing[0]:.6f}")]
        ds.SliceThickness = float(f"{spacing[2]:.6f}")
        ds.SpacingBetweenSlices = float(f"{spacing[2]:.6f}")
        ds.ImageOrientationPatient = [float(f"{v:.8f}") for v in (*row_dir, *col_dir)]
        position = affine_lps[:3, 3] + k * affine_lps[:3, 2]
        ds.ImagePositionPatient = [float(f"{v:.6f}") for v in position]
        ds.SliceLocation = float(f"{position @ np.cross(row_dir, col_dir):.6f}")
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = volume.shape[1], volume.shape[0]
        ds.BitsAllocated = 16
        ds.BitsStored = 12
        ds.HighBit = 11
        ds.PixelRepresentation = 0
        ds.RescaleSlope = float(f"{slope:.10g}")
        ds.RescaleIntercept = float(f"{lo:.10g}")
        ds.RescaleType = "US"
        stored = np.clip(np.round((data[:, :, k].T - lo) / float(ds.RescaleSlope)), 0, 4095).astype(np.uint16)
        ds.PixelData = stored.tobytes()
        if transfer_syntax:
            ds.compress(transfer_syntax, stored)
        path = folder / f"IM{k + 1:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
