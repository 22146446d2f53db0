"""The Dockerfile, without a Docker engine: its install script runs in a fresh virtual environment and
its ENTRYPOINT + CMD (the DICOM node) serve a phantom study to a real PACS; its HEALTHCHECK passes."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pydicom
import pytest

from nvc_mri.phantom import generate
from nvc_mri.phantom.write import write_case
from tests.orthanc import Orthanc, free_port, storescu

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (shutil.which("Orthanc") and shutil.which("storescu")), reason="Orthanc or dcmtk missing")]


def dockerfile() -> dict:
    """ARG defaults, ENV values and the JSON-form instructions of the Dockerfile."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    out = {"ARG": {}, "ENV": {}, "RUN": []}
    for line in text.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "ARG" and "=" in rest:
            key, value = rest.split("=", 1)
            out["ARG"][key] = value
        elif word == "ENV":
            out["ENV"].update(dict(re.findall(r"(\w+)=(\S+)", rest)))
        elif word == "RUN":
            out["RUN"].append(rest)
        elif word in ("ENTRYPOINT", "CMD", "USER", "EXPOSE", "VOLUME"):
            out[word] = json.loads(rest) if rest.startswith("[") else rest
        elif word == "HEALTHCHECK":
            out[word] = json.loads(rest[rest.index("CMD") + 3:].strip())
    return out


def test_dockerfile_shape():
    spec = dockerfile()
    assert spec["ENTRYPOINT"] == ["nvc-mri"] and spec["CMD"] == ["serve"]
    assert spec["USER"] not in ("root", "0") and spec["EXPOSE"] == "11112" and spec["VOLUME"] == ["/spool"]
    assert spec["HEALTHCHECK"][0] == "nvc-mri"
    assert any("docker/install.sh" in run for run in spec["RUN"])
    assert spec["ARG"]["TORCH_INDEX"].endswith("/whl/cpu")  # CPU PyTorch by default


def test_image_install_and_default_command_serve_a_study(tmp_path):
    spec = dockerfile()
    venv = tmp_path / "venv"
    # the image's install step, with the build argument for a local torch mirror (TORCH_INDEX="")
    env = dict(os.environ, VENV=str(venv), SOURCE=str(ROOT), TORCH_SPEC=spec["ARG"]["TORCH_SPEC"], TORCH_INDEX="")
    env.pop("VIRTUAL_ENV", None)
    install = subprocess.run(["sh", str(ROOT / "docker" / "install.sh")], env=env, capture_output=True, text=True, timeout=1500)
    assert install.returncode == 0, install.stderr[-3000:]

    node_port = free_port()
    orthanc = Orthanc(tmp_path / "orthanc", node_port)
    orthanc.start()
    run_env = {**os.environ, **spec["ENV"], "PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "NVC_SPOOL": str(tmp_path / "spool"),
               "NVC_PORT": str(node_port), "NVC_DESTINATION": f"ORTHANC@127.0.0.1:{orthanc.dicom}", "NVC_ALLOW": "ORTHANC",
               "NVC_QUIET_PERIOD": "3", "MPLCONFIGDIR": str(tmp_path / "mpl")}
    run_env.pop("VIRTUAL_ENV", None)
    node = subprocess.Popen(spec["ENTRYPOINT"] + spec["CMD"], env=run_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        case = generate(7, contrast="ciss", spacing_mm=(0.6, 0.6, 0.8), slab_mm=40, fov_mm=100.0, lesion_probability=0.0)
        files = sorted((write_case(case, tmp_path / "case", "dicom") / "dicom").glob("*.dcm"))
        deadline = time.time() + 60
        while storescu(files[:1], node_port).returncode != 0:
            assert time.time() < deadline and node.poll() is None, "the node did not start"
            time.sleep(1)
        assert storescu(files, node_port).returncode == 0
        orthanc.wait_for_results(str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID))
        health = subprocess.run(spec["HEALTHCHECK"], env=run_env, timeout=60)
        assert health.returncode == 0
    finally:
        node.send_signal(signal.SIGTERM)
        output = node.communicate(timeout=60)[0]
        orthanc.stop()
    assert node.returncode == 0, output[-2000:]
    assert "delivered" in output
    uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    assert uid not in output  # no identifiers in the node's log
