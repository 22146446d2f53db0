"""One study from image to findings: load -> check the sequence -> segment -> measure -> report.

:func:`run_analysis` is what ``nvc-mri analyze``, the batch runner and the PACS node call;
it returns an :class:`Analysis` (voxels with geometry, labels, findings and the validated
report). Writing files is :func:`nvc_mri.report.write_outputs`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from nibabel.affines import apply_affine

from nvc_mri.config import load_config
from nvc_mri.errors import InputError
from nvc_mri.io import Volume, load_volume
from nvc_mri.io.convert import as_volume
from nvc_mri.io.sequence import csf_brainstem_ratio
from nvc_mri.io.volume import volume_centre_mm
from nvc_mri.labels import Label
from nvc_mri.measure import measure
from nvc_mri.measure.findings import Findings
from nvc_mri.report.build import build_report
from nvc_mri.report.schema import Report
from nvc_mri.segment.inference import Segmentation, configure_threads, run_segmentation, select_device
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
    label_volume : Volume
        Label map on the input's grid (``nvc_mri.labels.Label`` values).
    segmentation : Segmentation
        Fine-pass region, fallback flag and timings of the U-Net.
    findings : Findings
        Per-side contact, vessel and lesion measurements (RAS+ mm).
    report : Report
        The validated report (what ``report.json`` holds).
    """

    volume: Volume
    label_volume: Volume
    segmentation: Segmentation
    findings: Findings
    report: Report

    @property
    def labels(self):
        """The label map as a nibabel image on the input's grid (affine: voxel -> RAS+ mm)."""
        return self.label_volume.to_nifti(dtype="uint8")

    def to_dataframe(self):
        """One row per side (right, left): the facial nerve's contact findings, plus lesion counts (pandas)."""
        import pandas as pd

        rows = []
        for side in ("right", "left"):
            s = self.report.sides[side]
            row = {"side": side, "status": s.status, **s.nvc.model_dump(), "impression": s.impression,
                   "lesions": sum(1 for lesion in self.report.lesions if lesion.side == side)}
            rows.append(row)
        return pd.DataFrame(rows).set_index("side")

    def plot(self, side: str = "left", figsize: tuple[float, float] = (10, 5)):
        """A matplotlib figure of one side's root exit zone: axial and nerve-artery plane with overlays."""
        import matplotlib.pyplot as plt

        from nvc_mri.report.key_images import key_images

        if side not in ("left", "right"):
            raise ValueError("side must be 'left' or 'right'")
        images = [k for k in key_images(self.volume, self.label_volume, self.findings) if k.name.startswith(f"{side}_rez")]
        fig, axes = plt.subplots(1, max(1, len(images)), figsize=figsize, squeeze=False)
        for ax, image in zip(axes[0], images):
            ax.imshow(image.rgb)
            ax.set_axis_off()
        if not images:
            axes[0][0].text(0.5, 0.5, f"{side} facial nerve not traced", ha="center", va="center")
            axes[0][0].set_axis_off()
        fig.suptitle(self.report.sides[side].impression, fontsize=10, wrap=True)
        fig.tight_layout()
        return fig


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


def refuse_wrong_sequence(volume: Volume, force: bool) -> str | None:
    """:func:`sequence_problem`, raised as an :class:`InputError` unless ``force``; returned when forced."""
    problem = sequence_problem(volume)
    if problem and not force:
        raise InputError(volume.meta.source, problem + "; NVC analysis needs CISS/FIESTA/SPACE (use --force to analyse anyway)")
    return problem


def csf_contrast_warnings(volume: Volume, labels: np.ndarray) -> list[str]:
    """A warning when the segmented brainstem is not surrounded by brighter CSF (:func:`csf_brainstem_ratio`,
    ``series_rules.yaml`` ``min_csf_brainstem_ratio``): the image then does not look heavily T2-weighted,
    whatever its header or intensity histogram said."""
    ratio = csf_brainstem_ratio(volume.array, labels, np.asarray(volume.spacing))
    if ratio is None or ratio >= float(load_config("series_rules.yaml")["min_csf_brainstem_ratio"]):
        return []
    return [f"the CSF around the brainstem is not brighter than the brainstem (brightest quarter {ratio:.2f} x the "
            "brainstem's signal; heavily T2-weighted images give 2-4): this does not look like CISS/FIESTA/SPACE, "
            "and the segmentation and every finding are unreliable"]


def resolution_warnings(volume: Volume) -> list[str]:
    """A warning when a voxel side is coarser than ``io.yaml`` ``nerve_resolution_mm`` (1 mm): the facial and
    vestibulocochlear nerves are 1-2 mm across, so a 2D T2 with 3 mm slices, say, cannot show them or a gap
    beside them, however well the image is segmented."""
    limit = float(load_config("io.yaml")["nerve_resolution_mm"])
    spacing = [float(s) for s in volume.spacing]
    if max(spacing) <= limit * 1.02:
        return []
    return [f"voxels of {' x '.join(f'{s:.2g}' for s in spacing)} mm are coarser than {limit:g} mm: the cranial nerves "
            "(1-2 mm across) and gaps beside them are not resolved, so contacts and gaps are unreliable; "
            "NVC assessment needs a submillimetre 3D CISS/FIESTA/SPACE"]


def coverage_warnings(volume: Volume) -> list[str]:
    """A warning when the image spans less than ``io.yaml`` ``min_coverage_mm`` (20 mm) along one of its axes (a thin
    slab, mm). The facial nerve's attached segment runs up to 10 mm along the pons and the arteries that offend it
    loop up to about 10 mm above and below it, so a thinner slab can cut the root exit zone or the vessel's course
    (and the vertebrobasilar junction the vessel is named from), and the segmentation sees too little anatomy."""
    limit = float(load_config("io.yaml")["min_coverage_mm"])
    extent = np.asarray(volume.shape[:3], float) * np.asarray(volume.spacing, float)
    axis = int(np.argmin(extent))
    if extent[axis] >= limit:
        return []
    direction = ("left-right", "anterior-posterior", "superior-inferior")[int(np.argmax(np.abs(volume.affine[:3, axis])))]
    return [f"the image covers only {extent[axis]:.0f} mm along its {direction} axis (under {limit:g} mm): the root exit "
            "zone or the offending vessel's course may lie outside it, and the findings are unreliable"]


def midline_warnings(volume: Volume, labels: np.ndarray) -> list[str]:
    """A warning when the brainstem label's centre lies further than ``io.yaml`` ``max_midline_offset_mm`` (left-right)
    from where the head's midline is expected. The sides of every finding are told from the brainstem label's centre,
    so a label that far off is likely other tissue, and the sides with it.

    DICOM patient coordinates start on the magnet's axis and a head coil centres the head on it (within about 10 mm
    on the real series at hand), so x = 0 is the reference. A NIfTI, NRRD, MetaImage or MGH file's origin is the
    scanner's (converted from DICOM), the mid-sagittal plane (a template space) or anywhere (a corner): for those
    the label is warned about only when it is that far both from x = 0 and from the image's own left-right centre.
    """
    brainstem = np.argwhere(labels == Label.BRAINSTEM)
    if len(brainstem) == 0:
        return []
    x = float(apply_affine(volume.affine, brainstem.mean(axis=0))[0])
    limit = float(load_config("io.yaml")["max_midline_offset_mm"])
    if abs(x) <= limit:
        return []
    side = "right" if x > 0 else "left"
    if volume.meta.format.startswith("dicom"):
        return [f"the brainstem label is centred {abs(x):.0f} mm {side} of the scanner's midline (x = 0), where a head "
                "in a head coil lies within about 10 mm: it may be other tissue, and left and right are told from it; "
                "check the key images"]
    from_centre = x - float(volume_centre_mm(volume.shape[:3], volume.affine)[0])
    if abs(from_centre) <= limit:
        return []
    return [f"the brainstem label is centred {abs(x):.0f} mm {side} of x = 0 and {abs(from_centre):.0f} mm "
            f"{'right' if from_centre > 0 else 'left'} of the image's centre: it may be other tissue, and left and right "
            "are told from it; check the key images"]


def run_analysis(source, *, affine=None, series: str | int | None = None, device: str = "auto",
                 networks: Networks | None = None, force: bool = False) -> Analysis:
    """Analyse one study.

    Parameters
    ----------
    source : path, Volume, nibabel image, SimpleITK image or ndarray
        NIfTI file, DICOM file, folder or zip, or an image in memory (an array needs ``affine``).
    series : str or int, optional
        SeriesInstanceUID or SeriesNumber when a folder holds several series.
    affine : ndarray (4, 4), optional
        Voxel -> RAS+ mm, with a NumPy array.
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
    select_device(device)  # a bad device is named before a long load
    volume = load_volume(source, series=series) if isinstance(source, (str, Path)) else as_volume(source, affine)
    t_load = time.perf_counter() - t0
    problem = refuse_wrong_sequence(volume, force)
    configure_threads()
    networks = networks or load_networks()
    segmentation = run_segmentation(volume, networks=networks, device=device)
    t_seg = time.perf_counter() - t0 - t_load
    findings = measure(segmentation.labels, image=volume.array)
    t_measure = time.perf_counter() - t0 - t_load - t_seg
    labels = segmentation.labels.array
    warnings = (list(volume.meta.warnings) + resolution_warnings(volume) + coverage_warnings(volume)
                + midline_warnings(volume, labels)
                + csf_contrast_warnings(volume, labels))
    if problem:
        warnings.insert(0, f"{FORCED_WARNING}: {problem}")
    timings = {"load": t_load, "segmentation": t_seg, "measurement": t_measure}
    report = build_report(volume, segmentation, findings, networks, forced=bool(problem), warnings=warnings, timings_s=timings)
    return Analysis(volume=volume, label_volume=segmentation.labels, segmentation=segmentation, findings=findings, report=report)
