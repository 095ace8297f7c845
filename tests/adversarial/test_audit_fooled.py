"""The audit is not fooled: Match blocks that re-open what the global settings close, listeners by name.

The security_audit module runs as Ansible runs it, on a private copy of /etc/ssh (real `sshd -T` and
`sshd -T -C` there) and in a fresh network namespace with real listeners and a real nftables ruleset.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.audit import report

# What harden.yml leaves in the global settings for these controls (the unit tests' hostile case).
HARDENED = (
    Path(__file__).parents[1]
    / "unit/plugins/module_utils/audit/fixtures/sshd_contexts/hostile/00-hardened.conf"
).read_text()
# The hostile review's host: the global values kept, root and every address let back in.
HOSTILE = """
Match User root
    PermitRootLogin yes
Match Address *
    PasswordAuthentication yes
    AllowTcpForwarding yes
"""
REOPENED = ("ssh_root_login", "ssh_password_login", "ssh_forwarding")


@pytest.fixture
def audit(run_module, tmp_path):
    """security_audit as run_module runs it, with `apt-get -s upgrade` answered at once: apt rebuilds its
    package cache on every call on this machine (seconds), and no test here is about pending updates."""
    stub = tmp_path / "bin" / "apt-get"
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    env = {"PATH": f"{stub.parent}:{os.environ['PATH']}"}

    def run(args, ns=None):
        return run_module("security_audit", args, ns=ns, env=env)

    return run


def by_id(run):
    assert run.rc == 0 and run.result, run
    return {f["id"]: f for f in run.result["findings"]}


def test_match_blocks_that_reopen_root_passwords_and_forwarding_fail_naming_the_connection(
    private_path, audit
):
    private_path("/etc/ssh")
    Path("/etc/ssh/sshd_config.d").mkdir(exist_ok=True)
    Path("/etc/ssh/sshd_config.d/00-hardened.conf").write_text(HARDENED)
    hardened = audit({})
    before = by_id(hardened)
    for fid in REOPENED:
        assert before[fid]["status"] == "pass", before[fid]

    main = Path("/etc/ssh/sshd_config")
    lines = len(main.read_text().splitlines())
    main.write_text(main.read_text() + HOSTILE)
    root_block, address_block = lines + 2, lines + 4  # HOSTILE starts with an empty line
    # sshd itself: the global settings still look hardened, the connections do not.
    plain = subprocess.run(["sshd", "-T"], capture_output=True, text=True, check=True).stdout
    assert "passwordauthentication no" in plain.splitlines()
    assert "permitrootlogin no" in plain.splitlines()

    hostile = audit({})
    after = by_id(hostile)
    where = "/etc/ssh/sshd_config line"
    assert after["ssh_root_login"]["status"] == "fail"
    assert after["ssh_root_login"]["evidence"] == (
        "permitrootlogin no; "
        f"permitrootlogin yes for root from 203.0.113.7 (Match User root at {where} {root_block})"
    )
    assert after["ssh_password_login"]["status"] == "fail"
    assert after["ssh_password_login"]["evidence"].startswith(
        "passwordauthentication no, kbdinteractiveauthentication no, permitemptypasswords no; "
        "passwordauthentication yes for root from 203.0.113.7"
    )
    assert after["ssh_password_login"]["evidence"].endswith(
        f"address 203.0.113.7 (Match Address * at {where} {address_block})"
    )
    assert after["ssh_forwarding"]["status"] == "fail"
    assert "allowtcpforwarding yes for root from 203.0.113.7" in after["ssh_forwarding"]["evidence"]
    assert after["ssh_forwarding"]["evidence"].endswith(
        f"address 203.0.113.7 (Match Address * at {where} {address_block})"
    )

    # Only these three changed, and the score lost exactly their weight.
    changed = {fid for fid in before if before[fid]["status"] != after[fid]["status"]}
    assert changed == set(REOPENED)
    expected = report.score(
        [dict(f, status="fail") if f["id"] in REOPENED else f for f in hardened.result["findings"]]
    )
    assert hostile.result["score"] == expected < hardened.result["score"]
    assert set(REOPENED) <= set(hostile.result["report"]["failed"])


# A listener whose process calls itself what it likes (the kernel's comm, which `ss -p` shows).
NAMED_LISTENER = """
import ctypes, socket, sys, time
name, kind, address, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ctypes.CDLL(None, use_errno=True).prctl(15, name.encode(), 0, 0, 0)  # PR_SET_NAME
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind((address, port))
if kind == "tcp":
    sock.listen()
time.sleep(120)
"""
# Default deny, as the firewall role writes it: a WireGuard port admitted from its peers only, a UDP
# port and the "docker-proxy" port opened by hand.
RULESET = """
table inet audit_test {
    chain input {
        type filter hook input priority 0; policy drop;
        ct state established,related accept
        iif lo accept
        ip saddr 192.0.2.0/24 udp dport 51820 accept
        udp dport 5356 accept
        tcp dport 8089 accept
    }
}
"""


def listen(ns, name, kind, address, port):
    return ns.popen(
        [sys.executable, "-c", NAMED_LISTENER, name, kind, address, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_listening(ns, wanted):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        shown = ns.run(["ss", "-Htulnp"]).stdout
        if all(item in shown for item in wanted):
            return shown
        time.sleep(0.1)
    raise AssertionError(f"not all of {wanted} listen: {shown}")


def test_udp_listeners_and_a_listener_named_docker_proxy_are_judged_like_any_other(netns, audit):
    ns = netns()
    ns.run(["ip", "address", "add", "10.231.7.1/24", "dev", "lo"])
    servers = [
        listen(ns, "docker-proxy", "tcp", "0.0.0.0", 8089),  # noqa: S104
        listen(ns, "rogue-udp", "udp", "0.0.0.0", 5355),  # noqa: S104
        listen(ns, "opened-udp", "udp", "0.0.0.0", 5356),  # noqa: S104
        listen(ns, "wireguard", "udp", "0.0.0.0", 51820),  # noqa: S104
        listen(ns, "dhclient", "udp", "0.0.0.0", 68),  # noqa: S104
        listen(ns, "local-udp", "udp", "127.0.0.1", 5357),
    ]
    try:
        shown = wait_listening(ns, [":8089", ":5355", ":5356", ":51820", ":68", ":5357"])
        # The names are the processes' own, as the kernel keeps them.
        assert '"docker-proxy"' in shown and '"rogue-udp"' in shown, shown
        assert Path(f"/proc/{servers[0].pid}/comm").read_text().strip() == "docker-proxy"

        # No firewall in the namespace: every listener off loopback is admitted from anywhere.
        found = by_id(audit({"categories": ["network"]}, ns=ns))["exposed_services"]
        assert found["status"] == "fail", found
        for label in (
            "0.0.0.0:8089 (docker-proxy, IPv4)",
            "0.0.0.0:5355/udp (rogue-udp, IPv4)",
            "0.0.0.0:5356/udp (opened-udp, IPv4)",
            "0.0.0.0:51820/udp (wireguard, IPv4)",
            "0.0.0.0:68/udp (dhclient, IPv4)",
        ):
            assert label in found["evidence"], found
        assert ":5357" not in found["evidence"]

        # Default deny: what the ruleset admits from outside is exposed, whatever it is called; the
        # WireGuard port (from its peers only) and the DHCP client (nothing admits it) are not.
        ns.run(["nft", "-f", "-"], input=RULESET)
        found = by_id(audit({"categories": ["network"]}, ns=ns))["exposed_services"]
        assert found["status"] == "fail", found
        admitted = found["evidence"].removeprefix("admitted from anywhere: ").split("), ")
        assert sorted(admitted) == ["0.0.0.0:5356/udp (opened-udp, IPv4", "0.0.0.0:8089 (docker-proxy, IPv4)"]
    finally:
        for server in servers:
            server.kill()
            server.wait()


def test_a_bad_admin_network_is_refused_by_name(audit):
    run = audit({"admin_networks": ["10.20.0.0/24", "10.0.0.1/8"]})
    assert run.rc != 0 and run.result["failed"], run
    assert run.result["msg"] == (
        "admin_networks[1]: '10.0.0.1/8' has host bits set (did you mean 10.0.0.0/8?). Nothing was applied"
    )
