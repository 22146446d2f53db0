"""Vessel-to-nerve contact at the root exit zone, the offending vessel, and CPA lesions.

``measure(labels, affine)`` turns a label map (``nvc_mri.labels.Label`` values, any grid and
orientation) into :class:`Findings` for the patient's left and right sides. All positions are
RAS+ world mm; thresholds come from ``configs/contact.yaml`` and ``configs/nerve_segments.yaml``.
"""

from nvc_mri.measure.findings import ArteryRelation, Conflict, Findings, LesionFindings, SideFindings
from nvc_mri.measure.study import measure

__all__ = ["measure", "Findings", "SideFindings", "Conflict", "ArteryRelation", "LesionFindings"]
