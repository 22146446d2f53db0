"""Training data: phantoms generated on demand, brought onto the networks' grids, cached on disk.

A case is generated from its seed the first time it is needed and kept in the cache
directory as ``.npy`` arrays (memory-mapped while training), so resumed or repeated
runs reuse it. The cache key includes the phantom version, the model grids and a digest
of the recipe's own phantom options (so another lesion mix never reuses these cases).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nvc_mri.atomic import atomic_dir
from nvc_mri.io.grid import bounding_grid, resample, resample_labels
from nvc_mri.io.volume import volume_centre_mm
from nvc_mri.labels import Label
from nvc_mri.phantom import generate
from nvc_mri.phantom.generate import PHANTOM_VERSION
from nvc_mri.segment.inference import coarse_input
from nvc_mri.segment.model import N_CLASSES
from nvc_mri.segment.region import fine_region, intensity_window, normalise


@dataclass
class CachedCase:
    """One training case on the fine and coarse grids (arrays may be memory-mapped)."""

    image: np.ndarray          # float16, normalised, fine grid
    labels: np.ndarray         # uint8, fine grid
    coarse_image: np.ndarray   # float16, coarse grid
    coarse_labels: np.ndarray  # uint8, coarse grid
    spacing_mm: float
    info: dict[str, Any]


def cache_key(model_config: dict[str, Any], phantom_options: dict[str, Any] | None = None) -> str:
    """The cache folder's name: phantom version, model grids and a digest of the recipe's own phantom options."""
    key = f"phantom{PHANTOM_VERSION}_fine{model_config['fine']['spacing_mm']}_coarse{model_config['coarse']['spacing_mm']}"
    if phantom_options:
        key += "_" + hashlib.sha256(json.dumps(phantom_options, sort_keys=True).encode()).hexdigest()[:12]
    return key


def prepare_case(seed: int, options: dict[str, Any], model_config: dict[str, Any], folder: Path,
                 extra_margin_mm: float = 12.0) -> Path:
    """Generate phantom ``seed`` and write it on the model grids into ``folder/<seed>`` (see :func:`cache_volume`)."""
    target = folder / f"{seed:07d}"
    if (target / "info.json").is_file():
        return target
    case = generate(seed, **options)
    return cache_volume(case.image, case.labels, model_config, target, dict(seed=seed, options=options), extra_margin_mm)


def cache_volume(image_volume, label_volume, model_config: dict[str, Any], target: Path, info: dict[str, Any],
                 extra_margin_mm: float = 12.0) -> Path:
    """Write one labelled image on the model grids into ``target`` (atomic); phantoms and users' own scans alike.

    The coarse grid covers the whole volume, as at inference. The fine grid covers the region
    the fine pass would get from a perfect coarse pass, widened by ``extra_margin_mm`` so that
    training also sees tissue beyond it.
    """
    native_labels = np.asarray(label_volume.array).astype(np.uint8)
    window = intensity_window(image_volume.array, model_config["intensity"])
    image = normalise(image_volume.array, window)
    coarse_image, coarse_grid = coarse_input(image, image_volume.affine, model_config)
    coarse_labels = resample_labels(native_labels, label_volume.affine, coarse_grid.affine, coarse_grid.shape)
    centre = volume_centre_mm(image_volume.shape, image_volume.affine)
    region = fine_region(coarse_labels, None, coarse_grid.affine, centre, model_config["region"])
    fine = bounding_grid(image_volume.shape, image_volume.affine, float(model_config["fine"]["spacing_mm"]))
    fine = fine.crop(region.lower_mm - extra_margin_mm, region.upper_mm + extra_margin_mm)
    fine_image = resample(image, image_volume.affine, fine.affine, fine.shape)
    fine_labels = resample_labels(native_labels, label_volume.affine, fine.affine, fine.shape)
    with atomic_dir(target) as tmp:
        np.save(tmp / "image.npy", fine_image.numpy().astype(np.float16))
        np.save(tmp / "labels.npy", fine_labels)
        np.save(tmp / "coarse_image.npy", coarse_image.numpy().astype(np.float16))
        np.save(tmp / "coarse_labels.npy", coarse_labels)
        info = dict(info, origin=fine.origin, spacing_mm=fine.spacing,
                    label_voxels={int(v): int((fine_labels == v).sum()) for v in range(N_CLASSES)})
        (tmp / "info.json").write_text(json.dumps(info, default=str))
    return target


def load_case(path: Path) -> CachedCase:
    info = json.loads((path / "info.json").read_text())
    arrays = {name: np.load(path / f"{name}.npy", mmap_mode="r") for name in ("image", "labels", "coarse_image", "coarse_labels")}
    return CachedCase(spacing_mm=info["spacing_mm"], info=info, **arrays)


def training_options(seed: int, random_contrast_fraction: float, phantom_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Phantom options of a training seed: realistic CISS/FIESTA, or domain-randomised contrast.

    ``phantom_options`` (the recipe's own, e.g. a lesion mix) are added to every seed's.
    """
    draw = np.random.default_rng([seed, 7])
    contrast = {"contrast": "random"} if draw.random() < random_contrast_fraction else {}
    return {**(phantom_options or {}), **contrast}


def present_classes(case: CachedCase) -> list[int]:
    return [int(v) for v, n in case.info["label_voxels"].items() if int(v) != Label.BACKGROUND and n > 0]
