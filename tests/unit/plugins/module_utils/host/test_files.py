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


def test_write_runs_verify_on_the_temporary_file_and_a_refusal_leaves_the_path_alone(tmp_path):
    target = tmp_path / "sudoers"
    target.write_text("old\n")
    seen = []

    def refuse(temporary):
        seen.append(open(temporary).read())
        raise HostError("visudo refused it")

    with pytest.raises(HostError, match="visudo refused it"):
        files.write(str(target), "new\n", 0o440, verify=refuse)
    assert seen == ["new\n"]
    assert target.read_text() == "old\n"
    assert sorted(os.listdir(tmp_path)) == ["sudoers"]
    files.write(str(target), "new\n", 0o440, verify=seen.append)
    assert target.read_text() == "new\n"


def test_status_tells_files_directories_and_links_apart_without_following_links(tmp_path):
    (tmp_path / "f").write_text("x")
    os.chmod(tmp_path / "f", 0o640)
    (tmp_path / "d").mkdir(mode=0o700)
    (tmp_path / "l").symlink_to(tmp_path / "f")
    uid, gid = os.getuid(), os.getgid()
    assert files.status(str(tmp_path / "f")) == ("file", 0o640, uid, gid)
    assert files.status(str(tmp_path / "d"))[:2] == ("directory", 0o700)
    assert files.status(str(tmp_path / "l"))[0] == "link"
    assert files.status(str(tmp_path / "missing")) is None


def test_set_attributes_and_directory_give_exactly_the_mode_and_refuse_links(tmp_path):
    (tmp_path / "f").write_text("x")
    files.set_attributes(str(tmp_path / "f"), 0o600)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o600
    files.directory(str(tmp_path / "new"), 0o755)
    assert files.status(str(tmp_path / "new"))[:2] == ("directory", 0o755)
    os.chmod(tmp_path / "new", 0o700)
    files.directory(str(tmp_path / "new"), 0o750)
    assert files.status(str(tmp_path / "new"))[:2] == ("directory", 0o750)
    (tmp_path / "link").symlink_to(tmp_path / "new")
    with pytest.raises(HostError, match=r"link is a symbolic link: refusing to change it"):
        files.directory(str(tmp_path / "link"), 0o700)
    with pytest.raises(HostError, match=r"link is a symbolic link: refusing to change it"):
        files.set_attributes(str(tmp_path / "link"), 0o600)
    assert files.status(str(tmp_path / "new"))[1] == 0o750


def test_user_and_group_ids_are_looked_up_by_name():
    assert files.user_id("root") == 0
    assert files.group_id("root") == 0
    assert files.user_id("no-such-user-here") is None
    assert files.group_id("no-such-group-here") is None


def test_listing_fingerprints_files_and_the_files_directly_in_directories(tmp_path):
    lists = tmp_path / "lists"
    (lists / "partial").mkdir(parents=True)
    (lists / "partial" / "half").write_text("x")
    (lists / "a_Packages").write_text("Package: a\n")
    (lists / "lock").write_text("")
    (tmp_path / "status").write_text("Package: a\nStatus: install ok installed\n")
    found = files.listing([str(tmp_path / "status"), str(lists), str(tmp_path / "missing")], skip={"lock"})
    assert [(os.path.basename(p), size) for p, size, _mtime in sorted(found)] == [
        ("a_Packages", 11),
        ("status", 40),
    ]
    before = {p: m for p, _s, m in found}
    os.utime(lists / "a_Packages", ns=(1, 1))
    after = {p: m for p, _s, m in files.listing([str(lists)])}
    assert after[str(lists / "a_Packages")] == 1 != before[str(lists / "a_Packages")]
    assert files.modified(str(tmp_path / "missing")) is None
    assert files.modified(str(lists / "a_Packages")) == 1e-09
