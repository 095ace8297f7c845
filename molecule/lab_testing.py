"""Real logins and real traffic for every scenario's testinfra tests.

Tests import it as `from lab_testing import ssh, address_of` (molecule/conftest.py puts this
folder on the path).
"""

import os
import socket
import subprocess
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
OPERATOR_KEY = PROJECT / ".lab" / "id_ed25519"
LAB_PASSWORD = "lab-password-not-secret"  # noqa: S105  (tests/lab/images.py sets it on deploy)
# A login test proves a fresh login, so it opens a new TCP connection every time.
FRESH_CONNECTION = [
    "-o", "ControlMaster=no",
    "-o", "ControlPath=none",
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "ConnectTimeout=5",
    "-o", "LogLevel=ERROR",
]  # fmt: skip


def address_of(host):
    """The address the controller reaches a testinfra host at."""
    return host.ansible.get_variables()["ansible_host"]


def ssh(address, *, user="deploy", command="true", key=OPERATOR_KEY, options=(), password=None):
    """A new SSH connection from the controller; returns the CompletedProcess (never raises).

    With a password, the login tries only password and keyboard-interactive authentication.
    """
    argv = ["ssh", *FRESH_CONNECTION, *options]
    env = dict(os.environ)
    if password is not None:
        argv = ["sshpass", "-e", *argv, "-o", "BatchMode=no", "-o", "PubkeyAuthentication=no",
                "-o", "PreferredAuthentications=password,keyboard-interactive"]  # fmt: skip
        env["SSHPASS"] = password
    else:
        argv += ["-o", "BatchMode=yes"]
        if key:
            argv += ["-i", str(key), "-o", "IdentitiesOnly=yes"]
    argv += [f"{user}@{address}", command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env, check=False)


def wait_for_ssh(address, port=22, timeout=15):
    """Wait until sshd answers with its banner (a reload re-executes sshd: a moment without a listener)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=2) as conn:
                if conn.recv(4) == b"SSH-":
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"no SSH banner from {address}:{port} within {timeout} s")


def ansible_env(**extra):
    """The environment for an ansible or ansible-playbook run from a test: this checkout's collection and
    configuration, plain output; extra adds or overrides variables."""
    return {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(PROJECT / ".collections"),
        "ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg"),
        "ANSIBLE_FORCE_COLOR": "0",
        **extra,
    }


def reach(source, address, port, timeout=3):
    """A new TCP connection from source (a testinfra host) to address:port; True if it is answered."""
    probe = f"import socket; socket.create_connection(('{address}', {port}), {timeout})"
    return source.run(f'timeout {timeout + 1} python3 -c "{probe}"').rc == 0
