"""Continuous shapes of the phantom, in head-frame millimetres.

Every shape gives a signed distance (negative inside, in mm) at arbitrary points and a
bounding box. Tubes (nerves, vessels) are swept spheres of constant radius along a densely
sampled centreline, so distances between two tubes are exact up to the sampling step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

STEP_MM = 0.05  # centreline sampling step


def ellipsoid_sdf(p: np.ndarray, centre, radii) -> np.ndarray:
    """Approximate signed distance to an axis-aligned ellipsoid (exact on the surface, good near it)."""
    q = (p - np.asarray(centre, np.float32)) / np.asarray(radii, np.float32)
    k0 = np.linalg.norm(q, axis=-1)
    k1 = np.linalg.norm(q / np.asarray(radii, np.float32), axis=-1)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-6)


def smooth_union(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum of two signed distances (blend width ``k`` mm)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b * (1 - h) + a * h - k * h * (1 - h)


def resample_polyline(points: np.ndarray, step: float = STEP_MM) -> np.ndarray:
    """Resample a polyline to (almost) equal steps of ``step`` mm."""
    points = np.asarray(points, dtype=np.float64)
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    n = max(2, int(np.ceil(s[-1] / step)) + 1)
    t = np.linspace(0.0, s[-1], n)
    return np.stack([np.interp(t, s, points[:, d]) for d in range(3)], axis=1)


def hermite(p0, t0, p1, t1, n: int = 200) -> np.ndarray:
    """Cubic Hermite curve from ``p0`` (tangent ``t0``) to ``p1`` (tangent ``t1``)."""
    u = np.linspace(0.0, 1.0, n)[:, None]
    h00, h10 = 2 * u**3 - 3 * u**2 + 1, u**3 - 2 * u**2 + u
    h01, h11 = -2 * u**3 + 3 * u**2, u**3 - u**2
    return h00 * np.asarray(p0) + h10 * np.asarray(t0) + h01 * np.asarray(p1) + h11 * np.asarray(t1)


def catmull_rom(control: np.ndarray, n_per: int = 60) -> np.ndarray:
    """Centripetal-free (uniform) Catmull-Rom spline through all control points."""
    c = np.asarray(control, dtype=np.float64)
    c = np.vstack([2 * c[0] - c[1], c, 2 * c[-1] - c[-2]])
    out = []
    for i in range(1, len(c) - 2):
        p0, p1, p2, p3 = c[i - 1], c[i], c[i + 1], c[i + 2]
        out.append(hermite(p1, 0.5 * (p2 - p0), p2, 0.5 * (p3 - p1), n_per)[:-1])
    out.append(c[-2][None])
    return np.vstack(out)


def arc_length(points: np.ndarray) -> np.ndarray:
    """Cumulative arc length (mm) at each centreline point."""
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])


@dataclass
class Tube:
    """A swept sphere of constant radius along a centreline (head-frame mm)."""

    name: str
    centreline: np.ndarray
    radius: float
    _tree: cKDTree | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.centreline = resample_polyline(self.centreline)

    @property
    def tree(self) -> cKDTree:
        if self._tree is None:
            self._tree = cKDTree(self.centreline)
        return self._tree

    def bbox(self, margin: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        return self.centreline.min(0) - self.radius - margin, self.centreline.max(0) + self.radius + margin

    def sdf(self, p: np.ndarray, upper: float = np.inf) -> np.ndarray:
        """Signed distance to the tube surface; points farther than ``upper`` get +inf."""
        d, _ = self.tree.query(np.asarray(p, np.float64), distance_upper_bound=upper + self.radius)
        return (d - self.radius).astype(np.float32)

    def arc_length(self) -> np.ndarray:
        return arc_length(self.centreline)


def segment_distance(p0, p1, q0, q1) -> tuple[float, np.ndarray, np.ndarray]:
    """Exact distance between segments [p0,p1] and [q0,q1] and the closest points on each."""
    d1, d2, r = p1 - p0, q1 - q0, p0 - q0
    a, e, f = d1 @ d1, d2 @ d2, d2 @ r
    if a < 1e-12 and e < 1e-12:
        return float(np.linalg.norm(r)), p0, q0
    if a < 1e-12:
        s, t = 0.0, np.clip(f / e, 0, 1)
    else:
        c = d1 @ r
        if e < 1e-12:
            t, s = 0.0, np.clip(-c / a, 0, 1)
        else:
            b = d1 @ d2
            denom = a * e - b * b
            s = np.clip((b * f - c * e) / denom, 0, 1) if denom > 1e-12 else 0.0
            t = (b * s + f) / e
            if t < 0:
                t, s = 0.0, np.clip(-c / a, 0, 1)
            elif t > 1:
                t, s = 1.0, np.clip((b - c) / a, 0, 1)
    cp, cq = p0 + s * d1, q0 + t * d2
    return float(np.linalg.norm(cp - cq)), cp, cq


def closest_approach(a: Tube, b: Tube) -> tuple[float, int, np.ndarray, np.ndarray]:
    """Minimal distance between two tube centrelines, refined exactly on the nearest segments.

    Returns
    -------
    distance : float
        Centreline-to-centreline distance in mm (surface gap = distance - a.radius - b.radius).
    index : int
        Index of the nearest point on ``a``'s centreline.
    point_a, point_b : ndarray
        Closest points on each centreline.
    """
    d, j = b.tree.query(a.centreline)
    i = int(np.argmin(d))
    j = int(j[i])
    best = (np.inf, i, a.centreline[i], b.centreline[j])
    for ia in (i - 1, i):
        for jb in (j - 1, j):
            if 0 <= ia < len(a.centreline) - 1 and 0 <= jb < len(b.centreline) - 1:
                dist, cp, cq = segment_distance(a.centreline[ia], a.centreline[ia + 1], b.centreline[jb], b.centreline[jb + 1])
                if dist < best[0]:
                    best = (dist, ia, cp, cq)
    return best
