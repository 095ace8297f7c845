"""Commit-confirm for changes that can cut the controller off (sshd, firewall).

A change is applied together with a rollback armed on the host itself: a transient systemd
timer that restores the previous state after a timeout. The controller then opens a new
connection and confirms, which stops the timer. If the controller cannot come back, the host
undoes the change by itself. Pure: these functions build commands; modules run them.
"""

import re
import shlex

UNIT_PREFIX = "bulwark-rollback-"
_UNIT_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")


def unit_name(concern):
    """The transient unit that holds a concern's pending rollback (one per concern)."""
    if not _UNIT_NAME.match(concern):
        raise ValueError(f"invalid rollback concern name: {concern!r}")
    return UNIT_PREFIX + concern


def arm_command(concern, timeout, restore_argv):
    """systemd-run argv that runs restore_argv once, timeout seconds from now, unless confirmed."""
    if not isinstance(timeout, int) or timeout < 5:
        raise ValueError("rollback timeout must be an integer of at least 5 seconds")
    unit = unit_name(concern)
    return [
        "systemd-run",
        "--quiet",
        "--collect",
        f"--unit={unit}",
        f"--description=bulwark.hardening: undo the {concern} change unless the controller confirms it",
        f"--on-active={timeout}s",
        "--timer-property=AccuracySec=1s",
        "/bin/sh",
        "-c",
        shlex.join(restore_argv) if not isinstance(restore_argv, str) else restore_argv,
    ]


def pending_command(concern):
    """argv whose exit status is 0 while the rollback timer is still armed."""
    return ["systemctl", "is-active", "--quiet", unit_name(concern) + ".timer"]


def disarm_command(concern):
    """argv that confirms the change: the timer is stopped before it fires."""
    return ["systemctl", "stop", unit_name(concern) + ".timer"]
