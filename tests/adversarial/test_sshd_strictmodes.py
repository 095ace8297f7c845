"""StrictModes: a real sshd refuses a key below a group-writable home; the sshd_config module must refuse, by
name, a configuration that turns StrictModes on while the connecting user's home is such, and change nothing.

The user is `nobody`, given a home under a private /home by a private copy of /etc/passwd bind-mounted over
the machine's (in the suite's mount namespace only). Its group, nogroup, is the primary group of other
accounts too, so Debian's exception for a group that is the user's alone does not apply.
"""

import hashlib
import os
import subprocess
import time

import pytest
from conftest import sh

HOST, CONTROLLER = "10.231.0.1", "10.231.0.2"
USER, UID, GID = "nobody", 65534, 65534
HOME = "/home/nobody"


@pytest.fixture
def nobody_home(private_path, tmp_path):
    """nobody's home is /home/nobody (a private /home), through a private copy of /etc/passwd."""
    private_path("/home", copy=False)
    passwd = tmp_path / "passwd"
    lines = []
    for line in open("/etc/passwd", encoding="utf-8").read().splitlines():
        fields = line.split(":")
        if fields[0] == USER:
            fields[5] = HOME
        lines.append(":".join(fields))
    passwd.write_text("\n".join(lines) + "\n")
    passwd.chmod(0o644)
    sh(["mount", "--bind", str(passwd), "/etc/passwd"])
    try:
        yield HOME
    finally:
        sh(["umount", "-l", "/etc/passwd"], check=False)


@pytest.fixture
def keys(tmp_path, nobody_home):
    """The controller's key, authorized for nobody: ~/.ssh 0700 and authorized_keys 0600, owned by nobody."""
    key = tmp_path / "id_ed25519"
    sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "controller", "-f", str(key)])
    ssh_dir = os.path.join(nobody_home, ".ssh")
    os.makedirs(ssh_dir)
    authorized = os.path.join(ssh_dir, "authorized_keys")
    with open(authorized, "w", encoding="utf-8") as handle:
        handle.write((tmp_path / "id_ed25519.pub").read_text())
    for path, mode in ((nobody_home, 0o755), (ssh_dir, 0o700), (authorized, 0o600)):
        os.chown(path, UID, GID)
        os.chmod(path, mode)
    return key


@pytest.fixture
def sshd_tree(tmp_path):
    """A configuration tree of the host's sshd: the main config including its drop-in directory first."""
    root = tmp_path / "ssh"
    (root / "sshd_config.d").mkdir(parents=True)
    sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / "host_ed25519_key")])
    main = root / "sshd_config"
    main.write_text(
        f"Include {root}/sshd_config.d/*.conf\n"
        f"ListenAddress {HOST}:22\n"
        f"HostKey {root}/host_ed25519_key\n"
        f"PidFile {tmp_path}/sshd.pid\n"
        # What the host had before the role: StrictModes off, so the group-writable home went unnoticed.
        "StrictModes no\n"
        "UsePAM no\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "AuthorizedKeysFile .ssh/authorized_keys\n"
    )
    main.chmod(0o600)
    return root


class Sshd:
    """sshd -D in the host's namespace, its log on stderr."""

    def __init__(self, ns, config, log, *options):
        self.log = log
        argv = ["/usr/sbin/sshd", "-D", "-e", "-f", str(config)]
        for option in options:
            argv += ["-o", option]
        with open(log, "w", encoding="utf-8") as handle:
            self.process = ns.popen(argv, stdout=handle, stderr=subprocess.STDOUT)
        self.ns = ns

    def __enter__(self):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"sshd stopped: {open(self.log, encoding='utf-8').read()}")
            if self.ns.connects(HOST, 22, timeout=0.5):
                return self
            time.sleep(0.1)
        raise AssertionError("sshd did not listen within 10 s")

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(timeout=10)

    def text(self):
        return open(self.log, encoding="utf-8").read()


def login(controller, key):
    """A fresh key login (no connection reuse). nobody's shell is nologin: once in, it exits 1."""
    return controller.run(
        [
            "ssh", "-F", "/dev/null", "-i", str(key), "-o", "BatchMode=yes", "-o", "ControlMaster=no",
            "-o", "ControlPath=none", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=5", f"{USER}@{HOST}", "true",
        ],
        check=False,
    )  # fmt: skip


def logged_in(done):
    return done.returncode != 255 and "Permission denied" not in done.stderr


def digest(root):
    found = {}
    for base, _dirs, names in os.walk(root):
        for name in names:
            path = os.path.join(base, name)
            with open(path, "rb") as handle:
                found[path] = (hashlib.sha256(handle.read()).hexdigest(), os.stat(path).st_mode)
    return found


def test_real_sshd_refuses_a_key_below_a_group_writable_home_under_strict_modes(
    netns, link, keys, sshd_tree, tmp_path
):
    host, controller = netns(), netns()
    link(host, controller, f"{HOST}/24", f"{CONTROLLER}/24")
    config = sshd_tree / "sshd_config"
    with Sshd(host, config, tmp_path / "a.log"):
        assert logged_in(login(controller, keys))  # the key works: the listener and the account are sound
    os.chmod(HOME, 0o775)  # noqa: S103 - group-writable, by nogroup: not nobody's alone
    with Sshd(host, config, tmp_path / "b.log"):
        assert logged_in(login(controller, keys))  # StrictModes no: nobody notices
    with Sshd(host, config, tmp_path / "c.log", "StrictModes=yes") as sshd:
        done = login(controller, keys)
        assert not logged_in(done), done
        assert "Permission denied (publickey)" in done.stderr
    assert f"bad ownership or modes for directory {HOME}" in sshd.text()


def test_sshd_config_refuses_strict_modes_by_name_and_changes_nothing(
    netns, link, keys, sshd_tree, tmp_path, *, run_module, fake_systemd, state_root
):
    host, controller = netns(), netns()
    link(host, controller, f"{HOST}/24", f"{CONTROLLER}/24")
    os.chmod(HOME, 0o775)  # noqa: S103 - the home StrictModes refuses
    config = sshd_tree / "sshd_config"
    args = {
        "options": {"StrictModes": True, "PubkeyAuthentication": True},
        "path": str(sshd_tree / "sshd_config.d" / "00-bulwark.conf"),
        "main_config": str(config),
        "connecting_user": USER,
        "connecting_from": CONTROLLER,
        "local_address": HOST,
        "local_port": 22,
    }
    before = digest(sshd_tree)
    with Sshd(host, config, tmp_path / "a.log"):
        assert logged_in(login(controller, keys))
        for check_mode in (True, False):
            done = run_module("sshd_config", args, ns=host, env=fake_systemd.env(), check_mode=check_mode)
            assert done.result is not None, done
            assert done.result.get("failed"), done
            msg = done.result["msg"]
            assert (
                f"StrictModes yes: {HOME} is group-writable (mode 0775) by group nogroup, not {USER}'s alone"
                f" (chmod g-w {HOME}): sshd would refuse {USER}'s keys in {HOME}/.ssh/authorized_keys" in msg
            ), msg
            assert "Nothing was applied" in msg
            # Only the candidate's evaluation on a temporary copy of the tree, and sshd -t / -T.
            touched = [op.split("\t", 1)[1] for op in done.ops]
            assert all(op.startswith(("run ", "write /tmp/bulwark-sshd-")) for op in touched), touched
            assert not any("systemd-run" in op or "systemctl" in op for op in touched), touched
        assert digest(sshd_tree) == before
        assert fake_systemd.timers() == {}
        assert logged_in(login(controller, keys))  # the host's sshd still lets the controller in

    # Fixed as the message says, the same change passes the guard (check mode: nothing is applied).
    os.chmod(HOME, 0o755)  # noqa: S103 - a home's usual mode
    done = run_module("sshd_config", args, ns=host, env=fake_systemd.env(), check_mode=True)
    assert done.rc == 0 and not done.result.get("failed"), done
    assert done.result["refusals"] == []
