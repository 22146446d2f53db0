"""Intensity normalisation and the region the fine pass covers (shared by training and inference)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from nvc_mri.labels import Label


def intensity_window(array: np.ndarray, config: dict[str, Any], max_samples: int = 2_000_000) -> tuple[float, float]:
    """Intensities that map to 0 and 1: the configured percentiles of the voxels (CSF ~ 1 on CISS).

    A fixed stride subsample keeps this fast and deterministic on large volumes.
    """
    flat = np.asarray(array).reshape(-1)
    stride = max(1, flat.size // max_samples)
    sample = flat[::stride]
    low, high = np.percentile(sample, [config["lower_percentile"], config["upper_percentile"]])
    if not np.isfinite(high - low) or high <= low:
        high = low + 1.0
    return float(low), float(high)


def normalise(array: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """Scale intensities so that the window maps to [0, 1] (float32)."""
    low, high = window
    return ((np.asarray(array, dtype=np.float32) - low) / (high - low)).astype(np.float32)


@dataclass(frozen=True)
class CoarseFindings:
    """What the coarse pass found, in RAS+ mm, and whether it can be trusted."""

    brainstem_mm3: float
    brainstem_confidence: float
    brainstem_centroid_mm: tuple[float, float, float] | None
    lower_mm: np.ndarray | None
    upper_mm: np.ndarray | None
    reason: str | None  # why the coarse pass is not trusted; None when it is


def fine_region(labels: np.ndarray, confidence: np.ndarray | None, affine: np.ndarray, volume_centre_mm: np.ndarray,
                config: dict[str, Any]) -> CoarseFindings:
    """The box (RAS+ mm) the fine pass must cover, from a coarse label map on a RAS-aligned grid.

    Parameters
    ----------
    labels : ndarray of int, shape (R, A, S)
        Coarse labels (``Label`` values) on a RAS-aligned isotropic grid.
    confidence : ndarray or None
        Winning softmax probability per voxel (None for truth labels: full confidence).
    affine : ndarray (4, 4)
        Voxel -> RAS+ mm of the coarse grid (diagonal).
    volume_centre_mm : ndarray (3,)
        Centre of the scanned volume, RAS+ mm.
    config : dict
        The ``region`` section of ``configs/model.yaml``.
    """
    spacing = float(affine[0, 0])
    voxel_mm3 = spacing**3
    brainstem = labels == Label.BRAINSTEM
    components, n = ndimage.label(brainstem)
    if n == 0:
        return CoarseFindings(0.0, 0.0, None, None, None, "no brainstem found")
    sizes = np.bincount(components.ravel())[1:]
    main = components == (int(np.argmax(sizes)) + 1)
    volume = float(sizes.max() * voxel_mm3)
    conf = float(confidence[main].mean()) if confidence is not None else 1.0
    idx = np.argwhere(main)
    centroid = idx.mean(0) * spacing + affine[:3, 3]
    lower = idx.min(0) * spacing + affine[:3, 3]
    upper = idx.max(0) * spacing + affine[:3, 3]
    reason = None
    if not config["min_brainstem_mm3"] <= volume <= config["max_brainstem_mm3"]:
        reason = f"brainstem volume {volume:.0f} mm3 is implausible"
    elif conf < config["min_brainstem_confidence"]:
        reason = f"brainstem confidence {conf:.2f} is low"
    elif abs(centroid[0] - volume_centre_mm[0]) > config["max_midline_offset_mm"]:
        reason = f"brainstem {abs(centroid[0] - volume_centre_mm[0]):.0f} mm off the volume's midline"
    margin = np.array([config["lateral_margin_mm"], config["anteroposterior_margin_mm"], config["superior_inferior_margin_mm"]])
    lower, upper = lower - margin, upper + margin
    lesion = np.argwhere(labels == Label.LESION)
    if len(lesion):
        lesion_mm = lesion * spacing + affine[:3, 3]
        lower = np.minimum(lower, lesion_mm.min(0) - config["lesion_margin_mm"])
        upper = np.maximum(upper, lesion_mm.max(0) + config["lesion_margin_mm"])
    return CoarseFindings(volume, conf, tuple(float(c) for c in centroid), lower, upper, reason)
