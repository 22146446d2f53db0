"""Build a ``Volume`` from a group of DICOM instances (classic or enhanced multi-frame)."""

from __future__ import annotations

import dataclasses

import numpy as np
from pydicom.dataset import Dataset

from nvc_mri.errors import InputError
from nvc_mri.io.dicom_headers import InstanceHeader, SeriesGroup, find_nested, read_dicom
from nvc_mri.io.geometry import check_spacing, check_voxels, stack_geometry
from nvc_mri.io.sequence import SequenceGuess
from nvc_mri.io.volume import Volume, VolumeMeta, lps_to_ras


def _rescale(ds: Dataset) -> tuple[float, float]:
    slope = find_nested(ds, "RescaleSlope")
    intercept = find_nested(ds, "RescaleIntercept")
    return float(slope if slope not in (None, "") else 1.0), float(intercept if intercept not in (None, "") else 0.0)


def _read_pixels(path: str, source: str) -> tuple[Dataset, np.ndarray]:
    try:
        ds = read_dicom(path)
        return ds, ds.pixel_array
    except Exception as exc:  # pydicom raises many types for truncated/undecodable data
        raise InputError(source, f"cannot read pixel data of one instance ({type(exc).__name__}: truncated file or unsupported compression)") from None


def _header_only(ds: Dataset) -> Dataset:
    for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
        if keyword in ds:
            delattr(ds, keyword)
    return ds


def without_repeated_copies(members: list[InstanceHeader], source: str) -> list[InstanceHeader]:
    """``members`` less the repeated copies of an image: single-frame instances at one slice position whose stored
    pixels and rescale are identical (one image re-sent under a new SOP Instance UID, as PACS exports and routers
    do). The first of each set is kept. Instances at one position whose pixels differ (repeated acquisitions, mixed
    series) are all kept, for the geometry check to refuse."""
    at: dict[tuple, list[InstanceHeader]] = {}
    for m in members:
        if m.position is not None:
            at.setdefault(tuple(np.round(m.position, 3)), []).append(m)
    copies: set[int] = set()
    for same in at.values():
        if len(same) > 1:
            (first_ds, first), *others = (_read_pixels(m.path, source) for m in same)
            if all(_rescale(ds) == _rescale(first_ds) and pixels.shape == first.shape and np.array_equal(pixels, first)
                   for ds, pixels in others):
                copies.update(id(m) for m in same[1:])
    return [m for m in members if id(m) not in copies]


def _classic(group: SeriesGroup, source: str) -> tuple[np.ndarray, np.ndarray, list[str], list[Dataset]]:
    members = group.instances
    if any(m.position is None or m.orientation is None for m in members):
        raise InputError(source, "some images lack ImagePositionPatient/ImageOrientationPatient")
    first = read_dicom(members[0].path, stop_before_pixels=True)
    spacing = first.get("PixelSpacing")
    if spacing is None:
        raise InputError(source, "images lack PixelSpacing")
    geom = stack_geometry(source, np.array([m.position for m in members]), np.array(members[0].orientation), tuple(spacing))
    out = np.empty((members[0].columns, members[0].rows, len(members)), dtype=np.float32)
    headers = []
    for k, idx in enumerate(geom.order):
        ds, pixels = _read_pixels(members[idx].path, source)
        headers.append(_header_only(ds))
        if not np.allclose(np.asarray(ds.get("PixelSpacing") or spacing, float), np.asarray(spacing, float), atol=1e-3):
            raise InputError(source, f"images of one series differ in pixel spacing ({_mm(spacing)} and "
                                     f"{_mm(ds.PixelSpacing)} mm): mixed series")
        if pixels.ndim != 2:
            raise InputError(source, f"unexpected pixel array of shape {pixels.shape} in a single-frame image")
        slope, intercept = _rescale(ds)
        out[:, :, k] = pixels.T
        if slope != 1.0 or intercept != 0.0:
            out[:, :, k] = out[:, :, k] * slope + intercept
    return out, geom.affine_lps, geom.warnings + _grey_scale_upright(out, headers[0]), headers


def _mm(spacing) -> str:
    return " x ".join(f"{float(v):g}" for v in spacing)


def _grey_scale_upright(out: np.ndarray, ds: Dataset) -> list[str]:
    """Invert, in place, a MONOCHROME1 image (lowest value shown white), so that signal is bright as in MR's
    usual MONOCHROME2 and CSF stays the brightest tissue; a warning says so."""
    if str(ds.get("PhotometricInterpretation", "")).strip() != "MONOCHROME1":
        return []
    low, high = float(out.min()), float(out.max())
    np.subtract(low + high, out, out=out)
    return ["images are stored as MONOCHROME1 (inverted grey scale); intensities were inverted to signal-bright"]


def _frame_value(frame: Dataset, shared: Dataset, sequence: str, keyword: str):
    for holder in (frame, shared):
        if sequence in holder and len(holder[sequence].value) and keyword in holder[sequence].value[0]:
            return holder[sequence].value[0][keyword].value
    return None


def _enhanced(group: SeriesGroup, source: str) -> tuple[np.ndarray, np.ndarray, list[str], list[Dataset]]:
    if len(group.instances) != 1:
        raise InputError(source, "an enhanced MR series split over several files is not supported")
    ds, pixels = _read_pixels(group.instances[0].path, source)
    if pixels.ndim == 2:
        pixels = pixels[None]
    shared = ds.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in ds else Dataset()
    frames = ds.PerFrameFunctionalGroupsSequence
    positions = [_frame_value(f, shared, "PlanePositionSequence", "ImagePositionPatient") for f in frames]
    orientations = [_frame_value(f, shared, "PlaneOrientationSequence", "ImageOrientationPatient") for f in frames]
    spacings = [_frame_value(f, shared, "PixelMeasuresSequence", "PixelSpacing") for f in frames]
    if any(p is None for p in positions) or any(o is None for o in orientations) or spacings[0] is None:
        raise InputError(source, "enhanced MR frames lack plane position, orientation or pixel spacing")
    if len({tuple(np.round(np.asarray(o, float), 3)) for o in orientations}) > 1:
        raise InputError(source, "frames of the enhanced MR object have several orientations (mixed stacks)")
    if any(v is None or not np.allclose(np.asarray(v, float), np.asarray(spacings[0], float), atol=1e-3) for v in spacings):
        raise InputError(source, "frames of the enhanced MR object differ in pixel spacing (mixed stacks)")
    warnings: list[str] = []
    keep, which = analysed_frames(ds)
    if which:
        warnings.append(f"enhanced object holds {len(frames)} frames at repeated positions; kept the {len(keep)} of {which}")
    pos = np.asarray(positions, dtype=float)[keep]
    geom = stack_geometry(source, pos, np.asarray(orientations[0], float), tuple(spacings[0]))
    out = np.empty((pixels.shape[2], pixels.shape[1], len(keep)), dtype=np.float32)
    for k, idx in enumerate(keep[geom.order]):
        slope = _frame_value(frames[idx], shared, "PixelValueTransformationSequence", "RescaleSlope")
        intercept = _frame_value(frames[idx], shared, "PixelValueTransformationSequence", "RescaleIntercept")
        out[:, :, k] = pixels[idx].T
        if slope not in (None, "") and (float(slope) != 1.0 or float(intercept or 0) != 0.0):
            out[:, :, k] = out[:, :, k] * float(slope) + float(intercept or 0)
    return out, geom.affine_lps, geom.warnings + warnings + _grey_scale_upright(out, ds), [_header_only(ds)]


def analysed_frames(header: Dataset) -> tuple[np.ndarray, str | None]:
    """Indices of the frames of an enhanced MR object that make the volume, and which stack they are (None when
    every frame is used). Where frames repeat slice positions (several echoes or time points), those of the
    longest echo time (the most T2-weighted, as for classic multi-echo series) when echoes differ, else of the
    first time point. The SEG references the same frames."""
    shared = header.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in header else Dataset()
    frames = header.PerFrameFunctionalGroupsSequence
    positions = [_frame_value(f, shared, "PlanePositionSequence", "ImagePositionPatient") for f in frames]
    if None in positions or len({tuple(np.round(np.asarray(p, float), 2)) for p in positions}) == len(positions):
        return np.arange(len(frames)), None
    echo_times = [_frame_value(f, shared, "MREchoSequence", "EffectiveEchoTime") for f in frames]
    if None not in echo_times and len({float(t) for t in echo_times}) > 1:
        longest = max(float(t) for t in echo_times)
        return np.array([i for i, t in enumerate(echo_times) if float(t) == longest]), f"the longest echo (TE {longest:g} ms)"
    index = [tuple(_frame_value(f, shared, "FrameContentSequence", "DimensionIndexValues") or ()) for f in frames]
    first_stack = min(index, key=lambda v: v[1:] if len(v) > 1 else v)
    return np.array([i for i, v in enumerate(index) if v[1:] == first_stack[1:]]), "one echo/time point"


def load_group(group: SeriesGroup, source: str, sequence: SequenceGuess, selection_reason: str) -> Volume:
    """Read the pixels of one series group into a float32 volume with a RAS+ affine.

    Parameters
    ----------
    group : SeriesGroup
        Instances of one series (one orientation).
    source : str
        Path the user gave, used in messages and metadata.
    sequence : SequenceGuess
        Classification of the series.
    selection_reason : str
        Why this series was chosen, stored in ``meta``.
    """
    if group.problem:
        raise InputError(source, group.problem)
    first = group.first
    if first.is_enhanced:
        array, affine_lps, warnings, headers = _enhanced(group, source)
    else:
        kept = without_repeated_copies(group.instances, source)
        copies = len(group.instances) - len(kept)
        group = dataclasses.replace(group, instances=kept)
        array, affine_lps, warnings, headers = _classic(group, source)
        if copies:
            warnings.append(f"{copies} repeated cop{'y' if copies == 1 else 'ies'} of an image (same slice position, "
                            "identical pixels, another SOP Instance UID) left out")
    affine = lps_to_ras(affine_lps)
    check_spacing(source, tuple(np.linalg.norm(affine[:3, :3], axis=0)))
    check_voxels(source, array)
    meta = VolumeMeta(
        source=source,
        format="dicom-enhanced" if first.is_enhanced else "dicom",
        modality="MR",
        sequence=sequence,
        series_instance_uid=first.series_uid,
        study_instance_uid=first.study_uid,
        frame_of_reference_uid=first.frame_of_reference_uid,
        series_number=first.series_number,
        series_description=first.header.get("SeriesDescription"),
        series_part=group.part,
        manufacturer=first.header.get("Manufacturer"),
        source_files=[m.path for m in group.instances],
        selection_reason=selection_reason,
        warnings=list(warnings),
        header=dict(first.header),
    )
    return Volume(array=array, affine=affine, meta=meta, headers=tuple(headers))
