"""Label maps as shapes in millimetres: a fine isotropic RAS grid, signed distances, interpolation.

Measurements never run on the acquisition's voxels directly: the region around each nerve is
brought onto an isotropic RAS-aligned grid (default 0.25 mm) by interpolating each label's
indicator, so anisotropic, oblique or reoriented inputs give the same shapes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from nvc_mri.io.grid import WorldGrid, resample_labels


@dataclass(frozen=True)
class LocalLabels:
    """Labels on a fine RAS-aligned grid around one region."""

    labels: np.ndarray  # uint8, (R, A, S)
    grid: WorldGrid

    @property
    def spacing(self) -> float:
        return self.grid.spacing

    def world(self, index: np.ndarray) -> np.ndarray:
        """RAS+ mm of voxel indices ``(N, 3)``."""
        return np.asarray(index, float) * self.grid.spacing + np.asarray(self.grid.origin)

    def index(self, world: np.ndarray) -> np.ndarray:
        """Continuous voxel indices of RAS+ mm points ``(N, 3)``."""
        return (np.asarray(world, float) - np.asarray(self.grid.origin)) / self.grid.spacing


@dataclass(frozen=True)
class DistanceField:
    """Signed distance (mm) to a structure's surface on an isotropic RAS grid; callable on RAS+ mm points."""

    values: np.ndarray
    origin: np.ndarray
    spacing: float

    def __call__(self, points_mm: np.ndarray) -> np.ndarray:
        index = (np.atleast_2d(points_mm) - self.origin) / self.spacing
        return sample(self.values, index, fill=np.inf)


def surface_normal(sdf, point_mm: np.ndarray, step_mm: float = 0.5) -> np.ndarray | None:
    """Outward unit normal of a surface at ``point_mm`` from its signed distance ``sdf`` (central differences, mm).

    None where the distance is not known around the point.
    """
    normal, known = surface_normals(sdf, np.atleast_2d(np.asarray(point_mm, float)), step_mm)
    return normal[0] if known[0] else None


def surface_normals(sdf, points_mm: np.ndarray, step_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`surface_normal` at each of ``points_mm`` (n, 3): unit normals (n, 3) and where they are known (n,)."""
    gradient = np.stack([sdf(points_mm + step_mm * e) - sdf(points_mm - step_mm * e) for e in np.eye(3)], axis=1)
    norm = np.linalg.norm(gradient, axis=1, keepdims=True)
    known = np.all(np.isfinite(gradient), axis=1) & (norm[:, 0] > 1e-9)
    return np.where(known[:, None], gradient / np.where(known[:, None], norm, 1.0), 0.0), known


def distance_field(mask: np.ndarray, local: LocalLabels, box: tuple[slice, slice, slice] | None = None) -> DistanceField:
    """:func:`signed_distance_mm` of ``mask`` (on ``local``'s grid), optionally only inside ``box``."""
    box = box or tuple(slice(0, n) for n in mask.shape)
    origin = np.asarray(local.grid.origin) + np.array([b.start for b in box]) * local.spacing
    return DistanceField(signed_distance_mm(mask[box], local.spacing), origin, local.spacing)


def box_around(points_index: np.ndarray, pad: int, shape: tuple[int, ...]) -> tuple[slice, slice, slice]:
    """Slices of the bounding box of voxel indices ``(N, 3)``, padded by ``pad`` voxels, within ``shape``."""
    lower = np.maximum(np.floor(points_index.min(0)).astype(int) - pad, 0)
    upper = np.minimum(np.ceil(points_index.max(0)).astype(int) + pad + 1, shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lower, upper))  # type: ignore[return-value]


def local_labels(labels: np.ndarray, affine: np.ndarray, lower_mm: np.ndarray, upper_mm: np.ndarray,
                 spacing_mm: float = 0.25) -> LocalLabels:
    """Resample the box ``[lower_mm, upper_mm]`` (RAS+) of a label map onto an isotropic grid."""
    shape = tuple(int(n) for n in np.ceil((np.asarray(upper_mm) - lower_mm) / spacing_mm) + 1)
    grid = WorldGrid(tuple(float(v) for v in lower_mm), float(spacing_mm), shape)
    return LocalLabels(resample_labels(np.asarray(labels, np.uint8), affine, grid.affine, shape), grid)


def signed_distance_mm(mask: np.ndarray, spacing_mm: float) -> np.ndarray:
    """Signed distance to the surface of ``mask`` in mm: negative inside, positive outside.

    The surface lies half a voxel outside the boundary voxels' centres, so two touching
    structures are 0 mm apart.
    """
    if not mask.any():
        return np.full(mask.shape, np.inf, np.float32)
    outside = ndimage.distance_transform_edt(~mask, sampling=spacing_mm)
    inside = ndimage.distance_transform_edt(mask, sampling=spacing_mm)
    return np.where(mask, -(inside - spacing_mm / 2), outside - spacing_mm / 2).astype(np.float32)


def sample(field: np.ndarray, index: np.ndarray, fill: float = np.inf) -> np.ndarray:
    """Trilinear interpolation of ``field`` at continuous voxel indices ``(N, 3)``."""
    return ndimage.map_coordinates(field, np.asarray(index, float).T, order=1, mode="constant", cval=fill)


def largest_components(mask: np.ndarray, keep: int = 1, min_voxels: int = 1) -> list[np.ndarray]:
    """The ``keep`` largest 26-connected components of ``mask``, largest first."""
    labelled, n = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    if n == 0:
        return []
    sizes = np.bincount(labelled.ravel())[1:]
    order = np.argsort(sizes)[::-1][:keep]
    return [labelled == (i + 1) for i in order if sizes[i] >= min_voxels]


def dilate_mm(mask: np.ndarray, radius_mm: float, spacing_mm: float) -> np.ndarray:
    """Dilation by a ball of ``radius_mm`` (exact, via a distance transform)."""
    if not mask.any():
        return mask.copy()
    return ndimage.distance_transform_edt(~mask, sampling=spacing_mm) <= radius_mm


def smooth_occupancy(mask: np.ndarray, sigma_mm: float, spacing_mm: float) -> np.ndarray:
    """Occupancy of ``mask`` with the staircase of its surface smoothed away (float32, 0-1; the surface is its 0.5 level).

    A label drawn on a coarser grid and resampled onto a fine one keeps the coarse voxels' steps
    on an oblique surface; a distance measured to it meets the steps' protruding corners and comes
    out short by up to a quarter of a step (about 0.1-0.2 mm for 0.5-0.8 mm voxels). A Gaussian of
    ``sigma_mm`` near half the step removes them; a surface curved with radius R moves by only
    about ``sigma_mm**2 / (2 R)``. ``sigma_mm <= 0``: the mask itself.
    """
    if sigma_mm <= 0 or not mask.any():
        return mask.astype(np.float32)
    return ndimage.gaussian_filter(mask.astype(np.float32), sigma_mm / spacing_mm, mode="nearest")


@dataclass(frozen=True)
class SurfaceDistance:
    """Signed distance (mm) to the 0.5 level of a smoothed occupancy, refined below the voxel; callable on RAS+ mm points.

    The distance transform measures to the nearest voxel centre inside the thresholded occupancy and
    takes half a voxel off: on a surface oblique to the grid that centre lies less than half a voxel
    inside, so distances come out short by about a quarter of a voxel (0.05 mm on the 0.25 mm grid),
    enough to move the point where a nerve leaves the brainstem by 0.1 mm along it. Near the surface
    the distance is corrected where it meets the surface: from the nearest surface point the distance
    transform gives, along the surface normal, to where the interpolated occupancy crosses 0.5.
    """

    voxelwise: DistanceField     # of the occupancy >= 0.5 (distance transform), on the occupancy's grid
    occupancy: np.ndarray        # float, same grid
    reach_mm: float = 2.0        # refined within this distance of the surface

    def __call__(self, points_mm: np.ndarray) -> np.ndarray:
        points = np.atleast_2d(np.asarray(points_mm, float))
        d = self.voxelwise(points)
        near = np.flatnonzero(np.isfinite(d) & (np.abs(d) <= self.reach_mm))
        if len(near) == 0:
            return d
        h = self.voxelwise.spacing
        normal, ok = surface_normals(self.voxelwise, points[near], h)
        foot = points[near] - d[near, None] * normal

        def occupancy(x: np.ndarray) -> np.ndarray:
            return sample(self.occupancy, (x - self.voxelwise.origin) / h, fill=np.nan)

        slope = (occupancy(foot + h * normal) - occupancy(foot - h * normal)) / (2 * h)  # per mm outward, < 0
        ok &= np.isfinite(slope) & (slope < -0.1)
        shift = np.clip((0.5 - occupancy(foot)) / np.where(ok, slope, -1.0), -h, h)  # surface's offset from the foot, outward
        out = d.copy()
        out[near[ok]] = d[near[ok]] - shift[ok]
        return out


def close_mm(mask: np.ndarray, radius_mm: float, spacing_mm: float) -> np.ndarray:
    """Closing by a ball of ``radius_mm`` (dilation then erosion), padded so edges do not erode."""
    pad = int(np.ceil(radius_mm / spacing_mm)) + 1
    grown = dilate_mm(np.pad(mask, pad), radius_mm, spacing_mm)
    closed = ndimage.distance_transform_edt(grown, sampling=spacing_mm) > radius_mm
    return closed[(slice(pad, -pad),) * 3] | mask
