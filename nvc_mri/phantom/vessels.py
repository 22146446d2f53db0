"""Arteries and veins of the phantom, and the neurovascular conflict built into them.

Routes are Catmull-Rom splines through control points in head-frame mm. A designed conflict
inserts three collinear control points around the crossing point ``Q``; the truth is then
measured from the final geometry (see ``truth.py``), never taken from the design.
"""

from __future__ import annotations

import numpy as np

from nvc_mri.phantom.anatomy import Anatomy, _unit
from nvc_mri.phantom.shapes import Tube, arc_length, catmull_rom, resample_polyline

APPROACH_BIAS = {  # direction from the nerve towards the offending artery (right side; x is mirrored)
    "AICA": np.array([0.0, 0.5, -0.7]),
    "PICA": np.array([0.0, -0.4, -0.9]),
    "VA": np.array([-0.4, 0.6, -0.7]),
}


def segment_window(segment: str, detach_s: float, tz: float, w: float) -> tuple[float, float]:
    """Arc-length range (mm from the root exit point) where a contact is placed for ``segment``."""
    m = 0.35  # keep clear of the segment boundaries
    return {
        "root_exit_point": (0.15, w - m),
        "attached_segment": (w + m, max(w + m, detach_s - w - m)),
        "root_detachment_point": (detach_s - w + m, detach_s + w - m),
        "transition_zone": (detach_s + w + m, detach_s + tz - m),
        "cisternal": (detach_s + tz + 1.0, detach_s + tz + 7.0),
    }[segment]


def _point_at(line: np.ndarray, s: np.ndarray, target: float) -> tuple[np.ndarray, np.ndarray]:
    i = int(np.clip(np.searchsorted(s, target), 1, len(s) - 2))
    return line[i], _unit(line[i + 1] - line[i - 1])


def vertebrobasilar(a: Anatomy, rng: np.random.Generator, dolicho: str | None, va_crossing: dict) -> list[tuple[Tube, str]]:
    """Both vertebral arteries and the basilar artery. ``va_crossing`` maps side -> crossing points."""
    s = a.scale
    junction = np.array([rng.uniform(-2, 2), 11.5, rng.uniform(-4, -1)]) * s
    out = []
    for name, sg in (("right", 1.0), ("left", -1.0)):
        r = float(rng.uniform(1.25, 2.0))
        ctrl = [np.array([sg * 9.5, 9.5, -45]) * s, np.array([sg * 9.0, 10.0, -24]) * s]
        if dolicho == name:
            r = float(rng.uniform(2.0, 2.5))
            ctrl.append(np.array([sg * rng.uniform(11, 14), 10.0, -10.0]) * s)
        else:
            ctrl.append(np.array([sg * 6.0, 11.0, -11.0]) * s)
        ctrl += va_crossing.get(name, [])
        ctrl.append(junction + np.array([sg * 1.5, 0.0, -1.0]))
        ctrl.append(junction)
        out.append((keep_outside(a, Tube(f"VA_{name}", catmull_rom(np.array(ctrl)), r)), "VA"))
    ba_r = float(rng.uniform(1.4, 2.0))
    bend = rng.uniform(-3, 3)
    ba_ctrl = np.array([junction] + [np.array(c) * s for c in ([bend * 0.5, 15.5, 6.0], [bend, 16.5, 16.0], [bend * 0.7, 17.0, 34.0])])
    out.append((Tube("BA", catmull_rom(ba_ctrl), ba_r), "BA"))
    return out


def _on_tube(tube: Tube, z: float) -> np.ndarray:
    i = int(np.argmin(np.abs(tube.centreline[:, 2] - z)))
    return tube.centreline[i]


def branch_controls(a: Anatomy, vessel: str, sg: float, parent: Tube, rng: np.random.Generator) -> tuple[list, list]:
    """Control points before and after the nerve region for AICA, PICA (side ``sg``)."""
    s = a.scale
    jit = lambda: rng.normal(0, 1.0, 3)  # noqa: E731
    if vessel == "AICA":
        origin = _on_tube(parent, rng.uniform(2, 8) * s)
        before = [origin, np.array([sg * 6, 17, origin[2] / s - 1]) * s + jit(), np.array([sg * 13, 12, 0]) * s + jit()]
        after = [np.array([sg * 18, 1, -6]) * s + jit(), np.array([sg * 17, -7, -6]) * s + jit(), np.array([sg * 21, -15, -9]) * s]
    else:  # PICA
        origin = _on_tube(parent, rng.uniform(-20, -13) * s)
        before = [origin, np.array([sg * 10.5, 7, origin[2] / s + 2]) * s + jit(), np.array([sg * 12.5, 1, -9]) * s + jit()]
        after = [np.array([sg * 11, -8, -11]) * s + jit(), np.array([sg * 8, -15, -21]) * s + jit(), np.array([sg * 5, -20, -30]) * s]
    return before, after


def crossing_points(a: Anatomy, nerve: Tube, s_star: float, vessel: str, sg: float, clearance: float,
                    rv: float, rng: np.random.Generator, towards: np.ndarray,
                    approach: np.ndarray | None = None) -> tuple[list, np.ndarray]:
    """Five collinear control points that make an artery pass the nerve at ``s_star``.

    Catmull-Rom through collinear, evenly spaced points is exactly straight between the
    inner three, so the artery is a straight tube for 4 mm around the crossing.

    ``clearance`` is the wanted centreline distance minus the radii: the surface gap
    (negative for an indentation). Returns the points and the approach direction ``u``.
    ``approach`` fixes ``u`` (the direction an artery already pushed the nerve from); the random
    draws are made either way, so the seed stream does not depend on it.
    """
    s = nerve.arc_length() - _rep_offset(a, nerve)
    p, t = _point_at(nerve.centreline, s, s_star)
    n_bs = a.brainstem_normal(a.project_to_brainstem(p)[0])[0]
    bias = APPROACH_BIAS[vessel] * [sg, 1, 1] + rng.normal(0, 0.35, 3)
    u = bias - (bias @ t) * t
    u = _unit(u)
    if u @ n_bs < 0.5:
        u = _unit(u + (0.5 - u @ n_bs + 0.2) * n_bs)
        u = _unit(u - (u @ t) * t)
    if approach is not None:
        u = _unit(approach - (approach @ t) * t)
    q = p + u * (nerve.radius + rv + clearance)
    w = _unit(np.cross(t, u))
    angle = np.radians(rng.uniform(-35, 35))
    w = _unit(np.cos(angle) * w + np.sin(angle) * t - (np.sin(angle) * t @ u) * u)
    if w @ (towards - q) < 0:
        w = -w
    return [q + k * w for k in (-4.0, -2.0, 0.0, 2.0, 4.0)], u


def _rep_offset(a: Anatomy, nerve: Tube) -> float:
    outside = np.nonzero(a.brainstem_sdf(nerve.centreline) > 0)[0]
    return float(nerve.arc_length()[outside[0]]) if len(outside) else 0.0


def displace_nerve(nerve: Tube, a: Anatomy, s_star: float, u: np.ndarray, depth: float, width: float) -> Tube:
    """Push the nerve away from ``u`` by ``depth`` mm around ``s_star`` (Gaussian profile of sd ``width``)."""
    s = nerve.arc_length() - _rep_offset(a, nerve)
    bump = depth * np.exp(-0.5 * ((s - s_star) / width) ** 2)
    return Tube(nerve.name, nerve.centreline - bump[:, None] * u[None], nerve.radius)


def route(name: str, controls: list, radius: float, a: Anatomy | None = None) -> Tube:
    """Artery through the control points; with ``a``, kept outside the brainstem (arteries lie on it)."""
    tube = Tube(name, resample_polyline(catmull_rom(np.array(controls), 40)), radius)
    return keep_outside(a, tube) if a is not None else tube


def keep_outside(a: Anatomy, tube: Tube) -> Tube:
    """Lift centreline points that dip into the brainstem to 0.6 radius outside its surface."""
    from nvc_mri.phantom.lesions import push_out

    return push_out(tube, a.brainstem_sdf, clearance=-0.4 * tube.radius)


def gap_profile(nerve: Tube, vessel: Tube) -> np.ndarray:
    """Surface gap (mm) from each nerve centreline point to the vessel."""
    d, _ = vessel.tree.query(nerve.centreline)
    return d - nerve.radius - vessel.radius


def stays_outside(a: Anatomy, vessel: Tube, skip_mm: float = 4.0) -> bool:
    """True when the artery centreline stays outside the brainstem (its first mm excepted)."""
    s = arc_length(vessel.centreline)
    sdf = a.brainstem_sdf(vessel.centreline[s > skip_mm])
    return bool(np.all(sdf >= 0.5 * vessel.radius))


def repel(controls: list, obstacles: list[Tube], clearance: float, fixed: int = 1) -> list:
    """Move control points (except the first ``fixed``) away from obstacle tubes to ``clearance`` mm."""
    out = [np.asarray(c, dtype=np.float64) for c in controls]
    for i in range(fixed, len(out)):
        for tube in obstacles:
            d, j = tube.tree.query(out[i])
            need = tube.radius + clearance
            if d < need:
                direction = _unit(out[i] - tube.centreline[j]) if d > 1e-6 else np.array([0.0, 0.0, -1.0])
                out[i] = tube.centreline[j] + direction * need
    return out

