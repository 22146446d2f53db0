"""DICOM SEG of the label map, one segment per structure, on the source series' own frames."""

from __future__ import annotations

import functools
import warnings
import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from nvc_mri import __version__
from nvc_mri.io.dicom import analysed_frames
from nvc_mri.io.volume import LPS_TO_RAS, Volume
from nvc_mri.report.dicom.codes import SEGMENTS
from nvc_mri.report.dicom.source import output_character_set, source_headers

MANUFACTURER = "nvc-mri project"


def without_header_warnings(build):
    """Run a builder with warnings silenced: highdicom's warnings quote header values such as patient names."""

    @functools.wraps(build)
    def quiet(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return build(*args, **kwargs)

    return quiet


MODEL_NAME = "nvc-mri"
def frame_positions_lps(header: Dataset) -> np.ndarray:
    """ImagePositionPatient (LPS mm) of every frame of one source instance, shape (frames, 3)."""
    if "PerFrameFunctionalGroupsSequence" in header:
        shared = header.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in header else Dataset()
        out = []
        for frame in header.PerFrameFunctionalGroupsSequence:
            holder = frame if "PlanePositionSequence" in frame else shared
            out.append(holder.PlanePositionSequence[0].ImagePositionPatient)
        return np.asarray(out, float)
    return np.asarray([header.ImagePositionPatient], float)


def source_frames(volume: Volume) -> list[tuple[Dataset, int, int]]:
    """(source header, frame index, slice k of ``volume``) for every source frame the volume was made of.

    Each frame is placed by its position, so classic, enhanced and multi-echo series map alike.
    """
    inverse = np.linalg.inv(volume.affine)
    out = []
    for header in volume.headers:
        positions = frame_positions_lps(header)
        # of an enhanced object with several echoes, the frames the volume was made of
        used = analysed_frames(header)[0] if "PerFrameFunctionalGroupsSequence" in header else range(len(positions))
        for f in used:
            lps = positions[f]
            index = inverse @ np.r_[(LPS_TO_RAS[:3, :3] @ lps), 1.0]
            k = int(round(index[2]))
            if np.any(np.abs(index[:2]) > 0.05) or abs(index[2] - k) > 0.05 or not 0 <= k < volume.shape[2]:
                raise ValueError("a source frame does not lie on the analysed grid; cannot write a DICOM SEG on the source frames")
            out.append((header, f, k))
    return out


def frame_geometry(volume: Volume, slices: list[int]) -> dict:
    """Plane orientation, pixel measures and one plane position per frame, from the analysed grid (LPS mm).

    Given explicitly so that classic and enhanced sources (whose pixel measures may sit in
    per-frame groups) give the same SEG geometry.
    """
    affine_lps = LPS_TO_RAS @ volume.affine
    spacing = np.linalg.norm(affine_lps[:3, :3], axis=0)
    row_dir, col_dir = affine_lps[:3, 0] / spacing[0], affine_lps[:3, 1] / spacing[1]
    return dict(
        plane_orientation=hd.PlaneOrientationSequence(coordinate_system="PATIENT",
                                                      image_orientation=[float(v) for v in (*row_dir, *col_dir)]),
        pixel_measures=hd.PixelMeasuresSequence(pixel_spacing=[float(spacing[1]), float(spacing[0])], slice_thickness=float(spacing[2]),
                                                spacing_between_slices=float(spacing[2])),
        plane_positions=[hd.PlanePositionSequence(coordinate_system="PATIENT",
                                                  image_position=[float(v) for v in affine_lps[:3, :3] @ [0.0, 0.0, k] + affine_lps[:3, 3]])
                         for k in slices],
    )


def label_frames(volume: Volume, labels: np.ndarray) -> np.ndarray:
    """The label map as (source frames, rows, columns), in the order of the source instances and frames."""
    return np.stack([labels[:, :, k].T for _, _, k in source_frames(volume)]).astype(np.uint8)


def segment_descriptions(algorithm_version: str) -> list[hd.seg.SegmentDescription]:
    algorithm = hd.AlgorithmIdentificationSequence(name="nvc-mri coarse-to-fine 3D U-Net", family=codes.DCM.ArtificialIntelligence,
                                                   version=algorithm_version)
    return [hd.seg.SegmentDescription(segment_number=int(value), segment_label=label, segmented_property_category=category,
                                      segmented_property_type=kind, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                                      algorithm_identification=algorithm, tracking_uid=generate_uid(), tracking_id=label,
                                      display_color=hd.color.CIELabColor.from_rgb(*rgb))
            for value, (label, category, kind, rgb) in SEGMENTS.items()]


@without_header_warnings
def build_seg(volume: Volume, labels: np.ndarray, series_number: int, description: str) -> hd.seg.Segmentation:
    """A binary DICOM SEG of ``labels`` (the analysed grid) referencing every source instance.

    Parameters
    ----------
    volume : Volume
        DICOM input with its source headers (``volume.headers``).
    labels : ndarray (I, J, K)
        Label values on ``volume``'s grid.
    series_number : int
    description : str
        SeriesDescription (carries the forced-analysis warning when there is one).
    """
    frames = label_frames(volume, labels)
    geometry = frame_geometry(volume, [k for _, _, k in source_frames(volume)])
    return hd.seg.Segmentation(
        source_images=source_headers(volume), pixel_array=frames, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=segment_descriptions(__version__), series_instance_uid=generate_uid(), series_number=series_number,
        sop_instance_uid=generate_uid(), instance_number=1, manufacturer=MANUFACTURER, manufacturer_model_name=MODEL_NAME,
        software_versions=__version__, device_serial_number="0", content_description=description[:64], content_label="NVC_LABELS",
        series_description=description[:64], specific_character_set=output_character_set(volume.headers[0]), **geometry,
    )
