"""Seconds per training step of the shipped recipe, float32 against bfloat16 autocast (issue: train in about 2 hours).

Run: python benchmarks/training_step.py [--cases 4] [--steps 40] [--device auto] [--record]

Generates a few training phantoms into a temporary cache (not timed), then times
``nvc_mri.segment.train.training_step`` with ``configs/train.yaml``'s patch, batch and coarse
interval, once per precision, after a few warm-up steps. Prints the step time of each precision and
the time the recipe's step count would take on the networks alone (phantom generation and
validation come on top); ``--record`` writes that into ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from nvc_mri.config import load_config
from nvc_mri.segment.data import load_case, prepare_case, training_options
from nvc_mri.segment.inference import select_device
from nvc_mri.segment.model import new_networks
from nvc_mri.segment.patches import class_voxel_index
from nvc_mri.segment.train import TrainConfig, for_training, optimisers_for, segmentation_loss, training_step

WARM_UP = 4


def seconds_per_step(cases: list, config: TrainConfig, model_config: dict, device: torch.device, steps: int) -> float:
    """Mean wall seconds of ``steps`` training steps (after ``WARM_UP``), fine and coarse networks together."""
    torch.manual_seed(0)
    networks = for_training(new_networks(model_config).to(device))
    optimisers = optimisers_for(networks, config.learning_rate, config.weight_decay)
    loss_fn = segmentation_loss()
    rng = np.random.default_rng(0)
    fine_patch = tuple(config.patch_size or model_config["fine"]["patch_size"])
    coarse_patch = tuple(model_config["coarse"]["patch_size"])
    for step in range(WARM_UP + steps):
        if step == WARM_UP:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        training_step(networks, optimisers, loss_fn, cases, rng, step, config, fine_patch, coarse_patch, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--steps", type=int, default=40, help="timed steps per precision (a multiple of coarse_every)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    recipe = TrainConfig(**load_config("train.yaml"))
    torch.set_num_threads(recipe.threads)
    model_config = load_config(recipe.network_config)
    device = select_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        cases = []
        for seed in range(recipe.first_seed, recipe.first_seed + args.cases):
            case = load_case(prepare_case(seed, training_options(seed, recipe.random_contrast_fraction, recipe.phantom_options), model_config, Path(tmp)))
            cases.append((case, class_voxel_index(case.labels, seed=seed)))
        times = {p: seconds_per_step(cases, recipe.model_copy(update={"precision": p}), model_config, device, args.steps)
                 for p in ("float32", "bfloat16")}
    rows = ["| precision | s per step | recipe's steps, networks only |", "|---|---|---|"]
    for precision, seconds in times.items():
        rows.append(f"| {precision} | {seconds:.3f} | {recipe.steps} steps: {seconds * recipe.steps / 3600:.2f} h |")
    table = "\n".join(rows) + f"\n\nbfloat16 / float32: {times['bfloat16'] / times['float32']:.2f}"
    print(table)
    if args.record:
        from results_md import write_section

        where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {recipe.threads} threads"
        write_section("training-step", f"`python benchmarks/training_step.py --record` ({args.steps} timed steps per precision "
                      f"after {WARM_UP} warm-up, batch {recipe.batch_size}, fine patch {list(recipe.patch_size or [])}, one coarse "
                      f"step every {recipe.coarse_every}), {where}, {platform.machine()}, {date.today()}:\n\n{table}")


if __name__ == "__main__":
    main()
