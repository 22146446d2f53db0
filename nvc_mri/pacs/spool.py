"""The node's persistent spool: received instances, study states, results waiting to be sent.

Layout under the spool folder (every name is a hash, never a DICOM value)::

    studies/<study>/instances/<instance>.dcm   received, written atomically
    studies/<study>/state.json                 receiving | queued | processing | done | failed
    results/<study>/                           analysis outputs (report.json, dicom/ ...)
    outgoing/<study>/*.dcm                     SEG, SR, key images waiting for the destination

Everything survives a restart: studies not finished are picked up again, results not delivered
are sent when the destination is back.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
from pathlib import Path

from nvc_mri.atomic import atomic_dir, atomic_write_bytes, atomic_write_text

ACTIVE = ("receiving", "queued", "processing")


def uid_hash(uid: str) -> str:
    """A UID as it may appear in file names and logs (no patient-linked value leaves in clear)."""
    return hashlib.sha256(str(uid).encode()).hexdigest()[:16]


class Spool:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        for sub in ("studies", "results", "outgoing"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    # studies -------------------------------------------------------------------------------
    def study_dir(self, study: str) -> Path:
        return self.root / "studies" / study

    def state(self, study: str) -> dict:
        try:
            return json.loads((self.study_dir(study) / "state.json").read_text())
        except (OSError, ValueError):
            return {}

    def set_state(self, study: str, **values) -> dict:
        with self._lock:
            state = {**self.state(study), **values}
            atomic_write_text(self.study_dir(study) / "state.json", json.dumps(state))
            return state

    def studies(self, *statuses: str) -> list[str]:
        out = []
        for folder in sorted((self.root / "studies").iterdir()):
            if folder.is_dir() and (not statuses or self.state(folder.name).get("status") in statuses):
                out.append(folder.name)
        return out

    def store_instance(self, study_uid: str, sop_uid: str, encoded: bytes) -> str:
        """Write one received instance; the study (re)enters the 'receiving' state. Returns the study's hash."""
        study = uid_hash(study_uid)
        atomic_write_bytes(self.study_dir(study) / "instances" / f"{uid_hash(sop_uid)}.dcm", encoded)
        self.set_state(study, status="receiving", last_received=time.time())
        return study

    def instances(self, study: str) -> list[Path]:
        return sorted((self.study_dir(study) / "instances").glob("*.dcm"))

    # results -------------------------------------------------------------------------------
    def results_root(self) -> Path:
        return self.root / "results"

    def queue_outgoing(self, study: str, files: list[Path]) -> None:
        """Put result files in the outgoing area (all or none)."""
        with atomic_dir(self.root / "outgoing" / study) as tmp:
            for path in files:
                shutil.copy2(path, tmp / path.name)

    def outgoing(self) -> list[str]:
        return sorted(p.name for p in (self.root / "outgoing").iterdir() if p.is_dir() and not p.name.startswith("."))

    def outgoing_files(self, study: str) -> list[Path]:
        return sorted((self.root / "outgoing" / study).glob("*.dcm"))

    def delivered(self, study: str) -> None:
        shutil.rmtree(self.root / "outgoing" / study, ignore_errors=True)

    def heartbeat(self) -> None:
        atomic_write_text(self.root / "heartbeat", f"{time.time():.0f}\n")
