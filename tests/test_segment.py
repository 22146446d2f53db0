"""U-Net segmentation: grid handling, inference contract, weights safety, training smoke run, metrics."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from typer.testing import CliRunner

from nvc_mri.cli import app
from nvc_mri.errors import InputError
from nvc_mri.io.grid import bounding_grid, resample
from nvc_mri.labels import Label
from nvc_mri.phantom import ConflictSpec, generate
from nvc_mri.segment.evaluate import case_metrics
from nvc_mri.segment.inference import run_segmentation, segment
from nvc_mri.segment.model import (
    file_sha256,
    load_networks,
    new_networks,
    save_weights,
    shipped_weights_path,
)
from nvc_mri.segment.region import fine_region
from tests.conftest import T1_HEADER, make_volume

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small_case():
    """A 1 mm phantom (fast to generate and segment)."""
    return generate(11, spacing_mm=(0.8, 0.8, 1.0), slab_mm=40, contrast="ciss", lesion_probability=0.0,
                    right=ConflictSpec(kind="contact", segment="attached_segment"), left=ConflictSpec(kind="none"))


def test_resample_is_exact_on_the_same_grid_and_moves_with_the_affine():
    volume = make_volume(shape=(12, 10, 8))
    same = resample(volume.array, volume.affine, volume.affine, volume.shape).numpy()
    assert np.allclose(same, volume.array, atol=1e-3)
    shifted = volume.affine.copy()
    shifted[:3, 3] += volume.affine[:3, 0]  # target voxel i sits on source voxel i+1
    moved = resample(volume.array, volume.affine, shifted, (11, 10, 8)).numpy()
    assert np.allclose(moved, volume.array[1:], atol=1e-3)


def test_bounding_grid_covers_an_oblique_volume():
    volume = make_volume(shape=(30, 20, 10))
    grid = bounding_grid(volume.shape, volume.affine, 0.5)
    corners = volume.world_corners()
    assert np.all(corners >= np.asarray(grid.origin) - 1e-6) and np.all(corners <= grid.upper + 0.5)
    crop = grid.crop(np.asarray(grid.origin) + 2, np.asarray(grid.origin) + 4)
    assert crop.shape == (5, 5, 5) and np.allclose(crop.origin, np.asarray(grid.origin) + 2.0)


def test_inference_returns_labels_on_the_input_grid(small_case):
    networks = new_networks()  # untrained: the contract, not the accuracy
    with torch.no_grad():  # a coarse network with all weights zero labels nothing (randomly initialised ones sometimes label a brainstem)
        for parameter in networks.coarse.parameters():
            parameter.zero_()
    result = run_segmentation(small_case.image, networks=networks, device="cpu")
    assert result.labels.shape == small_case.image.shape
    assert np.array_equal(result.labels.affine, small_case.image.affine)
    assert result.labels.array.dtype == np.uint8 and result.labels.array.max() < 6
    # the coarse pass finds no brainstem: the fine pass must cover everything
    assert result.used_fallback and result.coarse_reason
    grid = bounding_grid(small_case.image.shape, small_case.image.affine, 0.5)
    assert np.allclose(result.fine_box_mm[0], grid.origin) and np.allclose(result.fine_box_mm[1], grid.upper)


def test_inference_is_deterministic_on_cpu(small_case):
    networks = new_networks()
    a = run_segmentation(small_case.image, networks=networks, device="cpu", force_fallback=True).labels.array
    b = run_segmentation(small_case.image, networks=networks, device="cpu", force_fallback=True).labels.array
    assert np.array_equal(a, b)


def test_lesions_are_not_kept_beside_nerves_after_the_whole_volume_fallback(small_case, monkeypatch):
    """Without a trusted region (the coarse pass's fallback) stray nerve labels can lie anywhere, so unconfirmed
    lesion pieces beside them are not kept: the clean-up gets no config for that rule."""
    from nvc_mri.segment import inference

    seen, grown = [], []
    original = inference.drop_unconfirmed_lesions
    monkeypatch.setattr(inference, "drop_unconfirmed_lesions", lambda *args: seen.append(args[5]) or original(*args))
    monkeypatch.setattr(inference, "grow_lesions_into_coarse_support", lambda *args: grown.append(args))
    run_segmentation(small_case.image, networks=new_networks(), device="cpu", force_fallback=True)
    assert seen == [None] and grown == []  # nor are lesions grown over an untrusted coarse pass's support


def test_fine_region_from_truth_covers_both_nerves_and_rejects_implausible_maps(small_case):
    from nvc_mri.io.grid import resample_labels

    case = small_case
    grid = bounding_grid(case.labels.shape, case.labels.affine, 2.0)
    coarse = resample_labels(case.labels.array.astype(np.uint8), case.labels.affine, grid.affine, grid.shape)
    centre = case.image.affine[:3, :3] @ ((np.array(case.image.shape) - 1) / 2) + case.image.affine[:3, 3]
    from nvc_mri.config import load_config

    config = load_config("model.yaml")["region"]
    found = fine_region(coarse, None, grid.affine, centre, config)
    assert found.reason is None
    nerves = np.argwhere(np.isin(case.labels.array, [Label.FACIAL_NERVE, Label.VESTIBULOCOCHLEAR_NERVE]))
    world = nerves @ case.labels.affine[:3, :3].T + case.labels.affine[:3, 3]
    inside = np.all((world >= found.lower_mm) & (world <= found.upper_mm), axis=1)
    assert inside.mean() > 0.9  # the IAC fundus may lie beyond the margin; the REZ never does
    assert fine_region(np.zeros_like(coarse), None, grid.affine, centre, config).reason == "no brainstem found"
    tiny = np.zeros_like(coarse)
    tiny[10, 10, 10] = Label.BRAINSTEM
    assert "implausible" in fine_region(tiny, None, grid.affine, centre, config).reason


def test_weights_round_trip_through_safetensors_without_pickle(tmp_path, monkeypatch):
    networks = new_networks()
    path = tmp_path / "w.safetensors"
    save_weights(networks, path)
    assert not path.read_bytes().startswith(b"\x80")  # not a pickle stream

    def refuse(*args, **kwargs):
        raise AssertionError("weights loading must not unpickle")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    loaded = load_networks(path)
    for key, value in networks.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])
    assert len(loaded.sha256) == 64


def test_shipped_weights_are_small_safetensors_with_a_model_card():
    path = shipped_weights_path()
    assert path.is_file() and path.stat().st_size < 20 * 2**20
    assert (path.parent / "MODEL_CARD.md").is_file()
    networks = load_networks()
    params = sum(p.numel() for p in networks.fine.parameters()) + sum(p.numel() for p in networks.coarse.parameters())
    assert params <= 5_000_000


def test_shipped_model_segments_a_phantom(small_case):
    result = run_segmentation(small_case.image, device="cpu")
    assert not result.used_fallback
    metrics = case_metrics(result.labels.array, small_case.labels.array, small_case.image.spacing)
    assert metrics["brainstem"]["dice"] > 0.85
    assert metrics["artery"]["dice"] > 0.5
    assert np.array_equal(segment(small_case.image, device="cpu").array, result.labels.array)


def test_metrics_know_perfect_and_shifted_maps():
    truth = np.zeros((30, 30, 30), np.uint8)
    truth[5:25, 5:25, 5:25] = Label.BRAINSTEM
    truth[12:14, 0:30, 12:14] = Label.FACIAL_NERVE
    perfect = case_metrics(truth, truth, (0.5, 0.5, 0.5))
    assert perfect["brainstem"]["dice"] == 1.0 and perfect["facial_nerve"]["hd95_mm"] == 0.0
    assert np.isnan(perfect["lesion"]["dice"]) and perfect["lesion"]["pred_voxels"] == 0
    shifted = np.roll(truth, 2, axis=0)
    m = case_metrics(shifted, truth, (0.5, 0.5, 0.5))
    assert m["facial_nerve"]["dice"] == 0.0 and m["facial_nerve"]["hd95_mm"] == pytest.approx(1.0)
    assert m["brainstem"]["surface_dice_0.5mm"] < 1.0
    # the spacing as a nibabel header gives it (NumPy float32), anisotropic: HD95 follows the real voxel size
    across_slices = case_metrics(shifted, truth, np.array([1.5, 0.5, 0.5], np.float32))
    assert across_slices["facial_nerve"]["hd95_mm"] == pytest.approx(3.0)
    with pytest.raises(ValueError, match="spacing"):
        case_metrics(truth, truth, (0.5, 0.0, 0.5))


def test_training_smoke_run_and_resume(tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text(f"""run_dir: {tmp_path / 'run'}
cache_dir: {tmp_path / 'cache'}
n_cases: 1
min_ready_cases: 1
validation_seeds: []
steps: 2
batch_size: 1
checkpoint_every: 1
coarse_every: 1
threads: 2
""")
    runner = CliRunner()
    first = runner.invoke(app, ["train", "--config", str(config)])
    assert first.exit_code == 0, first.output
    assert (tmp_path / "run" / "nvc_unet.safetensors").is_file()
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["step"] == 2
    config.write_text(config.read_text().replace("steps: 2", "steps: 3"))
    again = runner.invoke(app, ["train", "--config", str(config), "--resume"])
    assert again.exit_code == 0, again.output
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["step"] == 3
    lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert len(lines) == 3  # 2 steps, then 1 more after resuming
    first_weights = tmp_path / "run" / "nvc_unet.safetensors"
    first_recipe = tmp_path / "first.yaml"
    first_recipe.write_text(config.read_text())
    recipe = config.read_text().replace(f"run_dir: {tmp_path / 'run'}", f"run_dir: {tmp_path / 'more'}")
    recipe = recipe.replace("n_cases: 1", "n_cases: 2").replace("min_ready_cases: 1", "min_ready_cases: 2")
    config.write_text(recipe + f"initial_weights: {first_weights}\n"
                      + "phantom_options: {lesion_probability: 1.0, lesion_type_weights: {epidermoid: 1.0}}\n"
                      + "generator_processes: 2\n")
    more = runner.invoke(app, ["train", "--config", str(config)])
    assert more.exit_code == 0, more.output
    with safe_open(str(tmp_path / "more" / "nvc_unet.safetensors"), "pt") as fh:
        assert fh.metadata()["continued_from_sha256"] == file_sha256(first_weights)
    # the recipe's lesion mix reaches the phantoms, cached apart from the default recipe's; two generators made them
    first_cache, mixed_cache = sorted((tmp_path / "cache").glob("*/0000000/info.json"), key=lambda p: len(str(p)))
    assert "lesion_type_weights" not in json.loads(first_cache.read_text())["options"]
    for seed in (0, 1):
        cached = json.loads((mixed_cache.parent.parent / f"{seed:07d}" / "info.json").read_text())
        assert cached["options"]["lesion_type_weights"] == {"epidermoid": 1.0}
        assert cached["label_voxels"][str(int(Label.LESION))] > 0
    assert json.loads((tmp_path / "more" / "log.jsonl").read_text().splitlines()[0])["cases"] == 2
    # the model card says what each run was: its own recipe, the run's notes, then the continuation's mix
    export = [sys.executable, "scripts/export_weights.py", "--target", str(tmp_path / "package")]
    notes = tmp_path / "notes.md"
    notes.write_text("* **Run history:** a smoke run.\n\n## Known limits\n\n* Three steps only.\n")
    first = subprocess.run(export + [str(tmp_path / "run"), "--config", str(first_recipe), "--notes", str(notes)], cwd=ROOT,
                           capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    card = (tmp_path / "package" / "MODEL_CARD.md").read_text()
    assert "seeds 0-0" in card and "a smoke run" in card and "* Three steps only." in card and "phantom 1.0" not in card
    more = subprocess.run(export + [str(tmp_path / "more"), "--config", str(config)], cwd=ROOT, capture_output=True, text=True)
    assert more.returncode == 0, more.stderr
    card = (tmp_path / "package" / "MODEL_CARD.md").read_text()
    assert "### Continuation of" in card and "a smoke run" in card and '"epidermoid": 1.0' in card


@pytest.mark.parametrize("recipe", ["train.yaml", "train_continue.yaml", "train_gpu.yaml", "train_lesion_continue.yaml"])
def test_shipped_training_recipes_are_valid_and_keep_off_the_evaluation_seeds(recipe):
    from pydantic import ValidationError

    from nvc_mri.config import load_config
    from nvc_mri.phantom.presets import TRAIN_SEED_LIMIT
    from nvc_mri.segment.train import TrainConfig

    fields = load_config(recipe)
    config = TrainConfig(**fields)
    assert max(config.seeds() + config.validation_seeds) < TRAIN_SEED_LIMIT
    with pytest.raises(ValidationError, match="lesion_probabilty"):
        TrainConfig(**fields, lesion_probabilty=0.5)  # misspelt, and not a recipe field anyway
    with pytest.raises(ValidationError, match="lesion_probabilty"):
        TrainConfig(**{**fields, "phantom_options": {"lesion_probabilty": 0.5}})


def test_a_misspelt_training_recipe_is_one_line_naming_the_file_and_the_key(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"run_dir: {tmp_path / 'run'}\ncache_dir: {tmp_path / 'cache'}\nn_cases: 1\nsteps: 1\nstep: 5\n")
    result = CliRunner().invoke(app, ["train", "--config", str(recipe)])
    assert result.exit_code == 2
    assert str(recipe) in result.output and "step: Extra inputs are not permitted" in result.output
    assert not (tmp_path / "run").exists()


def test_training_can_continue_from_given_weights(tmp_path):
    from nvc_mri.segment.train import TrainConfig, initial_networks

    start = load_networks()
    for p in start.fine.parameters():
        p.data.add_(0.01)  # weights that differ from the shipped ones and from any random draw
    path = tmp_path / "start.safetensors"
    save_weights(start, path)
    continued = initial_networks(str(path), start.config)
    assert all(torch.equal(a, b) for a, b in zip(continued.fine.parameters(), start.fine.parameters()))
    assert continued.sha256 and not torch.equal(next(initial_networks("shipped", start.config).fine.parameters()),
                                                next(continued.fine.parameters()))
    assert TrainConfig(run_dir=tmp_path, cache_dir=tmp_path, n_cases=1, steps=1).initial_weights is None


def test_evaluate_cli_writes_csv_and_json(tmp_path, small_case):
    import nibabel as nib

    for name in ("a", "b"):
        (tmp_path / "truth" / name).mkdir(parents=True)
        nib.save(small_case.labels.to_nifti(dtype=np.uint8), tmp_path / "truth" / name / "labels.nii.gz")
    (tmp_path / "pred").mkdir()
    nib.save(small_case.labels.to_nifti(dtype=np.uint8), tmp_path / "pred" / "a.nii.gz")
    worse = small_case.labels.array.copy()
    worse[worse == Label.ARTERY] = 0
    nib.save(small_case.labels.with_array(worse).to_nifti(dtype=np.uint8), tmp_path / "pred" / "b.nii.gz")
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "pred"), str(tmp_path / "truth")])
    assert result.exit_code == 0, result.output
    import json

    metrics = json.loads((tmp_path / "pred" / "metrics.json").read_text())
    assert metrics["cases"]["a"]["artery"]["dice"] == 1.0 and metrics["cases"]["b"]["artery"]["dice"] == 0.0
    assert metrics["summary"]["artery"]["dice_mean"] == pytest.approx(0.5)
    assert "case,structure,dice" in (tmp_path / "pred" / "metrics.csv").read_text()


def test_clean_up_keeps_one_brainstem_and_drops_small_pieces():
    from nvc_mri.segment.postprocess import clean_labels

    labels = np.zeros((30, 30, 30), np.uint8)
    labels[2:10, 2:10, 2:10] = Label.BRAINSTEM
    labels[15:17, 15:17, 15:17] = Label.BRAINSTEM     # stray piece
    labels[12:14, 12:14, 12:14] = Label.ARTERY        # 1 mm3 artery piece: kept
    labels[20, 2, 2] = Label.FACIAL_NERVE             # speck below 0.5 mm3 at 0.5 mm voxels: dropped
    labels[20:26, 20:26, 20:26] = Label.LESION        # 27 mm3: dropped
    labels[2:9, 20:29, 20:29] = Label.LESION          # 70.9 mm3: kept
    out = clean_labels(labels.copy(), np.diag([0.5, 0.5, 0.5, 1.0]), {"min_lesion_mm3": 30.0, "min_piece_mm3": 0.5})
    assert (out == Label.BRAINSTEM).sum() == 8**3 and out[16, 16, 16] == 0
    assert out[12, 12, 12] == Label.ARTERY and out[20, 2, 2] == 0
    assert out[22, 22, 22] == 0 and out[5, 25, 25] == Label.LESION


def test_the_brainstem_kept_is_the_largest_piece_near_the_midline():
    """A bigger brainstem-like blob 25 mm off the volume's centre (a hemisphere on a whole-brain scan) loses to
    the midline piece; without a midline piece the largest is kept."""
    from nvc_mri.segment.postprocess import keep_one_brainstem

    labels = np.zeros((100, 40, 40), np.uint8)      # 1 mm voxels, centre at x = 49.5 mm
    labels[46:54, 10:20, 10:30] = Label.BRAINSTEM    # midline, 1600 mm3
    labels[70:85, 10:25, 10:30] = Label.BRAINSTEM    # 28 mm off, 4500 mm3
    out = keep_one_brainstem(labels.copy(), np.eye(4), 20.0)
    assert (out[46:54, 10:20, 10:30] == Label.BRAINSTEM).all() and (out[70:85] == 0).all()
    labels[46:54] = 0
    assert (keep_one_brainstem(labels.copy(), np.eye(4), 20.0) == labels).all()


def test_clean_up_keeps_a_broken_nerve_and_drops_a_distant_nerve_piece():
    """A facial nerve broken in three pieces (gaps of 2 mm) on the right of the brainstem stays whole; a piece
    labelled facial nerve 11 mm away from it (a vessel crossing) is dropped; the left nerve is kept."""
    from nvc_mri.segment.postprocess import drop_stray_nerve_pieces

    labels = np.zeros((80, 40, 40), np.uint8)
    labels[35:45, 15:25, 15:25] = Label.BRAINSTEM                  # midline at x = 20 mm (0.5 mm voxels)
    for start in (46, 54, 62):                                        # right nerve: 3 mm pieces, 1 mm apart
        labels[start:start + 6, 19:21, 19:21] = Label.FACIAL_NERVE
    labels[60:64, 2:4, 36:38] = Label.FACIAL_NERVE                    # about 11 mm from the nerve
    labels[20:34, 19:21, 19:21] = Label.FACIAL_NERVE                  # left nerve
    out = drop_stray_nerve_pieces(labels.copy(), np.diag([0.5, 0.5, 0.5, 1.0]), Label.FACIAL_NERVE, 5.0)
    assert (out[46:68, 19:21, 19:21] == labels[46:68, 19:21, 19:21]).all()
    assert (out[60:64, 2:4, 36:38] == 0).all()
    assert (out[20:34, 19:21, 19:21] == Label.FACIAL_NERVE).all()


def test_class_weights_move_the_thin_structures_label_boundary():
    """Where the network gives a nerve or artery 0.4 against background's 0.6, the weights of configs/model.yaml
    (thin structures x2) label it nerve or artery; a lesion at 0.45 is not weighted and stays background, and with
    no weights every voxel is background. The labels come back on the volume's own grid."""
    from nvc_mri.config import load_config
    from nvc_mri.segment.inference import _labels_on_input_grid
    from nvc_mri.segment.postprocess import class_weights

    volume = make_volume(shape=(12, 10, 8), spacing=(1.0, 1.0, 1.0), angles_deg=(0, 0, 0))
    grid = bounding_grid(volume.shape, volume.affine, 1.0)
    assert grid.shape == volume.shape
    probabilities = torch.zeros((len(Label),) + grid.shape)
    probabilities[Label.BACKGROUND] = 0.6
    probabilities[Label.FACIAL_NERVE, :, 2, 2] = 0.4
    probabilities[Label.ARTERY, :, 6, 5] = 0.4
    probabilities[Label.LESION, 2:5, 7:9, 1:3] = 0.45
    postprocess = load_config("model.yaml")["postprocess"]
    weights = class_weights(postprocess)
    assert weights[Label.BACKGROUND] == 1 and weights[Label.LESION] == 1 and weights[Label.FACIAL_NERVE] > 1.5
    labels = _labels_on_input_grid(probabilities, grid, volume, postprocess)
    assert (labels[:, 2, 2] == Label.FACIAL_NERVE).all() and (labels[:, 6, 5] == Label.ARTERY).all()
    assert (labels == Label.FACIAL_NERVE).sum() == 12 and (labels == Label.ARTERY).sum() == 12 and (labels == Label.LESION).sum() == 0
    assert (class_weights({}) == 1).all()
    assert (_labels_on_input_grid(probabilities, grid, volume, {}) == 0).all()
    for bad in ({"facial": 2.0}, {"artery": 0.0}, {"artery": "two"}):
        with pytest.raises(ValueError, match="class_weights"):
            class_weights({"class_weights": bad})


def test_arteries_are_carried_on_to_the_facial_nerve_where_the_network_half_sees_them():
    """On 0.5 x 0.5 x 1 mm voxels, background between the facial nerve and an artery 1.5 mm from it becomes artery
    where the network gives artery a tenth of background's probability (shipped weight 10 or more); the same beside a
    one-voxel artery speck, or 3.5 mm from the nerve, stays background, as does CSF at 1/100, and the nerve's own
    voxels stay nerve; weight 1 changes nothing; without a smallest piece the speck is carried on; an unknown key raises."""
    from nvc_mri.config import load_config
    from nvc_mri.segment.inference import _labels_on_input_grid
    from nvc_mri.segment.postprocess import arteries_reaching_the_facial_nerve

    labels = np.zeros((40, 30, 12), np.uint8)
    labels[:, 15, 6] = Label.FACIAL_NERVE                  # along x
    labels[10:14, 18:20, 6] = Label.ARTERY                 # 2 mm3 of artery, 1.5 mm from the nerve
    labels[10:14, 23:25, 6] = Label.ARTERY                 # another, 4 mm from it
    labels[30, 19, 6] = Label.ARTERY                       # a 0.25 mm3 speck
    background = np.full(labels.shape, 0.99, np.float32)
    artery = np.full(labels.shape, 0.0099, np.float32)     # CSF everywhere: 1/100 of background
    for half_seen in (np.s_[10:14, 16:18, 6], np.s_[10:14, 22, 6], np.s_[28:32, 16:19, 6]):
        artery[half_seen], background[half_seen] = 0.09, 0.9   # a tenth
    artery[20:24, 15, 6] = 0.5                             # on the nerve itself
    spacing = np.array([0.5, 0.5, 1.0])
    postprocess = load_config("model.yaml")["postprocess"]
    near, min_mm3 = postprocess["artery_near_facial_nerve"], postprocess["min_piece_mm3"]
    assert near["weight"] >= 10 and 1.0 <= near["reach_mm"] < 3.5 and 0.25 < min_mm3 <= 2.0
    out = arteries_reaching_the_facial_nerve(labels.copy(), artery, background, spacing, near["weight"], near["reach_mm"], min_mm3)
    assert (out[10:14, 16:18, 6] == Label.ARTERY).all() and (out == Label.ARTERY).sum() == (labels == Label.ARTERY).sum() + 8
    assert (out[:, 15, 6] == Label.FACIAL_NERVE).all() and (out[10:14, 22, 6] == 0).all()
    assert (arteries_reaching_the_facial_nerve(labels.copy(), artery, background, spacing, 1.0, near["reach_mm"], min_mm3) == labels).all()
    speck_carried = arteries_reaching_the_facial_nerve(labels.copy(), artery, background, spacing, near["weight"], near["reach_mm"], 0.0)
    assert (speck_carried[28:32, 16:19, 6] == Label.ARTERY).all()
    volume = make_volume(shape=(6, 6, 6), spacing=(1.0, 1.0, 1.0), angles_deg=(0, 0, 0))
    grid = bounding_grid(volume.shape, volume.affine, 1.0)
    for bad in ({"weight": 10.0, "reach": 3.0}, {"weight": "ten", "reach_mm": 3.0}):
        with pytest.raises(ValueError, match="artery_near_facial_nerve"):
            _labels_on_input_grid(torch.full((len(Label),) + grid.shape, 1 / len(Label)), grid, volume,
                                  {"artery_near_facial_nerve": bad})


def test_lesion_pieces_without_coarse_support_are_dropped():
    """Two lesion pieces on an oblique 0.5 mm grid: the one where the coarse network's lesion probability
    reaches 0.5 stays, the one where it stays at 0.2 goes; other labels are untouched; 0 switches the rule off."""
    from nvc_mri.io.grid import WorldGrid
    from nvc_mri.segment.postprocess import drop_unconfirmed_lesions

    labels = np.zeros((40, 40, 40), np.uint8)
    labels[5:12, 5:12, 5:12] = Label.LESION     # near world x = -4 mm (axes flipped below)
    labels[28:35, 28:35, 28:35] = Label.LESION
    labels[20, 20, 20] = Label.ARTERY
    affine = np.diag([-0.5, 0.5, 0.5, 1.0])
    affine[:3, 3] = [10.0, -10.0, -10.0]
    coarse_grid = WorldGrid((-12.0, -12.0, -12.0), 2.0, (13, 13, 13))
    coarse = np.full(coarse_grid.shape, 0.2, np.float32)
    coarse[:, :6, :6] = 0.9                      # world y, z below about 0 mm: the first piece
    out = drop_unconfirmed_lesions(labels.copy(), affine, coarse, coarse_grid, 0.5)
    assert (out[5:12, 5:12, 5:12] == Label.LESION).all()
    assert (out[28:35, 28:35, 28:35] == 0).all() and out[20, 20, 20] == Label.ARTERY
    assert (drop_unconfirmed_lesions(labels.copy(), affine, coarse, coarse_grid, 0.0) == labels).all()


def test_a_lesion_piece_grazing_coarse_support_at_one_edge_is_dropped():
    """Two lesion pieces, each reaching a coarse lesion probability over 0.5: the first (6 mm) lies within the
    supported block, the second (8 mm) overlaps its fading edge by 1 mm (mean support 0.08 over its voxels). With a
    minimal mean of 0.1 the second goes; without it (0) both stay, as the maximum alone allows."""
    from nvc_mri.io.grid import WorldGrid
    from nvc_mri.segment.postprocess import drop_unconfirmed_lesions

    labels = np.zeros((60, 30, 30), np.uint8)
    labels[4:16, 8:20, 8:20] = Label.LESION      # x 2-7.5 mm
    labels[25:41, 8:20, 8:20] = Label.LESION     # x 12.5-20 mm: support 0.675, 0.45, 0.225 at x 12.5-13.5 mm
    affine = np.diag([0.5, 0.5, 0.5, 1.0])
    coarse_grid = WorldGrid((0.0, 0.0, 0.0), 2.0, (16, 8, 8))
    coarse = np.zeros(coarse_grid.shape, np.float32)
    coarse[0:7, :, :] = 0.9                      # x 0-12 mm, falling linearly to 0 at 14 mm
    out = drop_unconfirmed_lesions(labels.copy(), affine, coarse, coarse_grid, 0.5, None, 0.1)
    assert (out[4:16, 8:20, 8:20] == Label.LESION).all() and (out[20:] == 0).all()
    assert (drop_unconfirmed_lesions(labels.copy(), affine, coarse, coarse_grid, 0.5, None, 0.0) == labels).all()


def test_unconfirmed_lesion_against_the_nerves_away_from_the_brainstem_is_kept():
    """The coarse pass misses small intracanalicular schwannomas. With no coarse support anywhere, only the lesion
    piece lying against the nerve (1.5 mm off it) far from the brainstem stays; a piece wrapped round the nerve
    (thickened nerve), one against the nerve but on the brainstem, and one far from the nerve go; a piece with
    coarse support stays. Without the postprocess config every unconfirmed piece goes, as before."""
    from nvc_mri.config import load_config
    from nvc_mri.io.grid import WorldGrid
    from nvc_mri.segment.postprocess import drop_unconfirmed_lesions

    labels = np.zeros((80, 40, 40), np.uint8)
    labels[0:20, 10:30, :] = Label.BRAINSTEM                  # x 0-9.5 mm
    labels[40:50, 18:23, 18:23] = Label.LESION               # wrapped round the nerve
    labels[20:78, 20, 20] = Label.VESTIBULOCOCHLEAR_NERVE    # along x at y = z = 10 mm
    labels[60:68, 23:28, 17:24] = Label.LESION               # against the nerve, 10 mm lateral to the brainstem
    labels[21:27, 23:28, 17:24] = Label.LESION               # against the nerve, 1 mm from the brainstem
    labels[60:66, 2:8, 2:8] = Label.LESION                   # far from the nerve
    labels[72:76, 2:6, 2:6] = Label.LESION                   # far from the nerve, with coarse support (numbered last)
    affine = np.diag([0.5, 0.5, 0.5, 1.0])
    coarse_grid = WorldGrid((0.0, 0.0, 0.0), 2.0, (20, 10, 10))
    coarse = np.zeros(coarse_grid.shape, np.float32)
    coarse[18:20, 0:2, 0:2] = 0.9
    config = load_config("model.yaml")["postprocess"]
    out = drop_unconfirmed_lesions(labels.copy(), affine, coarse, coarse_grid, 0.5, config)
    lesion = out == Label.LESION
    assert lesion[60:68, 23:28, 17:24].all() and lesion[72:76, 2:6, 2:6].all() and lesion.sum() == 8 * 5 * 7 + 4 ** 3
    assert (out == Label.VESTIBULOCOCHLEAR_NERVE).sum() == (labels == Label.VESTIBULOCOCHLEAR_NERVE).sum()
    assert (drop_unconfirmed_lesions(labels.copy(), affine, coarse, coarse_grid, 0.5) == Label.LESION).sum() == 4 ** 3


def test_a_lesion_piece_grows_over_its_coarse_support_within_its_own_signal():
    """The fine network labels one half of a 16 mm mass; the coarse network supports all of it and spills 2-4 mm
    beyond into CSF and bone. The piece grows over the mass and stops at the CSF and bone, whose signal is not the
    piece's; a second mass with coarse support but no lesion piece stays unlabelled (nothing is created); a
    nerve label inside the mass stays nerve; 0 switches the growth off."""
    from nvc_mri.io.grid import WorldGrid
    from nvc_mri.segment.postprocess import grow_lesions_into_coarse_support

    rng = np.random.default_rng(0)
    affine = np.diag([-0.5, 0.5, 0.5, 1.0])           # x flipped: index 0 is world x = 20 mm
    affine[:3, 3] = [20.0, -20.0, -10.0]
    shape = (81, 81, 41)
    world = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1) @ affine[:3, :3].T + affine[:3, 3]
    mass = np.linalg.norm(world - [-8.0, 0.0, 0.0], axis=-1) <= 8.0
    other_mass = np.linalg.norm(world - [12.0, 0.0, 0.0], axis=-1) <= 4.0
    bone = (world[..., 1] > 9.0) & ~mass
    image = np.where(mass | other_mass, 0.45, np.where(bone, 0.05, 1.0)) + rng.normal(0, 0.02, shape)
    labels = np.zeros(shape, np.uint8)
    labels[mass & (world[..., 0] < -8.0)] = Label.LESION
    nerve = mass & (np.abs(world[..., 1]) < 0.6) & (np.abs(world[..., 2]) < 0.6)
    labels[nerve] = Label.FACIAL_NERVE
    coarse_grid = WorldGrid((-20.0, -20.0, -10.0), 2.0, (21, 21, 11))
    coarse_world = np.stack(np.meshgrid(*[np.arange(n) for n in coarse_grid.shape], indexing="ij"), -1) * 2.0 + coarse_grid.origin
    coarse = np.where((np.linalg.norm(coarse_world - [-8.0, 0.0, 0.0], axis=-1) <= 11.0)
                      | (np.linalg.norm(coarse_world - [12.0, 0.0, 0.0], axis=-1) <= 6.0), 0.9, 0.02).astype(np.float32)

    grown = grow_lesions_into_coarse_support(labels.copy(), image, affine, coarse, coarse_grid, 0.3, 5.0)
    lesion = grown == Label.LESION
    assert lesion[mass & ~nerve].mean() > 0.95           # was half; its noisy voxels outside the range are enclosed
    assert not lesion[~mass].any()                        # not into the CSF or bone the coarse support spills over
    assert not lesion[other_mass].any()
    assert (grown[nerve] == Label.FACIAL_NERVE).all()
    off = grow_lesions_into_coarse_support(labels.copy(), image, affine, coarse, coarse_grid, 0.0, 5.0)
    assert (off == labels).all()


def test_evaluate_cli_names_a_missing_folder(tmp_path):
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "missing"), str(tmp_path)])
    assert result.exit_code == 2 and "missing: not a folder" in result.output


def test_evaluate_cli_names_a_cropped_prediction_and_a_missing_one(tmp_path, small_case):
    """A prediction on another grid (here the same affine, three slices short) is refused naming its file, not
    with a bare shape error; a reference case without a prediction is named, not silently left out."""
    import nibabel as nib

    for name in ("a", "b"):
        (tmp_path / "truth" / name).mkdir(parents=True)
        nib.save(small_case.labels.to_nifti(dtype=np.uint8), tmp_path / "truth" / name / "labels.nii.gz")
    (tmp_path / "pred").mkdir()
    labels = small_case.labels.array
    nib.save(nib.Nifti1Image(labels[:, :, :-3], small_case.labels.affine), tmp_path / "pred" / "a.nii.gz")
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "pred"), str(tmp_path / "truth")])
    assert result.exit_code == 2 and "a.nii.gz: grid (shape" in result.output
    nib.save(small_case.labels.to_nifti(dtype=np.uint8), tmp_path / "pred" / "a.nii.gz")
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "pred"), str(tmp_path / "truth")])
    assert result.exit_code == 0 and "1 reference case(s) have no prediction" in result.output and ": b" in result.output
    foreign = np.where(labels == Label.ARTERY, 7, labels).astype(np.int16)  # another label convention
    nib.save(nib.Nifti1Image(foreign, small_case.labels.affine), tmp_path / "pred" / "a.nii.gz")
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "pred"), str(tmp_path / "truth")])
    assert result.exit_code == 2 and "a.nii.gz: label values 7 are not nvc-mri labels" in result.output


def _synthetic_training_case(rng: np.random.Generator):
    from nvc_mri.segment.data import CachedCase
    from nvc_mri.segment.patches import class_voxel_index

    labels = np.zeros((70, 70, 52), np.uint8)
    labels[20:50, 20:50, 10:40] = Label.BRAINSTEM
    labels[50:60, 33:36, 24:27] = Label.FACIAL_NERVE
    image = (0.3 + 0.7 * (labels == 0) + rng.normal(0, 0.05, labels.shape)).astype(np.float16)
    coarse_labels = labels[::3, ::3, ::3].copy()
    case = CachedCase(image, labels, image[::3, ::3, ::3].copy(), coarse_labels, 0.5,
                      {"label_voxels": {int(v): int((labels == v).sum()) for v in np.unique(labels)}})
    return case, class_voxel_index(labels)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_training_step_updates_float32_weights_in_either_precision(precision, tmp_path):
    from nvc_mri.segment.train import TrainConfig, optimisers_for, segmentation_loss, training_step

    config = TrainConfig(run_dir=tmp_path, cache_dir=tmp_path, n_cases=1, steps=10, precision=precision, coarse_every=1)
    torch.manual_seed(0)
    networks = new_networks()
    networks.fine.train(); networks.coarse.train()
    before = {k: v.clone() for k, v in networks.state_dict().items()}
    optimisers = optimisers_for(networks, config.learning_rate, config.weight_decay)
    seen = []
    networks.fine.model[0].conv.unit0.conv.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    rng = np.random.default_rng(0)
    stats = training_step(networks, optimisers, segmentation_loss(),
                          [_synthetic_training_case(rng)], rng, 0, config, (64, 64, 48), (16, 16, 16))
    assert np.isfinite(stats["loss"]) and np.isfinite(stats["coarse_loss"])
    assert seen == [getattr(torch, precision)]  # the forward pass ran in the precision asked for
    after = networks.state_dict()
    for name in ("fine.model.0.conv.unit0.conv.weight", "coarse.model.0.conv.unit0.conv.weight"):
        assert after[name].dtype == torch.float32 and not torch.equal(after[name], before[name])


def test_channels_last_training_is_the_same_arithmetic_and_exports_plain_weights(tmp_path):
    """for_training lays the weights out channels-last (about a fifth faster per step on the CPU): from the same
    weights and batch the loss and every gradient must be those of the plain layout (weights after an AdamW step
    are not compared: its first step moves each weight by the sign of its gradient, and rounding flips the sign
    of gradients that are zero in exact arithmetic), and the exported file must load as before."""
    from nvc_mri.segment.model import load_networks, save_weights
    from nvc_mri.segment.patches import batch
    from nvc_mri.segment.train import for_training, optimise, segmentation_loss

    rng = np.random.default_rng(0)
    x, y = batch([_synthetic_training_case(rng)], rng, (64, 64, 48), 2, 0.8)
    runs = []
    for channels_last in (False, True):
        torch.manual_seed(0)
        networks = new_networks()
        for_training(networks) if channels_last else networks.fine.train()
        optimiser = torch.optim.SGD(networks.fine.parameters(), lr=0.0)  # keeps the weights; leaves the gradients
        loss = optimise(networks.fine, optimiser, segmentation_loss(), x, y)
        runs.append((loss, {n: p.grad.clone() for n, p in networks.fine.named_parameters()}, networks))
    (plain_loss, plain_grads, _), (last_loss, last_grads, last_nets) = runs
    assert last_nets.fine.model[0].conv.unit0.conv.weight.is_contiguous(memory_format=torch.channels_last_3d)
    assert last_loss == pytest.approx(plain_loss, rel=1e-5)
    largest = max(float(g.abs().max()) for g in plain_grads.values())
    for name, grad in plain_grads.items():
        torch.testing.assert_close(last_grads[name], grad, atol=1e-4 * largest, rtol=1e-3, msg=name)
    save_weights(last_nets, tmp_path / "w.safetensors")
    reloaded = load_networks(tmp_path / "w.safetensors")
    for name, value in last_nets.fine.state_dict().items():
        torch.testing.assert_close(reloaded.fine.state_dict()[name], value, msg=name)


def test_training_refuses_cuda_without_a_gpu(tmp_path):
    from nvc_mri.segment.train import TrainConfig, train

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    config = TrainConfig(run_dir=tmp_path / "run", cache_dir=tmp_path / "cache", n_cases=1, steps=1, device="cuda")
    with pytest.raises(InputError, match="no CUDA device"):
        train(config)
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_training_leaves_a_core_to_each_phantom_generator():
    from nvc_mri.segment.train import share_cores

    before = torch.get_num_threads()
    try:
        share_cores(2, 1, torch.device("cpu"))
        assert torch.get_num_threads() == 1
        share_cores(2, 0, torch.device("cpu"))
        assert torch.get_num_threads() == 2
        share_cores(2, 1, torch.device("cuda"))  # the GPU does the work: the CPU threads stay
        assert torch.get_num_threads() == 2
        share_cores(1, 1, torch.device("cpu"))
        assert torch.get_num_threads() == 1
        share_cores(8, 3, torch.device("cpu"))  # three generators on an 8-core machine
        assert torch.get_num_threads() == 5
    finally:
        torch.set_num_threads(before)


def test_segment_cli_refuses_a_t1_series_unless_forced(tmp_path, small_case):
    """`nvc-mri segment` judges the sequence as `analyze` does: a T1 series is refused with one line and no file,
    and with --force it is segmented with the forced-analysis warning."""
    from nvc_mri.io.dicom_write import write_dicom_series

    write_dicom_series(small_case.image, tmp_path / "t1", overrides=T1_HEADER)
    out = tmp_path / "labels.nii.gz"
    refused = CliRunner().invoke(app, ["segment", str(tmp_path / "t1"), "-o", str(out), "--device", "cpu"])
    assert refused.exit_code == 2 and "not a heavily T2-weighted" in refused.output and not out.exists()
    forced = CliRunner().invoke(app, ["segment", str(tmp_path / "t1"), "-o", str(out), "--device", "cpu", "--force"])
    assert forced.exit_code == 0 and "FORCED ANALYSIS" in forced.output and out.is_file()


def test_fine_tune_refuses_labels_in_another_convention_without_a_dataset_json(tmp_path, small_case):
    """Labels with a value nvc-mri does not use (here the artery as 7) and no dataset.json to map them by name:
    refused naming the file, before any training (they were passed on and the artery was lost)."""
    import nibabel as nib

    from nvc_mri.segment.finetune import FineTuneConfig, fine_tune

    (tmp_path / "ds" / "imagesTr").mkdir(parents=True)
    (tmp_path / "ds" / "labelsTr").mkdir()
    nib.save(small_case.image.to_nifti(), tmp_path / "ds" / "imagesTr" / "c1_0000.nii.gz")
    labels = small_case.labels.array.astype(np.int16)
    labels[labels == Label.ARTERY] = 7
    nib.save(nib.Nifti1Image(labels, small_case.labels.affine), tmp_path / "ds" / "labelsTr" / "c1.nii.gz")
    with pytest.raises(InputError, match="c1.nii.gz: label values 7 are not nvc-mri labels"):
        fine_tune(tmp_path / "ds", tmp_path / "run", FineTuneConfig(steps=1, device="cpu"))


def test_training_recipe_is_the_users_file_or_else_the_shipped_one(tmp_path, monkeypatch):
    """A bare file name in the working folder was looked up among the shipped configs (FileNotFoundError);
    `configs/train.yaml` outside a checkout now means the shipped recipe; bad YAML gets one line."""
    from nvc_mri.cli import training_recipe
    from nvc_mri.config import load_config

    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.yaml").write_text("run_dir: run\ncache_dir: cache\nn_cases: 1\nstepz: 2\n")
    result = CliRunner().invoke(app, ["train", "--config", "mine.yaml"])
    assert result.exit_code == 2 and "stepz: Extra inputs are not permitted" in result.output
    assert not (tmp_path / "run").exists()
    assert training_recipe(Path("configs/train.yaml")) == load_config("train.yaml")
    (tmp_path / "broken.yaml").write_text("a: [1, 2\n")
    for name, message in (("broken.yaml", "not readable YAML"), ("missing.yaml", "training recipe not found")):
        result = CliRunner().invoke(app, ["train", "--config", name])
        assert result.exit_code == 2 and message in result.output
