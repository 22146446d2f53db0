"""``nvc-mri serve``: a DICOM node beside the PACS.

Receives MR studies (Storage SCP), waits for a quiet period to call a study complete, analyses it
in a separate worker process (never in the network thread), and sends the DICOM SEG, SR and key
images back to the destination with retries and backoff. The spool keeps everything across restarts.
Logs name studies by a hash of their UID only.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing as mp
import ssl
import threading
import time
from pathlib import Path

from pynetdicom import AE, evt
from pynetdicom.sop_class import EnhancedMRImageStorage, LegacyConvertedEnhancedMRImageStorage, MRImageStorage, Verification
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from nvc_mri.config import load_config
from nvc_mri.errors import InputError
from nvc_mri.pacs.sender import Destination, ae_title_problem, port_problem, send_files
from nvc_mri.pacs.spool import ACTIVE, Spool, uid_hash

log = logging.getLogger("nvc_mri.pacs")
ACCEPTED_CLASSES = (MRImageStorage, EnhancedMRImageStorage, LegacyConvertedEnhancedMRImageStorage)
TRANSFER_SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian,
                     JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLosslessSV1, JPEGLSLossless, JPEGLSNearLossless,
                     JPEG2000Lossless, JPEG2000, RLELossless]
OUT_OF_RESOURCES, SUCCESS = 0xA700, 0x0000


def analyse_spooled(study: str, spool_root: str, device: str) -> dict:
    """Worker process: analyse one spooled study into ``results/<study>`` (the batch code path)."""
    from nvc_mri.batch.discover import Study
    from nvc_mri.batch.worker import analyze_study

    spool = Spool(spool_root)
    files = tuple(str(p) for p in spool.instances(study))
    return analyze_study(Study(study, "dicom", str(spool.study_dir(study)), files), str(spool.results_root()), device=device)


class Node:
    """The DICOM node. ``start()`` returns at once; ``stop()`` shuts it down (the spool stays)."""

    def __init__(self, spool: str | Path, destination: str, *, ae_title: str = "NVC", port: int = 11112, host: str = "0.0.0.0",
                 allow: list[str] | None = None, ssl_context: ssl.SSLContext | None = None, config: dict | None = None):
        self.destination = Destination(destination)
        self.ae_title, self.port, self.host, self.allow = ae_title, port, host, list(allow or [])
        self.ssl_context = ssl_context
        self.cfg = {**load_config("pacs.yaml"), **(config or {})}
        self._check_settings()  # before the spool is made: a refused node leaves nothing behind
        self.spool = Spool(spool)
        self._stop = threading.Event()
        self._next_send: dict[str, tuple[float, int]] = {}
        self._running: dict[str, concurrent.futures.Future] = {}
        logging.getLogger("pynetdicom").setLevel(logging.WARNING)  # its debug/info logs carry UIDs and names

    def _check_settings(self) -> None:
        """Refuse, in one line, settings the node would only fail on later (at bind, or at every study)."""
        from nvc_mri.segment.inference import select_device

        for option, title in [("--ae-title", self.ae_title)] + [("--allow", a) for a in self.allow]:
            if problem := ae_title_problem(title):
                raise InputError(f"{option} {title}", problem)
        if problem := port_problem(self.port):
            raise InputError(f"--port {self.port}", problem)
        if not float(self.cfg["quiet_period_s"]) > 0:
            raise InputError(f"--quiet-period {self.cfg['quiet_period_s']}", "the quiet period must be more than 0 s")
        select_device(str(self.cfg["device"]))  # a bad name, or CUDA where there is none, fails here, not per study

    # network thread --------------------------------------------------------------------------
    def _on_store(self, event) -> int:
        try:
            encoded = event.encoded_dataset(include_meta=True)
            if len(encoded) > self.cfg["max_instance_bytes"]:
                log.warning("instance refused: %d bytes is over the limit", len(encoded))
                return OUT_OF_RESOURCES
            ds = event.dataset
            study_uid, sop_uid = str(ds.StudyInstanceUID), str(ds.SOPInstanceUID)
            study = uid_hash(study_uid)
            if self.spool.state(study).get("status") not in ACTIVE and len(self.spool.studies(*ACTIVE)) >= self.cfg["max_active_studies"]:
                log.warning("study %s refused: %d studies are waiting already", study, self.cfg["max_active_studies"])
                return OUT_OF_RESOURCES
            self.spool.store_instance(study_uid, sop_uid, encoded)
            return SUCCESS
        except Exception as exc:  # never let a bad instance take the node down
            log.error("instance not stored: %s", type(exc).__name__)
            return 0xC000

    def _server_ae(self) -> AE:
        ae = AE(ae_title=self.ae_title)
        for sop_class in ACCEPTED_CLASSES:
            ae.add_supported_context(sop_class, TRANSFER_SYNTAXES)
        ae.add_supported_context(Verification)
        if self.allow:
            ae.require_calling_aet = self.allow
        ae.maximum_associations = 16
        return ae

    # background work -------------------------------------------------------------------------
    def _schedule(self) -> None:
        now = time.time()
        for study in self.spool.studies("receiving"):
            if now - self.spool.state(study).get("last_received", 0) >= self.cfg["quiet_period_s"]:
                self.spool.set_state(study, status="queued")
                log.info("study %s complete (%d instances), queued", study, len(self.spool.instances(study)))
        for study in self.spool.studies("queued"):
            if study not in self._running:
                self.spool.set_state(study, status="processing")
                self._running[study] = self._executor.submit(analyse_spooled, study, str(self.spool.root), self.cfg["device"])
        for study, future in list(self._running.items()):
            if future.done():
                del self._running[study]
                self._finish(study, future)

    def _finish(self, study: str, future) -> None:
        try:
            row = future.result()
        except Exception as exc:  # the worker process died: run the study again once
            retried = self.spool.state(study).get("retried", False)
            self.spool.set_state(study, status="failed" if retried else "queued", retried=True, reason=type(exc).__name__)
            self._executor = self._new_executor()
            return
        if self.spool.state(study).get("status") == "receiving":
            return  # more instances came during the analysis: it runs again after the next quiet period
        if row["status"] != "done":
            self.spool.set_state(study, status="failed", reason=row["reason"])
            log.warning("study %s not analysed: %s", study, row["reason"].split(": ", 1)[-1])
            return
        results = sorted((self.spool.results_root() / study / "dicom").glob("*.dcm"))
        if results:
            self.spool.queue_outgoing(study, results)
        else:  # e.g. a source without a FrameOfReferenceUID: report.json says why
            log.warning("study %s analysed, but it has no DICOM results to send (see its report.json warnings)", study)
        self.spool.set_state(study, status="done", reason=None)
        log.info("study %s analysed: right %s, left %s", study, row["right_severity"], row["left_severity"])

    def _send(self) -> None:
        backoff = self.cfg["send_backoff_s"]
        for study in self.spool.outgoing():
            due, attempts = self._next_send.get(study, (0.0, 0))
            if time.time() < due:
                continue
            problem = send_files(self.spool.outgoing_files(study), self.destination, self.ae_title)
            if problem is None:
                self.spool.delivered(study)
                self._next_send.pop(study, None)
                log.info("results of study %s delivered to %s", study, self.destination)
            else:
                wait = backoff[min(attempts, len(backoff) - 1)]
                self._next_send[study] = (time.time() + wait, attempts + 1)
                log.warning("results of study %s not delivered (%s); retry in %.0f s", study, problem, wait)

    def _loop(self) -> None:
        last_beat = 0.0
        while not self._stop.is_set():
            try:
                self._schedule()
                self._send()
                if time.time() - last_beat >= self.cfg["heartbeat_s"]:
                    self.spool.heartbeat()
                    last_beat = time.time()
            except Exception as exc:  # keep serving; the spool keeps the state
                log.error("background loop: %s: %s", type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
            self._stop.wait(self.cfg["poll_interval_s"])

    @staticmethod
    def _new_executor() -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn"))

    # lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Pick up unfinished work from the spool, then listen and work in the background."""
        for study in self.spool.studies("processing"):
            self.spool.set_state(study, status="queued")  # interrupted by a stop or crash: analyse again
        self._executor = self._new_executor()
        self.spool.heartbeat()
        handlers = [(evt.EVT_C_STORE, self._on_store)]
        self._server = self._server_ae().start_server((self.host, self.port), block=False, evt_handlers=handlers,
                                                      ssl_context=self.ssl_context)
        self._thread = threading.Thread(target=self._loop, name="nvc-node-work", daemon=True)
        self._thread.start()
        log.info("listening as %s on port %d; results go to %s", self.ae_title, self.port, self.destination)

    def stop(self) -> None:
        """Stop listening and working; an analysis in progress is abandoned and redone at the next start."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._server.shutdown()
        self._thread.join(timeout=30)
        processes = list((getattr(self._executor, "_processes", None) or {}).values())
        self._executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.kill()
