"""Fixtures for every scenario's testinfra tests: real logins and real traffic from lab hosts.

pytest finds this file for any test under molecule/*/tests/.
"""

import os
import subprocess
from pathlib import Path

import pytest
import testinfra

PROJECT = Path(__file__).resolve().parents[1]
OPERATOR_KEY = PROJECT / ".lab" / "id_ed25519"
# A login test proves a fresh login, so it opens a new TCP connection every time.
FRESH_CONNECTION = [
    "-o", "ControlMaster=no",
    "-o", "ControlPath=none",
    "-o", "BatchMode=yes",
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "ConnectTimeout=5",
    "-o", "LogLevel=ERROR",
]  # fmt: skip


def address_of(host):
    """The address the controller reaches a testinfra host at."""
    return host.ansible.get_variables()["ansible_host"]


def ssh(address, user="deploy", command="true", key=OPERATOR_KEY, options=(), password=None):
    """A new SSH connection from the controller; returns the CompletedProcess (never raises)."""
    argv = ["ssh", *FRESH_CONNECTION, *options]
    if key:
        argv += ["-i", str(key), "-o", "IdentitiesOnly=yes"]
    argv += [f"{user}@{address}", command]
    env = dict(os.environ)
    if password is not None:
        argv = ["sshpass", "-e", *argv]
        env["SSHPASS"] = password
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env, check=False)


@pytest.fixture
def lab_host(request):
    """Another host of the scenario's inventory, by name: `lab_host("fw-client")`."""
    inventory = request.config.option.ansible_inventory

    def get(name):
        return testinfra.get_host(f"ansible://{name}", ansible_inventory=inventory)

    return get
