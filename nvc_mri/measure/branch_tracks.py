"""Following arteries through the places where they touch, on the skeleton of the artery label.

Two branches that touch or cross (an AICA looping across a PICA) make one piece of label with
two origins on the trunk. Split by the nearest origin along the piece, the far part of one
branch goes to the other whenever the crossing is nearer that other origin. Vessels run
nearly straight through a crossing, so each branch is followed from its origin along the
piece's skeleton and, at every junction, into the arm that bends least.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse.csgraph import connected_components
from skimage.morphology import skeletonize

from nvc_mri.measure.nerve import voxel_graph

CROSSING_MM = 2.0   # junctions joined by a skeleton stretch shorter than this are one crossing
SPUR_MM = 2.0       # a loose-ended skeleton stretch shorter than this is a bump on the label, not a vessel
DIRECTION_MM = 3.0  # a stretch's direction is taken over this length from its end
ARRIVAL_MM = 6.0    # a course's direction into a crossing is taken over this length of it


@dataclass(frozen=True)
class Stretch:
    """Skeleton voxels between two junctions (or a junction and a free end), in order."""

    voxels: np.ndarray          # (n, 3) voxel indices
    ends: tuple[int, int]       # crossing id at the first and last voxel, -1 for a free end

    def direction_from(self, end: int, spacing: float) -> np.ndarray:
        """Unit vector leaving the stretch's ``end`` (0 first, 1 last) along it."""
        return _heading(self.voxels if end == 0 else self.voxels[::-1], DIRECTION_MM, spacing)


def _heading(path: np.ndarray, length_mm: float, spacing: float) -> np.ndarray:
    """Unit vector from a voxel path's first voxel to the one ``length_mm`` along it (or its last)."""
    d = (path[min(len(path) - 1, int(length_mm / spacing))] - path[0]).astype(float)
    return d / max(np.linalg.norm(d), 1e-9)


def skeleton_stretches(mask: np.ndarray, spacing: float) -> list[Stretch]:
    """The skeleton of ``mask`` cut at its junctions (voxels with 3 or more neighbours).

    Neighbouring junction voxels, and junctions joined by a stretch shorter than ``CROSSING_MM``,
    are one crossing; those short stretches are left out.
    """
    index = np.argwhere(skeletonize(mask))
    if len(index) < 2:
        return []
    graph = voxel_graph(index, spacing)
    graph = (graph + graph.T).tocsr()
    junction = np.diff(graph.indptr) >= 3
    crossing = _junction_clusters(graph, junction)
    # a voxel between two junctions (next to both) joins them into one
    between = [v for v in np.flatnonzero(~junction) if len({crossing[j] for j in _neighbours(graph, v)} - {-1}) >= 2]
    if between:
        junction[between] = True
        crossing = _junction_clusters(graph, junction)
    plain = np.flatnonzero(~junction)
    n_stretch, member_of = connected_components(graph[plain][:, plain], directed=False)
    stretch_of = np.full(len(index), -1)
    stretch_of[plain] = member_of
    stretches = []
    for s in range(n_stretch):
        order = _walk(graph, np.flatnonzero(stretch_of == s), stretch_of, s)
        ends = tuple(max((crossing[j] for j in _neighbours(graph, v)), default=-1) for v in (order[0], order[-1]))
        stretches.append(Stretch(index[order], ends))
    return _merge_close_junctions(stretches, spacing)


def _neighbours(graph, v: int) -> np.ndarray:
    return graph.indices[graph.indptr[v]:graph.indptr[v + 1]]


def _junction_clusters(graph, junction: np.ndarray) -> np.ndarray:
    """Cluster id of each junction voxel (neighbouring junction voxels are one cluster), -1 elsewhere."""
    crossing = np.full(len(junction), -1)
    crossing[junction] = connected_components(graph[junction][:, junction], directed=False)[1]
    return crossing


def _walk(graph, members: np.ndarray, stretch_of: np.ndarray, s: int) -> list[int]:
    """Members of a junction-free skeleton stretch in order along it, from an end."""
    degree_inside = [sum(stretch_of[j] == s for j in _neighbours(graph, v)) for v in members]
    order, seen = [int(members[int(np.argmin(degree_inside))])], set()
    seen.add(order[0])
    while True:
        step = [j for j in _neighbours(graph, order[-1]) if stretch_of[j] == s and j not in seen]
        if not step:
            return order
        order.append(int(step[0]))
        seen.add(order[-1])


def _merge_close_junctions(stretches: list[Stretch], spacing: float) -> list[Stretch]:
    """Stretches without those shorter than ``CROSSING_MM`` between two junctions, whose junctions become one crossing."""
    parent: dict[int, int] = {}

    def root(c: int) -> int:
        while parent.get(c, c) != c:
            c = parent[c]
        return c

    kept = []
    for s in stretches:
        if min(s.ends) >= 0 and len(s.voxels) * spacing < CROSSING_MM:
            parent[root(s.ends[0])] = root(s.ends[1])
        else:
            kept.append(s)
    return [Stretch(s.voxels, tuple(root(e) if e >= 0 else -1 for e in s.ends)) for s in kept]


def follow_branches(piece: np.ndarray, origins: list[np.ndarray], spacing: float) -> list[np.ndarray] | None:
    """Voxels (index arrays) of each branch's course through ``piece``, one per origin, origin included.

    Each course starts on the skeleton stretch nearest its origin and goes on, at every crossing,
    into the stretch whose direction differs least from the one it arrives in. A stretch two courses
    enter goes to the one that bends less into it; one both start on (two branches joined end to end)
    to neither, so the piece is split along it as between the origins. None when the piece has no
    usable skeleton.
    """
    stretches = skeleton_stretches(piece, spacing)
    if not stretches:
        return None
    meeting: dict[int, list[tuple[int, int]]] = {}
    for k, s in enumerate(stretches):
        for end, c in enumerate(s.ends):
            if c >= 0:
                meeting.setdefault(c, []).append((k, end))
    claims: dict[int, tuple[int, float]] = {}
    for b, origin in enumerate(origins):
        for k, straightness in _course(stretches, meeting, origin.mean(0), spacing):
            if k not in claims or straightness > claims[k][1]:
                claims[k] = (b, straightness)
            elif straightness == claims[k][1]:
                claims[k] = (-1, straightness)
    courses = [[origin] for origin in origins]
    for k, (b, _) in claims.items():
        if b >= 0:
            courses[b].append(stretches[k].voxels)
    return [np.concatenate(c) for c in courses]


def _course(stretches: list[Stretch], meeting: dict, start: np.ndarray, spacing: float) -> list[tuple[int, float]]:
    """Stretches a branch runs along from voxel ``start``, each with the cosine of its bend into it (1 for the first)."""
    k = min(range(len(stretches)), key=lambda i: np.linalg.norm(stretches[i].voxels - start, axis=1).min())
    first = stretches[k].voxels
    leave = 1 if np.linalg.norm(first[0] - start) <= np.linalg.norm(first[-1] - start) else 0
    course, taken = [(k, 1.0)], {k}
    travelled = [first if leave == 1 else first[::-1]]
    while stretches[k].ends[leave] >= 0:
        arriving = _arriving_direction(np.concatenate(travelled), spacing)
        options = [(float(arriving @ stretches[j].direction_from(end, spacing)), j, end)
                   for j, end in meeting[stretches[k].ends[leave]]
                   if j not in taken and not _is_spur(stretches[j], spacing)]
        if not options:
            break
        cosine, k, end = max(options)
        course.append((k, cosine))
        taken.add(k)
        travelled.append(stretches[k].voxels if end == 0 else stretches[k].voxels[::-1])
        leave = 1 - end
    return course


def _arriving_direction(path: np.ndarray, spacing: float) -> np.ndarray:
    """Unit direction of the last ``ARRIVAL_MM`` of a course (voxel path in travel order): through a crossing
    that the skeleton draws as two junctions and a short bridge, the direction before the bridge."""
    return -_heading(path[::-1], ARRIVAL_MM, spacing)


def _is_spur(stretch: Stretch, spacing: float) -> bool:
    return min(stretch.ends) < 0 and len(stretch.voxels) * spacing < SPUR_MM
