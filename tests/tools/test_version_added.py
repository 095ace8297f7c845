"""tools/version_added.py on small collections made here, and on this tree."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import version_added

MODULE = '''DOCUMENTATION = r"""
module: {name}
short_description: A module.
{version}
options:
  state:
    description: A state.
    {option_version}
"""
'''


def _collection(tmp_path, module_version, option_version="", role_version='version_added: "0.1.0"'):
    (tmp_path / "galaxy.yml").write_text("namespace: a\nname: b\nversion: 0.2.0\n")
    (tmp_path / "changelogs").mkdir()
    released = "ancestor: null\nreleases:\n  0.1.0:\n    changes: {}\n"
    (tmp_path / "changelogs/changelog.yaml").write_text(released)
    modules = tmp_path / "plugins/modules"
    modules.mkdir(parents=True)
    source = MODULE.format(name="one", version=module_version, option_version=option_version)
    (modules / "one.py").write_text(source)
    (tmp_path / "plugins/module_utils").mkdir()
    (tmp_path / "plugins/module_utils/helper.py").write_text("X = 1\n")
    meta = tmp_path / "roles/web/meta"
    meta.mkdir(parents=True)
    (meta / "argument_specs.yml").write_text(
        f"argument_specs:\n  main:\n    {role_version}\n    short_description: A role.\n    options: {{}}\n"
    )
    return tmp_path


@pytest.mark.parametrize(
    "version", ['version_added: "0.1.0"', 'version_added: "0.2.0"', "version_added: 0.2.0"]
)
def test_released_and_current_versions_pass(tmp_path, version):
    assert version_added.problems(_collection(tmp_path, version)) == []


def test_a_version_neither_released_nor_current_is_named(tmp_path):
    root = _collection(tmp_path, 'version_added: "1.0.0"')
    assert version_added.problems(root) == [
        "modules one: version_added 1.0.0 is neither released nor the current version"
    ]


def test_a_missing_version_added_is_named(tmp_path):
    assert version_added.problems(_collection(tmp_path, "")) == ["modules one: no version_added"]


def test_an_option_version_added_is_checked(tmp_path):
    root = _collection(tmp_path, 'version_added: "0.1.0"', option_version='version_added: "0.3.0"')
    assert version_added.problems(root) == [
        "modules one option state: version_added 0.3.0 is neither released nor the current version"
    ]


def test_a_role_without_version_added_is_named(tmp_path):
    root = _collection(tmp_path, 'version_added: "0.1.0"', role_version="author: someone")
    assert version_added.problems(root) == ["role web entry point main: no version_added"]


def test_a_role_without_argument_specs_is_named(tmp_path):
    root = _collection(tmp_path, 'version_added: "0.1.0"')
    (root / "roles/web/meta/argument_specs.yml").unlink()
    assert version_added.problems(root) == ["role web: no meta/argument_specs.yml, so no version_added"]


def test_main_exits_non_zero_and_names_the_problem(tmp_path, capsys):
    root = _collection(tmp_path, 'version_added: "1.0.0"')
    assert version_added.main([str(root)]) == 1
    err = capsys.readouterr().err
    assert "modules one: version_added 1.0.0" in err
    assert "allowed versions: 0.1.0, 0.2.0" in err
