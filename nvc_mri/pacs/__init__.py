"""PACS workflow: a DICOM node (Storage SCP) that analyses received studies and sends results back."""

from nvc_mri.pacs.node import Node
from nvc_mri.pacs.spool import Spool, uid_hash

__all__ = ["Node", "Spool", "uid_hash"]
