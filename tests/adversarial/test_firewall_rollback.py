"""A firewall rollback puts back what the apply changed and removed, and leaves what others added since.

The host runs the apply with purge, then, while the change waits for its confirmation, "Docker" publishes
a port (a rule in its DOCKER chain), makes a table the purge had deleted anew, and "podman" adds a table of
its own. The rollback timer fires (fake_systemd, as systemd would): bulwark's own objects are back as they
were, so is everything the purge removed or changed, and every one of the other owners' additions is
still there. Real nft, iptables(-nft), ip6tables and ipset, in a network namespace of the test.
"""

import re

import pytest

CONTROLLER, NET = "10.231.0.2", "10.231.0.0/24"
UNIT = "bulwark-rollback-firewall"


@pytest.fixture
def new_host(netns, link, state_root):
    """new_host() -> a host namespace linked to a controller namespace."""

    def make():
        host, controller = netns(), netns()
        link(host, controller)
        return host

    return make


@pytest.fixture
def host(new_host):
    return new_host()


def run_all(host, commands):
    for argv in commands:
        host.run(argv)


def filter_table(host, tool="iptables"):
    """{chain: (policy, [rules in order])} of a filter table, as `iptables-save` prints it."""
    out = {}
    for line in host.run([f"{tool}-save", "-t", "filter"]).stdout.splitlines():
        if line.startswith(":"):
            name, policy = line[1:].split()[:2]
            out[name] = (policy, [])
        elif line.startswith("-A "):
            chain, _sep, spec = line[3:].partition(" ")
            out[chain][1].append(spec)
    return out


def tables(host):
    return set(host.run(["nft", "list", "tables"]).stdout.split("\n")) - {""}


def firewall_args(backend):
    return {
        "backend": backend,
        "admin_networks": [NET],
        "services": [443],
        "docker": "false",
        "purge": True,
        "controller_address": CONTROLLER,
        "controller_port": 22,
        "rollback_timeout": 30,
    }


def apply(run_module, fake_systemd, host, backend):
    run = run_module("firewall", firewall_args(backend), ns=host, env=fake_systemd.env())
    assert run.rc == 0 and run.result["pending"], run
    assert UNIT in fake_systemd.timers(), fake_systemd.timers()
    return run


def fire(fake_systemd, host):
    done = fake_systemd.fire(UNIT, host)
    assert done.returncode == 0, done
    failed = list(__import__("pathlib").Path("/var/lib/bulwark").rglob("restore-failed"))
    assert not failed, [p.read_text() for p in failed]


# iptables-nft rules of the host before the apply: Docker's chains and jumps (cooperating), two foreign
# rules that admit traffic (the purge deletes them) around a foreign drop rule (it stays).
DOCKER = [
    ["iptables", "-N", "DOCKER"],
    ["iptables", "-N", "DOCKER-USER"],
    ["iptables", "-A", "FORWARD", "-j", "DOCKER-USER"],
    ["iptables", "-A", "FORWARD", "-j", "DOCKER"],
]
FOREIGN = [
    ["iptables", "-A", "INPUT", "-s", "198.51.100.0/24", "-j", "ACCEPT"],
    ["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "23", "-j", "DROP"],
    ["iptables", "-A", "INPUT", "-p", "tcp", "-m", "multiport", "--dports", "8081,8082",
     "-m", "comment", "--comment", "an app's ports", "-j", "ACCEPT"],
    ["ip6tables", "-A", "INPUT", "-s", "2001:db8::/32", "-j", "ACCEPT"],
]  # fmt: skip
# What other owners do while the change waits for its confirmation.
DOCKER_PUBLISHES = [
    "iptables",
    "-A",
    "DOCKER",
    "-d",
    "172.17.0.2/32",
    "-p",
    "tcp",
    "--dport",
    "80",
    "-j",
    "ACCEPT",
]
DOCKER_USER_RULE = ["iptables", "-I", "DOCKER-USER", "-s", "203.0.113.0/24", "-j", "RETURN"]
PODMAN = [
    ["nft", "add table inet podman"],
    ["nft", "add chain inet podman podman_fwd { type filter hook forward priority 0; }"],
    ["nft", 'add rule inet podman podman_fwd iifname "podman0" accept'],
]
PUBLISHED = "-d 172.17.0.2/32 -p tcp -m tcp --dport 80 -j ACCEPT"


def test_nftables_rollback_restores_the_purge_and_keeps_what_others_added_meanwhile(
    host, run_module, fake_systemd
):
    run_all(host, DOCKER + FOREIGN)
    host.run(["iptables", "-P", "INPUT", "DROP"])  # its policy: the purge sets it to accept
    run_all(host, [
        ["nft", "add table inet other"],
        ["nft", "add chain inet other input { type filter hook input priority 10; }"],
        ["nft", "add rule inet other input tcp dport 9000 accept"],
    ])  # fmt: skip
    before4, before6 = filter_table(host), filter_table(host, "ip6tables")
    other = host.run(["nft", "list", "table", "inet", "other"]).stdout

    run = apply(run_module, fake_systemd, host, "nftables")

    purge = run.result["purge"]
    assert sorted(cmd.rsplit(" handle ", 1)[0] for cmd in purge) == [
        "chain ip filter INPUT { policy accept; }",
        "delete rule ip filter INPUT",
        "delete rule ip filter INPUT",
        "delete table inet other",
        "delete table ip6 filter",
    ], purge
    assert "table inet other" not in tables(host) and "table ip6 filter" not in tables(host)
    # Meanwhile: Docker publishes a port and makes ip6 filter anew for its chain; podman adds a table.
    host.run(DOCKER_PUBLISHES)
    host.run(DOCKER_USER_RULE)
    host.run(["ip6tables", "-N", "DOCKER"])
    host.run(["ip6tables", "-A", "DOCKER", "-d", "fd00::2/128", "-j", "ACCEPT"])
    run_all(host, PODMAN)

    fire(fake_systemd, host)

    after4 = filter_table(host)
    assert after4["INPUT"] == before4["INPUT"]  # the purged rules back in place, the policy drop again
    assert after4["FORWARD"] == before4["FORWARD"]
    assert after4["DOCKER"] == ("-", [PUBLISHED])
    assert after4["DOCKER-USER"] == ("-", ["-s 203.0.113.0/24 -j RETURN"])
    after6 = filter_table(host, "ip6tables")
    assert after6["INPUT"] == before6["INPUT"]
    assert after6["DOCKER"] == ("-", ["-d fd00::2/128 -j ACCEPT"])
    assert host.run(["nft", "list", "table", "inet", "other"]).stdout == other
    assert "table inet podman" in tables(host)
    assert "table inet bulwark" not in tables(host)


def test_iptables_rollback_restores_the_purge_and_keeps_what_others_added_meanwhile(
    host, run_module, fake_systemd
):
    run_all(host, DOCKER + FOREIGN)
    before4, before6 = filter_table(host), filter_table(host, "ip6tables")
    sets_before = host.run(["ipset", "list", "-n"]).stdout

    apply(run_module, fake_systemd, host, "iptables")

    applied = filter_table(host)
    assert (
        applied["INPUT"][1][0] == "-j BULWARK-INPUT"
        and "-s 198.51.100.0/24 -j ACCEPT" not in applied["INPUT"][1]
    )
    # Meanwhile: Docker publishes a port and puts a rule of its own first in FORWARD; podman adds a table.
    host.run(DOCKER_PUBLISHES)
    host.run(DOCKER_USER_RULE)
    host.run(["iptables", "-I", "FORWARD", "1", "-i", "docker0", "-o", "docker0", "-j", "ACCEPT"])
    run_all(host, PODMAN)

    fire(fake_systemd, host)

    after4 = filter_table(host)
    assert after4["INPUT"] == before4["INPUT"]
    assert after4["FORWARD"] == ("ACCEPT", ["-i docker0 -o docker0 -j ACCEPT", *before4["FORWARD"][1]])
    assert after4["DOCKER"] == ("-", [PUBLISHED])
    assert after4["DOCKER-USER"] == ("-", ["-s 203.0.113.0/24 -j RETURN"])
    assert not [chain for chain in after4 if chain.startswith("BULWARK")]
    assert filter_table(host, "ip6tables") == before6
    assert host.run(["ipset", "list", "-n"]).stdout == sets_before
    assert "table inet podman" in tables(host)


def everything(host):
    """The whole firewall state as the tools print it (no counters, no timestamps): iptables' tables as
    iptables-save prints them (an empty built-in chain that iptables-nft made on the way, policy accept,
    prints the same as one it has not made), every other table as nft does, and the ipsets."""
    out = [host.run(["ipset", "list", "-n"]).stdout]
    for line in sorted(tables(host)):
        _table, family, name = line.split()
        if family not in ("ip", "ip6") or name not in ("filter", "nat", "mangle", "raw", "security"):
            out.append(host.run(["nft", "list", "table", family, name]).stdout)
    for tool in ("iptables", "ip6tables"):
        saved = host.run([f"{tool}-save"]).stdout.splitlines()
        # a built-in chain's packet counters change with the link's own traffic (neighbour discovery)
        out += [re.sub(r" \[\d+:\d+\]$", "", line) for line in saved if not line.startswith("#")]
    return out


@pytest.mark.parametrize(
    ("backend", "failing_step"),
    [
        ("nftables", "nft -f /var/lib/bulwark/firewall.candidate.nft"),  # the one transaction: nothing ran
        ("iptables", "ip6tables-restore --noflush"),  # IPv4 and the sets ran, IPv6 did not
    ],
)
def test_a_rollback_after_a_failed_apply_puts_back_exactly_what_was_there(
    new_host, run_module, fake_systemd, backend, failing_step
):
    """The rollback reads the live state first: right whether the apply ran, ran in part, or not at all
    (no rule put back twice, no table put back beside itself)."""
    setup = (
        [*DOCKER, *FOREIGN, ["iptables", "-P", "INPUT", "DROP"]]
        if backend == "nftables"
        else DOCKER + FOREIGN
    )
    # A twin host shows which host operation the apply step is; on this one it fails. The twin's second run
    # starts, as this host's does, from a rolled-back change (the protocol's state shared by both).
    twin = new_host()
    run_all(twin, setup)
    for _attempt in range(2):
        ops = apply(run_module, fake_systemd, twin, backend).ops
        fire(fake_systemd, twin)
    step = next(int(line.split("\t")[0]) for line in ops if failing_step in line)
    host = new_host()
    run_all(host, setup)
    before = everything(host)

    run = run_module(
        "firewall", firewall_args(backend), ns=host, env=fake_systemd.env(), fault=f"fail:{step}"
    )

    assert run.result and run.result.get("failed") and run.result.get("restored"), run
    assert "The host restored the previous firewall" in run.result["msg"], run.result["msg"]
    assert everything(host) == before
