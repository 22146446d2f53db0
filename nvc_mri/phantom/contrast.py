"""Tissue intensities of CISS- and FIESTA-like images and the domain-randomised mode."""

from __future__ import annotations

import numpy as np

TISSUES = ("air", "scalp", "bone", "csf", "parenchyma", "brainstem", "nerve", "artery", "vein",
           "schwannoma", "meningioma", "epidermoid", "cyst_wall")

# Signal relative to CSF (= 1). Heavily T2-weighted balanced SSFP: CSF bright, brain intermediate,
# nerves darker, arteries dark (flow void), bone and air void; fat in the scalp bright.
CONTRAST = {
    "ciss": dict(air=0.0, scalp=0.7, bone=0.03, csf=1.0, parenchyma=0.30, brainstem=0.33, nerve=0.16, artery=0.04,
                 vein=0.12, schwannoma=0.45, meningioma=0.27, epidermoid=0.82, cyst_wall=0.35),
    "fiesta": dict(air=0.0, scalp=0.8, bone=0.04, csf=1.0, parenchyma=0.24, brainstem=0.27, nerve=0.13, artery=0.07,
                   vein=0.15, schwannoma=0.40, meningioma=0.24, epidermoid=0.78, cyst_wall=0.3),
}


def tissue_intensities(contrast: str, rng: np.random.Generator) -> dict[str, float]:
    """Intensity of each tissue (CSF about 1000) for ``contrast``; ``random`` draws every tissue freely."""
    if contrast == "random":
        values = {t: float(rng.uniform(0.0, 1.0)) * 1000 for t in TISSUES}
        values["air"] = float(rng.uniform(0.0, 0.1)) * 1000
        return values
    base = CONTRAST[contrast]
    return {t: 1000.0 * base[t] * float(rng.uniform(0.93, 1.07)) for t in TISSUES}
