"""The DICOM node against a real PACS (Orthanc) and dcmtk's storescu: results arrive, nothing is lost."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pydicom
import pytest

from nvc_mri.pacs import Node
from nvc_mri.phantom import ConflictSpec, generate
from nvc_mri.phantom.write import write_case

pytestmark = pytest.mark.skipif(not (shutil.which("Orthanc") and shutil.which("storescu")), reason="Orthanc or dcmtk missing")
FAST = {"quiet_period_s": 3, "poll_interval_s": 0.3, "send_backoff_s": [1, 2], "heartbeat_s": 1}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Orthanc:
    """A throw-away Orthanc on loopback ports, configured by the test."""

    def __init__(self, folder: Path, node_port: int):
        self.http, self.dicom = free_port(), free_port()
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "orthanc.json"
        self.config.write_text(json.dumps({
            "Name": "nvc-test", "StorageDirectory": str(folder / "db"), "IndexDirectory": str(folder / "db"),
            "HttpPort": self.http, "DicomPort": self.dicom, "DicomAet": "ORTHANC", "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False, "DicomModalities": {"nvc": ["NVC", "127.0.0.1", node_port]},
            "Plugins": [], "ConcurrentJobs": 1, "HttpTimeout": 10}))
        self.process = None

    def start(self) -> None:
        self.process = subprocess.Popen(["Orthanc", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                self.get("/system")
                return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("Orthanc did not start")

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None

    def get(self, path: str):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}{path}", timeout=10) as response:
            return json.loads(response.read())

    def series_of(self, study_uid: str) -> dict[str, dict]:
        """Modality -> main tags of every series in the study (empty when the study is not there)."""
        for study in self.get("/studies"):
            info = self.get(f"/studies/{study}")
            if info["MainDicomTags"].get("StudyInstanceUID") == study_uid:
                return {self.get(f"/series/{s}")["MainDicomTags"].get("Modality"): self.get(f"/series/{s}") for s in info["Series"]}
        return {}

    def wait_for_results(self, study_uid: str, timeout: float = 240) -> dict[str, dict]:
        deadline = time.time() + timeout
        while time.time() < deadline:
            series = self.series_of(study_uid)
            if {"SEG", "SR", "OT"} <= set(series):
                return series
            time.sleep(1)
        raise AssertionError(f"results did not arrive; series now: {sorted(self.series_of(study_uid))}")


def storescu(files: list[Path], port: int, calling: str = "ORTHANC") -> subprocess.CompletedProcess:
    return subprocess.run(["storescu", "-aet", calling, "-aec", "NVC", "127.0.0.1", str(port), *map(str, files)],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[list[Path], str]:
    case = generate(7, contrast="ciss", spacing_mm=(0.5, 0.5, 0.7), slab_mm=44, fov_mm=110.0, lesion_probability=0.0,
                    left=ConflictSpec(kind="deformity", segment="attached_segment", vessel="AICA"))
    folder = write_case(case, tmp_path_factory.mktemp("pacs") / "case", "dicom")
    files = sorted((folder / "dicom").glob("*.dcm"))
    return files, str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)


@pytest.fixture
def setup(tmp_path):
    node_port = free_port()
    orthanc = Orthanc(tmp_path / "orthanc", node_port)
    nodes = []

    def node(**config):
        n = Node(tmp_path / "spool", f"ORTHANC@127.0.0.1:{orthanc.dicom}", port=node_port, host="127.0.0.1",
                 allow=["ORTHANC", "STORESCU"], config={**FAST, **config})
        n.start()
        nodes.append(n)
        return n

    yield orthanc, node, node_port, tmp_path / "spool"
    for n in nodes:
        n.stop()
    orthanc.stop()


def _references(orthanc: Orthanc, series: dict) -> dict:
    instance = series["Instances"][0]
    return orthanc.get(f"/instances/{instance}/simplified-tags")


def test_study_is_analysed_and_results_arrive_in_the_same_study(study, setup):
    files, study_uid = study
    orthanc, node, port, spool = setup
    orthanc.start()
    node()
    sent = storescu(files, port)
    assert sent.returncode == 0, sent.stderr
    series = orthanc.wait_for_results(study_uid)
    source_series = pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID
    seg = _references(orthanc, series["SEG"])
    assert seg["StudyInstanceUID"] == study_uid
    assert seg["ReferencedSeriesSequence"][0]["SeriesInstanceUID"] == source_series
    assert len(seg["ReferencedSeriesSequence"][0]["ReferencedInstanceSequence"]) == len(files)
    sr = _references(orthanc, series["SR"])
    evidence = {s["SeriesInstanceUID"] for item in sr["CurrentRequestedProcedureEvidenceSequence"] for s in item["ReferencedSeriesSequence"]}
    assert evidence == {source_series, seg["SeriesInstanceUID"]}
    assert not list((spool / "outgoing").iterdir())  # delivered, nothing waiting
    log_text = "".join(p.read_text() for p in (spool / "studies").rglob("state.json"))
    assert study_uid not in log_text and study_uid not in "".join(p.name for p in spool.rglob("*"))


def test_other_sop_classes_and_unknown_callers_are_refused(study, setup, tmp_path):
    files, _ = study
    orthanc, node, port, spool = setup
    node()
    refused = storescu(files[:1], port, calling="INTRUDER")
    assert refused.returncode != 0 and not list((spool / "studies").iterdir())
    ds = pydicom.dcmread(files[0])
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage
    ds.Modality = "CT"
    ct = tmp_path / "ct.dcm"
    ds.save_as(ct)
    result = storescu([ct], port)
    assert not list((spool / "studies").iterdir()), result.stdout + result.stderr


def test_restart_mid_study_loses_nothing(study, setup):
    files, study_uid = study
    orthanc, node, port, spool = setup
    orthanc.start()
    first = node(quiet_period_s=30)
    half = len(files) // 2
    assert storescu(files[:half], port).returncode == 0
    first.stop()                                   # the node goes down with half a study in the spool
    node(quiet_period_s=3)
    assert storescu(files[half:], port).returncode == 0
    series = orthanc.wait_for_results(study_uid)
    seg = _references(orthanc, series["SEG"])
    assert len(seg["ReferencedSeriesSequence"][0]["ReferencedInstanceSequence"]) == len(files)  # the whole study


def test_results_wait_while_the_pacs_is_down(study, setup):
    files, study_uid = study
    orthanc, node, port, spool = setup
    node()                                          # Orthanc is not running yet: the destination is down
    assert storescu(files, port).returncode == 0
    deadline = time.time() + 240
    while time.time() < deadline and not list((spool / "outgoing").iterdir()):
        time.sleep(1)
    pending = list((spool / "outgoing").iterdir())
    assert len(pending) == 1 and len(list(pending[0].glob("*.dcm"))) == 3
    time.sleep(3)                                   # a few failed attempts
    assert list((spool / "outgoing").iterdir())
    orthanc.start()
    orthanc.wait_for_results(study_uid)
