"""Synthetic CISS/FIESTA posterior-fossa phantom with exact neurovascular-conflict ground truth."""

from nvc_mri.phantom.generate import PHANTOM_VERSION, PhantomCase, generate
from nvc_mri.phantom.options import ConflictSpec, LesionSpec, PhantomOptions

__all__ = ["generate", "PhantomCase", "PhantomOptions", "ConflictSpec", "LesionSpec", "PHANTOM_VERSION"]
