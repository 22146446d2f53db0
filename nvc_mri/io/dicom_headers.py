"""Read DICOM headers of a folder and group instances into candidate series.

No pixel data is read here. Nothing from a header becomes a file path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset

MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4.1"
LEGACY_ENHANCED_MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4.4"
MR_IMAGE_CLASSES = {MR_IMAGE, ENHANCED_MR_IMAGE, LEGACY_ENHANCED_MR_IMAGE}
ENHANCED_CLASSES = {ENHANCED_MR_IMAGE, LEGACY_ENHANCED_MR_IMAGE}

# Header attributes the series rules look at (see configs/series_rules.yaml).
SEQUENCE_KEYWORDS = (
    "SeriesDescription", "ProtocolName", "SequenceName", "PulseSequenceName", "ScanningSequence",
    "SequenceVariant", "ScanOptions", "MRAcquisitionType", "ImageType", "Manufacturer",
    "ManufacturerModelName", "ContrastBolusAgent", "FlipAngle", "EchoTime", "EffectiveEchoTime",
    "RepetitionTime", "InversionTime", "MagneticFieldStrength", "SliceThickness",
)


@dataclass
class InstanceHeader:
    """What the loader needs from one DICOM instance (single- or multi-frame)."""

    path: str
    sop_class_uid: str
    sop_instance_uid: str | None
    series_uid: str
    study_uid: str | None
    frame_of_reference_uid: str | None
    series_number: int | None
    rows: int
    columns: int
    n_frames: int
    orientation: tuple[float, ...] | None
    position: tuple[float, ...] | None
    echo_number: int | None
    acquisition_number: int | None
    image_type: str
    header: dict[str, Any] = field(default_factory=dict)

    @property
    def is_enhanced(self) -> bool:
        return self.sop_class_uid in ENHANCED_CLASSES


def find_nested(ds: Dataset, keyword: str, depth: int = 3) -> Any:
    """First value of ``keyword`` in ``ds`` or (for enhanced objects) in its functional groups."""
    if keyword in ds and ds[keyword].value not in (None, ""):
        return ds[keyword].value
    if depth == 0:
        return None
    for group in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        if group in ds and len(ds[group].value):
            for item in ds[group].value[0]:
                if item.VR == "SQ" and len(item.value):
                    found = find_nested(item.value[0], keyword, depth - 1)
                    if found is not None:
                        return found
    return None


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [_plain(v) for v in value]
    if isinstance(value, (int, float, str)) or value is None:
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def sequence_header(ds: Dataset) -> dict[str, Any]:
    """Sequence-describing attributes of an instance (no patient identifiers)."""
    out: dict[str, Any] = {}
    for kw in SEQUENCE_KEYWORDS:
        value = find_nested(ds, kw)
        if value is not None:
            out[kw] = _plain(value)
    if "EchoTime" not in out and "EffectiveEchoTime" in out:
        out["EchoTime"] = out["EffectiveEchoTime"]
    if "SequenceName" not in out and "PulseSequenceName" in out:
        out["SequenceName"] = out["PulseSequenceName"]
    return out


def _floats(value: Any) -> tuple[float, ...] | None:
    return None if value is None else tuple(float(v) for v in value)


def _starts_like_a_dataset(head: bytes) -> bool:
    """A DICOM data set stored without the Part 10 preamble (as older CD writers did): it opens with a little-endian
    element of group 0002 (file meta) or 0008 (identifying)."""
    return head[:2] in (b"\x02\x00", b"\x08\x00") and head[128:132] != b"DICM"


def looks_like_dicom(path: str | Path) -> bool:
    """A Part 10 file (``DICM`` after the preamble), a .dcm/.ima name, or a readable data set without preamble."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    if head[128:132] == b"DICM" or str(path).lower().endswith((".dcm", ".ima")):
        return True
    if not _starts_like_a_dataset(head):
        return False
    try:  # a bare data set is known only by reading it: other files can start with the same two bytes
        return "SOPClassUID" in read_dicom(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
    except Exception:
        return False


def read_dicom(path: str | Path, **kwargs: Any) -> Dataset:
    """``pydicom.dcmread``, also for data sets without the Part 10 preamble (read with ``force`` only then)."""
    with open(path, "rb") as fh:
        head = fh.read(132)
    ds = pydicom.dcmread(path, force=_starts_like_a_dataset(head), **kwargs)
    if "TransferSyntaxUID" not in ds.file_meta and ds.original_encoding[0] is not None:
        # no file meta: the syntax is the encoding pydicom found (such files cannot hold compressed pixels)
        implicit, little = ds.original_encoding
        ds.file_meta.TransferSyntaxUID = (pydicom.uid.ImplicitVRLittleEndian if implicit else
                                          pydicom.uid.ExplicitVRLittleEndian if little else pydicom.uid.ExplicitVRBigEndian)
    return ds


def read_instance_header(path: str) -> InstanceHeader | None:
    """Header of one file, or ``None`` when the file is not a DICOM image instance."""
    try:
        ds = read_dicom(path, stop_before_pixels=True)
    except Exception:  # not DICOM, damaged, or (read with force) a file that only began like a data set
        return None
    sop = str(ds.get("SOPClassUID", ""))
    if not sop or "SeriesInstanceUID" not in ds or "Rows" not in ds:
        return None
    return InstanceHeader(
        path=path,
        sop_class_uid=sop,
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")) or None,
        series_uid=str(ds.SeriesInstanceUID),
        study_uid=str(ds.get("StudyInstanceUID", "")) or None,
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")) or None,
        series_number=int(ds.SeriesNumber) if ds.get("SeriesNumber") not in (None, "") else None,
        rows=int(ds.Rows),
        columns=int(ds.Columns),
        n_frames=int(ds.get("NumberOfFrames", 1) or 1),
        orientation=_floats(find_nested(ds, "ImageOrientationPatient")),
        position=_floats(ds.get("ImagePositionPatient")),
        echo_number=int(ds.EchoNumbers) if ds.get("EchoNumbers") not in (None, "") else None,
        acquisition_number=int(ds.AcquisitionNumber) if ds.get("AcquisitionNumber") not in (None, "") else None,
        image_type="\\".join(str(v) for v in (ds.get("ImageType") or [])),
        header=sequence_header(ds),
    )


def list_files(folder: Path) -> list[str]:
    """Every regular file below ``folder`` (nested), hidden files excluded, sorted."""
    out: list[str] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out.extend(os.path.join(root, f) for f in sorted(files) if not f.startswith("."))
    return out


@dataclass
class SeriesGroup:
    """Instances of one series that share an orientation (and acquisition when positions repeat)."""

    key: str
    instances: list[InstanceHeader]
    problem: str | None = None
    part: str | None = None  # e.g. "echo 2, TE 90 ms" when the series holds several parts
    label: str = ""  # how a user names it: "3" for a whole series, "3#2" for its second part

    @property
    def first(self) -> InstanceHeader:
        return self.instances[0]

    @property
    def n_slices(self) -> int:
        return sum(i.n_frames for i in self.instances)


def _orientation_key(h: InstanceHeader) -> tuple:
    return tuple(np.round(h.orientation, 3)) if h.orientation else ()


def _plane(orientation: tuple) -> str:
    """'axial', 'coronal', 'sagittal' or 'oblique' from ImageOrientationPatient (the slice normal's main axis)."""
    if not orientation:
        return "unknown orientation"
    normal = np.abs(np.cross(orientation[:3], orientation[3:6]))
    if normal.max() < 0.9:
        return "oblique"
    return ("sagittal", "coronal", "axial")[int(np.argmax(normal))]


def _echo_part(m: InstanceHeader, by_echo: bool, by_acquisition: bool) -> str:
    bits = []
    if by_echo:
        te = m.header.get("EchoTime")
        echo = [f"echo {m.echo_number}"] if m.echo_number is not None else []
        echo += [f"TE {float(te):g} ms"] if te not in (None, "") else []
        bits.append(", ".join(echo) or "echo not numbered")
    if by_acquisition:
        bits.append(f"acquisition {m.acquisition_number if m.acquisition_number is not None else '?'}")
    return ", ".join(bits)


def group_series(headers: list[InstanceHeader]) -> list[SeriesGroup]:
    """Group MR image instances by series UID, then orientation, then echo/acquisition.

    A series UID that mixes orientations (a 3-plane localizer) becomes several groups.
    When slice positions repeat inside a group, it is split by echo and acquisition
    number. Each group of a split series names its ``part`` (plane, echo, acquisition)
    and gets the ``label`` ``"<series number>#<k>"``. A group whose images differ in
    rows/columns is kept but marked with ``problem``, so that choosing it gives a clear error.
    """
    by_key: dict[tuple, list[InstanceHeader]] = {}
    for h in headers:
        if h.sop_class_uid not in MR_IMAGE_CLASSES:
            continue
        by_key.setdefault((h.series_uid, _orientation_key(h)), []).append(h)
    planes: dict[str, int] = {}
    for uid, _ in by_key:
        planes[uid] = planes.get(uid, 0) + 1
    groups: list[SeriesGroup] = []
    for (uid, orientation), members in by_key.items():
        positions = [tuple(np.round(m.position, 2)) for m in members if m.position]
        if len(positions) != len(set(positions)):
            split: dict[tuple, list[InstanceHeader]] = {}
            for m in members:
                split.setdefault((m.echo_number, m.acquisition_number), []).append(m)
            parts = sorted(split.items(), key=lambda kv: tuple(-1 if v is None else v for v in kv[0]))
            by_echo = len({echo for (echo, _), _ in parts}) > 1
            by_acquisition = len({acquisition for (_, acquisition), _ in parts}) > 1
            named = [(_echo_part(part[0], by_echo, by_acquisition) if len(parts) > 1 else None, part) for _, part in parts]
        else:
            named = [(None, members)]
        for part_name, part in named:
            if planes[uid] > 1:
                plane = f"{_plane(orientation)} images"
                part_name = plane if part_name is None else f"{plane}, {part_name}"
            index = len([g for g in groups if g.first.series_uid == uid]) + 1
            group = SeriesGroup(key=f"{uid}#{index}", instances=part, part=part_name)
            sizes = sorted({(m.rows, m.columns) for m in part})
            if len(sizes) > 1:
                group.problem = "images of one series differ in size: " + ", ".join(f"{r}x{c}" for r, c in sizes)
            groups.append(group)
    split_uids = {g.first.series_uid for g in groups if g.part}
    for g in groups:
        number = g.first.series_number if g.first.series_number is not None else g.first.series_uid
        g.label = f"{number}#{g.key.rsplit('#', 1)[1]}" if g.first.series_uid in split_uids else str(number)
    return groups
