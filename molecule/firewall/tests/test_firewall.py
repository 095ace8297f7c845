"""The firewall with real traffic: from the controller, from an allowlisted host and from a stranger.

Hosts: fw-bookworm and fw-trixie run the firewall (listeners on 8080 open, 9090/9091 for the
partners set, 7070 listening but not allowed); fw-partner (172.30.2.13) is in the allowlist,
fw-stranger (172.30.2.14) is not.
"""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import testinfra
from lab_testing import address_of, ansible_env, reach, ssh

SCENARIO = Path(__file__).resolve().parents[1]
INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")
TARGETS = ["fw-bookworm", "fw-trixie"]

testinfra_hosts = [f"ansible://{name}?ansible_inventory={INVENTORY}" for name in TARGETS]


def converge(host_name, extra=None, check=False):
    """Run the scenario's converge playbook on one host with extra variables; returns the CompletedProcess."""
    env = ansible_env(ANSIBLE_PIPELINING="true")
    argv = ["ansible-playbook", "-i", INVENTORY, str(SCENARIO / "converge.yml"), "--limit", host_name]
    if extra:
        argv += ["-e", json.dumps(extra)]
    if check:
        argv.append("--check")
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)


def adhoc(host_name, module, args):
    """One module call on one host (no role, so no confirmation); returns (rc, the module's result)."""
    env = ansible_env()
    argv = ["ansible", "-i", INVENTORY, host_name, "-o", "-m", module, "-a", json.dumps(args)]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)
    _head, _sep, body = done.stdout.partition("=>")
    return done.returncode, json.loads(body or "{}")


def only_on(name, wanted):
    """Tests that do not depend on the release run on one host, to keep the scenario short."""
    if name != wanted:
        pytest.skip(f"runs on {wanted} only")


@pytest.fixture
def partner(lab_host):
    return lab_host("fw-partner")


@pytest.fixture
def stranger(lab_host):
    return lab_host("fw-stranger")


def test_policy_is_live_and_persisted(host):
    assert host.run("nft list table inet bulwark").rc == 0
    assert host.file("/etc/nftables.conf").contains('include "/etc/bulwark/firewall.nft"')
    assert host.service("nftables").is_enabled  # enabled by the confirmation, not by a task of its own
    assert host.run("systemctl is-active --quiet bulwark-rollback-firewall.timer").rc != 0
    assert host.run("ls -A /var/lib/bulwark/commit-confirm/firewall").stdout.split() == ["restore.sh"]


def test_operator_logs_in_over_a_new_connection(host):
    assert ssh(address_of(host)).returncode == 0


def test_allowed_port_answers_from_another_host(host, stranger):
    assert reach(stranger, address_of(host), 8080)


def test_listening_port_that_is_not_allowed_cannot_be_reached(host, stranger, partner):
    assert host.socket("tcp://0.0.0.0:7070").is_listening or host.socket("tcp://:::7070").is_listening
    assert reach(host, "127.0.0.1", 7070)  # it does listen: loopback is admitted
    assert not reach(stranger, address_of(host), 7070)
    assert not reach(partner, address_of(host), 7070)


def test_allowlisted_source_reaches_a_restricted_port_and_a_stranger_does_not(host, partner, stranger):
    assert reach(partner, address_of(host), 9090)
    assert not reach(stranger, address_of(host), 9090)


def test_ssh_is_only_for_the_admin_networks(host, stranger):
    assert ssh(address_of(host)).returncode == 0  # sshd answers the controller...
    assert not reach(stranger, address_of(host), 22)  # ...and not a stranger


def test_hand_added_rule_is_removed_by_the_next_run(host, stranger):
    name = host.backend.get_hostname()
    assert host.run("nft add rule inet bulwark input tcp dport 7070 accept").rc == 0
    # ...and a foreign table of its own that filters the input hook
    assert host.run("nft add table inet hole").rc == 0
    hook = "nft add chain inet hole input '{ type filter hook input priority -10; policy accept; }'"
    assert host.run(hook).rc == 0
    assert host.run("nft add rule inet hole input tcp dport 7070 accept").rc == 0
    assert reach(stranger, address_of(host), 7070)  # the hole works...
    result = converge(name)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "changed=1" in result.stdout or "changed=2" in result.stdout or "changed=3" in result.stdout
    assert not reach(stranger, address_of(host), 7070)  # ...until the next run
    assert "hole" not in host.run("nft list tables").stdout


def test_rule_removed_from_the_variables_stops_working(host, partner):
    name = host.backend.get_hostname()
    only_on(name, "fw-trixie")
    assert reach(partner, address_of(host), 9091)
    rules = [{"port": 9090, "sources": ["@partners"], "comment": "partners only"}]
    result = converge(name, {"firewall_rules": rules})
    try:
        assert result.returncode == 0, result.stdout[-3000:]
        assert not reach(partner, address_of(host), 9091)
        assert reach(partner, address_of(host), 9090)
    finally:
        restored = converge(name)
        assert restored.returncode == 0, restored.stdout[-3000:]
    assert reach(partner, address_of(host), 9091)


def test_guard_refuses_a_policy_that_drops_the_controller_and_applies_nothing(host, stranger):
    name = host.backend.get_hostname()
    only_on(name, "fw-bookworm")
    before = host.run("nft list table inet bulwark").stdout
    cut = {"bulwark_admin_networks": ["172.30.2.250/32"], "firewall_services": [8080, 7070]}
    result = converge(name, cut)
    assert result.returncode != 0
    assert "lockout guard" in result.stdout and "172.30.2.1" in result.stdout
    assert host.run("nft list table inet bulwark").stdout == before
    assert reach(host, "127.0.0.1", 7070)  # 7070 listens...
    assert not reach(stranger, address_of(host), 7070)  # ...and the refused policy did not open it


def test_bad_input_names_the_option_and_applies_nothing(host):
    name = host.backend.get_hostname()
    only_on(name, "fw-bookworm")  # validation does not depend on the release; keep the suite short
    before = host.run("nft list table inet bulwark").stdout
    for extra, message in (
        ({"firewall_services": [70000]}, "services[0].port: 70000 is not a port"),
        ({"firewall_allowlists": {"partners": ["10.0.0.300/8"]}}, "sets.partners[0]: '10.0.0.300/8'"),
        ({"firewall_rules": [{"port": 80, "proto": "sctp"}]}, "rules[0].proto: 'sctp' is not a protocol"),
        ({"bulwark_admin_networks": []}, "admin_networks: is empty while SSH is restricted"),
    ):
        result = converge(name, extra)
        assert result.returncode != 0
        assert message in result.stdout, result.stdout[-2000:]
    assert host.run("nft list table inet bulwark").stdout == before


def test_rollback_restores_the_firewall_when_the_controller_cannot_confirm(host, stranger):
    """The guard switched off (the documented option), a ruleset that drops the controller: the host
    undoes it within the timeout, the operator gets back in, and the play fails clearly."""
    name = host.backend.get_hostname()
    only_on(name, "fw-bookworm")
    before = host.run("nft list table inet bulwark").stdout
    cut = {
        "firewall_guard": False,
        "bulwark_admin_networks": ["172.30.2.250/32"],
        "firewall_services": [8080, 7070],
    }
    result = converge(name, cut)
    assert result.returncode != 0
    assert "state: rolled-back" in result.stdout, result.stdout[-3000:]
    assert ssh(address_of(host)).returncode == 0
    assert host.run("nft list table inet bulwark").stdout == before
    assert reach(host, "127.0.0.1", 7070)
    assert not reach(stranger, address_of(host), 7070)
    # The new connection could not log in; retried, it reached the host after its own rollback, which
    # the confirmation reported (consuming the host's record of it).
    assert "the host was reached again after" in result.stdout, result.stdout[-3000:]
    assert not host.file("/var/lib/bulwark/commit-confirm/firewall/rolled-back").exists
    assert not host.file("/etc/bulwark/firewall.nft").contains("7070")


def test_lockdown_drops_everything_but_admin_ssh_and_harden_undoes_it(host, stranger, partner):
    name = host.backend.get_hostname()
    only_on(name, "fw-trixie")
    assert reach(stranger, address_of(host), 8080) and reach(partner, address_of(host), 9090)
    result = converge(name, {"firewall_lockdown": True})
    try:
        assert result.returncode == 0, result.stdout[-3000:]
        assert not reach(stranger, address_of(host), 8080)
        assert not reach(partner, address_of(host), 9090)
        assert ssh(address_of(host)).returncode == 0
    finally:
        restored = converge(name)
        assert restored.returncode == 0, restored.stdout[-3000:]
    assert reach(stranger, address_of(host), 8080)


def test_check_mode_on_a_converged_host_changes_nothing(host):
    result = converge(host.backend.get_hostname(), check=True)
    assert result.returncode == 0
    assert "changed=0" in result.stdout


def test_ipv6_source_set_is_present(host):
    assert "2001:db8:77::/48" in host.run("nft list set inet bulwark partners_v6").stdout


def test_peers_are_reachable_over_testinfra():
    # the traffic sources are real lab hosts too
    for name in ("fw-partner", "fw-stranger"):
        assert testinfra.get_host(f"ansible://{name}", ansible_inventory=INVENTORY).run("true").rc == 0


# Docker: fw-docker runs two busybox web servers published on 8081 and 8082; only 8082 is opened
# (a routed rule keyed on the published port, not on the container's address).
@pytest.fixture
def docker_host(lab_host):
    return lab_host("fw-docker")


def test_docker_published_port_obeys_default_deny(docker_host, stranger):
    address = address_of(docker_host)
    assert reach(docker_host, "127.0.0.1", 8081)  # the container answers on the host itself...
    assert not reach(stranger, address, 8081)  # ...and not from another host
    assert reach(stranger, address, 8082)


def test_docker_chains_are_left_alone_and_containers_go_out(docker_host):
    ruleset = docker_host.run("nft list ruleset").stdout
    assert "DOCKER" in ruleset  # Docker's own chains survive the exclusive run
    # busybox-static's wget crashes (static glibc), its nc does not
    request = "/bin/busybox printf 'GET / HTTP/1.0\\r\\n\\r\\n' | /bin/busybox nc -w 5 172.30.2.11 8080"
    out = docker_host.run(f'docker exec web8081 /bin/busybox sh -c "{request}"')
    assert "200 OK" in out.stdout, out.stderr  # a container reaches another host's open port


def test_docker_host_ssh_still_only_for_admins(docker_host, stranger):
    assert ssh(address_of(docker_host)).returncode == 0
    assert not reach(stranger, address_of(docker_host), 22)


def test_a_host_where_ufw_is_enabled_is_refused(host):
    """Two managers on the same hooks: stop with a clear message instead of guessing."""
    name = host.backend.get_hostname()
    only_on(name, "fw-bookworm")
    before = host.run("nft list table inet bulwark").stdout
    assert host.run("mkdir -p /etc/ufw && printf 'ENABLED=yes\\n' > /etc/ufw/ufw.conf").rc == 0
    try:
        result = converge(name)
        assert result.returncode != 0
        assert "UFW is enabled" in result.stdout, result.stdout[-2000:]
    finally:
        host.run("rm -rf /etc/ufw")
    assert host.run("nft list table inet bulwark").stdout == before


def test_policy_survives_a_reboot(host, stranger):
    """nftables.service loads /etc/nftables.conf at boot: the confirmed policy comes back by itself,
    and Docker's embedded DNS table (no `flush ruleset`) is not wiped."""
    name = host.backend.get_hostname()
    only_on(name, "fw-trixie")
    assert (
        subprocess.run(["docker", "restart", name], capture_output=True, check=False, timeout=60).returncode
        == 0
    )
    for _unused in range(60):
        if ssh(address_of(host)).returncode == 0:
            break
        time.sleep(1)
    assert ssh(address_of(host)).returncode == 0
    assert host.run("systemctl is-active nftables").stdout.strip() == "active"
    for port in (8080, 7070):  # the listeners were transient units: start them again
        host.run(f"systemd-run --unit=fw-listen-{port} python3 -m http.server --bind :: {port}")
    time.sleep(2)
    assert reach(stranger, address_of(host), 8080)
    assert reach(host, "127.0.0.1", 7070)
    assert not reach(stranger, address_of(host), 7070)
    assert "DOCKER_OUTPUT" in host.run("nft list ruleset").stdout


# The iptables backend: fw-ipt-legacy (Debian 12, iptables-legacy) and fw-ipt-nft (Debian 13, iptables-nft).
@pytest.fixture(params=["fw-ipt-legacy", "fw-ipt-nft"])
def ipt_host(request, lab_host):
    return lab_host(request.param)


def test_iptables_variant_is_the_one_selected(ipt_host):
    version = ipt_host.run("iptables -V").stdout
    want = "legacy" if ipt_host.backend.get_hostname() == "fw-ipt-legacy" else "nf_tables"
    assert want in version
    assert "bw:" in ipt_host.run("iptables-save -t filter").stdout
    assert ipt_host.service("bulwark-firewall").is_enabled


@pytest.mark.parametrize("name", ["fw-ipt-legacy", "fw-ipt-nft", "fw-ufw", "fw-ufw-trixie"])
def test_iptables_and_ufw_backends_with_real_traffic(name, lab_host, partner, stranger):
    """The same policy through the iptables (legacy, nf_tables) and ufw backends, on Debian 12 and 13."""
    address = address_of(lab_host(name))
    assert reach(stranger, address, 8080)
    assert reach(lab_host(name), "127.0.0.1", 7070)
    assert not reach(stranger, address, 7070)
    assert reach(partner, address, 9090)
    assert not reach(stranger, address, 9090)
    assert ssh(address).returncode == 0
    assert not reach(stranger, address, 22)


def test_iptables_hand_added_rules_are_removed(ipt_host, stranger):
    name = ipt_host.backend.get_hostname()
    assert ipt_host.run("iptables -I BULWARK-INPUT 1 -p tcp --dport 7070 -j ACCEPT").rc == 0
    assert reach(stranger, address_of(ipt_host), 7070)
    result = converge(name)
    assert result.returncode == 0, result.stdout[-3000:]
    assert not reach(stranger, address_of(ipt_host), 7070)
    assert "7070" not in ipt_host.run("iptables-save -t filter").stdout


def test_iptables_rollback_when_the_controller_cannot_confirm(ipt_host, stranger):
    name = ipt_host.backend.get_hostname()
    only_on(name, "fw-ipt-legacy")
    cut = {
        "firewall_guard": False,
        "bulwark_admin_networks": ["172.30.2.250/32"],
        "firewall_services": [8080, 7070],
    }
    result = converge(name, cut)
    assert result.returncode != 0
    assert "state: rolled-back" in result.stdout, result.stdout[-3000:]
    assert ssh(address_of(ipt_host)).returncode == 0
    assert reach(ipt_host, "127.0.0.1", 7070)
    assert not reach(stranger, address_of(ipt_host), 7070)
    assert reach(stranger, address_of(ipt_host), 8080)


# The ufw backend on fw-ufw (Debian 12) and fw-ufw-trixie (Debian 13): the documented subset, and
# `ufw status` tells the truth.
@pytest.fixture(params=["fw-ufw", "fw-ufw-trixie"])
def ufw_host(request, lab_host):
    return lab_host(request.param)


def test_ufw_status_tells_the_truth(ufw_host):
    status = ufw_host.run("ufw status verbose").stdout
    assert "Status: active" in status
    assert "Default: deny (incoming), allow (outgoing), deny (routed)" in status
    assert "8080/tcp" in status and "9090/tcp" in status and "172.30.2.13" in status


def test_ufw_hand_added_rule_is_removed(ufw_host, stranger):
    assert ufw_host.run("ufw allow 7070/tcp").rc == 0
    assert reach(stranger, address_of(ufw_host), 7070)
    result = converge(ufw_host.backend.get_hostname())
    assert result.returncode == 0, result.stdout[-3000:]
    assert not reach(stranger, address_of(ufw_host), 7070)
    assert "7070" not in ufw_host.run("ufw status").stdout


def test_ufw_refuses_what_it_cannot_do_by_option_name(ufw_host):
    before = ufw_host.run("ufw status numbered").stdout
    sets = {"firewall_allowlists": {"partners": ["172.30.2.13/32"]}}
    result = converge(ufw_host.backend.get_hostname(), sets)
    assert result.returncode != 0
    assert "sets: the ufw backend has no address sets" in result.stdout, result.stdout[-2000:]
    assert ufw_host.run("ufw status numbered").stdout == before


# fw-persistent: an iptables-persistent host (iptables-nft: INPUT policy drop, accepts for lo, established
# and tcp/22) hardened with the nftables backend and purge. Before, the purge deleted the accepts one by
# one and left the drop policy: the operator's session died and the rollback did not bring them back.
@pytest.fixture
def persistent(lab_host):
    return lab_host("fw-persistent")


def saved_rules(host):
    """iptables-nft-save of both families without its timestamps and counters."""
    out = host.run("iptables-nft-save; ip6tables-nft-save").stdout
    return [ln.split(" [")[0] for ln in out.splitlines() if not ln.startswith("#")]


def load_persistent_rules(host):
    for family in ("", "6"):
        assert host.run(f"ip{family}tables-nft-restore /etc/iptables/rules.v{family or 4}").rc == 0


def test_purge_takes_over_the_drop_policy_of_an_iptables_persistent_host(persistent, stranger):
    address = address_of(persistent)
    assert ssh(address).returncode == 0  # a NEW login after the change
    tables = persistent.run("nft list tables").stdout
    assert "table inet bulwark" in tables and "table ip filter" not in tables and "ip6 filter" not in tables
    assert reach(stranger, address, 8080)  # the foreign drop policy is gone: our table decides
    assert reach(persistent, "127.0.0.1", 7070)
    assert not reach(stranger, address, 7070)


def test_the_purged_rules_do_not_come_back_at_boot(persistent, stranger):
    """netfilter-persistent (enabled by iptables-persistent) would load rules.v4 again at boot, beside our
    table: the confirmation disabled it, so after a reboot only our table decides."""
    assert persistent.run("systemctl is-enabled netfilter-persistent").stdout.strip() == "disabled"
    restart = subprocess.run(
        ["docker", "restart", "fw-persistent"], capture_output=True, check=False, timeout=60
    )
    assert restart.returncode == 0, restart.stderr
    address = address_of(persistent)
    for _unused in range(60):
        if ssh(address).returncode == 0:
            break
        time.sleep(1)
    assert ssh(address).returncode == 0  # a NEW login after the reboot
    tables = persistent.run("nft list tables").stdout
    assert "table inet bulwark" in tables, tables
    assert "table ip filter" not in tables and "table ip6 filter" not in tables, tables
    assert persistent.run("systemctl is-active nftables").stdout.strip() == "active"
    for port in (8080, 9090, 9091, 7070):  # the listeners were transient units: start them again
        persistent.run(
            f"systemd-run --unit=fw-listen-{port} --property=Restart=always"
            f" python3 -m http.server --bind :: {port}"
        )
    time.sleep(2)
    assert reach(stranger, address, 8080)
    assert reach(persistent, "127.0.0.1", 7070)
    assert not reach(stranger, address, 7070)


def test_rollback_puts_back_the_foreign_rules_it_purged(persistent, stranger):
    """The guard off and a policy that drops the controller: after the timeout the host restores our
    previous table AND the iptables-nft tables the purge deleted, exactly as they were."""
    address = address_of(persistent)
    load_persistent_rules(persistent)
    before = saved_rules(persistent)
    assert ":INPUT DROP" in before and "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT" in before
    owned = persistent.run("nft list table inet bulwark").stdout
    cut = {
        "firewall_guard": False,
        "bulwark_admin_networks": ["172.30.2.250/32"],
        "firewall_services": [7070],
    }
    try:
        result = converge("fw-persistent", cut)
        assert result.returncode != 0
        assert "state: rolled-back" in result.stdout, result.stdout[-3000:]
        assert ssh(address).returncode == 0  # a NEW login after the rollback
        assert saved_rules(persistent) == before
        assert persistent.run("nft list table inet bulwark").stdout == owned
        assert not reach(stranger, address, 7070)
    finally:
        restored = converge("fw-persistent")
        assert restored.returncode == 0, restored.stdout[-3000:]
    assert "table ip filter" not in persistent.run("nft list tables").stdout


def test_without_purge_a_foreign_chain_that_drops_the_controller_is_refused_by_name(persistent):
    """purge false keeps the foreign tables on the packet's path, and the guard judges them as the kernel
    will. The controller here is a pretend one (172.30.2.99, an admin) that the iptables-persistent
    INPUT chain drops, so the real controller's session is not at stake."""
    address = address_of(persistent)
    load_persistent_rules(persistent)
    assert persistent.run("iptables-nft -I INPUT -s 172.30.2.99 -j DROP").rc == 0
    before = saved_rules(persistent), persistent.run("nft list table inet bulwark").stdout
    args = {
        "admin_networks": ["172.30.2.1/32", "172.30.2.99/32"],
        "services": [8080],
        "purge": False,
        "rollback_timeout": 30,
        "controller_address": "172.30.2.99",
        "controller_port": 22,
        "controller_local_address": address,
    }
    try:
        rc, result = adhoc("fw-persistent", "bulwark.hardening.firewall", args)
        assert rc != 0 and result["changed"] is False, result
        for named in (
            "table ip filter chain INPUT",
            "would drop",
            "tcp from 172.30.2.99 to port 22",
            "purge is false",
        ):
            assert named in result["msg"], result["msg"]
        assert "Nothing was applied" in result["msg"]
        assert (saved_rules(persistent), persistent.run("nft list table inet bulwark").stdout) == before
        assert ssh(address).returncode == 0  # the real controller, over a NEW connection
        # The same call for the real controller, whom the foreign chain admits, is accepted.
        admitted = {**args, "controller_address": "172.30.2.1"}
        rc, result = adhoc("fw-persistent", "bulwark.hardening.firewall", admitted)
        assert rc == 0 and result["pending"], result
        rc, confirmed = adhoc("fw-persistent", "bulwark.hardening.commit_confirm", {"concern": "firewall"})
        assert rc == 0 and confirmed["confirmed"], confirmed
        assert ":INPUT DROP" in saved_rules(persistent)  # purge false: the foreign table stays
    finally:
        restored = converge("fw-persistent")
        assert restored.returncode == 0, restored.stdout[-3000:]
    assert "table ip filter" not in persistent.run("nft list tables").stdout


def test_arm_failure_applies_nothing_and_says_changed_false(persistent):
    """The rollback cannot be armed (a running service holds its unit's name): nothing is applied.

    A leftover timer of that name is the module's own (a killed run's) and is stopped before arming; a
    running service of the name cannot be replaced, so systemd-run refuses the timer."""
    before = persistent.run("nft list tables; nft list table inet bulwark").stdout
    taken = "systemd-run --unit=bulwark-rollback-firewall /bin/sleep 300"
    assert persistent.run(taken).rc == 0
    try:
        result = converge("fw-persistent", {"firewall_services": [8080, 7070]})
        assert result.returncode != 0
        assert "could not arm the firewall rollback" in result.stdout, result.stdout[-3000:]
        assert "Nothing was applied" in result.stdout
        assert "changed=0" in result.stdout
    finally:
        persistent.run("systemctl stop bulwark-rollback-firewall.service")
    assert persistent.run("nft list tables; nft list table inet bulwark").stdout == before


def test_a_rerun_while_a_change_waits_for_its_confirmation_reports_it_pending(host, stranger):
    """Never `ok` and then undone by the timer: the second run says changed and pending again."""
    name = host.backend.get_hostname()
    only_on(name, "fw-trixie")
    args = {
        "admin_networks": ["172.30.2.1/32"],
        "services": [8080, 7070],
        "sets": {"partners": ["172.30.2.13/32", "2001:db8:77::/48"]},
        "rules": [{"port": 9090, "sources": ["@partners"]}],
        "rollback_timeout": 60,
        "controller_address": "172.30.2.1",
        "controller_port": 22,
        "controller_local_address": address_of(host),
    }
    try:
        rc, first = adhoc(name, "bulwark.hardening.firewall", args)
        assert rc == 0 and first["changed"] and first["pending"], first
        rc, again = adhoc(name, "bulwark.hardening.firewall", args)
        assert rc == 0 and again["changed"] is True and again["pending"] is True, again
        rc, confirmed = adhoc(name, "bulwark.hardening.commit_confirm", {"concern": "firewall"})
        assert rc == 0 and confirmed["confirmed"], confirmed
        assert reach(stranger, address_of(host), 7070)  # the change was kept, not rolled back
        assert host.file("/etc/bulwark/firewall.nft").contains("7070")
    finally:
        restored = converge(name)
        assert restored.returncode == 0, restored.stdout[-3000:]
    assert reach(host, "127.0.0.1", 7070)
    assert not reach(stranger, address_of(host), 7070)
