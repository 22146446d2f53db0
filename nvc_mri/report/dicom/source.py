"""The source series' headers as highdicom needs them to build outputs in the source study.

Nothing here changes the loaded headers: a header that needs an addition is copied first.
"""

from __future__ import annotations

import copy

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset

from nvc_mri.io.volume import Volume

UTF8 = "ISO_IR 192"
KNOWN_CHARACTER_SETS = {term.value for term in hd.enum.SpecificCharacterSetValues}
MULTI_BYTE_EXTENSIONS = {"ISO 2022 IR 87", "ISO 2022 IR 159", "ISO 2022 IR 149"}


def output_character_set(header: Dataset) -> str | list[str] | None:
    """SpecificCharacterSet for the outputs: the source's, in a form highdicom accepts.

    The outputs copy the patient's and study's names, so they keep the source's character set. Japanese
    studies write ``\\ISO 2022 IR 87``, whose empty first value means the default repertoire: it becomes
    ``ISO 2022 IR 6``, which PS3.3 C.12.1.1.2 makes equivalent. A term highdicom does not know (misspelt
    by the sender; pydicom decoded it by its nearest match) becomes UTF-8, which encodes any decoded text.
    """
    value = header.get("SpecificCharacterSet")
    terms = [value] if isinstance(value, str) else list(value or [])
    if len(terms) > 1 and not terms[0]:
        terms[0] = "ISO 2022 IR 6"
    terms = [term for term in terms if term]
    if not terms:
        return None
    extensions = [term.startswith("ISO 2022") for term in terms]
    # one term without code extensions, or several that all have them and start with a single-byte one
    valid = set(terms) <= KNOWN_CHARACTER_SETS and (all(extensions) if len(terms) > 1 else not extensions[0])
    if not valid or (len(terms) > 1 and terms[0] in MULTI_BYTE_EXTENSIONS):
        return UTF8
    return terms[0] if len(terms) == 1 else terms


def with_shared_geometry(header: Dataset) -> Dataset:
    """An enhanced header whose pixel measures and orientation are also in the shared functional groups.

    Scanners may keep them per frame only (Siemens XA30 does); highdicom reads them from the shared
    groups. Classic headers are returned as they are.
    """
    if "PerFrameFunctionalGroupsSequence" not in header:
        return header
    header = copy.deepcopy(header)
    if "SharedFunctionalGroupsSequence" not in header:
        header.SharedFunctionalGroupsSequence = [Dataset()]
    shared, first = header.SharedFunctionalGroupsSequence[0], header.PerFrameFunctionalGroupsSequence[0]
    for keyword in ("PixelMeasuresSequence", "PlaneOrientationSequence"):
        if keyword not in shared and keyword in first:
            setattr(shared, keyword, copy.deepcopy(getattr(first, keyword)))
    return header


# Type 2 attributes (present, possibly empty) that highdicom copies from the source into SEG and SR
PATIENT_AND_STUDY_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber",
                           "StudyID", "StudyDate", "StudyTime")


def with_type2_attributes(header: Dataset, slice_spacing_mm: float) -> Dataset:
    """A header holding the Type 2 attributes that highdicom reads from a source image.

    De-identified exports often drop them (PS3.3 asks that they be present, possibly empty): the patient
    and study ones are added empty, and a missing or empty SliceThickness of a classic image as the
    analysed slice spacing (mm), which is also what the SEG's frames measure.
    """
    missing = [keyword for keyword in PATIENT_AND_STUDY_TYPE2 if keyword not in header]
    classic = "PerFrameFunctionalGroupsSequence" not in header
    no_thickness = classic and header.get("SliceThickness") in (None, "")
    if not missing and not no_thickness:
        return header
    header = copy.deepcopy(header)
    for keyword in missing:
        setattr(header, keyword, "")
    if no_thickness:
        header.SliceThickness = round(float(slice_spacing_mm), 6)
    return header


def source_headers(volume: Volume) -> list[Dataset]:
    """The headers of ``volume``'s source instances, ready to be SEG sources or SR evidence."""
    slice_spacing = float(np.linalg.norm(volume.affine[:3, 2]))
    return [with_type2_attributes(with_shared_geometry(header), slice_spacing) for header in volume.headers]
