"""The facial nerve's course from a label mask: centreline, radius, root exit and detachment points.

Arc length ``s`` (mm) runs along the centreline from the root exit point (REP, where the
centreline leaves the brainstem surface). The attached segment is the first stretch where
the nerve surface stays within ``attach_tolerance_mm`` of the brainstem surface; it ends at
the root detachment point (RDP). See :mod:`nvc_mri.segments` for the segment names.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import make_smoothing_spline
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from nvc_mri.measure.fields import DistanceField, LocalLabels, box_around

STEP_MM = 0.1


@dataclass(frozen=True)
class NerveCourse:
    """A nerve's centreline and landmarks, RAS+ mm.

    Attributes
    ----------
    points : ndarray (N, 3)
        Centreline from the medial (brainstem) end outwards, every ``STEP_MM``.
    arc_mm : ndarray (N,)
        Arc length from the root exit point (negative inside the brainstem).
    radius_mm : float
        Radius from the nerve's volume per length.
    detachment_mm : float
        Arc length of the root detachment point (the attached segment's length).
    label_shrinkage_mm : float
        How far inside the nerve's surface the surface of its labels lies (:func:`label_shrinkage_mm`;
        ``radius_mm`` already includes it).
    """

    points: np.ndarray
    arc_mm: np.ndarray
    radius_mm: float
    detachment_mm: float
    label_shrinkage_mm: float = 0.0

    def point_at(self, s_mm: float) -> np.ndarray:
        return np.array([np.interp(s_mm, self.arc_mm, self.points[:, k]) for k in range(3)])

    def tangent_at(self, s_mm: float, half_span_mm: float = 0.5) -> np.ndarray:
        """Unit vector along the centreline at arc length ``s_mm`` (outwards), over ``half_span_mm`` either side."""
        i = int(np.argmin(np.abs(self.arc_mm - s_mm)))
        k = max(1, round(half_span_mm / STEP_MM))
        tangent = self.points[min(i + k, len(self.points) - 1)] - self.points[max(i - k, 0)]
        return tangent / max(float(np.linalg.norm(tangent)), 1e-9)

    @property
    def root_exit_point(self) -> np.ndarray:
        return self.point_at(0.0)

    @property
    def root_detachment_point(self) -> np.ndarray:
        return self.point_at(self.detachment_mm)

    @property
    def length_mm(self) -> float:
        return float(self.arc_mm[-1] - self.arc_mm[0])


def voxel_graph(index: np.ndarray, spacing: float | np.ndarray):
    """Sparse 26-neighbour graph of voxels ``(N, 3)`` with mm edge lengths: ``spacing`` is the voxel side (mm) of
    an isotropic grid, or the voxel edge vectors (columns of a (3, 3) affine part, mm) of any other."""
    edges = np.asarray(spacing, float)
    lower = index.min(0) - 1
    shifted = index - lower
    lookup = np.full(shifted.max(0) + 2, -1, np.int64)
    lookup[tuple(shifted.T)] = np.arange(len(index))
    rows, cols, weights = [], [], []
    for d in np.ndindex(3, 3, 3):
        d = np.array(d) - 1
        if tuple(d) <= (0, 0, 0):
            continue  # each undirected edge once
        j = lookup[tuple((shifted + d).T)]
        ok = j >= 0
        rows.append(np.flatnonzero(ok)); cols.append(j[ok])
        weights.append(np.full(ok.sum(), float(np.linalg.norm(edges @ d if edges.ndim == 2 else edges * d))))
    n = len(index)
    return coo_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)).tocsr()


def _geodesic(graph, source: int) -> np.ndarray:
    return dijkstra(graph, directed=False, indices=source)


def centreline(mask: np.ndarray, local: LocalLabels, medial_field: DistanceField, bin_mm: float = 0.5,
               connected: np.ndarray | None = None) -> np.ndarray | None:
    """Ordered centreline points (RAS+ mm, every ``STEP_MM``) of a tubular mask, medial end first.

    The two ends are found by a double geodesic sweep; the medial end is the one with the lower
    ``medial_field`` (the brainstem's signed distance). Voxels are binned by geodesic distance
    from that end; bin centroids, smoothed by a spline, give a sub-voxel centreline.
    ``connected`` (a bridged superset of ``mask``) carries the geodesics when the mask is in pieces;
    only ``mask`` voxels are binned.
    """
    connected = mask if connected is None else connected
    index = np.argwhere(connected)
    own = mask[tuple(index.T)]
    if len(index) < 8:
        return None
    graph = voxel_graph(index, local.spacing)
    far = _geodesic(graph, 0)
    a = int(np.argmax(np.where(np.isfinite(far), far, -1)))
    from_a = _geodesic(graph, a)
    b = int(np.argmax(np.where(np.isfinite(from_a), from_a, -1)))
    ends = [a, b]
    medial = min(ends, key=lambda e: float(medial_field(local.world(index[e]))[0]))
    g = from_a if medial == a else _geodesic(graph, b)
    reachable = np.isfinite(g) & own
    bins = np.floor(g[reachable] / bin_mm).astype(int)
    world = local.world(index[reachable])
    counts = np.bincount(bins)
    keep = counts > 0
    centroids = np.stack([np.bincount(bins, world[:, k])[keep] / counts[keep] for k in range(3)], 1)
    chord = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(centroids, axis=0), axis=1))]
    chord, unique = np.unique(chord, return_index=True)
    centroids = centroids[unique]
    if len(centroids) < 5:  # the smoothing spline needs five points: a speck, not a nerve
        return None
    fine = np.arange(0.0, chord[-1], STEP_MM / 2)
    smooth = np.stack([make_smoothing_spline(chord, centroids[:, k], lam=0.5)(fine) for k in range(3)], 1)
    # even spacing along the smoothed curve
    s = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(smooth, axis=0), axis=1))]
    even = np.arange(0.0, s[-1], STEP_MM)
    return np.stack([np.interp(even, s, smooth[:, k]) for k in range(3)], 1)


def label_shrinkage_mm(radius_mm: float, directions: np.ndarray, voxel_axes_mm: np.ndarray | None) -> float:
    """How far inside a thin tube's true surface the surface of its voxel labels lies (mm).

    A voxel is labelled when most of it lies inside the tube: the label's edge is the half level of
    the shape averaged over a voxel, which on a surface curved with radius ``radius_mm`` lies
    ``sigma**2 / (2 * radius_mm)`` inside, ``sigma**2`` being the voxel's variance across the tube
    (side**2 / 12 along each voxel axis, averaged over the directions across the tube). For a
    0.6 mm nerve on 0.5 x 0.5 x 0.8 mm voxels that is about 0.03 mm, a 6% smaller radius.

    Parameters
    ----------
    radius_mm : float
        The tube's radius as its labels give it.
    directions : ndarray (n, 3)
        Unit vectors along the tube (its tangents).
    voxel_axes_mm : ndarray (3, 3) or None
        The label grid's voxel edge vectors as columns (the affine's 3x3 part); None gives 0.
    """
    if voxel_axes_mm is None or radius_mm <= 0:
        return 0.0
    covariance = voxel_axes_mm @ voxel_axes_mm.T / 12.0
    along = np.einsum("ni,ij,nj->n", directions, covariance, directions)
    across = float(np.mean(np.trace(covariance) - along)) / 2.0
    return across / (2.0 * radius_mm)


def tube_radius(voxels_mm: np.ndarray, voxel_mm3: float, points: np.ndarray, trim_mm: float = 1.0) -> float:
    """Radius (mm) of a tube from its volume per unit length, leaving ``trim_mm`` at each end.

    Parameters
    ----------
    voxels_mm : ndarray (M, 3)
        RAS+ mm of the tube's voxels on the acquisition grid (counting the original voxels
        avoids the shrinkage of thin shapes that re-thresholding an interpolated mask causes).
    voxel_mm3 : float
        Volume of one of those voxels.
    points : ndarray (N, 3)
        The tube's centreline.

    The labels' radius: add :func:`label_shrinkage_mm` for the tube's.
    """
    from scipy.spatial import cKDTree

    s = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))]
    length = float(s[-1])
    if len(voxels_mm) == 0 or length <= 0:
        return 0.0
    if length <= 2 * trim_mm + 1.0:
        trim_mm = 0.0
    distance, nearest = cKDTree(points).query(voxels_mm)
    inner = (s[nearest] >= trim_mm) & (s[nearest] <= length - trim_mm) & (distance < 3.0)
    return float(np.sqrt(inner.sum() * voxel_mm3 / (np.pi * (length - 2 * trim_mm))))


def tangents_of(points: np.ndarray) -> np.ndarray:
    """Unit vectors along a polyline's segments."""
    tangents = np.diff(points, axis=0)
    return tangents / np.maximum(np.linalg.norm(tangents, axis=1, keepdims=True), 1e-9)


def connected_tube(mask: np.ndarray, spacing: float, bridge_mm: float = 1.5) -> np.ndarray | None:
    """The largest piece of a thin tube whose label broke into pieces (thick slices), bridged.

    Pieces closer than ``2 * bridge_mm`` join; the returned mask is the dilated piece
    (its centreline is that of the tube; dilation is symmetric).
    """
    from nvc_mri.measure.fields import dilate_mm, largest_components

    index = np.argwhere(mask)
    if len(index) == 0:
        return None
    box = box_around(index, int(np.ceil(bridge_mm / spacing)) + 1, mask.shape)
    pieces = largest_components(dilate_mm(mask[box], bridge_mm, spacing), 1)
    if not pieces:
        return None
    out = np.zeros(mask.shape, bool)
    out[box] = pieces[0]
    return out


def brainstem_for_landmarks(brainstem: np.ndarray, spacing: float, smooth_mm: float, close_mm: float = 1.0) -> np.ndarray:
    """Occupancy (float, surface at 0.5) of the brainstem with the notch its own nerve roots make filled in
    (morphological closing) and the steps of its labels' voxels smoothed away by a Gaussian of ``smooth_mm``
    (half the label grid's largest voxel side; :func:`~nvc_mri.measure.fields.smooth_occupancy`): the nerve's gap
    to it decides where the nerve detaches."""
    from nvc_mri.measure.fields import close_mm as closing
    from nvc_mri.measure.fields import smooth_occupancy

    return smooth_occupancy(closing(brainstem, close_mm, spacing), smooth_mm, spacing)


def extra_axial(mask: np.ndarray, local: LocalLabels, brainstem_sdf: DistanceField, depth_mm: float) -> np.ndarray:
    """The nerve's labels outside the brainstem: ``mask`` less its voxels more than ``depth_mm`` inside it.

    A nerve label may carry on into the brainstem along its root (the phantom's labels do); an artery
    pressing on the nerve at its root exit point would then seem to leave the nerve's far side in place
    deep inside the brainstem. The nerve itself lies on the brainstem's surface, within the labels'
    resolution of it.
    """
    index = np.argwhere(mask)
    deep = brainstem_sdf(local.world(index)) < -depth_mm
    if not deep.any():
        return mask
    out = mask.copy()
    out[tuple(index[deep].T)] = False
    return out


def nerve_course(mask: np.ndarray, local: LocalLabels, brainstem_sdf: DistanceField, attach_tolerance_mm: float,
                 voxels_mm: np.ndarray, voxel_mm3: float, voxel_axes_mm: np.ndarray | None = None) -> NerveCourse | None:
    """Centreline, radius, REP and RDP of one nerve on a local grid (None when not traceable).

    ``voxels_mm``, ``voxel_mm3`` and ``voxel_axes_mm``: the nerve's voxels on the acquisition grid, for the radius.
    """
    tube = connected_tube(mask, local.spacing)
    points = centreline(mask & tube, local, brainstem_sdf, connected=tube) if tube is not None else None
    if points is None:
        return None
    labels_radius = tube_radius(voxels_mm, voxel_mm3, points)
    shrinkage = label_shrinkage_mm(labels_radius, tangents_of(points), voxel_axes_mm)
    radius = labels_radius + shrinkage
    bs = brainstem_sdf(points)
    outside = np.nonzero(bs > 0)[0]
    start = int(outside[0]) if len(outside) else 0
    arc = np.arange(len(points)) * STEP_MM
    arc = arc - arc[start]
    gap = bs - radius
    detached = np.nonzero(gap[start:] > attach_tolerance_mm)[0]
    end = start + (int(detached[0]) if len(detached) else len(points) - 1 - start)
    return NerveCourse(points, arc, radius, float(arc[end]), shrinkage)
