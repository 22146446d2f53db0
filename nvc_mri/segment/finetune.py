"""Fine-tune the shipped U-Nets on a user's own labelled scans (nnU-Net-style ``imagesTr``/``labelsTr`` folder).

Layout::

    DATASET/imagesTr/<case>_0000.nii.gz     the T2 image (one channel)
    DATASET/labelsTr/<case>.nii.gz          labels with nvc-mri values (0 background, 1 brainstem,
                                            2 CN VII, 3 CN VIII, 4 artery, 5 lesion), same grid
    DATASET/dataset.json                    optional; its "labels" (name -> value) are mapped by name

The cases are cached on the model grids, a fraction is held out for validation Dice, and the
networks start from the shipped weights (or ``weights``) with a small learning rate.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from pydantic import Field

from nvc_mri.errors import InputError
from nvc_mri.io import load_volume
from nvc_mri.labels import LABEL_NAMES, label_problem
from nvc_mri.segment.data import cache_volume, load_case
from nvc_mri.segment.model import load_networks, save_weights
from nvc_mri.segment.patches import class_voxel_index
from nvc_mri.segment.inference import select_device
from nvc_mri.segment.train import StepConfig, for_training, optimisers_for, segmentation_loss, training_step, validate


class FineTuneConfig(StepConfig):
    """Fine-tuning settings: the step's (:class:`~nvc_mri.segment.train.StepConfig`) and the schedule's."""

    steps: int = Field(300, gt=0)
    learning_rate: float = 5e-4
    weight_decay: float = 1e-5
    validation_fraction: float = Field(0.2, ge=0, lt=1)
    seed: int = 0
    threads: int | None = None


def read_dataset(folder: str | Path) -> list[tuple[str, Path, Path]]:
    """(case id, image, labels) of every case in an nnU-Net-style folder."""
    folder = Path(folder)
    images = sorted((folder / "imagesTr").glob("*_0000.nii*"))
    if not images:
        raise InputError(folder, "no imagesTr/<case>_0000.nii.gz found (nnU-Net layout expected)")
    cases = []
    for image in images:
        case = image.name.split("_0000.nii")[0]
        labels = next(iter(sorted((folder / "labelsTr").glob(f"{case}.nii*"))), None)
        if labels is None:
            raise InputError(image, f"no labelsTr/{case}.nii.gz for this image")
        cases.append((case, image, labels))
    return cases


def label_mapping(folder: Path) -> dict[int, int] | None:
    """dataset.json label values -> nvc-mri values, matched by name (None: labels already use nvc-mri values)."""
    path = folder / "dataset.json"
    if not path.is_file():
        return None
    names = json.loads(path.read_text()).get("labels", {})
    ours = {name: value for value, name in LABEL_NAMES.items()}
    unknown = [n for n in names if n not in ours]
    if unknown:
        raise InputError(path, f"label names {unknown} are not nvc-mri labels ({sorted(ours)})")
    return {int(value): ours[name] for name, value in names.items()}


def fine_tune(dataset: str | Path, run_dir: str | Path, config: FineTuneConfig | None = None, weights: str | Path | None = None,
              progress: Callable[[int, dict], None] | None = None) -> Path:
    """Fine-tune on ``dataset``; returns the new safetensors weights (``run_dir/nvc_unet.safetensors``).

    ``run_dir/log.jsonl`` records loss per step and the validation Dice before and after.
    """
    config = config or FineTuneConfig()
    dataset, run_dir = Path(dataset), Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if config.threads:
        torch.set_num_threads(config.threads)
    device = select_device(config.device)
    networks = load_networks(weights).to(device)
    model_config = networks.config
    mapping = label_mapping(dataset)
    cached = []
    for case, image_path, label_path in read_dataset(dataset):
        target = run_dir / "cache" / case
        if not (target / "info.json").is_file():
            image, labels = load_volume(image_path), load_volume(label_path)
            if labels.shape != image.shape or not np.allclose(labels.affine, image.affine, atol=1e-3):
                raise InputError(label_path, "labels are not on the image's grid")
            if not mapping and (problem := label_problem(labels.array)):
                raise InputError(label_path, f"{problem}, or name them in a dataset.json")
            values = np.clip(np.rint(labels.array), 0, None).astype(np.int64)
            if mapping:
                lookup = np.zeros(max(max(mapping), int(values.max())) + 1, np.int64)
                for theirs, ours in mapping.items():
                    lookup[theirs] = ours
                values = lookup[values]
            cache_volume(image, labels.with_array(values.astype(np.uint8)), model_config, target, {"case": case})
        cached.append(load_case(target))
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(cached))
    n_val = int(round(config.validation_fraction * len(cached))) if len(cached) > 1 else 0
    validation = [cached[i] for i in order[:n_val]]
    training = [(cached[i], class_voxel_index(cached[i].labels, seed=int(i))) for i in order[n_val:]]
    fine_patch = tuple(config.patch_size or model_config["fine"]["patch_size"])
    coarse_patch = tuple(model_config["coarse"]["patch_size"])
    inference_patch = tuple(model_config["fine"]["patch_size"])
    for_training(networks)
    optimisers = optimisers_for(networks, config.learning_rate, config.weight_decay)
    loss_fn = segmentation_loss()
    started = time.time()
    with open(run_dir / "log.jsonl", "w", encoding="utf-8") as log:
        if validation:
            log.write(json.dumps({"step": 0, "val_dice": validate(networks, validation, inference_patch, device)}) + "\n")
        for step in range(config.steps):
            stats = training_step(networks, optimisers, loss_fn, training, rng, step, config, fine_patch, coarse_patch, device)
            stats["elapsed_s"] = time.time() - started
            if validation and step + 1 == config.steps:
                stats["val_dice"] = validate(networks, validation, inference_patch, device)
            log.write(json.dumps(stats) + "\n")
            if progress:
                progress(step + 1, stats)
    out = run_dir / "nvc_unet.safetensors"
    save_weights(networks, out, metadata={"fine_tuned_from": networks.sha256 or "", "steps": str(config.steps),
                                          "cases": str(len(training)), "model_config": json.dumps(model_config)})
    return out
