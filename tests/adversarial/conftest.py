"""The adversarial suite: the collection's modules attacked with real tools in private namespaces.

`make adversarial` (tests/adversarial/run.sh) runs pytest inside a new network AND mount namespace; this file
refuses to run anywhere else, so that no rollback, ruleset or bind mount a test makes can ever reach the
test machine's own firewall or files. Inside, each test gets fresh network namespaces of its own
(`netns`), veth links between them (`link`), private copies of host directories (`private_path`),
a systemd stand-in whose timers the test fires itself (`fake_systemd`) and a module runner that can kill
or fail a module at any host operation (`run_module`).
"""

import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
from tests import collection_path  # noqa: E402

collection_path.install()


def _namespace(kind, pid="self"):
    try:
        return os.stat(f"/proc/{pid}/ns/{kind}").st_ino
    except OSError:
        return None  # a process this one may not inspect (PID 1 of a sandbox, one that just ended)


def _ancestors():
    pid = os.getppid()
    while pid > 1:
        yield pid
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return
        pid = int(status.split("PPid:", 1)[1].split()[0])


def outside_process():
    """The topmost ancestor this process may inspect (the machine's own shell or service), if it is in
    another network and mount namespace than this process; None when they are shared. PID 1 cannot
    always be inspected in a sandbox, so the oldest visible ancestor stands for the machine."""
    readable = [pid for pid in _ancestors() if _namespace("net", pid) and _namespace("mnt", pid)]
    if not readable:
        return None
    top = readable[-1]
    if _namespace("net", top) != _namespace("net") and _namespace("mnt", top) != _namespace("mnt"):
        return top
    return None


def pytest_configure(config):
    if outside_process() is None:
        raise pytest.UsageError(
            "the adversarial suite shares the network and mount namespaces of the processes that started"
            " it: its rollbacks, rulesets and bind mounts would change this machine. Run it with"
            " `make adversarial` (tests/adversarial/run.sh), which starts it in private namespaces."
        )


_names = itertools.count()


def sh(argv, check=True, **kwargs):
    """Run argv; with check, a failure shows its output."""
    done = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    if check and done.returncode != 0:
        raise AssertionError(f"{argv} failed (rc={done.returncode}): {done.stdout}{done.stderr}")
    return done


class Netns:
    """A network namespace of the test (loopback up); `run` executes argv inside it."""

    def __init__(self, name):
        self.name = name
        sh(["ip", "netns", "add", name])
        self.run(["ip", "link", "set", "lo", "up"])

    def argv(self, argv):
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, argv, check=True, **kwargs):
        return sh(self.argv(argv), check=check, **kwargs)

    def popen(self, argv, **kwargs):
        return subprocess.Popen(self.argv(argv), **kwargs)

    def connects(self, address, port, timeout=2.0):
        """True if a TCP connection from this namespace to address:port is accepted."""
        code = (
            "import socket,sys\n"
            "try:\n"
            f"    socket.create_connection(({address!r}, {int(port)}), timeout={timeout}).close()\n"
            "except OSError:\n"
            "    sys.exit(1)\n"
        )
        return self.run([sys.executable, "-c", code], check=False).returncode == 0

    def remove(self):
        sh(["ip", "netns", "delete", self.name], check=False)


@pytest.fixture(scope="session", autouse=True)
def _private_run():
    """A /run of the suite's own (a tmpfs of this mount namespace): `ip netns` keeps its names there, and no
    module under test sees the machine's runtime state (its Docker socket, its daemons' pid files)."""
    sh(["mount", "-t", "tmpfs", "-o", "mode=0755", "bulwark-run", "/run"])
    for directory in ("/run/netns", "/run/sshd", "/run/lock"):
        os.makedirs(directory, mode=0o755, exist_ok=True)
    yield
    sh(["umount", "-l", "/run"], check=False)


@pytest.fixture
def netns():
    """netns() -> a fresh Netns, removed after the test."""
    made = []

    def make():
        made.append(Netns(f"adv{os.getpid()}-{next(_names)}"))
        return made[-1]

    yield make
    for ns in made:
        ns.remove()


@pytest.fixture
def link():
    """link(a, b, a_address, b_address): a veth pair between two Netns, addresses with their prefix."""

    def make(a, b, a_address="10.231.0.1/24", b_address="10.231.0.2/24"):
        n = next(_names)
        ea, eb = f"va{n}", f"vb{n}"
        sh(["ip", "link", "add", ea, "type", "veth", "peer", "name", eb])
        for ns, end, address in ((a, ea, a_address), (b, eb, b_address)):
            sh(["ip", "link", "set", end, "netns", ns.name])
            ns.run(["ip", "address", "add", address, "dev", end])
            ns.run(["ip", "link", "set", end, "up"])
        return ea, eb

    return make


@pytest.fixture
def private_path():
    """private_path(path, copy=True): a fresh writable copy of a host directory bind-mounted over it for
    this test only (this mount namespace's, never the machine's); returns the path."""
    mounted = []

    def make(path, copy=True):
        scratch = tempfile.mkdtemp(prefix="bulwark-adv-")
        os.chmod(scratch, 0o755)  # noqa: S103 - as the directory it stands for
        if copy and os.path.isdir(path):
            shutil.copytree(path, scratch, symlinks=True, dirs_exist_ok=True)
            shutil.copystat(path, scratch)
        os.makedirs(path, exist_ok=True)
        sh(["mount", "--bind", scratch, path])
        mounted.append((path, scratch))
        return path

    yield make
    for path, scratch in reversed(mounted):
        sh(["umount", "-l", path], check=False)
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture
def state_root(private_path):
    """/var/lib/bulwark, empty and private to the test (the commit-confirm state lives there)."""
    return private_path("/var/lib/bulwark", copy=False)


class FakeSystemd:
    """The directory of the systemd stand-in (fake_systemd.py): its timers, hooks and calls."""

    def __init__(self, root):
        self.root = Path(root)
        self.bin = self.root / "bin"
        for sub in ("bin", "timers", "hooks"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for name in ("systemd-run", "systemctl"):
            wrapper = self.bin / name
            wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} {HERE / "fake_systemd.py"} {name} "$@"\n')
            wrapper.chmod(0o755)
        (self.root / "calls").touch()

    def env(self):
        return {"BULWARK_FAKE_SYSTEMD": str(self.root), "PATH": f"{self.bin}:{os.environ['PATH']}"}

    def timers(self):
        """{unit: command} of every timer armed and not stopped."""
        return {
            path.name.removesuffix(".timer"): json.loads(path.read_text())["command"]
            for path in (self.root / "timers").glob("*.timer")
        }

    def fire(self, unit, ns=None):
        """What systemd does when the timer elapses: run its command once (inside ns), forget the timer."""
        command = self.timers()[unit]
        (self.root / "timers" / f"{unit}.timer").unlink()
        return (ns.run if ns else sh)(command, check=False)

    def hook(self, verb, unit, script):
        """Make `systemctl VERB UNIT` run this shell script (its exit code is systemctl's)."""
        path = self.root / "hooks" / f"{verb}-{unit}"
        path.write_text("#!/bin/sh\n" + script + "\n")
        path.chmod(0o755)

    def calls(self):
        return [json.loads(line) for line in (self.root / "calls").read_text().splitlines()]


@pytest.fixture
def fake_systemd(tmp_path):
    return FakeSystemd(tmp_path / "systemd")


class ModuleRun:
    """A module's outcome: rc, its JSON result (or None), stderr and the host operations it performed."""

    def __init__(self, rc, result, stderr, ops):
        self.rc, self.result, self.stderr, self.ops = rc, result, stderr, ops

    @property
    def killed(self):
        return self.rc in (-9, 137)

    def __repr__(self):
        return f"ModuleRun(rc={self.rc}, result={self.result}, stderr={self.stderr[-2000:]!r})"


@pytest.fixture
def run_module(tmp_path):
    """run_module(name, args, ns=None, env=None, check_mode=False, fault=None) -> ModuleRun.

    Runs plugins/modules/NAME as Ansible would on a host (inside ns when given). fault: "kill:N" or "fail:N"
    (tests/module_runner.py); ModuleRun.ops lists the host operations done, to enumerate kill points.
    """
    counter = itertools.count()

    def run(name, args, *, ns=None, env=None, check_mode=False, fault=None):
        n = next(counter)
        args_file = tmp_path / f"{name}-{n}.json"
        ops_file = tmp_path / f"{name}-{n}.ops"
        module_tmp = tmp_path / f"{name}-{n}.tmp"
        module_tmp.mkdir()
        payload = dict(args, _ansible_check_mode=check_mode, _ansible_tmpdir=str(module_tmp))
        args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": payload}))
        environ = {**os.environ, "BULWARK_OPS_LOG": str(ops_file), "LC_ALL": "C", **(env or {})}
        environ.pop("BULWARK_FAULT", None)
        if fault:
            environ["BULWARK_FAULT"] = fault
        argv = [sys.executable, str(HERE.parent / "module_runner.py"), name, str(args_file)]
        done = sh(ns.argv(argv) if ns else argv, check=False, env=environ)
        try:
            result = json.loads(done.stdout) if done.stdout.strip() else None
        except json.JSONDecodeError:
            result = None
        ops = ops_file.read_text().splitlines() if ops_file.exists() else []
        # `ip netns exec` turns a child killed by a signal into 128+N.
        return ModuleRun(done.returncode, result, done.stderr, ops)

    return run
