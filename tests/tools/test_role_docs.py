"""tools/role_docs.py: a spec default and defaults/main.yml that drift apart fail the check."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import role_docs

SPEC = """argument_specs:
  main:
    short_description: A role.
    options:
      web_port: {type: int, default: 80, description: The port.}
      web_user: {type: str, description: The user.}
"""


def _role(tmp_path, defaults):
    (tmp_path / "roles/web/meta").mkdir(parents=True)
    (tmp_path / "roles/web/defaults").mkdir()
    (tmp_path / "roles/web/meta/argument_specs.yml").write_text(SPEC)
    (tmp_path / "roles/web/defaults/main.yml").write_text(defaults)
    return tmp_path


def test_defaults_that_match_the_spec_pass(tmp_path):
    assert role_docs.drift(_role(tmp_path, "web_port: 80\n")) == []


def test_a_template_default_the_spec_describes_passes(tmp_path):
    root = _role(tmp_path, 'web_port: 80\nweb_user: "{{ ansible_user }}"\n')
    assert role_docs.drift(root) == []


def test_a_different_value_is_named(tmp_path):
    assert role_docs.drift(_role(tmp_path, "web_port: 8080\n")) == [
        "web: web_port defaults to 80 in the spec but to 8080 in defaults/main.yml"
    ]


def test_a_spec_default_missing_from_defaults_is_named(tmp_path):
    assert role_docs.drift(_role(tmp_path, "{}\n")) == [
        "web: web_port has a default in the spec but none in defaults/main.yml"
    ]


def test_a_literal_default_the_spec_does_not_state_is_named(tmp_path):
    assert role_docs.drift(_role(tmp_path, "web_port: 80\nweb_user: www\n")) == [
        "web: web_user is set in defaults/main.yml but has no default in the spec"
    ]


def test_a_default_outside_the_spec_is_named(tmp_path):
    assert role_docs.drift(_role(tmp_path, "web_port: 80\nweb_typo: 1\n")) == [
        "web: web_typo is set in defaults/main.yml but is not in the spec"
    ]
