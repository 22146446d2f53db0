"""Coded concepts of the DICOM outputs: SNOMED CT and DICOM codes where the standard has them,
the private scheme ``99NVC`` (declared in every SR) for the toolkit's own concepts."""

from __future__ import annotations

from highdicom.sr import CodedConcept
from pydicom.sr.codedict import codes

from nvc_mri.labels import Label

SCHEME = "99NVC"


def nvc_code(value: str, meaning: str) -> CodedConcept:
    return CodedConcept(value=value, scheme_designator=SCHEME, meaning=meaning)


ANATOMY = codes.SCT.AnatomicalStructure
ABNORMAL = codes.SCT.MorphologicallyAbnormalStructure
# label value -> (segment label, category, property type, display colour RGB)
SEGMENTS = {
    Label.BRAINSTEM: ("Brainstem", ANATOMY, codes.SCT.BrainStem, (77, 140, 255)),
    Label.FACIAL_NERVE: ("Facial nerve (CN VII)", ANATOMY, codes.SCT.FacialNerve, (255, 217, 26)),
    Label.VESTIBULOCOCHLEAR_NERVE: ("Vestibulocochlear nerve (CN VIII)", ANATOMY, codes.SCT.VestibulocochlearNerve, (51, 230, 89)),
    Label.ARTERY: ("Artery", ANATOMY, codes.SCT.Artery, (255, 38, 38)),
    Label.LESION: ("CPA lesion", ABNORMAL, codes.SCT.Lesion, (230, 51, 230)),
}
LATERALITY = {"right": codes.SCT.Right, "left": codes.SCT.Left}

CPA = nvc_code("CPA", "Cerebellopontine angle or internal auditory canal")
PROCEDURE = CodedConcept(value="24590-2", scheme_designator="LN", meaning="MR Brain")
FINDING_NVC = nvc_code("NVC", "Neurovascular contact at the facial nerve")
FINDING_CN8 = nvc_code("NVC8", "Neurovascular contact at the vestibulocochlear nerve")

MIN_GAP = codes.DCM.Distance
INDENTATION = codes.SCT.Depth
DISPLACEMENT = nvc_code("DISPL", "Nerve displacement at the contact")
ARC_FROM_REP = nvc_code("ARCREP", "Distance along the nerve from the root exit point")
VOLUME = codes.SCT.Volume
DIAMETER = codes.SCT.Diameter
MM = codes.UCUM.Millimeter
MM3 = codes.UCUM.CubicMillimeter

SEVERITY = codes.SCT.Severity
SEVERITY_VALUES = {"none": nvc_code("SEV0", "No vessel contact"), "contact": nvc_code("SEV1", "Vessel contact without deformity"),
                   "deformity": nvc_code("SEV2", "Vessel contact with nerve deformity")}
VESSEL = nvc_code("VESSEL", "Offending vessel")
VESSEL_VALUES = {"AICA": nvc_code("AICA", "Anterior inferior cerebellar artery"),
                 "PICA": nvc_code("PICA", "Posterior inferior cerebellar artery"),
                 "VA": codes.SCT.VertebralArtery, "BA": codes.SCT.BasilarArtery,
                 "unknown": nvc_code("UNKART", "Artery, not identified")}
NERVE_SEGMENT = nvc_code("NSEG", "Location along the facial nerve")
NERVE_SEGMENT_VALUES = {
    "root_exit_point": nvc_code("REP", "Root exit point"), "attached_segment": nvc_code("ATT", "Attached segment"),
    "root_detachment_point": nvc_code("RDP", "Root detachment point"), "transition_zone": nvc_code("TZ", "Transition zone"),
    "cisternal": nvc_code("CIST", "Cisternal portion"),
}
IN_REZ = nvc_code("INREZ", "Contact within the root exit zone")
YES_NO = {True: codes.SCT.Yes, False: codes.SCT.No}
KOOS = nvc_code("KOOS", "Koos grade")
KOOS_VALUES = {g: nvc_code(f"KOOS{g}", f"Koos grade {r}") for g, r in ((1, "I"), (2, "II"), (3, "III"), (4, "IV"))}
LESION_TYPE = nvc_code("LTYPE", "Lesion type (image-based guess)")
LESION_TYPE_VALUES = {"vestibular_schwannoma": nvc_code("VS", "Vestibular schwannoma"), "meningioma": nvc_code("MEN", "Meningioma"),
                      "epidermoid": codes.SCT.EpidermoidCyst, "arachnoid_cyst": nvc_code("ARC", "Arachnoid cyst"),
                      "unknown": nvc_code("UNKL", "Lesion type indeterminate")}
VALIDITY = nvc_code("VALID", "Analysis validity")
FORCED_NON_T2 = nvc_code("FORCED", "Forced analysis of non heavily T2 series: unreliable")
NOT_MEASURED = nvc_code("NOTMEAS", "Not measured: nerve or brainstem not found on the labels")
