import os
import stat

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.host import files
from ansible_collections.bulwark.hardening.plugins.module_utils.host.files import HostError


def test_write_gives_a_new_file_exactly_the_mode_and_replaces_atomically(tmp_path):
    target = tmp_path / "conf"
    files.write(str(target), "one\n", 0o640)
    assert target.read_text() == "one\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    inode = target.stat().st_ino
    files.write(str(target), "two\n", 0o600)
    assert target.read_text() == "two\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.stat().st_ino != inode  # renamed into place, not rewritten
    assert sorted(os.listdir(tmp_path)) == ["conf"]  # no temporary file left


def test_write_refuses_a_symlink_at_the_path_and_leaves_its_target_alone(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("root's\n")
    (tmp_path / "link").symlink_to(victim)
    with pytest.raises(HostError, match=r"link is a symbolic link: refusing to write through it"):
        files.write(str(tmp_path / "link"), "evil\n")
    assert victim.read_text() == "root's\n"


def test_write_refuses_a_symlinked_directory_below_the_anchor(tmp_path):
    home, elsewhere = tmp_path / "home", tmp_path / "root-ssh"
    home.mkdir()
    elsewhere.mkdir()
    (elsewhere / "authorized_keys").write_text("root's key\n")
    (home / ".ssh").symlink_to(elsewhere)
    with pytest.raises(HostError, match=r"home/\.ssh is a symbolic link"):
        files.write(str(home / ".ssh/authorized_keys"), "key\n", anchor=str(home))
    assert (elsewhere / "authorized_keys").read_text() == "root's key\n"


def test_write_creates_missing_directories_below_the_anchor_with_their_mode(tmp_path):
    files.write(str(tmp_path / "a/b/file"), "x", anchor=str(tmp_path), make_dirs=0o700)
    assert stat.S_IMODE((tmp_path / "a/b").stat().st_mode) == 0o700
    with pytest.raises(HostError, match="cannot open directory"):
        files.write(str(tmp_path / "c/file"), "x", anchor=str(tmp_path))


def test_write_sets_the_owner_before_the_file_appears(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    files.write(str(tmp_path / "owned"), "x", uid=65534, gid=65534)
    assert (tmp_path / "owned").stat().st_uid == 65534


def test_read_and_remove(tmp_path):
    assert files.read(str(tmp_path / "missing")) is None
    (tmp_path / "f").write_bytes(b"\xffbytes")
    assert files.read(str(tmp_path / "f"), binary=True) == b"\xffbytes"
    assert files.remove(str(tmp_path / "f")) is True
    assert files.remove(str(tmp_path / "f")) is False
    assert files.mode_of(str(tmp_path / "f")) is None


def test_private_dir_tightens_and_refuses_a_link(tmp_path):
    loose = tmp_path / "state"
    loose.mkdir(mode=0o755)
    files.private_dir(str(loose))
    assert stat.S_IMODE(loose.stat().st_mode) == 0o700
    (tmp_path / "linked").symlink_to(loose)
    with pytest.raises(HostError, match="symbolic link"):
        files.private_dir(str(tmp_path / "linked"))
