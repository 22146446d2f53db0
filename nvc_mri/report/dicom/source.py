"""The source series' headers as highdicom needs them to build outputs in the source study.

Nothing here changes the loaded headers: a header that needs an addition is copied first.
"""

from __future__ import annotations

import copy
import re

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.valuerep import DA, TM

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
DATES_AND_TIMES = {"PatientBirthDate": DA, "StudyDate": DA, "StudyTime": TM}
PATIENT_SEX = {"M", "F", "O", ""}


def _readable(value, kind) -> str:
    """``value`` as ``kind`` (DA or TM) accepts it: as it is, with its separators removed (``1970-01-01``,
    ``12:30:00``, written by some exports), or empty when neither converts."""
    text = str(value or "").strip()
    for candidate in (text, re.sub(r"[^0-9.]", "", text)):
        try:
            kind(candidate)
            return candidate
        except (ValueError, TypeError):
            continue
    return ""


def with_copyable_attributes(header: Dataset, slice_spacing_mm: float) -> Dataset:
    """A header whose patient, study and slice attributes highdicom can copy into SEG and SR.

    De-identified exports drop Type 2 attributes (PS3.3 asks that they be present, possibly empty): they are
    added empty. Dates and times DICOM does not allow (``1970-01-01``), which highdicom cannot convert, lose
    their separators or become empty; a PatientSex other than M, F or O becomes empty. A missing or empty
    SliceThickness of a classic image becomes the analysed slice spacing (mm), which the SEG's frames measure.
    """
    changes = {keyword: "" for keyword in PATIENT_AND_STUDY_TYPE2 if keyword not in header}
    for keyword, kind in DATES_AND_TIMES.items():
        raw = header.get(keyword)
        if raw not in (None, "") and _readable(raw, kind) != str(raw).strip():
            changes[keyword] = _readable(raw, kind)
    sex = str(header.get("PatientSex") or "").strip()
    if sex not in PATIENT_SEX:  # "m" becomes M, "male" empty
        changes["PatientSex"] = sex.upper() if sex.upper() in PATIENT_SEX else ""
    if "PerFrameFunctionalGroupsSequence" not in header and header.get("SliceThickness") in (None, ""):
        changes["SliceThickness"] = round(float(slice_spacing_mm), 6)
    if not changes:
        return header
    header = copy.deepcopy(header)
    for keyword, value in changes.items():
        setattr(header, keyword, value)
    return header


def source_headers(volume: Volume, headers: list[Dataset] | None = None) -> list[Dataset]:
    """The headers of ``volume``'s source instances (or of ``headers`` among them), ready to be SEG sources, SR
    evidence or a secondary capture's reference."""
    slice_spacing = float(np.linalg.norm(volume.affine[:3, 2]))
    return [with_copyable_attributes(with_shared_geometry(header), slice_spacing)
            for header in (volume.headers if headers is None else headers)]
