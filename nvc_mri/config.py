"""Access to the defaults shipped in ``configs/`` (installed as ``nvc_mri.configs``)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml


def config_path(name: str) -> Path:
    """Path of a shipped config file, e.g. ``config_path("series_rules.yaml")``."""
    return Path(str(resources.files("nvc_mri.configs").joinpath(name)))


@lru_cache(maxsize=None)
def _load_shipped(name: str) -> Any:
    with open(config_path(name), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def load_config(name_or_path: str | Path) -> Any:
    """Load a YAML config: a shipped name (``"series_rules.yaml"``) or a user's file path.

    Shipped configs are cached and returned as read; callers must not mutate them.
    """
    path = Path(name_or_path)
    if len(path.parts) > 1 or path.is_absolute():
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    return _load_shipped(str(name_or_path))
