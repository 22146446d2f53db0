"""The DICOM node against a real PACS (Orthanc) and dcmtk's storescu: results arrive, nothing is lost."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pydicom
import pytest

from nvc_mri.pacs import Node
from nvc_mri.phantom import ConflictSpec, generate
from nvc_mri.phantom.write import write_case
from tests.orthanc import Orthanc, free_port, storescu

pytestmark = pytest.mark.skipif(not (shutil.which("Orthanc") and shutil.which("storescu")), reason="Orthanc or dcmtk missing")
FAST = {"quiet_period_s": 3, "poll_interval_s": 0.3, "send_backoff_s": [1, 2], "heartbeat_s": 1}


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
    # delivered, nothing waiting: the node clears its outgoing spool after the association that sent the last
    # object is released, which can be a moment after Orthanc shows the results
    deadline = time.monotonic() + 60
    while list((spool / "outgoing").iterdir()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not list((spool / "outgoing").iterdir())
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
    def queued() -> list[Path]:                     # results being staged sit under a hidden temporary name
        return [p for p in (spool / "outgoing").iterdir() if not p.name.startswith(".")]
    deadline = time.time() + 240
    while time.time() < deadline and not queued():
        time.sleep(1)
    pending = queued()
    assert len(pending) == 1 and len(list(pending[0].glob("*.dcm"))) == 3
    time.sleep(3)                                   # a few failed attempts
    assert queued()
    orthanc.start()
    orthanc.wait_for_results(study_uid)


def test_a_study_without_dicom_results_is_not_queued_for_sending(study, setup, tmp_path):
    """A source without a FrameOfReferenceUID is analysed but gets no DICOM outputs (its report says why): nothing
    is queued, so the node does not keep calling a PACS with nothing to send."""
    import json

    files, _ = study
    orthanc, node, port, spool = setup
    node()                                          # the destination is down: an empty queue would be retried
    edited = []
    for path in files:
        ds = pydicom.dcmread(path)
        del ds.FrameOfReferenceUID
        ds.save_as(tmp_path / path.name)
        edited.append(tmp_path / path.name)
    assert storescu(edited, port).returncode == 0
    deadline = time.time() + 240
    states: list[dict] = []
    while time.time() < deadline and not any(s.get("status") == "done" for s in states):
        time.sleep(1)
        states = [json.loads(p.read_text()) for p in (spool / "studies").rglob("state.json")]
    assert [s["status"] for s in states] == ["done"]
    reports = list((spool / "results").rglob("report.json"))
    assert len(reports) == 1 and any("DICOM outputs not written" in w for w in json.loads(reports[0].read_text())["warnings"])
    assert not [p for p in (spool / "outgoing").iterdir() if not p.name.startswith(".")]


def test_size_and_study_limits(study, setup, tmp_path):
    files, _ = study
    orthanc, node, port, spool = setup
    small = node(max_instance_bytes=10_000, quiet_period_s=60)
    assert storescu(files[:1], port).returncode != 0 or not list((spool / "studies").iterdir())
    assert not list((spool / "studies").iterdir())
    small.stop()
    node(max_active_studies=1, quiet_period_s=60)
    assert storescu(files[:2], port).returncode == 0
    other = pydicom.dcmread(files[2])
    other.StudyInstanceUID = "1.2.826.0.1.3680043.10.1462.99"
    path = tmp_path / "other.dcm"
    other.save_as(path)
    storescu([path], port)
    assert len(list((spool / "studies").iterdir())) == 1  # the second study waits for room


def test_tls_only_node(study, setup, tmp_path):
    import ssl

    from pynetdicom import AE
    from pynetdicom.sop_class import MRImageStorage

    files, _ = study
    orthanc, _, port, spool = setup
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    node = Node(spool, f"ORTHANC@127.0.0.1:{orthanc.dicom}", port=port, host="127.0.0.1", allow=["ORTHANC"], ssl_context=server,
                config={**FAST, "quiet_period_s": 60})
    node.start()
    try:
        client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cert))
        ae = AE(ae_title="ORTHANC")
        ae.add_requested_context(MRImageStorage)
        assoc = ae.associate("127.0.0.1", port, ae_title="NVC", tls_args=(client, "localhost"))
        assert assoc.is_established
        assert assoc.send_c_store(pydicom.dcmread(files[0])).Status == 0x0000
        assoc.release()
        assert storescu(files[1:2], port).returncode != 0  # plain TCP is not spoken
        assert len(list(Path(spool, "studies").rglob("*.dcm"))) == 1
    finally:
        node.stop()


@pytest.mark.parametrize("args, message", [
    (["--port", "70000"], "--port 70000: port 70000 is not 1-65535"),
    (["--ae-title", "THIS_TITLE_IS_TOO_LONG"], "must be 1 to 16 characters"),
    (["--device", "gpu0"], "--device gpu0: device must be"),
    (["--quiet-period", "-3"], "the quiet period must be more than 0 s"),
    (["--destination", "PACS@host"], "not AE@HOST:PORT"),
])
def test_bad_node_settings_are_refused_at_start_leaving_no_spool(tmp_path, args, message):
    """Before, a bad port or AE title failed at bind with a library error, and a bad device or negative quiet
    period started a node that would fail or misbehave on every study."""
    from typer.testing import CliRunner

    from nvc_mri.cli import app

    base = ["serve", "--spool", str(tmp_path / "spool")]
    if "--destination" not in args:
        base += ["--destination", "PACS@127.0.0.1:11112"]
    result = CliRunner().invoke(app, base + args)
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "spool").exists()
