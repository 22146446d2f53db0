"""One study from image to findings: load -> check the sequence -> segment -> measure -> report.

:func:`run_analysis` is what ``nvc-mri analyze``, the batch runner and the PACS node call;
it returns an :class:`Analysis` (voxels with geometry, labels, findings and the validated
report). Writing files is :func:`nvc_mri.report.write_outputs`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from nvc_mri.errors import InputError
from nvc_mri.io import Volume, load_volume
from nvc_mri.measure import measure
from nvc_mri.measure.findings import Findings
from nvc_mri.report.build import build_report
from nvc_mri.report.schema import Report
from nvc_mri.segment.inference import Segmentation, configure_threads, run_segmentation
from nvc_mri.segment.model import Networks, load_networks

# A NIfTI is refused only when its own intensities say clearly that it is not heavily T2-weighted.
NIFTI_REFUSE_CONFIDENCE = 0.6
FORCED_WARNING = ("FORCED ANALYSIS: the input is not a heavily T2-weighted 3D sequence (CISS/FIESTA/SPACE); "
                  "segmentation and every measurement are unreliable")


@dataclass
class Analysis:
    """The result of analysing one study.

    Attributes
    ----------
    volume : Volume
        The image as loaded (voxels, voxel -> RAS+ mm affine, metadata).
    labels : Volume
        Label map on the input's grid (``nvc_mri.labels.Label`` values).
    segmentation : Segmentation
        Fine-pass region, fallback flag and timings of the U-Net.
    findings : Findings
        Per-side contact, vessel and lesion measurements (RAS+ mm).
    report : Report
        The validated report (what ``report.json`` holds).
    """

    volume: Volume
    labels: Volume
    segmentation: Segmentation
    findings: Findings
    report: Report


def sequence_problem(volume: Volume) -> str | None:
    """Why ``volume`` is not a heavily T2-weighted 3D sequence, or None when it is (or may be).

    DICOM input is judged by its header rules; NIfTI by its intensities, and refused only
    when they clearly do not look heavily T2-weighted (CSF not brighter than brain).
    """
    guess = volume.meta.sequence
    if guess.is_heavily_t2_3d:
        return None
    if guess.basis == "image-intensities":
        if guess.confidence < NIFTI_REFUSE_CONFIDENCE:
            return None
        return f"image does not look heavily T2-weighted ({'; '.join(guess.reasons)})"
    return f"series is {guess.family}{' (' + guess.name + ')' if guess.name else ''}, not a heavily T2-weighted 3D sequence"


def run_analysis(source: str | Path | Volume, *, series: str | int | None = None, device: str = "auto",
                 networks: Networks | None = None, force: bool = False) -> Analysis:
    """Analyse one study.

    Parameters
    ----------
    source : path or Volume
        NIfTI file, DICOM file, folder or zip, or an already loaded :class:`Volume`.
    series : str or int, optional
        SeriesInstanceUID or SeriesNumber when a folder holds several series.
    device : {'auto', 'cpu', 'cuda'}
    networks : Networks, optional
        Loaded U-Nets (default: the shipped weights); pass them to reuse one load over many studies.
    force : bool
        Analyse a series that is not heavily T2-weighted; every output then carries a warning.

    Raises
    ------
    InputError
        Unreadable input, or not a heavily T2-weighted 3D sequence without ``force``.
    """
    t0 = time.perf_counter()
    volume = source if isinstance(source, Volume) else load_volume(source, series=series)
    t_load = time.perf_counter() - t0
    problem = sequence_problem(volume)
    if problem and not force:
        raise InputError(volume.meta.source, problem + "; NVC analysis needs CISS/FIESTA/SPACE (use --force to analyse anyway)")
    configure_threads()
    networks = networks or load_networks()
    segmentation = run_segmentation(volume, networks=networks, device=device)
    t_seg = time.perf_counter() - t0 - t_load
    findings = measure(segmentation.labels, image=volume.array)
    t_measure = time.perf_counter() - t0 - t_load - t_seg
    warnings = list(volume.meta.warnings)
    if problem:
        warnings.insert(0, f"{FORCED_WARNING}: {problem}")
    timings = {"load": t_load, "segmentation": t_seg, "measurement": t_measure}
    report = build_report(volume, segmentation, findings, networks, forced=bool(problem), warnings=warnings, timings_s=timings)
    return Analysis(volume=volume, labels=segmentation.labels, segmentation=segmentation, findings=findings, report=report)
