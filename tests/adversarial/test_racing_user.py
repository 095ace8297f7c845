"""The racing user: a non-root process that swaps its own directories and files for symbolic links to
root's while a module runs, over and over. No root write may follow a path that user can change.

`RacingUser` is the harness, for any module that writes under a directory it does not own: it forks a
process that drops to `nobody` and exchanges a path it may rename with a link to a target (renameat2
RENAME_EXCHANGE: the path is always the real thing or the link, never missing), thousands of times a
second, until the block ends. Given `on_open`, it also watches that directory (inotify) and, the moment
the module opens a file there (its check), puts the link in place and holds it for `hold` seconds (its
act): a check-then-act by path is then caught every run, not by chance. It counts its swaps, so a test
proves the race ran.
"""

import contextlib
import ctypes
import os
import pwd
import select
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.host import files

NOBODY, NOGROUP = 65534, 65534
RENAME_EXCHANGE = 2  # linux/fs.h
IN_OPEN = 0x20  # linux/inotify.h
_libc = ctypes.CDLL(None, use_errno=True)
_libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
_libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]


def _checked(result):
    if result < 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))
    return result


def _exchange(dir_fd, one, other):
    _checked(_libc.renameat2(dir_fd, one.encode(), dir_fd, other.encode(), RENAME_EXCHANGE))


def _is_link(dir_fd, name):
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except FileNotFoundError:
        return False


class RacingUser:
    """with RacingUser(path, target) as racer: a process of `uid` swaps `path` (a directory or a file
    whose parent that user owns) with a symbolic link to `target` until the block ends.

    pace: seconds between swaps (0: as fast as it can, for in-process loops of host-layer calls; a little
    more leaves a CPU to a module run). on_open: a directory (readable by that user) to watch: when a file
    in it is opened, the link is put at `path` at once and held for `hold` seconds. plant: names of files
    the user keeps (re)creating in the real directory at `path` (such as an authorized_keys2 for the module
    to remove). After the block, `racer.swaps` says how often it swapped and `path` is the real directory
    or file again."""

    def __init__(
        self, path, target, *, on_open=None, hold=0.5, pace=0.0002, plant=(), uid=NOBODY, gid=NOGROUP
    ):
        self.parent, self.name = os.path.split(path)
        self.swap = f".{self.name}.swap"
        self.target, self.on_open, self.hold, self.plant = str(target), on_open, hold, plant
        self.pace = pace
        self.uid, self.gid = uid, gid
        self.swaps, self.pid = 0, None

    def __enter__(self):
        reader, writer = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the racing user
            code = 1
            try:
                os.close(reader)
                self._race(writer)
                code = 0
            finally:
                os._exit(code)
        os.close(writer)
        self._reader = reader
        if os.read(reader, 1) != b"+":
            self._stop()
            raise AssertionError(f"the racing user could not start on {self.parent}/{self.name}")
        return self

    def _race(self, report):
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
        os.setgroups([])
        os.setgid(self.gid)
        os.setuid(self.uid)
        dir_fd = os.open(self.parent, os.O_RDONLY | os.O_DIRECTORY)
        real_fd = os.open(self.name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=dir_fd) if self.plant else None
        watch = None
        if self.on_open:
            watch = _checked(_libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC))
            _checked(_libc.inotify_add_watch(watch, str(self.on_open).encode(), IN_OPEN))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.swap, dir_fd=dir_fd)
        os.symlink(self.target, self.swap, dir_fd=dir_fd)
        os.write(report, b"+")
        count = 0
        while not stop:
            opened = (
                select.select([watch], [], [], self.pace)[0] if watch is not None else time.sleep(self.pace)
            )
            if not _is_link(dir_fd, self.name) and not _is_link(dir_fd, self.swap):
                # The module renamed a file over the link: make another one.
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.swap, dir_fd=dir_fd)
                os.symlink(self.target, self.swap, dir_fd=dir_fd)
            if opened:
                if not _is_link(dir_fd, self.name):
                    _exchange(dir_fd, self.name, self.swap)
                    count += 1
                time.sleep(self.hold)
                with contextlib.suppress(BlockingIOError):
                    while os.read(watch, 65536):
                        pass  # what was opened while the link was held
                continue
            try:
                _exchange(dir_fd, self.name, self.swap)
            except FileNotFoundError:
                continue  # the file is not there yet
            count += 1
            if real_fd is not None and count % 64 == 0:
                for leaf in self.plant:
                    os.close(os.open(leaf, os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=real_fd))
        os.write(report, str(count).encode())

    def _stop(self):
        os.kill(self.pid, signal.SIGTERM)
        os.waitpid(self.pid, 0)

    def __exit__(self, *_exc):
        self._stop()
        self.swaps = int(os.read(self._reader, 64) or b"0")
        os.close(self._reader)
        dir_fd = os.open(self.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if _is_link(dir_fd, self.name) and os.path.lexists(os.path.join(self.parent, self.swap)):
                _exchange(dir_fd, self.name, self.swap)
            if _is_link(dir_fd, self.swap):
                os.unlink(self.swap, dir_fd=dir_fd)
        finally:
            os.close(dir_fd)
        return False


def snapshot(directory):
    """{name: (mode, uid, content)} of what is in a directory: proof that nothing was written there."""
    found = {}
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        info = os.lstat(path)
        content = Path(path).read_bytes() if stat.S_ISREG(info.st_mode) else None
        found[name] = (stat.S_IMODE(info.st_mode), info.st_uid, content)
    return found


def owned_by_nobody(path, mode=0o755):
    os.makedirs(path, exist_ok=True)
    os.chmod(path, mode)
    os.chown(path, NOBODY, NOGROUP)
    return path


@pytest.fixture
def passwd(tmp_path):
    """passwd(name, home=..., login=...): this test's own copy of /etc/passwd (bind-mounted over it in the
    suite's mount namespace) with that account's home and login shell changed."""
    mounted = []

    def change(name, **fields):
        copy = tmp_path / "passwd"
        lines = []
        for line in Path("/etc/passwd").read_text(encoding="utf-8").splitlines():
            parts = line.split(":")
            if parts[0] == name:
                parts[5], parts[6] = fields.get("home", parts[5]), fields.get("login", parts[6])
            lines.append(":".join(parts))
        copy.write_text("\n".join(lines) + "\n")
        os.chmod(copy, 0o644)
        subprocess.run(["mount", "--bind", str(copy), "/etc/passwd"], check=True)
        mounted.append("/etc/passwd")
        assert pwd.getpwnam(name).pw_dir == fields.get("home", pwd.getpwnam(name).pw_dir)

    yield change
    for path in mounted:
        subprocess.run(["umount", "-l", path], check=False)


# --- (c) the host layer itself ---------------------------------------------------------------------------


def calls(at_least=200, seconds=1.0):
    """0, 1, 2, ...: at least that many module-like calls, for at least that long (the racer needs time)."""
    deadline, index = time.monotonic() + seconds, 0
    while index < at_least or time.monotonic() < deadline:
        yield index
        index += 1


def test_the_host_layer_never_writes_through_a_directory_a_user_swaps_for_a_link(private_path, tmp_path):
    """A directory whose parent belongs to a user, swapped for a link to root's: every write is refused,
    naming the parent; root's directory never receives a file."""
    home = private_path("/home", copy=False)
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "kept").write_text("root's\n")
    before = snapshot(canary)
    users = owned_by_nobody(os.path.join(home, "nobody"))
    box = os.path.join(users, "box")
    os.mkdir(box, 0o755)
    refused = []
    with RacingUser(box, canary, pace=0) as racer:
        for index in calls():
            try:
                files.write(os.path.join(box, "secret"), f"secret {index}\n", 0o600, 0, 0)
            except files.HostError as exc:
                refused.append(str(exc))
    assert racer.swaps > 200, racer.swaps
    assert snapshot(canary) == before
    assert len(refused) >= 200
    assert {r.split(":")[0] for r in refused} == {f"{users} belongs to nobody (uid 65534), not root"}
    assert os.listdir(box) == []


def test_the_host_layer_writes_into_a_users_own_directory_only_relative_to_its_descriptor(
    private_path, tmp_path
):
    """The final directory is the user's (the caller says so): the user swaps the file itself for a link
    to root's; every write either lands in the user's directory or is refused naming the link."""
    home = private_path("/home", copy=False)
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "secret").write_text("root's\n")
    before = snapshot(canary)
    box = owned_by_nobody(os.path.join(home, "box"), 0o750)
    target = os.path.join(box, "secret")
    written, refused = 0, set()
    with RacingUser(target, canary / "secret", pace=0) as racer:
        for index in calls():
            try:
                files.write(target, f"secret {index}\n", 0o640, 0, 0, owner=files.ANY_USER)
                written += 1
            except files.HostError as exc:
                refused.add(str(exc))
    assert racer.swaps > 200, racer.swaps
    assert snapshot(canary) == before
    assert refused <= {f"{target} is a symbolic link: refusing to write through it"}
    assert written > 0
    files.write(target, "last\n", 0o640, 0, 0, owner=files.ANY_USER)
    assert files.status(target) == ("file", 0o640, 0, 0)
    assert Path(target).read_text() == "last\n"


# --- (a) secret_store: a consumer directory whose parent belongs to the consumer's user -------------------


def test_secret_store_never_writes_a_secret_through_a_consumer_directory_a_user_swaps(
    private_path, run_module, tmp_path
):
    """The consumer directory's parent belongs to the consumer's user, who swaps the directory for a link
    to /etc/sudoers.d the moment the module reads the secret file already there (and at random between):
    the module refuses by name before anything is written; sudoers.d never receives the secret."""
    sudoers = private_path("/etc/sudoers.d")
    app = owned_by_nobody(os.path.join(private_path("/home", copy=False), "app"))
    secrets = os.path.join(app, "secrets")
    os.mkdir(secrets, 0o755)
    Path(secrets, "db").write_text("the old value\n")
    os.chmod(os.path.join(secrets, "db"), 0o600)
    before, runs = snapshot(sudoers), []
    with RacingUser(secrets, sudoers, on_open=secrets) as racer:
        for index in range(5):
            args = {
                "secrets": [{"name": "db", "type": "password", "consumers": ["app"]}],
                "consumers": {"app": {"directory": secrets}},
                "directory": str(tmp_path / f"store{index}"),  # a new value each run, to be delivered
            }
            runs.append(run_module("secret_store", args))
    assert racer.swaps > 5, racer.swaps
    assert snapshot(sudoers) == before, "root wrote a secret where the racing user's link pointed"
    for done in runs:
        assert done.result is not None and done.result.get("failed"), done
        assert done.result["msg"].startswith(f"consumers.app.directory: {app} belongs to nobody"), done
        assert done.result["msg"].endswith("Nothing was applied"), done
    assert Path(secrets, "db").read_text() == "the old value\n"


# --- (b) admin_accounts: authorized_keys in a home the user owns -------------------------------------------


def _keys(tmp_path, count):
    made = []
    for index in range(count):
        path = tmp_path / f"key{index}"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
        made.append((tmp_path / f"key{index}.pub").read_text().strip())
    return made


def _admin_args(key):
    return {
        "admins": [{"name": "nobody", "ssh_keys": [key]}],
        "group": "nogroup",
        "sudo": False,
        "shell": "/bin/bash",
    }


def _root_home(tmp_path):
    """A stand-in for /root: its ~/.ssh holds an authorized_keys and an authorized_keys2."""
    canary = tmp_path / "root-home"
    (canary / ".ssh").mkdir(parents=True)
    for leaf in ("authorized_keys", "authorized_keys2"):
        (canary / ".ssh" / leaf).write_text(f"root's {leaf}\n")
        os.chmod(canary / ".ssh" / leaf, 0o600)
    return canary


def test_admin_accounts_never_writes_or_removes_through_an_ssh_dir_the_user_swaps(
    private_path, run_module, passwd, tmp_path
):
    """The user owns its home and swaps ~/.ssh for a link to root's the moment the module reads its keys
    (and at random between), keeping an authorized_keys2 for the module to remove: root's key files are
    never written, chowned or removed; a run that meets the link refuses naming it."""
    home = os.path.join(private_path("/home", copy=False), "nobody")
    passwd("nobody", home=home, login="/bin/bash")
    canary = _root_home(tmp_path)
    before = snapshot(canary / ".ssh")
    owned_by_nobody(home)
    ssh_dir = owned_by_nobody(os.path.join(home, ".ssh"), 0o700)
    key = _keys(tmp_path, 1)[0]
    settled = run_module("admin_accounts", _admin_args(key))  # the keys are in place: runs only remove
    assert settled.rc == 0 and not settled.result.get("failed"), settled
    runs = []
    with RacingUser(ssh_dir, canary / ".ssh", on_open=ssh_dir, plant=("authorized_keys2",)) as racer:
        for _index in range(6):
            runs.append(run_module("admin_accounts", _admin_args(key)))
    assert racer.swaps > 6, racer.swaps
    assert snapshot(canary / ".ssh") == before, "root wrote or removed a key file through the user's link"
    for done in runs:
        assert done.result is not None, done
        if done.result.get("failed"):
            assert f"{ssh_dir} is a symbolic link" in done.result["msg"], done
    # Without the race, the module does its work in the real ~/.ssh.
    done = run_module("admin_accounts", _admin_args(key))
    assert done.rc == 0 and not done.result.get("failed"), done
    assert key in Path(ssh_dir, "authorized_keys").read_text().splitlines()
    assert files.status(os.path.join(ssh_dir, "authorized_keys")) == ("file", 0o600, NOBODY, NOGROUP)
    assert not os.path.lexists(os.path.join(ssh_dir, "authorized_keys2"))


def test_admin_accounts_refuses_a_home_whose_parent_a_user_owns_by_name(
    private_path, run_module, passwd, tmp_path
):
    """The home's parent is the user's, who swaps the home itself for a link to root's the moment the
    module reads its keys (and at random between): the module refuses, naming the parent, before anything
    changes; root's ~/.ssh is never written."""
    users = owned_by_nobody(os.path.join(private_path("/home", copy=False), "users"))
    home = os.path.join(users, "nobody")
    passwd("nobody", home=home, login="/bin/bash")
    canary = _root_home(tmp_path)
    before = snapshot(canary / ".ssh")
    owned_by_nobody(home)
    ssh_dir = owned_by_nobody(os.path.join(home, ".ssh"), 0o700)
    Path(ssh_dir, "authorized_keys").write_text("")
    keys, runs = _keys(tmp_path, 4), []
    with RacingUser(home, canary, on_open=ssh_dir) as racer:
        for key in keys:  # a new key each run, to be written
            runs.append(run_module("admin_accounts", _admin_args(key)))
    assert racer.swaps > 4, racer.swaps
    assert snapshot(canary / ".ssh") == before, "root wrote a key file through the user's link"
    for done in runs:
        assert done.result is not None and done.result.get("failed"), done
        # read_live already meets the parent (the keys are read the safe way): refused naming both.
        assert done.result["msg"].startswith(
            f"account 'nobody': {users} belongs to nobody (uid 65534), not root"
        ), done
        assert done.result["msg"].endswith("Nothing was changed"), done
    assert os.listdir(ssh_dir) == ["authorized_keys"]
    assert Path(ssh_dir, "authorized_keys").read_text() == ""


def test_admin_accounts_never_reads_root_only_files_through_an_authorized_keys_the_user_swaps(
    private_path, run_module, passwd, tmp_path
):
    """The user swaps its authorized_keys for a link to a root-only file, as fast as it can. Not exclusive,
    a key file's other lines are kept and written back to the user's own file: the root-only content must
    never get there, nor into the result. (Probabilistic: the old code was caught in most runs of it; the
    unit tests in test_admin_accounts.py pin the swap deterministically.)"""
    home = os.path.join(private_path("/home", copy=False), "nobody")
    passwd("nobody", home=home, login="/bin/bash")
    shadow = tmp_path / "shadow"
    shadow.write_text("root:CANARY-HASH:19000:0:99999:7:::\n")
    os.chmod(shadow, 0o600)
    owned_by_nobody(home)
    ssh_dir = owned_by_nobody(os.path.join(home, ".ssh"), 0o700)
    keys_file = os.path.join(ssh_dir, "authorized_keys")
    Path(keys_file).write_text("# the user's own line\n")
    os.chown(keys_file, NOBODY, NOGROUP)
    keys, runs = _keys(tmp_path, 20), []
    # As fast as it can: the module's own check (lstat) and its read (open) see independent states.
    with RacingUser(keys_file, shadow, pace=0) as racer:
        for key in keys:  # a new key each run, to be written
            runs.append(run_module("admin_accounts", {**_admin_args(key), "exclusive": False}))
    assert racer.swaps > 20, racer.swaps
    for done in runs:
        assert done.result is not None, done
        assert "CANARY" not in repr(done.result), done
        if done.result.get("failed"):
            assert f"{keys_file} is a symbolic link" in done.result["msg"], done
    if os.path.islink(keys_file):
        os.unlink(keys_file)
    assert "CANARY" not in Path(keys_file).read_text() if os.path.exists(keys_file) else True
    assert Path(shadow).read_text().startswith("root:CANARY-HASH")
