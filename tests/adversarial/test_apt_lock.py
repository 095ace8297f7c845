"""baseline_packages and the package manager's lock: a run while another process holds dpkg's lock (a
killed run's apt transaction that goes on, unattended-upgrades at a cloud host's first boot) waits, says who
holds it, fails by name when lock_timeout is spent and proceeds once the lock is free.

The host is this machine seen through private copies (this test's mount namespace only) of dpkg's database,
apt's state, cache, configuration and logs. dpkg's database gets one more package, `bulwark-fake`, installed
and owning no file: purging it is a real apt transaction (real locks, real dpkg) that touches nothing outside
those copies and needs no network. apt's configuration parts are left out (their hooks would reach D-Bus or
clean the machine's caches).
"""

import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from conftest import sh

FAKE = "bulwark-fake"
FRONTEND = "/var/lib/dpkg/lock-frontend"
# A process holding the lock as apt does (fcntl, write), named as the first boot's holder shows itself.
HOLD = textwrap.dedent(
    """
    import fcntl, os, sys
    with open("/proc/self/comm", "w") as comm:
        comm.write("unattended-upgr")
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o640)
    fcntl.lockf(fd, fcntl.LOCK_EX)
    print("held", flush=True)
    sys.stdin.read()
    """
)
STATUS = f"""
Package: {FAKE}
Status: install ok installed
Priority: optional
Section: misc
Installed-Size: 1
Maintainer: bulwark tests <tests@example.invalid>
Architecture: all
Version: 1.0
Description: an installed package that owns no file, for the lock tests
"""


@pytest.fixture
def apt_host(private_path, tmp_path):
    private_path("/var/lib/dpkg")
    for directory in ("/var/lib/apt", "/var/cache/apt", "/var/log"):
        private_path(directory, copy=False)
    private_path("/etc/apt")
    for name in os.listdir("/etc/apt/apt.conf.d"):
        os.remove(os.path.join("/etc/apt/apt.conf.d", name))
    for directory in ("/var/lib/apt/lists/partial", "/var/cache/apt/archives/partial", "/var/log/apt"):
        os.makedirs(directory)
    # Package lists the module takes as fresh (with a large cache_valid_time): no refresh, no network.
    open("/var/lib/apt/lists/example.invalid_dists_none_main_binary-amd64_Packages", "w").close()
    with open("/var/lib/dpkg/status", "a", encoding="utf-8") as status:
        status.write(STATUS)
    open(f"/var/lib/dpkg/info/{FAKE}.list", "w").close()
    # What the transaction will do, before it is done for real: purge the fake package, nothing else.
    simulated = sh(["apt-get", "install", "--simulate", "--purge", f"{FAKE}-"]).stdout
    assert [line for line in simulated.splitlines() if line.startswith(("Inst", "Purg", "Remv", "Conf"))] == [
        f"Purg {FAKE} [1.0]"
    ]
    return {
        "absent": [FAKE],
        "cache_valid_time": 10**9,
        "state_dir": str(tmp_path / "state"),
    }


@pytest.fixture
def holder():
    """holder() -> a child process holding the lock on dpkg's frontend lock until .release()."""
    made = []

    class Holder:
        def __init__(self):
            self.process = subprocess.Popen(
                [sys.executable, "-c", HOLD, FRONTEND],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert self.process.stdout.readline().strip() == "held"
            self.pid = self.process.pid

        def release(self):
            if self.process.poll() is None:
                self.process.stdin.close()
                self.process.wait(timeout=10)

    def make():
        made.append(Holder())
        return made[-1]

    yield make
    for one in made:
        one.release()


def warnings(result):
    """The module's warnings as text (ansible-core 2.19 returns them as structured events)."""
    return [w["event"]["msg"] if isinstance(w, dict) else w for w in result.get("warnings", [])]


def installed(name):
    done = sh(["dpkg-query", "--show", "--showformat=${db:Status-Status}", name], check=False)
    return done.returncode == 0 and done.stdout == "installed"


def test_apt_itself_fails_at_once_while_the_lock_is_held(apt_host, holder):
    """What the module did before: one apt-get that fails at once, naming the holder."""
    held = holder()
    done = sh(["apt-get", "install", "--yes", "--purge", f"{FAKE}-"], check=False)
    assert done.returncode != 0
    assert f"Could not get lock {FRONTEND}. It is held by process {held.pid} (unattended-upgr)" in done.stderr
    assert installed(FAKE)


def test_a_run_waits_names_the_holder_and_fails_by_name_when_the_time_is_up(apt_host, holder, run_module):
    held = holder()
    started = time.monotonic()
    done = run_module("baseline_packages", {**apt_host, "lock_timeout": 2})
    waited = time.monotonic() - started
    assert done.result is not None and done.result.get("failed"), done
    assert done.result["msg"] == (
        f"lock_timeout: the package manager's lock {FRONTEND} is still held by process {held.pid}"
        " (unattended-upgr) after 2 s. Nothing was applied"
    )
    assert done.result["changed"] is False
    assert (
        f"waiting for the package manager's lock {FRONTEND}, held by process {held.pid} (unattended-upgr)"
        in warnings(done.result)
    )
    assert 2 <= waited < 15
    assert installed(FAKE)
    assert not any("apt-get install" in op for op in done.ops), done.ops


def test_a_run_proceeds_once_the_holder_releases_the_lock(apt_host, holder, run_module):
    held = holder()
    timer = threading.Timer(1.5, held.release)
    timer.start()
    try:
        started = time.monotonic()
        done = run_module("baseline_packages", apt_host)  # lock_timeout's default
        waited = time.monotonic() - started
    finally:
        timer.cancel()
        held.release()
    assert done.rc == 0 and not done.result.get("failed"), done
    assert done.result["changed"] is True
    assert done.result["purged"] == [FAKE]
    assert warnings(done.result) == [
        f"waiting for the package manager's lock {FRONTEND}, held by process {held.pid} (unattended-upgr)"
    ]
    assert waited >= 1.5
    assert not installed(FAKE)


def test_a_run_with_nothing_to_do_and_check_mode_never_wait(apt_host, holder, run_module):
    holder()
    started = time.monotonic()
    # Check mode takes no lock: the purge is predicted at once.
    predicted = run_module("baseline_packages", {**apt_host, "lock_timeout": 300}, check_mode=True)
    assert predicted.rc == 0 and predicted.result["purged"] == [FAKE], predicted
    assert warnings(predicted.result) == []
    # Nothing to install or purge: no apt transaction, nothing to wait for.
    nothing = run_module(
        "baseline_packages", {**apt_host, "absent": ["telnet-bulwark-none"], "lock_timeout": 300}
    )
    assert nothing.rc == 0 and nothing.result["changed"] is False, nothing
    assert time.monotonic() - started < 30
    assert installed(FAKE)


def test_lock_timeout_zero_fails_at_once_and_a_negative_one_is_refused_by_name(apt_host, holder, run_module):
    held = holder()
    done = run_module("baseline_packages", {**apt_host, "lock_timeout": 0})
    assert done.result["msg"] == (
        f"lock_timeout: the package manager's lock {FRONTEND} is still held by process {held.pid}"
        " (unattended-upgr) after 0 s. Nothing was applied"
    )
    bad = run_module("baseline_packages", {**apt_host, "lock_timeout": -1})
    assert bad.result["msg"] == "lock_timeout: -1 is below 0. Nothing was applied"
    assert bad.ops == []
    assert installed(FAKE)
