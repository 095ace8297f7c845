"""Locks on the host: which process holds a lock file, and a bounded wait until none does.

apt and dpkg lock their files (/var/lib/dpkg/lock-frontend, ...) with fcntl record locks, held for a whole
transaction; F_GETLK names the holder without taking the lock, so probing never gets in their way.
"""

import fcntl
import os
import struct
import time

from .files import HostError, read

# struct flock: l_type, l_whence, l_start, l_len, l_pid (off_t is 64 bits: Python is built with large files).
_FLOCK = "hhqqi"
# Room for the kernel's struct, whose trailing padding struct.calcsize does not count.
_ROOM = bytes(16)


class LockTimeout(HostError):
    """A lock was still held when the time was up."""

    def __init__(self, path, pid, command, waited):
        super().__init__(f"{path} is still held by process {pid} ({command}) after {waited} s")
        self.path, self.pid, self.command, self.waited = path, pid, command, waited


def command_of(pid):
    """The process's command name (/proc/PID/comm, at most 15 characters), or "unknown"."""
    try:
        name = read(f"/proc/{pid}/comm")
    except HostError:
        name = None
    return (name or "").strip() or "unknown"


def holder(path):
    """(pid, command) of the process whose fcntl lock on path would block a write lock; None when the path
    is free or does not exist."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise HostError(f"cannot open {path} to see who locks it: {exc.strerror}") from None
    try:
        probe = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0) + _ROOM
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, probe)
    except OSError as exc:
        raise HostError(f"cannot see who locks {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    kind, _whence, _start, _length, pid = struct.unpack_from(_FLOCK, answer)
    if kind == fcntl.F_UNLCK:
        return None
    return pid, command_of(pid)


class Waiter:
    """Waits until lock files are free, within one budget of `timeout` seconds counted from its creation.

    on_wait(path, pid, command) is called once for each holder it starts waiting for.
    """

    POLL = 0.5

    def __init__(self, timeout, on_wait, clock=time.monotonic, sleep=time.sleep):
        self.timeout, self.on_wait, self.clock, self.sleep = timeout, on_wait, clock, sleep
        self.deadline = clock() + timeout
        self.seen = set()

    def remaining(self):
        return max(0.0, self.deadline - self.clock())

    def wait(self, paths):
        """Return once none of paths is locked; LockTimeout naming the holder when the budget is spent."""
        while True:
            held = [(path, found) for path in paths for found in [holder(path)] if found]
            if not held:
                return
            path, (pid, command) = held[0]
            if (path, pid) not in self.seen:
                self.seen.add((path, pid))
                self.on_wait(path, pid, command)
            if self.remaining() <= 0:
                raise LockTimeout(path, pid, command, self.timeout)
            self.sleep(min(self.POLL, self.remaining()))
