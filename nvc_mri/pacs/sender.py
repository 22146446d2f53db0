"""Deliver result objects to the destination by C-STORE."""

from __future__ import annotations

from pathlib import Path

import pydicom
from pynetdicom import AE, build_context
from pynetdicom.sop_class import (
    Comprehensive3DSRStorage,
    SecondaryCaptureImageStorage,
    SegmentationStorage,
)
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from nvc_mri.errors import InputError

RESULT_CONTEXTS = [build_context(c, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
                   for c in (SegmentationStorage, Comprehensive3DSRStorage, SecondaryCaptureImageStorage)]


def ae_title_problem(title: str) -> str | None:
    """Why ``title`` is not a DICOM AE title (1-16 characters, not all spaces, no backslash or control
    characters), or None."""
    if not 1 <= len(title) <= 16 or not title.strip():
        return f"AE title {title!r} must be 1 to 16 characters"
    if "\\" in title or any(ord(ch) < 32 or ord(ch) > 126 for ch in title):
        return f"AE title {title!r} may hold only printable ASCII characters, no backslash"
    return None


def port_problem(port: int) -> str | None:
    return None if 1 <= port <= 65535 else f"port {port} is not 1-65535"


class Destination:
    """``AE@HOST:PORT``."""

    def __init__(self, text: str):
        try:
            ae, address = text.split("@", 1)
            host, port = address.rsplit(":", 1)
            self.ae_title, self.host, self.port = ae, host, int(port)
        except ValueError:
            raise InputError(f"--destination {text}", "not AE@HOST:PORT") from None
        if problem := ae_title_problem(ae) or port_problem(self.port) or (None if host else "no host"):
            raise InputError(f"--destination {text}", problem)

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


def send_files(files: list[Path], destination: Destination, calling_ae: str, tls=None) -> str | None:
    """C-STORE every file in one association. Returns None on success, else why it failed."""
    ae = AE(ae_title=calling_ae)
    ae.requested_contexts = RESULT_CONTEXTS
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    assoc = ae.associate(destination.host, destination.port, ae_title=destination.ae_title, tls_args=tls)
    if not assoc.is_established:
        return f"cannot associate with {destination}"
    try:
        for path in files:
            status = assoc.send_c_store(pydicom.dcmread(path))
            if not status or status.Status not in (0x0000, 0xB000, 0xB006, 0xB007):
                return f"C-STORE of {path.name} refused (status {getattr(status, 'Status', 'none')})"
        return None
    finally:
        assoc.release()
