"""Coarse-to-fine segmentation on the input's own grid (the clean-up steps 4-6 are in :mod:`nvc_mri.segment.postprocess`).

1. Normalise intensities (percentile window of the whole input).
2. Coarse pass: the whole volume on a 2 mm RAS-aligned grid; find the brainstem.
3. Fine pass: sliding window at 0.5 mm over the brainstem and both cerebellopontine
   angles (and any lesion); over the whole volume when the coarse pass is not plausible.
4. Class probabilities are resampled back onto the input grid, the facial nerve's and arteries' are
   weighted up (``postprocess.class_weights``) and the most likely class wins; near the facial nerve, an
   artery is carried on through background its probability half supports (``postprocess.artery_near_facial_nerve``).
5. Clean-up (``configs/model.yaml``, ``postprocess``): the brainstem is one midline organ, so only its
   largest connected piece near the midline is kept (stray brainstem-like voxels, typically in the
   cerebellum or, on whole-brain scans, in a hemisphere, become background); lesion pieces smaller
   than ``min_lesion_mm3`` and nerve or artery specks smaller than ``min_piece_mm3`` are removed; each nerve on each side is one course, so nerve pieces
   farther than ``nerve_link_mm`` from the chain of pieces grown from its largest piece are removed.
   A lesion piece is kept only where the coarse network, which sees the whole posterior fossa, also
   gives lesion a probability of at least ``lesion_coarse_min_probability`` somewhere in it: the fine
   network's 32 mm window cannot tell a mass from normal tissue of the same signal on its own.
6. Each lesion piece kept is carried on over the background it touches where the coarse network gives lesion at
   least ``lesion_grow_coarse_probability`` and the signal lies within the piece's own range
   (``lesion_grow_signal_percentile``): the fine network labels only part of a large lesion (the same 32 mm window).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.inferers import sliding_window_inference

from nvc_mri.errors import InputError
from nvc_mri.io.grid import WorldGrid, bounding_grid, covered_box, resample
from nvc_mri.io.volume import Volume, volume_centre_mm
from nvc_mri.labels import Label
from nvc_mri.segment.postprocess import (
    arteries_reaching_the_facial_nerve,
    class_weights,
    clean_labels,
    drop_unconfirmed_lesions,
    grow_lesions_into_coarse_support,
)


def coarse_input(image: np.ndarray, affine: np.ndarray, model_config: dict[str, Any]) -> tuple[torch.Tensor, WorldGrid]:
    """The normalised image as the coarse network sees it: box averages on the coarse RAS grid.

    Sampled at half the coarse spacing, then averaged 2x2x2, so thin bright or dark
    structures are averaged rather than aliased.
    """
    coarse = float(model_config["coarse"]["spacing_mm"])
    half = bounding_grid(image.shape, affine, coarse / 2)
    sampled = resample(image, affine, half.affine, half.shape)
    pooled = F.avg_pool3d(sampled[None, None], 2, ceil_mode=True)[0, 0]
    origin = tuple(o + coarse / 4 for o in half.origin)
    return pooled, WorldGrid(origin, coarse, tuple(int(n) for n in pooled.shape))


def check_device_name(device: str) -> None:
    """Raise InputError (one line) unless ``device`` is auto, cpu, cuda or cuda:N; whether this machine has it is
    :func:`select_device`'s question (a Dask worker may have a GPU that the client lacks)."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", str(device)):
        raise InputError(f"--device {device}", "device must be auto, cpu, cuda or cuda:N")


def select_device(device: str = "auto") -> torch.device:
    """``'auto'`` picks CUDA when available, else CPU; ``'cpu'``, ``'cuda'`` and ``'cuda:N'`` are taken as asked.

    Raises
    ------
    InputError
        Another name, or CUDA asked for where there is none (one line, for the command line).
    """
    check_device_name(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {device}", "asked for, but no CUDA device is available")
    chosen = torch.device(device)
    if chosen.type == "cuda" and chosen.index is not None and chosen.index >= torch.cuda.device_count():
        raise InputError(f"--device {device}", f"asked for, but this machine has {torch.cuda.device_count()} CUDA device(s)")
    return chosen


def configure_threads(threads: int | None = None) -> None:
    """Use ``threads`` CPU threads for torch (default: all cores this process may use)."""
    import os

    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(max(1, threads or available))


@dataclass
class Segmentation:
    """The result of :func:`run_segmentation`.

    Attributes
    ----------
    labels : Volume
        uint8 label map on the input grid with the input affine (values: ``nvc_mri.labels.Label``).
    fine_box_mm : tuple of ndarray
        Lower and upper RAS+ mm corners of the region the fine pass covered.
    used_fallback : bool
        True when the coarse pass was not trusted and the fine pass covered the whole volume.
    coarse_reason : str or None
        Why the coarse pass was not trusted.
    timings_s : dict
        Seconds per stage.
    """

    labels: Volume
    fine_box_mm: tuple[np.ndarray, np.ndarray]
    used_fallback: bool
    coarse_reason: str | None
    timings_s: dict[str, float] = field(default_factory=dict)


def _predict(network: torch.nn.Module, image: torch.Tensor, stage: dict[str, Any], device: torch.device) -> torch.Tensor:
    """Softmax probabilities ``(C, *shape)`` of a network slid over ``image`` (``(*shape)``)."""
    with torch.inference_mode():
        x = image[None, None].to(device)
        logits = sliding_window_inference(x, tuple(stage["patch_size"]), int(stage.get("sw_batch_size", 1)), network,
                                          overlap=float(stage["overlap"]), mode="gaussian", sw_device=device, device="cpu")
        return torch.softmax(logits[0].float(), dim=0)


def run_segmentation(volume: Volume, networks=None, device: str = "auto", force_fallback: bool = False) -> Segmentation:
    """Coarse-to-fine segmentation of ``volume``; see the module docstring for the steps.

    Parameters
    ----------
    volume : Volume
        The input image (any orientation, oblique included).
    networks : Networks, optional
        Default: the shipped weights.
    device : {'auto', 'cpu', 'cuda'}
    force_fallback : bool
        Skip the coarse pass's region and run the fine pass over the whole volume (the naive approach).
    """
    from nvc_mri.segment.model import load_networks
    from nvc_mri.segment.region import fine_region, intensity_window, normalise

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    target = select_device(device)
    networks = (networks or load_networks()).to(target)
    config = networks.config
    image = normalise(volume.array, intensity_window(volume.array, config["intensity"]))
    timings["prepare"] = time.perf_counter() - t0

    t = time.perf_counter()
    coarse_image, coarse_grid = coarse_input(image, volume.affine, config)
    coarse_prob = _predict(networks.coarse, coarse_image, config["coarse"], target)
    confidence, coarse_labels = coarse_prob.max(0)
    centre = volume_centre_mm(volume.shape, volume.affine)
    found = fine_region(coarse_labels.numpy(), confidence.numpy(), coarse_grid.affine, centre, config["region"])
    timings["coarse"] = time.perf_counter() - t

    t = time.perf_counter()
    fine_grid = bounding_grid(volume.shape, volume.affine, float(config["fine"]["spacing_mm"]))
    used_fallback = force_fallback or found.reason is not None
    if not used_fallback:
        fine_grid = fine_grid.crop(found.lower_mm, found.upper_mm)
    fine_image = resample(image, volume.affine, fine_grid.affine, fine_grid.shape)
    fine_prob = _predict(networks.fine, fine_image, config["fine"], target)
    timings["fine"] = time.perf_counter() - t

    t = time.perf_counter()
    labels = clean_labels(_labels_on_input_grid(fine_prob, fine_grid, volume, config["postprocess"]), volume.affine, config["postprocess"])
    coarse_lesion = coarse_prob[Label.LESION].numpy()
    # pieces against the nerves are kept only inside a trusted region: without one (whole-volume fallback,
    # e.g. a whole-brain scan) stray nerve labels lie anywhere and so would the pieces kept beside them
    drop_unconfirmed_lesions(labels, volume.affine, coarse_lesion, coarse_grid,
                             float(config["postprocess"].get("lesion_coarse_min_probability", 0.0)),
                             None if used_fallback else config["postprocess"],
                             float(config["postprocess"].get("lesion_coarse_min_mean_probability", 0.0)))
    if not used_fallback:
        grow_lesions_into_coarse_support(labels, volume.array, volume.affine, coarse_lesion, coarse_grid,
                                         float(config["postprocess"].get("lesion_grow_coarse_probability", 0.0)),
                                         float(config["postprocess"].get("lesion_grow_signal_percentile", 0.0)))
    timings["map_back"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    box = (fine_grid.affine[:3, 3], fine_grid.upper)
    return Segmentation(volume.with_array(labels), box, used_fallback, found.reason, timings)


def _labels_on_input_grid(probabilities: torch.Tensor, grid: WorldGrid, volume: Volume, postprocess: dict[str, Any]) -> np.ndarray:
    """Interpolate class probabilities onto the input voxels inside the fine box; argmax of the probabilities times
    the class weights (:func:`class_weights`), then arteries carried on to the facial nerve
    (:func:`arteries_reaching_the_facial_nerve`, ``postprocess.artery_near_facial_nerve``, joining artery pieces
    of at least ``postprocess.min_piece_mm3``); background elsewhere."""
    near = postprocess.get("artery_near_facial_nerve") or {}
    if set(near) - {"weight", "reach_mm"} or not all(isinstance(v, (int, float)) for v in near.values()):
        raise ValueError(f"postprocess.artery_near_facial_nerve: {near} takes only weight and reach_mm, both numbers")
    box, sub_affine = covered_box(volume.shape, volume.affine, grid.affine, grid.shape)
    sub_shape = tuple(b.stop - b.start for b in box)
    # outside the fine box, background is certain
    background_fill = probabilities.clone()
    background_fill[0] -= 1.0
    sampled = resample(background_fill, grid.affine, sub_affine, sub_shape)
    sampled[0] += 1.0
    sub_labels = (sampled * class_weights(postprocess).view(-1, 1, 1, 1)).argmax(0).numpy().astype(np.uint8)
    arteries_reaching_the_facial_nerve(sub_labels, sampled[Label.ARTERY].numpy(), sampled[Label.BACKGROUND].numpy(),
                                       np.asarray(volume.spacing), float(near.get("weight", 1.0)),
                                       float(near.get("reach_mm", 0.0)), float(postprocess.get("min_piece_mm3", 0.0)))
    labels = np.zeros(volume.shape, np.uint8)
    labels[box] = sub_labels
    return labels


def segment(volume: Volume, device: str = "auto", networks=None) -> Volume:
    """Label map of ``volume`` on its own grid (uint8 ``Label`` values, the input's affine).

    Parameters
    ----------
    volume : Volume
        A heavily T2-weighted 3D image (CISS, FIESTA, SPACE/DRIVE).
    device : {'auto', 'cpu', 'cuda'}
    networks : Networks, optional
        Default: the weights shipped in the package.

    Returns
    -------
    Volume
        Labels: 0 background, 1 brainstem, 2 facial nerve, 3 vestibulocochlear nerve, 4 artery, 5 lesion.
    """
    return run_segmentation(volume, networks=networks, device=device).labels
