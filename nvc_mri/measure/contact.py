"""How close an artery comes to a nerve: surface gap with sub-voxel refinement, place, indentation.

The voxel answer (signed distances on the fine local grid) finds where the artery comes
closest; the gap is then refined by modelling both structures as tubes there: the nerve by
its centreline and radius, the artery by an axis fitted to its voxels within ``LOCAL_MM`` of the
closest approach (a parabola: arteries bend) and a radius from its volume per length.
Gap = axis distance - both radii; a negative value is the artery sinking into the nerve's
outline (indentation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from nvc_mri.measure.fields import LocalLabels, box_around, distance_field
from nvc_mri.measure.nerve import NerveCourse, label_shrinkage_mm, voxel_graph

LOCAL_MM = 2.0  # half-length of the artery stretch modelled as a tube around the closest approach


@dataclass(frozen=True)
class ArteryTube:
    """A short stretch of artery around its closest approach (RAS+ mm).

    The axis is a parabola ``axis(t) = coef[0] + coef[1] t + coef[2] t**2`` over ``t`` in
    ``t_range`` (mm along the stretch's chord): an artery touching a nerve bends towards it, and a
    straight axis through the stretch's centroid would sit too far from the nerve.
    """

    coef: np.ndarray
    t_range: tuple[float, float]
    radius_mm: float

    def axis(self, step_mm: float = 0.02, beyond_mm: float = 1.0) -> np.ndarray:
        """Points along the axis, ``step_mm`` apart in ``t``, extended ``beyond_mm`` beyond the voxels."""
        t = np.arange(self.t_range[0] - beyond_mm, self.t_range[1] + beyond_mm + step_mm, step_mm)
        return self.coef[0] + np.outer(t, self.coef[1]) + np.outer(t * t, self.coef[2])

    def foot(self, points: np.ndarray, beyond_mm: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Closest axis point to each of ``points`` (n, 3) and the distance to it (mm), the axis extended ``beyond_mm``
        beyond the voxels it was fitted to."""
        axis = self.axis(beyond_mm=beyond_mm)
        distance, index = cKDTree(axis).query(np.atleast_2d(points))
        return axis[index], distance


@dataclass(frozen=True)
class Approach:
    """One artery's closest approach to a nerve."""

    voxel_gap_mm: float          # from the fine-grid signed distances (quantised)
    gap_mm: float                # refined, >= 0
    indentation_mm: float        # >= 0
    arc_mm: float                # where the artery comes closest (presses deepest), from the root exit point
    nerve_point_mm: np.ndarray   # nerve surface point facing the artery there, RAS+
    artery_point_mm: np.ndarray  # artery voxel closest to the nerve, RAS+
    artery: ArteryTube | None
    place_arc_mm: float          # where the contact is reported: the middle of the stretch where the labels touch, else arc_mm
    place_point_mm: np.ndarray   # nerve surface point facing the artery at place_arc_mm, RAS+


def _parabola(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares parabola through ``points`` along their principal axis: coefficients (3, 3) and ``t`` per point."""
    centre = points.mean(0)
    direction = np.linalg.svd(points - centre, full_matrices=False)[2][0]
    t = (points - centre) @ direction
    degree = 2 if len(points) >= 20 and np.ptp(t) >= 1.5 else 1
    coef = np.zeros((3, 3))
    coef[: degree + 1] = np.linalg.lstsq(np.vander(t, degree + 1, increasing=True), points, rcond=None)[0]
    return coef, t


def _along_the_vessel(points: np.ndarray, near_mm: np.ndarray, reach_mm: float, voxel_mm3: float,
                      voxel_axes_mm: np.ndarray | None) -> np.ndarray:
    """The voxels of ``points`` (acquisition grid, voxel edge vectors ``voxel_axes_mm``) within ``reach_mm`` of the
    one nearest ``near_mm``, measured through the vessel's own voxels (26-neighbours): an artery looping back close
    by, or passing a second time, lies near in space but far along the vessel, and is not more of this stretch's girth."""
    axes = np.asarray(voxel_axes_mm, float) if voxel_axes_mm is not None else np.eye(3) * np.cbrt(voxel_mm3)
    index = np.rint(np.linalg.solve(axes, (points - points[0]).T).T).astype(np.int64)
    start = int(np.argmin(np.linalg.norm(points - near_mm, axis=1)))
    return points[dijkstra(voxel_graph(index, axes), directed=False, indices=start, limit=reach_mm) <= reach_mm]


def local_tube(voxels_mm: np.ndarray, tree: cKDTree, voxel_mm3: float, near_mm: np.ndarray,
               voxel_axes_mm: np.ndarray | None = None, along_vessel: bool = True) -> ArteryTube | None:
    """Tube with a parabolic axis fitted to an artery's voxels (acquisition grid) around ``near_mm``.

    ``tree`` is the KD-tree of ``voxels_mm``; the radius comes from the volume per length of the stretch,
    corrected for the labels' shrinkage on the grid with voxel edges ``voxel_axes_mm`` (:func:`label_shrinkage_mm`).
    The stretch is measured through the vessel's voxels (:func:`_along_the_vessel`), or in space when
    ``along_vessel`` is False: for a vessel's pieces broken apart on the labels, where no path joins them.
    """
    idx = tree.query_ball_point(near_mm, LOCAL_MM + 1.5)
    if len(idx) < 6:
        return None
    pts = voxels_mm[idx]
    if along_vessel:
        pts = _along_the_vessel(pts, near_mm, LOCAL_MM + 1.5, voxel_mm3, voxel_axes_mm)
    if len(pts) < 6:
        return None
    centre = pts.mean(0)
    direction = np.linalg.svd(pts - centre, full_matrices=False)[2][0]
    along = (pts - near_mm) @ direction
    radial = np.linalg.norm((pts - near_mm) - np.outer(along, direction), axis=1)
    seg = pts[(np.abs(along) <= LOCAL_MM) & (radial <= 3.5)]
    if len(seg) < 6:
        return None
    coef, t = _parabola(seg)
    # drop voxels of another limb of a looping artery (far from the fitted axis), refit once
    tube = ArteryTube(coef, (float(t.min()), float(t.max())), 0.0)
    keep = tube.foot(seg)[1] <= 2.0 + np.cbrt(voxel_mm3)
    if 6 <= keep.sum() < len(seg):
        seg = seg[keep]
        coef, t = _parabola(seg)
    samples = np.linspace(t.min(), t.max(), 50)
    axis = coef[0] + np.outer(samples, coef[1]) + np.outer(samples**2, coef[2])
    length = float(np.linalg.norm(np.diff(axis, axis=0), axis=1).sum()) + np.cbrt(voxel_mm3)
    length = min(length, 2 * LOCAL_MM + np.cbrt(voxel_mm3))
    radius = float(np.sqrt(len(seg) * voxel_mm3 / (np.pi * max(length, 1e-3))))
    tangents = coef[1] + np.outer(2 * samples, coef[2])
    tangents /= np.maximum(np.linalg.norm(tangents, axis=1, keepdims=True), 1e-9)
    return ArteryTube(coef, (float(t.min()), float(t.max())), radius + label_shrinkage_mm(radius, tangents, voxel_axes_mm))


def closest_approach(course: NerveCourse, nerve_tree: cKDTree, artery_index: np.ndarray, local: LocalLabels,
                     artery_voxels_mm: np.ndarray, tree: cKDTree, voxel_mm3: float, label_tolerance_mm: float,
                     voxel_axes_mm: np.ndarray | None = None,
                     vessel_pieces: Callable[[], tuple[np.ndarray, cKDTree]] | None = None) -> Approach | None:
    """Closest approach of one artery (voxel indices on the local grid) to a nerve (KD-tree of its voxel centres).

    The refined gap stays within ``label_tolerance_mm`` (half the largest voxel side: how far a
    label's edge can lie from the true surface) above the gap between the labels, and as far below
    it unless the labels touch: the tube model refines the labels, it does not overrule them.

    ``artery_voxels_mm`` (KD-tree ``tree``) are the artery's voxels on the acquisition grid; the artery is
    modelled there as a tube with a parabolic axis, the nerve by its centreline and radius. Where they are too
    few for a tube (a small piece of a branch broken on the labels), ``vessel_pieces()`` (the voxels of every piece
    of the same named vessel, and their KD-tree; called only then) carry it.
    """
    if len(artery_index) == 0:
        return None
    d = nerve_tree.query(local.world(artery_index))[0]
    nearest = int(np.argmin(d))
    voxel_gap = max(float(d[nearest]) - local.spacing, 0.0)  # both surfaces lie half a voxel beyond the centres
    artery_point = local.world(artery_index[nearest])
    tube = local_tube(artery_voxels_mm, tree, voxel_mm3, artery_point, voxel_axes_mm)
    if tube is None and vessel_pieces is not None:
        tube = local_tube(*vessel_pieces(), voxel_mm3, artery_point, voxel_axes_mm, along_vessel=False)
    if tube is None:
        i = int(np.argmin(np.linalg.norm(course.points - artery_point, axis=1)))
        point = _facing(course, i, artery_point)
        return Approach(voxel_gap, voxel_gap, 0.0, float(course.arc_mm[i]), point, artery_point, None, float(course.arc_mm[i]), point)
    # the axis only where its voxels are: beyond them a parabola's curve is extrapolated, and where the labels end (a
    # branch piece broken off near the nerve) it may bend on towards the nerve where no artery is
    feet, axis_distance = tube.foot(course.points, beyond_mm=0.0)
    # only the stretch of the nerve facing this piece of artery
    window = np.linalg.norm(course.points - artery_point, axis=1) <= LOCAL_MM + course.radius_mm + tube.radius_mm + 2.0
    if not window.any():
        window[:] = True
    i = int(np.flatnonzero(window)[np.argmin(axis_distance[window])])
    gap = float(axis_distance[i]) - course.radius_mm - tube.radius_mm
    lowest = voxel_gap - label_tolerance_mm if voxel_gap > label_tolerance_mm else -np.inf
    gap = float(np.clip(gap, lowest, voxel_gap + label_tolerance_mm))
    place = i if voxel_gap > 0 else touching_stretch_middle(course, local.world(artery_index[d <= local.spacing * 1.01]))
    # the middle of a long touching stretch may lie beyond the tube's voxels: it faces the axis as extended there
    return Approach(voxel_gap, max(gap, 0.0), max(-gap, 0.0), float(course.arc_mm[i]), _facing(course, i, feet[i]), artery_point, tube,
                    float(course.arc_mm[place]), _facing(course, place, tube.foot(course.points[place])[0][0]))


def _facing(course: NerveCourse, i: int, artery_mm: np.ndarray) -> np.ndarray:
    """The nerve's surface point at centreline point ``i`` facing ``artery_mm`` (RAS+ mm)."""
    towards = artery_mm - course.points[i]
    return course.points[i] + towards / max(np.linalg.norm(towards), 1e-9) * course.radius_mm


def touching_stretch_middle(course: NerveCourse, touching_mm: np.ndarray) -> int:
    """Centreline index of the middle of the stretch that the artery voxels ``touching_mm`` (RAS+ mm) lie against.

    Where the labels touch, the closest approach of the fitted axes wanders along a long contact (a
    vertebral artery lying along the nerve) with the fit's noise; the middle of the touching stretch
    (the median arc length of the centreline points nearest the touching voxels) is steadier.
    """
    arcs = course.arc_mm[cKDTree(course.points).query(touching_mm)[1]]
    return int(np.argmin(np.abs(course.arc_mm - float(np.median(arcs)))))


def course_baseline(points: np.ndarray, arc_mm: np.ndarray, s_mm: float, exclude_mm: float, fit_mm: float) -> np.ndarray | None:
    """Where the centreline would be at ``s_mm`` judged from its course ``exclude_mm``-``fit_mm`` away (quadratic fit)."""
    distance = np.abs(arc_mm - s_mm)
    use = (distance >= exclude_mm) & (distance <= fit_mm)
    if use.sum() < 6 or np.ptp(arc_mm[use]) < exclude_mm:
        return None
    degree = 2 if (arc_mm[use] < s_mm).any() and (arc_mm[use] > s_mm).any() else 1
    return np.array([np.polyval(np.polyfit(arc_mm[use] - s_mm, points[use, k], degree), 0.0) for k in range(3)])


def far_side_indentation(course: NerveCourse, approach: Approach, nerve_mask: np.ndarray, local: LocalLabels) -> float | None:
    """Indentation (mm) judged from the nerve's far side, which an artery pressing on the near side leaves in place.

    Rays from the artery's axis through the nerve find the nerve's far surface (zero crossing of its
    signed distance); the nerve axis lies one radius inside it. Several rays along the nerve are averaged.
    """
    tube = approach.artery
    if tube is None:
        return None
    reach = tube.radius_mm + 3 * course.radius_mm + 1.5
    corners = local.index(np.array([approach.nerve_point_mm - reach, approach.nerve_point_mm + reach]))
    nerve_sdf = distance_field(nerve_mask, local, box_around(corners, 2, nerve_mask.shape))
    tangent = course.tangent_at(approach.arc_mm)
    estimates = []
    for shift in (-0.5, -0.25, 0.0, 0.25, 0.5):
        centre = course.point_at(approach.arc_mm + shift)
        foot = tube.foot(centre)[0][0]
        towards_nerve = centre - foot
        towards_nerve -= (towards_nerve @ tangent) * tangent
        if np.linalg.norm(towards_nerve) < 1e-6:
            continue
        towards_nerve /= np.linalg.norm(towards_nerve)
        t = np.arange(0.0, tube.radius_mm + 3 * course.radius_mm + 1.0, 0.05)
        values = nerve_sdf(foot + np.outer(t, towards_nerve))
        inside = np.flatnonzero(values <= 0)
        if len(inside) == 0 or inside[-1] + 1 >= len(t):
            continue
        k = inside[-1]
        far = t[k] + 0.05 * values[k] / (values[k] - values[k + 1]) + course.label_shrinkage_mm  # labels' edge -> surface
        estimates.append(far - course.radius_mm)  # artery axis -> nerve axis
    if not estimates:
        return None
    axis_distance = float(np.median(estimates))
    return max(course.radius_mm + tube.radius_mm - axis_distance, 0.0)


def deformation(course: NerveCourse, approach: Approach, nerve_mask: np.ndarray, local: LocalLabels,
                brainstem_normal: np.ndarray | None = None) -> tuple[float, float]:
    """Indentation and displacement (mm) of the nerve by one artery in contact.

    Indentation: the mean of two estimates that place the nerve's axis differently, the tube model's
    (the nerve's centreline, :func:`closest_approach`) and :func:`far_side_indentation`'s (one radius
    inside its far surface); each alone is off by about as much as the deformity threshold, the mean
    less.

    Displacement: how far the nerve's axis at the contact lies, away from the artery, off the course
    the nerve follows 4-8 mm to either side. In the root exit zone (``brainstem_normal`` given: the
    surface's outward unit normal there) only the push along the brainstem surface counts: the attached
    nerve and its root at the exit point can move only along it, and through the transition zone the
    nerve's course bends off the surface where it detaches, a bend that a baseline through the course
    to either side does not follow and that is not displacement.
    """
    far_side = far_side_indentation(course, approach, nerve_mask, local)
    if far_side is None:
        return approach.indentation_mm, 0.0
    indentation = (far_side + approach.indentation_mm) / 2
    far_axis = course_baseline(course.points, course.arc_mm, approach.arc_mm, 4.0, 8.0)
    if far_axis is None:
        return indentation, 0.0
    axis = course.point_at(approach.arc_mm)
    tangent = course.tangent_at(approach.arc_mm)
    away = axis - approach.artery_point_mm
    away -= (away @ tangent) * tangent  # across the nerve: the artery's nearest point may lie up or down the nerve
    away /= max(np.linalg.norm(away), 1e-9)
    shift = axis - far_axis
    if brainstem_normal is not None:
        shift = shift - (shift @ brainstem_normal) * brainstem_normal
    return indentation, max(float(shift @ away), 0.0)
