"""Geometry against real scans and a real peer (dcm2niix)."""

from __future__ import annotations

import shutil
import subprocess

import nibabel as nib
import numpy as np
import pytest

from nvc_mri.io import Volume, load_volume


def test_all_48_nifti_orientations_load_to_one_canonical_volume(real_data):
    files = sorted((real_data / "nifti-orientations").glob("*.nii*"))
    assert len(files) == 48
    reference = load_volume(files[0]).as_canonical()
    orientations = set()
    for f in files:
        vol = load_volume(f)
        orientations.add(vol.orientation)
        canon = vol.as_canonical()
        assert canon.orientation == "RAS"
        np.testing.assert_array_equal(canon.array, reference.array, err_msg=f.name)
        np.testing.assert_allclose(canon.affine, reference.affine, atol=1e-4, err_msg=f.name)
    assert len(orientations) == 48  # the files really are stored in 48 axis orders


def _dcm2niix(folder, out) -> nib.Nifti1Image:
    if shutil.which("dcm2niix") is None:
        pytest.fail("dcm2niix is required (apt-get install dcm2niix)")
    subprocess.run(["dcm2niix", "-z", "n", "-b", "n", "-f", "ref", "-o", str(out), str(folder)],
                   check=True, capture_output=True)
    return nib.load(str(next(out.glob("ref*.nii"))))


@pytest.mark.parametrize("folder", ["sag-oblique-mprage-dicom", "vs-seg-001-t1c-dicom", "xa30-enhanced-multiframe/In"])
def test_dicom_geometry_matches_dcm2niix(real_data, tmp_path, folder):
    ours = load_volume(real_data / folder)
    ref_img = _dcm2niix(real_data / folder, tmp_path)
    ref = Volume(np.asarray(ref_img.dataobj, dtype=np.float32), ref_img.affine, ours.meta)
    a, b = ours.as_canonical(), ref.as_canonical()
    assert a.shape == b.shape
    assert np.abs(a.world_corners() - b.world_corners()).max() < 0.01
    np.testing.assert_array_equal(a.array, b.array)


def test_enhanced_multiframe_matches_shipped_reference(real_data):
    ours = load_volume(real_data / "xa30-enhanced-multiframe" / "In")
    assert ours.meta.format == "dicom-enhanced" and ours.shape == (128, 128, 96)
    ref_img = nib.load(str(real_data / "xa30-enhanced-multiframe" / "Ref" / "5_anat-T1w_acq-tfl.nii"))
    ref = Volume(np.asarray(ref_img.dataobj, dtype=np.float32), ref_img.affine, ours.meta)
    assert np.abs(ours.as_canonical().world_corners() - ref.as_canonical().world_corners()).max() < 0.01
    np.testing.assert_array_equal(ours.as_canonical().array, ref.as_canonical().array)


def test_single_enhanced_file_loads(real_data):
    f = next((real_data / "xa30-enhanced-multiframe" / "In").rglob("*.dcm"))
    vol = load_volume(f)
    assert vol.shape == (128, 128, 96)
    assert vol.meta.source_files == [str(f)]


def test_vs_seg_t1_is_recognised_as_t1_not_ciss(real_data):
    vol = load_volume(real_data / "vs-seg-001-t1c-dicom")
    assert vol.shape == (512, 512, 120)
    np.testing.assert_allclose(vol.spacing, (0.41015625, 0.41015625, 1.5), atol=1e-4)
    assert vol.meta.sequence.family == "t1"
    assert not vol.meta.is_heavily_t2_3d
    assert "no heavily T2-weighted 3D series" in vol.meta.selection_reason


def test_nifti_intensity_judgement_on_real_t2_and_t1(real_data):
    t2 = load_volume(real_data / "t2w-m2208.nii.gz")
    assert t2.meta.sequence.basis == "image-intensities"
    assert t2.meta.is_heavily_t2_3d
    t1 = load_volume(real_data / "nifti-orientations" / "RAS.nii.gz")
    assert not t1.meta.is_heavily_t2_3d
    assert any("may not be a heavily T2" in w for w in t1.meta.warnings)


def test_enhanced_object_with_two_echoes_keeps_the_longer_echo(real_data, tmp_path):
    """The real XA30 object rebuilt with a second echo (TE 90 ms, other pixel values) appended as frames at the same
    positions: the 90 ms frames are loaded, as for a classic multi-echo series, and the warning says which."""
    from tests.conftest import write_enhanced_with_a_second_echo

    f = next((real_data / "xa30-enhanced-multiframe" / "In").rglob("*.dcm"))
    volume = load_volume(write_enhanced_with_a_second_echo(f, tmp_path / "two_echoes.dcm"))
    single = load_volume(f)
    assert volume.shape == single.shape
    np.testing.assert_array_equal(volume.array, single.array.max() - single.array)
    assert any("kept the 96 of the longest echo (TE 90 ms)" in w for w in volume.meta.warnings)


def test_a_nifti_is_judged_by_the_json_sidecar_dcm2niix_writes_beside_it(tmp_path):
    """dcm2niix (a real peer) writes the sequence header as a BIDS sidecar: a T1 converted to NIfTI is refused as a
    T1 (the image alone could not tell), and a CISS is named CISS; without the sidecar the image is judged."""
    from nvc_mri.analysis import sequence_problem
    from nvc_mri.io.dicom_write import write_dicom_series
    from tests.conftest import T1_HEADER, make_volume

    if shutil.which("dcm2niix") is None:
        pytest.fail("dcm2niix is required (apt-get install dcm2niix)")
    for name, overrides in (("ciss", None), ("t1", T1_HEADER)):
        write_dicom_series(make_volume(seed=1), tmp_path / name, overrides=overrides)
        subprocess.run(["dcm2niix", "-z", "y", "-b", "y", "-f", name, "-o", str(tmp_path), str(tmp_path / name)],
                       check=True, capture_output=True)
    ciss, t1 = load_volume(tmp_path / "ciss.nii.gz"), load_volume(tmp_path / "t1.nii.gz")
    assert (ciss.meta.sequence.basis, ciss.meta.sequence.name) == ("bids-sidecar", "CISS")
    assert ciss.meta.header["EchoTime"] == pytest.approx(2.5)  # BIDS seconds read as the rules' milliseconds
    assert t1.meta.sequence.family == "t1" and "series is t1" in sequence_problem(t1)
    (tmp_path / "t1.json").unlink()
    assert load_volume(tmp_path / "t1.nii.gz").meta.sequence.basis == "image-intensities"
