"""Label clean-up after the argmax: what the networks' probabilities alone get wrong, fixed with anatomy.

Each step is a plain function over a label array on the input grid (``affine``: voxel -> RAS+ mm), changed in
place and returned; its thresholds come from ``configs/model.yaml`` (``postprocess``). The order in which
:func:`nvc_mri.segment.inference.run_segmentation` applies them is described there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from nibabel.affines import apply_affine

from nvc_mri.io.grid import WorldGrid, covered_box, resample
from nvc_mri.io.volume import volume_centre_mm
from nvc_mri.labels import Label


def class_weights(config: dict[str, Any]) -> torch.Tensor:
    """Weight of each label's probability before the argmax (1 unless ``config['class_weights']`` names the label).

    The fine network under-labels the edges of the thin structures (a nerve or artery is a few voxels across in
    its patches): weighting their probabilities above the others' moves the label boundary outwards, to where
    the network gives them a lower probability, so labels reach the contacts and measured gaps are not too wide.
    """
    weights = torch.ones(len(Label))
    for name, weight in (config.get("class_weights") or {}).items():
        if name.upper() not in Label.__members__ or not isinstance(weight, (int, float)) or not weight > 0:
            raise ValueError(f"postprocess.class_weights: {name}: {weight} is not a label name with a positive weight "
                             f"(labels: {', '.join(label.name.lower() for label in Label)})")
        weights[Label[name.upper()]] = float(weight)
    return weights


def arteries_reaching_the_facial_nerve(labels: np.ndarray, artery: np.ndarray, background: np.ndarray,
                                       spacing_mm: np.ndarray, weight: float, reach_mm: float,
                                       min_artery_mm3: float) -> np.ndarray:
    """Carry arteries on towards the facial nerve through background the network half gives to artery (in place).

    A thin AICA or PICA where it meets the nerve is a few partial-volume voxels between two dark structures: the
    fine network gives them a small artery probability (on development phantoms a median of up to 0.14 of the
    likeliest other class's) while CSF beside the nerve gets almost none (at most 0.01-0.05 in 99% of its voxels).
    Labelled background, the artery stops 1-3 mm short of the nerve and a contact is missed. Here background
    voxels within ``reach_mm`` of the facial nerve's labels where ``weight`` x artery probability beats
    background's become artery, but only where they join (face-connected, through each other; specks may link
    them) an artery piece of at least ``min_artery_mm3``: a speck the clean-up would drop (e.g. half-seen nerve
    voxels beside a schwannoma) is no artery to carry on. Nerve and other labels are not changed.

    Parameters
    ----------
    labels : ndarray of uint8
        Labels after the argmax, changed in place.
    artery, background : ndarray
        The network's artery and background probabilities on the same grid (not weighted).
    spacing_mm : ndarray (3,)
        Voxel sides of the grid, mm.
    weight : float
        Artery's weight against background within reach; 1 or less changes nothing.
    reach_mm : float
        How far from the facial nerve's labels, mm.
    min_artery_mm3 : float
        Smallest artery piece (26-connected, before this step) that is carried on, mm3.

    Returns
    -------
    ndarray
        ``labels``.
    """
    from scipy import ndimage

    nerve = np.argwhere(labels == Label.FACIAL_NERVE)
    if weight <= 1.0 or reach_mm <= 0 or len(nerve) == 0:
        return labels
    margin = np.ceil(reach_mm / spacing_mm).astype(int) + 1
    box = tuple(slice(max(lo, 0), hi) for lo, hi in zip(nerve.min(0) - margin, nerve.max(0) + margin + 1))
    near = ndimage.distance_transform_edt(labels[box] != Label.FACIAL_NERVE, sampling=spacing_mm) <= reach_mm
    reaching = np.zeros(labels.shape, bool)
    reaching[box] = near & (labels[box] == Label.BACKGROUND) & (weight * artery[box] > background[box])
    artery_labels = labels == Label.ARTERY
    kept_artery = pieces_of_at_least(artery_labels, float(np.prod(spacing_mm)), min_artery_mm3)
    joined, _ = ndimage.label(reaching | artery_labels)
    starts = np.unique(joined[kept_artery])
    labels[reaching & np.isin(joined, starts[starts > 0])] = Label.ARTERY
    return labels


def keep_one_brainstem(labels: np.ndarray, affine: np.ndarray, max_midline_offset_mm: float) -> np.ndarray:
    """Set every brainstem voxel outside one 26-connected brainstem piece to background (in place).

    The brainstem is one midline organ: the piece kept is the largest whose centroid lies within
    ``max_midline_offset_mm`` (left-right, RAS x) of the volume's centre, or the largest piece when none does.
    A larger brainstem-like blob in a hemisphere (seen on whole-brain scans) is not it.
    """
    from scipy import ndimage

    pieces, n = ndimage.label(labels == Label.BRAINSTEM, structure=np.ones((3, 3, 3)))
    if n <= 1:
        return labels
    index = np.argwhere(pieces > 0)
    which = pieces[tuple(index.T)] - 1
    sizes = np.bincount(which, minlength=n)
    x_mm = index @ affine[0, :3] + affine[0, 3]
    offset = np.abs(np.bincount(which, x_mm, minlength=n) / sizes - volume_centre_mm(labels.shape, affine)[0])
    candidates = np.flatnonzero(offset <= max_midline_offset_mm)
    if len(candidates) == 0:
        candidates = np.arange(n)
    keep = int(candidates[np.argmax(sizes[candidates])]) + 1
    labels[(pieces > 0) & (pieces != keep)] = Label.BACKGROUND
    return labels


def lesions_against_the_nerves(world: np.ndarray, owner: np.ndarray, numbers: np.ndarray, labels: np.ndarray,
                               affine: np.ndarray, config: dict[str, Any]) -> np.ndarray:
    """Which lesion pieces of ``numbers`` lie against the CN VII/VIII bundle, away from the brainstem, as a small
    intracanalicular vestibular schwannoma does (boolean per piece number, index 0 unused). ``world`` holds the RAS+ mm
    of the lesion voxels (n, 3) and ``owner`` their piece numbers.

    A piece counts when it comes within ``lesion_on_nerve_mm`` of a nerve label, less than
    ``lesion_on_nerve_max_share`` of its voxels lie within 1 mm of the nerve labels (more is a stretch of
    thickened nerve labelled lesion) and none lies within ``lesion_on_nerve_brainstem_clear_mm`` of the brainstem
    (pieces on the brainstem's surface are tissue of the same signal). ``lesion_on_nerve_mm`` 0 switches this off.
    """
    from scipy.spatial import cKDTree

    found = np.zeros(int(owner.max(initial=0)) + 1, bool)
    abut_mm = float(config.get("lesion_on_nerve_mm", 0.0))
    nerves = np.argwhere((labels == Label.FACIAL_NERVE) | (labels == Label.VESTIBULOCOCHLEAR_NERVE))
    if abut_mm <= 0 or len(nerves) == 0:
        return found
    nerve_tree = cKDTree(apply_affine(affine, nerves))
    beside = {}  # pieces against the nerve that are not the nerve: their world points
    for number in numbers:
        points = world[owner == number]
        to_nerve = nerve_tree.query(points, distance_upper_bound=max(abut_mm, 1.0))[0]
        if len(points) and to_nerve.min() <= abut_mm and (to_nerve <= 1.0).mean() < float(config["lesion_on_nerve_max_share"]):
            beside[int(number)] = points
    if not beside:
        return found
    brainstem = np.argwhere(labels == Label.BRAINSTEM)
    clear_mm = float(config["lesion_on_nerve_brainstem_clear_mm"])
    brainstem_tree = cKDTree(apply_affine(affine, brainstem)) if len(brainstem) else None
    for number, points in beside.items():
        found[number] = brainstem_tree is None or not np.isfinite(brainstem_tree.query(points, distance_upper_bound=clear_mm)[0]).any()
    return found


def drop_unconfirmed_lesions(labels: np.ndarray, affine: np.ndarray, coarse_lesion: np.ndarray, coarse_grid: WorldGrid,
                             min_probability: float, config: dict[str, Any] | None = None,
                             min_mean_probability: float = 0.0) -> np.ndarray:
    """Set to background every lesion piece in which the coarse lesion probability never reaches ``min_probability``,
    or whose mean over the piece's voxels stays under ``min_mean_probability`` (in place).

    The mean catches a piece that only grazes a supported region at one edge (tissue beside a lesion, or where the
    coarse network half-sees one): a lesion the coarse pass sees is supported over much of its extent.
    The coarse pass (2 mm voxels) misses lesions of a few millimetres; a piece lying against the nerves
    (:func:`lesions_against_the_nerves`, with the postprocess ``config``) is kept without its support.

    Parameters
    ----------
    labels : ndarray of uint8
        Labels on the input grid (``affine``: voxel -> RAS+ mm).
    coarse_lesion : ndarray of float
        The coarse network's lesion probability on ``coarse_grid``.
    min_probability, min_mean_probability : float
        Support a piece needs somewhere in it and on average over its voxels (0: that test is off).
    """
    from scipy import ndimage

    if min_probability <= 0 and min_mean_probability <= 0:
        return labels
    pieces, n = ndimage.label(labels == Label.LESION, structure=np.ones((3, 3, 3)))
    if n == 0:
        return labels
    index = np.argwhere(pieces > 0)
    world = apply_affine(affine, index)
    coarse_index = (world - np.asarray(coarse_grid.origin)) / coarse_grid.spacing
    probability = ndimage.map_coordinates(coarse_lesion, coarse_index.T, order=1, mode="nearest")
    owner = pieces[tuple(index.T)]
    best = np.zeros(n + 1)
    np.maximum.at(best, owner, probability)
    mean = np.bincount(owner, probability, n + 1) / np.maximum(np.bincount(owner, minlength=n + 1), 1)
    unconfirmed = (best < min_probability) | (mean < min_mean_probability)
    unconfirmed[0] = False  # everything else
    if config is not None and unconfirmed.any():
        unconfirmed &= ~lesions_against_the_nerves(world, owner, np.flatnonzero(unconfirmed), labels, affine, config)
    labels[np.isin(pieces, np.flatnonzero(unconfirmed))] = Label.BACKGROUND
    return labels


def grow_lesions_into_coarse_support(labels: np.ndarray, image: np.ndarray, affine: np.ndarray, coarse_lesion: np.ndarray,
                                     coarse_grid: WorldGrid, min_probability: float, signal_percentile: float) -> np.ndarray:
    """Carry each lesion piece on over the background it touches where the coarse pass supports a lesion (in place).

    The fine network sees 32 mm at a time and labels only part of a lesion larger than that (a Koos IV schwannoma,
    a meningioma, an epidermoid filling the cistern); the coarse network sees the whole posterior fossa. A piece
    grows over the face-connected background where the coarse lesion probability, interpolated onto the input
    grid, is at least ``min_probability`` and the image signal lies between the piece's own
    ``signal_percentile`` and ``100 - signal_percentile`` percentiles (not into CSF, bone or a brighter or darker
    neighbour), and takes in the background it then encloses. It grows only from where the coarse pass supports it
    too; no piece is created, so the lesions found stay the same.

    Parameters
    ----------
    labels : ndarray of uint8
        Labels on the input grid (``affine``: voxel -> RAS+ mm).
    image : ndarray
        The input image on the same grid.
    coarse_lesion : ndarray of float
        The coarse network's lesion probability on ``coarse_grid``.
    min_probability : float
        0 switches the growth off.
    signal_percentile : float
        In percent, 0-50.
    """
    from scipy import ndimage

    lesion = labels == Label.LESION
    supported = np.argwhere(coarse_lesion >= min_probability) if min_probability > 0 else np.zeros((0, 3), int)
    if not lesion.any() or len(supported) == 0:
        return labels
    # one coarse voxel more on each side, so that the interpolation at the support's edge reads real values
    lo, hi = np.maximum(supported.min(0) - 1, 0), np.minimum(supported.max(0) + 2, coarse_lesion.shape)
    sub_affine = coarse_grid.affine.copy()
    sub_affine[:3, 3] += lo * coarse_grid.spacing
    box, box_affine = covered_box(labels.shape, affine, sub_affine, tuple(hi - lo), margin=1)
    box_shape = tuple(b.stop - b.start for b in box)
    region = coarse_lesion[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    support = resample(np.ascontiguousarray(region, np.float32), sub_affine, box_affine, box_shape).numpy() >= min_probability
    sub_labels, sub_image = labels[box], image[box]
    pieces, _ = ndimage.label(lesion, structure=np.ones((3, 3, 3)))
    sub_pieces = pieces[box]
    for number in np.unique(sub_pieces[support & (sub_pieces > 0)]):
        own = sub_pieces == number
        low, high = np.percentile(image[pieces == number], [signal_percentile, 100.0 - signal_percentile])
        reachable = support & (own | ((sub_labels == Label.BACKGROUND) & (sub_image >= low) & (sub_image <= high)))
        parts, _ = ndimage.label(reachable)
        touched = np.unique(parts[own & reachable])
        grown = own | np.isin(parts, touched[touched > 0])
        # background the grown piece encloses (voxels whose noise took them out of the range) belongs to it
        sub_labels[ndimage.binary_fill_holes(grown) & (sub_labels == Label.BACKGROUND)] = Label.LESION
    return labels


def drop_stray_nerve_pieces(labels: np.ndarray, affine: np.ndarray, value: int, link_mm: float) -> np.ndarray:
    """Keep, on each side of the brainstem, the nerve ``value``'s largest piece and the pieces chained to it (in place).

    A thin nerve breaks into pieces on the labels; those follow one another within ``link_mm``. A piece
    farther than that from every kept piece (typically a vessel crossing mislabelled as nerve) is set to background.
    """
    from scipy import ndimage
    from scipy.spatial import cKDTree

    pieces, n = ndimage.label(labels == value, structure=np.ones((3, 3, 3)))
    if n <= 1:
        return labels
    index = np.argwhere(pieces > 0)
    world = apply_affine(affine, index)
    owner = pieces[tuple(index.T)]
    brainstem = np.argwhere(labels == Label.BRAINSTEM)
    midline = apply_affine(affine, brainstem)[:, 0].mean() if len(brainstem) else world[:, 0].mean()
    side_of = {p: world[owner == p, 0].mean() >= midline for p in range(1, n + 1)}
    points = {p: world[owner == p] for p in range(1, n + 1)}
    trees = {p: cKDTree(points[p]) for p in range(1, n + 1)}
    sizes = np.bincount(owner, minlength=n + 1)
    keep: set[int] = set()
    for side in (True, False):
        members = [p for p in range(1, n + 1) if side_of[p] == side]
        if not members:
            continue
        kept, frontier = {max(members, key=lambda p: sizes[p])}, [max(members, key=lambda p: sizes[p])]
        while frontier:
            current = frontier.pop()
            for p in members:
                if p not in kept and np.isfinite(trees[current].query(points[p], distance_upper_bound=link_mm)[0]).any():
                    kept.add(p)
                    frontier.append(p)
        keep |= kept
    labels[(pieces > 0) & ~np.isin(pieces, sorted(keep))] = Label.BACKGROUND
    return labels


def pieces_of_at_least(mask: np.ndarray, voxel_mm3: float, min_mm3: float) -> np.ndarray:
    """The voxels of ``mask`` in 26-connected pieces of at least ``min_mm3`` (``voxel_mm3`` per voxel)."""
    from scipy import ndimage

    pieces, _ = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    piece_mm3 = np.bincount(pieces.ravel()) * voxel_mm3
    return (pieces > 0) & (piece_mm3[pieces] >= min_mm3)


def clean_labels(labels: np.ndarray, affine: np.ndarray, config: dict[str, Any]) -> np.ndarray:
    """One brainstem piece (the largest near the midline); drop small lesion pieces, specks of nerve or artery, and stray nerve pieces (in place)."""
    keep_one_brainstem(labels, affine, float(config.get("brainstem_max_midline_offset_mm", np.inf)))
    voxel_mm3 = float(abs(np.linalg.det(affine[:3, :3])))
    limits = {Label.LESION: config["min_lesion_mm3"], Label.FACIAL_NERVE: config["min_piece_mm3"],
              Label.VESTIBULOCOCHLEAR_NERVE: config["min_piece_mm3"], Label.ARTERY: config["min_piece_mm3"]}
    for value, limit in limits.items():
        mask = labels == value
        labels[mask & ~pieces_of_at_least(mask, voxel_mm3, limit)] = Label.BACKGROUND
    for nerve in (Label.FACIAL_NERVE, Label.VESTIBULOCOCHLEAR_NERVE):
        drop_stray_nerve_pieces(labels, affine, nerve, float(config.get("nerve_link_mm", np.inf)))
    return labels
