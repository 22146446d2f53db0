"""``load_volume``: one entry point for NIfTI files, DICOM files, folders and zip archives."""

from __future__ import annotations

import gzip
import io
import json
import tempfile
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np

from nvc_mri.config import load_config
from nvc_mri.errors import InputError
from nvc_mri.io.dicom import load_group
from nvc_mri.io.dicom_headers import looks_like_dicom, read_dicom
from nvc_mri.io.geometry import check_spacing, check_voxels, nifti_affine_in_mm
from nvc_mri.io.convert import as_intensities, judged_from_intensities
from nvc_mri.io.image_files import IMAGE_FILE_NAMES, load_image_file
from nvc_mri.io.sequence import SequenceGuess, classify_header, sidecar_header
from nvc_mri.io.series import (
    SeriesCandidate,
    choose_series,
    other_heavily_t2_series,
    other_parts_of_series,
    scan_dicom_folder,
    weak_guess_warnings,
)
from nvc_mri.io.volume import Volume, VolumeMeta

MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
NIFTI_NAMES = (".nii", ".nii.gz", ".hdr", ".hdr.gz", ".img", ".img.gz")


def _is_nifti_header(head: bytes) -> bool:
    """NIfTI-1 (magic at byte 344), NIfTI-2 (magic at byte 4) or an ANALYZE 7.5 header (sizeof_hdr 348)."""
    return (len(head) >= 348 and head[344:347] in (b"n+1", b"ni1")) or head[4:7] in (b"n+2", b"ni2") \
        or head[:4] in ((348).to_bytes(4, "little"), (348).to_bytes(4, "big"))


def _head(path: Path, n: int = 352) -> bytes:
    """The first ``n`` bytes, decompressed when the file is gzip."""
    with open(path, "rb") as fh:
        head = fh.read(n)
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as fh:
                return fh.read(n)
        except (OSError, EOFError):
            return b""
    return head


def _kind(path: Path) -> str:
    name = path.name.lower()
    if path.is_dir():
        return "folder"
    if not path.exists():
        raise InputError(path, "no such file or folder")
    if name.endswith(IMAGE_FILE_NAMES):
        return "image"
    if name.endswith((".img", ".img.gz")):  # the data half of a NIfTI/ANALYZE pair
        if not _header_of_pair(path).exists():
            raise InputError(path, f"image data without its header: {_header_of_pair(path).name} is missing")
        return "nifti"
    with open(path, "rb") as fh:
        raw = fh.read(352)
    if raw[:2] == b"\x1f\x8b":
        return "nifti" if name.endswith((".nii.gz", ".gz")) or _is_nifti_header(_head(path)) else "unknown"
    if _is_nifti_header(raw) or name.endswith(".nii"):
        return "nifti"
    if zipfile.is_zipfile(path):
        return "zip"
    if looks_like_dicom(path):  # Part 10, a .dcm/.ima name, or a data set without preamble (IMAGES/IM0000)
        return "dicomdir" if _is_dicomdir(path) else "dicom"
    return "unknown"


def _is_dicomdir(path: Path) -> bool:
    """A DICOMDIR (Media Storage Directory): the index of a CD or export, not an image."""
    if path.name.upper() == "DICOMDIR":
        return True
    try:
        return read_dicom(path, stop_before_pixels=True, specific_tags=["SOPClassUID"]).file_meta.get(
            "MediaStorageSOPClassUID") == MEDIA_STORAGE_DIRECTORY
    except Exception:  # an unreadable file is named as such when it is loaded
        return False


def _header_of_pair(path: Path) -> Path:
    name = path.name
    stem = name[:-7] if name.lower().endswith(".img.gz") else name[:-4]
    return path.with_name(stem + (".hdr.gz" if name.lower().endswith(".gz") else ".hdr"))


def _open_nifti(path: Path) -> tuple[nib.spatialimages.SpatialImage, nib.spatialimages.SpatialHeader]:
    """The image and its header as stored (nibabel "fixes" zero pixdim on load, which would hide it).

    Files named without a NIfTI extension (``scan``, a gzip file called ``.nii``) are read from their bytes.
    """
    name = path.name.lower()
    if name.endswith((".img", ".img.gz")):
        path = _header_of_pair(path)
    with open(path, "rb") as fh:
        gzipped = fh.read(2) == b"\x1f\x8b"
    if name.endswith(NIFTI_NAMES) and gzipped == name.endswith(".gz"):
        img = nib.load(str(path))
        with nib.openers.ImageOpener(str(path)) as fh:
            return img, type(img.header).from_fileobj(fh, check=False)
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    image_class = nib.Nifti2Image if data[4:7] in (b"n+2", b"ni2") else nib.Nifti1Image
    img = image_class.from_bytes(data)
    return img, image_class.header_class.from_fileobj(io.BytesIO(data), check=False)


def _load_nifti(path: Path) -> Volume:
    try:
        img, raw = _open_nifti(path)
        array = as_intensities(str(path), np.asanyarray(img.dataobj))
    except InputError:
        raise
    except (EOFError, gzip.BadGzipFile) as exc:
        raise InputError(path, f"NIfTI file is truncated ({exc.__class__.__name__})") from None
    except Exception as exc:  # nibabel raises ValueError/ImageFileError/OSError for damaged files
        raise InputError(path, f"not a readable NIfTI file ({str(exc).splitlines()[0][:120]})") from None
    if not ("sform_code" in raw.keys() and int(raw["sform_code"]) > 0) and np.any(raw["pixdim"][1:4] <= 0):
        raise InputError(path, f"zero or negative voxel spacing in the header (pixdim {raw['pixdim'][1:4].tolist()})")
    if array.ndim != 3:
        raise InputError(path, f"expected a 3D image, NIfTI has shape {array.shape}")
    affine, warnings = nifti_affine_in_mm(img.affine, raw)
    if abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise InputError(path, "NIfTI affine is singular (zero voxel size)")
    check_spacing(str(path), tuple(np.linalg.norm(affine[:3, :3], axis=0)))
    check_voxels(str(path), array)
    guess, header, sequence_warnings = _nifti_sequence(path, array)
    warnings += sequence_warnings + _orientation_warnings(raw)
    meta = VolumeMeta(source=str(path), format="nifti", modality="MR", sequence=guess,
                      source_files=[str(path)], warnings=warnings, header=header)
    return Volume(array=array, affine=affine, meta=meta)


def _orientation_warnings(raw: nib.spatialimages.SpatialHeader) -> list[str]:
    """Warnings about a NIfTI's orientation, which decides every finding's side: none stored (nibabel then assumes
    its default axes), or an sform and a qform that disagree (a tool changed one of them, perhaps flipping the
    image; nibabel, and so this loader, uses the sform)."""
    unknown = ("the axes are assumed, so the patient's left and right are not known; check each side against the "
               "images or fix the header")
    if "sform_code" not in raw.keys():
        return [f"ANALYZE 7.5 header has no orientation: {unknown}"]
    sform_code, qform_code = int(raw["sform_code"]), int(raw["qform_code"])
    if sform_code == 0 and qform_code == 0:
        return [f"NIfTI has no orientation (sform and qform codes 0): {unknown}"]
    if sform_code == 0 or qform_code == 0:
        return []
    sform, qform = raw.get_sform(), raw.get_qform()
    s_axes = sform[:3, :3] / np.linalg.norm(sform[:3, :3], axis=0)
    q_axes = qform[:3, :3] / np.linalg.norm(qform[:3, :3], axis=0)
    turned = float(np.degrees(np.arccos(np.clip(np.min(np.sum(s_axes * q_axes, axis=0)), -1.0, 1.0))))
    shifted = float(np.linalg.norm(sform[:3, 3] - qform[:3, 3]))
    if turned <= 1.0 and shifted <= 1.0:
        return []
    flipped = bool(np.sign(np.linalg.det(sform[:3, :3])) != np.sign(np.linalg.det(qform[:3, :3])))
    return [f"NIfTI sform and qform disagree (axes {turned:.0f} deg apart{', one of them mirrored' if flipped else ''}, "
            f"origins {shifted:.1f} mm apart): the sform was used; if a tool changed one of them, left and right may "
            "be swapped: check each side against the images"]


def bids_sidecar(path: Path) -> dict | None:
    """The JSON sidecar dcm2niix and BIDS put beside a NIfTI (``scan.nii.gz`` -> ``scan.json``), or None."""
    name = path.name
    for ending in NIFTI_NAMES:
        if name.lower().endswith(ending):
            name = name[: -len(ending)]
            break
    sidecar = path.with_name(name + ".json")
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _nifti_sequence(path: Path, array: np.ndarray) -> tuple[SequenceGuess, dict, list[str]]:
    """What a NIfTI holds: from its BIDS sidecar's sequence header when there is one that the series rules
    recognise (basis ``"bids-sidecar"``), else judged from the image; the header kept, and warnings."""
    image_guess, image_warnings = judged_from_intensities(array, "NIfTI")
    if image_guess.family == "label_map":
        return image_guess, {}, image_warnings
    sidecar = bids_sidecar(path)
    header = sidecar_header(sidecar) if sidecar else {}
    header_guess = classify_header(header) if header else None
    if header_guess is not None and header_guess.family != "unknown":
        guess = header_guess.model_copy(update={"basis": "bids-sidecar"})
        warnings = weak_guess_warnings(guess)
        if guess.is_heavily_t2_3d and not image_guess.is_heavily_t2_3d and image_guess.confidence >= 0.6:
            warnings.append("the JSON sidecar names a heavily T2-weighted sequence, but in the image CSF does not look "
                            "clearly brighter than brain: check that the sidecar belongs to this image")
        return guess, header, warnings
    return image_guess, header, image_warnings


def _extract_zip(path: Path, into: Path) -> None:
    limit = load_config("io.yaml")["max_zip_bytes"]
    try:
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            if sum(m.file_size for m in members) > limit:
                raise InputError(path, f"zip expands beyond {limit} bytes")
            for n, member in enumerate(members):  # never trust member names as paths
                with zf.open(member) as src, open(into / f"{n:06d}.dcm", "wb") as dst:
                    dst.write(src.read())
    except zipfile.BadZipFile as exc:
        raise InputError(path, f"damaged zip file ({exc})") from None


def scan(path: str | Path) -> tuple[list[SeriesCandidate], int]:
    """List the MR series in a DICOM folder (or its DICOMDIR) or zip without reading pixels."""
    path = Path(path)
    kind = _kind(path)
    if kind == "folder":
        return scan_dicom_folder(path)
    if kind == "dicomdir":
        return scan_dicom_folder(path.parent, path)
    if kind == "zip":
        with tempfile.TemporaryDirectory(prefix="nvc-zip-") as tmp:
            _extract_zip(path, Path(tmp))
            return scan_dicom_folder(Path(tmp), path)
    raise InputError(path, "scan() takes a DICOM folder, DICOMDIR or zip")


def _load_dicom_folder(folder: Path, source: Path, series: str | int | None) -> Volume:
    candidates, _ = scan_dicom_folder(folder, source)
    chosen, reason = choose_series(source, candidates, series)
    volume = load_group(chosen.group, str(source), chosen.sequence, reason)
    volume.meta.warnings += (weak_guess_warnings(chosen.sequence) + other_parts_of_series(candidates, chosen)
                             + other_heavily_t2_series(candidates, chosen))
    return volume


def load_volume(path: str | Path, series: str | int | None = None) -> Volume:
    """Load one MR volume with exact geometry.

    Parameters
    ----------
    path : str or Path
        A NIfTI file (``.nii``, ``.nii.gz``), an NRRD (``.nrrd``, ``.nhdr``), MetaImage (``.mha``, ``.mhd``) or
        FreeSurfer (``.mgz``, ``.mgh``) file, one DICOM file (single- or multi-frame),
        a folder of DICOM files (nested, several series), its DICOMDIR, or a ``.zip`` of DICOM files.
    series : str or int, optional
        SeriesInstanceUID or SeriesNumber to load instead of the automatic choice; ``"<number>#<k>"`` names
        one part (echo, acquisition, orientation) of a series that holds several, as ``nvc-mri info`` lists them.

    Returns
    -------
    Volume
        float32 voxels in the stored axis order, an affine from voxel indices to
        **RAS+ millimetres**, and ``meta`` with the sequence guess (``meta.sequence``),
        series UID, source files and warnings. Use :meth:`Volume.as_canonical` for the
        RAS+ axis order (no resampling).

    Raises
    ------
    InputError
        With one line naming the file and the problem.
    """
    path = Path(path)
    kind = _kind(path)
    if kind in ("nifti", "image"):
        if series is not None:  # silently ignored, it would suggest a choice was made
            raise InputError(path, f"an image file holds one image; a series ({series}) is chosen only in DICOM folders and zips")
        return _load_nifti(path) if kind == "nifti" else load_image_file(path)
    if kind == "folder":
        return _load_dicom_folder(path, path, series)
    if kind == "dicomdir":  # the files it indexes lie in the folder that holds it
        return _load_dicom_folder(path.parent, path, series)
    if kind == "zip":
        with tempfile.TemporaryDirectory(prefix="nvc-zip-") as tmp:
            _extract_zip(path, Path(tmp))
            volume = _load_dicom_folder(Path(tmp), path, series)
        return volume
    if kind == "dicom":
        with tempfile.TemporaryDirectory(prefix="nvc-one-") as tmp:
            link = Path(tmp) / "instance.dcm"
            link.symlink_to(path.resolve())
            volume = _load_dicom_folder(Path(tmp), path, series)
        # keep the real file name, not the temporary link
        volume.meta.source_files = [str(path)]
        return volume
    raise InputError(path, "unknown file format: neither DICOM nor NIfTI, NRRD, MetaImage or MGH")
