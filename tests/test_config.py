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


@pytest.mark.parametrize("content, problem", [
    ("nonsense.yaml:\n  a: 1\n", "unknown config name"),
    ("a: [1,\n", "not valid YAML"),
    # a misspelt key would otherwise be ignored without a word
    ("contact.yaml:\n  contact_max_gap: 0.3\n", r"contact.yaml: unknown key\(s\) \['contact_max_gap'\]"),
    ("model.yaml:\n  postprocess:\n    min_lesion_mm3: thirty\n",
     r"model.yaml: postprocess.min_lesion_mm3 must be a number \(shipped: 30.0\), not a text"),
    ("model.yaml:\n  postprocess:\n    artery_near_facial_nerve: {weight: 10, reach: 3}\n",
     r"postprocess.artery_near_facial_nerve: unknown key\(s\) \['reach'\]"),
    ("model.yaml:\n  fine:\n    patch_size: [64, 64, big]\n", "fine.patch_size must be a list whose items are each a number"),
    ("pacs.yaml:\n  send_backoff_s: 5\n", "send_backoff_s must be a list"),
])
def test_bad_override_is_one_clear_error(tmp_path, content, problem):
    path = tmp_path / "site.yaml"
    path.write_text(content)
    with pytest.raises(InputError, match=problem) as raised:
        with use_config(path):
            pass
    assert str(raised.value).startswith(str(path)) and "\n" not in str(raised.value)


def test_label_weights_take_any_label_name(tmp_path):
    """``class_weights`` is keyed by label names (checked against labels.yaml where it is used), so a label the
    shipped file leaves at 1 can be weighted too."""
    path = tmp_path / "site.yaml"
    path.write_text("model.yaml:\n  postprocess:\n    class_weights: {vestibulocochlear_nerve: 1.5}\n")
    with use_config(path):
        assert load_config("model.yaml")["postprocess"]["class_weights"] == {"facial_nerve": 2.0, "artery": 2.0,
                                                                             "vestibulocochlear_nerve": 1.5}
