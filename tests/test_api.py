"""The notebook API: nvc_mri.analyze on paths, nibabel, SimpleITK and NumPy input; plots and data frames."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import SimpleITK as sitk  # noqa: E402

import nvc_mri  # noqa: E402
from nvc_mri.errors import InputError  # noqa: E402
from nvc_mri.io.convert import as_volume  # noqa: E402
from nvc_mri.phantom import ConflictSpec, generate  # noqa: E402


@pytest.fixture(scope="module")
def case():
    return generate(7, contrast="ciss", spacing_mm=(0.5, 0.5, 0.7), slab_mm=44, fov_mm=110.0, lesion_probability=0.0,
                    left=ConflictSpec(kind="deformity", segment="attached_segment", vessel="AICA"), right=ConflictSpec(kind="none"))


def test_in_memory_inputs_keep_their_geometry(case, tmp_path):
    nifti = case.image.to_nifti()
    from_nib = as_volume(nifti)
    np.testing.assert_allclose(from_nib.affine, case.image.affine)
    path = tmp_path / "x.nii.gz"
    nib.save(nifti, path)
    itk = sitk.ReadImage(str(path))
    from_itk = as_volume(itk)
    np.testing.assert_allclose(from_itk.affine, case.image.affine, atol=1e-4)  # SimpleITK's LPS -> RAS+
    np.testing.assert_array_equal(from_itk.array, from_nib.array)
    with pytest.raises(InputError, match="affine"):
        as_volume(case.image.array)
    with pytest.raises(InputError, match="3D"):
        as_volume(np.zeros((4, 4)), np.eye(4))


def test_analyze_returns_report_labels_plot_and_dataframe(case):
    result = nvc_mri.analyze(case.image.array, affine=case.image.affine, device="cpu")
    assert isinstance(result.labels, nib.Nifti1Image)
    np.testing.assert_allclose(result.labels.affine, case.image.affine)
    assert result.labels.shape == case.image.shape
    frame = result.to_dataframe()
    assert list(frame.index) == ["right", "left"]
    assert frame.loc["left", "severity"] == result.report.sides["left"].nvc.severity
    assert frame.loc["left", "contact"] == result.report.sides["left"].nvc.contact
    assert frame.loc["left", "min_gap_mm"] == pytest.approx(result.report.sides["left"].nvc.min_gap_mm)
    fig = result.plot(side="left")
    assert len(fig.axes) == 2
    with pytest.raises(ValueError):
        result.plot(side="middle")


def test_t1_that_passes_the_histogram_is_caught_by_the_csf_around_the_brainstem(real_data, tmp_path, case):
    """The real sagittal MPRAGE saved as NIfTI (no header to say T1): its intensity histogram passes, weakly, as
    heavily T2-weighted, so it is analysed; after segmentation the CSF around the brainstem is no brighter than
    the brainstem, and the report says the image does not look like CISS/FIESTA/SPACE. A CISS phantom gets no
    such warning."""
    from nvc_mri.io import load_volume

    path = tmp_path / "mprage.nii.gz"
    nib.save(load_volume(real_data / "sag-oblique-mprage-dicom").to_nifti(), path)
    t1 = nvc_mri.analyze(path, device="cpu")
    assert t1.volume.meta.sequence.is_heavily_t2_3d  # what the histogram alone concludes
    assert any("CSF around the brainstem is not brighter than the brainstem" in w for w in t1.report.warnings)
    ciss = nvc_mri.analyze(case.image.array, affine=case.image.affine, device="cpu")
    assert not any("CSF around the brainstem" in w for w in ciss.report.warnings)


def test_slices_too_thick_for_the_nerves_are_warned_about(case):
    """A 2D T2 with 2.8 mm slices cannot show a 1-2 mm nerve or the gap beside it: the report says so, and the
    phantom's 0.5 x 0.5 x 0.7 mm CISS gets no such warning."""
    affine = case.image.affine.copy()
    affine[:3, 2] *= 4
    thick = nvc_mri.analyze(case.image.array[:, :, ::4], affine=affine, device="cpu")
    assert any("x 2.8 mm are coarser than 1 mm" in w and "not resolved" in w for w in thick.report.warnings)
    fine = as_volume(case.image.array, case.image.affine)
    from nvc_mri.analysis import resolution_warnings

    assert resolution_warnings(fine) == []


def test_a_thin_slab_is_warned_about():
    """A 12 mm slab cannot hold the root exit zone with the loops of its offending arteries: the phantom cut to it read a
    contact 31 mm along the nerve with an indentation of 0.9 mm and nothing but a coarse-pass warning. The phantom's
    44 mm slab gets no such warning, whatever its tilt."""
    from nvc_mri.analysis import coverage_warnings
    from nvc_mri.io.volume import Volume, VolumeMeta
    from nvc_mri.io.sequence import SequenceGuess

    meta = VolumeMeta(source="s", format="dicom", sequence=SequenceGuess(family="heavily_t2_3d", confidence=0.9, basis="dicom-header"))
    tilt = np.deg2rad(20)
    rotation = np.array([[1, 0, 0], [0, np.cos(tilt), -np.sin(tilt)], [0, np.sin(tilt), np.cos(tilt)]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([0.5, 0.5, 0.7])
    thick = Volume(np.zeros((220, 220, 63), np.float32), affine, meta)  # 44 mm
    thin = Volume(np.zeros((220, 220, 17), np.float32), affine, meta)   # 12 mm
    assert coverage_warnings(thick) == []
    assert "covers only 12 mm along its superior-inferior axis" in coverage_warnings(thin)[0]


def test_a_brainstem_label_far_from_the_midline_is_warned_about():
    """Sides are told from the brainstem label's centre. On DICOM input x = 0 is the magnet's axis, where the head
    lies (real series here: brainstem label centres 0.1-5.4 mm from it), so a label centred 40 mm off is likely other
    tissue, as when a slab cuts the brainstem (a half-volume phantom read its right nerve as the left one)."""
    from nvc_mri.analysis import midline_warnings
    from nvc_mri.io.volume import Volume, VolumeMeta
    from nvc_mri.io.sequence import SequenceGuess

    labels = np.zeros((40, 40, 10), np.uint8)
    labels[15:25, 15:25, :] = 1  # brainstem, centred on voxel (19.5, 19.5)
    meta = VolumeMeta(source="s", format="dicom", sequence=SequenceGuess(family="heavily_t2_3d", confidence=0.9, basis="dicom-header"))
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    affine[:3, 3] = [-19.5, -19.5, 0.0]
    centred = Volume(labels.astype(np.float32), affine, meta)
    assert midline_warnings(centred, labels) == []
    affine[0, 3] = 20.5  # centre at x = +40 mm: the patient's right
    off = Volume(labels.astype(np.float32), affine, meta)
    assert "centred 40 mm right of the scanner's midline" in midline_warnings(off, labels)[0]
    nifti = Volume(labels.astype(np.float32), affine, meta.model_copy(update={"format": "nifti"}))
    assert midline_warnings(nifti, labels) == []  # a NIfTI's origin may be anywhere: the label is at the image's centre
    beside = np.zeros_like(labels)
    beside[30:38, 15:25, :] = 1  # centred 14 mm right of the image's centre, at x = 54 mm
    assert midline_warnings(nifti, beside) == []  # within 25 mm of the image's centre
    wide = np.zeros((90, 40, 10), np.uint8)
    wide[78:86, 15:25, :] = 1  # x = 20.5 + 81.5 = 102 mm; image centre at x = 65 mm: 37 mm right of it
    warning = midline_warnings(Volume(wide.astype(np.float32), affine, nifti.meta), wide)
    assert "centred 102 mm right of x = 0 and 37 mm right of the image's centre" in warning[0]
