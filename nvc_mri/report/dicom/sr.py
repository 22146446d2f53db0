"""Comprehensive 3D SR, TID 1500 measurement report: gaps, severities, vessels, lesion sizes (UCUM units),
each measurement group referencing its segment in the DICOM SEG and the source series."""

from __future__ import annotations

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from nvc_mri import __version__
from nvc_mri.io.volume import Volume
from nvc_mri.labels import Label
from nvc_mri.report.dicom import codes as c
from nvc_mri.report.dicom.seg import MANUFACTURER, MODEL_NAME, without_header_warnings
from nvc_mri.report.dicom.source import output_character_set, source_headers
from nvc_mri.report.schema import Report

DEVICE_UID = "1.2.826.0.1.3680043.10.1462.1"  # stable identifier of the nvc-mri observer device


def _measurement(name, value: float | None, unit, derivation=None) -> list[hd.sr.Measurement]:
    if value is None:
        return []
    return [hd.sr.Measurement(name=name, value=float(value), unit=unit, derivation=derivation)]


def _evaluation(name, value) -> list[hd.sr.QualitativeEvaluation]:
    return [] if value is None else [hd.sr.QualitativeEvaluation(name=name, value=value)]


def _group(tracking: str, segment: int | None, seg: hd.seg.Segmentation, volume: Volume, finding_type, site, laterality,
           measurements, evaluations, forced: bool):
    """A TID 1411 group referencing ``segment`` of ``seg``; a TID 1501 group (no region) when ``segment`` is None."""
    if forced:
        evaluations = evaluations + [hd.sr.QualitativeEvaluation(name=c.VALIDITY, value=c.FORCED_NON_T2)]
    common = dict(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier=tracking),
        finding_type=finding_type, finding_sites=[hd.sr.FindingSite(anatomic_location=site, laterality=laterality)],
        measurements=measurements or None, qualitative_evaluations=evaluations or None,
        algorithm_id=hd.sr.AlgorithmIdentification(name="nvc-mri", version=__version__),
    )
    if segment is None:
        return hd.sr.MeasurementsAndQualitativeEvaluations(**common)
    return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        referenced_segment=hd.sr.ReferencedSegment(
            sop_class_uid=seg.SOPClassUID, sop_instance_uid=seg.SOPInstanceUID, segment_number=int(segment),
            source_series=hd.sr.SourceSeriesForSegmentation(volume.meta.series_instance_uid)),
        **common)


def side_groups(report: Report, seg, volume: Volume) -> list:
    """One group per side: the facial nerve's worst vessel relation, or, where the side could not be measured, a
    group without a region saying so (a reader of the SR alone must not take a missing side for a normal one)."""
    groups = []
    for side in ("right", "left"):
        s = report.sides[side]
        if s.status != "measured":
            groups.append(_group(f"{side} facial nerve root exit zone", None, seg, volume, c.FINDING_NVC, codes.SCT.FacialNerve,
                                 c.LATERALITY[side], [], _evaluation(c.VALIDITY, c.NOT_MEASURED), report.forced))
            continue
        n = s.nvc
        measurements = (_measurement(c.MIN_GAP, n.min_gap_mm, c.MM, codes.SCT.Minimum)
                        + _measurement(c.INDENTATION, n.indentation_mm, c.MM)
                        + _measurement(c.DISPLACEMENT, n.displacement_mm, c.MM)
                        + _measurement(c.ARC_FROM_REP, n.distance_from_root_exit_mm, c.MM))
        evaluations = (_evaluation(c.SEVERITY, c.SEVERITY_VALUES.get(n.severity))
                       + _evaluation(c.VESSEL, c.VESSEL_VALUES.get(n.vessel))
                       + _evaluation(c.NERVE_SEGMENT, c.NERVE_SEGMENT_VALUES.get(n.segment))
                       + _evaluation(c.IN_REZ, None if n.in_root_exit_zone is None else c.YES_NO[n.in_root_exit_zone]))
        groups.append(_group(f"{side} facial nerve root exit zone", Label.FACIAL_NERVE, seg, volume, c.FINDING_NVC,
                             codes.SCT.FacialNerve, c.LATERALITY[side], measurements, evaluations, report.forced))
        v = s.vestibulocochlear
        if v.severity is not None:
            groups.append(_group(f"{side} vestibulocochlear nerve", Label.VESTIBULOCOCHLEAR_NERVE, seg, volume, c.FINDING_CN8,
                                 codes.SCT.VestibulocochlearNerve, c.LATERALITY[side],
                                 _measurement(c.MIN_GAP, v.min_gap_mm, c.MM, codes.SCT.Minimum),
                                 _evaluation(c.SEVERITY, c.SEVERITY_VALUES.get(v.severity))
                                 + _evaluation(c.VESSEL, c.VESSEL_VALUES.get(v.vessel)), report.forced))
    return groups


def lesion_groups(report: Report, seg, volume: Volume) -> list:
    groups = []
    for i, lesion in enumerate(report.lesions, start=1):
        measurements = (_measurement(c.VOLUME, lesion.volume_mm3, c.MM3)
                        + _measurement(c.DIAMETER, lesion.max_diameter_mm, c.MM, codes.SCT.Maximum))
        evaluations = (_evaluation(c.LESION_TYPE, c.LESION_TYPE_VALUES[lesion.type_guess])
                       + _evaluation(c.KOOS, c.KOOS_VALUES.get(lesion.koos_grade)))
        groups.append(_group(f"lesion {i} ({lesion.side})", Label.LESION, seg, volume, codes.SCT.Lesion,
                             c.CPA,
                             c.LATERALITY[lesion.side], measurements, evaluations, report.forced))
    return groups


@without_header_warnings
def build_sr(report: Report, seg: hd.seg.Segmentation, volume: Volume, series_number: int, description: str) -> hd.sr.Comprehensive3DSR:
    """The TID 1500 measurement report of ``report``, referencing ``seg`` and the source series."""
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=DEVICE_UID, name=MODEL_NAME, manufacturer_name=MANUFACTURER, model_name=f"{MODEL_NAME} {__version__}"))
    content = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=c.PROCEDURE,
        imaging_measurements=side_groups(report, seg, volume) + lesion_groups(report, seg, volume),
    )
    sr = hd.sr.Comprehensive3DSR(
        evidence=source_headers(volume) + [seg], content=content, series_instance_uid=generate_uid(), series_number=series_number,
        sop_instance_uid=generate_uid(), instance_number=1, manufacturer=MANUFACTURER, is_complete=True, is_final=False,
        is_verified=False, series_description=description[:64], specific_character_set=output_character_set(volume.headers[0]),
    )
    declare = Dataset()  # the private scheme is declared, as PS3.3 C.12.1.1.2 asks
    declare.CodingSchemeDesignator = c.SCHEME
    declare.CodingSchemeName = "nvc-mri private codes"
    declare.CodingSchemeResponsibleOrganization = MANUFACTURER
    sr.CodingSchemeIdentificationSequence = [declare]
    return sr
