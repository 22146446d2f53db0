"""Batch runs: every study once, failures isolated, resumable, timeouts, dead workers, Dask distributed."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nvc_mri.batch import find_studies, run_batch
from nvc_mri.batch.discover import safe_name
from nvc_mri.cli import app
from nvc_mri.errors import InputError
from nvc_mri.phantom import generate
from nvc_mri.phantom.write import write_case
from tests.conftest import T1_HEADER

SMALL = dict(spacing_mm=(0.8, 0.8, 1.0), slab_mm=36, fov_mm=90.0, contrast="ciss", lesion_probability=0.0)
SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


@pytest.fixture(scope="module")
def studies(tmp_path_factory) -> Path:
    """A DICOM study nested two folders deep, a zip of another, a NIfTI with a space in its name, a truncated NIfTI, a text file."""
    src, root = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("in")
    a = write_case(generate(101, **SMALL), src / "a", "dicom")
    b = write_case(generate(102, **SMALL), src / "b", "dicom")
    c = write_case(generate(103, **SMALL), src / "c", "nifti")
    shutil.copytree(a / "dicom", root / "site1" / "Doe^Jane" / "series3")
    shutil.make_archive(str(root / "studyB"), "zip", b / "dicom")
    shutil.copy(c / "image.nii.gz", root / "patient x.nii.gz")
    (root / "broken.nii.gz").write_bytes((c / "image.nii.gz").read_bytes()[:4000])
    (root / "notes.txt").write_text("not an image")
    return root


@pytest.fixture(scope="module")
def first_batch(studies, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out")
    result = CliRunner().invoke(app, ["batch", str(studies), "-o", str(out), "--workers", "2"])
    assert result.exit_code == 3, result.output  # finished, with one failed study
    return out


def test_discovery_groups_dicom_by_study_and_names_safely(studies):
    found = find_studies(studies)
    assert sorted(s.kind for s in found) == ["dicom", "nifti", "nifti", "zip"]
    assert all(SAFE.match(s.name) for s in found)
    assert not any("Doe" in s.name or "Jane" in s.name for s in found)  # never a name from folders of DICOM studies
    assert safe_name("a/../b c.nii.gz").startswith("a_.._b_c-") and "/" not in safe_name("x/y.nii")


def test_outputs_under_the_input_root_are_not_taken_for_studies(studies, first_batch, tmp_path):
    """`batch /data -o /data/nvc` is a common layout: on the rerun each study's labels.nii.gz was found as a new
    NIfTI study (and failed as a label map). The output root, any batch output (batch.json) and any analysis's
    output folder are skipped; the studies beside them are still found."""
    root = tmp_path / "data"
    shutil.copytree(studies / "site1", root / "site1")
    shutil.copytree(first_batch, root / "nvc")                         # this batch's output root
    shutil.copytree(first_batch, root / "old_run")                     # an earlier batch's (batch.json)
    one = next(p for p in first_batch.iterdir() if (p / "labels.nii.gz").exists())
    shutil.copytree(one, root / "site1" / "results")                   # one `analyze -o` output
    (root / "old_run" / "batch.json").unlink()                         # an interrupted batch: its study folders still tell
    assert len(list((root / "old_run").rglob("labels.nii.gz"))) >= 3
    found = find_studies(root, exclude=root / "nvc")
    assert [s.kind for s in found] == ["dicom"]
    assert len(find_studies(root)) == 1  # without the exclusion, the output root is known by its own outputs


def test_batch_completes_every_study_and_records_the_failure(first_batch):
    summary = json.loads((first_batch / "summary.json").read_text())["studies"]
    assert len(summary) == 4 and len({r["study"] for r in summary}) == 4
    failed = [r for r in summary if r["status"] == "failed"]
    assert len(failed) == 1 and "truncated" in failed[0]["reason"]
    assert "broken" in (first_batch / "failures.csv").read_text()
    for row in summary:
        outdir = first_batch / row["study"]
        if row["status"] == "done":
            report = json.loads((outdir / "report.json").read_text())
            assert row["right_severity"] == report["sides"]["right"]["nvc"]["severity"]
            assert (outdir / "fingerprint.json").is_file() and (outdir / "labels.nii.gz").is_file()
            assert (outdir / "dicom" / "seg.dcm").is_file() == (row["kind"] in ("dicom", "zip"))
        else:
            assert [p.name for p in outdir.iterdir()] == ["error.json"]
    header = (first_batch / "summary.csv").read_text().splitlines()[0]
    assert "right_min_gap_mm" in header and "left_vessel" in header


def test_resume_skips_current_outputs_and_redoes_changed_or_interrupted(studies, first_batch, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(first_batch, out)
    nifti = studies / "patient x.nii.gz"
    os.utime(nifti, ns=(time.time_ns(), time.time_ns()))            # the input changed: redo
    interrupted = next(p for p in out.iterdir() if p.name.startswith("studyB"))
    (interrupted / "report.json").unlink()                          # outputs incomplete: redo
    (out / f".{interrupted.name}.tmp-leftover").mkdir()             # a killed run's temporary folder
    seen = []
    summary = run_batch(studies, out, resume=True, on_row=lambda row: seen.append(row["study"]))
    redone = {safe_name("patient x.nii.gz"), interrupted.name, safe_name("broken.nii.gz")}
    assert sorted(seen) == sorted(redone)                           # each once, nothing else
    assert summary.counts == {"done": 2, "failed": 1, "skipped": 1}
    assert not list(out.glob(".*.tmp-*"))


def test_hung_study_times_out_and_the_rest_finish(studies, tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    shutil.copy(studies / "patient x.nii.gz", root / "ok.nii.gz")
    os.mkfifo(root / "hangs.nii.gz")  # reading a FIFO nobody writes blocks forever
    summary = run_batch(root, tmp_path / "out", workers=2, timeout_s=60)
    rows = summary.rows
    assert rows[safe_name("hangs.nii.gz")]["status"] == "failed" and "timed out" in rows[safe_name("hangs.nii.gz")]["reason"]
    assert rows[safe_name("ok.nii.gz")]["status"] == "done"
    assert json.loads((tmp_path / "out" / safe_name("hangs.nii.gz") / "error.json").read_text())["error"].startswith("timed out")


def test_dead_worker_is_replaced_and_its_study_retried(studies, tmp_path):
    import multiprocessing as mp

    root = tmp_path / "in"
    root.mkdir()
    shutil.copy(studies / "patient x.nii.gz", root / "one.nii.gz")
    seen, killed = [], []

    def killer():
        deadline = time.time() + 120
        while time.time() < deadline and not killed:
            for child in mp.active_children():
                if child.name.startswith(("SpawnProcess", "Process")) and child.pid:
                    time.sleep(3)  # let it start the study
                    os.kill(child.pid, signal.SIGKILL)
                    killed.append(child.pid)
                    return
            time.sleep(0.2)

    thread = threading.Thread(target=killer)
    thread.start()
    summary = run_batch(root, tmp_path / "out", workers=1, on_row=lambda row: seen.append(row))
    thread.join()
    assert killed, "no worker process was found to kill"
    assert len(seen) == 1 and seen[0]["status"] == "done"
    assert summary.counts["done"] == 1


def test_dask_local_cluster_survives_a_killed_worker(studies, tmp_path):
    distributed = pytest.importorskip("distributed")
    root = tmp_path / "in"
    shutil.copytree(studies, root, ignore=shutil.ignore_patterns("broken*", "notes*"))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        seen = []

        def on_row(row):
            seen.append(row["study"])
            if len(seen) == 1:  # kill one worker mid-batch
                pid = next(iter(client.run(os.getpid).values()))
                os.kill(pid, signal.SIGKILL)

        summary = run_batch(root, tmp_path / "out", scheduler=client, on_row=on_row)
    names = [s.name for s in find_studies(root)]
    assert sorted(seen) == sorted(names)  # every study finished exactly once
    assert all(summary.rows[n]["status"] == "done" for n in names)
    for name in names:
        report = json.loads((tmp_path / "out" / name / "report.json").read_text())
        assert report["input"]["shape"] and report["sides"]["left"]["status"] in ("measured", "unknown")


def test_a_refused_dicom_study_is_named_by_its_own_folder_not_the_staging_one(tmp_path):
    """DICOM studies are read through a temporary folder of links; a refusal must name the study (its batch name,
    not the temporary folder, gone when the batch ends, nor a folder that may be named after the patient)."""
    from nvc_mri.batch.worker import analyze_study
    from nvc_mri.io.dicom_write import write_dicom_series

    write_dicom_series(generate(104, **SMALL).image, tmp_path / "in" / "t1", overrides=T1_HEADER)
    (study,) = find_studies(tmp_path / "in")
    row = analyze_study(study, str(tmp_path / "out"))
    assert row["status"] == "failed" and "not a heavily T2-weighted" in row["reason"]
    assert row["reason"].startswith(f"{study.name}: ") and "nvc-study-" not in row["reason"]
    error = json.loads((tmp_path / "out" / study.name / "error.json").read_text())
    assert "nvc-study-" not in error["error"]


@pytest.mark.parametrize("option", [["--workers", "0"], ["--timeout-per-study", "-5"]])
def test_bad_worker_count_or_timeout_is_refused_before_any_study(studies, tmp_path, option):
    """Before, --workers 0 ran anyway and a negative timeout failed every study as timed out."""
    result = CliRunner().invoke(app, ["batch", str(studies), "-o", str(tmp_path / "out"), *option])
    assert result.exit_code == 2 and "workers must be 1 or more and a timeout more than 0 s" in result.output
    assert not (tmp_path / "out").exists()


def test_an_input_folder_without_studies_is_an_error_not_an_empty_success(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("no scans here")
    result = CliRunner().invoke(app, ["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2 and "no NIfTI file, zip or DICOM study found here" in result.output
    assert not (tmp_path / "out").exists()



def test_a_device_the_cluster_workers_lack_is_refused_before_anything_is_written(studies, tmp_path):
    """Local workers' device was checked up front, a cluster's was not: every study failed on its own, one by one.
    The cluster's workers are now asked first. cuda:99 is missing with or without a GPU."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        with pytest.raises(InputError, match=r"--device cuda:99: 2 of 2 Dask workers cannot use it .*CUDA"):
            run_batch(studies, tmp_path / "out", scheduler=client, device="cuda:99")
    assert not (tmp_path / "out").exists()
    with pytest.raises(InputError, match="CUDA"):
        run_batch(studies, tmp_path / "out", device="cuda:99")
