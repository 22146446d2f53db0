"""NRRD, MetaImage and FreeSurfer MGH files: what 3D Slicer, ITK tools and FreeSurfer save.

NRRD and MetaImage are read by SimpleITK (LPS geometry, converted to RAS+), MGH/MGZ by nibabel (RAS+ already).
Like a NIfTI, none of them carries a sequence header: the sequence is judged from the image.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import sys
import tempfile
import threading
from pathlib import Path

import nibabel as nib
import numpy as np

from nvc_mri.errors import InputError
from nvc_mri.io.convert import sitk_voxels_and_affine, volume_from_array
from nvc_mri.io.volume import Volume

ITK_READERS = {".nrrd": ("NrrdImageIO", "nrrd", "NRRD"), ".nhdr": ("NrrdImageIO", "nrrd", "NRRD"),
               ".mha": ("MetaImageIO", "metaimage", "MetaImage"), ".mhd": ("MetaImageIO", "metaimage", "MetaImage")}
MGH_NAMES = (".mgz", ".mgh")
IMAGE_FILE_NAMES = tuple(ITK_READERS) + MGH_NAMES
MM_PER_NRRD_UNIT = {"": 1.0, "mm": 1.0, "millimeter": 1.0, "millimetre": 1.0, "cm": 10.0, "m": 1000.0, "meter": 1000.0,
                    "metre": 1000.0, "um": 0.001, "µm": 0.001, "micron": 0.001}
NRRD_PATIENT_SPACES = ("left-posterior-superior", "right-anterior-superior", "left-anterior-superior",
                       "LPS", "RAS", "LAS")
_STDERR_LOCK = threading.Lock()  # file descriptor 2 is the process's, shared by its threads
AXES_ASSUMED = ("the axes are assumed, so the patient's left and right are not known; check each side against the "
                "images or fix the header")


def _nrrd_space_units(path: Path) -> list[str]:
    """The ``space units`` of an NRRD header (SimpleITK ignores them), or [] when none are given."""
    with open(path, "rb") as fh:
        head = fh.read(65536)
    for line in head.split(b"\n\n", 1)[0].decode("latin-1").splitlines():
        if line.lower().startswith("space units:"):
            return re.findall(r'"([^"]*)"', line)
    return []


def detached_data_files(path: str | Path) -> tuple[Path, ...]:
    """The voxel files a detached header names (``.nhdr``: ``data file:``, ``.mhd``: ``ElementDataFile =``) that
    exist beside it: one file, a ``LIST`` of files on the header's following lines, or a printf-style pattern with
    its first, last and step numbers (``slice%03d.raw 1 40 1``). Empty for attached data (``LOCAL``)."""
    path = Path(path)
    key = {".nhdr": "data file:", ".mhd": "elementdatafile ="}.get(path.suffix.lower())
    if key is None:
        return ()
    with open(path, "rb") as fh:
        lines = fh.read(1 << 20).decode("latin-1").splitlines()
    for i, line in enumerate(lines):
        if not line.lower().startswith(key):
            continue
        value = line[len(key):].strip()
        words = value.split()
        if not words or words[0].upper() == "LOCAL":
            return ()
        if words[0].upper() == "LIST":
            names = [rest.strip() for rest in lines[i + 1:] if rest.strip()]
        elif len(words) >= 4 and "%" in words[0] and all(re.fullmatch(r"-?\d+", w) for w in words[1:4]):
            first, last, step = (int(w) for w in words[1:4])
            numbers = range(first, last + (1 if step > 0 else -1), step) if step else ()
            names = [words[0] % number for number in numbers[:100_000]]
        else:
            names = [value]
        return tuple(data for data in (path.parent / name for name in names) if data.is_file())
    return ()


def _nrrd_geometry_warnings(path: Path, space: str, affine: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """The affine in mm (``space units`` other than mm are converted) and warnings about an NRRD's geometry."""
    warnings = []
    if space not in NRRD_PATIENT_SPACES:
        warnings.append(f"NRRD has no patient orientation (space: {space or 'none'}): {AXES_ASSUMED}")
    units = [u.strip().lower() for u in _nrrd_space_units(path)]
    scales = {MM_PER_NRRD_UNIT.get(u) for u in units}
    if None in scales or len(scales) > 1:
        raise InputError(path, f"NRRD space units {units} are not one length this reader knows (mm, cm, m, um)")
    scale = scales.pop() if scales else 1.0
    if scale != 1.0:
        affine = affine.copy()
        affine[:3] *= scale
        warnings.append(f"NRRD space unit is {units[0]}: voxel sizes and positions were converted to mm")
    return affine, warnings


def _itk_reason(message: str) -> str:
    """The most specific line of an ITK reader's exception (not its source line, object address or "Success")."""
    lines = [re.sub(r"^(ITK ERROR: \w+\(0x[0-9a-f]+\): |\[\w+\] )", "", ln.strip()) for ln in message.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("Exception thrown") and ln != "Reason: Success"]
    return lines[-1][:160] if lines else "unknown error"


@contextlib.contextmanager
def _native_stderr_held():
    """Hold what C++ code writes straight to file descriptor 2 (MetaIO reports damage there, besides raising).

    Yields a list that receives the held text. The caller decides: a failed read folds it into its one-line
    error; after a successful read it is written out unchanged. File descriptor 2 is the whole process's: what
    other threads write during the read is held with it (and, after a failed read, only its start is kept).
    """
    held: list[str] = []
    with _STDERR_LOCK, tempfile.TemporaryFile() as sink:  # one holder at a time, or a second would restore the first's sink
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield held
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            held.append(sink.read().decode("utf-8", "replace"))


def _load_itk(path: Path, image_io: str, fmt: str, what: str) -> Volume:
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetImageIO(image_io)
    reader.SetFileName(str(path))
    failure = None
    with _native_stderr_held() as held:
        try:
            image = reader.Execute()
        except RuntimeError as exc:
            failure = str(exc)
    native = "".join(held)
    if failure is not None:
        said = "; ".join(" ".join(ln.split()) for ln in native.splitlines() if ln.strip())  # what the reader itself said
        raise InputError(path, f"not a readable {what} file: damaged, truncated or its data file missing "
                               f"({said[:160] if said else _itk_reason(failure)})") from None
    if native:
        sys.stderr.write(native)
    array, affine = sitk_voxels_and_affine(image, str(path))
    warnings: list[str] = []
    if fmt == "nrrd":
        space = reader.GetMetaData("NRRD_space") if reader.HasMetaDataKey("NRRD_space") else ""
        affine, warnings = _nrrd_geometry_warnings(path, space, affine)
    return volume_from_array(array, affine, str(path), fmt, what, warnings)


def _mgh_has_orientation(path: Path) -> bool:
    """The stored goodRASFlag (nibabel sets it to 1 on loading, when it puts its default coronal axes in)."""
    with nib.openers.ImageOpener(str(path)) as fh:  # .mgz decompressed, as nibabel reads it
        head = fh.read(30)
    return len(head) == 30 and int.from_bytes(head[28:30], "big", signed=True) == 1


def _load_mgh(path: Path) -> Volume:
    try:
        img = nib.load(str(path))
        array = np.asanyarray(img.dataobj)
    except (EOFError, gzip.BadGzipFile) as exc:
        raise InputError(path, f"MGH file is truncated ({exc.__class__.__name__})") from None
    except Exception as exc:  # nibabel raises ValueError/ImageFileError/OSError for damaged files
        raise InputError(path, f"not a readable MGH file ({str(exc).splitlines()[0][:120]})") from None
    warnings = [] if _mgh_has_orientation(path) else [
        f"MGH header has no scanner orientation (goodRASFlag 0): {AXES_ASSUMED}"]
    return volume_from_array(array, img.affine, str(path), "mgh", "MGH", warnings)


def load_image_file(path: str | Path) -> Volume:
    """Load an NRRD (``.nrrd``, ``.nhdr``), MetaImage (``.mha``, ``.mhd``) or FreeSurfer (``.mgz``, ``.mgh``)
    image with its geometry.

    Returns
    -------
    Volume
        float32 voxels in the stored axis order and an affine from voxel indices to **RAS+ mm**; the sequence is
        judged from the image (CSF brighter than brainstem), with a warning when unsure.

    Raises
    ------
    InputError
        With one line naming the file and the problem (damaged, not 3D, vector data, unknown units).
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith(MGH_NAMES):
        volume = _load_mgh(path)
    else:
        volume = _load_itk(path, *ITK_READERS[name[name.rindex("."):]])
    volume.meta.source_files = [str(path)]
    return volume
