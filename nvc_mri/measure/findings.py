"""What the measurement found, as validated pydantic models. Coordinates: RAS+ world mm."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Severity = Literal["none", "contact", "deformity"]
Segment = Literal["root_exit_point", "attached_segment", "root_detachment_point", "transition_zone", "cisternal"]
VesselName = Literal["AICA", "PICA", "VA", "BA", "unknown"]
Point = list[float]


class ArteryRelation(BaseModel):
    """One artery near a nerve."""

    vessel: VesselName
    vessel_confidence: float = Field(ge=0, le=1)
    vessel_reason: str
    min_gap_mm: float = Field(description="surface gap, sub-voxel refined; 0 when touching (see severity)")
    voxel_gap_mm: float = Field(description="the same gap from the voxels alone (quantised)")
    model_gap_mm: float | None = Field(None, description="gap of the tube models before the contact decision")
    csf_cleft_fraction: float | None = Field(
        None, description="CSF signal between artery and nerve (0 nerve-dark, 1 CSF-bright), judged when the modelled gap "
                          "is at most the labels' resolution or cleft_max_gap_mm; a value under cleft_min_csf_fraction means touching")
    indentation_mm: float = Field(description="how deep the artery sinks into the nerve's outline")
    displacement_mm: float = Field(description="how far the nerve is pushed off its own smooth course at the contact")
    contact_point_ras_mm: Point = Field(description="nerve surface point facing the artery where it comes closest; for touching labels, at the middle of the touching stretch")
    distance_from_root_exit_mm: float | None = Field(description="along the nerve from the root exit point (facial nerve only)")
    segment: Segment | None = None
    severity: Severity


class NerveCourse(BaseModel):
    """The facial nerve's course."""

    traced: bool
    radius_mm: float | None = None
    length_mm: float | None = None
    root_exit_point_ras_mm: Point | None = None
    root_detachment_point_ras_mm: Point | None = None
    attached_length_mm: float | None = Field(None, description="root exit point to root detachment point")
    root_exit_zone_length_mm: float | None = Field(None, description="root exit point to the end of the transition zone")


class Conflict(BaseModel):
    """The worst vessel relation of one nerve (the fields other tools rely on)."""

    contact: bool | None = Field(description="an artery touches the nerve anywhere along it; null when unknown")
    nvc: bool | None = Field(description="contact or deformity within the root exit zone (facial nerve)")
    severity: Severity | None
    min_gap_mm: float | None
    segment: Segment | None
    distance_from_root_exit_mm: float | None
    vessel: VesselName | None
    vessel_confidence: float | None
    contact_point_ras_mm: Point | None
    indentation_mm: float | None
    displacement_mm: float | None


class SideFindings(BaseModel):
    """Findings of one side (patient's left or right)."""

    side: Literal["left", "right"]
    status: Literal["measured", "unknown"]
    reason: str | None = Field(None, description="why the findings are unknown or limited")
    facial_nerve: NerveCourse
    nvc: Conflict
    arteries: list[ArteryRelation] = Field(default_factory=list, description="arteries within the near-vessel distance, nearest first")
    vestibulocochlear: Conflict = Field(description="the same for CN VIII (vestibular paroxysmia); segment fields unused")


class LesionFindings(BaseModel):
    side: Literal["left", "right"]
    volume_mm3: float
    max_diameter_mm: float
    centroid_ras_mm: Point
    intracanalicular: bool
    cpa_extension: bool
    intracanalicular_volume_mm3: float
    contacts_brainstem: bool
    brainstem_compression_mm: float
    touches_facial_nerve: bool
    koos_grade: int | None = Field(None, ge=1, le=4, description="for a vestibular schwannoma")
    type_guess: Literal["vestibular_schwannoma", "meningioma", "epidermoid", "arachnoid_cyst", "unknown"]
    type_basis: str


class Findings(BaseModel):
    coordinate_system: str = "RAS+ world mm (x: patient right, y: anterior, z: superior)"
    sides: dict[Literal["left", "right"], SideFindings]
    lesions: list[LesionFindings]
    warnings: list[str] = Field(default_factory=list)
    timings_s: dict[str, float] = Field(default_factory=dict)


def unknown_conflict() -> Conflict:
    return Conflict(contact=None, nvc=None, severity=None, min_gap_mm=None, segment=None, distance_from_root_exit_mm=None,
                    vessel=None, vessel_confidence=None, contact_point_ras_mm=None, indentation_mm=None, displacement_mm=None)
