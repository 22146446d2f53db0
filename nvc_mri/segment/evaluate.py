"""Segmentation accuracy against reference labels: Dice, 95% Hausdorff distance and surface Dice in mm.

Metrics come from MONAI with the volumes' real voxel spacing. A class absent from the
reference has no Dice (NaN); voxels predicted for it are counted as false positives.
"""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
import torch.nn.functional as F
from monai.metrics import compute_dice, compute_hausdorff_distance, compute_surface_dice

from nvc_mri.atomic import atomic_write_text
from nvc_mri.errors import InputError
from nvc_mri.labels import LABEL_NAMES, as_label_map, label_problem

FOREGROUND = [name for value, name in sorted(LABEL_NAMES.items()) if value != 0]
SURFACE_TOLERANCE_MM = 0.5


def _crop_to_foreground(pred: np.ndarray, truth: np.ndarray, margin: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Crop both maps to the box of their union of foreground (metrics unchanged, much faster)."""
    where = np.argwhere((pred > 0) | (truth > 0))
    if len(where) == 0:
        return pred, truth
    lo = np.maximum(where.min(0) - margin, 0)
    hi = np.minimum(where.max(0) + margin + 1, pred.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    return pred[box], truth[box]


def case_metrics(pred: np.ndarray, truth: np.ndarray, spacing: tuple[float, float, float]) -> dict[str, dict[str, float]]:
    """Per-class metrics of one case.

    Parameters
    ----------
    pred, truth : ndarray of int, same shape
        Label maps (``nvc_mri.labels.Label`` values).
    spacing : sequence of 3 floats
        Voxel size in mm along the array axes (a nibabel header's ``get_zooms()[:3]`` will do).

    Returns
    -------
    dict
        ``{class_name: {"dice", "hd95_mm", "surface_dice_0.5mm", "truth_voxels", "pred_voxels"}}``.
    """
    if pred.shape != truth.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from reference shape {truth.shape}")
    spacing = [float(s) for s in spacing]  # MONAI takes Python floats only, not NumPy's
    if len(spacing) != 3 or not all(math.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(f"spacing {spacing} is not three positive voxel sizes in mm")
    pred, truth = _crop_to_foreground(as_label_map(pred), as_label_map(truth))
    n = len(LABEL_NAMES)
    p = F.one_hot(torch.as_tensor(pred.astype(np.int64)), n).permute(3, 0, 1, 2)[None]
    t = F.one_hot(torch.as_tensor(truth.astype(np.int64)), n).permute(3, 0, 1, 2)[None]
    with warnings.catch_warnings():  # empty classes are handled below, not warned about
        warnings.filterwarnings("ignore", message=".*all 0, this may result in nan/inf distance")
        # MONAI's own surface-distance code passes an argument it has deprecated; nothing for a user to act on
        warnings.filterwarnings("ignore", message=".*always_return_as_numpy", category=FutureWarning)
        dice = compute_dice(p, t, include_background=False, ignore_empty=True)[0]
        hd95 = compute_hausdorff_distance(p, t, include_background=False, percentile=95, spacing=spacing)[0]
        nsd = compute_surface_dice(p, t, [SURFACE_TOLERANCE_MM] * (n - 1), include_background=False, spacing=spacing)[0]
    out = {}
    for c, name in enumerate(FOREGROUND):
        truth_voxels, pred_voxels = int(t[0, c + 1].sum()), int(p[0, c + 1].sum())
        present = truth_voxels > 0
        out[name] = {
            "dice": float(dice[c]) if present else math.nan,
            "hd95_mm": float(hd95[c]) if present and pred_voxels > 0 else math.nan,
            "surface_dice_0.5mm": float(nsd[c]) if present else math.nan,
            "truth_voxels": truth_voxels,
            "pred_voxels": pred_voxels,
        }
    return out


def _label_files(folder: Path) -> dict[str, Path]:
    """Case name -> label file: ``<case>/labels.nii.gz`` (phantom layout) or ``<case>.nii.gz``."""
    files = {p.parent.name: p for p in folder.glob("*/labels.nii.gz")}
    files.update({p.name.removesuffix(".nii.gz"): p for p in folder.glob("*.nii.gz")})
    return files


def summarise(per_case: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Mean, median and count over cases for each class and metric (NaNs skipped)."""
    summary = {}
    for name in FOREGROUND:
        row = {}
        for metric in ("dice", "hd95_mm", "surface_dice_0.5mm"):
            values = np.array([case[name][metric] for case in per_case.values()], float)
            values = values[np.isfinite(values)]
            row[f"{metric}_mean"] = float(values.mean()) if len(values) else math.nan
            row[f"{metric}_median"] = float(np.median(values)) if len(values) else math.nan
            row["cases"] = len(values) if metric == "dice" else row.get("cases", 0)
        row["false_positive_cases"] = sum(1 for case in per_case.values() if case[name]["truth_voxels"] == 0 and case[name]["pred_voxels"] > 0)
        summary[name] = row
    return summary


def evaluate_folders(pred_dir: str | Path, truth_dir: str | Path, out_dir: str | Path | None = None) -> dict:
    """Compare every case found in both folders; optionally write ``metrics.csv`` and ``metrics.json``.

    Raises
    ------
    InputError
        When a folder is missing, no case appears in both folders, or grids differ.
    """
    for folder in (pred_dir, truth_dir):
        if not Path(folder).is_dir():
            raise InputError(str(folder), "not a folder")
    preds, truths = _label_files(Path(pred_dir)), _label_files(Path(truth_dir))
    names = sorted(set(preds) & set(truths))
    if not names:
        raise InputError(str(pred_dir), f"no case matches a reference label map in {truth_dir}")
    per_case = {}
    for name in names:
        p_img, t_img = nib.load(preds[name]), nib.load(truths[name])
        if p_img.shape[:3] != t_img.shape[:3] or not np.allclose(p_img.affine, t_img.affine, atol=1e-3):
            raise InputError(str(preds[name]), f"grid (shape {p_img.shape}) differs from the reference {truths[name]} (shape {t_img.shape})")
        arrays = {}
        for path, img in ((preds[name], p_img), (truths[name], t_img)):
            arrays[path] = np.asarray(img.dataobj)
            if problem := label_problem(arrays[path]):
                raise InputError(str(path), problem)
        spacing = t_img.header.get_zooms()[:3]
        per_case[name] = case_metrics(arrays[preds[name]], arrays[truths[name]], spacing)
    result = {"cases": per_case, "summary": summarise(per_case), "missing_predictions": sorted(set(truths) - set(preds))}
    if out_dir is not None:
        out = Path(out_dir)
        atomic_write_text(out / "metrics.json", json.dumps(result, indent=2, allow_nan=True))
        atomic_write_text(out / "metrics.csv", metrics_csv(per_case))
    return result


def metrics_csv(per_case: dict[str, dict[str, dict[str, float]]]) -> str:
    """One row per case and class."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["case", "structure", "dice", "hd95_mm", "surface_dice_0.5mm", "truth_voxels", "pred_voxels"])
    for case, classes in per_case.items():
        for name, m in classes.items():
            writer.writerow([case, name] + [m[k] for k in ("dice", "hd95_mm", "surface_dice_0.5mm", "truth_voxels", "pred_voxels")])
    return buffer.getvalue()
