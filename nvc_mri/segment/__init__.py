"""Segmentation of brainstem, CN VII, CN VIII, arteries and CPA lesions with small MONAI 3D U-Nets.

``segment(volume, device="auto")`` returns a label map on the input's grid; see
:mod:`nvc_mri.segment.inference` for the coarse-to-fine steps and
:mod:`nvc_mri.segment.train` for how the shipped weights are made.
"""

from nvc_mri.segment.inference import Segmentation, run_segmentation, segment

__all__ = ["Segmentation", "run_segmentation", "segment"]
