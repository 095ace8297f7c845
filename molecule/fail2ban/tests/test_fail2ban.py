"""fail2ban bans for real: an attacker's failed logins get it banned in the firewall, an admin-network
host keeps logging in, unbanning restores access, and a repeat offender is caught by recidive.

Debian 13's OpenSSH also refuses failing sources by itself (PerSourcePenalties); a fail2ban ban is
told apart from that: the source is listed by `fail2ban-client status`, is in the firewall's ban set,
and its TCP connections are refused (sshd's own penalty accepts the connection and then closes it).
"""

import json
import os
import re
import secrets
import subprocess
import time
from pathlib import Path

import pytest
from lab_testing import ansible_env

TARGETS = ["f2b-bookworm", "f2b-trixie"]
# Docker publishes a container's port 8081 on the Debian 13 target (prepare.yml).
DOCKER_HOSTS = {"f2b-trixie"}
PUBLISHED = 8081
# The ban action each target's firewall backend brings (molecule.yml: Debian 12 on iptables).
BACKEND = {"f2b-bookworm": "iptables", "f2b-trixie": "nftables"}
ATTACKER = "f2b-attacker"
ADMIN = "f2b-admin"
ATTACKER_ADDRESS = "172.30.3.21"
ADMIN_ADDRESS = "172.30.3.22"
BASE_JAILS = {"sshd", "recidive", "demo-app"}
# nginx is installed on the Debian 13 target only (prepare.yml).
DECLARED_JAILS = {
    "f2b-bookworm": BASE_JAILS,
    "f2b-trixie": BASE_JAILS | {"nginx-http-auth", "nginx-limit-req"},
}
SSH_BANTIME = 30
LISTENER = "f2b-probe-listener"
# New TCP connection per attempt; no usable key: each one is a failed login as an unknown user.
# `timeout`: a connection opened just before the ban lands hangs on the rejected packets.
FAILED_LOGIN = (
    "timeout 8 ssh -o BatchMode=yes -o ControlMaster=no -o ControlPath=none -o StrictHostKeyChecking=no"
    " -o UserKnownHostsFile=/dev/null -o ConnectTimeout=4 -o PubkeyAuthentication=no"
    " intruder@{address} true; echo ssh-exit=$?"
)
ADMIN_LOGIN = (
    "timeout 8 ssh -o BatchMode=yes -o ControlMaster=no -o ControlPath=none -o StrictHostKeyChecking=no"
    " -o UserKnownHostsFile=/dev/null -o ConnectTimeout=4 -i /root/.ssh/id_ed25519 -o IdentitiesOnly=yes"
    " deploy@{address} 'echo logged-in'; echo ssh-exit=$?"
)


def _address(lab_host, name):
    return lab_host(name).ansible.get_variables()["ansible_host"]


def _jails(target):
    # `|| true`: fail2ban-client's 255 while the server starts reads as an SSH error to testinfra.
    out = target.check_output("fail2ban-client status 2>&1 || true")
    if "Jail list:" not in out:
        return set()
    return {name.strip() for name in out.split("Jail list:", 1)[1].split(",") if name.strip()}


def _banned(target, jail):
    out = target.check_output(f"fail2ban-client status {jail}")
    return out.split("Banned IP list:", 1)[1].split()


def _ban_seconds(target, jail, address):
    out = target.check_output(f"fail2ban-client get {jail} banip --with-time")
    for line in out.splitlines():
        if line.startswith(address):
            return int(re.search(r"\+ (\d+) =", line).group(1))
    raise AssertionError(f"{address} is not banned by {jail}: {out}")


def _in_ban_set(target, jail, address):
    """The address is in the firewall's ban set for the jail (nft set, or iptables' f2b- chain)."""
    if target.ansible.get_variables()["inventory_hostname"] == "f2b-bookworm":
        command = f"iptables -w -n -L f2b-{jail} 2>&1 || true"
    else:
        command = f"nft list set inet f2b-table addr-set-{jail} 2>&1 || true"
    return address in target.check_output(command)


def _eventually(check, timeout=10):
    """True as soon as check() is (the ban action runs just after fail2ban lists the ban)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)
    return True


def _probe(client, address, port=22):
    return client.check_output(f"probe-tcp {address} {port}")


def _fail_until_banned(target, client, address, attempts=6, wait=15):
    """Failed logins from client, one new connection each, until the jail lists it (or give up)."""
    for _unused in range(attempts):
        client.run(FAILED_LOGIN.format(address=address))
        if ATTACKER_ADDRESS in _banned(target, "sshd"):
            return True
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if ATTACKER_ADDRESS in _banned(target, "sshd"):
            return True
        time.sleep(1)
    return False


@pytest.mark.parametrize("name", TARGETS)
def test_service_runs_every_declared_jail(lab_host, name):
    target = lab_host(name)
    assert target.service("fail2ban").is_running
    assert target.service("fail2ban").is_enabled
    assert _jails(target) == DECLARED_JAILS[name]
    # Debian 12 and 13 log sshd only to the journal: the sshd jail reads it.
    assert not target.file("/var/log/auth.log").exists
    assert "Journal matches:" in target.check_output("fail2ban-client status sshd")
    # Every jail bans through the firewall backend's action (recidive on all ports).
    backend = BACKEND[name]
    for jail in ("sshd", "demo-app"):
        assert f"{backend}-multiport" in target.check_output(f"fail2ban-client get {jail} actions")
    assert f"{backend}-allports" in target.check_output("fail2ban-client get recidive actions")
    # With Docker, every jail also bans from forwarded traffic (the containers' published ports).
    actions = target.check_output("fail2ban-client get sshd actions")
    assert ("docker" in actions) == (name in DOCKER_HOSTS)


@pytest.mark.parametrize("name", TARGETS)
def test_jail_files_are_not_world_readable(lab_host, name):
    """An action's parameters may carry an API key: the files the module writes are root's, 0640."""
    target = lab_host(name)
    listing = target.check_output("stat -c '%n %U %G %a' /etc/fail2ban/jail.d/bulwark-*.local")
    lines = listing.splitlines()
    assert {line.split()[0] for line in lines} >= {
        f"/etc/fail2ban/jail.d/bulwark-{jail}.local" for jail in DECLARED_JAILS[name]
    }
    assert all(line.split()[1:] == ["root", "root", "640"] for line in lines), listing


@pytest.mark.parametrize("name", TARGETS)
def test_custom_jail_bans_from_its_own_filter(lab_host, name):
    target = lab_host(name)
    offender = "192.0.2.50"
    try:
        target.check_output(
            "for i in 1 2 3 4 5 6; do"
            f" echo \"$(date '+%Y-%m-%d %H:%M:%S') demo auth failure from {offender}\""
            " >> /var/log/demo-app.log; done"
        )
        assert _eventually(lambda: offender in _banned(target, "demo-app"), 15)
        assert _eventually(lambda: _in_ban_set(target, "demo-app", offender))
    finally:
        target.run(f"fail2ban-client set demo-app unbanip {offender} || true")


@pytest.mark.parametrize(
    ("jails", "named"),
    [
        ({"sshd": {"bantime": -1}}, "jails.sshd.bantime: must not be negative"),
        ({"sshd": {"maxretry": 3, "bantim": "1h"}}, "jails.sshd.bantim: unknown jail option"),
        ({"web": {"filter": "no-such-filter", "logpath": "/var/log/dpkg.log"}}, "filter 'no-such-filter'"),
        # Accepted by the model, refused by fail2ban's own test mode: nothing is replaced either.
        ({"ghost": {"filter": "sshd", "logpath": "/var/log/ghost.log"}}, "fail2ban-client -t"),
    ],
)
@pytest.mark.parametrize("name", TARGETS)
def test_bad_input_fails_naming_the_option_and_changes_nothing(lab_host, name, jails, named):
    target = lab_host(name)
    snapshot = "sha256sum /etc/fail2ban/jail.d/* /etc/fail2ban/filter.d/*.conf"
    before = target.check_output(snapshot)
    try:
        result = target.ansible(
            "bulwark.hardening.fail2ban_jail", json.dumps({"jails": jails}), check=False, become=True
        )
    except target.ansible.AnsibleException as failure:  # testinfra raises only when it sees "failed"
        result = failure.result
    assert named in result.get("msg", ""), result
    assert not result.get("changed")
    assert target.check_output(snapshot) == before
    assert _jails(target) == DECLARED_JAILS[name]


@pytest.mark.parametrize("name", TARGETS)
def test_attacker_banned_admin_never_and_recidive_catches_the_repeat(lab_host, name):
    target, attacker, admin = lab_host(name), lab_host(ATTACKER), lab_host(ADMIN)
    address = _address(lab_host, name)
    try:
        # Before: the attacker reaches sshd (and the container's published port).
        assert _probe(attacker, address).startswith("open SSH-")
        if name in DOCKER_HOSTS:
            assert _eventually(lambda: _probe(attacker, address, PUBLISHED).startswith("open"))

        # The attacker fails logins until fail2ban bans it: listed by the jail, in the nft ban set,
        # and its new TCP connections are refused by the firewall (not closed by sshd).
        assert _fail_until_banned(target, attacker, address), "the attacker was never banned by the sshd jail"
        assert _eventually(lambda: _in_ban_set(target, "sshd", ATTACKER_ADDRESS))
        assert _probe(attacker, address) == "refused"
        assert _ban_seconds(target, "sshd", ATTACKER_ADDRESS) == SSH_BANTIME
        if name in DOCKER_HOSTS:
            # The container's published port is forwarded, not delivered to input: banned there too.
            assert _eventually(lambda: _probe(attacker, address, PUBLISHED) == "refused")
            assert _probe(admin, address, PUBLISHED).startswith("open")

        # The admin host fails just as often, is never banned and still logs in.
        for _unused in range(5):
            admin.run(FAILED_LOGIN.format(address=address))
        time.sleep(2)
        assert ADMIN_ADDRESS not in _banned(target, "sshd")
        assert not _in_ban_set(target, "sshd", ADMIN_ADDRESS)
        login = admin.run(ADMIN_LOGIN.format(address=address))
        assert "logged-in" in login.stdout and "ssh-exit=0" in login.stdout, login.stderr

        # Unbanning restores the attacker's access.
        target.check_output(f"fail2ban-client set sshd unbanip {ATTACKER_ADDRESS}")
        assert _eventually(lambda: not _in_ban_set(target, "sshd", ATTACKER_ADDRESS))
        assert _probe(attacker, address).startswith("open SSH-")
        if name in DOCKER_HOSTS:
            assert _eventually(lambda: _probe(attacker, address, PUBLISHED).startswith("open"))

        # It comes back: banned by sshd a second time, recidive bans it on every port, for longer.
        assert _fail_until_banned(target, attacker, address), "the returning attacker was not banned again"
        assert _eventually(lambda: ATTACKER_ADDRESS in _banned(target, "recidive"), 20), (
            "recidive did not catch the repeat offender"
        )
        assert _eventually(lambda: _in_ban_set(target, "recidive", ATTACKER_ADDRESS))
        assert _ban_seconds(target, "recidive", ATTACKER_ADDRESS) > SSH_BANTIME
        # Lifting the sshd ban is not enough: recidive blocks every TCP port, 8080 (a listener) too.
        target.check_output(f"fail2ban-client set sshd unbanip {ATTACKER_ADDRESS}")
        target.check_output(f"systemd-run --unit={LISTENER} --collect python3 -m http.server 8080")
        assert _eventually(lambda: _probe(admin, address, 8080).startswith("open"))
        assert _probe(admin, address).startswith("open SSH-")
        assert _probe(attacker, address) == "refused"
        assert _probe(attacker, address, 8080) == "refused"
    finally:
        target.run(f"systemctl stop {LISTENER}")
        _forget_history(target, name)


SCENARIO = Path(__file__).resolve().parents[1]


def _converge(name, extra, *flags):
    """The scenario's converge playbook on one host, as an operator runs it; returns the CompletedProcess."""
    env = ansible_env()
    argv = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(SCENARIO / "converge.yml")]
    argv += ["--limit", name, "-e", json.dumps(extra), *flags]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)


def test_an_actions_secret_reaches_the_jail_and_never_the_output_or_the_journal(lab_host):
    """At -vvv with --diff: the run shows the jail file's diff and the module's arguments, the journal
    logs the module call, and the secret is in none of them; it is in the root-only jail file."""
    name = "f2b-trixie"
    target = lab_host(name)
    token = "f2b-" + secrets.token_urlsafe(24)
    since = target.check_output("date +%s")
    try:
        run = _converge(name, {"fail2ban_secrets": {"sshd": {"abuse_key": token}}}, "-vvv", "--diff")
        output = run.stdout + run.stderr
        assert run.returncode == 0, output[-3000:]
        assert "abuse_key = <redacted>" in output  # the diff is shown, redacted
        assert '"abuse_key": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"' in output  # the arguments, masked
        assert token not in output
        journal = target.check_output(f"journalctl --since @{since} -o cat")
        assert "Invoked with" in journal and "secrets=NOT_LOGGING_PARAMETER" in journal  # the call is logged
        assert token not in journal
        jail_file = "/etc/fail2ban/jail.d/bulwark-sshd.local"
        assert f"abuse_key = {token}\n" in target.file(jail_file).content_string
        assert target.check_output(f"stat -c '%U %G %a' {jail_file}") == "root root 640"
    finally:
        restored = _converge(name, {})
        assert restored.returncode == 0, restored.stdout[-3000:]
    assert token not in target.file("/etc/fail2ban/jail.d/bulwark-sshd.local").content_string


def _forget_history(target, name):
    """Lift the bans and forget them (recidive counts past bans), so that verify can run again."""
    # Not part of the proof: it only lets `molecule verify` be rerun on the same hosts.
    target.run(
        "fail2ban-client unban --all; systemctl stop fail2ban"
        " && rm -f /var/lib/fail2ban/fail2ban.sqlite3 && truncate -s 0 /var/log/fail2ban.log"
        # The sshd jail would replay the attacker's failures from the journal at start.
        " && journalctl --rotate -q && journalctl --vacuum-time=1s -q"
        " && systemctl start fail2ban"
    )
    assert _eventually(lambda: _jails(target) == DECLARED_JAILS[name])
