"""The geometric pieces of the measurement on hand-made masks with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from nvc_mri.measure.branch_tracks import follow_branches
from nvc_mri.measure.cleft import csf_cleft_fraction
from nvc_mri.measure.contact import Approach, ArteryTube, closest_approach, deformation, local_tube
from nvc_mri.measure.fields import DistanceField, LocalLabels, SurfaceDistance, WorldGrid, sample, signed_distance_mm, smooth_occupancy
from nvc_mri.measure.nerve import NerveCourse, connected_tube
from nvc_mri.measure.vessels import Vessel, _boxes_within, _name_fragments, _origins, _split_by_course, name_vessels


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


def test_local_tube_leaves_out_the_other_limb_of_a_hairpin_loop():
    """An artery turning back on itself 2 mm away: its return limb lies within the stretch's reach in space but
    10 mm further along the vessel. Taken as more of this stretch, it widened the tube and moved its axis halfway
    towards the other limb (development case 5100021r: radius 0.73 against 0.49 mm, axis 0.8 mm off)."""
    radius, spacing = 0.5, 0.25
    turn = np.linspace(-np.pi / 2, np.pi / 2, 40)
    axis = np.vstack([_polyline([-6.0, 0.0, 0.0], [5.0, 0.0, 0.0]),
                      np.stack([5.0 + np.cos(turn), 1.0 + np.sin(turn), 0 * turn], 1),
                      _polyline([5.0, 2.0, 0.0], [-6.0, 2.0, 0.0])])
    voxels = _voxels_of_tube(axis, radius, spacing)
    tube = local_tube(voxels, cKDTree(voxels), spacing**3, np.array([0.0, 0.0, -radius]), np.eye(3) * spacing)
    assert tube is not None
    assert abs(tube.radius_mm - radius) < 0.08
    assert tube.foot(np.array([[0.0, 0.0, 0.0]]))[1][0] < 0.1  # the axis runs through the near limb


def test_long_contact_is_placed_at_the_middle_of_the_touching_stretch():
    """A vertebral artery lying along the nerve from 4 to 12 mm beyond the root exit point: the contact is
    reported at 8 mm, the middle of the stretch, not wherever along it the fitted axes happen to come closest."""
    spacing, nerve_r, artery_r = 0.25, 0.6, 1.2
    lower = np.array([-3.0, -3.0, -3.0])
    grid = WorldGrid(tuple(lower), spacing, (100, 25, 40))
    centres = np.stack(np.meshgrid(*[lower[k] + spacing * np.arange(n) for k, n in enumerate(grid.shape)], indexing="ij"), -1)
    nerve_axis = _polyline([-3.0, 0.0, 0.0], [21.0, 0.0, 0.0])
    artery_axis = _polyline([-1.0, 0.0, 5.0], [4.0, 0.0, 1.7], [12.0, 0.0, 1.7], [17.0, 0.0, 5.0])
    flat = centres.reshape(-1, 3)
    nerve = (cKDTree(nerve_axis).query(flat)[0] <= nerve_r).reshape(grid.shape)
    artery = (cKDTree(artery_axis).query(flat)[0] <= artery_r).reshape(grid.shape) & ~nerve
    local = LocalLabels(np.where(nerve, 2, np.where(artery, 4, 0)).astype(np.uint8), grid)
    s = np.arange(0.0, 20.0, 0.1)
    course = NerveCourse(np.stack([s, 0 * s, 0 * s], 1), s, nerve_r, 3.0)
    artery_index = np.argwhere(artery)
    artery_mm = local.world(artery_index)
    approach = closest_approach(course, cKDTree(local.world(np.argwhere(nerve))), artery_index, local, artery_mm, cKDTree(artery_mm),
                                spacing**3, spacing / 2)
    assert approach is not None and approach.voxel_gap_mm == 0.0
    assert abs(approach.place_arc_mm - 8.0) < 0.5
    assert abs(approach.place_point_mm[0] - 8.0) < 0.5 and approach.place_point_mm[2] > 0.4  # on the nerve's top, facing the artery


def test_closest_approach_is_sought_only_along_the_arterys_voxels():
    """A branch piece curving down towards the nerve ends 0.4 mm from it (labels broken off, or the branch's end).
    The parabola fitted to it, extended 1 mm beyond its last voxels, bent on into the nerve: the closest approach
    was placed 1 mm beyond the piece's end and the gap cut to the labels' gap less their tolerance (0.125 mm).
    It is now sought along the voxels only (development case 5200042r: the extension of a stretch 1 mm from the root
    exit point dipped towards the nerve 3.6 mm further out, where the true artery lies 2 mm away)."""
    spacing, nerve_r, artery_r = 0.25, 0.6, 0.4
    lower, shape = np.array([-6.0, -2.0, -2.0]), (48, 16, 24)
    grid = WorldGrid(tuple(lower), spacing, shape)
    flat = np.stack(np.meshgrid(*[lower[k] + spacing * np.arange(n) for k, n in enumerate(shape)], indexing="ij"), -1).reshape(-1, 3)
    x = np.linspace(-4.0, 0.0, 200)
    artery_axis = np.stack([x, 0 * x, 3.0 - 0.1 * (x + 4.0) ** 2], 1)  # ends 1.4 mm above the nerve's axis: gap 0.4 mm
    artery = (cKDTree(artery_axis).query(flat)[0] <= artery_r).reshape(shape)
    nerve = (np.hypot(flat[:, 1], flat[:, 2]) <= nerve_r).reshape(shape)
    local = LocalLabels(np.where(nerve, 2, np.where(artery, 4, 0)).astype(np.uint8), grid)
    s = np.arange(-6.0, 6.0, 0.1)
    course = NerveCourse(np.stack([s, 0 * s, 0 * s], 1), s, nerve_r, 3.0)
    artery_index = np.argwhere(artery)
    artery_mm = local.world(artery_index)
    approach = closest_approach(course, cKDTree(local.world(np.argwhere(nerve))), artery_index, local, artery_mm, cKDTree(artery_mm),
                                spacing**3, spacing / 2, np.eye(3) * spacing)
    assert approach.arc_mm <= artery_r  # at the piece's end (0 mm; its rounded cap reaches 0.4 mm), not beyond it
    assert approach.gap_mm > 0.2


def test_distance_to_a_coarse_labels_surface_is_not_cut_short_by_its_steps():
    """A 10 mm ball labelled on 0.5 x 0.5 x 0.75 mm voxels and resampled onto a 0.25 mm grid: points 1 mm outside it
    measure about 0.17 mm short to the voxels' steps; with the steps smoothed away the error is a third of that,
    and refined below the 0.25 mm voxel where the distance meets the surface, less than 0.03 mm."""
    radius, coarse_mm, factor = 10.0, np.array([0.5, 0.5, 0.75]), (2, 2, 3)
    n = np.ceil(2 * (radius + 3) / coarse_mm).astype(int)
    origin = -(n - 1) * coarse_mm / 2
    x, y, z = np.meshgrid(*[o + s * np.arange(k) for o, s, k in zip(origin, coarse_mm, n)], indexing="ij")
    fine = (x**2 + y**2 + z**2 <= radius**2).repeat(2, 0).repeat(2, 1).repeat(3, 2)
    fine_origin = origin - (np.array(factor) - 1) * 0.125
    directions = np.random.default_rng(0).normal(size=(400, 3))
    outside = directions / np.linalg.norm(directions, axis=1, keepdims=True) * (radius + 1.0)
    index = (outside - fine_origin) / 0.25
    stepped = sample(signed_distance_mm(fine, 0.25), index).mean() - 1.0
    occupancy = smooth_occupancy(fine, coarse_mm.max() / 2, 0.25)
    smoothed = sample(signed_distance_mm(occupancy >= 0.5, 0.25), index).mean() - 1.0
    refined = SurfaceDistance(DistanceField(signed_distance_mm(occupancy >= 0.5, 0.25), fine_origin, 0.25), occupancy)(outside).mean() - 1.0
    assert stepped < -0.12
    assert abs(smoothed) < abs(stepped) / 2
    assert abs(refined) < 0.03 and abs(refined) < abs(smoothed) / 2


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
    origins = _origins(piece, touch)
    assert len(origins) == 1 and origins[0][:, 0].max() < 6


def test_two_branches_that_touch_are_split_at_the_origin_nearer_along_the_vessel():
    """An AICA (from the top end) touching a PICA (from the bottom end) makes one piece with two origins;
    each voxel belongs to the branch whose origin is nearer along the piece."""
    piece = np.zeros((60, 10, 10), bool)
    piece[2:58, 4:6, 4:6] = True
    touch = np.zeros_like(piece)
    touch[2:5, 4:6, 4:6] = True     # the PICA's origin
    touch[55:58, 4:6, 4:6] = True   # the AICA's origin
    origins = _origins(piece, touch)
    assert len(origins) == 2
    owner = _split_by_course(piece, follow_branches(piece, origins, 0.5) or origins)  # too thin for a skeleton: by origin
    first = int(np.argmin([o[:, 0].mean() for o in origins]))
    assert np.all(owner[2:28, 4:6, 4:6] == first) and np.all(owner[32:58, 4:6, 4:6] == 1 - first)
    assert np.all(owner[~piece] == -1)


def test_a_branch_is_followed_straight_through_the_place_it_crosses_another():
    """A PICA (origin at x = 0) crosses an AICA 5 mm from the AICA's origin and 20 mm from its own, at 45 degrees,
    and runs on 15 mm. Split by the nearer origin, its far part would be AICA; followed through the crossing, it is PICA."""
    spacing = 0.5
    pica = _polyline([0, 0, 0], [20, 0, 0], [35, 0, 0])
    aica = _polyline([20 - 5 / np.sqrt(2), -5 / np.sqrt(2), 0], [20 + 12 / np.sqrt(2), 12 / np.sqrt(2), 0])
    mm = np.vstack([_voxels_of_tube(axis, 0.9, spacing) for axis in (pica, aica)])
    lower = mm.min(0) - 2
    index = np.unique(np.round((mm - lower) / spacing).astype(int), axis=0)
    piece = np.zeros(index.max(0) + 3, bool)
    piece[tuple(index.T)] = True
    origin_voxels = [np.argwhere(piece & (np.linalg.norm(np.indices(piece.shape).T * spacing + lower - p, axis=-1).T <= 1.2))
                     for p in (pica[0], aica[0])]
    courses = follow_branches(piece, origin_voxels, spacing)
    assert courses is not None and len(courses) == 2
    owner = _split_by_course(piece, courses)
    at = lambda p: owner[tuple(np.round((np.asarray(p) - lower) / spacing).astype(int))]  # noqa: E731
    assert at([10, 0, 0]) == 0 and at([32, 0, 0]) == 0              # the PICA before and beyond the crossing
    assert at(aica[0] + [0.5, 0.5, 0]) == 1 and at(aica[-1]) == 1    # the AICA before and beyond it
    assert _split_by_course(piece, origin_voxels)[tuple(np.round((np.array([32, 0, 0]) - lower) / spacing).astype(int))] == 1


def test_two_branches_joined_end_to_end_are_split_between_their_origins():
    """A 2 mm thick vessel with an origin at each end (an AICA and a PICA joined end to end): both courses start
    on the one skeleton stretch, so neither takes it and each end goes to its own origin."""
    spacing = 0.5
    piece = np.zeros((64, 12, 12), bool)
    centres = np.indices(piece.shape).transpose(1, 2, 3, 0) * spacing
    piece |= (np.linalg.norm(centres[..., 1:] - 3.0, axis=-1) <= 1.0) & (centres[..., 0] >= 1.0) & (centres[..., 0] <= 30.0)
    origins = [np.argwhere(piece & (centres[..., 0] <= 2.0)), np.argwhere(piece & (centres[..., 0] >= 29.0))]
    courses = follow_branches(piece, origins, spacing)
    assert courses is not None
    owner = _split_by_course(piece, courses)
    assert np.all(owner[piece & (centres[..., 0] <= 13.0)] == 0) and np.all(owner[piece & (centres[..., 0] >= 18.0)] == 1)


def test_branches_crossing_at_a_small_angle_keep_their_own_far_parts():
    """Two 1 mm tubes crossing at 30 degrees: the skeleton draws the crossing as two junctions joined by a few-mm
    bridge, so the direction into the second junction is the bridge's. Each branch is still followed into its
    own far part (the direction it arrived in, before the bridge, is what counts)."""
    spacing, centre = 0.5, np.array([20.0, 20.0, 5.0])
    directions = [np.array([1.0, 0.0, 0.0]), np.array([np.cos(np.pi / 6), np.sin(np.pi / 6), 0.0])]
    piece = np.zeros((80, 80, 20), bool)
    centres = np.indices(piece.shape).transpose(1, 2, 3, 0) * spacing
    for d in directions:
        along = (centres - centre) @ d
        radial = np.linalg.norm(centres - centre - along[..., None] * d, axis=-1)
        piece |= (radial <= 1.0) & (np.abs(along) <= 15.0)
    origins = [np.argwhere(piece & (np.linalg.norm(centres - (centre - 14.5 * d), axis=-1) <= 1.2)) for d in directions]
    owner = _split_by_course(piece, follow_branches(piece, origins, spacing))
    far_ends = [tuple(np.round((centre + 13.0 * d) / spacing).astype(int)) for d in directions]
    assert [owner[far] for far in far_ends] == [0, 1]


def test_an_artery_piece_too_small_for_a_tube_is_modelled_with_the_rest_of_its_vessel():
    """On 0.6 mm voxels a thin artery breaks into pieces, and the piece touching the nerve may hold a few voxels:
    too few to fit a tube, so its indentation read 0 and a deformity read as a contact (4 of 33 true deformities
    on a development set). The vessel's other pieces around the contact carry the tube."""
    spacing, nerve_r, artery_r, depth = 0.6, 0.7, 0.6, 0.45
    lower, shape = np.array([-6.0, -4.0, -4.0]), (21, 14, 14)
    grid = WorldGrid(tuple(lower), spacing, shape)
    centres = np.stack(np.meshgrid(*[lower[k] + spacing * np.arange(n) for k, n in enumerate(shape)], indexing="ij"), -1)
    flat = centres.reshape(-1, 3)
    height = nerve_r + artery_r - depth  # artery axis above the nerve's: it sinks 0.45 mm into the nerve's outline
    artery = (cKDTree(_polyline([0.0, -4.0, height], [0.0, 4.0, height])).query(flat)[0] <= artery_r).reshape(shape)
    nerve = (cKDTree(_polyline([-6.0, 0.0, 0.0], [6.0, 0.0, 0.0])).query(flat)[0] <= nerve_r).reshape(shape) & ~artery
    piece = artery & (np.abs(centres[..., 1]) <= 0.7)  # the piece over the nerve; the rest is broken off it
    artery &= piece | (np.abs(centres[..., 1]) >= 1.9)  # by a gap of one voxel to either side
    local = LocalLabels(np.where(nerve, 2, np.where(artery, 4, 0)).astype(np.uint8), grid)
    s = np.arange(-6.0, 6.0, 0.1)
    course = NerveCourse(np.stack([s, 0 * s, 0 * s], 1), s, nerve_r, 3.0)
    piece_index, piece_mm, vessel_mm = np.argwhere(piece), local.world(np.argwhere(piece)), local.world(np.argwhere(artery))
    nerve_tree = cKDTree(local.world(np.argwhere(nerve)))

    def approach(whole_vessel):
        return closest_approach(course, nerve_tree, piece_index, local, piece_mm, cKDTree(piece_mm), spacing**3, spacing / 2,
                                np.eye(3) * spacing, whole_vessel)

    alone = approach(None)
    assert len(piece_mm) < 6 and alone.artery is None and alone.indentation_mm == 0.0
    with_vessel = approach(lambda: (vessel_mm, cKDTree(vessel_mm)))
    assert with_vessel.artery is not None and with_vessel.voxel_gap_mm == 0.0
    assert abs(with_vessel.artery.foot(np.zeros((1, 3)))[1][0] - height) <= spacing / 2  # the axis within half a voxel
    assert abs(with_vessel.artery.radius_mm - artery_r) <= spacing / 2
    assert with_vessel.indentation_mm > 0.0


def _polyline(*corners, step: float = 0.1) -> np.ndarray:
    corners = [np.asarray(c, float) for c in corners]
    return np.vstack([a + np.outer(np.linspace(0, 1, max(int(np.linalg.norm(b - a) / step), 2)), b - a) for a, b in zip(corners, corners[1:])])


def _artery_labels(tubes: list[tuple[np.ndarray, float]], spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Artery label map (value 4) of tubes given as (axis points in mm, radius in mm), and its affine."""
    mm = np.vstack([_voxels_of_tube(axis, radius, spacing) for axis, radius in tubes])
    lower = mm.min(0) - 2
    index = np.unique(np.round((mm - lower) / spacing).astype(int), axis=0)
    labels = np.zeros(index.max(0) + 3, np.uint8)
    labels[tuple(index.T)] = 4
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = lower
    return labels, affine


def test_vertebral_artery_looping_above_the_junction_stays_vertebral():
    """Two vertebral arteries join at z = 0; the left one first loops up to z = 10 beside the basilar artery, so
    slices up to there show two vessels. The junction is where the two join along the trunk, and the loop is VA."""
    spacing = 0.5
    right = _polyline([9, 0, -30], [9, 0, -8], [1.5, 0, -1], [0, 0, 0])
    left = _polyline([-12, 0, -30], [-12, 0, 10], [-5.5, 0, 10], [-5.5, 0, -2], [-1.5, 0, -0.5], [0, 0, 0])
    basilar = _polyline([0, 0, 0], [0, 0, 25])
    found = name_vessels(*_artery_labels([(right, 1.7), (left, 1.7), (basilar, 1.7)], spacing), 4)
    assert found.vbj_z_mm is not None and abs(found.vbj_z_mm) <= 2.5
    names = [found.vessels[v].name for v in found.vessel_at(np.array([[-12.0, 0, 8], [-5.5, 0, 6], [9.0, 0, -20], [0, 0, 15]]))]
    assert names == ["VA", "VA", "VA", "BA"]


def test_branch_broken_at_its_origin_arises_across_the_gap():
    """A thin PICA (0.5 mm radius) leaves the right vertebral artery 10 mm below the junction, broken for 1.5 mm
    right at its origin, and loops up to 6 mm above the junction. Named by how low it reaches it would be an
    AICA; its end 1.5 mm from the vertebral artery is where it arises, so it is a PICA."""
    spacing = 0.5
    right = _polyline([9, 0, -30], [9, 0, -8], [1.5, 0, -1], [0, 0, 0])
    left = _polyline([-9, 0, -30], [-9, 0, -8], [-1.5, 0, -1], [0, 0, 0])
    basilar = _polyline([0, 0, 0], [0, 0, 25])
    pica = _polyline([9 + 1.7 + 1.5, 0, -10], [20, 0, -10], [20, 0, 6], [14, 0, 6])
    found = name_vessels(*_artery_labels([(right, 1.7), (left, 1.7), (basilar, 1.7), (pica, 0.5)], spacing), 4)
    assert found.vbj_z_mm is not None and abs(found.vbj_z_mm) <= 2.5
    loop = found.vessels[int(found.vessel_at(np.array([[17.0, 0, 6]]))[0])]
    assert loop.name == "PICA" and "gap" in loop.reason
    assert loop.origin_ras_mm is not None and abs(loop.origin_ras_mm[2] + 10) <= 1.5


def test_branch_pieces_joined_to_nothing_are_named_by_how_low_their_chain_reaches():
    """A thin PICA whose stretch near its origin is lost in the image, and whose loop up to the nerve is broken
    twice (1.5 mm gaps): only the lowest piece reaches 12 mm below the junction, but the pieces near the nerve
    are the same branch, so all are named PICA."""
    spacing = 0.5
    right = _polyline([9, 0, -30], [9, 0, -8], [1.5, 0, -1], [0, 0, 0])
    left = _polyline([-9, 0, -30], [-9, 0, -8], [-1.5, 0, -1], [0, 0, 0])
    basilar = _polyline([0, 0, 0], [0, 0, 25])
    low = _polyline([20, 0, -20], [20, 0, -4])
    middle = _polyline([20, 0, -1.5], [20, 0, 4])
    top = _polyline([18.5, 0, 6], [14, 0, 6])
    found = name_vessels(*_artery_labels([(right, 1.7), (left, 1.7), (basilar, 1.7), (low, 0.5), (middle, 0.5), (top, 0.5)], spacing), 4)
    assert found.vbj_z_mm is not None and abs(found.vbj_z_mm) <= 2.5
    pieces = [found.vessels[int(v)] for v in found.vessel_at(np.array([[20.0, 0, -15], [20.0, 0, 2], [16.0, 0, 6]]))]
    assert len({id(p) for p in pieces}) == 3, "the three pieces are apart in the image"
    assert [p.name for p in pieces] == ["PICA"] * 3
    assert all("chain of 3 pieces" in p.reason for p in pieces)


def test_branch_pieces_looping_far_below_the_junction_do_not_continue_an_aica():
    """A PICA that has lost its origin in the image runs down from the nerve, broken once, to 20 mm below the
    junction; its top lies 1.4 mm from the end of an AICA, as if continuing it. A chain reaching that low is a
    PICA's loop: it continues no AICA and is named PICA."""
    spacing = 0.5
    right = _polyline([9, 0, -30], [9, 0, -8], [1.5, 0, -1], [0, 0, 0])
    left = _polyline([-9, 0, -30], [-9, 0, -8], [-1.5, 0, -1], [0, 0, 0])
    basilar = _polyline([0, 0, 0], [0, 0, 25])
    aica = _polyline([1.7, 0, 6], [16, 0, 6], [20, 0, 2])
    top = _polyline([20, 0, -0.5], [20, 0, -6])
    low = _polyline([20, 0, -7.5], [20, 0, -20])
    tubes = [(right, 1.7), (left, 1.7), (basilar, 1.7), (aica, 0.6), (top, 0.5), (low, 0.5)]
    found = name_vessels(*_artery_labels(tubes, spacing), 4)
    assert found.vbj_z_mm is not None and abs(found.vbj_z_mm) <= 2.5
    names = [found.vessels[int(v)].name for v in found.vessel_at(np.array([[10.0, 0, 6], [20.0, 0, -3], [20.0, 0, -15]]))]
    assert names == ["AICA", "PICA", "PICA"]


def test_broken_branch_piece_takes_the_name_of_the_branch_it_continues():
    """A PICA broken on thick slices: the cut-off piece continues the PICA (1.5 mm end to end), not the AICA
    running past it as close."""
    ids = np.zeros((60, 40, 12), np.int32)
    ids[0:30, 10:12, 4:6] = 11      # PICA (1 mm thick on the 0.5 mm vessel grid), origin known, ends at x = 29
    ids[33:56, 10:12, 4:6] = 12     # the piece cut off from it
    ids[44:46, 0:40, 8:10] = 13     # AICA passing 1.5 mm above the piece
    vessels = {
        11: Vessel(11, "PICA", 0.9, [0.0, 0.0, 0.0], "arises from a vertebral artery"),
        12: Vessel(12, "AICA", 0.35, None, "branch not joined to the trunk in the image; named by how low it reaches"),
        13: Vessel(13, "AICA", 0.9, [0.0, 0.0, 0.0], "arises from the basilar artery"),
    }
    _name_fragments(ids, vessels, bridge_mm=2.0)
    assert vessels[12].name == "PICA" and "broken" in vessels[12].reason
    assert vessels[13].name == "AICA"


def test_broken_branch_pieces_join_the_nearest_piece_first():
    """A PICA broken twice (pieces 13 then 12, 1.5 mm apart) with an AICA ending 2 mm from the far piece:
    the far piece continues the PICA through the middle piece, even though it is looked at first."""
    ids = np.zeros((60, 20, 12), np.int32)
    ids[0:20, 10:12, 4:6] = 11      # PICA, origin known, ends at x = 19
    ids[37:50, 10:12, 4:6] = 12     # the far piece, 1.5 mm beyond the middle one
    ids[22:35, 10:12, 4:6] = 13     # the middle piece, 1.5 mm beyond the PICA
    ids[44:46, 0:7, 4:6] = 14       # AICA ending 2 mm from the far piece
    vessels = {
        11: Vessel(11, "PICA", 0.9, [0.0, 0.0, 0.0], "arises from a vertebral artery"),
        12: Vessel(12, "AICA", 0.35, None, "branch not joined to the trunk in the image"),
        13: Vessel(13, "AICA", 0.35, None, "branch not joined to the trunk in the image"),
        14: Vessel(14, "AICA", 0.9, [0.0, 0.0, 0.0], "arises from the basilar artery"),
    }
    _name_fragments(ids, vessels, bridge_mm=2.0)
    assert vessels[13].name == "PICA" and vessels[12].name == "PICA"


def _crossing(gap_mm: float, spacing: float, n: int = 40, nerve_r: float = 0.6, artery_r: float = 0.8, sub: int = 4,
              short_mm: float = 0.0, parallel: bool = False, model_turn_deg: float = 0.0, bridge_label: int | None = None):
    """A nerve along x and an artery along y crossing above it ``gap_mm`` apart, imaged with partial volume
    (each voxel the mean of sub**3 samples: CSF 1000, nerve 250, artery 100); labels by voxel centre.
    ``short_mm``: the tube models' radii fall short of the true ones by this much (labels from a segmentation
    that left the boundary voxels to neither structure), so the modelled gap is ``gap_mm + 2 * short_mm``.
    ``parallel``: the artery runs along the nerve instead (a vertebral artery lying on it); ``model_turn_deg``:
    the artery's tube model lies turned this far round the nerve's axis from where the artery is; ``bridge_label``:
    dark tissue (nerve's signal, this label) along the nerve filling the gap between the two 10-40 degrees round the
    nerve from the artery."""
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = -spacing * (n - 1) / 2
    centres = np.arange(n) * spacing + affine[0, 3]
    fine = (centres[:, None] + ((np.arange(sub) + 0.5) / sub - 0.5)[None] * spacing).ravel()
    artery_z = nerve_r + artery_r + gap_mm

    def tissue(x, y, z):
        artery = (y if parallel else x) ** 2 + (z - artery_z) ** 2 <= artery_r**2
        nerve = y**2 + z**2 <= nerve_r**2
        if bridge_label is None:
            return artery, nerve, np.zeros_like(nerve)
        turn = np.degrees(np.arctan2(y, z))
        return artery, nerve, (turn >= 10) & (turn <= 40) & ~artery & ~nerve

    artery, nerve, bridge = tissue(*np.meshgrid(fine, fine, fine, indexing="ij"))
    image = np.where(artery, 100.0, np.where(nerve | bridge, 250.0, 1000.0)).reshape(n, sub, n, sub, n, sub).mean((1, 3, 5))
    artery, nerve, bridge = tissue(*np.meshgrid(centres, centres, centres, indexing="ij"))
    labels = np.where(artery, 4, np.where(nerve, 2, np.where(bridge, bridge_label or 0, 0))).astype(np.uint8)
    s = np.arange(-8.0, 8.0, 0.1)
    nerve_r, artery_r = nerve_r - short_mm, artery_r - short_mm
    course = NerveCourse(np.stack([s, 0 * s, 0 * s], 1), s + 8.0, nerve_r, 3.0)
    turn = np.radians(model_turn_deg)
    axis_point = np.array([0.0, -artery_z * np.sin(turn), artery_z * np.cos(turn)])
    tube = ArteryTube(np.array([axis_point, [1.0, 0.0, 0.0] if parallel else [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]), (-3.0, 3.0), artery_r)
    approach = Approach(0.0, gap_mm + 2 * short_mm, 0.0, 8.0, np.array([0.0, 0.0, nerve_r]), np.array([0.0, 0.0, artery_z - artery_r]),
                        tube, 8.0, np.array([0.0, 0.0, nerve_r]))
    return csf_cleft_fraction(image, labels, affine, course, approach)


def test_csf_cleft_tells_touching_from_a_cleft_thinner_than_a_voxel():
    """Touching leaves the voxels between artery and nerve dark; a 0.25 mm CSF cleft, half a voxel or less,
    brightens them by partial volume (the configured threshold is 0.2)."""
    for spacing in (0.4, 0.5, 0.6):
        touching, cleft = _crossing(0.0, spacing), _crossing(0.25, spacing)
        assert touching < 0.2 < cleft, (spacing, touching, cleft)
        assert _crossing(0.6, spacing) > cleft


def test_labels_that_stop_short_of_touching_surfaces_leave_no_cleft_in_the_image():
    """Segmentation labels 0.35 mm short of each surface put a touching artery 0.7 mm from the nerve, beyond the
    labels' resolution; the image between them stays dark, while a true 0.7 mm gap shows CSF."""
    for spacing in (0.4, 0.5, 0.6):
        short = _crossing(0.0, spacing, short_mm=0.35)
        assert short < 0.2 < _crossing(0.7, spacing), (spacing, short)


def test_an_artery_modelled_beside_where_it_touches_still_leaves_no_cleft():
    """A segmentation may place an artery that lies along the nerve (a vertebral artery) turned round the nerve from
    where it is; the line between the two tube models then passes through the CSF beside the contact. The darkest
    of the lines fanned round the nerve's axis finds the contact, and still sees a true 0.25 mm cleft."""
    for spacing in (0.4, 0.5, 0.6):
        touching = _crossing(0.0, spacing, parallel=True, model_turn_deg=25.0)
        cleft = _crossing(0.25, spacing, parallel=True, model_turn_deg=25.0)
        assert touching < 0.2 < cleft, (spacing, touching, cleft)


def test_dark_tissue_labelled_as_another_structure_is_not_read_as_the_arterys_bridge():
    """A 0.5 mm CSF cleft between nerve and artery, with dark tissue filling the gap 10-40 degrees round the nerve.
    Unlabelled, the turned line through it reads much darker than the cleft; labelled as another structure (CN VIII
    lying along CN VII), that line is left out and the cleft is seen."""
    for spacing in (0.4, 0.5, 0.6):
        unlabelled = _crossing(0.5, spacing, parallel=True, bridge_label=0)
        other_nerve = _crossing(0.5, spacing, parallel=True, bridge_label=3)
        assert other_nerve > max(0.2, unlabelled + 0.2), (spacing, unlabelled, other_nerve)


def test_the_image_judges_gaps_up_to_the_labels_resolution_or_the_configured_gap():
    from nvc_mri.config import load_config
    from nvc_mri.measure.study import cleft_is_judged

    cfg = dict(load_config("contact.yaml"), contact_max_gap_mm=0.1, cleft_max_gap_mm=1.0)
    assert not cleft_is_judged(0.05, 0.25, cfg)  # contact already
    assert cleft_is_judged(0.7, 0.25, cfg) and cleft_is_judged(1.0, 0.25, cfg)
    assert not cleft_is_judged(1.2, 0.25, cfg)
    assert cleft_is_judged(1.2, 1.5, dict(cfg))  # thick slices: the labels' own resolution is the wider band
    assert not cleft_is_judged(0.7, 0.25, dict(cfg, cleft_max_gap_mm=0.0))


def test_tube_radius_corrects_the_labels_shrinkage_on_a_thin_tube():
    """A 0.6 mm nerve on 0.5 x 0.5 x 0.8 mm voxels, running obliquely so that it crosses the voxels at every
    sub-voxel offset. Labelled by majority vote (as a rater or the phantom labels), its volume gives a radius about
    0.03 mm shorter than labels that take a voxel when its centre is inside (no partial-volume bias): the majority
    labels' edge is the half level of the voxel-averaged tube, inside a curved surface. The correction removes that."""
    from nvc_mri.measure.nerve import label_shrinkage_mm, tube_radius

    radius, voxel, fine = 0.6, np.array([0.5, 0.5, 0.8]), 6
    direction = np.array([1.0, 0.13, 0.07]) / np.linalg.norm([1.0, 0.13, 0.07])
    axis = np.outer(np.arange(0.0, 16.0, 0.1), direction)
    centres = np.stack(np.meshgrid(*[np.arange(lo - 1.5, hi + 1.5, v) for lo, hi, v in zip(axis.min(0), axis.max(0), voxel)],
                                   indexing="ij"), -1).reshape(-1, 3)
    offsets = np.stack(np.meshgrid(*[((np.arange(fine) + 0.5) / fine - 0.5) * v for v in voxel], indexing="ij"), -1).reshape(-1, 3)

    def off_axis(points):
        return np.linalg.norm(points - np.clip(points @ direction, 0.0, 16.0)[..., None] * direction, axis=-1)

    majority = centres[(off_axis(centres[:, None, :] + offsets[None]) <= radius).mean(1) > 0.5]
    centre_inside = centres[off_axis(centres) <= radius]
    voxel_mm3 = float(np.prod(voxel))
    unbiased = tube_radius(centre_inside, voxel_mm3, axis)
    labels_radius = tube_radius(majority, voxel_mm3, axis)
    assert labels_radius < unbiased - 0.02
    assert abs(labels_radius + label_shrinkage_mm(labels_radius, direction[None], np.diag(voxel)) - unbiased) < 0.01


def _attached_nerve_scene(sideways_push_mm: float, elevation_deg: float, contact_x: float = 5.5):
    """A 0.6 mm nerve lying on a flat brainstem (surface z = 0, outward normal +z) along x for 6 mm from its root
    exit point at x = 0, its root diving into the brainstem medially and its course lifting off the surface
    laterally (z rises as 0.1 (x - 6)**2, the detachment bend). An artery of 0.8 mm radius touches it at
    ``contact_x`` (5.5: attached segment) from the cistern, ``elevation_deg`` above the surface.
    ``sideways_push_mm``: the nerve pushed along the surface, away from the artery (-y), by a Gaussian of that
    height (sd 1.5 mm) at the contact.

    Returns the nerve's course, the artery's approach, the nerve's mask and its grid.
    """
    from nvc_mri.measure.fields import LocalLabels
    from nvc_mri.io.grid import WorldGrid

    nerve_r, artery_r, spacing = 0.6, 0.8, 0.25
    x = np.arange(-3.0, 16.0, 0.05)
    y = -sideways_push_mm * np.exp(-0.5 * ((x - contact_x) / 1.5) ** 2)
    z = np.where(x < 0, nerve_r + x, nerve_r + 0.1 * np.clip(x - 6.0, 0.0, None) ** 2)
    axis = np.stack([x, y, z], 1)
    arc = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(axis, axis=0), axis=1))]
    arc -= np.interp(0.0, x, arc)
    s_contact = float(np.interp(contact_x, x, arc))
    course = NerveCourse(axis, arc, nerve_r, float(np.interp(6.0, x, arc)))
    contact = course.point_at(s_contact)
    towards = np.array([0.0, np.cos(np.radians(elevation_deg)), np.sin(np.radians(elevation_deg))])
    artery_axis = contact + towards * (nerve_r + artery_r)
    tube = ArteryTube(np.array([artery_axis, np.cross(towards, [1.0, 0.0, 0.0]), [0.0, 0.0, 0.0]]), (-3.0, 3.0), artery_r)
    approach = Approach(0.0, 0.0, 0.0, s_contact, contact + towards * nerve_r, contact + towards * nerve_r, tube,
                        s_contact, contact + towards * nerve_r)
    origin = np.array([-4.0, -4.0, -3.0])
    shape = tuple(int(n) for n in np.ceil((np.array([17.0, 4.0, 8.0]) - origin) / spacing))
    centres = np.stack(np.meshgrid(*[origin[k] + np.arange(shape[k]) * spacing for k in range(3)], indexing="ij"), -1)
    mask = (cKDTree(axis).query(centres.reshape(-1, 3))[0] <= nerve_r).reshape(shape)
    return course, approach, mask, LocalLabels(mask.astype(np.uint8), WorldGrid(tuple(origin), spacing, shape))


def _attached_nerve_with_artery(sideways_push_mm: float, elevation_deg: float, contact_x: float = 5.5):
    """(indentation, displacement) in mm of :func:`_attached_nerve_scene`, without and with the brainstem's surface normal."""
    course, approach, mask, local = _attached_nerve_scene(sideways_push_mm, elevation_deg, contact_x)
    normal = np.array([0.0, 0.0, 1.0])
    return deformation(course, approach, mask, local), deformation(course, approach, mask, local, normal)


def test_detachment_bend_is_not_displacement_of_an_attached_nerve():
    """Judged from its course 4-8 mm to either side (the root diving into the brainstem on one side, the nerve
    lifting off it on the other), the attached stretch near the detachment point seems pushed into the brainstem.
    An attached nerve can only be pushed along the surface: without the surface normal the bend reads as a
    displacement deformity (>= 0.5 mm); with it, it does not, while a push along the surface is still measured."""
    (_, bend_without_normal), (_, bend_with_normal) = _attached_nerve_with_artery(0.0, 70.0)
    assert bend_without_normal >= 0.5
    assert bend_with_normal < 0.1
    _, (_, pushed) = _attached_nerve_with_artery(0.8, 0.0)
    assert 0.65 < pushed < 0.9


def test_detachment_bend_is_not_displacement_in_the_transition_zone():
    """Just beyond the detachment point the nerve's course still bends off the surface; a contact there (1.5 mm
    beyond it, in the transition zone) judged against the course to either side reads as displaced. In the root
    exit zone only the push along the brainstem surface counts, so it stays a contact."""
    from nvc_mri.config import load_config
    from nvc_mri.measure.study import _relation
    from nvc_mri.measure.fields import DistanceField

    course, approach, mask, local = _attached_nerve_scene(0.0, 70.0, contact_x=7.5)
    assert deformation(course, approach, mask, local)[1] >= 0.5  # the bend, judged without the surface
    origin = np.asarray(local.grid.origin)
    heights = origin[2] + np.arange(mask.shape[2]) * local.spacing  # flat brainstem: signed distance = z
    brainstem = DistanceField(np.broadcast_to(heights, mask.shape).astype(np.float32), origin, local.spacing)
    cfg = load_config("contact.yaml")
    relation = _relation(course, approach, mask, local, None, cfg, True, None, brainstem)
    assert relation.segment == "transition_zone"
    assert relation.severity == "contact" and relation.displacement_mm < 0.1
    _, (_, pushed) = _attached_nerve_with_artery(0.8, 0.0, contact_x=7.5)
    assert pushed > 0.5  # a push along the surface there is still a displacement


def test_displacement_is_measured_across_the_nerve_when_the_arterys_nearest_voxel_lies_along_it():
    """A cisternal nerve pushed 1 mm sideways (Gaussian, sd 1.5 mm) by an artery crossing it. The artery voxel
    nearest the nerve need not face the contact's centreline point: here it lies 0.6 mm further along the nerve.
    The push is measured across the nerve, so that offset does not shrink it (taken straight from the axis to that
    voxel, the direction tilts along the nerve and the push read 0.74 mm, a contact rather than a deformity)."""
    from nvc_mri.measure.fields import LocalLabels
    from nvc_mri.io.grid import WorldGrid

    nerve_r, artery_r, spacing, push = 0.6, 0.8, 0.25, 1.0
    x = np.arange(0.0, 20.0, 0.05)
    axis = np.stack([x, -push * np.exp(-0.5 * ((x - 10.0) / 1.5) ** 2), np.zeros_like(x)], 1)
    arc = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(axis, axis=0), axis=1))]
    course = NerveCourse(axis, arc, nerve_r, 0.0)
    s_contact = float(np.interp(10.0, x, arc))
    contact = course.point_at(s_contact) + [0.0, nerve_r, 0.0]
    tube = ArteryTube(np.array([contact + [0.0, artery_r, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]), (-3.0, 3.0), artery_r)
    origin = np.array([-1.0, -3.0, -2.0])
    shape = tuple(int(n) for n in np.ceil((np.array([21.0, 2.0, 2.0]) - origin) / spacing))
    centres = np.stack(np.meshgrid(*[origin[k] + np.arange(shape[k]) * spacing for k in range(3)], indexing="ij"), -1)
    mask = (cKDTree(axis).query(centres.reshape(-1, 3))[0] <= nerve_r).reshape(shape)
    local = LocalLabels(mask.astype(np.uint8), WorldGrid(tuple(origin), spacing, shape))
    displacements = []
    for along_mm in (0.0, 0.6):
        artery_voxel = contact + [along_mm, 0.1, 0.0]
        approach = Approach(0.0, 0.0, 0.0, s_contact, contact, artery_voxel, tube, s_contact, contact)
        displacements.append(deformation(course, approach, mask, local)[1])
    assert 0.9 < displacements[0] < 1.05
    assert abs(displacements[1] - displacements[0]) < 0.02


def _nerve_pressed_at_its_root(depth: float, model_indentation: float, spacing: float = 0.25):
    """A 0.6 mm nerve lying on a flat brainstem (surface z = 0, its axis 0.8 radii above it, as the phantom draws
    it), whose label carries on 1 mm into the brainstem along its root (straight down at the root exit point);
    an artery of 0.8 mm radius presses on it from above there, ``depth`` mm deep. The approach's tube-model
    indentation is ``model_indentation``. Returns (course, approach, nerve mask, local grid, brainstem's signed distance)."""
    from nvc_mri.measure.fields import LocalLabels
    from nvc_mri.io.grid import WorldGrid

    nerve_r, artery_r = 0.6, 0.8
    height = 0.8 * nerve_r
    root = np.stack([np.zeros(31), np.zeros(31), np.linspace(-1.0, height, 31)], 1)
    lying = np.stack([np.arange(0.0, 10.0, 0.05), np.zeros(200), np.full(200, height)], 1)
    # the centreline the labels give follows the nerve along the surface (it cannot resolve the root's bend)
    course = NerveCourse(lying, lying[:, 0], nerve_r, 6.0)
    artery_axis = np.array([0.0, 0.0, height + nerve_r + artery_r - depth])  # crossing along y over the root
    tube = ArteryTube(np.array([artery_axis, [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]), (-3.0, 3.0), artery_r)
    approach = Approach(0.0, 0.0, model_indentation, 0.0, lying[0] + [0.0, 0.0, nerve_r], artery_axis - [0.0, 0.0, artery_r], tube,
                        0.0, lying[0] + [0.0, 0.0, nerve_r])
    axis = np.vstack([root, lying])
    origin = np.array([-3.0, -3.0, -3.0])
    shape = tuple(int(n) for n in np.ceil((np.array([11.0, 3.0, 4.0]) - origin) / spacing))
    centres = np.stack(np.meshgrid(*[origin[k] + np.arange(shape[k]) * spacing for k in range(3)], indexing="ij"), -1)
    flat = centres.reshape(-1, 3)
    in_artery = np.linalg.norm((flat - artery_axis)[:, [0, 2]], axis=1) <= artery_r
    mask = ((cKDTree(axis).query(flat)[0] <= nerve_r) & ~in_artery).reshape(shape)
    local = LocalLabels(mask.astype(np.uint8), WorldGrid(tuple(origin), spacing, shape))

    def brainstem_sdf(points):
        return np.atleast_2d(points)[:, 2]

    return course, approach, mask, local, brainstem_sdf


def test_indentation_at_the_root_exit_point_is_judged_outside_the_brainstem():
    """Rays through a nerve pressed on at its root exit point (:func:`_nerve_pressed_at_its_root`, 0.4 mm deep) find
    its far side at the bottom of the root, deep in the brainstem, unless the labels more than half a voxel of the
    0.25 mm measuring grid inside the brainstem are left out."""
    from nvc_mri.measure.contact import far_side_indentation
    from nvc_mri.measure.nerve import extra_axial

    course, approach, mask, local, brainstem_sdf = _nerve_pressed_at_its_root(0.4, 0.4)
    whole = far_side_indentation(course, approach, mask, local)
    outside = far_side_indentation(course, approach, extra_axial(mask, local, brainstem_sdf, 0.125), local)
    assert whole < 0.1
    assert abs(outside - 0.4) < 0.1


def test_indentation_is_the_mean_of_the_tube_model_and_the_far_side():
    """The two estimates place the nerve's axis differently and err apart; the reported indentation is their mean.
    With the tube model reading 0.3 mm too deep (0.7 against 0.4), the result is halfway."""
    from nvc_mri.measure.contact import far_side_indentation
    from nvc_mri.measure.nerve import extra_axial

    course, approach, mask, local, brainstem_sdf = _nerve_pressed_at_its_root(0.4, 0.7)
    outside = extra_axial(mask, local, brainstem_sdf, 0.125)
    far_side = far_side_indentation(course, approach, outside, local)
    indentation, _ = deformation(course, approach, outside, local)
    assert abs(far_side - 0.4) < 0.1
    assert indentation == pytest.approx((far_side + 0.7) / 2)
    assert abs(indentation - 0.55) < 0.06


def test_of_two_arteries_touching_the_nerve_the_one_in_the_root_exit_zone_is_the_conflict():
    """An AICA loop touching the cisternal nerve and a PICA touching its attached segment: both gaps are 0, and the
    conflict (NVC) is the one in the root exit zone, whichever comes first."""
    from nvc_mri.config import load_config
    from nvc_mri.measure.study import _conflict
    from nvc_mri.measure.findings import ArteryRelation

    def touching(vessel: str, s_mm: float, segment: str) -> ArteryRelation:
        return ArteryRelation(vessel=vessel, vessel_confidence=0.9, vessel_reason="test", min_gap_mm=0.0, voxel_gap_mm=0.0,
                              indentation_mm=0.1, displacement_mm=0.0, contact_point_ras_mm=[s_mm, 0.0, 0.0],
                              distance_from_root_exit_mm=s_mm, segment=segment, severity="contact")

    s = np.arange(0.0, 20.0, 0.1)
    course = NerveCourse(np.stack([s, 0 * s, 0 * s], 1), s, 0.6, 5.0)
    cisternal, attached = touching("AICA", 12.0, "cisternal"), touching("PICA", 3.0, "attached_segment")
    cfg = load_config("contact.yaml")
    for relations in ([cisternal, attached], [attached, cisternal]):
        conflict = _conflict(relations, course, cfg, with_segment=True)
        assert conflict.nvc and conflict.vessel == "PICA" and conflict.segment == "attached_segment"
    assert not _conflict([cisternal], course, cfg, with_segment=True).nvc


def test_box_prefilter_keeps_every_pair_of_pieces_within_reach():
    """Joining artery fragments queries only pairs whose bounding boxes come within reach (on the labels of a real
    whole-head T2 this took the vessel step from 107 s to 4 s); no pair whose points are within reach is lost."""
    rng = np.random.default_rng(0)
    points = {vid: rng.uniform(0, 40, 3) + rng.normal(0, 1.5, (int(rng.integers(1, 30)), 3)) for vid in range(10, 70)}
    near = _boxes_within(points, 2.0)
    within = {(a, b) for a in points for b in points
              if a != b and cKDTree(points[b]).query(points[a], distance_upper_bound=2.0 + 1e-6)[0].min() <= 2.0}
    assert within and within <= near
    assert len(near) < len(points) * (len(points) - 1) // 4  # and it prunes most pairs
