"""One sentence per side and per lesion, in the words a radiologist would dictate."""

from __future__ import annotations

from nvc_mri.measure.findings import Conflict, LesionFindings, SideFindings

WHERE = {
    "root_exit_point": "at the root exit point",
    "attached_segment": "along the attached segment",
    "root_detachment_point": "at the root detachment point",
    "transition_zone": "in the transition zone",
    "cisternal": "in the cisternal portion",
}
LESION_TYPES = {
    "vestibular_schwannoma": "likely vestibular schwannoma",
    "meningioma": "likely meningioma",
    "epidermoid": "likely epidermoid",
    "arachnoid_cyst": "likely arachnoid cyst",
    "unknown": "type indeterminate",
}
ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV"}


def _artery(side: str, vessel: str | None) -> str:
    if vessel in (None, "unknown"):
        return f"An unnamed {side} artery"
    return f"{side.capitalize()} {vessel}"


def _deformity(nvc: Conflict) -> tuple[str, str]:
    """Verb phrase and measurement of a deformity: indentation, displacement or both."""
    indent, displace = nvc.indentation_mm or 0.0, nvc.displacement_mm or 0.0
    if indent > 0 and displace > 0:
        return "indents and displaces", f"indentation {indent:.1f} mm, displacement {displace:.1f} mm"
    if displace > indent:
        return "displaces", f"displacement {displace:.1f} mm"
    return "indents", f"indentation {indent:.1f} mm"


def side_impression(findings: SideFindings) -> str:
    """E.g. 'Left AICA contacts and indents the facial nerve at the root detachment point (gap 0.0 mm, indentation 0.6 mm).'"""
    side = findings.side
    if findings.status != "measured":
        return f"{side.capitalize()} facial nerve not assessable: {findings.reason}."
    nvc = findings.nvc
    if nvc.severity in (None, "none"):
        if nvc.min_gap_mm is None or nvc.vessel is None:
            text = f"No artery near the {side} facial nerve."
        else:
            text = f"No vessel contact with the {side} facial nerve; nearest artery ({nvc.vessel}) {nvc.min_gap_mm:.1f} mm away."
    else:
        where = WHERE.get(nvc.segment or "", "")
        if nvc.severity == "deformity":
            verb, size = _deformity(nvc)
            text = f"{_artery(side, nvc.vessel)} contacts and {verb} the facial nerve {where} (gap {nvc.min_gap_mm:.1f} mm, {size})."
        else:
            text = f"{_artery(side, nvc.vessel)} contacts the facial nerve {where} (gap {nvc.min_gap_mm:.1f} mm), without deformity."
        if not nvc.nvc and nvc.distance_from_root_exit_mm is not None:
            text = text[:-1] + f"; outside the root exit zone ({nvc.distance_from_root_exit_mm:.1f} mm from the root exit point)."
    cn8 = findings.vestibulocochlear
    if cn8.severity in ("contact", "deformity"):
        text += f" The vestibulocochlear nerve is contacted by the {cn8.vessel or 'an unnamed artery'} (gap {cn8.min_gap_mm:.1f} mm)."
    return text


def lesion_impression(lesion: LesionFindings) -> str:
    """E.g. 'Right CPA lesion, likely vestibular schwannoma, 14.2 mm (980 mm3), intracanalicular with CPA extension, Koos grade III.'"""
    place = ("intracanalicular with cerebellopontine angle extension" if lesion.intracanalicular and lesion.cpa_extension
             else "purely intracanalicular" if lesion.intracanalicular else "in the cerebellopontine angle")
    text = (f"{lesion.side.capitalize()} lesion, {LESION_TYPES[lesion.type_guess]}, {lesion.max_diameter_mm:.1f} mm maximal diameter "
            f"({lesion.volume_mm3:.0f} mm3), {place}")
    if lesion.koos_grade:
        text += f", Koos grade {ROMAN[lesion.koos_grade]}"
    effects = []
    if lesion.touches_facial_nerve:
        effects.append("touches the facial nerve")
    if lesion.brainstem_compression_mm > 0:
        effects.append(f"compresses the brainstem ({lesion.brainstem_compression_mm:.1f} mm)")
    elif lesion.contacts_brainstem:
        effects.append("contacts the brainstem")
    return text + ("; " + ", ".join(effects) if effects else "") + "."
