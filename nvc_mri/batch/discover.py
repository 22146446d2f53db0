"""Find the studies under a folder: image files (NIfTI, NRRD, MetaImage, MGH), zip archives and DICOM studies in
nested folders.

DICOM files are grouped by StudyInstanceUID wherever they lie. Study names (the output folder
names) never contain raw DICOM values: a DICOM study is ``dicom-<hash of its UID>``; a file is
named from its path relative to the input root, reduced to safe characters, plus a short hash.
"""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from nvc_mri.io.dicom_headers import looks_like_dicom, read_dicom
from nvc_mri.io.image_files import IMAGE_FILE_NAMES, detached_data_files

NIFTI_SUFFIXES = (".nii", ".nii.gz")


@dataclass(frozen=True)
class Study:
    """One study to analyse.

    Attributes
    ----------
    name : str
        Safe, unique folder name for its outputs.
    kind : {'nifti', 'image', 'zip', 'dicom'}
        'image': an NRRD, MetaImage or MGH file.
    source : str
        The file (NIfTI, other image, zip) or the folder holding the study's DICOM files (for people; may be shared).
    files : tuple of str
        Every input file of the study (an ``.nhdr``/``.mhd`` header, then its data file).
    """

    name: str
    kind: str
    source: str
    files: tuple[str, ...]


def _digest(text: str, n: int = 12) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:n]


def safe_name(relative_path: str) -> str:
    """A folder name from a relative path: safe characters only, bounded length, a hash against collisions."""
    ending = next((e for e in NIFTI_SUFFIXES + IMAGE_FILE_NAMES + (".zip",) if relative_path.lower().endswith(e)), "")
    stem = relative_path[: len(relative_path) - len(ending)]
    clean = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-")[:60] or "study"
    return f"{clean}-{_digest(relative_path, 6)}"


def _study_uid(path: Path) -> str | None:
    try:
        ds = read_dicom(path, stop_before_pixels=True, specific_tags=["StudyInstanceUID"])
        return str(ds.get("StudyInstanceUID") or "") or None
    except Exception:  # damaged files become a study of their folder and fail there, with a reason
        return None


def _file_study(path: Path, relative: str, kind: str) -> Study:
    """A study of one file; a detached header's data files are among its files, so that --resume sees them change."""
    data = detached_data_files(path) if kind == "image" else ()
    return Study(safe_name(relative), kind, str(path), (str(path),) + tuple(str(f) for f in data))


def find_studies(root: str | Path, exclude: str | Path | None = None) -> list[Study]:
    """Every study under ``root`` (sorted by name; hidden files and folders are skipped, and so are nvc-mri's
    own outputs: their labels.nii.gz is not a study).

    Parameters
    ----------
    root : path
        A folder; also accepted: one image (NIfTI, NRRD, MetaImage, MGH) or zip file.
    exclude : path, optional
        A folder not to look in (the batch's output root, when it lies under ``root``).
    """
    from nvc_mri.report.write import is_nvc_output

    root = Path(root)
    excluded = Path(exclude).resolve() if exclude is not None else None
    if root.is_file():
        kind = "zip" if zipfile.is_zipfile(root) else "image" if root.name.lower().endswith(IMAGE_FILE_NAMES) else "nifti"
        return [_file_study(root, root.name, kind)]
    studies: list[Study] = []
    dicom: dict[str, list[Path]] = {}
    for folder, dirs, files in os.walk(root):
        if is_nvc_output(set(files) | set(dirs)):
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (Path(folder) / d).resolve() != excluded)
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(folder) / name
            relative = str(path.relative_to(root))
            if name.lower().endswith(NIFTI_SUFFIXES):
                studies.append(_file_study(path, relative, "nifti"))
            elif name.lower().endswith(IMAGE_FILE_NAMES):
                studies.append(_file_study(path, relative, "image"))
            elif name.lower().endswith(".zip") and zipfile.is_zipfile(path):
                studies.append(_file_study(path, relative, "zip"))
            elif looks_like_dicom(path):
                key = _study_uid(path) or f"unreadable:{Path(folder).relative_to(root)}"
                dicom.setdefault(key, []).append(path)
    for key, paths in dicom.items():
        common = Path(os.path.commonpath([str(p.parent) for p in paths]))
        studies.append(Study(f"dicom-{_digest(key)}", "dicom", str(common), tuple(str(p) for p in sorted(paths))))
    return sorted(studies, key=lambda s: s.name)


def fingerprint(study: Study, config_digest: str, model_sha256: str, version: str) -> str:
    """What a study's outputs were made from: its files (path, size, modification time), config, model, software."""
    digest = hashlib.sha256(f"{config_digest}|{model_sha256}|{version}|{study.kind}".encode())
    for path in study.files:
        stat = os.stat(path)
        digest.update(f"|{path}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()
