"""Which sources left which list, per backend, and the conntrack calls that delete their flows."""

import ipaddress

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.firewall import (
    backends,
    conntrack,
    iptables,
    model,
    nftables,
)

CONTROLLER = (ipaddress.ip_address("192.0.2.10"), 22)


def policy(sets=None, rules=None, **extra):
    return model.normalise(
        {
            "admin_networks": ["192.0.2.0/24"],
            "sets": sets or {},
            "rules": rules or [],
            **extra,
        }
    )


WG = {"port": 51820, "proto": "udp", "sources": ["@overlay_peers"]}


def shrink(before, after, controller=CONTROLLER):
    return conntrack.removed(conntrack.admissions(before), conntrack.admissions(after), controller)


def test_a_peer_that_leaves_the_set_is_removed_for_the_port_the_set_admitted():
    before = policy({"overlay_peers": ["198.51.100.1", "198.51.100.2", "2001:db8::2"]}, [WG])
    after = policy({"overlay_peers": ["198.51.100.1"]}, [WG])
    assert conntrack.by_list(shrink(before, after)) == {
        "sets.overlay_peers": ["198.51.100.2 udp port 51820", "2001:db8::2 udp port 51820"]
    }


def test_nothing_shrinks_nothing_removed():
    before = policy({"overlay_peers": ["198.51.100.1"]}, [WG, {"port": 80, "sources": ["203.0.113.0/24"]}])
    grown = policy(
        {"overlay_peers": ["198.51.100.1", "198.51.100.9"]},
        # a rule inserted in front shifts every index: the same sources are still admitted to the same ports
        [{"port": 443}, WG, {"port": 80, "sources": ["203.0.113.0/24", "203.0.114.0/24"]}],
    )
    assert shrink(before, grown) == []
    assert shrink(before, before) == []


def test_a_network_that_shrinks_loses_the_part_that_left():
    before = policy({"office": ["10.0.0.0/28"]}, [{"port": 5432, "sources": ["@office"]}])
    after = policy({"office": ["10.0.0.0/29"]}, [{"port": 5432, "sources": ["@office"]}])
    assert conntrack.by_list(shrink(before, after)) == {"sets.office": ["10.0.0.8/29 tcp port 5432"]}


def test_a_rules_own_source_list_and_the_admin_networks_shrink_too():
    before = policy(rules=[{"port": 80, "sources": ["203.0.113.0/24", "198.51.100.7"]}])
    after = model.normalise(
        {"admin_networks": ["192.0.2.0/25"], "rules": [{"port": 80, "sources": ["203.0.113.0/24"]}]}
    )
    assert conntrack.by_list(shrink(before, after)) == {
        "admin_networks": ["192.0.2.128/25 tcp port 22"],
        "rules[0].sources": ["198.51.100.7 tcp port 80"],
    }


def test_a_source_still_admitted_elsewhere_to_the_same_port_keeps_its_flow():
    rules = [WG, {"port": [51820, 8000], "proto": "udp", "sources": ["@other"]}]
    before = policy({"overlay_peers": ["198.51.100.2"], "other": []}, rules)
    after = policy({"overlay_peers": [], "other": ["198.51.100.0/24"]}, rules)
    assert shrink(before, after) == []
    # ...but not by a rule narrowed to an interface: the flow may have come in elsewhere.
    narrowed = [WG, {"port": 51820, "proto": "udp", "sources": ["@other"], "interface": "wg0"}]
    before = policy({"overlay_peers": ["198.51.100.2"], "other": []}, narrowed)
    after = policy({"overlay_peers": [], "other": ["198.51.100.0/24"]}, narrowed)
    assert conntrack.by_list(shrink(before, after)) == {"sets.overlay_peers": ["198.51.100.2 udp port 51820"]}


def test_an_unchanged_narrowed_rule_removes_nothing():
    # The overlay's routed rule: from the mesh, on its interface, to the container subnets. The same
    # policy before and after is no removal (it made every run changed and delete flows).
    routed = {
        "direction": "routed",
        "proto": "any",
        "interface": "wg0",
        "sources": ["10.99.0.0/24", "10.100.0.0/16"],
        "destinations": ["10.100.5.0/24"],
    }
    same = policy(rules=[routed])
    assert shrink(same, same) == []
    # A narrowed rule that loses a source still removes it, and so does one whose scope changed.
    fewer = policy(rules=[{**routed, "sources": ["10.99.0.0/24"]}])
    assert conntrack.by_list(shrink(same, fewer)) == {"rules[0].sources": ["10.100.0.0/16 every protocol"]}
    elsewhere = policy(rules=[{**routed, "destinations": ["10.100.6.0/24"]}])
    assert len(shrink(same, elsewhere)) == 2


def test_a_list_open_to_every_source_is_no_allowlist():
    before = policy(rules=[{"port": 8080}], ssh_restricted=False)
    after = policy()
    assert shrink(before, after) == []


def test_the_controllers_address_is_never_in_a_deletion():
    # The controller leaves a list that admitted every protocol from it; admin_networks still admits its
    # SSH: the removal is its network without its address, and no call can match its connection.
    rules = [{"proto": "any", "sources": ["@trusted"]}]
    before = policy({"trusted": ["192.0.2.8/30"]}, rules)
    after = policy({"trusted": []}, rules)
    removals = shrink(before, after)
    assert conntrack.by_list(removals) == {
        "sets.trusted": ["192.0.2.8/31 every protocol", "192.0.2.11 every protocol"]
    }
    for call in conntrack.calls("conntrack", removals, CONTROLLER):
        network = ipaddress.ip_network(call.argv[call.argv.index("-s") + 1])
        assert CONTROLLER[0] not in network, call
    # A list that admitted other ports keeps the controller's address in (its SSH port is not matched).
    rules = [{"port": 8000, "sources": ["@trusted"]}]
    removals = shrink(policy({"trusted": ["192.0.2.10"]}, rules), policy({"trusted": []}, rules))
    assert conntrack.by_list(removals) == {"sets.trusted": ["192.0.2.10 tcp port 8000"]}
    # The guard of last resort: a call that could match the controller's connection is refused.
    bad = conntrack.Removal("sets.trusted", ipaddress.ip_network("192.0.2.0/24"), "tcp", ((22, 22),))
    with pytest.raises(conntrack.ControllerFlow, match="controller"):
        conntrack.calls("conntrack", [bad], CONTROLLER)


def test_calls_match_as_narrowly_as_the_list():
    removal = conntrack.Removal
    net = ipaddress.ip_network
    calls = conntrack.calls(
        "/usr/sbin/conntrack",
        [
            removal("sets.p", net("198.51.100.2/32"), "udp", ((51820, 51820),)),
            removal("sets.p", net("2001:db8::/48"), "tcp", ((80, 81),)),
            removal("rules[0].sources", net("10.0.0.0/8"), "any", ()),
            removal("rules[1].sources", net("10.0.0.0/8"), "tcp", ((1000, 2000),)),
        ],
    )
    assert [c.argv[1:] for c in calls] == [
        ["-D", "-f", "ipv4", "-s", "198.51.100.2/32", "-p", "udp", "--dport", "51820"],
        ["-D", "-f", "ipv6", "-s", "2001:db8::/48", "-p", "tcp", "--dport", "80"],
        ["-D", "-f", "ipv6", "-s", "2001:db8::/48", "-p", "tcp", "--dport", "81"],
        ["-D", "-f", "ipv4", "-s", "10.0.0.0/8"],
        # conntrack filters one port: a range wider than MAX_PORT_CALLS is every flow of the protocol
        ["-D", "-f", "ipv4", "-s", "10.0.0.0/8", "-p", "tcp"],
    ]


def test_icmp_lists_only_match_their_own_family():
    rules = [{"proto": "icmp", "sources": ["@mon"]}, {"proto": "icmpv6", "sources": ["@mon"]}]
    removals = shrink(policy({"mon": ["198.51.100.1", "2001:db8::1"]}, rules), policy({"mon": []}, rules))
    assert conntrack.by_list(removals) == {"sets.mon": ["198.51.100.1 icmp", "2001:db8::1 icmpv6"]}


@pytest.mark.parametrize(
    ("rc", "err", "expected"),
    [
        (0, "conntrack v1.4.7 (conntrack-tools): 2 flow entries have been deleted.\n", (2, None)),
        (1, "conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.\n", (0, None)),
        (
            1,
            "conntrack v1.4.7 (conntrack-tools): Operation not permitted\n",
            (0, "conntrack v1.4.7 (conntrack-tools): Operation not permitted"),
        ),
        (2, "", (0, "exit 2")),
    ],
)
def test_nothing_matched_is_not_a_failure_anything_else_is(rc, err, expected):
    assert conntrack.outcome(rc, err) == expected


# --- per backend: what the live firewall admitted -------------------------------------------------------


def nft_doc(elements):
    """`nft -j list ruleset` of a table inet bulwark whose overlay_peers sets hold `elements`."""
    items = [{"table": {"family": "inet", "name": "bulwark", "handle": 1}}]
    for fam, typ in (("v4", "ipv4_addr"), ("v6", "ipv6_addr")):
        elems = [
            e
            for e in elements
            if (":" in (e if isinstance(e, str) else e["prefix"]["addr"])) == (fam == "v6")
        ]
        item = {
            "family": "inet",
            "name": f"overlay_peers_{fam}",
            "table": "bulwark",
            "type": typ,
            "handle": 2,
        }
        item["flags"] = ["interval"]
        if elems:
            item["elem"] = elems
        items.append({"set": item})
    meter = {"family": "inet", "name": "rl0_v4", "table": "bulwark", "type": "ipv4_addr", "handle": 5}
    items.append({"set": {**meter, "flags": ["dynamic", "timeout"], "timeout": 60, "size": 65535}})
    return {"nftables": items}


def test_nftables_the_live_sets_are_the_before():
    after = policy({"overlay_peers": ["198.51.100.1"]}, [WG])
    live = nftables.read_live(
        nft_doc(["198.51.100.1", {"prefix": {"addr": "198.51.100.64", "len": 26}}, "2001:db8::2"])
    )
    before = conntrack.with_sets(after, conntrack.nft_live_sets(live.sets))
    assert conntrack.by_list(shrink(before, after)) == {
        "sets.overlay_peers": ["198.51.100.64/26 udp port 51820", "2001:db8::2 udp port 51820"]
    }
    # The live table is the policy: nothing.
    live = nftables.read_live(nft_doc(["198.51.100.1"]))
    assert shrink(conntrack.with_sets(after, conntrack.nft_live_sets(live.sets)), after) == []


def test_iptables_the_live_ipsets_are_the_before():
    after = policy({"overlay_peers": ["198.51.100.1"]}, [WG])
    saved = (
        "create bw-admin-4 hash:net family inet hashsize 1024 maxelem 65536\n"
        "add bw-admin-4 192.0.2.0/24\n"
        "create bw-overlay_peers-4 hash:net family inet hashsize 1024 maxelem 65536\n"
        "add bw-overlay_peers-4 198.51.100.1\n"
        "add bw-overlay_peers-4 198.51.100.2\n"
        "create bw-overlay_peers-6 hash:net family inet6 hashsize 1024 maxelem 65536\n"
        "add bw-overlay_peers-6 2001:db8::/64\n"
    )
    live_sets = conntrack.ipset_live_sets(iptables.parse_ipset_save(saved), after)
    assert conntrack.by_list(shrink(conntrack.with_sets(after, live_sets), after)) == {
        "sets.overlay_peers": ["198.51.100.2 udp port 51820", "2001:db8::/64 udp port 51820"]
    }


def test_ufw_has_no_live_sets_the_record_is_the_before():
    backend = backends.Ufw(lambda argv: (0, "", ""), lambda name: None, lambda path: None)
    after = policy(rules=[{"port": 80, "sources": ["203.0.113.0/24"]}])
    assert backend.live_sets(after) is None
    options = {
        "admin_networks": ["192.0.2.0/24"],
        "rules": [{"port": 80, "sources": ["203.0.113.0/24", "198.51.100.7"]}],
    }
    record = conntrack.read_record(conntrack.record_text(options, (None, None), False, False))
    assert record == (options, None)
    (recorded,) = conntrack.recorded_before(record)
    before = conntrack.recorded_policy(recorded)
    assert conntrack.by_list(shrink(before, after)) == {"rules[0].sources": ["198.51.100.7 tcp port 80"]}


def test_a_record_that_no_longer_reads_is_ignored():
    assert conntrack.read_record("not json") == (None, None)
    assert conntrack.read_record("[]") == (None, None)
    assert conntrack.recorded_policy({"rules": [{"port": 70000}]}) is None
    assert conntrack.recorded_policy(None) is None


def test_after_a_rollback_the_before_is_both_what_was_applied_and_what_the_host_restored():
    old = {"admin_networks": ["192.0.2.0/24"], "sets": {"p": ["198.51.100.2"]}}
    new = {"admin_networks": ["192.0.2.0/24"], "sets": {"p": []}}
    # A run replaced `old` by `new`: the record says new is live, and a rollback restores old.
    record = conntrack.read_record(conntrack.record_text(new, (old, None), False, False))
    assert record == (new, old)
    # Confirmed, new is live; rolled back by the host (which the confirmation module may have reported and
    # cleared), old is: the next run that changes the firewall compares with both.
    assert conntrack.recorded_before(record) == [new, old]
    # A rolled-back run keeps old as what its own rollback restores.
    assert conntrack.read_record(conntrack.record_text(new, record, False, True)) == (new, old)
    # While an earlier change is pending its rollback restores the last confirmed state, not the last run's.
    assert conntrack.read_record(conntrack.record_text(new, (old, {"x": 1}), True, False)) == (new, {"x": 1})
