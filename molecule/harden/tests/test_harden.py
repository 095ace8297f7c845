"""The whole of harden.yml on bare hosts: measured from outside, as an auditor and an attacker would."""

import re
import subprocess
import sys
import time
from pathlib import Path

from lab_testing import address_of, ssh

LYNIS_BAR = 80
POLICIES = {"12": "Hardened Debian 12 (version 3)", "13": "Hardened Debian 13 (version 1)"}
SSH_AUDIT = Path(sys.executable).with_name("ssh-audit")
PEERS = {"harden-bookworm": "harden-trixie", "harden-trixie": "harden-bookworm"}


def name_of(host):
    return host.backend.get_hostname()


def test_operator_still_logs_in_over_a_new_connection(host):
    assert ssh(address_of(host)).returncode == 0


def test_ssh_audit_policy_of_the_release_passes(host):
    policy = POLICIES[host.system_info.release.split(".")[0]]
    scan = subprocess.run(
        [str(SSH_AUDIT), "-P", policy, address_of(host)], capture_output=True, text=True, check=False
    )
    assert scan.returncode == 0, scan.stdout


def reaches(source, address, port):
    probe = f"timeout 4 python3 -c \"import socket; socket.create_connection(('{address}', {port}), 3)\""
    return source.run(probe).rc == 0


def test_a_host_outside_the_admin_networks_reaches_neither_ssh_nor_an_unlisted_service(host, lab_host):
    peer = lab_host(PEERS[name_of(host)])
    with host.sudo():
        host.check_output("systemd-run --unit=bulwark-test-listener python3 -m http.server 8080")
    try:
        # Both listeners answer an allowed source first: the host itself for 8080, the operator for SSH.
        assert any(reaches(host, "127.0.0.1", 8080) or time.sleep(0.5) for _unused in range(20))
        assert ssh(address_of(host)).returncode == 0
        assert not reaches(peer, address_of(host), 8080)
        assert not reaches(peer, address_of(host), 22)
    finally:
        with host.sudo():
            host.run("systemctl stop bulwark-test-listener")


def test_fail2ban_runs_the_default_jails(host):
    with host.sudo():
        status = host.check_output("fail2ban-client status")
    assert re.search(r"Jail list:.*\bsshd\b", status)
    assert re.search(r"Jail list:.*\brecidive\b", status)


def test_lynis_hardening_index_reaches_the_bar(host):
    with host.sudo():
        host.check_output("apt-get install -y -qq --no-install-recommends lynis")
        host.run("lynis audit system --quick --no-colors --cronjob")
        report = host.file("/var/log/lynis-report.dat").content_string
    index = int(re.search(r"^hardening_index=(\d+)$", report, re.M).group(1))
    suggestions = "\n".join(re.findall(r"^suggestion\[\]=(.*)$", report, re.M))
    print(f"{name_of(host)}: Lynis hardening index {index}\n{suggestions}")
    assert index >= LYNIS_BAR, f"Lynis hardening index {index} < {LYNIS_BAR}; suggestions:\n{suggestions}"
