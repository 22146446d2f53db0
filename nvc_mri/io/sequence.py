"""Recognise the MR sequence of a series: from DICOM header rules, or from the image itself.

The header rules live in ``configs/series_rules.yaml``; see that file for their form.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import numpy as np
from pydantic import BaseModel, Field

from nvc_mri.config import load_config
from nvc_mri.labels import Label

HEAVY_T2 = "heavily_t2_3d"


class SequenceGuess(BaseModel):
    """What a series probably is, and how sure the guess is."""

    family: str = Field(description="heavily_t2_3d, t1, pd, flair, t2_2d, diffusion, tof, localizer, label_map or unknown")
    name: str | None = Field(None, description="CISS, FIESTA, SPACE, DRIVE, ... when known")
    confidence: float = Field(ge=0.0, le=1.0)
    basis: str = Field(description="'dicom-header' or 'image-intensities'")
    reasons: list[str] = Field(default_factory=list)

    @property
    def is_heavily_t2_3d(self) -> bool:
        return self.family == HEAVY_T2


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


def _matches(rule: Mapping[str, Any], header: Mapping[str, Any]) -> bool:
    value = header.get(rule["field"])
    if value is None or _as_text(value) == "":
        return False
    if "pattern" in rule and not re.search(rule["pattern"], _as_text(value), re.IGNORECASE):
        return False
    if "min" in rule or "max" in rule:
        try:
            number = float(value)
        except (TypeError, ValueError):
            return False
        if "min" in rule and number < rule["min"]:
            return False
        if "max" in rule and number > rule["max"]:
            return False
    return "also" not in rule or _matches(rule["also"], header)


def _sequence_name(header: Mapping[str, Any], rules: Mapping[str, Any]) -> str | None:
    text = " ".join(
        _as_text(header.get(k)) for k in ("SequenceName", "PulseSequenceName", "SeriesDescription", "ProtocolName")
    )
    for entry in rules.get("sequence_names", []):
        if any(re.search(p, text, re.IGNORECASE) for p in entry["any"]):
            return entry["name"]
    return None


BIDS_SECONDS = ("EchoTime", "RepetitionTime", "InversionTime")  # BIDS gives times in s, the rules read ms


def sidecar_header(sidecar: Mapping[str, Any]) -> dict[str, Any]:
    """The sequence attributes of a BIDS JSON sidecar (as dcm2niix writes beside a NIfTI), keyed and scaled as
    DICOM has them, for :func:`classify_header`: times in ms, ``ManufacturersModelName`` as
    ``ManufacturerModelName``. Nothing else is kept (sidecars may hold more than the sequence)."""
    from nvc_mri.io.dicom_headers import SEQUENCE_KEYWORDS

    source = dict(sidecar)
    if "ManufacturersModelName" in source:
        source.setdefault("ManufacturerModelName", source["ManufacturersModelName"])
    header = {}
    for keyword in SEQUENCE_KEYWORDS:
        value = source.get(keyword)
        if value is None or value == "":
            continue
        if keyword in BIDS_SECONDS:
            try:
                value = float(value) * 1000.0
            except (TypeError, ValueError):
                continue
        header[keyword] = value
    return header


def classify_header(header: Mapping[str, Any], rules: Mapping[str, Any] | None = None) -> SequenceGuess:
    """Guess the sequence family of a DICOM series from its header attributes.

    Parameters
    ----------
    header : mapping
        DICOM keyword -> value for one representative instance (SeriesDescription,
        SequenceName, MRAcquisitionType, FlipAngle in degrees, EchoTime in ms, ...).
    rules : mapping, optional
        Parsed ``series_rules.yaml``; the shipped rules by default.

    Returns
    -------
    SequenceGuess
        The winning family, a name such as ``"CISS"`` for heavily T2 3D series, a
        confidence in [0, 1] and the rules that fired.
    """
    rules = rules or load_config("series_rules.yaml")
    scores: dict[str, float] = {}
    reasons: dict[str, list[str]] = {}
    for rule in rules["rules"]:
        if _matches(rule, header):
            fam = rule["family"]
            scores[fam] = scores.get(fam, 0.0) + float(rule["weight"])
            reasons.setdefault(fam, []).append(f"{rule['field']}={_as_text(header.get(rule['field']))!s}")
    if not scores:
        return SequenceGuess(family="unknown", confidence=0.0, basis="dicom-header", reasons=["no rule matched"])
    family = max(scores, key=scores.get)
    confidence = scores[family] / (sum(scores.values()) + 1.0)
    name = _sequence_name(header, rules) if family == HEAVY_T2 else None
    if family == HEAVY_T2 and name is None:
        name = "3D T2"
    return SequenceGuess(
        family=family, name=name, confidence=round(confidence, 3), basis="dicom-header", reasons=reasons[family]
    )


MAX_LABEL_VALUES = 64


def classify_intensities(array: np.ndarray) -> SequenceGuess:
    """Judge from the voxels alone whether an image looks heavily T2-weighted.

    A NIfTI file carries no sequence header. On CISS/FIESTA/SPACE the CSF in the cisterns and ventricles is by
    far the brightest tissue, two to four times the brain parenchyma, so the head's intensities fall into two
    classes far apart; on T1 the brightest class (white matter, fat, enhancement) is barely brighter than the
    rest of the brain. The head's voxels (above 15% of the 99.5th percentile) are split in two by Otsu's
    threshold and the bright class's median is compared with the dark class's. Comparing classes, not the
    99th percentile with the median, holds however much of the field of view the CSF fills: on a slab through
    the cerebellopontine angles it can be half the head, and the median is then CSF itself. It is a weak
    test: the confidence says so and callers warn; a T1 with much bright fat can pass it.

    Parameters
    ----------
    array : ndarray
        Image intensities (any units).

    Returns
    -------
    SequenceGuess
        ``heavily_t2_3d``, ``label_map`` (a handful of integer values: a segmentation or mask given as the image)
        or ``unknown``, with basis ``"image-intensities"``.
    """
    from skimage.filters import threshold_otsu

    finite = array[np.isfinite(array)]
    if finite.size == 0:
        return SequenceGuess(family="unknown", confidence=0.0, basis="image-intensities", reasons=["no finite voxels"])
    sample = finite[:: max(1, finite.size // 2_000_000)].astype(np.float64)
    if np.array_equal(sample, np.rint(sample)):
        values = np.unique(sample)
        if values.size <= MAX_LABEL_VALUES:  # an MR image has hundreds of grey levels, even stored as 8 bits
            return SequenceGuess(family="label_map", confidence=0.95, basis="image-intensities", reasons=[
                f"only {values.size} distinct integer values: a label map or mask, not an MR image"])
    hi = np.percentile(sample, 99.5)
    head = sample[sample > 0.15 * hi]
    if head.size < 100 or head.min() == head.max():
        return SequenceGuess(family="unknown", confidence=0.0, basis="image-intensities", reasons=["image nearly empty"])
    threshold = threshold_otsu(head)
    bright, dark = head[head > threshold], head[head <= threshold]
    ratio = float(np.median(bright) / max(float(np.median(dark)), 1e-6))
    bright_share = bright.size / head.size
    reasons = [f"bright class / dark class of the head = {ratio:.2f}", f"bright class = {bright_share:.2f} of the head"]
    if ratio >= 2.2 and bright_share >= 0.02:
        return SequenceGuess(family=HEAVY_T2, name="3D T2", confidence=round(min(0.9, 0.5 + 0.2 * (ratio - 2.2)), 3),
                             basis="image-intensities", reasons=reasons)
    return SequenceGuess(
        family="unknown", confidence=round(min(0.9, 0.4 + 0.2 * (2.2 - ratio)), 3),
        basis="image-intensities", reasons=reasons + ["CSF not clearly brighter than brain"],
    )


def csf_brainstem_ratio(image: np.ndarray, labels: np.ndarray, spacing_mm: np.ndarray, reach_mm: float = 4.0) -> float | None:
    """How much brighter than the brainstem its surroundings are: the 75th percentile of the unlabelled voxels
    0.5-``reach_mm`` mm from the brainstem label over the median of the brainstem's core (a voxel and more inside
    its edge).

    On a heavily T2-weighted image the prepontine and cerebellopontine cisterns around the brainstem are CSF, two
    to four times brighter than it; on a T1 they are darker and the brightest quarter of the surroundings is
    about as bright as the brainstem. This is the judgement the segmentation makes possible ("CSF brighter than
    the brainstem"), for images whose header cannot say (NIfTI) or says wrong.

    Parameters
    ----------
    image, labels : ndarray
        The image and its label map on one grid.
    spacing_mm : ndarray (3,)
        Voxel size along the array axes, mm.

    Returns
    -------
    float or None
        None when there is no brainstem label of 100 voxels or more.
    """
    from scipy import ndimage

    index = np.argwhere(labels == Label.BRAINSTEM)
    if len(index) < 100:
        return None
    margin = np.ceil(reach_mm / np.asarray(spacing_mm)).astype(int) + 1
    lower, upper = np.maximum(index.min(0) - margin, 0), np.minimum(index.max(0) + margin + 1, labels.shape)
    box = tuple(slice(a, b) for a, b in zip(lower, upper))
    brainstem = labels[box] == Label.BRAINSTEM
    outside = ndimage.distance_transform_edt(~brainstem, sampling=spacing_mm)
    around = image[box][(outside > 0.5) & (outside <= reach_mm) & (labels[box] == Label.BACKGROUND)]
    core = ndimage.distance_transform_edt(brainstem, sampling=spacing_mm) > float(np.max(spacing_mm))
    level = float(np.median(image[box][core] if core.sum() >= 50 else image[box][brainstem]))
    if len(around) < 50 or level <= 0:
        return None
    return float(np.percentile(around, 75)) / level

