"""Shared fixtures: the real de-identified scans beside the checkout, small synthetic volumes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from nvc_mri.io.sequence import SequenceGuess
from nvc_mri.io.volume import Volume, VolumeMeta

REAL = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "real").resolve()


@pytest.fixture(scope="session")
def real_data() -> Path:
    if not REAL.is_dir():
        pytest.skip(f"real scans not found at {REAL}")
    return REAL


def make_volume(shape=(24, 20, 12), spacing=(0.5, 0.6, 0.8), angles_deg=(10, -7, 20), seed=0) -> Volume:
    """A random volume on an oblique grid (RAS+ affine)."""
    rng = np.random.default_rng(seed)
    array = (rng.random(shape) * 1000).astype(np.float32)
    affine = np.eye(4)
    affine[:3, :3] = Rotation.from_euler("xyz", angles_deg, degrees=True).as_matrix() @ np.diag(spacing)
    affine[:3, 3] = [10.0, -20.0, 5.0]
    meta = VolumeMeta(source="synthetic", format="nifti", sequence=SequenceGuess(family="unknown", confidence=0, basis="none"))
    return Volume(array, affine, meta)


@pytest.fixture
def oblique_volume() -> Volume:
    return make_volume()


# Header attributes of a Siemens 3D T1 MPRAGE: written over a phantom series, the loader must take it for T1.
T1_HEADER = dict(SeriesDescription="t1_mprage_sag_p2", SequenceName="*tfl3d1_16ns", ScanningSequence=["GR", "IR"],
                 SequenceVariant=["SK", "SP", "MP"], RepetitionTime=2300.0, EchoTime=2.3, InversionTime=900.0, FlipAngle=9.0)


def write_enhanced_with_a_second_echo(enhanced_file: Path, path: Path) -> Path:
    """The enhanced MR object rebuilt with a second echo (EffectiveEchoTime 90 ms; its pixels the first echo's
    inverted) appended as frames at the same positions."""
    import copy

    import pydicom

    ds = pydicom.dcmread(enhanced_file)
    first_echo = ds.pixel_array
    late_frames = copy.deepcopy(ds.PerFrameFunctionalGroupsSequence)
    for frame in late_frames:
        frame.MREchoSequence[0].EffectiveEchoTime = 90.0
        frame.FrameContentSequence[0].DimensionIndexValues = [2, *frame.FrameContentSequence[0].DimensionIndexValues[1:]]
    ds.PerFrameFunctionalGroupsSequence = list(ds.PerFrameFunctionalGroupsSequence) + list(late_frames)
    ds.NumberOfFrames = 2 * len(first_echo)
    ds.PixelData = np.concatenate([first_echo, (first_echo.max() - first_echo).astype(first_echo.dtype)]).tobytes()
    ds.save_as(path)
    return path
