"""Assemble one phantom's continuous geometry from a seed: anatomy, nerves, lesion, arteries, conflicts."""

from __future__ import annotations

import numpy as np

from nvc_mri.phantom.anatomy import (Anatomy, attached_length, build_base, build_facial_nerve, build_trigeminal_nerve,
                                     build_vestibulocochlear_nerve)
from nvc_mri.phantom.lesions import Lesion, make_lesion, push_out
from nvc_mri.phantom.options import (DEFAULT_LESION_TYPE_WEIGHTS, KINDS, LESION_TYPES, SEGMENTS, VESSELS, ConflictSpec, LesionSpec,
                                     PhantomOptions)
from nvc_mri.phantom.shapes import Tube, catmull_rom, closest_approach
from nvc_mri.phantom.vessels import (branch_controls, crossing_points, displace_nerve, gap_profile, repel, route,
                                     segment_window, stays_outside, vertebrobasilar)
from nvc_mri.segments import segment_config

CLEAR_OF_NERVE_MM = 2.0  # arteries that are not part of a designed conflict stay at least this far from CN VII


def random_conflict(rng: np.random.Generator) -> ConflictSpec:
    kind = str(rng.choice(KINDS, p=[0.3, 0.2, 0.2, 0.3]))
    vessel = str(rng.choice(VESSELS, p=[0.55, 0.3, 0.15]))
    segment = str(rng.choice(SEGMENTS if vessel != "VA" else SEGMENTS[:3]))  # the VA compresses the proximal REZ
    return ConflictSpec(kind=kind, vessel=vessel, segment=segment, second_vessel=bool(rng.random() < 0.1))


def random_lesion(rng: np.random.Generator, type_weights: dict[str, float] | None = None) -> LesionSpec:
    """Draw a lesion's type, side and (schwannoma) Koos grade; ``type_weights`` are relative type frequencies."""
    weights = np.array([(type_weights or DEFAULT_LESION_TYPE_WEIGHTS).get(t, 0.0) for t in LESION_TYPES], float)
    kind = str(rng.choice(LESION_TYPES, p=weights / weights.sum()))  # one draw whatever the weights: seeds stay stable
    return LesionSpec(type=kind, side=str(rng.choice(["left", "right"])),
                      koos=int(rng.integers(1, 5)) if kind == "vestibular_schwannoma" else None)


def _nerves(a: Anatomy, rng: np.random.Generator) -> None:
    for side in a.sides.values():
        for _ in range(20):
            r7, r8 = rng.uniform(0.5, 0.75), rng.uniform(0.75, 1.1)
            facial = build_facial_nerve(a, side, rng, rng.uniform(2.5, 7.5), r7)
            vc = build_vestibulocochlear_nerve(a, side, rng, r8)
            d, *_ = closest_approach(facial, vc)
            if d - r7 - r8 > 0.4:
                break
        side.facial, side.vestibulocochlear = facial, vc
        side.trigeminal = build_trigeminal_nerve(a, side, rng)


def _apply_lesion(a: Anatomy, lesion: Lesion) -> None:
    side = a.sides[lesion.side]
    if lesion.pushes_nerves:
        sdf = lesion.sdf(a)
        side.facial = push_out(side.facial, sdf)
        if not lesion.absorbs_cn8:
            side.vestibulocochlear = push_out(side.vestibulocochlear, sdf)


class _Design:
    """The designed conflict on one side: where on the nerve, how close, which artery."""

    def __init__(self, a: Anatomy, side_name: str, spec: ConflictSpec, rng: np.random.Generator, blocked: bool):
        cfg = segment_config()
        self.side_name, self.spec = side_name, spec
        self.side = a.sides[side_name]
        self.kind = "none" if blocked else spec.kind
        self.detach, _ = attached_length(a, self.side.facial, cfg["attach_tolerance_mm"])
        lo, hi = segment_window(spec.segment, self.detach, cfg["transition_zone_mm"], cfg["landmark_window_mm"])
        self.s_star = float(rng.uniform(lo, hi))
        self.mode = spec.mode or ("displace" if spec.segment in ("transition_zone", "cisternal") and rng.random() < 0.35 else "indent")
        if spec.segment not in ("transition_zone", "cisternal"):
            self.mode = "indent"
        if self.kind == "near_miss":
            self.clearance = spec.gap_mm if spec.gap_mm is not None else float(rng.uniform(0.2, 2.0))
        elif self.kind == "contact":
            self.clearance = 0.0
        elif self.kind == "deformity":
            if self.mode == "indent":
                depth = spec.depth_mm if spec.depth_mm is not None else float(rng.uniform(0.35, 0.7 * self.side.facial.radius + 0.1))
                self.clearance = -depth
            else:
                depth = spec.depth_mm if spec.depth_mm is not None else float(rng.uniform(0.8, 1.5))
                self.clearance = -float(rng.uniform(0.0, 0.1))
            self.depth = depth
        else:
            self.clearance = None
        self.undisplaced = self.side.facial
        self.displacement_width = None  # sd (mm) of the Gaussian push, once the nerve is displaced
        self.second = None  # a second artery near the nerve, farther than the offender, at another segment
        if spec.second_vessel and self.kind != "none":
            segment = "cisternal" if spec.segment != "cisternal" else "attached_segment"
            lo, hi = segment_window(segment, self.detach, cfg["transition_zone_mm"], cfg["landmark_window_mm"])
            self.second = dict(vessel="PICA" if spec.vessel != "PICA" else "AICA", segment=segment,
                               s_star=float(rng.uniform(lo, hi)), clearance=max(self.clearance, 0.0) + float(rng.uniform(0.4, 1.0)))


def _designed_route(a: Anatomy, d: _Design, vessel: str, parent: Tube, rng: np.random.Generator,
                    rv: float) -> tuple[list, list, list, np.ndarray]:
    """Control points before the nerve, through the designed crossing, after it; and the approach direction."""
    before, after = branch_controls(a, vessel, d.side.sigma, parent, rng)
    nerve = d.side.facial
    displace = d.kind == "deformity" and d.mode == "displace"
    cross, u = crossing_points(a, nerve, d.s_star, vessel, d.side.sigma, d.clearance if not displace else 0.0, rv, rng,
                               towards=after[0])
    return before, cross, after, u


def _exact_crossing(a: Anatomy, nerve: Tube, name: str, before, cross, after, u, rv: float, clearance: float) -> Tube:
    """Route through the crossing, then slide the crossing along ``u`` until the built gap equals the design."""
    shift = 0.0
    for _ in range(4):
        tube = route(name, before + [c + shift * u for c in cross] + after, rv, a)
        dist, *_ = closest_approach(nerve, tube)
        error = clearance - (dist - nerve.radius - rv)
        if abs(error) < 1e-3:
            break
        shift += error
    return tube


def _check(a: Anatomy, nerve: Tube, vessel: Tube, s_star: float, clearance: float, s: np.ndarray) -> bool:
    gp = gap_profile(nerve, vessel)
    i = int(np.argmin(gp))
    far = np.abs(s - s_star) > 3.0
    return (abs(s[i] - s_star) <= 1.0 and abs(gp[i] - clearance) <= 0.05
            and bool(np.all(gp[far] > max(clearance + 0.5, 0.5))) and stays_outside(a, vessel))


def build_geometry(rng: np.random.Generator, opts: PhantomOptions) -> tuple[Anatomy, dict]:
    """Draw the anatomy and build the designed conflicts and lesion. Returns the anatomy and the design."""
    a = build_base(rng, opts.size_jitter)
    _nerves(a, rng)
    specs = {"right": opts.right or random_conflict(rng), "left": opts.left or random_conflict(rng)}
    lesion_spec = opts.lesion
    if lesion_spec is None and rng.random() < opts.lesion_probability:
        lesion_spec = random_lesion(rng, opts.lesion_type_weights)
    lesion = make_lesion(a, lesion_spec, rng) if lesion_spec else None
    if lesion:
        _apply_lesion(a, lesion)
        a.lesions.append(lesion)
    blocked = {n: bool(lesion and lesion.side == n and not (lesion.koos == 1)) for n in a.sides}
    designs = {n: _Design(a, n, specs[n], rng, blocked[n]) for n in a.sides}
    dolicho = None
    if rng.random() < opts.dolichoectasia_probability:
        clean_sides = [n for n in a.sides if designs[n].kind == "none"]
        drawn = str(rng.choice(clean_sides or ["none"]))  # one draw either way keeps the seed stream stable
        dolicho = drawn if clean_sides else None

    achieved = {n: False for n in a.sides}
    for attempt in range(30):
        for n, d in designs.items():  # nerve displacement is part of a "displace" deformity
            d.side.facial = d.undisplaced
        va_cross, u_by_side, radii = {}, {}, {}
        for n, d in designs.items():
            if d.kind != "none" and d.spec.vessel == "VA":
                rv = float(rng.uniform(1.4, 2.0))
                displace = d.kind == "deformity" and d.mode == "displace"
                towards = np.array([0.0, 11.5, -2.0])
                cross, u = crossing_points(a, d.side.facial, d.s_star, "VA", d.side.sigma, d.clearance if not displace else 0.0,
                                           rv, rng, towards=towards)
                if displace:  # as for AICA/PICA below: the nerve is pushed away from the artery, which then touches it
                    d.displacement_width = float(rng.uniform(1.5, 2.5))
                    d.side.facial = displace_nerve(d.undisplaced, a, d.s_star, u, d.depth, d.displacement_width)
                    cross, u = crossing_points(a, d.side.facial, d.s_star, "VA", d.side.sigma, d.clearance, rv, rng,
                                               towards=towards, approach=u)
                va_cross[n], u_by_side[n], radii[n] = cross, u, rv
        vb_seed = int(rng.integers(2**32))
        shifts = {n: 0.0 for n in va_cross}
        for _ in range(4):  # slide each designed VA crossing until the built gap equals the design
            shifted = {n: [c + shifts[n] * u_by_side[n] for c in cross] for n, cross in va_cross.items()}
            vb = vertebrobasilar(a, np.random.default_rng(vb_seed), dolicho, shifted)
            errors = {}
            for tube, _ in vb:
                side_of = tube.name[3:] if tube.name.startswith("VA_") else None
                if side_of in radii:
                    tube.radius = radii[side_of]
                    dist, *_ = closest_approach(designs[side_of].side.facial, tube)
                    errors[side_of] = designs[side_of].clearance - (dist - designs[side_of].side.facial.radius - tube.radius)
            if all(abs(e) < 1e-3 for e in errors.values()):
                break
            for n, e in errors.items():
                shifts[n] += e
        ba = next(t for t, name in vb if name == "BA")
        va = {("right" if t.name.endswith("right") else "left"): t for t, name in vb if name == "VA"}
        arteries = list(vb)
        for n, d in designs.items():
            obstacles = [d.side.facial, d.side.vestibulocochlear]
            for vessel in ("AICA", "PICA"):
                parent = ba if vessel == "AICA" else va[n]
                rv = float(rng.uniform(0.4, 1.0))
                if d.kind != "none" and d.spec.vessel == vessel:
                    if d.kind == "deformity" and d.mode == "displace":
                        before, cross, after, u = _designed_route(a, d, vessel, parent, rng, rv)
                        d.displacement_width = float(rng.uniform(1.5, 2.5))
                        d.side.facial = displace_nerve(d.undisplaced, a, d.s_star, u, d.depth, d.displacement_width)  # away from u
                        cross, u = crossing_points(a, d.side.facial, d.s_star, vessel, d.side.sigma, d.clearance, rv, rng,
                                                   towards=after[0], approach=u)  # the artery sits where it pushed from
                    else:
                        before, cross, after, u = _designed_route(a, d, vessel, parent, rng, rv)
                    before, after = repel(before, obstacles, 2.5), repel(after, obstacles, 2.5, fixed=0)
                    tube = _exact_crossing(a, d.side.facial, f"{vessel}_{n}", before, cross, after, u, rv, d.clearance)
                    arteries.append((tube, vessel))
                    continue
                if d.second and d.second["vessel"] == vessel:
                    before, after = branch_controls(a, vessel, d.side.sigma, parent, rng)
                    cross, u = crossing_points(a, d.side.facial, d.second["s_star"], vessel, d.side.sigma,
                                               d.second["clearance"], rv, rng, towards=after[0])
                    before, after = repel(before, obstacles, 2.5), repel(after, obstacles, 2.5, fixed=0)
                    tube = _exact_crossing(a, d.side.facial, f"{vessel}_{n}", before, cross, after, u, rv, d.second["clearance"])
                    arteries.append((tube, vessel))
                    continue
                before, after = branch_controls(a, vessel, d.side.sigma, parent, rng)
                controls = repel(before + after, obstacles, CLEAR_OF_NERVE_MM + 1.5)
                arteries.append((route(f"{vessel}_{n}", controls, rv, a), vessel))
        ok = True
        achieved = {n: True for n in a.sides}
        for n, d in designs.items():
            nerve = d.side.facial
            s = nerve.arc_length() - nerve.arc_length()[np.nonzero(a.brainstem_sdf(nerve.centreline) > 0)[0][0]]
            for tube, name in arteries:
                designed = d.kind != "none" and name == d.spec.vessel and tube.name.endswith(n)
                second = d.second is not None and name == d.second["vessel"] and tube.name.endswith(n)
                if designed:
                    good = _check(a, nerve, tube, d.s_star, d.clearance, s)
                    achieved[n] = achieved[n] and good
                elif second:
                    good = _check(a, nerve, tube, d.second["s_star"], d.second["clearance"], s)
                    achieved[n] = achieved[n] and good
                else:
                    good = gap_profile(nerve, tube).min() > CLEAR_OF_NERVE_MM
                ok = ok and good and gap_profile(d.side.vestibulocochlear, tube).min() > 0.3
        if ok:
            break
    for lesion in a.lesions:  # arteries are displaced by a mass, but run through an epidermoid
        if lesion.type != "epidermoid":
            sdf = lesion.sdf(a)
            arteries = [(push_out(t, sdf, 0.3) if sdf(t.centreline.astype(np.float32)).min() < t.radius + 0.3 else t, v)
                        for t, v in arteries]
    for side_name, sg in (("right", 1.0), ("left", -1.0)):
        ctrl = np.array([ba.centreline[-1] - [0, 0, 6], [sg * 8, 13, 27.5], [sg * 15, 5, 25.5], [sg * 17, -6, 23.5]]) * [1, 1, 1]
        ctrl[1:] *= a.scale
        arteries.append((Tube(f"SCA_{side_name}", catmull_rom(ctrl), float(rng.uniform(0.5, 0.9))), "SCA"))
        if rng.random() < opts.vein_probability:
            vein = np.array([[sg * 14, 1, 17], [sg * 18, -1, 14], [sg * 23, -3, 13]]) * a.scale
            a.veins.append(Tube(f"petrosal_vein_{side_name}", catmull_rom(vein), float(rng.uniform(0.5, 0.9))))
    a.arteries = arteries
    design = {
        n: {"spec": d.spec.model_dump(), "built_kind": d.kind, "achieved": bool(achieved[n]) if d.kind != "none" else None,
            "s_star_mm": d.s_star if d.kind != "none" else None, "mode": d.mode if d.kind == "deformity" else None,
            "displacement_mm": d.depth if d.kind == "deformity" and d.mode == "displace" else 0.0,
            "displacement_width_mm": d.displacement_width,
            "second_vessel": d.second,
            "attempts": attempt + 1}
        for n, d in designs.items()
    }
    design["lesion"] = lesion_spec.model_dump() if lesion_spec else None
    design["dolichoectatic_va"] = dolicho
    return a, design
