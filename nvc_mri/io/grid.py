"""RAS-aligned world grids and resampling between them and an image's own grid.

The networks work on grids aligned with the RAS+ world axes at a fixed voxel size
(``configs/model.yaml``), whatever the acquisition's orientation (oblique slabs included), and the
measurement resamples labels onto fine local grids the same way.
Resampling uses ``torch.nn.functional.grid_sample`` (trilinear, multi-threaded).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class WorldGrid:
    """A box of voxels aligned with the RAS+ axes.

    Attributes
    ----------
    origin : tuple of float
        RAS+ mm coordinates of the centre of voxel (0, 0, 0).
    spacing : float
        Isotropic voxel size in mm.
    shape : tuple of int
        Voxels along R, A, S.
    """

    origin: tuple[float, float, float]
    spacing: float
    shape: tuple[int, int, int]

    @property
    def affine(self) -> np.ndarray:
        """Voxel index -> RAS+ mm."""
        affine = np.diag([self.spacing] * 3 + [1.0])
        affine[:3, 3] = self.origin
        return affine

    @property
    def upper(self) -> np.ndarray:
        """RAS+ mm of the centre of the last voxel."""
        return np.asarray(self.origin) + (np.asarray(self.shape) - 1) * self.spacing

    def crop(self, lower_mm: np.ndarray, upper_mm: np.ndarray) -> WorldGrid:
        """The sub-grid (same lattice) covering the box ``[lower_mm, upper_mm]``, clipped to this grid."""
        start = np.clip(np.floor((np.asarray(lower_mm) - self.origin) / self.spacing), 0, np.asarray(self.shape) - 1).astype(int)
        stop = np.clip(np.ceil((np.asarray(upper_mm) - self.origin) / self.spacing) + 1, start + 1, self.shape).astype(int)
        origin = np.asarray(self.origin) + start * self.spacing
        return WorldGrid(tuple(float(v) for v in origin), self.spacing, tuple(int(v) for v in stop - start))


def bounding_grid(shape: tuple[int, int, int], affine: np.ndarray, spacing: float) -> WorldGrid:
    """The RAS-aligned grid at ``spacing`` mm that covers a volume of ``shape`` with ``affine``."""
    n = np.array(shape) - 1
    corners = np.array([[a, b, c, 1.0] for a in (0, n[0]) for b in (0, n[1]) for c in (0, n[2])]) @ affine.T
    lower, upper = corners[:, :3].min(0), corners[:, :3].max(0)
    size = np.floor((upper - lower) / spacing).astype(int) + 1
    return WorldGrid(tuple(float(v) for v in lower), float(spacing), tuple(int(v) for v in size))


def _normalised_coordinates(source_shape, source_affine, target_affine, target_shape) -> torch.Tensor:
    """grid_sample coordinates: for each target voxel, where it lies in the source array in [-1, 1]."""
    target_to_source = np.linalg.inv(source_affine) @ target_affine
    # grid_sample wants (x, y, z) = (last, middle, first) array axis, normalised with align_corners=True
    scale = np.array([2.0 / max(n - 1, 1) for n in source_shape])
    m = (target_to_source[:3] * scale[:, None])[::-1].copy()  # rows: k, j, i of the source
    m[:, 3] -= 1.0
    m = torch.as_tensor(m, dtype=torch.float32)
    axes = [torch.arange(n, dtype=torch.float32) for n in target_shape]
    grid = (m[:, 3].view(1, 1, 1, 3)
            + axes[0].view(-1, 1, 1, 1) * m[:, 0].view(1, 1, 1, 3)
            + axes[1].view(1, -1, 1, 1) * m[:, 1].view(1, 1, 1, 3)
            + axes[2].view(1, 1, -1, 1) * m[:, 2].view(1, 1, 1, 3))
    return grid[None]


def resample(array: np.ndarray | torch.Tensor, source_affine: np.ndarray, target_affine: np.ndarray,
             target_shape: tuple[int, int, int], mode: str = "bilinear", fill: float = 0.0) -> torch.Tensor:
    """Resample ``array`` (shape ``(I, J, K)`` or ``(C, I, J, K)``) onto another voxel grid.

    Parameters
    ----------
    array : ndarray or Tensor
        Values on the source grid.
    source_affine, target_affine : ndarray (4, 4)
        Voxel -> RAS+ mm of both grids.
    target_shape : tuple of int
        Target grid shape.
    mode : {'bilinear', 'nearest'}
        ``'bilinear'`` is trilinear in 3D.
    fill : float
        Value outside the source volume.

    Returns
    -------
    Tensor, float32, shape ``(C, *target_shape)`` or ``target_shape``.
    """
    values = torch.as_tensor(np.asarray(array, dtype=np.float32) if isinstance(array, np.ndarray) else array, dtype=torch.float32)
    squeeze = values.ndim == 3
    if squeeze:
        values = values[None]
    grid = _normalised_coordinates(values.shape[1:], source_affine, target_affine, target_shape)
    out = F.grid_sample((values - fill)[None], grid, mode=mode, padding_mode="zeros", align_corners=True)[0] + fill
    return out[0] if squeeze else out


def resample_labels(labels: np.ndarray, source_affine: np.ndarray, target_affine: np.ndarray,
                    shape: tuple[int, int, int]) -> np.ndarray:
    """Resample a label map by interpolating each class's indicator and taking the largest (uint8).

    Only the part of ``labels`` under the target grid is read, so small targets are fast.
    """
    box, source_affine = covered_box(labels.shape, source_affine, target_affine, shape, margin=2)
    labels = labels[box]
    values = [int(v) for v in np.unique(labels) if v != 0]
    if not values:
        return np.zeros(shape, np.uint8)
    # the background's share is 1 minus the others' (also outside the source volume, where they are 0)
    shares = resample(np.stack([labels == v for v in values]).astype(np.float32), source_affine, target_affine, shape).numpy()
    best_share = 1.0 - shares.sum(0)
    winner = np.zeros(shape, np.uint8)
    for value, share in zip(values, shares):  # a running maximum: ties go to the earlier class, as in argmax
        larger = share > best_share
        winner[larger] = value
        np.maximum(best_share, share, out=best_share)
    return winner


def covered_box(shape: tuple[int, int, int], affine: np.ndarray, target_affine: np.ndarray,
                target_shape: tuple[int, int, int], margin: int = 0) -> tuple[tuple[slice, slice, slice], np.ndarray]:
    """Slices of an array (``shape``, ``affine``) under a target grid, plus ``margin`` voxels, and the box's affine."""
    n = np.asarray(target_shape) - 1
    corners = np.array([[a, b, c, 1.0] for a in (0, n[0]) for b in (0, n[1]) for c in (0, n[2])]) @ target_affine.T
    index = corners @ np.linalg.inv(affine).T
    lower = np.clip(np.floor(index[:, :3].min(0)) - margin, 0, np.asarray(shape) - 1).astype(int)
    upper = np.clip(np.ceil(index[:, :3].max(0)) + margin + 1, lower + 1, shape).astype(int)
    shifted = affine.copy()
    shifted[:3, 3] = affine[:3, :3] @ lower + affine[:3, 3]
    return tuple(slice(int(a), int(b)) for a, b in zip(lower, upper)), shifted  # type: ignore[return-value]
