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


CONTROLLER = "172.30.1.1"  # the scenario network's gateway: how the hosts see the controller


def connection(host):
    """The controller's connection as the role passes it (bulwark_controller)."""
    return {
        "connecting_user": "deploy",
        "connecting_from": CONTROLLER,
        "local_address": address_of(host),
        "local_port": 22,
    }


def apply(host, **args):
    """One sshd_config call, as the role makes it; returns the module's result."""
    return host.ansible("bulwark.hardening.sshd_config", json.dumps(args), check=False, become=True)


def confirm(host):
    return host.ansible("bulwark.hardening.commit_confirm", "concern=sshd", check=False, become=True)


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


def refused_and_nothing_changed(host, expected, **args):
    """The call fails naming the setting, reports no change, the files hash the same, a NEW login works."""
    before = config_digest(host)
    result = apply(host, **args)
    assert result.get("changed") is False and "msg" in result, result  # the tree output has no "failed"
    for fragment in expected:
        assert fragment in result["msg"], result["msg"]
    assert "Nothing was applied" in result["msg"]
    assert config_digest(host) == before
    login = ssh(address_of(host), command="id -un")
    assert login.returncode == 0 and login.stdout.strip() == "deploy", login.stderr
    return result


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ({"PermitRootLogn": "no"}, ["unknown sshd keyword: 'PermitRootLogn'"]),
        ({"MaxAuthTries": "three"}, ["sshd -t rejects", "MaxAuthTries"]),
        (
            {"AllowUsers": "somebody-else"},
            ["AllowUsers somebody-else does not admit the connecting user deploy"],
        ),
        ({"AllowGroups": "wheel"}, ["AllowGroups wheel names no group of the connecting user deploy"]),
        ({"PubkeyAuthentication": False}, ["PubkeyAuthentication no"]),
        ({"KexAlgorithms": "mlkem768x25519-sha256"}, ["KexAlgorithms", "mlkem768x25519-sha256"]),
        # The guard's blind spots: each passed before and then refused the operator's next login.
        ({"Port": 2222}, ["Port 2222 no longer includes the port the controller uses (22)"]),
        (
            {"ListenAddress": "127.0.0.1"},
            ["ListenAddress 127.0.0.1:22 does not cover the controller's local address"],
        ),
        (
            {"PermitRootLogin": "no\nPermitRootLogin yes"},
            ["options: PermitRootLogin value", "control character"],
        ),
        ({"X11Forwarding\n": "no"}, ["options: invalid sshd keyword: 'X11Forwarding\\n'"]),
    ],
)
def test_bad_or_locking_out_options_fail_by_name_and_change_nothing(host, bad, expected):
    """The role's own configuration with one bad setting: refused by name, nothing on the host changes."""
    refused_and_nothing_changed(
        host,
        expected,
        options={**live_options(host), **bad},
        client_algorithms={"kex": [k for k in CLIENT_KEX if not k.startswith("mlkem")]},
        **connection(host),
    )


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        # Evaluated for the controller's real local address and port (sshd -T -C laddr=,lport=).
        (
            {"criteria": "LocalAddress 172.30.1.0/24", "options": {"DenyUsers": "deploy"}},
            ["DenyUsers deploy matches the connecting user deploy"],
        ),
        (
            {"criteria": "LocalPort 22", "options": {"AllowUsers": "somebody-else"}},
            ["AllowUsers somebody-else does not admit the connecting user deploy"],
        ),
        (
            {"criteria": "User x\nPermitRootLogin yes", "options": {"X11Forwarding": False}},
            ["match[0].criteria"],
        ),
    ],
)
def test_match_blocks_that_deny_the_controller_fail_by_name_and_change_nothing(host, block, expected):
    refused_and_nothing_changed(host, expected, options=live_options(host), match=[block], **connection(host))


def test_an_unknown_connection_is_refused_naming_what_is_missing(host):
    """Unknown means refuse: a run with no SSH login above it (here a docker exec, behind the operator's back)
    and no local address and port given cannot judge Port, ListenAddress or Match LocalAddress."""
    before = config_digest(host)
    result = host.ansible(
        "bulwark.hardening.sshd_config",
        json.dumps({"options": {**live_options(host), "MaxAuthTries": 4}, "connecting_user": "deploy"}),
        check=False,
        become=True,
        extra_vars={"ansible_connection": "community.docker.docker", "ansible_host": host.backend.host},
    )
    assert result.get("changed") is False, result
    assert result["msg"].startswith(
        "connecting_from, local_address, local_port of the controller's connection unknown"
    ), result["msg"]
    assert "guard=false" in result["msg"] and "Nothing was applied" in result["msg"]
    assert config_digest(host) == before


def test_use_pam_no_is_refused_while_the_operators_password_is_locked(host):
    """Cloud images lock the default user's password; OpenSSH without PAM then refuses even its key."""
    with host.sudo():
        host.check_output("usermod -L deploy")
    try:
        with host.sudo():
            assert host.check_output("getent shadow deploy").split(":")[1].startswith("!")
        refused_and_nothing_changed(
            host,
            ["UsePAM no while deploy's password is locked"],
            options={**live_options(host), "UsePAM": False},
            **connection(host),
        )
    finally:
        with host.sudo():
            host.check_output("usermod -U deploy")


def test_a_rollback_that_cannot_be_armed_applies_nothing(host):
    """Arm BEFORE apply: with the timer's unit name taken, arming fails and the host keeps its files."""
    with host.sudo():
        host.check_output("systemd-run --quiet --unit=bulwark-rollback-sshd sleep 300")
    try:
        refused_and_nothing_changed(
            host,
            ["cannot arm the rollback", "arming the sshd rollback timer failed"],
            options={**live_options(host), "MaxAuthTries": 4},
            **connection(host),
        )
    finally:
        with host.sudo():
            host.run("systemctl stop bulwark-rollback-sshd.service")


RELOAD_FAILS_ONCE = """[Service]
ExecReload=
ExecReload=/bin/sh -c '! rm /run/bulwark-test-fail-reload 2>/dev/null'
ExecReload=/bin/kill -HUP $MAINPID
"""


def test_a_reload_that_fails_after_the_write_restores_the_last_confirmed_files_at_once(host):
    """The apply fails after the files were written (the reload fails, once): the module restores the
    last confirmed configuration itself, says so, and reports the change it made and undid."""
    before = config_digest(host)
    with host.sudo():
        host.check_output(
            "mkdir -p /run/systemd/system/ssh.service.d"
            f" && cat > /run/systemd/system/ssh.service.d/fail.conf <<'EOF'\n{RELOAD_FAILS_ONCE}EOF\n"
            "systemctl daemon-reload && touch /run/bulwark-test-fail-reload"
        )
    try:
        result = apply(host, options={**live_options(host), "MaxAuthTries": 4}, **connection(host))
        assert result["changed"] is True and result["restored"] is True, result
        assert "reloading ssh" in result["msg"], result["msg"]
        assert "the last confirmed sshd configuration was restored" in result["msg"], result["msg"]
        assert config_digest(host) == before
        with host.sudo():
            assert host.run("test -e /run/bulwark-test-fail-reload").rc == 1  # the failing reload did run
    finally:
        with host.sudo():
            host.check_output("rm -rf /run/systemd/system/ssh.service.d && systemctl daemon-reload")
    login = ssh(address_of(host), command="id -un")
    assert login.returncode == 0 and login.stdout.strip() == "deploy", login.stderr
    settled = apply(host, options=live_options(host), **connection(host))
    assert settled["changed"] is False and settled["pending"] is False, settled  # nothing left armed


def test_a_rerun_while_a_change_waits_reports_it_pending_until_it_is_confirmed(host):
    """An unconfirmed change is never reported "ok": a re-run says changed and pending, to be confirmed."""
    role = live_options(host)
    changed = {**role, "MaxAuthTries": 4}
    first = apply(host, options=changed, rollback_timeout=30, **connection(host))
    assert first["changed"] and first["pending"], first
    again = apply(host, options=changed, rollback_timeout=30, **connection(host))
    assert again["changed"] and again["pending"], again
    assert again["msg"] == "the last sshd change waits for its confirmation", again
    assert confirm(host)["confirmed"] is True
    settled = apply(host, options=changed, rollback_timeout=30, **connection(host))
    assert settled["changed"] is False and settled["pending"] is False, settled
    with host.sudo():
        assert "maxauthtries 4" in host.check_output(
            "sshd -T -C user=deploy,host=x,addr=127.0.0.1,laddr=127.0.0.1,lport=22"
        )
    back = apply(host, options=role, rollback_timeout=30, **connection(host))
    assert back["changed"] and back["pending"], back
    assert confirm(host)["confirmed"] is True


def test_moving_the_port_starts_by_serving_both_and_confirming_over_the_new_one(host):
    """The safe way to move sshd: serve both ports, confirm over a NEW connection to the new one."""
    role = live_options(host)
    both = apply(host, options={**role, "Port": [22, 2222]}, rollback_timeout=30, **connection(host))
    assert both["changed"] and both["pending"], both
    over_new_port = host.ansible(
        "bulwark.hardening.commit_confirm",
        "concern=sshd",
        check=False,
        become=True,
        extra_vars={"ansible_port": 2222},
    )
    assert over_new_port["confirmed"] is True, over_new_port
    login = ssh(address_of(host), options=["-p", "2222"], command="id -un")
    assert login.returncode == 0 and login.stdout.strip() == "deploy", login.stderr
    back = apply(host, options=role, rollback_timeout=30, **connection(host))
    assert back["changed"] and back["pending"], back
    assert confirm(host)["confirmed"] is True
    assert ssh(address_of(host), options=["-p", "2222"]).returncode == 255


def test_host_rolls_back_by_itself_when_the_operator_is_locked_out(host):
    """A change the guard cannot refuse (switched off here) locks the operator out; the host undoes it."""
    address = address_of(host)
    before = config_digest(host)
    with host.sudo():
        dropin_before = host.file(DROPIN).content_string
    session = subprocess.Popen(  # an established session must survive both reloads
        ["ssh", "-i", str(OPERATOR_KEY), "-o", "ControlPath=none", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", f"deploy@{address}",
         "sleep 25; echo still-here"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(2)
    options = {**live_options(host), "AllowUsers": "somebody-else"}
    result = apply(host, options=options, guard=False, rollback_timeout=10, **connection(host))
    assert result["changed"] and result["pending"], result
    assert ssh(address).returncode == 255, "the candidate should have locked the operator out"
    deadline = time.monotonic() + 30
    while ssh(address).returncode != 0:
        assert time.monotonic() < deadline, "the host did not restore its sshd configuration"
        time.sleep(2)
    assert config_digest(host) == before
    with host.sudo():
        assert host.file(DROPIN).content_string == dropin_before
    out, err = session.communicate(timeout=40)
    assert out.strip() == "still-here", err
    # The host recorded it, and a confirmation that comes now fails as rolled back, keeping nothing.
    with host.sudo():
        assert host.file("/var/lib/bulwark/commit-confirm/sshd/rolled-back").exists
    late = confirm(host)
    assert late.get("confirmed") is False and "rolled back by the host" in late["msg"], late
    after = apply(host, options=live_options(host), **connection(host))
    assert after["changed"] is False and after["pending"] is False, after
