"""The report: one validated pydantic model, the contract other tools parse.

Field names are fixed (``schema_version`` says which contract a file follows). Every
coordinate is **RAS+ world millimetres** (x towards the patient's right, y anterior,
z superior), the NIfTI convention; every distance is millimetres, volumes mm3.
``nvc_mri/report/report.schema.json`` is this model's JSON Schema, shipped with the package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from nvc_mri.measure.findings import ArteryRelation, Conflict, LesionFindings, NerveCourse, Segment, Severity, VesselName

SCHEMA_VERSION = "1.1"  # 1.1: input.series_part, input.sequence_basis
COORDINATES = "RAS+ world millimetres (x: patient right, y: anterior, z: superior)"
Point = list[float]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Software(_Strict):
    name: str = "nvc-mri"
    version: str
    model_sha256: str = Field(description="sha256 of the U-Net weights file used")
    model_file: str = Field(description="name of the weights file")
    config_sha256: str = Field(description="sha256 of the config overrides in force (of '{}' for the shipped defaults)")


class InputInfo(_Strict):
    path: str | None = Field(description="the file or folder given (null when the image came from memory)")
    format: str = Field(description="nifti, nrrd, metaimage, mgh, dicom or dicom-enhanced")
    series_instance_uid: str | None = Field(None, description="DICOM input only")
    study_instance_uid: str | None = Field(None, description="DICOM input only")
    series_description: str | None = None
    series_part: str | None = Field(None, description="DICOM input only: the part analysed of a series holding several "
                                                      "volumes (echoes, acquisitions, orientations), e.g. 'echo 2, TE 90 ms'")
    shape: list[int]
    spacing_mm: list[float]
    orientation: str = Field(description="direction each array axis points to, e.g. 'LPS'")
    sequence: str = Field(description="sequence name or family as recognised (e.g. CISS, FIESTA, heavily_t2_3d, t1)")
    sequence_confidence: float
    sequence_basis: str | None = Field(None, description="what the sequence was judged from: dicom-header, bids-sidecar "
                                                         "(a NIfTI's JSON sidecar) or image-intensities")
    is_heavily_t2_3d: bool


class NVC(_Strict):
    """The facial nerve's worst vessel relation on one side."""

    contact: bool | None = Field(description="an artery touches the facial nerve (gap at or below the contact threshold); null when unknown")
    in_root_exit_zone: bool | None = Field(description="the contact lies between root exit point and the end of the transition zone (NVC)")
    severity: Severity | None
    min_gap_mm: float | None = Field(description="smallest surface gap to the nearest artery, sub-voxel refined (0 = touching)")
    segment: Segment | None
    distance_from_root_exit_mm: float | None = Field(description="along the nerve from the root exit point")
    vessel: VesselName | None
    vessel_confidence: float | None
    contact_point_ras_mm: Point | None = Field(description="nerve surface point facing the artery, " + COORDINATES)
    indentation_mm: float | None
    displacement_mm: float | None


class Side(_Strict):
    status: Literal["measured", "unknown"]
    reason: str | None
    impression: str = Field(description="one sentence in a radiologist's words")
    nvc: NVC
    facial_nerve: NerveCourse
    vestibulocochlear: Conflict = Field(description="the same relation for CN VIII (vestibular paroxysmia); segment fields unused")
    arteries: list[ArteryRelation] = Field(description="every artery within the near-vessel distance, nearest first")


class Lesion(LesionFindings):
    impression: str


class Segmentation(_Strict):
    fine_pass_region: Literal["brainstem_and_cpa", "whole_volume"]
    coarse_reason: str | None = Field(description="why the coarse localisation was not trusted")
    structure_volumes_mm3: dict[str, float]


class Outputs(_Strict):
    files: list[str] = Field(description="files written beside report.json, relative paths")
    labels_coordinate_system: str = "labels.nii.gz: the input's grid; its affine maps voxels to " + COORDINATES


class Report(_Strict):
    """Everything nvc-mri found in one study."""

    schema_version: str = SCHEMA_VERSION
    coordinate_system: str = COORDINATES
    created_utc: str
    software: Software
    input: InputInfo
    forced: bool = Field(description="analysed with --force although not a heavily T2-weighted 3D sequence: findings unreliable")
    sides: dict[Literal["left", "right"], Side]
    lesions: list[Lesion]
    segmentation: Segmentation
    warnings: list[str]
    timings_s: dict[str, float]
    outputs: Outputs | None = None
    disclaimer: str = ("Research software trained on synthetic phantoms only; not a medical device. "
                       "Validate on local data before any clinical use.")


def json_schema() -> dict:
    """The JSON Schema of :class:`Report` as shipped in ``report.schema.json``."""
    schema = Report.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://nvc-mri.invalid/report.schema.{SCHEMA_VERSION}.json"
    schema["description"] = f"nvc-mri report, schema {SCHEMA_VERSION}. Coordinates: {COORDINATES}; distances in mm, volumes in mm3."
    return schema


def schema_path() -> Path:
    """The shipped ``report.schema.json`` (rewrite it with ``scripts/export_schema.py`` after changing the model)."""
    return Path(__file__).with_name("report.schema.json")
