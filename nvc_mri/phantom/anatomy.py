"""Posterior-fossa anatomy of the phantom in head-frame millimetres.

Head frame: +x towards the patient's right, +y anterior, +z superior (RAS-aligned before the
head pose is applied); origin on the brainstem axis at the pontomedullary junction. The
``side`` sign ``sigma`` is +1 for the right side and -1 for the left.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from nvc_mri.phantom.shapes import Tube, arc_length, ellipsoid_sdf, hermite, smooth_union

SIDES = {"right": 1.0, "left": -1.0}


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


@dataclass
class Region:
    """A solid region with a signed distance function, a tissue and a label."""

    name: str
    tissue: str
    label: int
    sdf: Callable[[np.ndarray], np.ndarray]
    bbox: tuple[np.ndarray, np.ndarray]
    tube: Tube | None = None


@dataclass
class Side:
    """Per-side anatomy: internal auditory canal and the nerves."""

    sigma: float
    porus: np.ndarray
    iac_axis: np.ndarray
    iac_radius: float
    iac_length: float
    facial: Tube | None = None
    vestibulocochlear: Tube | None = None
    trigeminal: Tube | None = None


@dataclass
class Anatomy:
    """All continuous shapes of one phantom head."""

    scale: float
    p: dict = field(default_factory=dict)   # named dimensions (mm)
    sides: dict = field(default_factory=dict)
    arteries: list = field(default_factory=list)   # list[(Tube, vessel name)]
    veins: list = field(default_factory=list)
    lesions: list = field(default_factory=list)

    # ---- brainstem -------------------------------------------------------------
    def brainstem_sdf(self, x: np.ndarray) -> np.ndarray:
        p = self.p
        pons = ellipsoid_sdf(x, p["pons_c"], p["pons_r"])
        medulla = ellipsoid_sdf(x, p["med_c"], p["med_r"])
        ped_r = ellipsoid_sdf(x, p["ped_c"] * [1, 1, 1], p["ped_r"])
        ped_l = ellipsoid_sdf(x, p["ped_c"] * [-1, 1, 1], p["ped_r"])
        d = smooth_union(pons, medulla, p["sulcus_k"])
        return np.minimum(d, np.minimum(ped_r, ped_l))

    def brainstem_normal(self, x: np.ndarray, h: float = 0.05) -> np.ndarray:
        x = np.atleast_2d(x).astype(np.float64)
        g = np.stack([(self.brainstem_sdf(x + e) - self.brainstem_sdf(x - e)) / (2 * h) for e in np.eye(3) * h], -1)
        return g / np.linalg.norm(g, axis=-1, keepdims=True)

    def project_to_brainstem(self, x: np.ndarray, offset: float = 0.0, iterations: int = 12) -> np.ndarray:
        """Move ``x`` onto the level set ``brainstem_sdf == offset`` (Newton steps along the gradient)."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64)).copy()
        for _ in range(iterations):
            x -= (self.brainstem_sdf(x) - offset)[:, None] * self.brainstem_normal(x)
        return x

    def petrous_sdf(self, x: np.ndarray, sigma: float) -> np.ndarray:
        s = self.sides["right" if sigma > 0 else "left"]
        n = self.p["petrous_n"] * [sigma, 1, 1]
        posterior_face = (x - s.porus) @ n.astype(np.float32)  # n points out of the bone, into the CPA
        front = self.p["petrous_front_n"] * [sigma, 1, 1]
        anterior_face = (x - (s.porus - n * self.p["petrous_depth"])) @ front.astype(np.float32)
        wedge = np.maximum(posterior_face, anterior_face)
        return np.maximum(np.maximum(wedge, x[:, 2] - self.p["ridge_z"]), self.p["petrous_medial_x"] - sigma * x[:, 0])

    def iac_sdf(self, x: np.ndarray, sigma: float) -> np.ndarray:
        s = self.sides["right" if sigma > 0 else "left"]
        a, b = s.porus - s.iac_axis * 1.0, s.porus + s.iac_axis * s.iac_length
        t = np.clip(((x - a) @ (b - a)) / ((b - a) @ (b - a)), 0, 1)
        canal = np.linalg.norm(x - (a + t[:, None] * (b - a)), axis=1) - s.iac_radius
        flare = np.linalg.norm(x - s.porus, axis=1) - s.iac_radius * 1.5
        return np.minimum(canal, flare).astype(np.float32)

    def bone_sdf(self, x: np.ndarray) -> np.ndarray:
        """Petrous bones and clivus, with the internal auditory canals carved out."""
        clivus = np.maximum((x - self.p["clivus_p"]) @ self.p["clivus_n"].astype(np.float32), np.abs(x[:, 0]) - 16.0)
        bone = np.minimum(clivus, np.minimum(self.petrous_sdf(x, 1.0), self.petrous_sdf(x, -1.0)))
        return np.maximum(bone, -np.minimum(self.iac_sdf(x, 1.0), self.iac_sdf(x, -1.0)))


def fixed_regions(a: Anatomy) -> list[Region]:
    """Background anatomy (unlabelled except the brainstem), lowest priority first."""
    p = a.p
    big = (np.full(3, -200.0), np.full(3, 200.0))

    def ell(c, r):
        c, r = np.asarray(c, float), np.asarray(r, float)
        return (lambda x: ellipsoid_sdf(x, c, r)), (c - r - 1, c + r + 1)

    regions = []
    for name, tissue, extra in (("scalp", "scalp", 11.0), ("skull", "bone", 6.0), ("intracranial", "csf", 0.0)):
        f, bb = ell(p["skull_c"], p["skull_r"] + extra)
        regions.append(Region(name, tissue, 0, f, bb))
    f_ic, _ = ell(p["skull_c"], p["skull_r"])
    regions.append(Region("cerebrum", "parenchyma", 0, lambda x: np.maximum(p["tentorium_z"] - x[:, 2], f_ic(x)), big))
    for sg in (1.0, -1.0):
        for nm, c, r in (("temporal", p["temporal_c"], p["temporal_r"]), ("cerebellum", p["cereb_c"], p["cereb_r"]),
                         ("flocculus", p["flocc_c"], p["flocc_r"])):
            f, bb = ell(np.asarray(c) * [sg, 1, 1], r)
            regions.append(Region(f"{nm}_{'right' if sg > 0 else 'left'}", "parenchyma", 0, f, bb))
    f, bb = ell(p["vermis_c"], p["vermis_r"])
    regions.append(Region("vermis", "parenchyma", 0, f, bb))
    regions.append(Region("bone", "bone", 0, a.bone_sdf, big))
    for sg in (1.0, -1.0):
        f, bb = ell(np.asarray(p["mastoid_c"]) * [sg, 1, 1], p["mastoid_r"])
        regions.append(Region(f"mastoid_{sg:+.0f}", "air", 0, f, bb))
    f, bb = ell(p["sphenoid_c"], p["sphenoid_r"])
    regions.append(Region("sphenoid_sinus", "air", 0, f, bb))
    lo = np.minimum(p["pons_c"] - p["pons_r"], p["med_c"] - p["med_r"]) - 2
    hi = np.maximum(p["pons_c"] + p["pons_r"], p["med_c"] + p["med_r"]) + 2
    lo[0], hi[0] = -(abs(p["ped_c"][0]) + p["ped_r"][0] + 2), abs(p["ped_c"][0]) + p["ped_r"][0] + 2
    regions.append(Region("brainstem", "brainstem", 1, a.brainstem_sdf, (lo, hi)))
    f, bb = ell(p["v4_c"], p["v4_r"])
    regions.append(Region("fourth_ventricle", "csf", 0, f, bb))
    return regions


def build_base(rng: np.random.Generator, size_jitter: float) -> Anatomy:
    """Draw the fixed anatomy (brainstem, cerebellum, bones, internal auditory canals)."""
    s = float(rng.uniform(1 - size_jitter, 1 + size_jitter))
    j = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    p = dict(
        pons_c=np.array([0.0, 1.5, 12.0]) * s, pons_r=np.array([j(13.5, 15), j(11, 12.5), j(12, 13)]) * s,
        med_c=np.array([0.0, -1.0, -18.0]) * s, med_r=np.array([j(8.5, 9.5), j(7.0, 8.0), 24.0]) * s,
        ped_c=np.array([11.0, -6.0, 12.0]) * s, ped_r=np.array([8.0, 7.5, 8.5]) * s, sulcus_k=2.5 * s,
        cereb_c=np.array([27.0, -34.0, 2.0]) * s, cereb_r=np.array([30.0, 27.0, 21.0]) * s,
        vermis_c=np.array([0.0, -27.0, 4.0]) * s, vermis_r=np.array([8.0, 15.0, 14.0]) * s,
        flocc_c=np.array([19.0, -9.0, -1.5]) * s, flocc_r=np.array([4.5, 3.0, 3.5]) * s,
        v4_c=np.array([0.0, -12.5, 4.0]) * s, v4_r=np.array([6.0, 2.8, 9.0]) * s,
        temporal_c=np.array([40.0, 22.0, 16.0]) * s, temporal_r=np.array([28.0, 38.0, 23.0]) * s,
        skull_c=np.array([0.0, -5.0, 15.0]) * s, skull_r=np.array([68.0, 88.0, 75.0]) * s,
        tentorium_z=j(30, 34) * s, ridge_z=j(12, 16) * s, petrous_medial_x=7.0 * s,
        mastoid_c=np.array([40.0, -10.0, -4.0]) * s, mastoid_r=np.array([8.0, 10.0, 9.0]) * s,
        sphenoid_c=np.array([0.0, 45.0, 14.0]) * s, sphenoid_r=np.array([13.0, 9.0, 11.0]) * s,
    )
    clivus_angle = np.radians(j(58, 70))
    p["clivus_n"] = np.array([0.0, -np.sin(clivus_angle), np.cos(clivus_angle)])
    p["clivus_p"] = np.array([0.0, (13.5 + j(4.5, 6.5)) * s, 0.0])
    petrous_angle = np.radians(j(38, 52))  # petrous face vs the coronal plane
    p["petrous_n"] = _unit([-np.sin(petrous_angle), -np.cos(petrous_angle), 0.0])  # for the right side
    p["petrous_front_n"] = _unit([0.45, 0.85, 0.35])  # anterior face, towards the middle cranial fossa
    p["petrous_depth"] = j(14.0, 18.0) * s
    a = Anatomy(scale=s, p=p)
    for name, sg in SIDES.items():
        porus = np.array([sg * j(22.0, 25.0), j(3.0, 6.0), j(1.0, 4.0)]) * s
        n = p["petrous_n"] * [sg, 1, 1]
        axis = _unit(-n + np.array([sg * 0.6, 0.0, 0.1]))  # into the bone, laterally
        a.sides[name] = Side(sigma=sg, porus=porus, iac_axis=axis, iac_radius=j(2.5, 3.0), iac_length=j(9, 11))
    return a


def _iac_point(side: Side, offset_dir: np.ndarray, offset: float, depth: float) -> np.ndarray:
    return side.porus + side.iac_axis * depth + offset_dir * offset


def _iac_quadrant(side: Side) -> np.ndarray:
    """Unit vector towards the anterosuperior quadrant of the canal cross-section."""
    v = np.array([0.0, 1.0, 1.0])
    return _unit(v - (v @ side.iac_axis) * side.iac_axis)


def build_facial_nerve(a: Anatomy, side: Side, rng: np.random.Generator, attached_mm: float, radius: float) -> Tube:
    """CN VII: exits at the pontomedullary sulcus, runs attached to the pons, detaches, crosses to the IAC."""
    sg = side.sigma
    offset = 0.8 * radius  # centreline just outside the surface: the nerve lies on the pons
    guess = np.array([sg * 9.0, 5.0, rng.uniform(0.0, 1.5)]) * a.scale
    rep = a.project_to_brainstem(guess, 0.0)[0]
    normal = a.brainstem_normal(rep)[0]
    quadrant = _iac_quadrant(side)
    target = _iac_point(side, quadrant, side.iac_radius - radius - 0.15, 0.0)
    # root inside the brainstem, then the attached course marched along the surface
    pts = [rep - normal * 1.0, a.project_to_brainstem(rep, offset)[0]]
    lift = np.array([0.0, 0.0, rng.uniform(0.3, 0.7)])
    travelled = 0.0
    while travelled < attached_mm:
        cur = pts[-1]
        n = a.brainstem_normal(cur)[0]
        d = (target - cur) / np.linalg.norm(target - cur) + lift
        d -= (d @ n) * n
        nxt = a.project_to_brainstem(cur + 0.1 * _unit(d), offset)[0]
        travelled += np.linalg.norm(nxt - cur)
        pts.append(nxt)
    rdp, prev = pts[-1], pts[-2]
    t0 = _unit(rdp - prev)
    n_rdp = a.brainstem_normal(rdp)[0]
    length = np.linalg.norm(target - rdp)
    free = hermite(rdp, (t0 + 0.6 * n_rdp) * length * 0.6, target, side.iac_axis * length * 0.8, 300)
    canal = [target + side.iac_axis * d for d in np.linspace(0.5, side.iac_length - 0.5, 10)]
    line = np.vstack([np.array(pts), free[1:], np.array(canal)])
    return Tube("facial_nerve", line, radius)


def build_vestibulocochlear_nerve(a: Anatomy, side: Side, rng: np.random.Generator, radius: float) -> Tube:
    """CN VIII: enters at the lateral recess behind CN VII and runs posteroinferior to it into the IAC."""
    sg = side.sigma
    guess = np.array([sg * 11.0, rng.uniform(0.0, 1.5), rng.uniform(-1.5, 0.0)]) * a.scale
    entry = a.project_to_brainstem(guess, 0.0)[0]
    normal = a.brainstem_normal(entry)[0]
    quadrant = _iac_quadrant(side)
    target = _iac_point(side, -quadrant, side.iac_radius - radius - 0.15, 0.0)
    start = entry - normal * 1.0
    length = np.linalg.norm(target - entry)
    free = hermite(entry, (normal * 0.8 + _unit(target - entry)) * length * 0.5, target, side.iac_axis * length * 0.8, 300)
    canal = [target + side.iac_axis * d for d in np.linspace(0.5, side.iac_length - 0.5, 10)]
    return Tube("vestibulocochlear_nerve", np.vstack([start[None], free, np.array(canal)]), radius)


def build_trigeminal_nerve(a: Anatomy, side: Side, rng: np.random.Generator) -> Tube:
    """CN V (a distractor, not labelled): mid-pons, forward and up towards Meckel's cave."""
    sg = side.sigma
    entry = a.project_to_brainstem(np.array([sg * 12.0, 4.0, rng.uniform(14, 17)]) * a.scale, 0.0)[0]
    normal = a.brainstem_normal(entry)[0]
    end = np.array([sg * 19.0, 20.0, 24.0]) * a.scale
    line = hermite(entry - normal, normal * 12 + np.array([0, 6.0, 2.0]), end, np.array([0.0, 10.0, 4.0]), 200)
    return Tube("trigeminal_nerve", line, float(rng.uniform(1.1, 1.5)))


def attached_length(a: Anatomy, nerve: Tube, tolerance: float) -> tuple[float, np.ndarray]:
    """Arc length of the root detachment point and the nerve-to-brainstem surface gap along the nerve.

    The root exit point is the first centreline point outside the brainstem (arc length 0);
    the detachment point ends the first run where the nerve surface is within ``tolerance``
    mm of the brainstem surface.
    """
    gap = a.brainstem_sdf(nerve.centreline) - nerve.radius
    s = nerve.arc_length()
    outside = np.nonzero(a.brainstem_sdf(nerve.centreline) > 0)[0]
    start = int(outside[0]) if len(outside) else 0
    detached = np.nonzero(gap[start:] > tolerance)[0]
    end = start + (int(detached[0]) if len(detached) else len(gap) - start - 1)
    return float(s[end] - s[start]), s - s[start]


__all__ = ["Anatomy", "Region", "Side", "SIDES", "arc_length", "attached_length", "build_base", "fixed_regions",
           "build_facial_nerve", "build_vestibulocochlear_nerve", "build_trigeminal_nerve"]
