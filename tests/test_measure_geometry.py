"""The geometric pieces of the measurement on hand-made masks with known answers."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from nvc_mri.measure.contact import local_tube
from nvc_mri.measure.nerve import connected_tube
from nvc_mri.measure.vessels import _origin


def _voxels_of_tube(axis: np.ndarray, radius: float, spacing: float) -> np.ndarray:
    """Centres (mm) of the voxels of a grid with ``spacing`` whose centre lies within ``radius`` of ``axis``."""
    lo, hi = axis.min(0) - radius - spacing, axis.max(0) + radius + spacing
    grid = np.stack(np.meshgrid(*[np.arange(a, b, spacing) for a, b in zip(lo, hi)], indexing="ij"), -1).reshape(-1, 3)
    return grid[cKDTree(axis).query(grid)[0] <= radius]


def test_local_tube_follows_a_bending_artery():
    """An artery bending towards the nerve (circle of 6 mm radius): the fitted axis passes through its apex,
    where a straight axis through the stretch's centroid would sit about L^2/6R = 0.1 mm or more too far out."""
    bend_radius, radius, spacing = 6.0, 0.8, 0.25
    angle = np.linspace(-0.9, 0.9, 400)
    axis = np.stack([bend_radius * np.sin(angle), np.zeros_like(angle), bend_radius * (np.cos(angle) - 1)], 1)  # apex at 0
    voxels = _voxels_of_tube(axis, radius, spacing)
    tube = local_tube(voxels, cKDTree(voxels), spacing**3, np.array([0.0, 0.0, radius]))
    assert tube is not None
    foot, distance = tube.foot(np.array([[0.0, 0.0, 3.0]]))  # a point 3 mm above the apex
    assert abs(distance[0] - 3.0) < 0.05
    assert abs(tube.radius_mm - radius) < 0.08


def test_nerve_broken_by_a_deep_indentation_is_bridged():
    """A thin nerve whose label is cut for 2.4 mm where an artery sinks into it stays one nerve."""
    spacing = 0.25
    mask = np.zeros((120, 20, 20), bool)
    mask[5:50, 8:12, 8:12] = True
    mask[60:115, 8:12, 8:12] = True  # 10 voxels = 2.5 mm apart
    tube = connected_tube(mask, spacing)
    assert tube is not None and tube[5:115, 10, 10].all()


def test_branch_origin_is_where_it_ends_on_the_trunk():
    """A branch touching the trunk at its origin (one end) and again mid-course: the origin is the end."""
    piece = np.zeros((60, 10, 10), bool)
    piece[2:58, 4:6, 4:6] = True
    touch = np.zeros_like(piece)
    touch[2:6, 4:6, 4:6] = True     # the end: the branch arises here
    touch[28:34, 4:6, 4:6] = True   # a larger mid-course contact where it runs past the trunk
    origin = _origin(piece, touch)
    assert origin[:, 0].max() < 6
