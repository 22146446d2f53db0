"""The package as installed: every subpackage listed, configs shipped, console command present."""

from __future__ import annotations

import tomllib
from pathlib import Path

import nvc_mri
from nvc_mri.config import config_path, load_config

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "nvc_mri").rglob("__init__.py")}
    assert found | {"nvc_mri.configs"} == listed


def test_shipped_configs_are_the_top_level_configs():
    assert config_path("series_rules.yaml").resolve() == (ROOT / "configs" / "series_rules.yaml").resolve()
    assert load_config("io.yaml")["min_slices"] >= 2


def test_version():
    assert nvc_mri.__version__.count(".") == 2


def test_label_values_match_config():
    from nvc_mri.labels import LABEL_NAMES

    shipped = {int(k): v["name"] for k, v in load_config("labels.yaml")["labels"].items()}
    assert shipped == LABEL_NAMES
