"""Loader behaviour on DICOM and NIfTI written here: round trips, compression, series choice, zip."""

from __future__ import annotations

import json
import zipfile

import nibabel as nib
import numpy as np
import pytest
from pydicom.uid import JPEGLSLossless, RLELossless
from typer.testing import CliRunner

from nvc_mri.cli import app
from nvc_mri.io import load_volume, scan
from nvc_mri.io.dicom_write import write_dicom_series
from tests.conftest import make_volume


@pytest.mark.parametrize("syntax", [None, RLELossless, JPEGLSLossless])
def test_oblique_dicom_round_trip(tmp_path, oblique_volume, syntax):
    write_dicom_series(oblique_volume, tmp_path / "s", transfer_syntax=syntax)
    vol = load_volume(tmp_path / "s")
    np.testing.assert_allclose(vol.affine, oblique_volume.affine, atol=1e-5)
    slope = (oblique_volume.array.max() - oblique_volume.array.min()) / 4095
    assert np.abs(vol.array - oblique_volume.array).max() <= slope / 2 + 1e-3
    assert vol.meta.sequence.family == "heavily_t2_3d" and vol.meta.sequence.name == "CISS"


def test_slices_are_sorted_by_position_not_file_name(tmp_path, oblique_volume):
    files = write_dicom_series(oblique_volume, tmp_path / "s")
    for n, f in enumerate(reversed(files)):  # file names now run against the slice order
        f.rename(tmp_path / "s" / f"x{n:03d}.dcm")
    vol = load_volume(tmp_path / "s")
    np.testing.assert_allclose(vol.affine, oblique_volume.affine, atol=1e-5)


def test_nifti_round_trip_keeps_affine(tmp_path, oblique_volume):
    nib.save(oblique_volume.to_nifti(), tmp_path / "v.nii.gz")
    vol = load_volume(tmp_path / "v.nii.gz")
    np.testing.assert_allclose(vol.affine, oblique_volume.affine, atol=1e-5)
    np.testing.assert_array_equal(vol.array, oblique_volume.array)


def _study(tmp_path):
    """A nested study folder: 3-plane localizer, a T1 MPRAGE, a FIESTA, a structured report."""
    study = tmp_path / "study"
    base = make_volume(shape=(16, 16, 20), angles_deg=(0, 0, 0))
    one_study = dict(study_uid="1.2.826.0.1.3680043.10.1462.99.1")  # every series of one study shares its UID
    write_dicom_series(base, study / "a" / "t1", series_number=2, **one_study, overrides=dict(
        SeriesDescription="t1_mprage_sag", SequenceName="*tfl3d1_16ns", ScanningSequence=["GR", "IR"],
        FlipAngle=9.0, InversionTime=900.0))
    fiesta = write_dicom_series(base, study / "b" / "deep" / "fiesta", preset="FIESTA", series_number=5, **one_study)
    import pydicom
    uid = pydicom.dcmread(fiesta[0]).SeriesInstanceUID
    loc_uid = "1.2.3.4.5.6.7.8.9"
    for n, angles in enumerate([(0, 0, 0), (90, 0, 0), (0, 90, 0)]):
        loc = make_volume(shape=(16, 16, 3), angles_deg=angles, seed=n)
        write_dicom_series(loc, study / "loc" / str(n), series_uid=loc_uid, series_number=1, **one_study,
                           overrides=dict(SeriesDescription="localizer", ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"]))
    sr = pydicom.dcmread(fiesta[0])
    sr.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.33"
    sr.file_meta.MediaStorageSOPClassUID = sr.SOPClassUID
    sr.SeriesInstanceUID = "1.2.3.99"
    del sr.PixelData
    sr.save_as(study / "sr.dcm")
    return study, uid, base


def test_series_selection_picks_the_heavily_t2_3d_series(tmp_path):
    study, fiesta_uid, base = _study(tmp_path)
    candidates, n_other = scan(study)
    assert n_other == 1  # the SR is not an image series
    families = sorted(c.sequence.family for c in candidates)
    assert families.count("localizer") == 3  # one UID, three orientations -> three groups
    assert "t1" in families and "heavily_t2_3d" in families
    vol = load_volume(study)
    assert vol.meta.series_instance_uid == fiesta_uid
    assert vol.meta.sequence.name == "FIESTA" and vol.meta.is_heavily_t2_3d
    assert "heavily T2-weighted 3D series" in vol.meta.selection_reason


def test_series_can_be_forced_and_non_t2_is_flagged(tmp_path):
    study, _, _ = _study(tmp_path)
    vol = load_volume(study, series=2)
    assert vol.meta.sequence.family == "t1" and not vol.meta.is_heavily_t2_3d


def test_zip_of_dicom_loads(tmp_path):
    study, fiesta_uid, base = _study(tmp_path)
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in study.rglob("*.dcm"):
            zf.write(f, arcname="../../evil/" + f.name if f.name == "sr.dcm" else str(f.relative_to(study)))
    vol = load_volume(archive)
    assert vol.meta.series_instance_uid == fiesta_uid
    np.testing.assert_allclose(vol.affine, base.affine, atol=1e-5)
    assert not (tmp_path.parent / "evil").exists()


def test_canonical_view_is_a_permutation_not_a_resampling(oblique_volume):
    canon = oblique_volume.as_canonical()
    assert canon.orientation == "RAS"
    assert sorted(canon.array.ravel().tolist()) == sorted(oblique_volume.array.ravel().tolist())
    corners = {tuple(np.round(c, 4)) for c in canon.world_corners()}
    assert corners == {tuple(np.round(c, 4)) for c in oblique_volume.world_corners()}
    back = canon.reorient_like(canon.array, oblique_volume)
    np.testing.assert_array_equal(back, oblique_volume.array)


def test_gantry_tilt_is_reported_with_its_angle(tmp_path, oblique_volume):
    sheared = oblique_volume.affine.copy()
    sheared[:3, 2] += 0.05 * sheared[:3, 0]  # slices slide sideways by 5% of a pixel step
    vol = oblique_volume.__class__(oblique_volume.array, sheared, oblique_volume.meta)
    write_dicom_series(vol, tmp_path / "t")
    loaded = load_volume(tmp_path / "t")
    assert any("sheared" in w and "deg" in w for w in loaded.meta.warnings)
    np.testing.assert_allclose(loaded.affine, sheared, atol=1e-5)


def test_nifti_slab_full_of_csf_is_judged_heavily_t2(tmp_path):
    """A FIESTA slab through the cerebellopontine angles where CSF fills half the head (phantom seed 3800029).
    The old judgement compared the 99th percentile with the head's median, which is then CSF itself: it called
    this image 'CSF not clearly brighter than brain' with confidence 0.60 and `nvc-mri analyze` refused it."""
    from nvc_mri.analysis import sequence_problem
    from nvc_mri.phantom import generate

    case = generate(3800029)
    path = tmp_path / "slab.nii.gz"
    nib.save(case.image.to_nifti(), path)
    volume = load_volume(path)
    assert volume.meta.sequence.is_heavily_t2_3d and volume.meta.sequence.confidence >= 0.6
    assert volume.meta.warnings == [] and sequence_problem(volume) is None


def test_a_label_map_given_as_the_image_is_refused_as_one(tmp_path):
    """The phantom's labels.nii.gz beside its image.nii.gz (a batch over a folder of both, a mistyped path): six
    integer values were judged 'heavily T2-weighted, confidence 0.86' and analysed into findings of nothing."""
    from nvc_mri.analysis import sequence_problem
    from nvc_mri.phantom import generate

    case = generate(3800029)
    nib.save(case.labels.to_nifti(), tmp_path / "labels.nii.gz")
    nib.save(case.image.to_nifti(), tmp_path / "image.nii.gz")
    labels = load_volume(tmp_path / "labels.nii.gz")
    assert labels.meta.sequence.family == "label_map" and "not an MR image" in labels.meta.warnings[0]
    assert "a label map or mask, not an MR image" in sequence_problem(labels)
    quantised = np.round(case.image.array / case.image.array.max() * 255)  # 8-bit grey levels are still an image
    nib.save(nib.Nifti1Image(quantised.astype(np.uint8), case.image.affine), tmp_path / "eight_bit.nii.gz")
    assert load_volume(tmp_path / "eight_bit.nii.gz").meta.sequence.family != "label_map"


def test_nifti_without_orientation_warns_that_left_and_right_are_not_known(tmp_path, oblique_volume):
    """sform and qform codes 0 (an Analyze-style header): nibabel assumes default axes, which can swap the sides
    every finding is about; the loader says so instead of reporting sides as if known."""
    img = oblique_volume.to_nifti()
    img.set_sform(None, code=0)
    img.set_qform(None, code=0)
    nib.save(img, tmp_path / "no_orientation.nii.gz")
    warnings = load_volume(tmp_path / "no_orientation.nii.gz").meta.warnings
    assert any("no orientation" in w and "left and right are not known" in w for w in warnings)
    nib.save(oblique_volume.to_nifti(), tmp_path / "oriented.nii.gz")
    assert not any("no orientation" in w for w in load_volume(tmp_path / "oriented.nii.gz").meta.warnings)


def test_a_folder_of_two_studies_is_refused_not_guessed(tmp_path):
    """Two patients' CISS series copied into one folder (same series number): choosing one by its sequence
    would report one patient under the other's folder name. Refused; the SeriesInstanceUID picks one."""
    import pydicom

    from nvc_mri.errors import InputError

    first = write_dicom_series(make_volume(seed=1), tmp_path / "mixed" / "a", series_number=3, patient_name="A^A")
    write_dicom_series(make_volume(seed=2), tmp_path / "mixed" / "b", series_number=3, patient_name="B^B")
    with pytest.raises(InputError, match="folder holds 2 studies"):
        load_volume(tmp_path / "mixed")
    with pytest.raises(InputError, match="series number 3 exists in 2 studies"):
        load_volume(tmp_path / "mixed", series=3)
    uid = pydicom.dcmread(first[0]).SeriesInstanceUID
    assert load_volume(tmp_path / "mixed", series=uid).meta.series_instance_uid == uid
    # `nvc-mri info` still lists both series before saying why none is chosen
    from typer.testing import CliRunner

    from nvc_mri.cli import app

    listed = CliRunner().invoke(app, ["info", str(tmp_path / "mixed")])
    assert listed.exit_code == 2 and listed.output.count("│ 3 ") == 2 and "folder holds 2 studies" in listed.output


def test_a_second_heavily_t2_series_of_the_study_is_named_as_not_analysed(tmp_path):
    """A repeat CISS after motion: the repeat (the later series) is analysed, whatever the folders' order, and the
    report's warnings name the first one's series number."""
    study = dict(study_uid="1.2.826.0.1.3680043.10.1462.99.2")
    write_dicom_series(make_volume(seed=1), tmp_path / "s" / "a_first", series_number=4, **study)
    write_dicom_series(make_volume(seed=1), tmp_path / "s" / "b_repeat", series_number=9, **study)
    volume = load_volume(tmp_path / "s")
    assert volume.meta.series_number == 9
    assert any("(number 4) not analysed" in w for w in volume.meta.warnings)
    assert not any("not analysed" in w for w in load_volume(tmp_path / "s" / "a_first").meta.warnings)



def test_a_series_holding_two_echoes_loads_the_later_echo_and_names_the_other(tmp_path):
    """Two echoes stored under one SeriesInstanceUID (same slice positions): the more T2-weighted echo is
    analysed whatever the file order, the other is named in the warnings, and ``--series 7#1`` chooses it."""
    from typer.testing import CliRunner

    from nvc_mri.cli import app

    one_series = dict(series_uid="1.2.826.0.1.3680043.10.1462.99.3", series_number=7,
                      study_uid="1.2.826.0.1.3680043.10.1462.99.4")
    # the early echo's files sort first, so choosing by file order would analyse it
    write_dicom_series(make_volume(seed=1), tmp_path / "s" / "a", overrides=dict(EchoNumbers=1, EchoTime=12.0), **one_series)
    write_dicom_series(make_volume(seed=2), tmp_path / "s" / "b", overrides=dict(EchoNumbers=2, EchoTime=90.0), **one_series)
    volume = load_volume(tmp_path / "s")
    assert volume.meta.series_part == "echo 2, TE 90 ms"
    assert any("analysed 7#2 (echo 2, TE 90 ms), not 7#1: echo 1, TE 12 ms" in w for w in volume.meta.warnings)
    assert load_volume(tmp_path / "s", series="7#1").meta.series_part == "echo 1, TE 12 ms"
    listed = CliRunner().invoke(app, ["info", str(tmp_path / "s"), "--json"])
    found = {s["label"]: s["chosen"] for s in __import__("json").loads(listed.output)["series_found"]}
    assert found == {"7#1": False, "7#2": True}


def test_images_of_another_orientation_in_the_series_are_named_not_analysed(tmp_path):
    """A scanner that stores a few reformatted (coronal) images under the axial series' UID: the axial stack is
    loaded, and the warning names the coronal part instead of dropping it silently."""
    one_series = dict(series_uid="1.2.826.0.1.3680043.10.1462.99.5", series_number=4,
                      study_uid="1.2.826.0.1.3680043.10.1462.99.6")
    axial = make_volume(seed=1)
    write_dicom_series(axial, tmp_path / "s" / "ax", **one_series)
    coronal_affine = axial.affine[:, [0, 2, 1, 3]]
    from nvc_mri.io.volume import Volume

    coronal = Volume(np.ascontiguousarray(axial.array[:, :5, :].transpose(0, 2, 1)), coronal_affine, axial.meta)
    write_dicom_series(coronal, tmp_path / "s" / "cor", **one_series)
    volume = load_volume(tmp_path / "s")
    assert volume.shape == axial.shape and volume.meta.series_part == "axial images"
    assert any("not 4#2: coronal images, 5 images" in w or "not 4#1: coronal images, 5 images" in w
               for w in volume.meta.warnings)


def test_monochrome1_images_are_inverted_to_signal_bright(tmp_path):
    """MONOCHROME1 (lowest value shown white) stores the grey scale upside down: loaded as is, CSF would be the
    darkest tissue and the T2 checks and the network would see another contrast."""
    import pydicom

    volume = make_volume(seed=1)
    files = write_dicom_series(volume, tmp_path / "s")
    upright = load_volume(tmp_path / "s").array
    for f in files:
        ds = pydicom.dcmread(f)
        ds.PhotometricInterpretation = "MONOCHROME1"
        ds.save_as(f)
    loaded = load_volume(tmp_path / "s")
    np.testing.assert_allclose(loaded.array, upright.min() + upright.max() - upright, atol=1e-3)
    assert any("MONOCHROME1" in w for w in loaded.meta.warnings)


@pytest.mark.parametrize("store", ["pair_data_file", "gzip_named_nii", "no_extension", "nifti2", "trailing_axes", "complex"])
def test_nifti_files_as_tools_write_them_load_to_the_same_volume(tmp_path, oblique_volume, store):
    """Forms met in research folders: the .img half of a NIfTI pair, a gzip file named .nii, a file without an
    extension, NIfTI-2, shape (x, y, z, 1, 1), complex voxels (their magnitude is the image)."""
    import gzip
    import shutil

    array, affine = oblique_volume.array, oblique_volume.affine
    plain = tmp_path / "plain.nii"
    nib.save(nib.Nifti1Image(array, affine), plain)
    if store == "pair_data_file":
        nib.save(nib.Nifti1Pair(array, affine), tmp_path / "pair.hdr")
        path = tmp_path / "pair.img"
    elif store == "gzip_named_nii":
        path = tmp_path / "scan.nii"
        path.write_bytes(gzip.compress(plain.read_bytes()))
    elif store == "no_extension":
        path = tmp_path / "scan"
        shutil.copy(plain, path)
    elif store == "nifti2":
        path = tmp_path / "scan.nii.gz"
        nib.save(nib.Nifti2Image(array, affine), path)
    elif store == "trailing_axes":
        path = tmp_path / "scan.nii.gz"
        nib.save(nib.Nifti1Image(array[..., None, None], affine), path)
    else:
        path = tmp_path / "scan.nii.gz"
        nib.save(nib.Nifti1Image((array * np.exp(0.7j)).astype(np.complex64), affine), path)
    loaded = load_volume(path)
    np.testing.assert_allclose(loaded.array, array, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(loaded.affine, affine, atol=1e-5)


def test_analyze_header_loads_with_the_sides_unknown_and_colour_nifti_is_refused(tmp_path, oblique_volume):
    from nvc_mri.errors import InputError

    nib.save(nib.AnalyzeImage(oblique_volume.array, oblique_volume.affine), tmp_path / "old.hdr")
    loaded = load_volume(tmp_path / "old.img")
    assert loaded.shape == oblique_volume.shape
    (tmp_path / "old.hdr").unlink()
    with pytest.raises(InputError, match="old.img: image data without its header: old.hdr is missing"):
        load_volume(tmp_path / "old.img")
    assert any("ANALYZE 7.5" in w and "left and right are not known" in w for w in loaded.meta.warnings)

    rgb = np.zeros(oblique_volume.shape, np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")]))
    nib.save(nib.Nifti1Image(rgb, oblique_volume.affine), tmp_path / "colour.nii.gz")
    with pytest.raises(InputError, match="colour.nii.gz: colour \\(RGB\\) image, not MR intensities"):
        load_volume(tmp_path / "colour.nii.gz")


def test_files_without_the_part10_preamble_load_as_dcm2niix_reads_them(tmp_path):
    """Older CD writers stored bare data sets: no 128-byte preamble, no 'DICM', no file meta, no extension
    (IMAGES/IM0000). They are found by the loader and by the batch, and load to the same volume."""
    import pydicom
    from pydicom.filebase import DicomFileLike
    from pydicom.filewriter import write_dataset

    from nvc_mri.batch.discover import find_studies

    files = write_dicom_series(make_volume(seed=1), tmp_path / "part10")
    (tmp_path / "cd" / "IMAGES").mkdir(parents=True)
    for n, f in enumerate(files):
        ds = pydicom.dcmread(f)
        del ds.file_meta
        with open(tmp_path / "cd" / "IMAGES" / f"IM{n:04d}", "wb") as fh:
            out = DicomFileLike(fh)
            out.is_little_endian, out.is_implicit_VR = True, True
            write_dataset(out, ds)
    (tmp_path / "cd" / "IMAGES" / "NOTES").write_bytes(b"\x08\x00" + bytes(range(256)) * 4)  # junk, same start
    reference = load_volume(tmp_path / "part10")
    bare = load_volume(tmp_path / "cd")
    np.testing.assert_array_equal(bare.array, reference.array)
    np.testing.assert_allclose(bare.affine, reference.affine)
    assert [s.kind for s in find_studies(tmp_path / "cd")] == ["dicom"]


def test_a_dicomdir_given_as_the_input_loads_the_series_it_indexes(tmp_path):
    """On a CD users open DICOMDIR: it was refused as holding "no DICOM files". It now loads what lies beside it,
    and one bare image file (no preamble, no extension) is named as one image, not as an unknown format."""
    import pydicom
    from pydicom.fileset import FileSet

    from nvc_mri.errors import InputError

    files = write_dicom_series(make_volume(seed=1), tmp_path / "part10")
    cd = FileSet()
    for f in files:
        cd.add(pydicom.dcmread(f))
    cd.write(tmp_path / "cd")
    volume = load_volume(tmp_path / "cd" / "DICOMDIR")
    np.testing.assert_array_equal(volume.array, load_volume(tmp_path / "part10").array)
    candidates, _ = scan(tmp_path / "cd" / "DICOMDIR")  # what `nvc-mri info` lists
    assert [c.group.n_slices for c in candidates] == [len(files)]
    (tmp_path / "cd" / "DICOMDIR").rename(tmp_path / "cd" / "INDEX")  # known by its SOP class, not its name
    result = CliRunner().invoke(app, ["info", "--json", str(tmp_path / "cd" / "INDEX")])
    assert result.exit_code == 0, result.output
    assert [s["images"] for s in json.loads(result.output)["series_found"]] == [len(files)]
    bare = tmp_path / "IM0000"
    ds = pydicom.dcmread(files[0])
    ds.preamble = None
    ds.save_as(bare, enforce_file_format=False)
    with pytest.raises(InputError, match="only 1 image"):
        load_volume(bare)


def test_the_acquired_series_is_chosen_over_a_reformat_made_from_it(tmp_path):
    """Scanners store MPR reformats and MIPs of the CISS as DERIVED series with the same sequence header; one with
    more images than the acquired slab was chosen for being larger."""
    study = dict(study_uid="1.2.826.0.1.3680043.10.1462.99.7")
    write_dicom_series(make_volume(seed=1), tmp_path / "s" / "acquired", series_number=5, **study)
    write_dicom_series(make_volume(seed=2, shape=(24, 20, 30)), tmp_path / "s" / "mpr", series_number=105, **study,
                       overrides=dict(ImageType=["DERIVED", "SECONDARY", "MPR"], SeriesDescription="t2_ciss3d_MPR_thin"))
    volume = load_volume(tmp_path / "s")
    assert volume.meta.series_number == 5
    assert any("(number 105) not analysed" in w for w in volume.meta.warnings)


# Header values as Siemens, GE and Philips write them (from their protocol conventions), and what each series is.
VENDOR_HEADERS = {
    "siemens CISS": (dict(SeriesDescription="t2_ciss3d_tra_iso_0.5", SequenceName="*ci3d1", ScanningSequence="GR",
                          MRAcquisitionType="3D", FlipAngle=50, EchoTime=2.6, RepetitionTime=5.3), "heavily_t2_3d"),
    "siemens T2 SPACE (IAC)": (dict(SeriesDescription="t2_spc_tra_iac_0.5", SequenceName="*spcR_282ns", ScanningSequence="SE",
                                    MRAcquisitionType="3D", FlipAngle=120, EchoTime=135, RepetitionTime=1200), "heavily_t2_3d"),
    "siemens SPACE FLAIR": (dict(SeriesDescription="t2_space_dark-fluid_sag_p2_iso", SequenceName="*spcir_278ns",
                                 ScanningSequence=["SE", "IR"], MRAcquisitionType="3D", FlipAngle=120, EchoTime=388,
                                 RepetitionTime=5000, InversionTime=1800), "flair"),
    "siemens SPACE DIR": (dict(SeriesDescription="t2_spc_dir_sag", SequenceName="*spcir2_230ns", ScanningSequence=["SE", "IR"],
                               MRAcquisitionType="3D", EchoTime=300, RepetitionTime=7500, InversionTime=3000), "flair"),
    "siemens T1 SPACE": (dict(SeriesDescription="t1_space_tra_iso", SequenceName="*spc_54ns", ScanningSequence="SE",
                              MRAcquisitionType="3D", FlipAngle=120, EchoTime=12, RepetitionTime=700), "t1"),
    "GE FIESTA-C": (dict(SeriesDescription="AX 3D FIESTA-C IAC", PulseSequenceName="fiesta", ScanningSequence="GR",
                         MRAcquisitionType="3D", FlipAngle=60, EchoTime=2.1, RepetitionTime=5.0), "heavily_t2_3d"),
    "GE CUBE T2": (dict(SeriesDescription="Sag CUBE T2", ScanningSequence="SE", MRAcquisitionType="3D", FlipAngle=90,
                        EchoTime=90, RepetitionTime=2500), "heavily_t2_3d"),
    "GE CUBE FLAIR": (dict(SeriesDescription="Sag CUBE FLAIR", ScanningSequence=["SE", "IR"], MRAcquisitionType="3D",
                           FlipAngle=90, EchoTime=120, RepetitionTime=6000, InversionTime=1800), "flair"),
    "philips 3D DRIVE": (dict(SeriesDescription="T2W_3D_DRIVE IAC", ScanningSequence="SE", MRAcquisitionType="3D",
                              FlipAngle=90, EchoTime=200, RepetitionTime=1500), "heavily_t2_3d"),
    "philips VISTA T1 +C": (dict(SeriesDescription="3D_T1W_VISTA_+C", ScanningSequence="SE", MRAcquisitionType="3D",
                                 FlipAngle=90, EchoTime=25, RepetitionTime=400), "t1"),
    "philips balanced TFE": (dict(SeriesDescription="3D bTFE CPA", ScanningSequence="GR", MRAcquisitionType="3D",
                                  FlipAngle=40, EchoTime=2.5, RepetitionTime=5.0), "heavily_t2_3d"),
    "canon TrueSSFP": (dict(SeriesDescription="3D TrueSSFP IAC", ScanningSequence="GR", MRAcquisitionType="3D",
                            FlipAngle=50, EchoTime=2.6, RepetitionTime=5.2), "heavily_t2_3d"),
    "siemens PD SPACE": (dict(SeriesDescription="pd_space_sag_p2_iso", SequenceName="*spc_30ns", ScanningSequence="SE",
                              MRAcquisitionType="3D", FlipAngle=120, EchoTime=30, RepetitionTime=1200), "pd"),
    "GE CUBE PD": (dict(SeriesDescription="Sag CUBE PD", ScanningSequence="SE", MRAcquisitionType="3D", FlipAngle=90,
                        EchoTime=28, RepetitionTime=1800), "pd"),
    "siemens TOF": (dict(SeriesDescription="tof_3d_multi-slab", SequenceName="*fl3d3r_t70", ScanningSequence="GR",
                         MRAcquisitionType="3D", FlipAngle=18, EchoTime=3.6, RepetitionTime=22), "tof"),
}


@pytest.mark.parametrize("name", list(VENDOR_HEADERS))
def test_series_rules_tell_cisternography_from_flair_and_t1_3d_spin_echo(name):
    """SPACE/CUBE FLAIR, double inversion recovery and T1 SPACE/VISTA share SPACE's sequence name and 3D spin
    echo; they were taken for heavily T2-weighted (confidence 0.41-0.67) and would have been analysed. PD SPACE/CUBE
    (short echo, long repetition) were refused as T1-weighted, which misnames them to the user."""
    from nvc_mri.io.sequence import classify_header

    header, family = VENDOR_HEADERS[name]
    assert classify_header(header).family == family


def test_a_weakly_recognised_heavily_t2_series_is_warned_about(tmp_path):
    """Contradictory header evidence on a CISS (a T1 protocol name, contrast, an inversion time): it is still the
    likeliest cisternography, and the warnings say the guess is weak instead of the reason claiming there is none."""
    write_dicom_series(make_volume(seed=1), tmp_path / "s", overrides=dict(
        ProtocolName="t1_mprage_tra", ContrastBolusAgent="Gd", SeriesDescription="t2_ciss3d_tra_iso_post",
        InversionTime=1600.0, MRAcquisitionType="3D"))
    volume = load_volume(tmp_path / "s")
    assert volume.meta.sequence.is_heavily_t2_3d and volume.meta.sequence.confidence < 0.5
    assert "a weak guess" in volume.meta.selection_reason
    assert any("only weakly recognised as heavily T2-weighted" in w for w in volume.meta.warnings)


@pytest.mark.parametrize("unit, per_mm", [("meter", 0.001), ("micron", 1000.0)])
def test_nifti_in_metres_or_microns_is_read_in_mm(tmp_path, oblique_volume, unit, per_mm):
    """NIfTI declares its spatial unit (xyzt_units), which nibabel leaves as it is: an image in metres was refused
    as "affine is singular", one in microns as "absurd voxel spacing 600 mm". Both load with the same geometry in
    mm as the mm original, and a warning says they were converted."""
    scaled = oblique_volume.affine.copy()
    scaled[:3] *= per_mm
    img = nib.Nifti1Image(oblique_volume.array, scaled)
    img.header.set_xyzt_units(unit)
    nib.save(img, tmp_path / f"{unit}.nii.gz")
    volume = load_volume(tmp_path / f"{unit}.nii.gz")
    np.testing.assert_allclose(volume.affine, oblique_volume.affine, atol=1e-4)
    assert any(f"unit is {unit}s" in w for w in volume.meta.warnings)
    from nvc_mri.io.convert import as_volume

    np.testing.assert_allclose(as_volume(img).affine, oblique_volume.affine, atol=1e-4)  # the same image in memory
    plain = nib.Nifti1Image(oblique_volume.array, oblique_volume.affine)  # units 'unknown' (0) are mm
    nib.save(plain, tmp_path / "plain.nii.gz")
    np.testing.assert_allclose(load_volume(tmp_path / "plain.nii.gz").affine, oblique_volume.affine, atol=1e-4)


def test_nifti_whose_sform_and_qform_disagree_is_warned_about(tmp_path, oblique_volume):
    """A tool that flips the image and rewrites only one of the two NIfTI orientations leaves them mirrored: the
    loader uses the sform (as nibabel does), and says that the sides may be swapped."""
    img = nib.Nifti1Image(oblique_volume.array, oblique_volume.affine)
    nib.save(img, tmp_path / "agree.nii.gz")
    assert not any("disagree" in w for w in load_volume(tmp_path / "agree.nii.gz").meta.warnings)
    mirrored = oblique_volume.affine.copy()
    mirrored[:, 0] *= -1
    img.set_qform(mirrored, code=1)
    nib.save(img, tmp_path / "mirrored.nii.gz")
    loaded = load_volume(tmp_path / "mirrored.nii.gz")
    np.testing.assert_allclose(loaded.affine, oblique_volume.affine, atol=1e-5)
    assert any("sform and qform disagree" in w and "one of them mirrored" in w for w in loaded.meta.warnings)


def test_a_study_exported_twice_into_one_folder_loads_once(tmp_path):
    """The same instances in two subfolders (a CD copied twice, a study sent twice): each SOPInstanceUID counts once,
    instead of every slice position appearing twice ('several slices share one position')."""
    import shutil

    write_dicom_series(make_volume(seed=1), tmp_path / "study" / "export1")
    shutil.copytree(tmp_path / "study" / "export1", tmp_path / "study" / "export2")
    once = load_volume(tmp_path / "study" / "export1")
    twice = load_volume(tmp_path / "study")
    assert twice.shape == once.shape
    np.testing.assert_array_equal(twice.array, once.array)
