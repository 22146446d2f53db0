"""Loading MR volumes with exact geometry: NIfTI, DICOM (classic and enhanced), zip.

Every affine returned here maps voxel indices to RAS+ millimetres.
"""

from nvc_mri.io.load import load_volume, scan
from nvc_mri.io.sequence import SequenceGuess, classify_header, classify_intensities
from nvc_mri.io.volume import Volume, VolumeMeta

__all__ = ["Volume", "VolumeMeta", "SequenceGuess", "load_volume", "scan", "classify_header", "classify_intensities"]
