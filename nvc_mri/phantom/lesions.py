"""Secondary lesions of the cerebellopontine angle (CPA) and internal auditory canal (IAC).

Shapes are signed distance functions in head-frame mm. Lesions never enter bone (the IAC
excepted). Koos grades of vestibular schwannomas are built, not guessed:
I intracanalicular; II CPA extension without brainstem contact; III contact with the
brainstem without compression; IV brainstem compression (indentation >= 2 mm).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from nvc_mri.phantom.anatomy import Anatomy, Side, _unit
from nvc_mri.phantom.options import LesionSpec
from nvc_mri.phantom.shapes import Tube, ellipsoid_sdf, resample_polyline

TISSUE = {"vestibular_schwannoma": "schwannoma", "meningioma": "meningioma", "epidermoid": "epidermoid",
          "arachnoid_cyst": "csf"}


@dataclass
class Lesion:
    type: str
    side: str
    koos: int | None
    shape_sdf: Callable[[np.ndarray], np.ndarray]
    bbox: tuple[np.ndarray, np.ndarray]
    pushes_nerves: bool
    absorbs_cn8: bool
    design: dict = field(default_factory=dict)

    def sdf(self, a: Anatomy) -> Callable[[np.ndarray], np.ndarray]:
        """Signed distance of the lesion as drawn: the shape minus bone (the IAC stays open).

        Only a vestibular schwannoma may compress the brainstem; other lesions stop at its surface.
        """
        if self.type == "vestibular_schwannoma":
            return lambda x: np.maximum(self.shape_sdf(x), -a.bone_sdf(x))
        return lambda x: np.maximum(np.maximum(self.shape_sdf(x), -a.bone_sdf(x)), -a.brainstem_sdf(x))


def _capsule(a_pt, b_pt, r):
    a_pt, b_pt = np.asarray(a_pt, np.float32), np.asarray(b_pt, np.float32)
    ab = b_pt - a_pt

    def f(x):
        t = np.clip(((x - a_pt) @ ab) / (ab @ ab), 0, 1)
        return np.linalg.norm(x - (a_pt + t[:, None] * ab), axis=1) - r
    return f


def _sphere(c, r):
    c = np.asarray(c, np.float32)
    return lambda x: np.linalg.norm(x - c, axis=1) - r


def _distance_to_brainstem(a: Anatomy, point: np.ndarray) -> float:
    return float(a.brainstem_sdf(point[None].astype(np.float32))[0])


def _place_towards_brainstem(a: Anatomy, side: Side, radius: float, target_gap: float) -> np.ndarray:
    """Centre on the porus-to-brainstem line whose sphere has surface gap ``target_gap`` to the brainstem."""
    face = _unit(-side.iac_axis + np.array([0, 0, 0.05]))
    lo, hi = 0.0, 40.0
    for _ in range(50):
        t = 0.5 * (lo + hi)
        gap = _distance_to_brainstem(a, side.porus + face * t) - radius
        lo, hi = (t, hi) if gap > target_gap else (lo, t)
    return side.porus + face * 0.5 * (lo + hi)


def vestibular_schwannoma(a: Anatomy, side_name: str, koos: int, rng: np.random.Generator) -> Lesion:
    side = a.sides[side_name]
    r_ic = side.iac_radius - 0.15
    deep = side.porus + side.iac_axis * (side.iac_length - rng.uniform(0.8, 2.0))
    parts = []
    design: dict = {"koos": koos}
    if koos == 1:
        shallow = side.porus + side.iac_axis * rng.uniform(1.5, 3.0)
        parts.append(_capsule(deep, shallow, r_ic))
        centre, radius = None, 0.0
    else:
        parts.append(_capsule(deep, side.porus, r_ic))
        if koos == 2:
            radius = rng.uniform(4.0, 7.0)
            centre = side.porus - side.iac_axis * (radius * 0.6)
            gap = _distance_to_brainstem(a, centre) - radius
            if gap < 2.0:
                radius = max(3.0, radius - (2.0 - gap))
                centre = side.porus - side.iac_axis * (radius * 0.6)
        elif koos == 3:
            radius = rng.uniform(8.0, 11.0)
            design["contact_depth_mm"] = float(rng.uniform(0.2, 0.8))
            centre = _place_towards_brainstem(a, side, radius, -design["contact_depth_mm"])
        else:
            radius = rng.uniform(12.0, 15.0)
            design["compression_mm"] = float(rng.uniform(3.0, 5.0))
            centre = _place_towards_brainstem(a, side, radius, -design["compression_mm"])
        parts.append(_sphere(centre, radius))
        design.update(cpa_centre=centre.tolist(), cpa_radius=float(radius))
    shape = lambda x: np.minimum.reduce([f(x) for f in parts])  # noqa: E731
    pts = [deep, side.porus] + ([centre] if centre is not None else [])
    r = max(radius, r_ic) + 1
    bbox = (np.min(pts, 0) - r, np.max(pts, 0) + r)
    return Lesion("vestibular_schwannoma", side_name, koos, shape, bbox, pushes_nerves=True, absorbs_cn8=True, design=design)


def meningioma(a: Anatomy, side_name: str, rng: np.random.Generator) -> Lesion:
    side = a.sides[side_name]
    n_face = -_unit(side.iac_axis)
    along = _unit(np.cross(n_face, [0, 0, 1])) * rng.choice([-1, 1])
    radius = rng.uniform(6.0, 12.0)
    centre = side.porus + along * rng.uniform(5, 9) + n_face * (radius * 0.25) + np.array([0, 0, rng.uniform(-2, 3)])
    radii = np.array([radius, radius, radius * 0.8])
    shape = lambda x: ellipsoid_sdf(x, centre, radii)  # noqa: E731
    return Lesion("meningioma", side_name, None, shape, (centre - radius - 1, centre + radius + 1), True, False,
                  {"centre": centre.tolist(), "radius": float(radius)})


def epidermoid(a: Anatomy, side_name: str, rng: np.random.Generator) -> Lesion:
    side = a.sides[side_name]
    mid = side.porus + (-side.iac_axis) * rng.uniform(5, 8) + np.array([0, rng.uniform(-2, 3), rng.uniform(-4, 0)])
    centres = [mid + rng.normal(0, 2.5, 3) for _ in range(int(rng.integers(3, 6)))]
    radii = [rng.uniform(3.0, 5.5) for _ in centres]
    waves = rng.normal(0, 1, (4, 3))
    phases = rng.uniform(0, 2 * np.pi, 4)

    def shape(x):
        d = np.minimum.reduce([np.linalg.norm(x - np.asarray(c, np.float32), axis=1) - r for c, r in zip(centres, radii)])
        lobes = sum(np.sin(x @ (w.astype(np.float32) * 0.9) + ph) for w, ph in zip(waves, phases))
        return d + 0.25 * lobes.astype(np.float32)
    lo = np.min(centres, 0) - max(radii) - 2
    hi = np.max(centres, 0) + max(radii) + 2
    return Lesion("epidermoid", side_name, None, shape, (lo, hi), pushes_nerves=False, absorbs_cn8=False)


def arachnoid_cyst(a: Anatomy, side_name: str, rng: np.random.Generator) -> Lesion:
    side = a.sides[side_name]
    radii = np.array([rng.uniform(6, 10), rng.uniform(5, 8), rng.uniform(5, 9)])
    centre = side.porus + (-side.iac_axis) * rng.uniform(4, 7) + np.array([0, -radii[1] - rng.uniform(1, 3), -2.0])
    shape = lambda x: ellipsoid_sdf(x, centre, radii)  # noqa: E731
    return Lesion("arachnoid_cyst", side_name, None, shape, (centre - radii - 1, centre + radii + 1), True, False,
                  {"centre": centre.tolist()})


def make_lesion(a: Anatomy, spec: LesionSpec, rng: np.random.Generator) -> Lesion:
    if spec.type == "vestibular_schwannoma":
        return vestibular_schwannoma(a, spec.side, spec.koos or int(rng.integers(1, 5)), rng)
    return {"meningioma": meningioma, "epidermoid": epidermoid, "arachnoid_cyst": arachnoid_cyst}[spec.type](a, spec.side, rng)


def push_out(tube: Tube, sdf: Callable[[np.ndarray], np.ndarray], clearance: float = -0.05) -> Tube:
    """Move a nerve's centreline out of a lesion so that its surface just touches it (mass effect)."""
    pts = tube.centreline.copy()
    for _ in range(20):
        d = sdf(pts.astype(np.float32)).astype(np.float64)
        inside = d < tube.radius + clearance
        if not inside.any():
            break
        h = 0.05
        grad = np.stack([(sdf((pts[inside] + e).astype(np.float32)) - sdf((pts[inside] - e).astype(np.float32))) / (2 * h)
                         for e in np.eye(3) * h], -1)
        grad /= np.maximum(np.linalg.norm(grad, axis=1, keepdims=True), 1e-9)
        pts[inside] += grad * (tube.radius + clearance - d[inside])[:, None]
    return Tube(tube.name, resample_polyline(pts), tube.radius)
