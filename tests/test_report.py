"""The structured report: analyze end to end, JSON contract, HTML in a real browser, DICOM checked by real tools."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from html import escape
from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes
from typer.testing import CliRunner

from nvc_mri.cli import app
from nvc_mri.io.dicom_write import write_dicom_series
from nvc_mri.phantom import ConflictSpec, LesionSpec, generate
from nvc_mri.phantom.write import write_case
from tests.conftest import T1_HEADER
from nvc_mri.report.key_images import AXIAL, edge_letters, nerve_plane
from nvc_mri.report.schema import Report, json_schema, schema_path

runner = CliRunner()


def _case():
    """A small CISS case: left AICA deformity, right Koos III vestibular schwannoma (a regression case, not an accuracy claim)."""
    return generate(7, contrast="ciss", spacing_mm=(0.5, 0.5, 0.7), slab_mm=44, fov_mm=110.0, lesion_probability=0.0,
                    left=ConflictSpec(kind="deformity", segment="attached_segment", vessel="AICA"), right=ConflictSpec(kind="none"),
                    lesion=LesionSpec(type="vestibular_schwannoma", koos=3, side="right"))


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    folder = write_case(_case(), tmp_path_factory.mktemp("case") / "case", "dicom")
    return folder / "dicom"


@pytest.fixture(scope="module")
def analysed(study, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("analysis") / "out"
    result = runner.invoke(app, ["analyze", str(study), "-o", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    return out


def _dciodvfy_errors(path: Path) -> list[str]:
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


def test_analyze_writes_every_output_and_a_schema_valid_report(analysed, study):
    jsonschema = pytest.importorskip("jsonschema")
    files = sorted(str(p.relative_to(analysed)) for p in analysed.rglob("*") if p.is_file())
    assert files == ["dicom/keyimages.dcm", "dicom/seg.dcm", "dicom/sr.dcm", "labels.nii.gz", "report.html", "report.json"]
    data = json.loads((analysed / "report.json").read_text())
    jsonschema.validate(data, json.loads(schema_path().read_text()))
    report = Report.model_validate(data)
    assert report.schema_version == "1.1" and report.input.series_instance_uid and report.input.is_heavily_t2_3d
    assert report.input.sequence_basis == "dicom-header"
    assert report.input.shape == list(nib.load(analysed / "labels.nii.gz").shape)
    assert len(report.software.model_sha256) == 64 and not report.forced
    assert not any("CSF around the brainstem" in w for w in report.warnings)  # the image check agrees with the header
    for side in ("left", "right"):
        nvc = data["sides"][side]["nvc"]
        for key in ("contact", "severity", "min_gap_mm", "segment", "distance_from_root_exit_mm", "vessel", "contact_point_ras_mm",
                    "indentation_mm"):
            assert key in nvc
    # the designed left AICA deformity at the attached segment is found; the right side has no contact
    assert data["sides"]["left"]["nvc"]["contact"] is True and data["sides"]["left"]["nvc"]["vessel"] == "AICA"
    assert data["sides"]["right"]["nvc"]["contact"] is False
    assert "Left AICA contacts" in data["sides"]["left"]["impression"]
    # the right Koos III schwannoma (3,084 mm3) is flagged, typed by its signal (brighter than the brainstem) and graded
    right = [lesion for lesion in data["lesions"] if lesion["side"] == "right"]
    largest = max(right, key=lambda lesion: lesion["volume_mm3"])
    assert largest["volume_mm3"] > 1000 and largest["type_guess"] == "vestibular_schwannoma" and largest["koos_grade"] == 3
    assert all((lesion["koos_grade"] is None) == (lesion["type_guess"] != "vestibular_schwannoma") for lesion in data["lesions"])
    # the page says what each type guess rests on
    page = (analysed / "report.html").read_text()
    assert "Type guessed from" in page and all(escape(lesion["type_basis"]) in page for lesion in data["lesions"])
    assert "RAS" in data["coordinate_system"] and set(report.timings_s) >= {"segmentation", "measurement", "report", "total"}


def test_shipped_schema_matches_the_model():
    assert json.loads(schema_path().read_text()) == json_schema(), "run scripts/export_schema.py"


def test_labels_nifti_on_the_input_grid(analysed, study):
    from nvc_mri.io import load_volume

    volume = load_volume(study)
    labels = nib.load(analysed / "labels.nii.gz")
    assert labels.shape == volume.shape
    np.testing.assert_allclose(labels.affine, volume.affine, atol=1e-4)
    assert set(np.unique(np.asarray(labels.dataobj))) >= {0, 1, 2, 4}


def test_dicom_objects_pass_dciodvfy(analysed):
    if not shutil.which("dciodvfy"):
        pytest.skip("dciodvfy (dicom3tools) not installed")
    for name in ("seg.dcm", "sr.dcm", "keyimages.dcm"):
        assert _dciodvfy_errors(analysed / "dicom" / name) == [], name


def _edited_copy(study: Path, folder: Path, edit) -> Path:
    """The study's instances with ``edit(dataset)`` applied to each, in ``folder``."""
    folder.mkdir()
    for path in study.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        edit(ds)
        ds.save_as(folder / path.name, enforce_file_format=True)
    return folder


def _write_dicom_outputs(analysed: Path, source: Path, folder: Path) -> list[Path]:
    """SEG, SR and key images for ``source`` (the analysed study, edited), from the analysed report and labels."""
    from nvc_mri.io import load_volume
    from nvc_mri.report.dicom import write_dicom

    report = Report.model_validate_json((analysed / "report.json").read_text())
    labels = np.asarray(nib.load(analysed / "labels.nii.gz").dataobj)
    return write_dicom(report, load_volume(source), labels, np.zeros((64, 96, 3), np.uint8), folder)


@pytest.mark.parametrize("character_set, name", [
    (["", "ISO 2022 IR 87"], "Yamada^Tarou=山田^太郎=やまだ^たろう"),  # Japanese: empty first value (default repertoire)
    ("ISO_IR 100", "Müller^Jürgen"),
    ("ISO_IR100", "Müller^Jürgen"),  # misspelt by the sender; pydicom reads it as Latin-1
])
def test_dicom_outputs_keep_the_patients_name_in_any_character_set(analysed, study, tmp_path, character_set, name):
    """The outputs copy the patient's name from the source and must encode it: a Japanese study's character set
    (``\\ISO 2022 IR 87``) made highdicom refuse to build the SEG, and the study got only error.json."""

    def edit(ds):
        ds.SpecificCharacterSet = character_set
        ds.PatientName = name

    for path in _write_dicom_outputs(analysed, _edited_copy(study, tmp_path / "source", edit), tmp_path / "dicom"):
        assert str(pydicom.dcmread(path).PatientName) == name, path.name
        if shutil.which("dciodvfy"):
            assert _dciodvfy_errors(path) == [], path.name


def test_dicom_outputs_of_a_de_identified_source(analysed, study, tmp_path):
    """De-identified exports drop Type 2 attributes (patient, study, slice thickness) that highdicom reads from the
    source; the SEG failed for want of them and the study got only error.json. The source's files are not changed."""
    dropped = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID", "StudyDate",
               "StudyTime", "ReferringPhysicianName", "SliceThickness")

    def edit(ds):
        for keyword in dropped:
            delattr(ds, keyword)

    source = _edited_copy(study, tmp_path / "source", edit)
    for path in _write_dicom_outputs(analysed, source, tmp_path / "dicom"):
        ds = pydicom.dcmread(path)
        assert ds.PatientID == "" and ds.StudyDate == "", path.name
        if shutil.which("dciodvfy"):
            assert _dciodvfy_errors(path) == [], path.name
    assert "PatientID" not in pydicom.dcmread(next(source.glob("*.dcm")))


def test_invalid_patient_values_are_neither_fatal_nor_logged(analysed, study, tmp_path):
    """Exports write values DICOM does not allow: a birth date ``1970-01-01`` (highdicom could not convert it and the
    study got only error.json, whose reason quoted the date), PatientSex ``male`` (refused likewise), a name without
    a caret, an ID over 64 characters. The outputs are built, and with every warning shown and every log record
    printed (as a batch job or the DICOM node may keep them) none of the values appears."""
    import sys

    name, birth, patient_id = "DOE JOHNATHAN", "1970-01-01", "ID" + "7" * 70

    def edit(ds):
        ds.PatientName, ds.PatientBirthDate, ds.PatientSex, ds.PatientID = name, birth, "male", patient_id

    source = _edited_copy(study, tmp_path / "source", edit)
    from nvc_mri.report.dicom.source import with_copyable_attributes

    lower_case = pydicom.Dataset()
    lower_case.PatientSex, lower_case.StudyTime = "f", "12:30:05"
    fixed = with_copyable_attributes(lower_case, 0.7)
    assert (fixed.PatientSex, fixed.StudyTime, fixed.SliceThickness) == ("F", "123005", 0.7)
    assert lower_case.PatientSex == "f"  # the source header is not changed
    script = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)\n"
        "from pathlib import Path\n"
        "import pydicom\n"
        "from tests.test_report import _write_dicom_outputs\n"
        f"paths = _write_dicom_outputs(Path({str(analysed)!r}), Path({str(source)!r}), Path({str(tmp_path / 'dicom')!r}))\n"
        "print(pydicom.dcmread(paths[0]).PatientBirthDate)\n"
    )
    run = subprocess.run([sys.executable, "-W", "always", "-c", script], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["19700101"]
    for value in ("JOHNATHAN", birth, "7" * 70, "male"):
        assert value not in run.stderr, value


def test_source_without_frame_of_reference_gets_every_output_but_dicom_and_says_so(study, tmp_path, monkeypatch):
    """Without a FrameOfReferenceUID (Type 1, but dropped by some exports) no SEG can be placed in the source's
    space: the other outputs are written and a warning says why the DICOM ones are not."""
    from nvc_mri.segment.inference import Segmentation

    def nothing_found(volume, **kwargs):
        return Segmentation(volume.with_array(np.zeros(volume.shape, np.uint8)), (np.zeros(3), np.zeros(3)), True, "test")

    monkeypatch.setattr("nvc_mri.analysis.run_segmentation", nothing_found)
    source = _edited_copy(study, tmp_path / "source", lambda ds: delattr(ds, "FrameOfReferenceUID"))
    out = tmp_path / "out"
    result = runner.invoke(app, ["analyze", str(source), "-o", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == ["labels.nii.gz", "report.html", "report.json"]
    assert report["outputs"]["files"] == ["report.json", "labels.nii.gz", "report.html"]
    assert any("DICOM outputs not written" in w and "FrameOfReferenceUID" in w for w in report["warnings"])


def test_seg_decodes_to_the_label_map(analysed, study):
    seg = hd.seg.segread(analysed / "dicom" / "seg.dcm")
    labels = np.asarray(nib.load(analysed / "labels.nii.gz").dataobj)
    sources = sorted((pydicom.dcmread(p, stop_before_pixels=True) for p in study.glob("*.dcm")),
                     key=lambda ds: float(np.dot(ds.ImagePositionPatient, np.cross(ds.ImageOrientationPatient[:3], ds.ImageOrientationPatient[3:]))))
    decoded = seg.get_pixels_by_source_instance([ds.SOPInstanceUID for ds in sources], combine_segments=True, skip_overlap_checks=True)
    assert decoded.shape == (labels.shape[2], labels.shape[1], labels.shape[0])
    np.testing.assert_array_equal(np.transpose(decoded, (2, 1, 0)), labels)
    assert {d.segment_label for d in seg.SegmentSequence} >= {"Brainstem", "Facial nerve (CN VII)", "Artery"}
    assert seg.get_segment_description(2).segmented_property_type == codes.SCT.FacialNerve
    assert seg.StudyInstanceUID == sources[0].StudyInstanceUID


def _sr_groups(sr_path: Path) -> dict[str, hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations]:
    sr = hd.sr.srread(sr_path)
    return {g.tracking_identifier: g for g in sr.content.get_volumetric_roi_measurement_groups()}


def test_sr_numbers_equal_the_json_and_reference_seg_and_source(analysed, study):
    report = Report.model_validate_json((analysed / "report.json").read_text())
    sr = hd.sr.srread(analysed / "dicom" / "sr.dcm")
    seg = pydicom.dcmread(analysed / "dicom" / "seg.dcm", stop_before_pixels=True)
    groups = _sr_groups(analysed / "dicom" / "sr.dcm")
    compared = 0
    for side in ("left", "right"):
        nvc = report.sides[side].nvc
        group = groups[f"{side} facial nerve root exit zone"]
        gap = group.get_measurements(name=codes.DCM.Distance)
        assert gap[0].value == pytest.approx(nvc.min_gap_mm) and gap[0].unit.value == "mm"
        depth = group.get_measurements(name=codes.SCT.Depth)
        assert depth[0].value == pytest.approx(nvc.indentation_mm)
        assert group.referenced_segment.referenced_sop_instance_uid == seg.SOPInstanceUID
        assert list(group.referenced_segment.referenced_segment_numbers) == [2]  # the facial nerve segment
        compared += 2
    for i, lesion in enumerate(report.lesions, 1):
        group = groups[f"lesion {i} ({lesion.side})"]
        assert group.get_measurements(name=codes.SCT.Volume)[0].value == pytest.approx(lesion.volume_mm3)
        assert group.get_measurements(name=codes.SCT.Volume)[0].unit.value == "mm3"
        assert group.get_measurements(name=codes.SCT.Diameter)[0].value == pytest.approx(lesion.max_diameter_mm)
        compared += 2
    assert compared >= 4
    evidence = {item.SeriesInstanceUID for study_item in sr.CurrentRequestedProcedureEvidenceSequence
                for item in study_item.ReferencedSeriesSequence}
    assert evidence == {seg.SeriesInstanceUID, report.input.series_instance_uid}
    assert sr.StudyInstanceUID == seg.StudyInstanceUID == report.input.study_instance_uid
    keyimages = pydicom.dcmread(analysed / "dicom" / "keyimages.dcm")
    assert keyimages.StudyInstanceUID == sr.StudyInstanceUID and keyimages.BurnedInAnnotation == "YES"
    assert keyimages.pixel_array.ndim == 3 and keyimages.pixel_array.std() > 10


def test_html_renders_in_headless_chromium(analysed, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("no Chromium installed")
    page = (analysed / "report.html").resolve().as_uri()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files", "--virtual-time-budget=5000"]
    dom = subprocess.run([browser, *flags, "--dump-dom", page], capture_output=True, text=True, timeout=120).stdout
    html = (analysed / "report.html").read_text()
    n_images = html.count("<img ")
    assert n_images >= 3
    assert f'data-images-loaded="{n_images}/{n_images}"' in dom
    shot = tmp_path / "shot.png"
    subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=1200,2400", page], capture_output=True, timeout=120)
    import imageio.v3 as iio

    pixels = iio.imread(shot)[..., :3].astype(int)
    assert pixels.std() > 20  # not blank
    # the key images' colour overlays (yellow nerve, red artery) are on screen
    red = (pixels[..., 0] > 180) & (pixels[..., 1] < 90) & (pixels[..., 2] < 90)
    assert red.sum() > 50


def test_rerun_replaces_outputs_with_new_uids(analysed, study, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(analysed, out)
    (out / "labels.nii.gz").write_bytes(b"stale")
    result = runner.invoke(app, ["analyze", str(study), "-o", str(out), "--device", "cpu", "--format", "json,nifti,dicom"])
    assert result.exit_code == 0, result.output
    assert not (out / "report.html").exists()  # not asked for this time: the old one is gone too
    nib.load(out / "labels.nii.gz")
    for name in ("seg.dcm", "sr.dcm", "keyimages.dcm"):
        assert pydicom.dcmread(out / "dicom" / name).SOPInstanceUID != pydicom.dcmread(analysed / "dicom" / name).SOPInstanceUID
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary folder left behind


def test_failure_leaves_only_error_json(study, tmp_path, monkeypatch):
    out = tmp_path / "out"

    def broken(*args, **kwargs):
        raise RuntimeError("disk full while writing the HTML")

    monkeypatch.setattr("nvc_mri.report.write.report_html", broken)
    result = runner.invoke(app, ["analyze", str(study), "-o", str(out), "--device", "cpu"])
    assert result.exit_code != 0
    assert [p.name for p in out.iterdir()] == ["error.json"]
    assert "disk full" in json.loads((out / "error.json").read_text())["error"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_foreign_output_folder_is_refused_untouched(study, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["analyze", str(study), "-o", str(tmp_path), "--device", "cpu"])
    assert result.exit_code == 2 and "holds other files" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def _read_only_folder(tmp_path: Path) -> Path:
    """A folder this process cannot write in: permission bits for a user, a kernel file system for root."""
    if os.geteuid() != 0:
        folder = tmp_path / "locked"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    try:
        os.rmdir(tempfile.mkdtemp(dir="/sys"))
    except OSError:
        return Path("/sys")
    pytest.skip("no read-only folder for root here")


@pytest.mark.parametrize("where", ["under a file", "read-only"])
def test_an_unwritable_output_place_is_refused_before_the_analysis(study, tmp_path, monkeypatch, where):
    """The outputs go beside OUTDIR under a temporary name: a place that cannot take them is refused with one line
    before anything is loaded or segmented (the analysis is never called), and nothing is left behind."""
    import nvc_mri.analysis

    monkeypatch.setattr(nvc_mri.analysis, "run_analysis", lambda *a, **k: pytest.fail("analysis ran"))
    if where == "under a file":
        (tmp_path / "plain.txt").write_text("x")
        out, expected = tmp_path / "plain.txt" / "sub" / "out", "plain.txt is a file, not a folder"
    else:
        out, expected = _read_only_folder(tmp_path) / "out", "cannot write the outputs there"
    before = sorted(p.name for p in out.parent.iterdir()) if out.parent.is_dir() else None
    result = runner.invoke(app, ["analyze", str(study), "-o", str(out), "--device", "cpu"])
    assert result.exit_code == 2 and expected in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists()
    if before is not None:
        assert sorted(p.name for p in out.parent.iterdir()) == before


def test_t1_series_is_refused_with_one_line(real_data, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["analyze", str(real_data / "vs-seg-001-t1c-dicom"), "-o", str(out)])
    assert result.exit_code == 2
    assert "not a heavily T2-weighted" in result.output and "--force" in result.output
    assert [p.name for p in out.iterdir()] == ["error.json"]


def test_forced_non_t2_analysis_is_marked_in_every_output(tmp_path):
    case = _case()
    write_dicom_series(case.image, tmp_path / "t1", overrides=T1_HEADER)
    out = tmp_path / "out"
    refused = runner.invoke(app, ["analyze", str(tmp_path / "t1"), "-o", str(out), "--device", "cpu"])
    assert refused.exit_code == 2 and "t1" in refused.output
    result = runner.invoke(app, ["analyze", str(tmp_path / "t1"), "-o", str(out), "--device", "cpu", "--force"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["forced"] is True and report["warnings"][0].startswith("FORCED ANALYSIS")
    assert "FORCED ANALYSIS" in (out / "report.html").read_text().split("<h1>")[0]  # banner above the title
    for name in ("seg.dcm", "sr.dcm", "keyimages.dcm"):
        assert "FORCED" in pydicom.dcmread(out / "dicom" / name, stop_before_pixels=True).SeriesDescription
    for group in _sr_groups(out / "dicom" / "sr.dcm").values():
        assert any(e.value.value == "FORCED" for e in group.get_qualitative_evaluations())


def test_nothing_measurable_still_gives_every_output_and_says_so(study, tmp_path, monkeypatch):
    """Labels without brainstem or nerves (a scan that misses the posterior fossa, a forced non-T2 series): each
    side is reported unknown with its reason, and the SR carries a group per side saying it was not measured
    (before, building the SR failed for want of a measurement and the study got only error.json)."""
    from nvc_mri.segment.inference import Segmentation

    def nothing_found(volume, **kwargs):
        return Segmentation(volume.with_array(np.zeros(volume.shape, np.uint8)), (np.zeros(3), np.zeros(3)), True, "test")

    monkeypatch.setattr("nvc_mri.analysis.run_segmentation", nothing_found)
    out = tmp_path / "out"
    result = runner.invoke(app, ["analyze", str(study), "-o", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert [report["sides"][s]["status"] for s in ("right", "left")] == ["unknown", "unknown"] and report["lesions"] == []
    assert all(report["sides"][s]["reason"] for s in ("right", "left"))
    sr = hd.sr.srread(out / "dicom" / "sr.dcm")
    assert sr.content.get_volumetric_roi_measurement_groups() == []
    groups = {g.tracking_identifier: g for g in sr.content.get_image_measurement_groups()}
    assert sorted(groups) == ["left facial nerve root exit zone", "right facial nerve root exit zone"]
    for group in groups.values():
        assert [e.value.value for e in group.get_qualitative_evaluations()] == ["NOTMEAS"]
    if shutil.which("dciodvfy"):
        for name in ("seg.dcm", "sr.dcm", "keyimages.dcm"):
            assert _dciodvfy_errors(out / "dicom" / name) == [], name


def test_a_slicer_nrrd_of_the_study_gets_the_study_findings(analysed, study, tmp_path):
    """The DICOM study read and saved as NRRD by ITK (as 3D Slicer does), then analysed: the same labels on the same
    grid and the same findings as from the DICOM series, with the sequence judged from the image."""
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(study)))
    sitk.WriteImage(reader.Execute(), str(tmp_path / "study.nrrd"))
    out = tmp_path / "out"
    result = runner.invoke(app, ["analyze", str(tmp_path / "study.nrrd"), "-o", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    ours, theirs = (json.loads((d / "report.json").read_text()) for d in (out, analysed))
    assert ours["input"]["format"] == "nrrd" and ours["input"]["sequence_basis"] == "image-intensities"
    for side in ("left", "right"):
        for key in ("contact", "severity", "segment", "vessel"):
            assert ours["sides"][side]["nvc"][key] == theirs["sides"][side]["nvc"][key], (side, key)
        assert ours["sides"][side]["nvc"]["min_gap_mm"] == pytest.approx(theirs["sides"][side]["nvc"]["min_gap_mm"], abs=0.05)
    assert [lesion["koos_grade"] for lesion in ours["lesions"]] == [lesion["koos_grade"] for lesion in theirs["lesions"]]
    labels, reference = (nib.load(d / "labels.nii.gz") for d in (out, analysed))
    np.testing.assert_allclose(labels.affine, reference.affine, atol=1e-3)
    assert np.mean(np.asarray(labels.dataobj) == np.asarray(reference.dataobj)) > 0.999
    assert sorted(p.name for p in out.iterdir()) == ["labels.nii.gz", "report.html", "report.json"]


def test_nifti_input_gets_no_dicom_outputs(tmp_path):
    case = _case()
    folder = write_case(case, tmp_path / "case", "nifti")
    result = runner.invoke(app, ["analyze", str(folder / "image.nii.gz"), "-o", str(tmp_path / "out"), "--device", "cpu",
                                 "--format", "json,nifti"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["labels.nii.gz", "report.json"]
    np.testing.assert_allclose(nib.load(tmp_path / "out" / "labels.nii.gz").affine, case.image.affine, atol=1e-4)
    dicom = runner.invoke(app, ["analyze", str(folder / "image.nii.gz"), "-o", str(tmp_path / "out2"), "--format", "dicom"])
    assert dicom.exit_code == 2 and "need DICOM input" in dicom.output


def test_orientation_letters_follow_the_radiological_convention():
    right, up = AXIAL
    assert (edge_letters(-right), edge_letters(right), edge_letters(up), edge_letters(-up)) == ("R", "L", "A", "P")
    assert edge_letters(np.array([0.7, 0.0, 0.7])) in ("RS", "SR")


def test_nerve_plane_holds_the_nerve_and_the_artery():
    from nvc_mri.io.volume import Volume, VolumeMeta
    from nvc_mri.io.sequence import SequenceGuess

    labels = np.zeros((40, 40, 40), np.uint8)
    labels[5:35, 20, 20] = 2   # nerve along x
    labels[20, 20:24, 26] = 4  # artery above it
    meta = VolumeMeta(source="t", format="nifti", sequence=SequenceGuess(family="unknown", confidence=0, basis="none"))
    volume = Volume(labels, np.diag([0.5, 0.5, 0.5, 1.0]), meta)
    right, up = nerve_plane(volume, np.array([10.0, 10.0, 10.0]))
    assert abs(right @ [1, 0, 0]) > 0.99 and right[0] < 0   # nerve across the screen, pointing to the patient's left
    assert abs(up @ [0, 0, 1]) > 0.95 and up[2] > 0         # towards the artery, superior up


@pytest.mark.parametrize("echoes", [1, 2])
def test_seg_on_an_enhanced_multiframe_source(real_data, tmp_path, echoes):
    """The SEG path for enhanced MR (one file, per-frame geometry), on a real Siemens XA30 object, and on the same
    object with a second echo at the same positions (the SEG failed on its repeated plane positions)."""
    from nvc_mri.io import load_volume
    from nvc_mri.report.dicom.seg import build_seg
    from tests.conftest import write_enhanced_with_a_second_echo

    source = real_data / "xa30-enhanced-multiframe"
    if echoes == 2:
        source = write_enhanced_with_a_second_echo(next(source.rglob("*.dcm")), tmp_path / "two_echoes.dcm")
    volume = load_volume(source)
    labels = np.zeros(volume.shape, np.uint8)
    labels[40:60, 50:70, 30:50] = 1
    labels[60:64, 58:62, 35:45] = 2
    seg = build_seg(volume, labels, 9901, "NVC labels (nvc-mri)")
    path = tmp_path / "seg.dcm"
    seg.save_as(path, enforce_file_format=True)
    if shutil.which("dciodvfy"):
        assert _dciodvfy_errors(path) == []
    decoded = hd.seg.segread(path).get_volume(combine_segments=True)
    # the decoded volume's voxels, put back on our grid through both affines, equal the labels
    from nvc_mri.io.volume import LPS_TO_RAS
    ras = LPS_TO_RAS @ decoded.affine
    index = np.argwhere(decoded.array > 0)
    ours = np.rint((index @ ras[:3, :3].T + ras[:3, 3] - volume.affine[:3, 3]) @ np.linalg.inv(volume.affine[:3, :3]).T).astype(int)
    assert np.array_equal(labels[tuple(ours.T)], decoded.array[tuple(index.T)])
    assert len(index) == int((labels > 0).sum())


def test_many_lesions_are_flagged_as_implausible():
    from nvc_mri.measure.findings import Findings, LesionFindings
    from nvc_mri.report.build import plausibility_warnings

    lesion = LesionFindings(side="left", volume_mm3=20.0, max_diameter_mm=5.0, centroid_ras_mm=[0, 0, 0], intracanalicular=False,
                            cpa_extension=True, intracanalicular_volume_mm3=0.0, contacts_brainstem=False, brainstem_compression_mm=0.0,
                            touches_facial_nerve=False, type_guess="unknown", type_basis="test")
    assert plausibility_warnings(Findings(sides={}, lesions=[lesion])) == []
    warning = plausibility_warnings(Findings(sides={}, lesions=[lesion] * 12))
    assert len(warning) == 1 and warning[0].startswith("12 separate lesions")
