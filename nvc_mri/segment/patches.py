"""Patch sampling and augmentation for training (NumPy in, torch out)."""

from __future__ import annotations

import numpy as np
import torch

from nvc_mri.segment.data import CachedCase, present_classes


def crop_patch(array: np.ndarray, centre: np.ndarray, size: tuple[int, int, int], fill: float) -> np.ndarray:
    """The ``size`` box of ``array`` centred on ``centre`` (voxels), padded with ``fill`` beyond the edges."""
    start = np.asarray(centre, int) - np.asarray(size) // 2
    out = np.full(size, fill, dtype=np.float32)
    src = tuple(slice(max(s, 0), min(s + n, d)) for s, n, d in zip(start, size, array.shape))
    dst = tuple(slice(sl.start - s, sl.stop - s) for sl, s in zip(src, start))
    out[dst] = array[src]
    return out


def patch_centre(case: CachedCase, labels: np.ndarray, rng: np.random.Generator, foreground_fraction: float,
                 class_voxels: dict[int, np.ndarray]) -> np.ndarray:
    """A patch centre: on a voxel of a class drawn uniformly among those present, or anywhere."""
    classes = [c for c in present_classes(case) if len(class_voxels.get(c, ())) > 0]
    if classes and rng.random() < foreground_fraction:
        voxels = class_voxels[int(rng.choice(classes))]
        return np.asarray(np.unravel_index(int(voxels[rng.integers(len(voxels))]), labels.shape))
    return np.array([rng.integers(n) for n in labels.shape])


def augment(image: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Intensity (scale, shift, gamma, noise) and left-right mirroring; labels are not sided."""
    image = np.clip(image, 0, None) ** rng.uniform(0.7, 1.4)
    image = image * rng.uniform(0.85, 1.15) + rng.uniform(-0.08, 0.08)
    image = image + rng.normal(0, rng.uniform(0, 0.04), image.shape)
    if rng.random() < 0.5:
        image, labels = image[::-1], labels[::-1]
    return np.ascontiguousarray(image, dtype=np.float32), np.ascontiguousarray(labels)


def class_voxel_index(labels: np.ndarray, max_per_class: int = 20000, seed: int = 0) -> dict[int, np.ndarray]:
    """Flat indices of (a subsample of) each class's voxels, for foreground-centred patches."""
    flat = np.asarray(labels).reshape(-1)
    rng = np.random.default_rng(seed)
    index = {}
    for value in np.unique(flat):
        if value == 0:
            continue
        voxels = np.flatnonzero(flat == value)
        index[int(value)] = voxels if len(voxels) <= max_per_class else rng.choice(voxels, max_per_class, replace=False)
    return index


def batch(cases: list[tuple[CachedCase, dict]], rng: np.random.Generator, size: tuple[int, int, int], n: int,
          foreground_fraction: float, coarse: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` augmented patches (image ``(n,1,*size)`` float, labels ``(n,1,*size)`` long)."""
    images, labels = [], []
    for _ in range(n):
        case, index = cases[rng.integers(len(cases))]
        image, label = (case.coarse_image, case.coarse_labels) if coarse else (case.image, case.labels)
        if coarse:
            centre = np.array(image.shape) // 2 + rng.integers(-4, 5, 3)
        else:
            centre = patch_centre(case, label, rng, foreground_fraction, index)
        x, y = augment(crop_patch(image, centre, size, 0.0), crop_patch(label, centre, size, 0).astype(np.uint8), rng)
        images.append(x)
        labels.append(y)
    return torch.as_tensor(np.stack(images))[:, None], torch.as_tensor(np.stack(labels)).long()[:, None]
