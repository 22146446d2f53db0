"""One study's label map -> :class:`Findings`: each side's nerve course and artery relations, and the lesions.

The orchestration of the measurement; the geometry lives in the modules beside it (``nerve``, ``contact``,
``vessels``, ``lesions``, ``cleft``, ``fields``).
"""

from __future__ import annotations

import functools
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from nibabel.affines import apply_affine
from scipy.spatial import cKDTree

from nvc_mri.config import load_config
from nvc_mri.io.volume import volume_centre_mm
from nvc_mri.labels import Label, as_label_map
from nvc_mri.measure.cleft import csf_cleft_fraction
from nvc_mri.measure.contact import Approach, closest_approach, deformation
from nvc_mri.measure.fields import (
    DistanceField,
    LocalLabels,
    SurfaceDistance,
    box_around,
    distance_field,
    local_labels,
    signed_distance_mm,
    surface_normal,
)
from nvc_mri.measure.findings import (
    ArteryRelation,
    Conflict,
    Findings,
    LesionFindings,
    SideFindings,
    unknown_conflict,
)
from nvc_mri.measure.findings import NerveCourse as CourseFindings
from nvc_mri.measure.lesions import (
    MirrorPlane,
    canal_from_nerve,
    koos_grade,
    lesion_components,
    lesion_signal,
    measure_lesion,
    type_guess,
)
from nvc_mri.measure.nerve import NerveCourse, brainstem_for_landmarks, extra_axial, nerve_course
from nvc_mri.measure.vessels import VesselMap, name_vessels
from nvc_mri.segments import in_root_exit_zone, nerve_segment

SIDES = {"right": 1.0, "left": -1.0}  # sign of RAS x relative to the midline
MEASURE_GRID_MM = 0.25    # nerves and arteries
BRAINSTEM_GRID_MM = 0.5   # the brainstem surface away from the nerve roots
ROOT_REACH_MM = 4.0       # nerve within this of the brainstem: its surface is measured on the fine grid
BOX_MARGIN_MM = 5.0


def _round(p: np.ndarray) -> list[float]:
    return [round(float(v), 3) for v in p]


class _Scene:
    """The label map as world-space point sets, shared by both sides."""

    def __init__(self, labels: np.ndarray, affine: np.ndarray, image: np.ndarray | None = None):
        self.labels, self.affine, self.image = labels, affine, image
        self.voxel_mm3 = float(abs(np.linalg.det(affine[:3, :3])))
        self.label_tolerance_mm = 0.5 * float(np.linalg.norm(affine[:3, :3], axis=0).max())
        labelled = np.flatnonzero(labels)  # one pass over the volume; structures are a small part of it
        values = labels.ravel()[labelled]
        self.points = {v: apply_affine(affine, np.stack(np.unravel_index(labelled[values == v], labels.shape), 1))
                       for v in Label if v != Label.BACKGROUND}
        brainstem = self.points[Label.BRAINSTEM]
        self.midline_x = float(brainstem[:, 0].mean()) if len(brainstem) else float(volume_centre_mm(labels.shape, affine)[0])
        # built here, not on first use: both sides are measured at once
        self._brainstem_tree = cKDTree(brainstem[:: max(1, len(brainstem) // 50_000)]) if len(brainstem) else None

    def on_side(self, value: int, side: str) -> np.ndarray:
        pts = self.points[value]
        return pts[(pts[:, 0] - self.midline_x) * SIDES[side] > 0]

    def nerve_on_side(self, value: int, side: str, reach_mm: float) -> np.ndarray:
        """Nerve points on one side within ``reach_mm`` of the brainstem (stray labels elsewhere are not this nerve)."""
        pts = self.on_side(value, side)
        if len(pts) == 0 or self._brainstem_tree is None:
            return pts
        return pts[self._brainstem_tree.query(pts, distance_upper_bound=reach_mm)[0] <= reach_mm]


def cleft_is_judged(gap_mm: float, label_tolerance_mm: float, cfg: dict) -> bool:
    """Whether the image decides contact for a modelled gap of ``gap_mm``: above ``contact_max_gap_mm`` and up to
    ``cleft_max_gap_mm`` or the labels' resolution (``label_tolerance_mm``), whichever is larger.

    Below the labels' resolution, touching and a thin CSF cleft give the same labels. A segmentation's labels
    can also fall short of surfaces that touch in the image (a U-Net leaves the boundary voxels between two
    dark structures to neither), leaving a gap of most of a voxel that the image shows is not there.
    """
    return cfg["contact_max_gap_mm"] < gap_mm <= max(label_tolerance_mm, cfg["cleft_max_gap_mm"])


def _touching(approach: Approach, cleft: float | None, cfg: dict) -> bool:
    """Contact: the modelled gap is at most ``contact_max_gap_mm``, or the image shows no CSF cleft between
    the two (``cleft`` is judged only where :func:`cleft_is_judged`, :mod:`nvc_mri.measure.cleft`)."""
    return approach.gap_mm <= cfg["contact_max_gap_mm"] or (cleft is not None and cleft < cfg["cleft_min_csf_fraction"])


def _relation(course: NerveCourse, approach: Approach, nerve_mask: np.ndarray, local: LocalLabels, vessel, cfg: dict,
              with_segment: bool, cleft: float | None, brainstem_sdf: DistanceField | None = None) -> ArteryRelation:
    contact = _touching(approach, cleft, cfg)
    normal = None
    if contact and brainstem_sdf is not None and in_root_exit_zone(approach.arc_mm, course.detachment_mm):
        normal = surface_normal(brainstem_sdf, course.point_at(approach.arc_mm))
    indentation, displacement = deformation(course, approach, nerve_mask, local, normal) if contact else (0.0, 0.0)
    deformed = contact and (indentation >= cfg["deformity_min_indentation_mm"] or displacement >= cfg["deformity_min_displacement_mm"])
    return ArteryRelation(
        vessel=vessel.name if vessel else "unknown", vessel_confidence=round(vessel.confidence, 2) if vessel else 0.0,
        vessel_reason=vessel.reason if vessel else "artery not in the vessel tree",
        min_gap_mm=0.0 if contact else round(approach.gap_mm, 3), voxel_gap_mm=round(approach.voxel_gap_mm, 3),
        model_gap_mm=round(approach.gap_mm, 3), csf_cleft_fraction=None if cleft is None else round(cleft, 3),
        indentation_mm=round(indentation, 3), displacement_mm=round(displacement, 3),
        contact_point_ras_mm=_round(approach.place_point_mm),
        distance_from_root_exit_mm=round(approach.place_arc_mm, 2) if with_segment else None,
        segment=nerve_segment(approach.place_arc_mm, course.detachment_mm) if with_segment else None,
        severity="deformity" if deformed else "contact" if contact else "none",
    )


def _conflict(relations: list[ArteryRelation], course: NerveCourse, cfg: dict, with_segment: bool) -> Conflict:
    if not relations:
        return Conflict(contact=False, nvc=False, severity="none", min_gap_mm=None, segment=None, distance_from_root_exit_mm=None,
                        vessel=None, vessel_confidence=None, contact_point_ras_mm=None, indentation_mm=0.0, displacement_mm=0.0)
    def in_rez(r: ArteryRelation) -> bool:
        return with_segment and r.distance_from_root_exit_mm is not None and in_root_exit_zone(r.distance_from_root_exit_mm, course.detachment_mm)

    # among equally close arteries (two in contact: gap 0), the one in the root exit zone is the conflict
    worst = min(relations, key=lambda r: (r.min_gap_mm, not in_rez(r), -r.indentation_mm))
    near = worst.min_gap_mm <= cfg["near_vessel_mm"]
    contact = worst.severity != "none"
    return Conflict(
        contact=contact, nvc=bool(contact and in_rez(worst)), severity=worst.severity, min_gap_mm=worst.min_gap_mm,
        segment=worst.segment if near else None, distance_from_root_exit_mm=worst.distance_from_root_exit_mm if near else None,
        vessel=worst.vessel if near else None, vessel_confidence=worst.vessel_confidence if near else None,
        contact_point_ras_mm=worst.contact_point_ras_mm if near else None,
        indentation_mm=worst.indentation_mm, displacement_mm=worst.displacement_mm,
    )


class _SideRegion:
    """One side's nerves and surroundings on the fine local grid, with the brainstem's signed distance.

    The brainstem's distance is computed finely only where the nerves run within
    ``ROOT_REACH_MM`` of it (all the landmarks need), from a coarse pass elsewhere.
    """

    def __init__(self, scene: _Scene, nerve_points: np.ndarray):
        lower, upper = nerve_points.min(0) - BOX_MARGIN_MM, nerve_points.max(0) + BOX_MARGIN_MM
        self.local = local_labels(scene.labels, scene.affine, lower, upper, MEASURE_GRID_MM)
        coarse = local_labels(scene.labels, scene.affine, lower, upper, BRAINSTEM_GRID_MM)
        smooth_mm = scene.label_tolerance_mm  # half the largest voxel side: the labels' steps
        coarse_sdf = distance_field(brainstem_for_landmarks(coarse.labels == Label.BRAINSTEM, coarse.spacing, smooth_mm) >= 0.5, coarse)
        near_root = nerve_points[coarse_sdf(nerve_points) <= ROOT_REACH_MM]
        self.brainstem_sdf = coarse_sdf
        if len(near_root):
            box = self.local.index(np.array([near_root.min(0) - 3.0, near_root.max(0) + 3.0]))
            crop = box_around(box, 0, self.local.labels.shape)
            occupancy = brainstem_for_landmarks(self.local.labels[crop] == Label.BRAINSTEM, self.local.spacing, smooth_mm)
            fine = SurfaceDistance(DistanceField(signed_distance_mm(occupancy >= 0.5, self.local.spacing),
                                                 np.asarray(self.local.grid.origin) + np.array([c.start for c in crop]) * self.local.spacing,
                                                 self.local.spacing), occupancy)
            self.brainstem_sdf = lambda p: np.where(np.isfinite(f := fine(p)), f, coarse_sdf(p))  # noqa: E731


def _nerve_relations(value: int, nerve_pts: np.ndarray, region: _SideRegion, scene: _Scene, vessels: VesselMap,
                     artery_ids: np.ndarray, cfg: dict, seg_cfg: dict) -> tuple[NerveCourse | None, list[ArteryRelation]]:
    """Trace one nerve and measure every artery within reach."""
    local, brainstem_sdf = region.local, region.brainstem_sdf
    voxel_axes = scene.affine[:3, :3]
    nerve_mask = local.labels == value
    course = nerve_course(nerve_mask, local, brainstem_sdf, seg_cfg["attach_tolerance_mm"], nerve_pts, scene.voxel_mm3, voxel_axes)
    if course is None:
        return None, []
    nerve_tree = cKDTree(local.world(np.argwhere(nerve_mask)))
    artery_local = np.argwhere(local.labels == Label.ARTERY)
    if len(artery_local) == 0:
        return course, []
    outside_brainstem = extra_axial(nerve_mask, local, brainstem_sdf, local.spacing / 2)  # its deformation is judged there
    artery_world = local.world(artery_local)
    reach_mm = cfg["near_vessel_mm"] + 1.0
    distance = nerve_tree.query(artery_world, distance_upper_bound=reach_mm + local.spacing)[0] - local.spacing
    if not np.isfinite(distance).any():  # no artery within reach: the nearest one is still measured
        distance = nerve_tree.query(artery_world)[0] - local.spacing
    local_ids = vessels.vessel_at(artery_world)
    reach = {int(v): float(distance[local_ids == v].min()) for v in np.unique(local_ids)}
    relations = []

    @functools.cache
    def vessel_pieces(name: str, vid: int) -> tuple[np.ndarray, cKDTree]:
        """Voxels of every piece named ``name`` (a thin branch breaks on thick slices); an unnamed piece is a vessel
        of its own. Built only when a piece is too small for a tube (rare)."""
        ids = [i for i, v in vessels.vessels.items() if v.name == name] if name != "unknown" else [vid]
        pieces = scene.points[Label.ARTERY][np.isin(artery_ids, ids)]
        return pieces, cKDTree(pieces)

    for vid in sorted(reach, key=reach.get):
        if reach[vid] > reach_mm and relations:
            break
        native = scene.points[Label.ARTERY][artery_ids == vid]
        if len(native) == 0:
            continue
        name = vessels.vessels[int(vid)].name if int(vid) in vessels.vessels else "unknown"
        approach = closest_approach(course, nerve_tree, artery_local[local_ids == vid], local, native, cKDTree(native), scene.voxel_mm3,
                                    scene.label_tolerance_mm, voxel_axes,
                                    functools.partial(vessel_pieces, name, int(vid) if name == "unknown" else 0))
        if approach is None:
            continue
        cleft = None
        if scene.image is not None and cleft_is_judged(approach.gap_mm, scene.label_tolerance_mm, cfg):
            cleft = csf_cleft_fraction(scene.image, scene.labels, scene.affine, course, approach, value)
        relations.append(_relation(course, approach, outside_brainstem, local, vessels.vessels.get(int(vid)), cfg, value == Label.FACIAL_NERVE,
                                   cleft, brainstem_sdf))
    relations.sort(key=lambda r: (r.min_gap_mm, -r.indentation_mm))
    return course, relations


def _side(side: str, scene: _Scene, vessels: VesselMap, artery_ids: np.ndarray, cfg: dict, seg_cfg: dict) -> tuple[SideFindings, NerveCourse | None]:
    facial = scene.nerve_on_side(Label.FACIAL_NERVE, side, cfg["nerve_reach_mm"])
    if len(scene.points[Label.BRAINSTEM]) == 0:
        reason = "no brainstem in the label map"
    elif len(facial) * scene.voxel_mm3 < 2.0:
        reason = "facial nerve not found on this side"
    else:
        reason = None
    course, relations = None, []
    cn8 = scene.nerve_on_side(Label.VESTIBULOCOCHLEAR_NERVE, side, cfg["nerve_reach_mm"])
    if reason is None:
        region = _SideRegion(scene, np.vstack([facial, cn8]))
        course, relations = _nerve_relations(Label.FACIAL_NERVE, facial, region, scene, vessels, artery_ids, cfg, seg_cfg)
        if course is None:
            reason = "facial nerve could not be traced"
    cn8_conflict = unknown_conflict()
    if reason is None and len(cn8) * scene.voxel_mm3 >= 2.0:
        cn8_course, cn8_relations = _nerve_relations(Label.VESTIBULOCOCHLEAR_NERVE, cn8, region, scene, vessels, artery_ids, cfg, seg_cfg)
        if cn8_course is not None:
            cn8_conflict = _conflict(cn8_relations, cn8_course, cfg, with_segment=False)
    if reason is not None:
        return SideFindings(side=side, status="unknown", reason=reason, facial_nerve=CourseFindings(traced=False),
                            nvc=unknown_conflict(), vestibulocochlear=cn8_conflict), None
    near = [r for r in relations if r.min_gap_mm <= cfg["near_vessel_mm"]]
    nerve = CourseFindings(
        traced=True, radius_mm=round(course.radius_mm, 3), length_mm=round(course.length_mm, 2),
        root_exit_point_ras_mm=_round(course.root_exit_point), root_detachment_point_ras_mm=_round(course.root_detachment_point),
        attached_length_mm=round(course.detachment_mm, 2), root_exit_zone_length_mm=round(course.detachment_mm + seg_cfg["transition_zone_mm"], 2))
    return SideFindings(side=side, status="measured", facial_nerve=nerve, nvc=_conflict(relations, course, cfg, True), arteries=near,
                        vestibulocochlear=cn8_conflict), course


def _lesions(scene: _Scene, courses: dict[str, NerveCourse | None], image: np.ndarray | None, cfg: dict) -> list[LesionFindings]:
    out = []
    components = lesion_components(scene.labels == Label.LESION, scene.affine, cfg["lesion_min_volume_mm3"])
    if not components:
        return out
    brainstem_index = np.argwhere(scene.labels == Label.BRAINSTEM)
    brainstem_level = float(np.median(image[tuple(brainstem_index.T)])) if image is not None and len(brainstem_index) else None
    spacing = np.linalg.norm(scene.affine[:3, :3], axis=0)
    if all(courses.get(s) is not None for s in SIDES):
        right, left = courses["right"].root_exit_point, courses["left"].root_exit_point
        plane = MirrorPlane((right + left) / 2, (right - left) / np.linalg.norm(right - left))
    else:
        plane = MirrorPlane(np.array([scene.midline_x, 0.0, 0.0]), np.array([1.0, 0.0, 0.0]))
    for index in components:
        centroid = apply_affine(scene.affine, index).mean(0)
        side = "right" if centroid[0] >= scene.midline_x else "left"
        course = courses.get(side)
        canal = canal_from_nerve(course.points if course is not None else None, cfg["iac_length_mm"])
        m = measure_lesion(index, scene.affine, side, canal, brainstem_index, scene.on_side(Label.FACIAL_NERVE, side), plane, cfg)
        signal = lesion_signal(image, scene.labels, index, spacing, brainstem_level) if image is not None else None
        touch_mm = 2.0 * scene.label_tolerance_mm
        nerve_ends_in_it = course is not None and bool(cKDTree(m.voxels).query(course.points[-1], distance_upper_bound=touch_mm)[0] <= touch_mm)
        kind, basis = type_guess(m, signal, nerve_ends_in_it, cfg)
        if canal is None:
            basis += "; internal auditory canal not located (facial nerve not traced), canal part unknown"
        out.append(LesionFindings(
            side=side, volume_mm3=round(m.volume_mm3, 1), max_diameter_mm=round(m.max_diameter_mm, 2), centroid_ras_mm=_round(m.centroid_ras_mm),
            intracanalicular=m.intracanalicular_mm3 > 1.0, cpa_extension=m.cisternal_mm3 >= cfg["cpa_extension_min_mm3"],
            intracanalicular_volume_mm3=round(m.intracanalicular_mm3, 1), contacts_brainstem=m.contacts_brainstem,
            brainstem_compression_mm=round(m.brainstem_compression_mm, 2), touches_facial_nerve=m.touches_facial_nerve,
            koos_grade=koos_grade(m, cfg) if kind == "vestibular_schwannoma" else None, type_guess=kind, type_basis=basis))
    return out


def brainstem_box(labels: np.ndarray, affine: np.ndarray, margin_mm: float) -> tuple[slice, slice, slice]:
    """Index box of everything within ``margin_mm`` (world mm) of the brainstem's bounding box.

    The whole array when there is no brainstem.
    """
    index = np.argwhere(labels == Label.BRAINSTEM)
    if len(index) == 0:
        return tuple(slice(0, n) for n in labels.shape)
    world = apply_affine(affine, index)
    lower, upper = world.min(0) - margin_mm, world.max(0) + margin_mm
    corners = np.array([[x, y, z] for x in (lower[0], upper[0]) for y in (lower[1], upper[1]) for z in (lower[2], upper[2])])
    corner_index = (corners - affine[:3, 3]) @ np.linalg.inv(affine[:3, :3]).T
    start = np.clip(np.floor(corner_index.min(0)).astype(int), 0, labels.shape)
    stop = np.clip(np.ceil(corner_index.max(0)).astype(int) + 1, 0, labels.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(start, stop))


def measure(labels: Any, affine: np.ndarray | None = None, image: np.ndarray | None = None) -> Findings:
    """Measure neurovascular contact on each side and the CPA lesions of a label map.

    Parameters
    ----------
    labels : Volume, nibabel image or ndarray of int
        Label map (``nvc_mri.labels.Label`` values). A ``Volume`` or a nibabel image (such as
        ``Analysis.labels``, or a ``labels.nii.gz`` written by the toolkit) carries its own affine.
    affine : ndarray (4, 4), optional
        Voxel -> RAS+ mm, required with a plain array.
    image : ndarray, optional
        The T2 image on the same grid: it tells touching from a CSF cleft thinner than the labels
        resolve (:mod:`nvc_mri.measure.cleft`) and suggests a lesion's type from its signal.

    Returns
    -------
    Findings
        Per side (patient's left and right): facial-nerve course, the worst vessel relation
        (``nvc``), every artery within the near-vessel distance, CN VIII relation; lesions.
        An empty or nerve-less map gives ``status='unknown'`` with a reason, never a contact.
    """
    t0 = time.perf_counter()
    if affine is None:
        if hasattr(labels, "dataobj") and hasattr(labels, "affine"):  # nibabel
            labels, affine = np.asanyarray(labels.dataobj), labels.affine
        elif hasattr(labels, "array") and hasattr(labels, "affine"):  # Volume
            labels, affine = labels.array, labels.affine
        else:
            raise ValueError("a label array needs its affine (voxel -> RAS+ mm); pass measure(labels, affine)")
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"labels must be 3D, got shape {labels.shape}")
    labels = as_label_map(labels)
    cfg, seg_cfg = load_config("contact.yaml"), load_config("nerve_segments.yaml")
    affine = np.asarray(affine, float)
    if affine.shape != (4, 4) or not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise ValueError(f"affine must be a 4x4 voxel -> RAS+ mm matrix with non-zero voxel sizes, got shape {affine.shape}")
    if image is not None and np.shape(image) != labels.shape:
        # the image is read at the labels' voxel indices: another grid would give the signal of other places
        raise ValueError(f"image shape {np.shape(image)} differs from the labels' {labels.shape}: they must share one grid")
    box = brainstem_box(labels, affine, cfg["measure_margin_mm"])  # bounds the work on stray labels far away
    labels, image = labels[box], None if image is None else np.asarray(image)[box]
    affine = affine.copy()
    affine[:3, 3] = affine[:3, :3] @ [b.start for b in box] + affine[:3, 3]
    scene = _Scene(labels, np.asarray(affine, float), image)
    vessels = name_vessels(labels, affine, int(Label.ARTERY), cfg)
    artery_ids = vessels.vessel_at(scene.points[Label.ARTERY]) if len(scene.points[Label.ARTERY]) else np.zeros(0, int)
    t_vessels = time.perf_counter() - t0
    # the two sides share nothing they change; NumPy, SciPy and torch release the GIL for much of the work
    with ThreadPoolExecutor(max_workers=2) as pool:
        measured = dict(zip(SIDES, pool.map(lambda side: _side(side, scene, vessels, artery_ids, cfg, seg_cfg), SIDES)))
    sides = {side: findings for side, (findings, _) in measured.items()}
    courses = {side: course for side, (_, course) in measured.items()}
    t_sides = time.perf_counter() - t0 - t_vessels
    lesions = _lesions(scene, courses, image, cfg)
    warnings = [f"{s}: {f.reason}" for s, f in sides.items() if f.reason]
    timings = {"vessels": round(t_vessels, 3), "sides": round(t_sides, 3), "total": round(time.perf_counter() - t0, 3)}
    return Findings(sides=sides, lesions=lesions, warnings=warnings, timings_s=timings)
