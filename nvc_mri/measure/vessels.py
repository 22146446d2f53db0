"""The artery tree split into named vessels: vertebral (VA), basilar (BA), and their branches.

Trunk and branches are told apart by calibre: the trunk is what a ball of ``trunk_radius_mm``
fits in (a morphological opening by an exact ball on the vessel grid); branches are the
rest. The vertebrobasilar junction (VBJ) is where the two vertebral arteries' paths along the
trunk join; the trunk beyond it is VA, the rest BA. A branch is named by where it leaves the
trunk: below the VBJ (from a VA) it is a PICA, above it (from the BA) an AICA, unless it arises
high on the BA (superior cerebellar territory, named ``unknown``). Two branches touching each
other make one piece with two origins; each is followed from its origin straight through the
place they touch (:mod:`nvc_mri.measure.branch_tracks`) and the piece is split between the two
courses. Pieces of a branch broken in the image take its name; a branch broken right at its origin
arises where its end lies within ``fragment_bridge_mm`` of the trunk. Pieces cut off from the
trunk are linked into chains: a chain reaching ``unjoined_pica_below_vbj_mm`` below the junction
is taken as a PICA's caudal loop (an AICA's course stays higher, around the internal auditory
canal) and continues only a PICA; a chain joined to nothing named is named by how low it reaches.
The VBJ and a branch's origin are each located to within a few mm, so a branch counts as
arising from a VA only ``pica_below_vbj_mm`` below the junction (``configs/contact.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from nibabel.affines import apply_affine
from scipy import ndimage
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree

from nvc_mri.config import load_config
from nvc_mri.measure.branch_tracks import follow_branches
from nvc_mri.measure.fields import local_labels
from nvc_mri.measure.nerve import voxel_graph

GRID_MM = 0.5
SECOND_VERTEBRAL_MIN_MM = 8.0  # a trunk limb this long (mm, along the trunk) beside the first path is the other vertebral artery


@dataclass(frozen=True)
class Vessel:
    """One named piece of the artery tree (voxels on the vessel grid)."""

    id: int
    name: str                 # AICA, PICA, VA, BA or unknown
    confidence: float
    origin_ras_mm: list[float] | None  # where a branch leaves the trunk
    reason: str


@dataclass(frozen=True)
class VesselMap:
    """Vessel id per voxel of an isotropic RAS grid covering the arteries, and the vessels."""

    ids: np.ndarray           # int32, 0 = no artery
    origin: np.ndarray        # RAS+ mm of voxel (0,0,0)
    spacing: float
    vessels: dict[int, Vessel]
    vbj_z_mm: float | None

    @cached_property
    def _voxels(self) -> tuple[np.ndarray, cKDTree | None]:
        idx = np.argwhere(self.ids > 0)
        return idx, cKDTree(idx * self.spacing + self.origin) if len(idx) else None

    def vessel_at(self, points_mm: np.ndarray) -> np.ndarray:
        """Vessel id of the nearest artery voxel for each RAS+ mm point (0 when none within 1.5 mm)."""
        idx, tree = self._voxels
        if tree is None:
            return np.zeros(len(points_mm), int)
        distance, nearest = tree.query(points_mm)
        out = self.ids[tuple(idx[nearest].T)]
        return np.where(distance <= 1.5, out, 0)


def _ball(radius_voxels: float, closed: bool) -> np.ndarray:
    """Voxel offsets within ``radius_voxels`` of the centre (``<=`` when ``closed``, else ``<``)."""
    r = int(np.ceil(radius_voxels))
    distance = np.linalg.norm(np.indices((2 * r + 1,) * 3) - r, axis=0)
    return distance <= radius_voxels if closed else distance < radius_voxels


def _opening(mask: np.ndarray, radius_mm: float, spacing: float) -> np.ndarray:
    """Morphological opening by a ball of ``radius_mm``: the voxels a ball of that radius fits in (exact on voxel centres).

    Erosion keeps the voxels with no outside voxel closer than the radius; dilation then takes every
    voxel within the radius of one kept. The volume's edge does not erode.
    """
    core = ndimage.binary_erosion(mask, structure=_ball(radius_mm / spacing, closed=False), border_value=1)
    if not core.any():
        return core
    return ndimage.binary_dilation(core, structure=_ball(radius_mm / spacing, closed=True))


def _drop_small_pieces(mask: np.ndarray, min_voxels: float) -> np.ndarray:
    """``mask`` without its 26-connected pieces smaller than ``min_voxels``.

    Where two branches cross or a branch bulges, the opening leaves a few mm3 of "trunk";
    branches touching it would take it for their origin.
    """
    pieces, _ = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    sizes = np.bincount(pieces.ravel())
    return mask & (sizes >= min_voxels)[pieces]


def _vertebrobasilar_junction(trunk: np.ndarray, spacing: float, origin_z: float) -> tuple[float | None, np.ndarray | None]:
    """The junction's axial level (RAS z, mm) and the vertebral arteries' part of the trunk (mask, or None).

    Followed along the trunk from the basilar artery's top: the path to the lowest point of one
    vertebral artery, and the end of the trunk farthest (along the trunk) from that path, the
    other vertebral artery, whose path joins the first at the junction. The vertebral arteries are
    the trunk farther from the top than the junction, so one that loops up beside the basilar
    artery stays vertebral and does not move the junction. When the second vertebral artery is not
    joined to the trunk in the image: the highest level where the trunk is two vessels at least
    3 mm apart, and no mask. Trunk pieces not joined to the basilar artery are vertebral below the junction.
    """
    index = np.argwhere(trunk)
    if len(index) == 0:
        return None, None
    pieces, _ = ndimage.label(trunk, structure=np.ones((3, 3, 3)))
    main = pieces == pieces[tuple(index[np.argmax(index[:, 2])])]
    index = np.argwhere(main)
    graph = voxel_graph(index, spacing)
    from_top, towards_top = dijkstra(graph, directed=False, indices=int(np.argmax(index[:, 2])), return_predecessors=True)
    path = [int(np.argmin(index[:, 2]))]  # the piece is connected: every voxel is reached
    while towards_top[path[-1]] >= 0:
        path.append(int(towards_top[path[-1]]))
    from_path, _, joins_at = dijkstra(graph, directed=False, indices=path, min_only=True, return_predecessors=True)
    other = int(np.argmax(from_path))
    if from_path[other] < SECOND_VERTEBRAL_MIN_MM:
        return _two_vessel_level(trunk, spacing, origin_z), None
    junction = int(joins_at[other])
    level = origin_z + float(index[junction, 2]) * spacing
    vertebral = trunk & ~main & (origin_z + np.arange(trunk.shape[2]) * spacing <= level)  # pieces apart: by level
    vertebral[tuple(index[from_top > from_top[junction]].T)] = True
    return level, vertebral


def _two_vessel_level(trunk: np.ndarray, spacing: float, origin_z: float) -> float | None:
    """Highest axial level (RAS z, mm) where the trunk is two vessels at least 3 mm apart."""
    levels = []
    for k in range(trunk.shape[2]):
        labelled, n = ndimage.label(trunk[:, :, k])
        if n >= 2:
            centres = ndimage.center_of_mass(trunk[:, :, k], labelled, range(1, n + 1))
            sizes = ndimage.sum(trunk[:, :, k], labelled, range(1, n + 1))
            big = [c for c, s in zip(centres, sizes) if s * spacing**2 >= 1.5]
            if len(big) >= 2 and abs(big[0][0] - big[1][0]) * spacing >= 3.0:
                levels.append(k)
    if not levels:
        return None
    return origin_z + max(levels) * spacing


def _ends_there(piece: np.ndarray, place: np.ndarray) -> bool:
    """Whether a vessel piece ends at ``place``: cutting 1.5 mm around it leaves at most one piece (of 1 mm3 or more)."""
    cut = piece & ~ndimage.binary_dilation(place, iterations=3)
    parts, _ = ndimage.label(cut, structure=np.ones((3, 3, 3)))
    return int((np.bincount(parts.ravel())[1:] * GRID_MM**3 >= 1.0).sum()) <= 1


def _origins(piece: np.ndarray, touch: np.ndarray) -> list[np.ndarray]:
    """Voxel index arrays of the places where a branch leaves the trunk, out of all the places it touches it.

    A branch also touches the trunk where it merely runs alongside it (an AICA looping past a
    vertebral artery). It ends where it arises: cutting the branch there leaves one piece, while
    cutting it mid-course leaves two. Every touching place that ends the branch is an origin
    (two branches that touch each other make one piece with two origins); when none ends it,
    the largest touching place.
    """
    clusters, n = ndimage.label(touch, structure=np.ones((3, 3, 3)))
    if n <= 1:
        return [np.argwhere(touch)]
    ends = [c for c in range(1, n + 1) if _ends_there(piece, clusters == c)]
    if not ends:
        sizes = ndimage.sum(touch, clusters, range(1, n + 1))
        ends = [int(np.argmax(sizes)) + 1]
    return [np.argwhere(clusters == c) for c in ends]


def _split_by_course(piece: np.ndarray, courses: list[np.ndarray]) -> np.ndarray:
    """Which course (index into ``courses``, voxel index arrays) each voxel of ``piece`` is nearest to along the piece (int array, -1 outside)."""
    index = np.argwhere(piece)
    node = np.full(piece.shape, -1, np.int64)
    node[tuple(index.T)] = np.arange(len(index))
    sources = np.concatenate([node[tuple(c.T)] for c in courses])
    source_course = np.full(len(index), -1)
    source_course[sources] = np.concatenate([np.full(len(c), k) for k, c in enumerate(courses)])
    _, _, nearest = dijkstra(voxel_graph(index, GRID_MM), directed=False, indices=sources, min_only=True, return_predecessors=True)
    owner = np.full(piece.shape, -1)
    owner[tuple(index.T)] = np.where(nearest >= 0, source_course[np.maximum(nearest, 0)], 0)
    return owner


def _branch(vid: int, origin_mm: np.ndarray, vbj: float, cfg: dict) -> Vessel:
    """A branch named by where it leaves the trunk relative to the vertebrobasilar junction (module docstring)."""
    above = float(origin_mm[2] - vbj)
    margin = above + cfg["pica_below_vbj_mm"]
    confidence = float(min(0.95, 0.5 + abs(margin) / 6.0))
    if margin < 0:
        name, reason = "PICA", f"arises from a vertebral artery {abs(above):.1f} mm below the vertebrobasilar junction"
    elif above <= cfg["sca_above_vbj_mm"]:
        name, reason = "AICA", f"arises from the basilar artery {above:.1f} mm above the vertebrobasilar junction"
    else:
        name, reason, confidence = "unknown", f"arises high on the basilar artery ({above:.0f} mm above the junction)", 0.5
    return Vessel(vid, name, confidence, [float(v) for v in origin_mm], reason)


def name_vessels(labels: np.ndarray, affine: np.ndarray, artery_value: int, config: dict | None = None) -> VesselMap:
    """Split the artery label into trunk pieces and branches and name each (see module docstring).

    Parameters
    ----------
    labels : ndarray of int
        Label map on any grid; ``affine`` maps its voxels to RAS+ mm.
    artery_value : int
        Label value of arteries.
    config : dict, optional
        Thresholds (default ``configs/contact.yaml``).
    """
    cfg = config or load_config("contact.yaml")
    mask_native = labels == artery_value
    if not mask_native.any():
        return VesselMap(np.zeros((1, 1, 1), np.int32), np.zeros(3), GRID_MM, {}, None)
    world = apply_affine(affine, np.argwhere(mask_native))
    lower, upper = world.min(0) - 2, world.max(0) + 2
    local = local_labels(mask_native.astype(np.uint8), affine, lower, upper, GRID_MM)
    artery = local.labels == 1
    trunk = _drop_small_pieces(_opening(artery, cfg["trunk_radius_mm"], GRID_MM) & artery, cfg["trunk_min_volume_mm3"] / GRID_MM**3)
    origin = np.asarray(local.grid.origin)
    vbj, vertebral = _vertebrobasilar_junction(trunk, GRID_MM, origin[2])
    grown = ndimage.binary_dilation(trunk, iterations=1)
    branches, n = ndimage.label(artery & ~grown, structure=np.ones((3, 3, 3)))
    ids = np.zeros(artery.shape, np.int32)
    vessels: dict[int, Vessel] = {}
    # trunk: VA below the junction, BA above
    z = origin[2] + np.arange(artery.shape[2]) * GRID_MM
    if trunk.any():
        if vbj is None:
            ids[trunk] = 1
            vessels[1] = Vessel(1, "BA", 0.4, None, "trunk; vertebrobasilar junction not in view")
        else:
            below = vertebral if vertebral is not None else trunk & (z[None, None, :] <= vbj)
            ids[below] = 1
            ids[trunk & ~below] = 2
            vessels[1] = Vessel(1, "VA", 0.9, None, "trunk below the vertebrobasilar junction")
            vessels[2] = Vessel(2, "BA", 0.9, None, "trunk above the vertebrobasilar junction")
    touching = ndimage.binary_dilation(grown, iterations=1)
    trunk_tree = cKDTree(np.argwhere(trunk) * GRID_MM) if trunk.any() else None
    for b, box in enumerate(ndimage.find_objects(branches), start=1):
        if box is None:
            continue
        piece = branches[box] == b
        corner = np.array([s.start for s in box])
        vid = 10 + b
        ids[box][piece] = vid
        join = np.argwhere(piece & touching[box]) + corner
        if len(join) == 0 or vbj is None:
            source = None if vbj is None else _origin_across_gap(piece, corner, trunk_tree, cfg["fragment_bridge_mm"])
            if vbj is None:
                vessels[vid] = Vessel(vid, "unknown", 0.0, None, "branch not joined to the trunk; junction not in view")
            elif source is not None:
                named = _branch(vid, source[0] + origin, vbj, cfg)
                vessels[vid] = Vessel(vid, named.name, round(named.confidence * 0.8, 2), named.origin_ras_mm,
                                      f"{named.reason}, across a {source[1]:.1f} mm gap in the image")
            else:  # named by how low its chain of pieces reaches, once the pieces continuing named branches are known
                vessels[vid] = Vessel(vid, "unknown", 0.0, None, "branch not joined to the trunk in the image")
            continue
        origins = _origins(piece, piece & touching[box])
        owner = None
        if len(origins) > 1:
            owner = _split_by_course(piece, follow_branches(piece, origins, GRID_MM) or origins)
        for k, place in enumerate(origins):
            if k > 0:  # a second branch in the same piece: ids after all the pieces'
                vid = 10 + n + len(vessels)
                ids[box][owner == k] = vid
            vessels[vid] = _branch(vid, place.mean(0) * GRID_MM + origin + corner * GRID_MM, vbj, cfg)
    junction = None if vbj is None else (vbj - origin[2], cfg["unjoined_pica_below_vbj_mm"])
    _name_fragments(ids, vessels, cfg["fragment_bridge_mm"], junction)
    return VesselMap(ids, origin, GRID_MM, vessels, vbj)


def _ends_near(piece: np.ndarray, fragment_mm: np.ndarray) -> bool:
    """Whether ``piece`` (mask on the vessel grid) ends at its point closest to ``fragment_mm`` (mm in the same frame)."""
    index = np.argwhere(piece)
    return _ends_at_voxel(piece, index[int(np.argmin(cKDTree(fragment_mm).query(index * GRID_MM)[0]))])


def _ends_at_voxel(piece: np.ndarray, voxel: np.ndarray) -> bool:
    """:func:`_ends_there` at one voxel index of ``piece``."""
    place = np.zeros_like(piece)
    place[tuple(voxel)] = True
    return _ends_there(piece, place)


def _origin_across_gap(piece: np.ndarray, corner: np.ndarray, trunk_tree: cKDTree | None,
                       bridge_mm: float) -> tuple[np.ndarray, float] | None:
    """Where a branch piece not joined to the trunk arises from it across a gap: (trunk point, gap in mm) or None.

    A thin branch on thick slices can break right at its origin. A piece that ends within
    ``bridge_mm`` of the trunk (its end nearest the trunk; a branch merely running past does not end
    there) arises at the trunk point nearest that end. ``corner``: the piece's box in the vessel grid;
    points in mm from the grid's origin.
    """
    if trunk_tree is None:
        return None
    index = np.argwhere(piece)
    distance, nearest = trunk_tree.query((index + corner) * GRID_MM, distance_upper_bound=bridge_mm + GRID_MM)
    k = int(np.argmin(distance))
    if not np.isfinite(distance[k]):
        return None
    if not _ends_at_voxel(piece, index[k]):
        return None
    return trunk_tree.data[nearest[k]], max(float(distance[k]) - GRID_MM, 0.0)


def _name_fragments(ids: np.ndarray, vessels: dict[int, Vessel], bridge_mm: float,
                    junction: tuple[float, float] | None = None) -> None:
    """Give a branch piece not joined to the trunk the name of the joined branch it continues.

    A thin branch on thick slices breaks into pieces; the piece near the nerve is then cut off
    from its origin. A piece within ``bridge_mm`` of a branch whose origin is known (directly or
    through other pieces) and ending there is taken as its continuation (a branch merely running
    past does not end there).

    With ``junction`` (the junction's z in mm from the vessel grid's first slice, and
    ``unjoined_pica_below_vbj_mm``), the pieces not joined to the trunk are first linked into chains
    (pieces within ``bridge_mm`` of each other). A chain reaching that far below the junction is a
    PICA's loop down from the nerve and continues only a PICA, not an AICA or another branch it
    passes close to; a chain joined to nothing is named by how low it reaches.
    """
    pending = [vid for vid, v in vessels.items() if vid >= 10 and v.origin_ras_mm is None]  # branches not joined to the trunk
    if not pending:
        return
    boxes = ndimage.find_objects(ids)
    margin = 4  # voxels around a piece's box: room for the 1.5 mm cut in _ends_there

    def crop(vid: int) -> tuple[tuple[slice, ...], np.ndarray]:
        box = tuple(slice(max(b.start - margin, 0), min(b.stop + margin, n)) for b, n in zip(boxes[vid - 1], ids.shape))
        return box, np.array([b.start for b in box])

    points = {}
    for vid in vessels:
        if vid >= 10 and vid <= len(boxes) and boxes[vid - 1] is not None:
            box, corner = crop(vid)
            points[vid] = (np.argwhere(ids[box] == vid) + corner) * GRID_MM
    named = [vid for vid in points if vessels[vid].origin_ras_mm is not None]
    pending = [vid for vid in pending if vid in points]
    trees = {vid: cKDTree(points[vid]) for vid in named}
    origin_reason = {vid: vessels[vid].reason for vid in named}
    reach = bridge_mm + GRID_MM
    caudal: set[int] = set()  # pieces of chains looping far below the junction
    if junction is not None:
        for chain in _chains({vid: points[vid] for vid in pending}, reach):
            if min(points[vid][:, 2].min() for vid in chain) < junction[0] - junction[1]:
                caudal.update(chain)
    gaps: dict[tuple[int, int], float] = {}   # (piece, named branch) -> mm, for every pair looked at
    close: dict[tuple[int, int], float] = {}  # the pairs within reach
    ends: dict[tuple[int, int], bool] = {}
    box_near = _boxes_within(points, reach)

    def continues(vid: int, other: int) -> bool:
        if (vid, other) not in ends:
            box, corner = crop(other)
            ends[vid, other] = _ends_near(ids[box] == other, points[vid] - corner * GRID_MM)
        return ends[vid, other]

    # the closest joins first, so a piece continues its nearest neighbour along the chain of pieces,
    # not a branch that happened to be named before that neighbour was
    while pending:
        for vid in pending:
            for other in named:
                if (vid, other) not in gaps:
                    gaps[vid, other] = (float(trees[other].query(points[vid], distance_upper_bound=reach + 1e-6)[0].min())
                                        if (vid, other) in box_near else np.inf)
                    if gaps[vid, other] <= reach:
                        close[vid, other] = gaps[vid, other]
        candidates = sorted((gap, vid, other) for (vid, other), gap in close.items() if vid in pending)
        join = next(((gap, vid, other) for gap, vid, other in candidates
                     if (vid not in caudal or vessels[other].name == "PICA") and continues(vid, other)), None)
        if join is None:
            break
        gap, vid, other = join
        parent = vessels[other]
        origin_reason[vid] = origin_reason[other]
        vessels[vid] = Vessel(vid, parent.name, round(parent.confidence * 0.8, 2), parent.origin_ras_mm,
                              f"piece of a branch broken in the image ({gap:.1f} mm gap); that branch {origin_reason[vid]}")
        pending.remove(vid)
        named.append(vid)
        trees[vid] = cKDTree(points[vid])
    if junction is None:
        return
    for chain in _chains({vid: points[vid] for vid in pending}, reach):
        low = min(points[vid][:, 2].min() for vid in chain) - junction[0]
        guess = "PICA" if low < -junction[1] else "AICA"
        pieces = "it reaches" if len(chain) == 1 else f"its chain of {len(chain)} pieces reaches"
        for vid in chain:
            vessels[vid] = Vessel(vid, guess, 0.35, None,
                                  f"branch not joined to the trunk in the image; named by how low {pieces} ({low:.0f} mm from the junction)")


def _boxes_within(points: dict[int, np.ndarray], reach_mm: float) -> set[tuple[int, int]]:
    """The pairs of pieces (id -> voxel centres in mm), both orders, whose bounding boxes come within ``reach_mm``.

    The boxes' distance is a lower bound of their points' distance, so pairs farther apart need no point query
    (the labels of a whole head can hold a thousand artery pieces, and every pair would otherwise be queried).
    """
    vids = list(points)
    if not vids:
        return set()
    lower = np.array([points[vid].min(0) for vid in vids])
    upper = np.array([points[vid].max(0) for vid in vids])
    apart = np.maximum(np.maximum(lower[:, None] - upper[None], lower[None] - upper[:, None]), 0.0)
    near = np.sqrt(np.sum(apart * apart, axis=2)) <= reach_mm + 1e-6
    return {(vids[a], vids[b]) for a, b in np.argwhere(near)}


def _chains(points: dict[int, np.ndarray], reach_mm: float) -> list[list[int]]:
    """Pieces (id -> voxel centres in mm) linked through gaps of at most ``reach_mm`` (centre to centre), chain by chain."""
    vids = list(points)
    trees = [cKDTree(points[vid]) for vid in vids]
    box_near = _boxes_within(points, reach_mm)
    near = np.zeros((len(vids), len(vids)), bool)
    for a in range(len(vids)):
        for b in range(a + 1, len(vids)):
            if (vids[a], vids[b]) in box_near:
                near[a, b] = np.isfinite(trees[b].query(points[vids[a]], distance_upper_bound=reach_mm + 1e-6)[0]).any()
    _, chain = connected_components(near, directed=False)
    return [[vid for vid, c in zip(vids, chain) if c == k] for k in np.unique(chain)]
