"""The kernel's view: every base chain the controller's packet meets, on real `nft -j` output of an
iptables-persistent host (iptables-nft: INPUT policy drop, accepts for lo, established, tcp/22),
captured on Debian 12 (nft 1.0.6) and Debian 13 (nft 1.1.3) lab hosts."""

import json
from pathlib import Path

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.firewall import hooks, nftables

FIXTURES = Path(__file__).parent / "fixtures"
PERSISTENT = ["ruleset-iptables-persistent-bookworm.json", "ruleset-iptables-persistent-trixie.json"]
CONTROLLER = hooks.packet("172.30.2.1", "172.30.2.20", 22)


def doc(name):
    return json.loads((FIXTURES / name).read_text())


def blocked(chains, pkt=CONTROLLER, skip=lambda c: False):
    return [
        (f"{c.family} {c.table} {c.name}", outcome, why) for c, outcome, why in hooks.judge(chains, pkt, skip)
    ]


@pytest.mark.parametrize("name", PERSISTENT)
def test_the_persistent_ruleset_admits_ssh_and_drops_the_rest(name):
    chains = hooks.chains(doc(name))
    assert blocked(chains) == []  # tcp/22 accepted in ip filter INPUT
    other = hooks.packet("172.30.2.1", "172.30.2.20", 8080)
    assert blocked(chains, other) == [("ip filter INPUT", hooks.DROP, "its policy drop")]
    v6 = hooks.packet("2001:db8::1", "2001:db8::2", 8080)
    assert blocked(chains, v6) == [("ip6 filter INPUT", hooks.DROP, "its policy drop")]


@pytest.mark.parametrize("name", PERSISTENT)
def test_deleting_the_accepts_one_by_one_leaves_the_drop_policy_that_locks_the_operator_out(name):
    """What the purge did before: the foreign accepts go, the foreign drop policy stays."""
    live = doc(name)
    chains = hooks.chains(live)
    keys = [
        ("rule", "ip", "filter", "INPUT", handle) for handle, _e in chains[("ip", "filter", "INPUT")].rules
    ]
    assert blocked(hooks.after_purge(chains, keys)) == [("ip filter INPUT", hooks.DROP, "its policy drop")]


@pytest.mark.parametrize("name", PERSISTENT)
def test_the_purge_deletes_a_table_only_foreign_rules_fill_and_leaves_nothing_that_drops(name):
    live = nftables.read_live(doc(name))
    commands = sorted(f.command for f in live.foreign)
    assert commands == ["delete table ip filter", "delete table ip6 filter"]
    remaining = hooks.after_purge(hooks.chains(doc(name)), [f.key for f in live.foreign])
    assert remaining == {}
    assert blocked(remaining, hooks.packet("172.30.2.1", "172.30.2.20", 8080)) == []


def _shared(policy="drop"):
    """An iptables-nft filter table shared with Docker: its chains stay, its INPUT policy is taken over."""
    items = [
        {"table": {"family": "ip", "name": "filter"}},
        {
            "chain": {
                "family": "ip",
                "table": "filter",
                "name": "INPUT",
                "type": "filter",
                "hook": "input",
                "prio": 0,
                "policy": policy,
            }
        },
        {"chain": {"family": "ip", "table": "filter", "name": "DOCKER-USER"}},
        {
            "rule": {
                "family": "ip",
                "table": "filter",
                "chain": "INPUT",
                "handle": 5,
                "expr": [
                    {
                        "match": {
                            "op": "==",
                            "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                            "right": 22,
                        }
                    },
                    {"accept": None},
                ],
            }
        },
    ]
    return {"nftables": items}


def test_a_table_shared_with_docker_keeps_its_chains_and_loses_its_drop_policy():
    live = nftables.read_live(_shared())
    assert sorted(f.command for f in live.foreign) == [
        "chain ip filter INPUT { policy accept; }",
        "delete rule ip filter INPUT handle 5",
    ]
    remaining = hooks.after_purge(hooks.chains(_shared()), [f.key for f in live.foreign])
    assert remaining[("ip", "filter", "INPUT")].policy == "accept"
    assert remaining[("ip", "filter", "INPUT")].rules == []
    assert blocked(remaining) == []


def _chain(rules, policy="accept", family="inet", hook="input"):
    items = [{"chain": {"family": family, "table": "t", "name": "c", "type": "filter", "hook": hook,
                        "prio": -5, "policy": policy}}]  # fmt: skip
    items += [
        {"rule": {"family": family, "table": "t", "chain": "c", "handle": i, "expr": e}}
        for i, e in enumerate(rules)
    ]
    return hooks.chains({"nftables": items})


def _m(left, right, op="=="):
    return {"match": {"op": op, "left": left, "right": right}}


SADDR = {"payload": {"protocol": "ip", "field": "saddr"}}
DPORT = {"payload": {"protocol": "tcp", "field": "dport"}}


def test_a_drop_rule_that_matches_the_controller_is_named():
    chains = _chain([[_m(SADDR, {"prefix": {"addr": "172.30.2.0", "len": 24}}), {"drop": None}]])
    assert blocked(chains) == [("inet t c", hooks.DROP, "rule handle 0 of chain c drops it")]


def test_a_drop_rule_for_other_sources_or_ports_lets_the_controller_through():
    chains = _chain(
        [[_m(SADDR, "10.0.0.1"), {"drop": None}], [_m(DPORT, {"set": [80, 443]}), {"drop": None}]]
    )
    assert blocked(chains) == []


def test_a_drop_behind_a_match_the_guard_cannot_evaluate_is_unknown():
    chains = _chain([[{"xt": {"type": "match", "name": "recent"}}, {"drop": None}]])
    assert blocked(chains) == [
        (
            "inet t c",
            hooks.UNKNOWN,
            "rule handle 0 of chain c may drop it (a match this guard cannot evaluate)",
        )
    ]


def test_an_accept_behind_an_unknown_match_is_not_counted_on():
    chains = _chain([[{"xt": {"type": "match", "name": "conntrack"}}, {"accept": None}]], policy="drop")
    assert blocked(chains) == [("inet t c", hooks.DROP, "its policy drop")]


def test_other_family_and_hooks_the_packet_does_not_meet_are_ignored():
    assert blocked(_chain([], policy="drop", family="ip6")) == []
    assert blocked(_chain([], policy="drop", hook="output")) == []
    assert blocked(_chain([], policy="drop", hook="prerouting")) != []
    established = [_m({"ct": {"key": "state"}}, ["established", "related"], op="in"), {"accept": None}]
    assert blocked(_chain([established], policy="drop")) == [("inet t c", hooks.DROP, "its policy drop")]


def test_jumps_are_followed_and_cooperating_chains_trusted():
    items = [
        {
            "chain": {
                "family": "ip",
                "table": "t",
                "name": "in",
                "type": "filter",
                "hook": "input",
                "prio": 0,
                "policy": "accept",
            }
        },
        {"chain": {"family": "ip", "table": "t", "name": "sub"}},
        {
            "rule": {
                "family": "ip",
                "table": "t",
                "chain": "in",
                "handle": 1,
                "expr": [{"jump": {"target": "f2b-sshd"}}],
            }
        },
        {
            "rule": {
                "family": "ip",
                "table": "t",
                "chain": "in",
                "handle": 2,
                "expr": [{"jump": {"target": "sub"}}],
            }
        },
        {
            "rule": {
                "family": "ip",
                "table": "t",
                "chain": "sub",
                "handle": 3,
                "expr": [_m(DPORT, 22), {"drop": None}],
            }
        },
    ]
    assert blocked(hooks.chains({"nftables": items})) == [
        ("ip t in", hooks.DROP, "rule handle 3 of chain sub drops it")
    ]


IIFNAME = {"meta": {"key": "iifname"}}


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("va*", "va3", True),  # nft's wildcard: a trailing unescaped star, any suffix
        ("va*", "va", True),
        ("va*", "v", False),
        ("va\\*", "va3", False),  # as `nft -j` prints "va\*": a star, literally
        ("va\\*", "va*", True),
        ("v?*", "va3", False),  # '?' and '[' are themselves, not glob patterns
        ("v[a]*", "va3", False),
        ("v+", "va3", False),  # '+' is iptables' wildcard, not nft's
        ("v+", "v+", True),
        ("a\\\\b", "a\\b", True),
        ("eth0", "eth0", True),
        ("eth0", "eth00", False),
    ],
)
def test_interface_names_are_matched_as_nft_matches_them(pattern, name, matches):
    assert hooks.ifname_matches(pattern, name) is matches
    pkt = hooks.packet("172.30.2.1", "172.30.2.20", 22, interface=name)
    chains = _chain([[_m(IIFNAME, pattern), {"drop": None}]])
    assert bool(blocked(chains, pkt)) is matches


def test_iif_names_one_interface_without_wildcard():
    pkt = hooks.packet("172.30.2.1", "172.30.2.20", 22, interface="va3")
    iif = {"meta": {"key": "iif"}}
    assert blocked(_chain([[_m(iif, "va*"), {"drop": None}]]), pkt) == []
    assert blocked(_chain([[_m(iif, "va3"), {"drop": None}]]), pkt) != []
