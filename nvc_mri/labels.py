"""Label values, defined once (mirrors ``configs/labels.yaml``, which a test keeps in step)."""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Label(IntEnum):
    """Label values of every label map of the toolkit."""

    BACKGROUND = 0
    BRAINSTEM = 1
    FACIAL_NERVE = 2          # CN VII
    VESTIBULOCOCHLEAR_NERVE = 3  # CN VIII
    ARTERY = 4
    LESION = 5


LABEL_NAMES = {int(v): v.name.lower() for v in Label}


def label_problem(labels: np.ndarray) -> str | None:
    """Why ``labels`` is not an nvc-mri label map (non-finite or fractional values, values other than
    :class:`Label`'s), or None when it is."""
    labels = np.asarray(labels)
    if labels.dtype.kind == "f":
        if not np.isfinite(labels).all():
            return "label map holds NaN or infinite values"
        if (labels != np.round(labels)).any():
            return "label map holds fractional values (interpolated labels?); labels must be whole numbers"
    elif labels.dtype.kind not in "iub":
        return f"label map has data type {labels.dtype}, not integers"
    if labels.size == 0:
        return "label map is empty"
    low, high = float(labels.min()), float(labels.max())
    if low < 0 or high > max(Label):
        present = np.unique(labels[(labels < 0) | (labels > max(Label))])
        shown = ", ".join(str(int(v)) for v in present[:5]) + (" ..." if len(present) > 5 else "")
        names = ", ".join(f"{int(v)} {v.name.lower()}" for v in Label)
        return f"label values {shown} are not nvc-mri labels ({names}); map your labels to these first"
    return None


def as_label_map(labels: np.ndarray) -> np.ndarray:
    """``labels`` as a uint8 array of :class:`Label` values; ``ValueError`` saying why when it is not one."""
    problem = label_problem(labels)
    if problem:
        raise ValueError(problem)
    return np.asarray(labels).astype(np.uint8, copy=False)
