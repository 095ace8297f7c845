"""The firewall's lockout guard judges interface matches as the kernel does, with the real tools.

A host namespace is linked to a controller namespace; the controller's packets arrive on the veth end the
link fixture names (va<n>). A rule whose interface wildcard matches that name drops the controller in the
kernel; the guard must refuse it, and must admit what the kernel admits. iptables reads a trailing '+' as a
wildcard and nftables reads it as a plain character, so the model refuses '+' by name and has one wildcard,
a trailing '*', which each backend writes in its own syntax.
"""

import subprocess
import sys

import pytest

PORT = 2222
HOST, CONTROLLER, NET = "10.231.0.1", "10.231.0.2", "10.231.0.0/24"
BACKENDS = ("nftables", "iptables")


@pytest.fixture
def pair(netns, link, state_root):
    """(host, controller, the host's interface the controller's packets arrive on), a listener on PORT."""
    host, controller = netns(), netns()
    host_if, _unused = link(host, controller)
    server = host.popen(
        [sys.executable, "-m", "http.server", "--bind", HOST, str(PORT)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _attempt in range(50):
        if controller.connects(HOST, PORT, timeout=0.2):
            break
    assert controller.connects(HOST, PORT), "the listener must answer before anything is judged"
    yield host, controller, host_if
    server.kill()
    server.wait()


def firewall_args(backend, rules, **extra):
    # The controller is not in the admin networks: a rule admits it, and a rule in front may drop it.
    return {
        "backend": backend,
        "admin_networks": ["192.0.2.0/24"],
        "ssh_port": PORT,
        "rules": [*rules, {"port": PORT, "sources": [NET], "comment": "the controller"}],
        "docker": "false",
        "controller_address": CONTROLLER,
        "controller_port": PORT,
        "rollback_timeout": 30,
        **extra,
    }


def ruleset(host):
    return host.run(["nft", "list", "ruleset"]).stdout


@pytest.mark.parametrize("backend", BACKENDS)
def test_iptables_wildcard_plus_is_refused_by_name(pair, run_module, fake_systemd, backend):
    host, controller, host_if = pair
    wildcard = host_if[0] + "+"  # "v+": iptables' wildcard for every name starting with "v"
    # The kernel's reading, by hand: iptables matches the controller's interface by the wildcard...
    host.run(["iptables", "-I", "INPUT", "-i", wildcard, "-p", "tcp", "--dport", str(PORT), "-j", "DROP"])
    assert not controller.connects(HOST, PORT, timeout=0.5)
    host.run(["iptables", "-D", "INPUT", "-i", wildcard, "-p", "tcp", "--dport", str(PORT), "-j", "DROP"])
    # ...and nftables reads the same spelling as a plain name, which the controller's interface is not.
    host.run(["nft", "add table inet probe"])
    host.run(["nft", "add chain inet probe c { type filter hook input priority 0; }"])
    host.run(["nft", f'add rule inet probe c iifname "{wildcard}" tcp dport {PORT} drop'])
    assert controller.connects(HOST, PORT)
    host.run(["nft", "delete table inet probe"])
    host.run(["nft", "delete", "table", "ip", "filter"])  # leave nothing of the probe for the module to see
    before = ruleset(host)

    run = run_module(
        "firewall",
        firewall_args(backend, [{"port": PORT, "interface": wildcard, "action": "drop"}]),
        ns=host,
        env=fake_systemd.env(),
    )

    assert run.result and run.result.get("failed"), run
    msg = run.result["msg"]
    assert msg.startswith(f"rules[0].interface: '{wildcard}' ends in '+'"), msg
    assert f"'{host_if[0]}*'" in msg and "Nothing was applied" in msg, msg
    assert ruleset(host) == before
    assert controller.connects(HOST, PORT)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_drop_rule_on_a_wildcard_matching_the_controller_is_refused(
    pair, run_module, fake_systemd, backend
):
    host, controller, host_if = pair
    rules = [{"port": PORT, "interface": host_if[:2] + "*", "action": "drop"}]  # "va*"
    before = ruleset(host)

    refused = run_module("firewall", firewall_args(backend, rules), ns=host, env=fake_systemd.env())

    assert refused.result and refused.result.get("failed"), refused
    assert "lockout guard" in refused.result["msg"] and "rules[0] drops it" in refused.result["msg"]
    assert ruleset(host) == before
    assert controller.connects(HOST, PORT)

    # The kernel agrees: the same policy applied with the guard off drops the controller.
    cut = run_module("firewall", firewall_args(backend, rules, guard=False), ns=host, env=fake_systemd.env())
    assert cut.rc == 0 and cut.result["pending"], cut
    assert not controller.connects(HOST, PORT, timeout=0.5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_wildcard_that_does_not_match_the_controller_is_applied_and_admits_it(
    pair, run_module, fake_systemd, backend
):
    host, controller, host_if = pair
    other = "x" + host_if[1:2] + "*"  # "xa*": no interface of the host
    run = run_module(
        "firewall",
        firewall_args(backend, [{"port": PORT, "interface": other, "action": "drop"}]),
        ns=host,
        env=fake_systemd.env(),
    )
    assert run.rc == 0 and run.result["pending"] and run.result["guard"] == "rules[1]", run
    assert controller.connects(HOST, PORT)


@pytest.mark.parametrize(
    ("pattern", "matches"), [("va\\*", False), ("v?*", False), ("v[a]*", False), ("va*", True)]
)
def test_a_foreign_chain_is_judged_with_nfts_own_wildcard_syntax(
    pair, run_module, fake_systemd, pattern, matches
):
    """A foreign prerouting chain (the purge leaves it: it does not filter the input hook) drops what comes
    in on an interface named by an nft wildcard. nft reads '\\*' as a star, '?' and '[' as themselves, and
    a trailing '*' as any suffix: the guard judges each as the kernel does, whichever way that goes."""
    host, controller, _host_if = pair
    host.run(["nft", "add table inet other"])
    host.run(["nft", "add chain inet other pre { type filter hook prerouting priority -150; }"])
    host.run(["nft", f'add rule inet other pre iifname "{pattern}" tcp dport {PORT} drop'])
    assert controller.connects(HOST, PORT, timeout=0.5) is not matches  # the kernel's verdict

    run = run_module(
        "firewall", firewall_args("nftables", [], admin_networks=[NET]), ns=host, env=fake_systemd.env()
    )

    if matches:
        assert run.result and run.result.get("failed"), run
        assert run.result["msg"].startswith("lockout guard: table inet other chain pre (hook prerouting"), run
        assert "would drop the controller's SSH connection" in run.result["msg"]
    else:
        assert run.rc == 0 and run.result["pending"], run
        assert controller.connects(HOST, PORT)
