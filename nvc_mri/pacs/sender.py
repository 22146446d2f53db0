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

RESULT_CONTEXTS = [build_context(c, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
                   for c in (SegmentationStorage, Comprehensive3DSRStorage, SecondaryCaptureImageStorage)]


class Destination:
    """``AE@HOST:PORT``."""

    def __init__(self, text: str):
        try:
            ae, address = text.split("@", 1)
            host, port = address.rsplit(":", 1)
            self.ae_title, self.host, self.port = ae, host, int(port)
        except ValueError:
            raise ValueError(f"destination {text!r} is not AE@HOST:PORT") from None

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
