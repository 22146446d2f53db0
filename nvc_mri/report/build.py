"""Assemble the validated :class:`Report` from the image, its segmentation and the findings."""

from __future__ import annotations

import datetime as _dt

import numpy as np

from nvc_mri import __version__
from nvc_mri.config import active_config_digest
from nvc_mri.io.volume import Volume
from nvc_mri.labels import LABEL_NAMES, Label
from nvc_mri.measure.findings import Findings
from nvc_mri.report.impression import lesion_impression, side_impression
from nvc_mri.report.schema import NVC, InputInfo, Lesion, Report, Segmentation, Side, Software


def input_info(volume: Volume) -> InputInfo:
    """What was analysed: path or series, grid and the sequence as recognised (no patient identifiers)."""
    meta = volume.meta
    dicom = meta.format.startswith("dicom")
    return InputInfo(
        path=meta.source or None, format=meta.format,
        series_instance_uid=meta.series_instance_uid if dicom else None,
        study_instance_uid=meta.study_instance_uid if dicom else None,
        series_description=meta.series_description,
        series_part=meta.series_part if dicom else None,
        shape=list(volume.shape), spacing_mm=[round(s, 4) for s in volume.spacing], orientation=volume.orientation,
        sequence=meta.sequence.name or meta.sequence.family, sequence_confidence=meta.sequence.confidence,
        sequence_basis=meta.sequence.basis,
        is_heavily_t2_3d=meta.is_heavily_t2_3d,
    )


def structure_volumes_mm3(labels: Volume) -> dict[str, float]:
    """Volume of each labelled structure in mm3."""
    voxel = float(abs(np.linalg.det(labels.affine[:3, :3])))
    counts = np.bincount(np.asarray(labels.array, np.int64).ravel(), minlength=len(Label))
    return {LABEL_NAMES[int(v)]: round(float(counts[int(v)]) * voxel, 1) for v in Label if v != Label.BACKGROUND}


MAX_PLAUSIBLE_LESIONS = 3  # CPA lesions are single, at most one per side plus a neighbour


def plausibility_warnings(findings: Findings) -> list[str]:
    """Warnings for findings no real posterior fossa shows (the segmentation has failed on this scan)."""
    n = len(findings.lesions)
    if n > MAX_PLAUSIBLE_LESIONS:
        return [f"{n} separate lesions found: the segmentation looks implausible for this scan (not a CISS/FIESTA "
                "posterior fossa like the training data?); check the images before using any finding"]
    return []


def build_report(volume: Volume, segmentation, findings: Findings, networks, *, forced: bool, warnings: list[str],
                 timings_s: dict[str, float]) -> Report:
    """The report of one analysis.

    Parameters
    ----------
    volume : Volume
        The analysed image.
    segmentation : nvc_mri.segment.inference.Segmentation
        Labels on the input grid and how the fine pass ran.
    findings : Findings
        What :func:`nvc_mri.measure.measure` found.
    networks : Networks
        The U-Nets used (their weights' sha256 goes into the provenance).
    forced : bool
        True when a non-T2 series was analysed on request.
    warnings : list of str
        Warnings gathered before measurement (loading, forced analysis).
    timings_s : dict
        Seconds per stage so far.
    """
    sides = {}
    for name, side in findings.sides.items():
        c = side.nvc
        nvc = NVC(contact=c.contact, in_root_exit_zone=c.nvc, severity=c.severity, min_gap_mm=c.min_gap_mm, segment=c.segment,
                  distance_from_root_exit_mm=c.distance_from_root_exit_mm, vessel=c.vessel, vessel_confidence=c.vessel_confidence,
                  contact_point_ras_mm=c.contact_point_ras_mm, indentation_mm=c.indentation_mm, displacement_mm=c.displacement_mm)
        sides[name] = Side(status=side.status, reason=side.reason, impression=side_impression(side), nvc=nvc,
                           facial_nerve=side.facial_nerve, vestibulocochlear=side.vestibulocochlear, arteries=side.arteries)
    lesions = [Lesion(**lesion.model_dump(), impression=lesion_impression(lesion)) for lesion in findings.lesions]
    seg_info = Segmentation(fine_pass_region="whole_volume" if segmentation.used_fallback else "brainstem_and_cpa",
                            coarse_reason=segmentation.coarse_reason, structure_volumes_mm3=structure_volumes_mm3(segmentation.labels))
    all_warnings = list(warnings)
    if segmentation.used_fallback:
        all_warnings.append(f"brainstem not found reliably on the coarse pass ({segmentation.coarse_reason}); the whole volume was segmented")
    all_warnings += findings.warnings + plausibility_warnings(findings)
    return Report(
        created_utc=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        software=Software(version=__version__, model_sha256=networks.sha256 or "unknown", model_file=networks.weights_file or "unknown",
                          config_sha256=active_config_digest()),
        input=input_info(volume), forced=forced, sides=sides, lesions=lesions, segmentation=seg_info,
        warnings=all_warnings, timings_s={k: round(v, 3) for k, v in timings_s.items()},
    )
