"""Copy a training run's weights into the package and write the model card beside them.

Run: python scripts/export_weights.py runs/shipped [--hardware "..."] [--config configs/train.yaml]
         [--notes scripts/model_card_notes/shipped.md]
The card records the training data, config, seed, commit, time and hardware, and the last
validation Dice; evaluation results are added from benchmarks/RESULTS.md (segmentation sections).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

import yaml
from safetensors import safe_open

from nvc_mri.phantom import PHANTOM_VERSION
from nvc_mri.segment.model import WEIGHTS_FILE, file_sha256, load_networks, shipped_weights_path
from nvc_mri.segment.train import TrainConfig

ROOT = Path(__file__).resolve().parents[1]


def results_sections() -> str:
    text = (ROOT / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8")
    blocks = re.findall(r"<!-- (segmentation-[a-z-]+):start -->\n(.*?)\n<!-- \1:end -->", text, flags=re.S)
    return "\n\n".join(body.replace("## ", "### ") for _, body in blocks) or "(not yet measured)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--hardware", default="2-core x86-64 CPU (AMD EPYC), 24 GiB RAM, no GPU; torch 2.13.0 CPU")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "train.yaml")
    parser.add_argument("--notes", type=Path, default=None,
                        help="markdown with this run's own history (before a '## Known limits' line) and limits (after it)")
    parser.add_argument("--target", type=Path, default=None, help="folder to write into (default: the package's weights)")
    args = parser.parse_args()
    source = args.run_dir / WEIGHTS_FILE
    target = args.target / WEIGHTS_FILE if args.target else shipped_weights_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    with safe_open(str(target), "pt") as fh:
        meta = fh.metadata() or {}
    log = [json.loads(line) for line in (args.run_dir / "log.jsonl").read_text().splitlines() if line.strip()]
    last = {}
    for entry in log:
        last[entry["step"]] = entry
    steps = sorted(last)
    validation = [last[s] for s in steps if "val_dice" in last[s]]
    train_cfg = TrainConfig(**yaml.safe_load(args.config.read_text())).model_dump(mode="json")  # with the defaults filled in
    model_cfg = yaml.safe_load((ROOT / "configs" / "model.yaml").read_text())
    networks = load_networks(target)
    params = {name: sum(p.numel() for p in getattr(networks, name).parameters()) for name in ("coarse", "fine")}
    if "continued_from_sha256" in meta:
        training = previous_training(target.parent / "MODEL_CARD.md", meta["continued_from_sha256"]) + "\n\n" + \
            continuation_section(train_cfg, args.config, meta, log, steps, validation, args.hardware)
    else:
        training = first_run_section(train_cfg, args.config, model_cfg, meta, log, steps, validation, args.hardware)
    run_notes, limit_notes = split_notes(args.notes.read_text(encoding="utf-8") if args.notes else "")
    training += run_notes
    card = f"""# nvc-mri U-Nets: model card

**File:** `{WEIGHTS_FILE}` (safetensors, {target.stat().st_size / 2**20:.1f} MiB, sha256 `{file_sha256(target)}`).
Loaded with `safetensors` (no pickled code). Two MONAI `UNet`s, keys `coarse.*` and `fine.*`:

| network | grid | channels | parameters |
|---|---|---|---|
| coarse (localiser) | {model_cfg['coarse']['spacing_mm']} mm RAS | {model_cfg['coarse']['channels']} | {params['coarse']:,} |
| fine (segmenter) | {model_cfg['fine']['spacing_mm']} mm RAS | {model_cfg['fine']['channels']} | {params['fine']:,} |

Output classes: 0 background, 1 brainstem, 2 facial nerve (CN VII), 3 vestibulocochlear nerve (CN VIII),
4 artery, 5 lesion (`configs/labels.yaml`). Input: one channel, intensities scaled so that the image's 1st
and 99th percentiles map to 0 and 1 (CSF about 1 on CISS/FIESTA).

## Training

{training}

## Evaluation

{results_sections()}

## Known limits

* Trained on **synthetic phantoms only**. Real anatomy, real CISS/FIESTA artefacts and real nerve calibres
  differ. Validate on local labelled data before any use; not a medical device.
{limit_notes}
"""
    (target.parent / "MODEL_CARD.md").write_text(card, encoding="utf-8")
    print(f"{target} and MODEL_CARD.md written")


def first_run_section(train_cfg: dict, config_path: Path, model_cfg: dict, meta: dict, log: list[dict], steps: list[int],
                      validation: list[dict], hardware: str) -> str:
    """How the networks were trained from random weights (the run of ``train_cfg``); run-specific history goes in ``--notes``."""
    resumed = sorted(set(_resume_steps(log)))
    options = train_cfg["phantom_options"]
    return f"""* **Data:** synthetic phantoms only (`nvc_mri.phantom`), seeds {train_cfg['first_seed']}-{train_cfg['first_seed'] + train_cfg['n_cases'] - 1}
  ({train_cfg['n_cases']} cases, phantom version {PHANTOM_VERSION}; {int(train_cfg['random_contrast_fraction'] * 100)}% domain-randomised contrast, the rest realistic
  CISS/FIESTA{'; phantom options ' + json.dumps(options) if options else ''}), validation seeds {train_cfg['validation_seeds']}.
  The evaluation sets (seeds from 1,000,000) were never used.
* **Config:** `configs/{config_path.name}` and `configs/model.yaml` at commit `{meta.get('commit', 'unknown')}`:
  Dice + cross-entropy (MONAI `DiceCELoss`, batch Dice), AdamW lr {train_cfg['learning_rate']} with polynomial decay,
  batch {train_cfg['batch_size']}, fine patches {train_cfg.get('patch_size') or model_cfg['fine']['patch_size']} voxels
  ({int(train_cfg['foreground_fraction'] * 100)}% centred on a labelled voxel, class drawn uniformly), intensity and
  left-right mirroring augmentation; {train_cfg['precision']}; seed {train_cfg['seed']}.
* **Steps:** {steps[-1] if steps else '?'} fine-network steps (the coarse network one step every {train_cfg['coarse_every']}){
    '; resumed at steps ' + ', '.join(map(str, resumed)) + ' (each resume follows the polynomial decay of the length then set)' if resumed else ''}.
* **Time and hardware:** about {round(_wall_hours(log), 1)} h of wall time on {hardware}, phantom generation included.
* **Last validation Dice** (fine network alone on the validation phantoms' whole fine crops, sliding windows, no
  clean-up; the evaluation below is the full pipeline): {json.dumps(validation[-1]['val_dice']) if validation else 'n/a'}"""


def split_notes(text: str) -> tuple[str, str]:
    """A notes file's run history (appended to Training) and known limits (appended to Known limits)."""
    history, _, limits = text.partition("## Known limits")
    history, limits = history.strip(), limits.strip()
    return ("\n" + history if history else ""), limits


def previous_training(card: Path, sha256: str) -> str:
    """The Training section of the card of the weights a continuation started from."""
    text = card.read_text(encoding="utf-8") if card.is_file() else ""
    if sha256 not in text:
        raise SystemExit(f"{card} describes other weights than the {sha256[:12]}... this run continued from")
    return re.search(r"## Training\n\n(.*?)\n+## Evaluation", text, flags=re.S).group(1).strip()


def continuation_section(cfg: dict, config_path: Path, meta: dict, log: list[dict], steps: list[int], validation: list[dict],
                         hardware: str) -> str:
    """How a run of ``initial_weights`` continued the weights described above it."""
    last_seed = cfg["first_seed"] + cfg["n_cases"] - 1
    resumed = sorted(set(_resume_steps(log)))
    return f"""### Continuation of `{meta['continued_from_sha256'][:12]}...`

* **Data:** phantoms the first run never saw, seeds {cfg['first_seed']}-{last_seed} ({cfg['n_cases']} cases, phantom version
  {PHANTOM_VERSION}, {int(cfg['random_contrast_fraction'] * 100)}% domain-randomised contrast{
    ', phantom options ' + json.dumps(cfg['phantom_options']) if cfg['phantom_options'] else ''}), the same validation seeds.
  The evaluation sets (seeds from 1,000,000) were never used.
* **Config:** `configs/{config_path.name}` at commit `{meta.get('commit', 'unknown')}`: the same loss, patches and
  augmentation; a fresh AdamW, lr {cfg['learning_rate']} with polynomial decay to zero; seed {cfg['seed']}.
* **Steps:** {steps[-1] if steps else '?'} more fine-network steps (the coarse network one step every {cfg['coarse_every']}){
    ', resumed at steps ' + ', '.join(map(str, resumed)) if resumed else ''}.
* **Time and hardware:** about {round(_wall_hours(log), 1)} h of wall time on {hardware}, sharing the machine with
  phantom generation.
* **Last validation Dice** (as above): {json.dumps(validation[-1]['val_dice']) if validation else 'n/a'}"""


def _resume_steps(log: list[dict]) -> list[int]:
    """Steps after which the run was stopped and resumed (the elapsed time starts again from zero)."""
    steps, previous = [], 0.0
    for entry in log:
        if entry.get("elapsed_s", 0.0) < previous:
            steps.append(int(entry["step"]) - 1)
        previous = entry.get("elapsed_s", 0.0)
    return steps


def _wall_hours(log: list[dict]) -> float:
    """Sum of the elapsed time of each (resumed) segment of the run."""
    total, previous = 0.0, 0.0
    for entry in log:
        elapsed = entry.get("elapsed_s", 0.0)
        if elapsed < previous:
            total += previous
        previous = elapsed
    return (total + previous) / 3600


if __name__ == "__main__":
    main()
