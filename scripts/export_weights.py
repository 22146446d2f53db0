"""Copy a training run's weights into the package and write the model card beside them.

Run: python scripts/export_weights.py runs/shipped [--hardware "..."]
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
    args = parser.parse_args()
    source = args.run_dir / WEIGHTS_FILE
    target = shipped_weights_path()
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
    train_cfg = yaml.safe_load(args.config.read_text())
    model_cfg = yaml.safe_load((ROOT / "configs" / "model.yaml").read_text())
    networks = load_networks(target)
    params = {name: sum(p.numel() for p in getattr(networks, name).parameters()) for name in ("coarse", "fine")}
    if "continued_from_sha256" in meta:
        training = previous_training(target.parent / "MODEL_CARD.md", meta["continued_from_sha256"]) + "\n\n" + \
            continuation_section(train_cfg, args.config, meta, log, steps, validation, args.hardware)
    else:
        training = first_run_section(train_cfg, model_cfg, meta, log, steps, validation, args.hardware)
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
  differ. On the real whole-brain 1 mm T2 `t2w-m2208` the coarse pass finds no plausible brainstem and the
  fine pass runs over the whole brain: it labels the pons and medulla as brainstem, but also a larger blob in
  the left parietal lobe, which only the clean-up's midline rule removes; artery and nerve labels are scattered
  over the cerebrum (`docs/real_t2w_overlay.png`). Validate on local labelled data before any use; not a
  medical device.
* Lesions: few training phantoms had one; lesion Dice is low. The fine network alone labels tissue of lesion-like
  signal as lesion in most lesion-free cases; the pipeline keeps a lesion piece only where the coarse network
  also finds lesion (`postprocess.lesion_coarse_min_probability` in `configs/model.yaml`), which removes most of
  those and also small true lesions the coarse network misses.
* Trained briefly on a 2-core CPU: the thin structures (CN VII, CN VIII, small arteries) are the weakest;
  see the per-structure figures above.
"""
    (target.parent / "MODEL_CARD.md").write_text(card, encoding="utf-8")
    print(f"{target} and MODEL_CARD.md written")


def first_run_section(train_cfg: dict, model_cfg: dict, meta: dict, log: list[dict], steps: list[int], validation: list[dict],
                      hardware: str) -> str:
    """How the networks were trained from random weights (the run of ``configs/train.yaml``)."""
    return f"""* **Data:** synthetic phantoms only (`nvc_mri.phantom`), seeds {train_cfg['first_seed']}-{train_cfg['first_seed'] + train_cfg['n_cases'] - 1}
  ({train_cfg['n_cases']} cases; {int(train_cfg['random_contrast_fraction'] * 100)}% domain-randomised contrast, the rest realistic
  CISS/FIESTA), validation seeds {train_cfg['validation_seeds']}. The evaluation sets (seeds from 1,000,000) were never used.
  Phantom version: the cache was generated with phantom 1.0 (cases 0-~150) and 1.1 (the rest) and reused unchanged
  after 1.1 and 1.2; both changed only where the artery of a displacement-type deformity (a few % of sides) meets the
  facial nerve, not what is labelled or how it looks. Phantom 1.3 (after training) puts the large unlabelled tissues
  (cerebellum, bone, scalp) back where their shapes say: up to phantom 1.2 they were drawn up to 0.7 mm off, stretched
  towards one corner of their box. Labels were identical voxel for voxel on the two evaluation cases compared; the
  evaluation figures are on phantom 1.3 images.
* **Config:** `configs/train.yaml` and `configs/model.yaml` at commit `{meta.get('commit', 'unknown')}`:
  Dice + cross-entropy (MONAI `DiceCELoss`, batch Dice), AdamW lr {train_cfg['learning_rate']} with polynomial decay,
  batch {train_cfg['batch_size']}, fine patches {train_cfg.get('patch_size') or model_cfg['fine']['patch_size']} voxels
  ({int(train_cfg['foreground_fraction'] * 100)}% centred on a labelled voxel, class drawn uniformly), intensity and
  left-right mirroring augmentation; seed {train_cfg['seed']}.
* **Steps:** {steps[-1] if steps else '?'} fine-network steps (the coarse network one step every {train_cfg['coarse_every']}).
  The first 550 steps used 96x96x64 patches, the rest 64x64x48 (more steps per hour on a CPU). The run was
  resumed at steps {', '.join(str(s) for s in sorted(set(_resume_steps(log))))}, mostly with a longer schedule; each resume follows the
  polynomial decay of the new length from the step reached (so the learning rate jumped at those steps).
* **Time and hardware:** about {sum(1 for _ in log) and round(_wall_hours(log), 1)} h of wall time on {hardware},
  sharing the machine with phantom generation (steps 0-8000) and with measurement benchmarks (8000-19000).
  The last continuation was started towards 22,000 steps and shortened to 19,000 at step 16,950 to fit the session.
* **Last validation Dice** (fine network alone on the validation phantoms' whole fine crops, sliding windows, no
  clean-up; the evaluation below is the full pipeline): {json.dumps(validation[-1]['val_dice']) if validation else 'n/a'}"""


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
    ', phantom options ' + json.dumps(cfg['phantom_options']) if cfg.get('phantom_options') else ''}), the same validation seeds.
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
