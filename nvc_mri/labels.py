"""Label values, defined once (mirrors ``configs/labels.yaml``, which a test keeps in step)."""

from __future__ import annotations

from enum import IntEnum


class Label(IntEnum):
    """Label values of every label map of the toolkit."""

    BACKGROUND = 0
    BRAINSTEM = 1
    FACIAL_NERVE = 2          # CN VII
    VESTIBULOCOCHLEAR_NERVE = 3  # CN VIII
    ARTERY = 4
    LESION = 5


LABEL_NAMES = {int(v): v.name.lower() for v in Label}
