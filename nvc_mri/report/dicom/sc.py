"""Secondary capture of the key images (burned-in overlays and text), so any PACS viewer shows them."""

from __future__ import annotations

import highdicom as hd
import numpy as np
from pydicom.uid import generate_uid

from nvc_mri.io.volume import Volume
from nvc_mri.report.dicom.seg import MANUFACTURER, without_header_warnings
from nvc_mri.report.dicom.source import output_character_set, source_headers


@without_header_warnings
def build_key_images(volume: Volume, montage: np.ndarray, series_number: int, description: str) -> hd.sc.SCImage:
    """One RGB secondary capture image of the key-image montage, in the source study.

    PatientOrientation is that of the axial panels (rows towards the patient's left, columns
    towards posterior); every panel carries its own burned-in orientation letters.
    """
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=source_headers(volume, volume.headers[:1])[0], pixel_array=np.ascontiguousarray(montage, np.uint8), photometric_interpretation="RGB",
        bits_allocated=8, coordinate_system="PATIENT", patient_orientation=("L", "P"), series_instance_uid=generate_uid(), series_number=series_number,
        sop_instance_uid=generate_uid(), instance_number=1, manufacturer=MANUFACTURER,
        specific_character_set=output_character_set(volume.headers[0]),
    )
    sc.SeriesDescription = description[:64]
    sc.Laterality = ""  # both sides are shown (Type 2C in the General Series module)
    sc.BurnedInAnnotation = "YES"
    sc.ImageType = ["DERIVED", "SECONDARY"]
    return sc
