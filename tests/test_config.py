"""User overrides of the shipped configs (``--config``)."""

from __future__ import annotations

import pytest

from nvc_mri.config import active_config_digest, load_config, use_config
from nvc_mri.errors import InputError


def test_override_folder_merges_over_the_shipped_file(tmp_path):
    shipped = dict(load_config("contact.yaml"))
    (tmp_path / "contact.yaml").write_text("contact_max_gap_mm: 0.9\n")
    default_digest = active_config_digest()
    with use_config(tmp_path):
        merged = load_config("contact.yaml")
        assert merged["contact_max_gap_mm"] == 0.9
        assert {k: v for k, v in merged.items() if k != "contact_max_gap_mm"} == \
            {k: v for k, v in shipped.items() if k != "contact_max_gap_mm"}
        assert active_config_digest() != default_digest
    assert load_config("contact.yaml") == shipped and active_config_digest() == default_digest


def test_one_file_keyed_by_config_name(tmp_path):
    path = tmp_path / "site.yaml"
    path.write_text("nerve_segments.yaml:\n  transition_zone_mm: 3.0\n")
    with use_config(path):
        assert load_config("nerve_segments.yaml")["transition_zone_mm"] == 3.0


@pytest.mark.parametrize("content, problem", [("nonsense.yaml:\n  a: 1\n", "unknown config name"), ("a: [1,\n", "not valid YAML")])
def test_bad_override_is_one_clear_error(tmp_path, content, problem):
    path = tmp_path / "site.yaml"
    path.write_text(content)
    with pytest.raises(InputError, match=problem):
        with use_config(path):
            pass
