"""Names of the parts of the facial nerve's course, as radiologists and surgeons use them.

Along the centreline, arc length ``s`` (mm) from the root exit point (REP):

* ``root_exit_point``        s <= w
* ``attached_segment``       w < s < L - w          (L: root detachment point, RDP)
* ``root_detachment_point``  |s - L| <= w
* ``transition_zone``        L + w < s <= L + TZ    (TZ about 2.5 mm)
* ``cisternal``              s > L + TZ

The root exit zone (REZ) runs from the REP to the end of the transition zone.
Parameters come from ``configs/nerve_segments.yaml``.
"""

from __future__ import annotations

from nvc_mri.config import load_config

SEGMENT_NAMES = ("root_exit_point", "attached_segment", "root_detachment_point", "transition_zone", "cisternal")


def segment_config() -> dict:
    return dict(load_config("nerve_segments.yaml"))


def nerve_segment(s_mm: float, detachment_mm: float, transition_zone_mm: float | None = None,
                  window_mm: float | None = None) -> str:
    """Name of the facial-nerve segment at arc length ``s_mm`` from the root exit point.

    Parameters
    ----------
    s_mm : float
        Distance along the nerve from the root exit point, mm.
    detachment_mm : float
        Arc length of the root detachment point, mm.
    transition_zone_mm, window_mm : float, optional
        Defaults from ``configs/nerve_segments.yaml``.
    """
    cfg = segment_config()
    tz = cfg["transition_zone_mm"] if transition_zone_mm is None else transition_zone_mm
    w = cfg["landmark_window_mm"] if window_mm is None else window_mm
    if s_mm <= w:
        return "root_exit_point"
    if abs(s_mm - detachment_mm) <= w:
        return "root_detachment_point"
    if s_mm < detachment_mm:
        return "attached_segment"
    if s_mm <= detachment_mm + tz:
        return "transition_zone"
    return "cisternal"


def in_root_exit_zone(s_mm: float, detachment_mm: float, transition_zone_mm: float | None = None) -> bool:
    """True when arc length ``s_mm`` lies between the root exit point and the end of the transition zone."""
    tz = segment_config()["transition_zone_mm"] if transition_zone_mm is None else transition_zone_mm
    return s_mm <= detachment_mm + tz
