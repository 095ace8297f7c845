"""admin_accounts on a real directory tree: keys are never written through a link below the home."""

import os

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.host import files
from ansible_collections.bulwark.hardening.plugins.modules import admin_accounts

KEYS = "ssh-ed25519 AAAA alice\n"


@pytest.fixture
def tree(tmp_path):
    home, victim = tmp_path / "home" / "alice", tmp_path / "root" / ".ssh"
    home.mkdir(parents=True)
    victim.mkdir(parents=True)
    (victim / "authorized_keys").write_text("root's own key\n")
    (victim / "authorized_keys").chmod(0o600)
    return home, victim


def _owner():
    return os.getuid(), os.getgid()


def test_keys_go_to_a_new_ssh_dir_with_mode_0700_and_0600(tree):
    home, _victim = tree
    admin_accounts.write_keys(str(home), *_owner(), KEYS)
    assert (home / ".ssh/authorized_keys").read_text() == KEYS
    assert files.mode_of(str(home / ".ssh")) == 0o700
    assert files.mode_of(str(home / ".ssh/authorized_keys")) == 0o600


def test_a_symlinked_ssh_dir_is_refused_and_its_target_untouched(tree):
    home, victim = tree
    (home / ".ssh").symlink_to(victim)
    with pytest.raises(files.HostError, match=r"alice/\.ssh is a symbolic link"):
        admin_accounts.write_keys(str(home), *_owner(), KEYS)
    assert (victim / "authorized_keys").read_text() == "root's own key\n"
    assert sorted(os.listdir(victim)) == ["authorized_keys"]


def test_a_symlinked_authorized_keys_is_refused_and_its_target_untouched(tree):
    home, victim = tree
    (home / ".ssh").mkdir(mode=0o700)
    (home / ".ssh/authorized_keys").symlink_to(victim / "authorized_keys")
    with pytest.raises(files.HostError, match=r"authorized_keys is a symbolic link"):
        admin_accounts.write_keys(str(home), *_owner(), KEYS)
    assert (victim / "authorized_keys").read_text() == "root's own key\n"


def test_is_link_sees_the_link_itself(tree):
    home, victim = tree
    (home / ".ssh").symlink_to(victim)
    assert admin_accounts._is_link(str(home / ".ssh"))
    assert not admin_accounts._is_link(str(victim))
    assert not admin_accounts._is_link(str(home / "absent"))
