"""admin_accounts on a real directory tree: keys are never written through a link below the home."""

import os

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.host import accounts, files
from ansible_collections.bulwark.hardening.plugins.module_utils.host.executor import Executor
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


def _live_of_alice(home, monkeypatch):
    """read_live with alice (this test's own uid) as the only account, her home at `home`."""
    entry = accounts.Account("alice", os.getuid(), os.getgid(), str(home), "/bin/sh")
    monkeypatch.setattr(accounts, "users", lambda: [entry])
    return admin_accounts.read_live("sshusers")


def test_a_fifo_at_authorized_keys_does_not_hang_and_the_account_is_refused_by_name(tree, monkeypatch):
    home, _victim = tree
    (home / ".ssh").mkdir(mode=0o700)
    os.mkfifo(home / ".ssh/authorized_keys")
    live = _live_of_alice(home, monkeypatch)
    assert "alice" not in live["authorized_keys"]
    assert "authorized_keys is not a regular file" in live["unreadable"]["alice"]
    with pytest.raises(files.HostError, match=r"account 'alice': .*authorized_keys is not a regular file"):
        admin_accounts.check_key_dirs({"keys": {"alice": (None, KEYS)}, "remove_keys2": []}, live)


def test_a_link_swapped_in_after_the_link_check_is_never_read_through(tree, monkeypatch):
    home, victim = tree
    (home / ".ssh").mkdir(mode=0o700)
    (home / ".ssh/authorized_keys2").symlink_to(victim / "authorized_keys")
    # The account swaps the link in between _is_link's look and the read.
    monkeypatch.setattr(admin_accounts, "_is_link", lambda path: False)
    live = _live_of_alice(home, monkeypatch)
    assert "root's own key" not in repr(live)
    assert "authorized_keys2 is a symbolic link" in live["unreadable"]["alice"]
    with pytest.raises(
        files.HostError,
        match=r"account 'alice': .*authorized_keys2 is a symbolic link: refusing to read through it",
    ):
        admin_accounts.check_key_dirs({"keys": {}, "remove_keys2": ["alice"]}, live)


def test_a_huge_sparse_authorized_keys_is_refused_without_reading_it(tree, monkeypatch):
    home, _victim = tree
    (home / ".ssh").mkdir(mode=0o700)
    with open(home / ".ssh/authorized_keys", "wb") as handle:
        handle.truncate(2 * 1024**3)
    live = _live_of_alice(home, monkeypatch)
    assert "alice" not in live["authorized_keys"]
    assert "more than 1048576: refusing to read it" in live["unreadable"]["alice"]


class Visudo:
    """A runner whose visudo accepts a file unless it holds "bad", and records what it checked."""

    def __init__(self):
        self.checked = []

    def which(self, name):
        return "/usr/sbin/visudo"

    def run(self, argv, data=None, check=False, what=None, env=None):
        with open(argv[-1]) as handle:
            text = handle.read()
        self.checked.append((argv[-1], text, files.mode_of(argv[-1])))
        if "bad" in text:
            if check:  # as host/commands.Runner fails a checked command
                raise files.HostError(f"{what} failed (rc=1): syntax error")
            return 1, "", "syntax error"
        return 0, "", ""


def _install_sudoers(runner, path, text):
    """The drop-in alone, planned and run as admin_accounts does (its plan, the one executor)."""
    before = files.read(path)
    result = {"group_create": False, "create": [], "modify": [], "remove": [], "keys": {}}
    result.update(remove_keys2=[], nologin=[])
    plan = admin_accounts.host_plan(
        runner, {"group": "sshusers"}, {"users": {}}, result, (path, before, text)
    )
    Executor(runner).run(plan)


def test_sudoers_is_checked_as_written_then_renamed_into_place_and_a_bad_one_never_lands(
    tmp_path, monkeypatch
):
    """visudo checks the very file that is renamed into place (files.write's verify); the old code checked a
    candidate copy, removed it and wrote the drop-in anew."""
    path = str(tmp_path / "bulwark-admins")
    runner = Visudo()
    good = "%sshusers ALL=(ALL:ALL) ALL\n"
    write = files.write
    if os.geteuid():  # uid/gid 0 cannot be given as a non-root test: only the mode is checked then
        monkeypatch.setattr(
            files, "write", lambda *args, **kwargs: write(*args, **{**kwargs, "uid": -1, "gid": -1})
        )
    _install_sudoers(runner, path, good)
    checked, text, mode = runner.checked[0]
    assert os.path.dirname(checked) == str(tmp_path) and "." in os.path.basename(checked)  # sudo skips it
    assert (text, mode) == (good, 0o440)
    assert open(path).read() == good and files.mode_of(path) == 0o440
    refused = r"failed: /usr/sbin/visudo on the new file failed \(rc=1\): syntax error\. Nothing was applied$"
    with pytest.raises(files.HostError, match=refused):
        _install_sudoers(runner, path, "bad\n")
    assert open(path).read() == good
    assert sorted(os.listdir(tmp_path)) == ["bulwark-admins"]
