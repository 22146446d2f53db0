"""A throw-away Orthanc (a real PACS) on loopback ports, and dcmtk's storescu, for the PACS tests."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from pathlib import Path


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
