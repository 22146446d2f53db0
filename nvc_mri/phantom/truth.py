"""Ground truth of a phantom, measured on its continuous geometry (never on its voxels).

All coordinates are **RAS+ world millimetres** (the image's affine maps voxels to the same
space); arc lengths are mm along the facial-nerve centreline from the root exit point.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field
from scipy.spatial import ConvexHull

from nvc_mri.config import load_config
from nvc_mri.phantom.anatomy import Anatomy, attached_length
from nvc_mri.phantom.lesions import Lesion
from nvc_mri.phantom.shapes import Tube, closest_approach
from nvc_mri.segments import in_root_exit_zone, nerve_segment, segment_config


class VesselRelation(BaseModel):
    """One artery's closest approach to a nerve."""

    vessel: str = Field(description="AICA, PICA, VA, BA or SCA")
    tube: str
    gap_mm: float = Field(description="surface gap, 0 when touching or indenting")
    indentation_mm: float = Field(description="how deep the artery sinks into the nerve's outline")
    contact_point_ras_mm: list[float]
    distance_from_root_exit_mm: float | None = None
    segment: str | None = None


class NerveTruth(BaseModel):
    """Truth for one side's facial nerve (and its CN VIII relation)."""

    designed_kind: str
    design_achieved: bool | None
    contact: bool
    nvc: bool = Field(description="contact or deformity within the root exit zone")
    severity: str = Field(description="none, contact or deformity")
    min_gap_mm: float
    vessel: str | None = Field(description="nearest artery when within the near-vessel distance, else null")
    segment: str | None
    distance_from_root_exit_mm: float | None
    contact_point_ras_mm: list[float] | None
    indentation_mm: float
    displacement_mm: float
    root_exit_point_ras_mm: list[float]
    root_detachment_point_ras_mm: list[float]
    attached_length_mm: float
    root_exit_zone_length_mm: float
    nerve_radius_mm: float
    arteries: list[VesselRelation]
    cn8_min_gap_mm: float
    cn8_vessel: str | None
    cn8_contact: bool


class LesionTruth(BaseModel):
    type: str
    side: str
    volume_mm3: float
    max_diameter_mm: float
    centroid_ras_mm: list[float]
    koos_grade: int | None
    intracanalicular: bool
    cpa_extension: bool
    touches_facial_nerve: bool
    contacts_brainstem: bool
    brainstem_compression_mm: float
    compresses_brainstem: bool


class PhantomTruth(BaseModel):
    """Everything known exactly about a phantom case."""

    coordinate_system: str = "RAS+ world mm (x: patient right, y: anterior, z: superior); same space as the image affine"
    seed: int
    phantom_version: str
    options: dict
    head_to_world: list[list[float]]
    sides: dict[str, NerveTruth]
    lesions: list[LesionTruth]
    design: dict


def _world(m: np.ndarray, p: np.ndarray) -> list[float]:
    return [round(float(v), 4) for v in (m[:3, :3] @ p + m[:3, 3])]


def _relation(a: Anatomy, nerve: Tube, tube: Tube, vessel: str, s: np.ndarray, detach: float, m: np.ndarray,
              with_segment: bool) -> VesselRelation:
    dist, i, pa, pb = closest_approach(nerve, tube)
    gap = dist - nerve.radius - tube.radius
    s_at = float(s[i] + np.linalg.norm(pa - nerve.centreline[i]))
    towards = (pb - pa) / max(np.linalg.norm(pb - pa), 1e-9)
    point = pa + towards * nerve.radius
    return VesselRelation(
        vessel=vessel, tube=tube.name, gap_mm=round(max(gap, 0.0), 4), indentation_mm=round(max(-gap, 0.0), 4),
        contact_point_ras_mm=_world(m, point),
        distance_from_root_exit_mm=round(s_at, 3) if with_segment else None,
        segment=nerve_segment(s_at, detach) if with_segment else None,
    )


def displacement_at(design: dict, s_mm: float | None) -> float:
    """How far (mm) a displacement-type design pushed the nerve at arc length ``s_mm`` (the Gaussian push's
    height there), whether or not the rest of the design was achieved; 0 for other designs."""
    depth, width = float(design.get("displacement_mm") or 0.0), design.get("displacement_width_mm")
    if depth <= 0 or not width or s_mm is None:
        return 0.0
    return depth * float(np.exp(-0.5 * ((s_mm - design["s_star_mm"]) / width) ** 2))


def side_truth(a: Anatomy, name: str, m: np.ndarray, design: dict) -> NerveTruth:
    cfg, contact_cfg = segment_config(), load_config("contact.yaml")
    side = a.sides[name]
    nerve = side.facial
    detach, s = attached_length(a, nerve, cfg["attach_tolerance_mm"])
    rep = int(np.argmin(np.abs(s)))
    rdp = int(np.argmin(np.abs(s - detach)))
    rel = sorted((_relation(a, nerve, t, v, s, detach, m, True) for t, v in a.arteries),
                 key=lambda r: (r.gap_mm, -r.indentation_mm))
    best = rel[0]
    near = best.gap_mm <= contact_cfg["near_vessel_mm"]
    contact = best.gap_mm <= 1e-3
    displacement = displacement_at(design, best.distance_from_root_exit_mm)
    deformity = contact and (best.indentation_mm >= contact_cfg["deformity_min_indentation_mm"]
                             or displacement >= contact_cfg["deformity_min_displacement_mm"])
    severity = "deformity" if deformity else "contact" if contact else "none"
    cn8 = sorted((_relation(a, side.vestibulocochlear, t, v, side.vestibulocochlear.arc_length(), 0, m, False)
                  for t, v in a.arteries), key=lambda r: r.gap_mm)[0]
    return NerveTruth(
        designed_kind=design["built_kind"], design_achieved=design["achieved"],
        contact=contact, nvc=contact and in_root_exit_zone(best.distance_from_root_exit_mm, detach),
        severity=severity, min_gap_mm=best.gap_mm, vessel=best.vessel if near else None,
        segment=best.segment if near else None,
        distance_from_root_exit_mm=best.distance_from_root_exit_mm if near else None,
        contact_point_ras_mm=best.contact_point_ras_mm if near else None,
        indentation_mm=best.indentation_mm, displacement_mm=displacement if contact else 0.0,
        root_exit_point_ras_mm=_world(m, nerve.centreline[rep]), root_detachment_point_ras_mm=_world(m, nerve.centreline[rdp]),
        attached_length_mm=round(detach, 3), root_exit_zone_length_mm=round(detach + cfg["transition_zone_mm"], 3),
        nerve_radius_mm=round(nerve.radius, 4), arteries=rel[:4],
        cn8_min_gap_mm=cn8.gap_mm, cn8_vessel=cn8.vessel if cn8.gap_mm <= contact_cfg["near_vessel_mm"] else None,
        cn8_contact=cn8.gap_mm <= 1e-3,
    )


def lesion_truth(a: Anatomy, lesion: Lesion, m: np.ndarray, step: float = 0.25) -> LesionTruth:
    """Volume, diameter and relations of a lesion by integration on a fine (0.25 mm) grid."""
    contact_cfg = load_config("contact.yaml")
    lo, hi = lesion.bbox
    axes = [np.arange(l, h, step, dtype=np.float32) for l, h in zip(lo, hi)]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    sdf = lesion.sdf(a)(pts)
    inside = sdf < 0
    covered = np.zeros(inside.sum(), dtype=bool)  # nerves, arteries, veins are drawn over the lesion
    tubes = [a.sides[lesion.side].facial] + [t for t, _ in a.arteries] + a.veins
    if not lesion.absorbs_cn8:
        tubes.append(a.sides[lesion.side].vestibulocochlear)
    for tube in tubes:
        covered |= tube.sdf(pts[inside], upper=0.5) < 0
    own = pts[inside][~covered]
    volume = float(len(own) * step**3)
    hull = own[ConvexHull(own).vertices] if len(own) > 10 else own
    diffs = hull[:, None, :] - hull[None, :, :]
    diameter = float(np.sqrt((diffs**2).sum(-1)).max()) if len(hull) > 1 else 0.0
    sg = a.sides[lesion.side].sigma
    iac = a.iac_sdf(own, sg) < 0
    bs = a.brainstem_sdf(pts)
    surface = np.abs(bs) < step
    compression = float(np.max(-sdf[surface & inside], initial=0.0))
    touches = bool(np.min(lesion.sdf(a)(a.sides[lesion.side].facial.centreline.astype(np.float32))) <= a.sides[lesion.side].facial.radius + 0.05)
    return LesionTruth(
        type=lesion.type, side=lesion.side, volume_mm3=round(volume, 2), max_diameter_mm=round(diameter, 3),
        centroid_ras_mm=_world(m, own.mean(0)), koos_grade=lesion.koos, intracanalicular=bool(iac.any()),
        cpa_extension=bool((~iac).sum() * step**3 > 1.0),
        touches_facial_nerve=touches, contacts_brainstem=bool(np.min(bs[inside], initial=9.0) <= step),
        brainstem_compression_mm=round(compression, 3),
        compresses_brainstem=compression >= contact_cfg["lesion_brainstem_compression_mm"],
    )
