"""Find the series of a DICOM folder and choose the heavily T2-weighted 3D one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nvc_mri.config import load_config
from nvc_mri.errors import InputError
from nvc_mri.io.dicom_headers import (
    MR_IMAGE_CLASSES,
    InstanceHeader,
    SeriesGroup,
    group_series,
    list_files,
    read_instance_header,
)
from nvc_mri.io.image_files import IMAGE_FILE_NAMES
from nvc_mri.io.sequence import SequenceGuess, classify_header


@dataclass
class SeriesCandidate:
    """One series found in a folder, with its classification."""

    group: SeriesGroup
    sequence: SequenceGuess

    @property
    def series_uid(self) -> str:
        return self.group.first.series_uid

    @property
    def description(self) -> str:
        return str(self.group.first.header.get("SeriesDescription", ""))

    @property
    def is_original(self) -> bool:
        """ImageType ORIGINAL (as acquired), not DERIVED (a reformat, MIP or subtraction made from another series)."""
        return not self.group.first.image_type.upper().startswith("DERIVED")

    @property
    def is_localizer(self) -> bool:
        return self.sequence.family == "localizer" or self.group.n_slices < 3

    def summary(self) -> dict:
        first = self.group.first
        return {
            "series_instance_uid": self.series_uid,
            "series_number": first.series_number,
            "label": self.group.label,
            "part": self.group.part,
            "description": self.description,
            "images": self.group.n_slices,
            "rows": first.rows,
            "columns": first.columns,
            "family": self.sequence.family,
            "name": self.sequence.name,
            "confidence": self.sequence.confidence,
            "problem": self.group.problem,
        }


def scan_dicom_folder(folder: Path, source: Path | None = None) -> tuple[list[SeriesCandidate], int]:
    """Read every header below ``folder`` and classify the MR image series.

    ``source`` is what the user gave (a zip or a single file unpacked or linked into the temporary ``folder``),
    named in errors instead of the temporary folder.

    An instance stored twice (same SOPInstanceUID, as when a study was exported or sent twice) counts once.

    Returns
    -------
    candidates : list of SeriesCandidate
        MR image series (split by orientation/acquisition), localizers included.
    n_non_image : int
        DICOM instances that were skipped (SR, presentation states, other modalities).
    """
    files = list_files(folder)
    if not files:
        raise InputError(source or folder, "folder is empty")
    headers: list[InstanceHeader] = []
    seen: set[str] = set()
    n_other = 0
    for f in files:
        h = read_instance_header(f)
        if h is None:
            continue
        if h.sop_class_uid in MR_IMAGE_CLASSES:
            if h.sop_instance_uid in seen:  # the same instance stored twice (a study exported or sent again)
                continue
            seen.add(h.sop_instance_uid or f)
            headers.append(h)
        else:
            n_other += 1
    if not headers:
        images = [f for f in files if f.lower().endswith((".nii", ".nii.gz") + IMAGE_FILE_NAMES)]
        if images and not n_other:  # a folder is read as one DICOM study; image files are given one by one
            kinds = "NIfTI" if all(f.lower().endswith((".nii", ".nii.gz")) for f in images) else "image"
            raise InputError(source or folder, f"holds {len(images)} {kinds} file(s) and no DICOM series; give an image "
                                               "file itself (or use nvc-mri batch for a folder of them)")
        what = f"{n_other} DICOM object(s) but" if n_other else "no DICOM files and"
        raise InputError(source or folder, f"{what} no MR image series")
    rules = load_config("series_rules.yaml")
    candidates = [SeriesCandidate(g, classify_header(g.first.header, rules)) for g in group_series(headers)]
    return candidates, n_other


def _echo_time_ms(c: SeriesCandidate) -> float:
    try:
        return float(c.group.first.header.get("EchoTime") or 0.0)
    except (TypeError, ValueError):
        return 0.0


def _rank(c: SeriesCandidate) -> tuple:
    return (
        not c.is_localizer,
        c.group.problem is None,
        c.sequence.is_heavily_t2_3d,
        c.is_original,  # the acquired slab, not a reformat or MIP made from it
        c.sequence.confidence if c.sequence.is_heavily_t2_3d else 0.0,
        c.group.n_slices,
        _echo_time_ms(c),  # of a multi-echo series, the most T2-weighted echo
        c.group.first.series_number or 0,  # of equals, the later: a repeat is made because the first moved
    )


def _studies(candidates: list[SeriesCandidate]) -> set[str]:
    return {c.group.first.study_uid for c in candidates if c.group.first.study_uid}


def choose_series(
    folder: Path, candidates: list[SeriesCandidate], series: str | int | None = None
) -> tuple[SeriesCandidate, str]:
    """Pick the series to analyse.

    Parameters
    ----------
    series : str or int, optional
        A SeriesInstanceUID or a SeriesNumber to force the choice, or one part of a series that holds
        several (echoes, acquisitions, orientations) as ``info`` labels it: ``"<number>#<k>"`` or
        ``"<SeriesInstanceUID>#<k>"``.

    Returns
    -------
    candidate, reason
        The chosen series and a sentence saying why.
    """
    if series is not None:
        wanted = str(series)
        hits = [c for c in candidates
                if wanted in (c.series_uid, str(c.group.first.series_number), c.group.label, c.group.key)]
        if not hits:
            raise InputError(folder, f"no series matches {wanted!r}")
        if len(_studies(hits)) > 1:
            raise InputError(folder, f"series number {wanted} exists in {len(_studies(hits))} studies; name it by its SeriesInstanceUID")
        return max(hits, key=_rank), f"requested series {wanted}"
    usable = [c for c in candidates if not c.is_localizer]
    if not usable:
        too_few = [c for c in candidates if c.sequence.family != "localizer"]
        if too_few:  # e.g. one file of a series given instead of its folder
            n = max(c.group.n_slices for c in too_few)
            raise InputError(folder, f"only {n} image(s) of a series, not a 3D volume; give the folder holding the whole series")
        raise InputError(folder, "only localizer/scout images, no 3D MR series")
    if len(_studies(usable)) > 1:
        # several studies, perhaps of several patients: choosing one by its sequence could report the wrong patient
        raise InputError(folder, f"folder holds {len(_studies(usable))} studies (StudyInstanceUID differs); "
                                 "give one study's folder, or choose a series with --series")
    best = max(usable, key=_rank)
    n_series = len({c.series_uid for c in candidates})
    min_conf = load_config("series_rules.yaml")["min_confidence"]
    if best.sequence.is_heavily_t2_3d and best.sequence.confidence >= min_conf:
        reason = f"heavily T2-weighted 3D series ({best.sequence.name}, confidence {best.sequence.confidence:.2f}) among {n_series} series"
    elif best.sequence.is_heavily_t2_3d:
        reason = (f"the likeliest heavily T2-weighted 3D series among {n_series} series, a weak guess "
                  f"({best.sequence.name}, confidence {best.sequence.confidence:.2f} under {min_conf})")
    else:
        reason = (
            f"no heavily T2-weighted 3D series among {n_series} series; "
            f"loaded the largest one, which looks like {best.sequence.family}"
        )
    return best, reason


def other_heavily_t2_series(candidates: list[SeriesCandidate], chosen: SeriesCandidate) -> list[str]:
    """A warning naming the other heavily T2-weighted series of the folder (a repeat after motion, a second slab),
    which were not analysed; empty when there is none."""
    others = [c for c in candidates if c.series_uid != chosen.series_uid and not c.is_localizer and c.sequence.is_heavily_t2_3d]
    if not others:
        return []
    numbers = ", ".join(str(c.group.first.series_number) for c in others)
    return [f"{len(others)} other heavily T2-weighted series (number {numbers}) not analysed; --series chooses another"]


def weak_guess_warnings(guess: SequenceGuess) -> list[str]:
    """A warning when a series is taken for heavily T2-weighted on header evidence (DICOM or a BIDS sidecar) under
    ``min_confidence`` (conflicting rules fired), so that the reader checks it is a CISS/FIESTA/SPACE."""
    min_conf = load_config("series_rules.yaml")["min_confidence"]
    if not guess.is_heavily_t2_3d or guess.confidence >= min_conf:
        return []
    return [f"the series header is only weakly recognised as heavily T2-weighted ({guess.name}, confidence "
            f"{guess.confidence:.2f}): check that it is a CISS/FIESTA/SPACE cisternography before trusting the findings"]


def other_parts_of_series(candidates: list[SeriesCandidate], chosen: SeriesCandidate) -> list[str]:
    """A warning naming the parts of the chosen series that were not analysed (other echoes, acquisitions or
    orientations stored under one SeriesInstanceUID); empty when the series is all one volume."""
    others = [c for c in candidates if c.series_uid == chosen.series_uid and c is not chosen and c.group.n_slices >= 3]
    if not others:
        return []
    listed = "; ".join(f"{c.group.label}: {c.group.part}, {c.group.n_slices} images" for c in others)
    return [f"series {chosen.group.label.split('#')[0]} holds several volumes; analysed {chosen.group.label} "
            f"({chosen.group.part}), not {listed}; --series chooses another"]
