"""sshd after the role: what an attacker and the operator can and cannot do, from the controller."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lab_testing import LAB_PASSWORD, OPERATOR_KEY, address_of, ssh, wait_for_ssh

POLICIES = {"12": "Hardened Debian 12 (version 3)", "13": "Hardened Debian 13 (version 1)"}
SSH_AUDIT = Path(sys.executable).with_name("ssh-audit")
DROPIN = "/etc/ssh/sshd_config.d/00-bulwark.conf"
CONFIG_FILES = "/etc/ssh/sshd_config /etc/ssh/sshd_config.d/* /etc/ssh/ssh_host_*"
CLIENT_KEX = subprocess.run(["ssh", "-Q", "kex"], capture_output=True, text=True, check=True).stdout.split()


def config_digest(host):
    with host.sudo():
        return host.check_output(f"sha256sum {CONFIG_FILES}")


def release(host):
    return host.system_info.release.split(".")[0]


def test_ssh_audit_policy_of_the_release_passes(host):
    policy = POLICIES[release(host)]
    scan = subprocess.run(
        [str(SSH_AUDIT), "-P", policy, address_of(host)], capture_output=True, text=True, check=False
    )
    assert scan.returncode == 0, scan.stdout + scan.stderr
    assert "Passed" in scan.stdout


def test_operator_logs_in_over_a_new_connection(host):
    login = ssh(address_of(host), command="id -un")
    assert login.returncode == 0, login.stderr
    assert login.stdout.strip() == "deploy"


def test_root_is_refused_even_with_an_authorized_key(host):
    with host.sudo():
        assert host.file("/root/.ssh/authorized_keys").size > 0
    login = ssh(address_of(host), user="root")
    assert login.returncode == 255
    assert "Permission denied" in login.stderr


def test_password_login_is_refused_and_not_even_offered(host):
    login = ssh(address_of(host), password=LAB_PASSWORD)
    assert login.returncode != 0
    assert "Permission denied (publickey)" in login.stderr


def test_a_later_drop_in_cannot_turn_passwords_back_on(host):
    """cloud-init's 50-cloud-init.conf has undone other tools' hardening: ours is read first."""
    with host.sudo():
        host.check_output(
            "echo 'PasswordAuthentication yes' > /etc/ssh/sshd_config.d/50-cloud-init.conf"
            " && systemctl reload ssh"
        )
    wait_for_ssh(address_of(host))
    try:
        login = ssh(address_of(host), password=LAB_PASSWORD)
        assert "Permission denied (publickey)" in login.stderr
    finally:
        with host.sudo():
            host.check_output("rm /etc/ssh/sshd_config.d/50-cloud-init.conf && systemctl reload ssh")
        wait_for_ssh(address_of(host))


def apply(host, **args):
    """One sshd_config call, as the role makes it; returns the module's result."""
    return host.ansible("bulwark.hardening.sshd_config", json.dumps(args), check=False, become=True)


def live_options(host):
    """The role's drop-in as sshd_config options (a keyword on several lines as a list)."""
    with host.sudo():
        text = host.file(DROPIN).content_string
    options = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split(None, 1)
            options[key] = (
                [*options[key], value]
                if isinstance(options.get(key), list)
                else ([options[key], value] if key in options else value)
            )
    return options


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"PermitRootLogn": "no"}, "PermitRootLogn"),
        ({"MaxAuthTries": "three"}, "MaxAuthTries"),
        ({"AllowUsers": "somebody-else"}, "AllowUsers"),
        ({"AllowGroups": "wheel"}, "AllowGroups"),
        ({"PubkeyAuthentication": False}, "PubkeyAuthentication"),
        ({"KexAlgorithms": "mlkem768x25519-sha256"}, "KexAlgorithms"),
    ],
)
def test_bad_or_locking_out_options_fail_by_name_and_change_nothing(host, bad, named):
    """The role's own configuration with one bad setting: refused by name, nothing on the host changes."""
    before = config_digest(host)
    result = apply(
        host,
        options={**live_options(host), **bad},
        connecting_user="deploy",
        client_algorithms={"kex": [k for k in CLIENT_KEX if not k.startswith("mlkem")]},
    )
    assert result.get("changed") is False and "msg" in result, result
    assert named.lower() in result["msg"].lower(), result["msg"]
    assert config_digest(host) == before
    assert ssh(address_of(host)).returncode == 0


def test_host_rolls_back_by_itself_when_the_operator_is_locked_out(host):
    """A change the guard cannot refuse (switched off here) locks the operator out; the host undoes it."""
    address = address_of(host)
    before = config_digest(host)
    session = subprocess.Popen(  # an established session must survive both reloads
        ["ssh", "-i", str(OPERATOR_KEY), "-o", "ControlPath=none", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", f"deploy@{address}",
         "sleep 25; echo still-here"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(2)
    options = {**live_options(host), "AllowUsers": "somebody-else"}
    result = apply(host, options=options, guard=False, rollback_timeout=10)
    assert result["changed"] and result["rollback_armed"], result
    assert ssh(address).returncode == 255, "the candidate should have locked the operator out"
    deadline = time.monotonic() + 30
    while ssh(address).returncode != 0:
        assert time.monotonic() < deadline, "the host did not restore its sshd configuration"
        time.sleep(2)
    assert config_digest(host) == before
    out, err = session.communicate(timeout=40)
    assert out.strip() == "still-here", err
