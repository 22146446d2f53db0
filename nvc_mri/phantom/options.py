"""Options of the phantom generator (pydantic, so presets and CLI share one validated shape)."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

SEGMENTS = ("root_exit_point", "attached_segment", "root_detachment_point", "transition_zone", "cisternal")
VESSELS = ("AICA", "PICA", "VA")
KINDS = ("none", "near_miss", "contact", "deformity")
LesionType = Literal["vestibular_schwannoma", "meningioma", "epidermoid", "arachnoid_cyst"]
LESION_TYPES: tuple[str, ...] = get_args(LesionType)
DEFAULT_LESION_TYPE_WEIGHTS = {"vestibular_schwannoma": 0.55, "meningioma": 0.2, "epidermoid": 0.12, "arachnoid_cyst": 0.13}


class ConflictSpec(BaseModel):
    """The neurovascular relation to build on one side (facial nerve)."""

    kind: Literal["none", "near_miss", "contact", "deformity"] = "none"
    segment: Literal["root_exit_point", "attached_segment", "root_detachment_point", "transition_zone", "cisternal"] = "attached_segment"
    vessel: Literal["AICA", "PICA", "VA"] = "AICA"
    gap_mm: float | None = Field(None, description="near miss: surface gap in mm (0.2-2 by default)")
    depth_mm: float | None = Field(None, description="deformity: indentation or displacement depth in mm")
    mode: Literal["indent", "displace"] | None = Field(None, description="deformity mode")
    second_vessel: bool = Field(False, description="a second artery also near the nerve at another segment")


class LesionSpec(BaseModel):
    """A secondary lesion in one cerebellopontine angle."""

    type: LesionType
    side: Literal["left", "right"] = "right"
    koos: int | None = Field(None, ge=1, le=4, description="vestibular schwannoma only")


class PhantomOptions(BaseModel):
    """Everything that varies between phantom cases; ``None`` means drawn from the seed."""

    model_config = ConfigDict(extra="forbid")  # generate(seed, lesion_probabilty=...) is an error, not the default

    contrast: Literal["ciss", "fiesta", "random"] | None = None
    spacing_mm: tuple[float, float, float] | None = Field(None, description="output voxel size (in-plane, in-plane, slice)")
    slab_mm: float | None = Field(None, description="slab thickness, 50-80 mm by default")
    fov_mm: float = Field(128.0, description="in-plane field of view")
    orientation: Literal["axial", "oblique"] | None = None
    snr: float | None = Field(None, description="CSF signal / noise sigma")
    max_pose_deg: float = 15.0
    size_jitter: float = 0.15
    right: ConflictSpec | None = None
    left: ConflictSpec | None = None
    lesion: LesionSpec | None = None
    lesion_probability: float = 0.3
    lesion_type_weights: dict[LesionType, float] | None = Field(
        None, description=f"relative frequency of each lesion type when the lesion is drawn (None: "
        f"{DEFAULT_LESION_TYPE_WEIGHTS}; a type left out is never drawn)")
    dolichoectasia_probability: float = 0.08
    vein_probability: float = 0.2
    banding_probability: float = 0.15
    motion_probability: float = 0.15
    supersample: int = Field(4, ge=4, le=8, description="label rendering is this many times finer per axis")

    @field_validator("lesion_type_weights")
    @classmethod
    def _some_type_drawable(cls, weights: dict[str, float] | None) -> dict[str, float] | None:
        if weights is not None and (any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0):
            raise ValueError("lesion_type_weights must be non-negative with a positive sum")
        return weights
