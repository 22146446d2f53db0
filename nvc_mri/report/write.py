"""Write an analysis into its output folder: complete or absent.

Everything is written into a temporary folder beside OUTDIR and swapped in at the end, so a
rerun replaces earlier outputs cleanly and a failure never leaves half a report. A failed
analysis leaves OUTDIR holding only ``error.json`` with the reason.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
import time
from pathlib import Path

from nvc_mri import __version__
from nvc_mri.atomic import atomic_dir, atomic_save_nifti
from nvc_mri.errors import InputError, error_line
from nvc_mri.report.html import report_html
from nvc_mri.report.key_images import key_images, montage
from nvc_mri.report.schema import Outputs

FORMATS = ("json", "html", "nifti", "dicom")
OUTPUT_NAMES = {"report.json", "report.html", "labels.nii.gz", "dicom", "error.json", "fingerprint.json"}


def is_nvc_output(names: set[str]) -> bool:
    """Whether a folder holding the files and folders ``names`` is one nvc-mri wrote: a batch's output root
    (``batch.json``) or one analysis's outputs (``report.json`` or ``error.json``, and nothing but output names)."""
    return "batch.json" in names or (bool(names & {"report.json", "error.json"}) and names <= OUTPUT_NAMES)


def check_output_folder(outdir: Path) -> None:
    """Refuse a folder that holds anything but earlier nvc-mri outputs (it is replaced as a whole), or one that
    cannot be written: the outputs go into a temporary folder beside it, so its parent (or the nearest existing
    folder above, where the parents are still to be made) must take a new folder. Checked by making and removing
    one, which also holds for read-only file systems and for root, where permission bits say nothing."""
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise InputError(outdir, "output path exists and is not a folder")
    if outdir.is_dir():
        foreign = [p.name for p in outdir.iterdir() if p.name not in OUTPUT_NAMES]
        if foreign:
            raise InputError(outdir, f"output folder holds other files ({', '.join(sorted(foreign)[:3])}); choose an empty or new folder")
    above = outdir.absolute().parent
    while not above.exists():
        above = above.parent
    if not above.is_dir():
        raise InputError(outdir, f"cannot make the output folder: {above.name} is a file, not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".nvc-mri-probe-", dir=above))
    except OSError as exc:
        raise InputError(outdir, f"cannot write the outputs there ({exc.strerror or exc})") from None


def parse_formats(text: str | None, dicom_input: bool) -> tuple[str, ...]:
    """``'json,html'`` -> the formats to write; ``None`` or ``'all'`` -> every format the input allows."""
    if text in (None, "", "all"):
        return tuple(f for f in FORMATS if f != "dicom" or dicom_input)
    asked = tuple(dict.fromkeys(t.strip().lower() for t in text.split(",") if t.strip()))
    unknown = [f for f in asked if f not in FORMATS]
    if unknown:
        raise InputError(text, f"unknown output format(s) {unknown}; choose from {', '.join(FORMATS)}")
    if "dicom" in asked and not dicom_input:
        raise InputError(text, "DICOM outputs (SEG, SR, key images) need DICOM input")
    return tuple(dict.fromkeys(("json",) + asked))


def dicom_outputs_problem(volume) -> str | None:
    """Why DICOM outputs (SEG, SR, key images) cannot be made in ``volume``'s source study, or None."""
    if not volume.headers:
        return "the input is not DICOM"
    if not volume.headers[0].get("FrameOfReferenceUID"):
        return "the source series has no FrameOfReferenceUID (required in MR images), so nothing can be placed in its space"
    return None


def write_outputs(analysis, outdir: str | Path, formats: tuple[str, ...] | None = None,
                  extra_files: dict[str, str] | None = None) -> Path:
    """Write ``report.json`` and, as asked, ``report.html``, ``labels.nii.gz`` and ``dicom/``.

    Parameters
    ----------
    analysis : nvc_mri.analysis.Analysis
    outdir : path
        Replaced as a whole when the writing succeeds; untouched when it fails.
    formats : tuple of str, optional
        Among ``json``, ``html``, ``nifti``, ``dicom`` (default: all the input allows).
    extra_files : dict, optional
        Other text files to write with the outputs (name -> text), e.g. the batch fingerprint.

    Returns
    -------
    Path
        ``outdir``.
    """
    outdir = Path(outdir)
    check_output_folder(outdir)
    dicom_input = bool(analysis.volume.headers)
    formats = formats or parse_formats(None, dicom_input)
    report = analysis.report
    if "dicom" in formats and (problem := dicom_outputs_problem(analysis.volume)):
        formats = tuple(f for f in formats if f != "dicom")
        report = report.model_copy(update={"warnings": report.warnings + [f"DICOM outputs not written: {problem}"]})
    t0 = time.perf_counter()
    warning = "FORCED: NOT T2 - UNRELIABLE" if report.forced else None
    images = key_images(analysis.volume, analysis.label_volume, analysis.findings, warning) if {"html", "dicom"} & set(formats) else []
    written: list[str] = []
    with atomic_dir(outdir) as tmp:
        if "nifti" in formats:
            atomic_save_nifti(analysis.label_volume.to_nifti(dtype="uint8"), tmp / "labels.nii.gz")
            written.append("labels.nii.gz")
        if "dicom" in formats:
            from nvc_mri.report.dicom import write_dicom

            paths = write_dicom(report, analysis.volume, analysis.label_volume.array, montage(images), tmp / "dicom")
            written += [f"dicom/{p.name}" for p in paths]
        if "html" in formats:
            written.append("report.html")
        timings = dict(report.timings_s, report=round(time.perf_counter() - t0, 3))
        timings["total"] = round(sum(v for k, v in timings.items() if k != "total"), 3)
        report = report.model_copy(update={"timings_s": timings, "outputs": Outputs(files=["report.json"] + written)})
        if "html" in formats:
            (tmp / "report.html").write_text(report_html(report, images), encoding="utf-8")
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text, encoding="utf-8")
        (tmp / "report.json").write_text(report.model_dump_json(indent=2), encoding="utf-8")
    analysis.report = report
    return outdir


def write_error(outdir: str | Path, source: str | Path, error: BaseException | str) -> Path:
    """Leave ``outdir`` holding only ``error.json``: what failed and why (no patient identifiers)."""
    outdir = Path(outdir)
    message = error_line(error)
    payload = {"status": "failed", "input": str(source), "error": message, "error_type": type(error).__name__ if isinstance(error, BaseException) else "Failure",
               "software": {"name": "nvc-mri", "version": __version__},
               "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    with atomic_dir(outdir) as tmp:
        (tmp / "error.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return outdir
