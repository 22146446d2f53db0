"""DICOM outputs for DICOM input: SEG (labels), Comprehensive 3D SR (TID 1500 measurements) and a
secondary capture of the key images, all in the source study with new UIDs on every run."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nvc_mri.io.volume import Volume
from nvc_mri.report.dicom.sc import build_key_images
from nvc_mri.report.dicom.seg import build_seg
from nvc_mri.report.dicom.sr import build_sr
from nvc_mri.report.schema import Report

SERIES_NUMBERS = {"seg": 9901, "sr": 9902, "keyimages": 9903}


def descriptions(forced: bool) -> dict[str, str]:
    prefix = "FORCED NON-T2 UNRELIABLE " if forced else ""
    return {"seg": prefix + "NVC labels (nvc-mri)", "sr": prefix + "NVC measurements (nvc-mri)",
            "keyimages": prefix + "NVC key images (nvc-mri)"}


def write_dicom(report: Report, volume: Volume, labels: np.ndarray, montage: np.ndarray, folder: Path) -> list[Path]:
    """Write ``seg.dcm``, ``sr.dcm`` and ``keyimages.dcm`` into ``folder``.

    Parameters
    ----------
    report : Report
    volume : Volume
        DICOM input (its headers are referenced).
    labels : ndarray
        The label map on ``volume``'s grid.
    montage : ndarray (rows, columns, 3) uint8
        Key images, tiled.
    """
    folder.mkdir(parents=True, exist_ok=True)
    text = descriptions(report.forced)
    seg = build_seg(volume, labels, SERIES_NUMBERS["seg"], text["seg"])
    sr = build_sr(report, seg, volume, SERIES_NUMBERS["sr"], text["sr"])
    sc = build_key_images(volume, montage, SERIES_NUMBERS["keyimages"], text["keyimages"])
    paths = []
    for name, dataset in (("seg.dcm", seg), ("sr.dcm", sr), ("keyimages.dcm", sc)):
        dataset.save_as(folder / name, enforce_file_format=True)
        paths.append(folder / name)
    return paths
