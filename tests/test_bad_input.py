"""Every kind of bad input: one line naming the file and the problem, non-zero exit, no traceback."""

from __future__ import annotations

import shutil
import subprocess

import nibabel as nib
import numpy as np
import pydicom
import pytest
from typer.testing import CliRunner

from nvc_mri.cli import app
from nvc_mri.io import load_volume
from nvc_mri.io.dicom_write import write_dicom_series
from tests.conftest import make_volume

runner = CliRunner()


def _fails_cleanly(path, expected):
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code != 0
    text = result.output.strip()
    assert "Traceback" not in text
    assert len(text.splitlines()) == 1 or text.count("error:") == 1
    line = " ".join(text.split())
    assert str(path) in line.replace("\n", "")
    assert expected.lower() in line.lower(), line
    return line


def test_text_file_is_not_an_image(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("hello")
    _fails_cleanly(f, "neither DICOM nor NIfTI")


def test_truncated_nifti(tmp_path):
    nib.save(make_volume().to_nifti(), tmp_path / "v.nii.gz")
    data = (tmp_path / "v.nii.gz").read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(data[: len(data) // 2])
    _fails_cleanly(tmp_path / "cut.nii.gz", "truncated")


def test_truncated_dicom(tmp_path):
    files = write_dicom_series(make_volume(), tmp_path / "s")
    data = files[3].read_bytes()
    files[3].write_bytes(data[: len(data) - 200])
    _fails_cleanly(tmp_path / "s", "truncated")


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    _fails_cleanly(tmp_path / "empty", "empty")


def test_a_folder_of_nifti_files_names_them(tmp_path):
    (tmp_path / "niftis").mkdir()
    nib.save(nib.Nifti1Image(make_volume().array, np.eye(4)), tmp_path / "niftis" / "scan.nii.gz")
    _fails_cleanly(tmp_path / "niftis", "holds 1 NIfTI file(s) and no DICOM series; give an image file itself")


def test_folder_without_mr_images(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("x")
    _fails_cleanly(tmp_path / "docs", "no MR image series")


def test_non_mr_dicom_only(tmp_path):
    files = write_dicom_series(make_volume(), tmp_path / "ct")
    for f in files:
        ds = pydicom.dcmread(f)
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"  # CT
        ds.Modality = "CT"
        ds.save_as(f)
    _fails_cleanly(tmp_path / "ct", "no MR image series")


def test_single_slice_is_2d(tmp_path):
    nib.save(nib.Nifti1Image(np.random.rand(64, 64, 1).astype(np.float32), np.eye(4)), tmp_path / "one.nii")
    _fails_cleanly(tmp_path / "one.nii", "2D")


def test_single_dicom_slice_is_2d(tmp_path):
    files = write_dicom_series(make_volume(), tmp_path / "s")
    _fails_cleanly(files[0], "2D")


def test_nan_voxels(tmp_path):
    arr = np.random.rand(16, 16, 16).astype(np.float32)
    arr[3, 4, 5] = np.nan
    arr[1, 1, 1] = np.inf
    nib.save(nib.Nifti1Image(arr, np.eye(4)), tmp_path / "nan.nii.gz")
    _fails_cleanly(tmp_path / "nan.nii.gz", "2 voxel(s) are NaN or infinite")


@pytest.mark.parametrize("scale", [0.0, 1e-4, 100.0])
def test_zero_or_absurd_spacing(tmp_path, scale):
    img = nib.Nifti1Image(np.random.rand(16, 16, 16).astype(np.float32), None)
    img.header["pixdim"][1:4] = [1.0, 1.0, scale]  # no sform/qform: the affine comes from pixdim
    nib.save(img, tmp_path / "s.nii")
    _fails_cleanly(tmp_path / "s.nii", "zero or negative voxel spacing" if scale == 0 else "absurd voxel spacing")


def test_uneven_slice_spacing(tmp_path):
    files = write_dicom_series(make_volume(angles_deg=(0, 0, 0)), tmp_path / "s")
    ds = pydicom.dcmread(files[5])
    ds.ImagePositionPatient[2] = float(ds.ImagePositionPatient[2]) + 0.3
    ds.save_as(files[5])
    _fails_cleanly(tmp_path / "s", "inconsistent slice spacing")


def test_missing_slice(tmp_path):
    files = write_dicom_series(make_volume(angles_deg=(0, 0, 0)), tmp_path / "s")
    files[6].unlink()
    _fails_cleanly(tmp_path / "s", "1 missing slice")


def test_mixed_rows_and_columns_in_one_series(tmp_path):
    vol = make_volume(angles_deg=(0, 0, 0))
    files = write_dicom_series(vol, tmp_path / "s")
    small = make_volume(shape=(12, 10, 12), angles_deg=(0, 0, 0))
    other = write_dicom_series(small, tmp_path / "o")
    uid = pydicom.dcmread(files[0]).SeriesInstanceUID
    for f in other[:4]:
        ds = pydicom.dcmread(f)
        ds.SeriesInstanceUID = uid
        ds.ImagePositionPatient[2] = float(ds.ImagePositionPatient[2]) + 100
        ds.save_as(tmp_path / "s" / ("z" + f.name))
    _fails_cleanly(tmp_path / "s", "differ in size")


def test_mixed_pixel_spacing_in_one_series(tmp_path):
    """Every other image claiming another pixel spacing (two series merged under one UID) loaded silently with the
    first image's spacing."""
    files = write_dicom_series(make_volume(angles_deg=(0, 0, 0)), tmp_path / "s")
    for f in files[1::2]:
        ds = pydicom.dcmread(f)
        ds.PixelSpacing = [0.7, 0.7]
        ds.save_as(f)
    _fails_cleanly(tmp_path / "s", "differ in pixel spacing")


def test_enhanced_frames_with_mixed_pixel_spacing(real_data, tmp_path):
    """The same for an enhanced object (the real XA30 keeps its pixel measures per frame): only the first frame's
    spacing was read."""
    source = next((real_data / "xa30-enhanced-multiframe").rglob("*.dcm"))
    ds = pydicom.dcmread(source)
    for frame in ds.PerFrameFunctionalGroupsSequence[1::2]:
        if "PixelMeasuresSequence" not in frame:
            pytest.skip("pixel measures are shared by all frames in this object")
        frame.PixelMeasuresSequence[0].PixelSpacing = [3.0, 3.0]  # the others are 2 mm
    (tmp_path / "s").mkdir()
    ds.save_as(tmp_path / "s" / "mixed.dcm")
    _fails_cleanly(tmp_path / "s", "differ in pixel spacing")


def test_a_slice_position_holding_two_different_images_is_refused(tmp_path):
    """A second image at one slice position with other pixels (a repeated acquisition, a mixed series): which one
    belongs to the volume is unknown."""
    vol = make_volume(angles_deg=(0, 0, 0))
    files = write_dicom_series(vol, tmp_path / "s")
    shutil.copy(files[2], tmp_path / "s" / "copy.dcm")
    ds = pydicom.dcmread(tmp_path / "s" / "copy.dcm")
    ds.SOPInstanceUID = "1.2.3.4"
    pixels = ds.pixel_array.copy()
    pixels[0, 0] += 1
    ds.PixelData = pixels.tobytes()
    ds.save_as(tmp_path / "s" / "copy.dcm")
    _fails_cleanly(tmp_path / "s", "share one position")


def test_an_image_re_sent_under_a_new_uid_is_left_out_with_a_warning(tmp_path):
    """The same image twice at one position, under two SOP Instance UIDs (a PACS or router re-sending it): the
    copy is left out and said so, the volume is the series' own, and dcm2niix (which removes such duplicates too)
    gives the same voxels. The copy is not among the source files the DICOM outputs will reference."""
    vol = make_volume(angles_deg=(0, 0, 0))
    files = write_dicom_series(vol, tmp_path / "s")
    reference = load_volume(tmp_path / "s")
    shutil.copy(files[2], tmp_path / "s" / "copy.dcm")
    ds = pydicom.dcmread(tmp_path / "s" / "copy.dcm")
    ds.SOPInstanceUID = "1.2.3.4"
    ds.save_as(tmp_path / "s" / "copy.dcm")
    loaded = load_volume(tmp_path / "s")
    np.testing.assert_array_equal(loaded.array, reference.array)
    np.testing.assert_allclose(loaded.affine, reference.affine)
    assert any("1 repeated copy of an image" in w for w in loaded.meta.warnings)
    assert len(loaded.meta.source_files) == len(files) and len({str(h.SOPInstanceUID) for h in loaded.headers}) == len(files)
    if shutil.which("dcm2niix") is None:
        pytest.fail("dcm2niix is required (apt-get install dcm2niix)")
    subprocess.run(["dcm2niix", "-z", "n", "-b", "n", "-f", "ref", "-o", str(tmp_path), str(tmp_path / "s")],
                   check=True, capture_output=True)
    peer = load_volume(tmp_path / "ref.nii")
    np.testing.assert_allclose(peer.as_canonical().array, loaded.as_canonical().array, atol=1e-3)


def test_debug_flag_shows_traceback(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("hello")
    result = runner.invoke(app, ["--debug", "info", str(f)])
    assert result.exit_code != 0
    assert result.exception is not None  # raised, not swallowed


def test_unexpected_error_names_a_debug_command_line_that_works(tmp_path, monkeypatch):
    """An unexpected failure is one line whose traceback hint is a command line the CLI accepts (--debug goes
    before the command; ``nvc-mri info ... --debug`` is refused as an unknown option)."""

    def broken(*args, **kwargs):
        raise RuntimeError("simulated failure")

    monkeypatch.setattr("nvc_mri.cli._info_dict", broken)
    result = runner.invoke(app, ["info", str(tmp_path)])
    assert result.exit_code == 1
    assert "simulated failure" in result.output and "nvc-mri --debug info ..." in result.output
    rerun = runner.invoke(app, ["--debug", "info", str(tmp_path)])
    assert isinstance(rerun.exception, RuntimeError)  # the hinted form reaches the traceback


@pytest.mark.parametrize("args, message", [
    (["phantom", "{tmp}/ph", "--n", "0"], "number of cases must be 1 or more"),
    (["phantom", "{tmp}/ph", "--seed", "-2"], "first seed 0 or more"),
    (["phantom", "{tmp}/ph", "--preset", "nope"], "--preset nope: unknown preset"),
    (["segment", "{tmp}/x.nii.gz", "-o", "{tmp}/y.nii.gz", "--device", "gpu0"], "--device gpu0: device must be auto, cpu, cuda"),
    (["segment", "{tmp}/x.nii.gz", "-o", "{tmp}/y.txt"], "y.txt: the label map is written as NIfTI"),
    (["segment", "{tmp}/x.nii.gz", "-o", "{tmp}/x.nii.gz/y.nii.gz"], "cannot create its folder"),
    (["batch", "{tmp}", "-o", "{tmp}/out", "--device", "gpu0"], "--device gpu0: device must be auto, cpu, cuda"),
])
def test_bad_options_get_one_line_and_exit_2(tmp_path, args, message):
    """Before, --n 0 wrote one case, a negative seed and an unknown preset or device failed inside NumPy or torch."""
    if "segment" in args or "batch" in args:
        nib.save(nib.Nifti1Image(make_volume().array, np.eye(4)), tmp_path / "x.nii.gz")
    result = runner.invoke(app, [a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "ph").exists() and not (tmp_path / "y.nii.gz").exists() and not (tmp_path / "out").exists()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_local_batch_on_cuda_without_cuda_stops_before_the_first_study(tmp_path):
    """Every study would fail on the same missing device; a Dask cluster's workers are not judged by this machine."""
    nib.save(nib.Nifti1Image(make_volume().array, np.eye(4)), tmp_path / "x.nii.gz")
    result = runner.invoke(app, ["batch", str(tmp_path), "-o", str(tmp_path / "out"), "--device", "cuda"])
    assert result.exit_code == 2 and "--device cuda: asked for, but no CUDA device is available" in result.output
    assert not (tmp_path / "out").exists()


def test_zip_without_dicom_and_a_lone_non_image_file_are_named_as_given(tmp_path):
    """Both are read through a temporary folder; the error named that folder (gone, meaningless to the user)."""
    import zipfile

    nib.save(nib.Nifti1Image(make_volume().array, np.eye(4)), tmp_path / "image.nii.gz")
    with zipfile.ZipFile(tmp_path / "nifti.zip", "w") as archive:
        archive.write(tmp_path / "image.nii.gz", "image.nii.gz")
    assert "nvc-zip-" not in _fails_cleanly(tmp_path / "nifti.zip", "no MR image series")
    files = write_dicom_series(make_volume(), tmp_path / "s")
    sr = pydicom.dcmread(files[0])
    sr.SOPClassUID = sr.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.33"  # a structured report
    del sr.PixelData
    sr.save_as(tmp_path / "report.dcm")
    assert "nvc-one-" not in _fails_cleanly(tmp_path / "report.dcm", "no MR image series")


def test_a_series_asked_of_a_nifti_is_refused_not_ignored(tmp_path):
    nib.save(nib.Nifti1Image(make_volume().array, np.eye(4)), tmp_path / "image.nii.gz")
    result = runner.invoke(app, ["info", str(tmp_path / "image.nii.gz"), "--series", "3"])
    assert result.exit_code == 2 and "a series (3) is chosen only in DICOM folders" in result.output


def test_one_file_of_a_series_is_named_as_such(tmp_path):
    """One slice of a 3D series given instead of its folder was called 'only localizer/scout images'."""
    files = write_dicom_series(make_volume(), tmp_path / "s")
    _fails_cleanly(files[0], "only 1 image(s) of a series, not a 3D volume; give the folder")



def test_an_output_folder_that_cannot_be_made_is_one_line_and_exit_2(tmp_path):
    """Before: 'error: FileNotFoundError: ...' or 'NotADirectoryError: ...', exit 1, with a traceback hint."""
    (tmp_path / "a_file").write_text("x")
    nib.save(nib.Nifti1Image(make_volume().array, np.eye(4)), tmp_path / "study.nii.gz")  # a study for the batch to find
    for args in (["batch", str(tmp_path), "-o", str(tmp_path / "a_file" / "out")],
                 ["phantom", str(tmp_path / "a_file" / "out")]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert "a_file" in result.output and "Not a directory" in result.output and "--debug" not in result.output


def test_weights_that_are_not_ours_are_named_with_the_problem(tmp_path):
    """A pickle, a damaged file or another network's safetensors failed inside safetensors or torch (exit 1)."""
    import torch
    from safetensors.torch import save_file

    nib.save(nib.Nifti1Image(make_volume().array, np.eye(4)), tmp_path / "x.nii.gz")
    torch.save({"a": torch.zeros(2)}, tmp_path / "pickled.pt")
    save_file({"x": torch.zeros(2)}, tmp_path / "other.safetensors")
    for name, message in (("pickled.pt", "not a safetensors weights file"), ("other.safetensors", "weights are not of the nvc-mri U-Nets"),
                          ("missing.safetensors", "model weights not found")):
        result = runner.invoke(app, ["analyze", str(tmp_path / "x.nii.gz"), "-o", str(tmp_path / "out" / name), "--weights",
                                     str(tmp_path / name), "--force"])
        assert result.exit_code == 2 and f"{name}: {message}" in " ".join(result.output.split()), result.output


def test_square_brackets_in_paths_and_descriptions_are_printed_as_they_are(tmp_path):
    """Rich markup used to read "[draft]" in a path as a style and drop it, and "[/x]" as a closing tag it could
    not match: the error handler itself failed with a traceback."""
    for folder in ("[draft]", "[/x]"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "notes.txt").write_text("hello")
        _fails_cleanly(tmp_path / folder / "notes.txt", "neither DICOM nor NIfTI")
    write_dicom_series(make_volume(), tmp_path / "[study]", overrides={"SeriesDescription": "t2 [ciss] [/b]"})
    result = runner.invoke(app, ["info", str(tmp_path / "[study]")])
    assert result.exit_code == 0, result.output
    assert "t2 [ciss] [/b]" in result.output
