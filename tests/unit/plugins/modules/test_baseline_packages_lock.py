"""Waiting for the package manager's lock: the pure messages and checks, the bounded wait (a real fcntl lock
held by a child process, a fake clock), and the module's retry when apt finds a lock taken in between."""

import os
import subprocess
import sys
import textwrap
from importlib import util
from pathlib import Path

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.baseline import packages
from ansible_collections.bulwark.hardening.plugins.module_utils.host import locks
from ansible_collections.bulwark.hardening.plugins.module_utils.host.files import HostError
from ansible_collections.bulwark.hardening.plugins.modules import baseline_packages

HOLD = textwrap.dedent(
    """
    import fcntl, os, sys
    with open("/proc/self/comm", "w") as comm:
        comm.write("unattended-upgr")  # as a first boot's holder shows itself
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o640)
    fcntl.lockf(fd, fcntl.LOCK_EX)
    print("held", flush=True)
    sys.stdin.read()
    """
)


@pytest.fixture
def held(tmp_path):
    """A lock file and a child process holding apt's kind of lock (fcntl, write) on it until released."""
    path = tmp_path / "lock-frontend"
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline().strip() == "held"
    yield str(path), child
    child.stdin.close()
    child.wait(timeout=10)


def _validate_input_tests():
    """validate_input's own tests, for their helper that runs the action on the roles' real files."""
    path = Path(__file__).parents[1] / "action" / "test_validate_input.py"
    spec = util.spec_from_file_location("validate_input_tests", path)
    module = util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


validate_on_controller = _validate_input_tests().validate


class Clock:
    def __init__(self):
        self.now = 1000.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.parametrize(
    ("cache_valid_time", "lock_timeout", "error"),
    [
        (3600, 300, None),
        (0, 0, None),
        ("3600", "300", None),  # a role's variable may come as text
        (-1, 300, "cache_valid_time: -1 is below 0"),
        (3600, -5, "lock_timeout: -5 is below 0"),
        (3600, "-5", "lock_timeout: -5 is below 0"),
        (3600, "soon", "lock_timeout: 'soon' is not a number of seconds"),
        (3600, True, "lock_timeout: True is not a number of seconds"),
        (3600, 2.5, "lock_timeout: 2.5 is not a number of seconds"),
    ],
)
def test_times_are_whole_seconds_not_below_zero(cache_valid_time, lock_timeout, error):
    if error is None:
        packages.validate_times(cache_valid_time, lock_timeout)
    else:
        with pytest.raises(packages.PackageSpecError) as raised:
            packages.validate_times(cache_valid_time, lock_timeout)
        assert str(raised.value) == error


@pytest.mark.parametrize(
    ("message", "is_lock"),
    [
        (
            "apt-get install failed (rc=100): E: Could not get lock /var/lib/dpkg/lock-frontend. It is"
            " held by process 4242 (apt-get)\nE: Unable to acquire the dpkg frontend lock"
            " (/var/lib/dpkg/lock-frontend), is another process using it?",
            True,
        ),
        ("E: Could not get lock /var/lib/apt/lists/lock. It is held by process 7 (apt-get)", True),
        ("E: Unable to lock directory /var/cache/apt/archives/", True),
        ("E: Unable to locate package nosuchpackage", False),
        ("E: Failed to fetch http://deb.debian.org/...  Temporary failure resolving", False),
        ("", False),
    ],
)
def test_a_lock_failure_is_told_from_other_apt_failures(message, is_lock):
    assert packages.lock_failure(message) is is_lock


def test_the_timeout_names_the_option_the_lock_and_its_holder_and_what_was_applied():
    assert packages.lock_timed_out("/var/lib/dpkg/lock-frontend", 812, "unattended-upgr", 300, "") == (
        "lock_timeout: the package manager's lock /var/lib/dpkg/lock-frontend is still held by process 812"
        " (unattended-upgr) after 300 s. Nothing was applied"
    )
    assert packages.lock_timed_out(
        "/var/lib/dpkg/lock", 9, "dpkg", 5, "the package lists were refreshed"
    ) == (
        "lock_timeout: the package manager's lock /var/lib/dpkg/lock is still held by process 9 (dpkg) after"
        " 5 s. Already applied: the package lists were refreshed"
    )
    assert packages.waiting_for_lock("/var/lib/dpkg/lock-frontend", 812, "apt-get") == (
        "waiting for the package manager's lock /var/lib/dpkg/lock-frontend, held by process 812 (apt-get)"
    )


def test_holder_names_the_process_and_its_command_and_a_free_or_missing_lock_has_none(held, tmp_path):
    path, child = held
    assert locks.holder(path) == (child.pid, "unattended-upgr")
    free = tmp_path / "free"
    free.touch()
    assert locks.holder(str(free)) is None
    assert locks.holder(str(tmp_path / "absent")) is None


def test_the_wait_is_bounded_and_warns_once_per_holder(held, tmp_path):
    path, child = held
    clock, warned = Clock(), []
    waiter = locks.Waiter(3, lambda *holder: warned.append(holder), clock=clock, sleep=clock.sleep)
    free = tmp_path / "free"
    free.touch()
    with pytest.raises(locks.LockTimeout) as raised:
        waiter.wait([str(free), path])
    assert (raised.value.path, raised.value.pid, raised.value.waited) == (path, child.pid, 3)
    assert (
        str(raised.value) == f"{path} is still held by process {child.pid} ({raised.value.command}) after 3 s"
    )
    assert warned == [(path, child.pid, raised.value.command)]
    assert sum(clock.slept) == pytest.approx(3)
    assert all(step <= locks.Waiter.POLL for step in clock.slept)


def test_the_wait_returns_as_soon_as_the_lock_is_released(held):
    path, child = held
    clock, warned = Clock(), []

    def release(seconds):
        clock.sleep(seconds)
        child.stdin.close()
        child.wait(timeout=10)

    waiter = locks.Waiter(300, lambda *holder: warned.append(holder), clock=clock, sleep=release)
    waiter.wait([path])
    assert len(warned) == 1
    assert clock.now - 1000.0 == pytest.approx(locks.Waiter.POLL)


def test_a_zero_timeout_fails_at_once_naming_the_holder(held):
    path, child = held
    waiter = locks.Waiter(0, lambda *holder: None)
    with pytest.raises(locks.LockTimeout) as raised:
        waiter.wait([path])
    assert raised.value.pid == child.pid


class Runner:
    """Fails with apt's lock message the first `busy` times, then succeeds."""

    def __init__(
        self, busy, message="E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 5"
    ):
        self.busy, self.message, self.calls = busy, message, 0

    def run(self, argv, check=False, what=None, env=None):
        self.calls += 1
        if self.calls <= self.busy:
            raise HostError(f"{what} failed (rc=100): {self.message}")
        return 0, "done", ""


def test_apt_runs_again_when_another_process_took_the_lock_in_between(tmp_path):
    clock = Clock()
    waiter = locks.Waiter(10, lambda *holder: None, clock=clock, sleep=clock.sleep)
    runner = Runner(busy=2)
    free = str(tmp_path / "lock")
    assert baseline_packages.apt(runner, waiter, ["apt-get", "install"], [free], "apt-get install") == "done"
    assert runner.calls == 3


def test_apt_stops_retrying_when_the_time_is_up_or_the_failure_is_not_a_lock(tmp_path):
    clock = Clock()
    waiter = locks.Waiter(2, lambda *holder: None, clock=clock, sleep=clock.sleep)
    runner = Runner(busy=100)
    with pytest.raises(HostError, match="Could not get lock"):
        baseline_packages.apt(runner, waiter, ["apt-get", "install"], [], "apt-get install")
    assert runner.calls == 5  # every half second within the 2 s, then apt's own message
    other = Runner(busy=1, message="E: Unable to locate package nosuchpackage")
    with pytest.raises(HostError, match="Unable to locate"):
        baseline_packages.apt(
            other, locks.Waiter(300, lambda *holder: None), ["apt-get"], [], "apt-get install"
        )
    assert other.calls == 1


def test_the_roles_lock_timeout_reaches_the_module_and_a_negative_one_is_refused_on_the_controller():
    assert not validate_on_controller(["bootstrap"]).get("failed")
    assert not validate_on_controller(["bootstrap"], bootstrap_apt_lock_timeout=0).get("failed")
    result = validate_on_controller(["bootstrap"], bootstrap_apt_lock_timeout=-1)
    assert result["failed"] is True
    assert result["errors"] == [
        "bootstrap (bulwark.hardening.baseline_packages): lock_timeout: -1 is below 0"
        " (set by bootstrap_apt_lock_timeout)"
    ]


def test_a_lock_taken_between_the_probe_and_apt_is_named_when_the_time_is_up(tmp_path):
    path = str(tmp_path / "lock-frontend")
    taken = []

    class Racing(Runner):
        def run(self, argv, check=False, what=None, env=None):
            # Another process takes the lock just after the probe found it free.
            taken.append(
                subprocess.Popen(
                    [sys.executable, "-c", HOLD, path],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
            assert taken[-1].stdout.readline().strip() == "held"
            return super().run(argv, check, what)

    try:
        with pytest.raises(locks.LockTimeout) as raised:
            baseline_packages.apt(
                Racing(busy=1), locks.Waiter(0, lambda *holder: None), ["apt-get"], [path], "x"
            )
        assert (raised.value.path, raised.value.pid, raised.value.command) == (
            path,
            taken[0].pid,
            "unattended-upgr",
        )
    finally:
        for child in taken:
            child.stdin.close()
            child.wait(timeout=10)


def test_apt_gets_its_noninteractive_environment_and_this_process_keeps_its_own(tmp_path):
    """The old module set DEBIAN_FRONTEND and NEEDRESTART_SUSPEND in its own os.environ."""
    seen = []

    class Recording(Runner):
        def run(self, argv, check=False, what=None, env=None):
            seen.append(env)
            return super().run(argv, check=check, what=what, env=env)

    before = dict(os.environ)
    waiter = locks.Waiter(10, lambda *holder: None)
    baseline_packages.apt(Recording(busy=0), waiter, ["apt-get", "install"], [], "apt-get install")
    assert seen == [{"DEBIAN_FRONTEND": "noninteractive", "NEEDRESTART_SUSPEND": "1"}]
    assert dict(os.environ) == before
