"""fail2ban_jail's host reading: owned files are recognised by their marker, nothing else is."""

from ansible_collections.bulwark.hardening.plugins.module_utils.fail2ban.jail import MARKER
from ansible_collections.bulwark.hardening.plugins.modules import fail2ban_jail


def _tree(tmp_path):
    (tmp_path / "filter.d").mkdir()
    (tmp_path / "jail.d").mkdir()
    (tmp_path / "filter.d/sshd.conf").write_text("[Definition]\nfailregex = x <HOST>\n")
    (tmp_path / "filter.d/recidive.conf").write_text("[Definition]\n")
    (tmp_path / "filter.d/custom.local").write_text("[Definition]\n")
    (tmp_path / "filter.d/demo-app.conf").write_text(MARKER + "\n[Definition]\nfailregex = d <HOST>\n")
    (tmp_path / "filter.d/README").write_text("not a filter\n")
    (tmp_path / "jail.d/defaults-debian.conf").write_text("[sshd]\nenabled = true\n")
    (tmp_path / "jail.d/bulwark-sshd.local").write_text(MARKER + "\n[sshd]\nenabled = true\n")
    (tmp_path / "jail.d/bulwark-handmade.local").write_text("[handmade]\nenabled = true\n")
    return tmp_path


def test_read_config_finds_filters_and_owned_files(tmp_path):
    tree = _tree(tmp_path)
    (tree / "jail.d/bulwark-sshd.local").chmod(0o644)
    filters, owned, modes, existing = fail2ban_jail.read_config(str(tree))
    assert filters == {"sshd", "recidive", "custom", "demo-app"}
    assert sorted(owned) == ["filter.d/demo-app.conf", "jail.d/bulwark-sshd.local"]
    # The mode of an owned file is read, so that a world-readable one is tightened.
    assert modes["jail.d/bulwark-sshd.local"] == 0o644
    # A file with the prefix but without the marker is the operator's: never owned, never removed.
    assert "jail.d/bulwark-handmade.local" in existing
    assert "jail.d/bulwark-handmade.local" not in owned


def test_read_config_on_a_missing_tree(tmp_path):
    assert fail2ban_jail.read_config(str(tmp_path / "absent")) == (set(), {}, {}, set())
