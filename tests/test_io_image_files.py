"""NRRD, MetaImage and FreeSurfer MGH files: geometry against the NIfTI they were made from and against hand-written
headers, units, orientation warnings and damaged files."""

from __future__ import annotations

import gzip
import os

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from typer.testing import CliRunner

from nvc_mri.batch import find_studies
from nvc_mri.batch.discover import fingerprint
from nvc_mri.cli import app
from nvc_mri.errors import InputError
from nvc_mri.io import load_volume
from nvc_mri.io.image_files import load_image_file

runner = CliRunner()
SHAPE = (4, 5, 6)


def _write_nrrd(path, space_lines: str, data: np.ndarray | None = None) -> None:
    """A one-file NRRD with raw little-endian int16 voxels (the fastest axis first, as NRRD stores them)."""
    data = np.arange(np.prod(SHAPE), dtype="<i2").reshape(SHAPE, order="F") if data is None else data
    header = (f"NRRD0004\ntype: int16\ndimension: 3\n{space_lines}sizes: {' '.join(map(str, data.shape))}\n"
              "kinds: domain domain domain\nendian: little\nencoding: raw\n\n")
    path.write_bytes(header.encode() + data.astype("<i2").tobytes(order="F"))


@pytest.mark.parametrize("orientation", ["PIL", "LAS", "IRA"])
def test_slicer_itk_and_freesurfer_files_load_as_the_nifti_they_were_made_from(real_data, tmp_path, orientation):
    """SimpleITK writes the NRRD and MetaImage files, nibabel the MGZ; the loader must give the same voxels, in the
    same axis order, and the same RAS+ affine as nibabel's reading of the NIfTI (LPS -> RAS and (z, y, x) -> (i, j, k)
    are where a reader goes wrong)."""
    source = real_data / "nifti-orientations" / f"{orientation}.nii.gz"
    reference = load_volume(source)
    image = sitk.ReadImage(str(source))
    for name in ("scan.nrrd", "detached.nhdr", "scan.mha", "detached.mhd"):
        sitk.WriteImage(image, str(tmp_path / name))
    nii = nib.load(source)
    nib.save(nib.MGHImage(np.asarray(nii.dataobj, dtype=np.float32), nii.affine), tmp_path / "scan.mgz")
    for name, fmt in [("scan.nrrd", "nrrd"), ("detached.nhdr", "nrrd"), ("scan.mha", "metaimage"),
                      ("detached.mhd", "metaimage"), ("scan.mgz", "mgh")]:
        volume = load_volume(tmp_path / name)
        assert volume.meta.format == fmt and volume.orientation == orientation, name
        np.testing.assert_allclose(volume.affine, reference.affine, atol=1e-3, err_msg=name)
        np.testing.assert_allclose(volume.array, reference.array, rtol=1e-5, atol=1e-3, err_msg=name)
        assert volume.meta.source_files == [str(tmp_path / name)]
        assert volume.meta.sequence.basis == "image-intensities"


@pytest.mark.parametrize("space, directions, origin", [
    ("right-anterior-superior", "(0.5,0,0) (0,0.6,0) (0,0,0.7)", "(10,20,30)"),
    ("left-posterior-superior", "(-0.5,0,0) (0,-0.6,0) (0,0,0.7)", "(-10,-20,30)"),
])
def test_a_hand_written_nrrd_keeps_its_world_coordinates_in_either_patient_space(tmp_path, space, directions, origin):
    """The same grid written in RAS and in LPS space (not by the library that reads it): voxel (1, 2, 3) lies at
    RAS (10.5, 21.2, 32.1) mm either way, and voxel values keep their (i, j, k) place."""
    _write_nrrd(tmp_path / "grid.nrrd", f"space: {space}\nspace directions: {directions}\nspace origin: {origin}\n")
    volume = load_volume(tmp_path / "grid.nrrd")
    np.testing.assert_allclose(volume.affine @ [1, 2, 3, 1], [10.5, 21.2, 32.1, 1], atol=1e-9)
    expected = np.arange(np.prod(SHAPE)).reshape(SHAPE, order="F")
    np.testing.assert_array_equal(volume.array, expected)
    assert not any("orientation" in w for w in volume.meta.warnings)


def test_nrrd_space_units_are_converted_to_mm_or_refused(tmp_path):
    grid = "space: left-posterior-superior\nspace directions: (0.0005,0,0) (0,0.0006,0) (0,0,0.0007)\nspace origin: (0,0,0)\n"
    _write_nrrd(tmp_path / "metres.nrrd", grid + 'space units: "m" "m" "m"\n')
    volume = load_volume(tmp_path / "metres.nrrd")
    np.testing.assert_allclose(np.linalg.norm(volume.affine[:3, :3], axis=0), [0.5, 0.6, 0.7])
    assert any("space unit is m" in w for w in volume.meta.warnings)
    _write_nrrd(tmp_path / "furlongs.nrrd", grid + 'space units: "furlong" "furlong" "furlong"\n')
    with pytest.raises(InputError, match="furlongs.nrrd: NRRD space units"):
        load_volume(tmp_path / "furlongs.nrrd")


def test_files_without_patient_orientation_warn_that_the_sides_are_not_known(tmp_path):
    _write_nrrd(tmp_path / "scanner.nrrd", "space: scanner-xyz\nspace directions: (0.5,0,0) (0,0.6,0) (0,0,0.7)\n")
    _write_nrrd(tmp_path / "bare.nrrd", "spacings: 0.5 0.6 0.7\n")
    nib.save(nib.MGHImage(np.random.default_rng(0).random((8, 8, 8)).astype(np.float32), np.eye(4)), tmp_path / "m.mgh")
    data = bytearray((tmp_path / "m.mgh").read_bytes())
    data[28:30] = b"\x00\x00"  # goodRASFlag (big-endian int16 at byte 28): no scanner orientation stored
    (tmp_path / "conformed.mgz").write_bytes(gzip.compress(bytes(data)))
    for name in ("scanner.nrrd", "bare.nrrd", "conformed.mgz"):
        warnings = load_volume(tmp_path / name).meta.warnings
        assert any("left and right are not known" in w for w in warnings), name


def test_damaged_and_non_3d_files_get_one_line_naming_the_file(tmp_path):
    image = sitk.GetImageFromArray(np.random.default_rng(0).random((6, 7, 8)).astype(np.float32))
    sitk.WriteImage(image, str(tmp_path / "whole.nrrd"))
    sitk.WriteImage(image, str(tmp_path / "whole.mha"))
    nib.save(nib.MGHImage(np.ones((6, 7, 8), np.float32), np.eye(4)), tmp_path / "whole.mgz")
    for name in ("whole.nrrd", "whole.mha", "whole.mgz"):
        data = (tmp_path / name).read_bytes()
        (tmp_path / f"cut_{name}").write_bytes(data[: len(data) - 100])
    sitk.WriteImage(sitk.Image([10, 10], sitk.sitkFloat32), str(tmp_path / "flat.mha"))
    sitk.WriteImage(sitk.Image([10, 10, 10], sitk.sitkVectorFloat32, 3), str(tmp_path / "vector.nrrd"))
    sitk.WriteImage(sitk.Image([10, 10, 10, 4], sitk.sitkFloat32), str(tmp_path / "series.nrrd"))
    cases = {"cut_whole.nrrd": "not a readable NRRD file", "cut_whole.mha": "not a readable MetaImage file",
             "cut_whole.mgz": "truncated", "flat.mha": "expected a 3D image", "vector.nrrd": "3 values per voxel",
             "series.nrrd": "expected a 3D image, got 4D"}
    for name, problem in cases.items():
        result = runner.invoke(app, ["info", str(tmp_path / name)])
        line = " ".join(result.output.split())
        assert result.exit_code != 0 and "Traceback" not in result.output, name
        assert str(tmp_path / name) in line and problem in line, line


def test_what_metaio_prints_about_a_damaged_file_goes_into_the_one_line_and_nowhere_else(tmp_path, capfd):
    """MetaIO writes its own lines to file descriptor 2 before SimpleITK raises; they used to appear above the
    error line. Now the error line carries them, and a later good read leaves file descriptor 2 working."""
    image = sitk.GetImageFromArray(np.random.default_rng(0).random((6, 7, 8)).astype(np.float32))
    sitk.WriteImage(image, str(tmp_path / "whole.mha"))
    data = (tmp_path / "whole.mha").read_bytes()
    (tmp_path / "cut.mha").write_bytes(data[: len(data) - 100])
    sitk.WriteImage(image, str(tmp_path / "detached.mhd"))
    (tmp_path / "detached.raw").unlink()
    capfd.readouterr()
    for name, said in [("cut.mha", "data not read completely"), ("detached.mhd", "Cannot open data file")]:
        with pytest.raises(InputError) as caught:
            load_image_file(tmp_path / name)
        assert said in str(caught.value) and "\n" not in str(caught.value), name
        assert capfd.readouterr().err == "", name
    load_image_file(tmp_path / "whole.mha")
    os.write(2, b"still here\n")
    assert capfd.readouterr().err == "still here\n"


def test_threads_reading_damaged_files_at_once_leave_file_descriptor_2_working(tmp_path, capfd):
    """Dask workers run studies in threads of one process. Two readers each holding file descriptor 2 could
    restore each other's temporary file onto it, and everything written to stderr afterwards was lost."""
    from concurrent.futures import ThreadPoolExecutor

    image = sitk.GetImageFromArray(np.random.default_rng(0).random((40, 40, 40)).astype(np.float32))
    sitk.WriteImage(image, str(tmp_path / "whole.mha"))
    data = (tmp_path / "whole.mha").read_bytes()
    (tmp_path / "cut.mha").write_bytes(data[: len(data) - 100])

    def read(k: int) -> str:
        try:
            load_image_file(tmp_path / ("cut.mha" if k % 2 else "whole.mha"))
            return "read"
        except InputError:
            return "refused"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(read, range(64)))
    assert outcomes == ["read", "refused"] * 32
    capfd.readouterr()
    os.write(2, b"still here\n")
    assert capfd.readouterr().err == "still here\n"


def test_batch_finds_nrrd_metaimage_and_mgh_studies_but_not_their_data_files(tmp_path):
    image = sitk.GetImageFromArray(np.random.default_rng(0).random((6, 7, 8)).astype(np.float32))
    for name in ("a.nrrd", "b.mhd", "c.nhdr", "d.mha"):
        sitk.WriteImage(image, str(tmp_path / name))
    nib.save(nib.MGHImage(np.ones((6, 7, 8), np.float32), np.eye(4)), tmp_path / "e.mgz")
    found = find_studies(tmp_path)
    assert sorted(s.source.rsplit("/", 1)[1] for s in found) == ["a.nrrd", "b.mhd", "c.nhdr", "d.mha", "e.mgz"]
    assert {s.kind for s in found} == {"image"} and (tmp_path / "b.raw").exists()
    assert all(not s.name.endswith((".nrrd", ".mha")) and "-" in s.name for s in found)
    files = {s.source.rsplit("/", 1)[1]: [f.rsplit("/", 1)[1] for f in s.files] for s in found}
    assert files["b.mhd"] == ["b.mhd", "b.raw"] and files["c.nhdr"] == ["c.nhdr", "c.raw"] and files["a.nrrd"] == ["a.nrrd"]
    mhd = next(s for s in found if s.source.endswith("b.mhd"))
    before = fingerprint(mhd, "config", "model", "1")
    (tmp_path / "b.raw").write_bytes((tmp_path / "b.raw").read_bytes()[::-1])  # new voxels, the same header
    os.utime(tmp_path / "b.raw", ns=(1, 1))
    assert fingerprint(mhd, "config", "model", "1") != before


MULTI_FILE_HEADERS = {
    "list.mhd": "ObjectType = Image\nNDims = 3\nDimSize = 6 7 8\nElementType = MET_SHORT\nElementSpacing = 0.5 0.5 1\n"
                "ElementDataFile = LIST\n" + "".join(f"s{k:03d}.raw\n" for k in range(8)),
    "pattern.mhd": "ObjectType = Image\nNDims = 3\nDimSize = 6 7 8\nElementType = MET_SHORT\nElementSpacing = 0.5 0.5 1\n"
                   "ElementDataFile = s%03d.raw 0 7 1\n",
    "list.nhdr": "NRRD0004\ntype: int16\ndimension: 3\nspace: left-posterior-superior\nsizes: 6 7 8\n"
                 "space directions: (0.5,0,0) (0,0.5,0) (0,0,1)\nkinds: domain domain domain\nendian: little\n"
                 "encoding: raw\nspace origin: (0,0,0)\ndata file: LIST 2\n" + "".join(f"s{k:03d}.raw\n" for k in range(8)),
    "pattern.nhdr": "NRRD0004\ntype: int16\ndimension: 3\nspace: left-posterior-superior\nsizes: 6 7 8\n"
                    "space directions: (0.5,0,0) (0,0.5,0) (0,0,1)\nkinds: domain domain domain\nendian: little\n"
                    "encoding: raw\nspace origin: (0,0,0)\ndata file: s%03d.raw 0 7 1 2\n",
}


@pytest.mark.parametrize("name", sorted(MULTI_FILE_HEADERS))
def test_a_header_with_one_data_file_per_slice_is_one_study_that_resume_sees_change(tmp_path, name):
    """NRRD and MetaImage headers may name a list of slice files or a numbered pattern. The volume loads from all of
    them, the batch finds one study (not the slice files) holding the header and all eight slices, and a new last
    slice changes its fingerprint, so that --resume analyses it again."""
    voxels = np.arange(8 * 7 * 6, dtype="<i2").reshape(8, 7, 6)  # slice, row, column
    for k in range(8):
        voxels[k].tofile(tmp_path / f"s{k:03d}.raw")
    (tmp_path / name).write_text(MULTI_FILE_HEADERS[name])
    volume = load_volume(tmp_path / name)
    assert volume.shape == (6, 7, 8) and np.array_equal(volume.array[:, :, 7], voxels[7].T.astype(np.float32))
    (study,) = find_studies(tmp_path)
    assert [f.rsplit("/", 1)[1] for f in study.files] == [name] + [f"s{k:03d}.raw" for k in range(8)]
    before = fingerprint(study, "config", "model", "1")
    (tmp_path / "s007.raw").write_bytes(voxels[7][::-1].tobytes())
    os.utime(tmp_path / "s007.raw", ns=(1, 1))
    assert fingerprint(study, "config", "model", "1") != before
