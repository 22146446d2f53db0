"""Access to the defaults shipped in ``configs/`` (installed as ``nvc_mri.configs``), and user overrides.

A user changes defaults without editing the package: ``use_config(path)`` (the ``--config``
option) takes a folder of YAML files named like the shipped ones (``contact.yaml`` ...) or one
YAML file whose top-level keys are those names; each is merged key by key over the shipped file.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import hashlib
import json
from collections.abc import Iterator
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from nvc_mri.errors import InputError

_overrides: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("nvc_config_overrides", default={})


def config_path(name: str) -> Path:
    """Path of a shipped config file, e.g. ``config_path("series_rules.yaml")``."""
    return Path(str(resources.files("nvc_mri.configs").joinpath(name)))


@lru_cache(maxsize=None)
def _load_shipped(name: str) -> Any:
    with open(config_path(name), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = _merge(base.get(key), value)
        return out
    return copy.deepcopy(override)


def load_config(name_or_path: str | Path) -> Any:
    """Load a YAML config: a shipped name (``"series_rules.yaml"``) or a user's file path.

    Shipped configs are cached and returned as read (with any active :func:`use_config`
    overrides merged in); callers must not mutate them.
    """
    path = Path(name_or_path)
    if len(path.parts) > 1 or path.is_absolute():
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    name = str(name_or_path)
    override = _overrides.get().get(name)
    return _load_shipped(name) if override is None else _merge(_load_shipped(name), override)


def shipped_config_names() -> set[str]:
    """File names of the configs shipped in the package (``configs/`` of the repository)."""
    return {p.name for p in Path(str(resources.files("nvc_mri.configs"))).glob("*.yaml")}


def read_overrides(path: str | Path) -> dict[str, Any]:
    """Overrides from a folder of YAML files or one YAML file keyed by shipped file names."""
    path = Path(path)
    shipped = shipped_config_names()
    try:
        if path.is_dir():
            found = {p.name: yaml.safe_load(p.read_text(encoding="utf-8")) or {} for p in sorted(path.glob("*.yaml"))}
        elif path.is_file():
            found = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        else:
            raise InputError(path, "config not found")
    except yaml.YAMLError as exc:
        raise InputError(path, f"config is not valid YAML ({str(exc).splitlines()[0]})") from None
    unknown = sorted(set(found) - shipped) if isinstance(found, dict) else ["(not a mapping)"]
    if unknown:
        raise InputError(path, f"unknown config name(s) {unknown}; expected some of {sorted(shipped)}")
    for name, override in found.items():
        problem = override_problem(_load_shipped(name), override, name)
        if problem:
            raise InputError(path, problem)
    return found


# Mappings whose keys a user may choose (label or sequence family names, checked where they are used); every other
# mapping in a shipped config takes only the keys it ships with.
_OPEN_MAPPINGS = {("model.yaml", "postprocess.class_weights"), ("series_rules.yaml", "families")}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return "a number"
    return {dict: "a mapping", list: "a list", str: "a text"}.get(type(value), type(value).__name__)


def override_problem(shipped: Any, override: Any, file: str, key_path: str = "") -> str | None:
    """What is wrong with an override, judged against the shipped value it replaces (``None``: nothing).

    A key the shipped file does not have is a misspelling that would otherwise be ignored without a word, and a
    value of another kind (text where a number is read, a mapping where a list is) would fail deep inside a run
    without naming the key; both are reported with the key's path, e.g.
    ``model.yaml: postprocess.min_lesion_mm3 must be a number (shipped: 30.0), not a text``. Keys the shipped
    file leaves empty, and the elements of lists of mappings, are not judged.
    """
    where = f"{file}: {key_path}" if key_path else file
    if shipped is None:
        return None
    if isinstance(shipped, dict) and isinstance(override, dict):
        unknown = sorted(map(str, set(override) - set(shipped)))
        if unknown and (file, key_path) not in _OPEN_MAPPINGS:
            return f"{where}: unknown key(s) {unknown}; expected some of {sorted(map(str, shipped))}"
        for key, value in override.items():
            problem = override_problem(shipped.get(key), value, file, f"{key_path}.{key}" if key_path else str(key))
            if problem:
                return problem
        return None
    if _kind(shipped) != _kind(override):
        example = f" (shipped: {shipped!r})" if not isinstance(shipped, (dict, list)) else ""
        return f"{where} must be {_kind(shipped)}{example}, not {_kind(override)}"
    if isinstance(shipped, list) and shipped and not isinstance(shipped[0], (dict, list)):
        if any(_kind(item) != _kind(shipped[0]) for item in override):
            return f"{where} must be a list whose items are each {_kind(shipped[0])} (shipped: {shipped!r})"
    return None


@contextlib.contextmanager
def use_config(path: str | Path | None) -> Iterator[dict[str, Any]]:
    """Within the block, shipped configs are read with the overrides in ``path`` merged in."""
    overrides = read_overrides(path) if path else {}
    token = _overrides.set(overrides)
    try:
        yield overrides
    finally:
        _overrides.reset(token)


def active_config_digest() -> str:
    """sha256 of the active overrides (empty overrides: the shipped defaults), for provenance and resume."""
    return hashlib.sha256(json.dumps(_overrides.get(), sort_keys=True, default=str).encode()).hexdigest()
