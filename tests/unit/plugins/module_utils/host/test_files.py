import os
import stat
from pathlib import Path

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


# --- every directory on the way is one only root can change --------------------------------------------

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory to another user needs root")


def _nobodys(path, mode=0o755):
    path.mkdir(mode=mode, exist_ok=True)
    os.chmod(path, mode)
    os.chown(path, NOBODY, NOBODY)
    return path


def _every_operation(target):
    """Each host-layer operation that acts on `target` (a file in a directory), by name."""
    return {
        "write": lambda: files.write(str(target), "secret\n"),
        "remove": lambda: files.remove(str(target)),
        "set_attributes": lambda: files.set_attributes(str(target), 0o600),
        "directory": lambda: files.directory(str(target), 0o700),
        "read": lambda: files.read(str(target), anchor=str(target.parent)),
        "status": lambda: files.status(str(target), anchor=str(target.parent)),
        "check_dir": lambda: files.check_dir(str(target.parent)),
    }


@needs_root
@pytest.mark.parametrize("operation", sorted(_every_operation(Path("/x/y"))))
def test_a_directory_on_the_way_that_a_user_owns_is_refused_by_name(tmp_path, operation):
    users = _nobodys(tmp_path / "srv")
    (users / "app").mkdir()
    (users / "app/file").write_text("x")
    with pytest.raises(
        HostError, match=rf"^{users} belongs to nobody \(uid 65534\), not root: .*symbolic link"
    ):
        _every_operation(users / "app/file")[operation]()
    assert (users / "app/file").read_text() == "x"
    assert sorted(os.listdir(users / "app")) == ["file"]


@pytest.mark.parametrize(
    ("mode", "refusal"),
    [(0o775, r"is writable by group \S+ \(gid \d+\) \(mode 0775\)"), (0o777, r"is writable by every user")],
)
@pytest.mark.parametrize("operation", sorted(_every_operation(Path("/x/y"))))
def test_a_group_or_world_writable_directory_on_the_way_is_refused_by_name(
    tmp_path, mode, refusal, operation
):
    shared = tmp_path / "shared"
    (shared / "app").mkdir(parents=True)
    (shared / "app/file").write_text("x")
    os.chmod(shared, mode)
    with pytest.raises(HostError, match=rf"^{shared} {refusal}"):
        _every_operation(shared / "app/file")[operation]()
    assert sorted(os.listdir(shared / "app")) == ["file"]


def test_a_sticky_directory_of_roots_such_as_tmp_is_passed_through(tmp_path):
    sticky = tmp_path / "tmp"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)  # noqa: S103 - as /tmp is
    files.write(str(sticky / "app/file"), "x", anchor=str(sticky), make_dirs=0o700)
    assert (sticky / "app/file").read_text() == "x"


@needs_root
def test_a_sticky_directory_a_user_owns_is_refused(tmp_path):
    sticky = _nobodys(tmp_path / "tmp", 0o1777)
    with pytest.raises(HostError, match=rf"^{sticky} belongs to nobody"):
        files.write(str(sticky / "file"), "x")


@needs_root
def test_the_owner_the_caller_names_may_own_the_anchor_and_below_and_files_get_their_owner(tmp_path):
    home = _nobodys(tmp_path / "home", 0o750)
    _nobodys(home / ".ssh", 0o700)
    with pytest.raises(HostError, match=rf"^{home} belongs to nobody"):
        files.write(str(home / ".ssh/authorized_keys"), "key\n", anchor=str(home))
    files.write(
        str(home / ".ssh/authorized_keys"), "key\n", 0o600, NOBODY, NOBODY, anchor=str(home), owner=NOBODY
    )
    assert files.status(str(home / ".ssh/authorized_keys")) == ("file", 0o600, NOBODY, NOBODY)
    # Another account's directory below the anchor is still refused.
    os.chown(home / ".ssh", 1, 1)
    with pytest.raises(HostError, match=rf"^{home}/\.ssh belongs to daemon \(uid 1\), not root"):
        files.write(str(home / ".ssh/authorized_keys"), "key\n", anchor=str(home), owner=NOBODY)
    # Its parent is not the owner's to hold.
    os.chown(tmp_path, NOBODY, NOBODY)
    try:
        with pytest.raises(HostError, match=rf"^{tmp_path} belongs to nobody"):
            files.write(str(home / "x"), "key\n", anchor=str(home), owner=NOBODY)
    finally:
        os.chown(tmp_path, 0, 0)


@needs_root
def test_any_user_trusts_whoever_owns_the_anchor_and_nothing_above_it(tmp_path):
    consumer = _nobodys(tmp_path / "etc-app", 0o750)
    files.write(str(consumer / "db"), "secret\n", 0o640, 0, 0, owner=files.ANY_USER)
    assert files.read(str(consumer / "db"), anchor=str(consumer), owner=files.ANY_USER) == "secret\n"
    with pytest.raises(HostError, match=rf"^{consumer} belongs to nobody"):
        files.write(str(consumer / "db"), "secret\n")
    parent_owned = _nobodys(tmp_path / "home-app")
    (parent_owned / "secrets").mkdir()
    with pytest.raises(HostError, match=rf"^{parent_owned} belongs to nobody"):
        files.write(str(parent_owned / "secrets/db"), "secret\n", owner=files.ANY_USER)
    assert os.listdir(parent_owned / "secrets") == []


def test_a_link_of_roots_above_the_anchor_is_followed_and_a_users_is_refused_by_name(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to("real")
    files.write(str(tmp_path / "alias/file"), "x")
    assert (tmp_path / "real/file").read_text() == "x"
    with pytest.raises(HostError, match=r"alias is a symbolic link: refusing to write through it"):
        files.write(str(tmp_path / "alias/file"), "x", anchor=str(tmp_path))
    if os.geteuid() == 0:
        os.lchown(tmp_path / "alias", NOBODY, NOBODY)
        with pytest.raises(HostError, match=rf"^{tmp_path}/alias is a symbolic link owned by nobody"):
            files.write(str(tmp_path / "alias/file"), "y")
        assert (tmp_path / "real/file").read_text() == "x"


@pytest.mark.parametrize("operation", ["write", "remove", "set_attributes", "directory", "read"])
def test_a_link_below_the_anchor_is_refused_by_name_for_every_operation(tmp_path, operation):
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    (elsewhere / "file").write_text("root's\n")
    (home / "dir").symlink_to(elsewhere)
    target = str(home / "dir/file")
    calls = {
        "write": lambda: files.write(target, "x", anchor=str(home)),
        "remove": lambda: files.remove(target, anchor=str(home)),
        "set_attributes": lambda: files.set_attributes(target, 0o777, anchor=str(home)),
        "directory": lambda: files.directory(target, 0o777, anchor=str(home)),
        "read": lambda: files.read(target, anchor=str(home)),
    }
    with pytest.raises(HostError, match=rf"^{home}/dir is a symbolic link"):
        calls[operation]()
    assert (elsewhere / "file").read_text() == "root's\n"
    assert files.mode_of(str(elsewhere / "file")) == 0o644


@needs_root
@pytest.mark.parametrize("operation", ["write", "remove", "set_attributes", "directory", "read"])
def test_each_operation_acts_relative_to_the_directory_it_opened_when_it_is_swapped_for_a_link(
    tmp_path, monkeypatch, operation
):
    """The user whose directory it is swaps it for a link to root's just after the host layer opened it
    (the worst moment of a race): what the operation does still happens in the directory it opened."""
    box, canary = _nobodys(tmp_path / "box"), tmp_path / "canary"
    canary.mkdir()
    (canary / "file").write_text("root's\n")
    (box / "file").write_text("user's\n")
    opened = files._parent

    def swapped_after_opening(*args, **kwargs):
        found = opened(*args, **kwargs)
        os.rename(box, tmp_path / "moved")
        box.symlink_to(canary)
        return found

    monkeypatch.setattr(files, "_parent", swapped_after_opening)
    target, where = str(box / "file"), {"owner": files.ANY_USER}
    result = {
        "write": lambda: files.write(target, "new\n", 0o640, **where),
        "remove": lambda: files.remove(target, **where),
        "set_attributes": lambda: files.set_attributes(target, 0o604, 0, 0, **where),
        "directory": lambda: files.directory(str(box / "sub"), 0o700, **where),
        "read": lambda: files.read(target, anchor=str(box), **where),
    }[operation]()
    assert sorted(os.listdir(canary)) == ["file"]
    assert (canary / "file").read_text() == "root's\n"
    assert files.status(str(canary / "file"))[1:] == (0o644, 0, 0)
    moved = tmp_path / "moved"
    if operation == "write":
        assert (moved / "file").read_text() == "new\n"
    elif operation == "remove":
        assert result is True
        assert not (moved / "file").exists()
    elif operation == "set_attributes":
        assert files.status(str(moved / "file"))[1] == 0o604
    elif operation == "directory":
        assert (moved / "sub").is_dir()
    else:
        assert result == "user's\n"


def test_read_with_an_anchor_refuses_a_link_and_anything_but_a_regular_file_without_blocking(tmp_path):
    (tmp_path / "real").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    os.mkfifo(tmp_path / "fifo")
    anchor = str(tmp_path)
    assert files.read(str(tmp_path / "real"), anchor=anchor) == "x"
    assert files.read(str(tmp_path / "missing/file"), anchor=anchor) is None
    with pytest.raises(HostError, match=r"link is a symbolic link: refusing to read through it"):
        files.read(str(tmp_path / "link"), anchor=anchor)
    with pytest.raises(HostError, match=r"fifo is not a regular file"):
        files.read(str(tmp_path / "fifo"), anchor=anchor)


@needs_root
def test_private_dir_refuses_a_directory_a_user_owns_and_makes_missing_parents(tmp_path):
    owned = _nobodys(tmp_path / "state")
    with pytest.raises(HostError, match=rf"^{owned} belongs to nobody"):
        files.private_dir(str(owned))
    assert files.mode_of(str(owned)) == 0o755
    files.private_dir(str(tmp_path / "a/b/state"))
    assert files.status(str(tmp_path / "a/b/state"))[:2] == ("directory", 0o700)
    assert files.mode_of(str(tmp_path / "a/b")) == 0o755


def test_directory_only_new_keeps_an_existing_one_and_says_whether_it_made_it(tmp_path):
    assert files.directory(str(tmp_path / "d"), 0o750, only_new=True) is True
    assert files.mode_of(str(tmp_path / "d")) == 0o750
    os.chmod(tmp_path / "d", 0o711)  # noqa: S103 - any mode other than the one asked for
    assert files.directory(str(tmp_path / "d"), 0o750, only_new=True) is False
    assert files.mode_of(str(tmp_path / "d")) == 0o711
    (tmp_path / "l").symlink_to(tmp_path / "d")
    with pytest.raises(HostError, match=r"l is a symbolic link"):
        files.directory(str(tmp_path / "l"), 0o750, only_new=True)


def test_check_dir_walks_as_far_as_the_path_exists(tmp_path):
    files.check_dir(str(tmp_path / "not/yet/there"))
    os.chmod(tmp_path, 0o777)  # noqa: S103 - the refusal under test
    try:
        with pytest.raises(HostError, match=rf"^{tmp_path} is writable by every user"):
            files.check_dir(str(tmp_path / "not/yet/there"))
    finally:
        os.chmod(tmp_path, 0o700)


def test_an_anchored_read_refuses_a_huge_sparse_file_without_reading_it(tmp_path):
    with open(tmp_path / "huge", "wb") as handle:
        handle.truncate(2 * 1024**3)  # sparse: no disk used, 2 GiB if read
    with pytest.raises(HostError, match=r"huge is 2147483648 bytes, more than 1048576: refusing to read it"):
        files.read(str(tmp_path / "huge"), anchor=str(tmp_path))
    (tmp_path / "small").write_bytes(b"k" * files.MAX_ANCHORED_READ)
    assert len(files.read(str(tmp_path / "small"), anchor=str(tmp_path))) == files.MAX_ANCHORED_READ


def test_directory_only_new_refuses_a_directory_swapped_in_right_after_its_mkdir(tmp_path, monkeypatch):
    real_mkdir = os.mkdir

    def mkdir_then_swap(name, mode=0o777, *, dir_fd=None):
        real_mkdir(name, mode, dir_fd=dir_fd)
        # The parent's owner renames root's new directory away and puts one of its own in its place.
        os.rename(name, "made", src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        real_mkdir(name, 0o755, dir_fd=dir_fd)
        os.close(os.open(f"{name}/theirs", os.O_CREAT | os.O_WRONLY, 0o600, dir_fd=dir_fd))

    monkeypatch.setattr(files.os, "mkdir", mkdir_then_swap)
    with pytest.raises(
        HostError, match=r"\.ssh was replaced by another directory .* right after it was created"
    ):
        files.directory(str(tmp_path / ".ssh"), 0o700, anchor=str(tmp_path), only_new=True)
    monkeypatch.undo()
    assert files.mode_of(str(tmp_path / ".ssh")) == 0o755
