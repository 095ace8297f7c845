"""What IPv6 needs to keep working under the default-deny policy, in both renderers, whatever the options.

molecule/firewall/tests/test_ipv6.py proves the same with a real DHCPv6 exchange.
"""

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.firewall import iptables, model, nftables

NFT_INPUT = [
    "icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, "
    "nd-redirect } ip6 hoplimit 255 accept",
    "ip6 saddr fe80::/10 icmpv6 type { mld-listener-query, mld-listener-report, mld-listener-done, "
    "mld2-listener-report } accept",
    "ip6 saddr fe80::/10 ip6 daddr fe80::/10 udp sport 547 udp dport 546 accept",
]
IPT6_INPUT = [
    "-p ipv6-icmp --icmpv6-type router-solicitation -m hl --hl-eq 255 -j ACCEPT",
    "-p ipv6-icmp --icmpv6-type router-advertisement -m hl --hl-eq 255 -j ACCEPT",
    "-p ipv6-icmp --icmpv6-type neighbour-solicitation -m hl --hl-eq 255 -j ACCEPT",
    "-p ipv6-icmp --icmpv6-type neighbour-advertisement -m hl --hl-eq 255 -j ACCEPT",
    "-p ipv6-icmp --icmpv6-type redirect -m hl --hl-eq 255 -j ACCEPT",
    "-s fe80::/10 -p ipv6-icmp --icmpv6-type 130 -j ACCEPT",
    "-s fe80::/10 -p ipv6-icmp --icmpv6-type 131 -j ACCEPT",
    "-s fe80::/10 -p ipv6-icmp --icmpv6-type 132 -j ACCEPT",
    "-s fe80::/10 -p ipv6-icmp --icmpv6-type 143 -j ACCEPT",
    "-s fe80::/10 -d fe80::/10 -p udp --sport 547 --dport 546 -j ACCEPT",
]

# The strictest policies the role can ask for: lockdown drops everything, no ping.
OPTIONS = [
    {},
    {"icmp_echo": False},
    {"default_incoming": "drop", "default_routed": "drop", "default_outgoing": "drop", "icmp_echo": False},
    {"ssh_restricted": False, "rules": [{"port": 546, "proto": "udp", "action": "drop"}]},
]


def pol(**kw):
    kw.setdefault("admin_networks", ["192.0.2.0/24"])
    return model.normalise(kw)


def _input(lines):
    return [ln for ln in lines if ln.chain == "input"]


@pytest.mark.parametrize("opts", OPTIONS)
def test_nftables_admits_neighbour_discovery_mld_and_dhcpv6_replies_before_any_rule(opts):
    texts = [ln.text for ln in _input(nftables.lines(pol(**opts)))]
    assert texts[5:8] == NFT_INPUT
    # before SSH and every declared rule: a drop rule cannot take DHCPv6 away
    assert texts[8] == "ip saddr @admin_v4 tcp dport 22 accept"


def test_nftables_script_carries_them_with_their_comments():
    script = nftables.render(pol())
    comments = ("neighbour discovery", "multicast listener discovery", "DHCPv6 client replies")
    for text, comment in zip(NFT_INPUT, comments, strict=True):
        line = next(ln for ln in nftables.lines(pol()) if ln.text == text)
        assert f'\t\t{text} comment "{line.id} {comment}"\n' in script


def test_nftables_with_outgoing_dropped_lets_the_dhcpv6_client_ask():
    out = [ln.text for ln in nftables.lines(pol(default_outgoing="drop")) if ln.chain == "output"]
    assert out == [
        'oif "lo" accept',
        "ct state established,related accept",
        "meta l4proto { 1, 58 } accept",
        "ip6 daddr ff02::1:2 udp sport 546 udp dport 547 accept",
    ]


@pytest.mark.parametrize("opts", OPTIONS)
def test_ip6tables_admits_neighbour_discovery_mld_and_dhcpv6_replies_before_any_rule(opts):
    p = pol(**opts)
    args = [ln.args for ln in _input(iptables.lines(p, 6))]
    first = 3 + 4 + (1 if p.icmp_echo else 0)  # lo, established, invalid; the ICMPv6 errors (and echo)
    assert args[first : first + len(IPT6_INPUT)] == IPT6_INPUT
    assert args[first + len(IPT6_INPUT)] == "-p tcp --dport 22 -m set --match-set bw-admin-6 src -j ACCEPT"


def test_ip6tables_restore_lines_are_exact():
    lines = {ln.args: ln for ln in iptables.lines(pol(), 6)}
    dhcp = lines["-s fe80::/10 -d fe80::/10 -p udp --sport 547 --dport 546 -j ACCEPT"]
    assert dhcp.restore() == (
        "-A BULWARK-INPUT -s fe80::/10 -d fe80::/10 -p udp --sport 547 --dport 546 -m comment "
        f'--comment "{dhcp.id} DHCPv6 client replies" -j ACCEPT'
    )
    nd = lines["-p ipv6-icmp --icmpv6-type neighbour-solicitation -m hl --hl-eq 255 -j ACCEPT"]
    assert nd.restore() == (
        "-A BULWARK-INPUT -p ipv6-icmp --icmpv6-type neighbour-solicitation -m hl --hl-eq 255 -m comment "
        f'--comment "{nd.id} neighbour discovery" -j ACCEPT'
    )


def test_ip6tables_with_outgoing_dropped_lets_the_dhcpv6_client_ask():
    out = [ln.args for ln in iptables.lines(pol(default_outgoing="drop"), 6) if ln.chain == "output"]
    assert out == [
        "-o lo -j ACCEPT",
        "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-p ipv6-icmp -j ACCEPT",
        "-d ff02::1:2 -p udp --sport 546 --dport 547 -j ACCEPT",
    ]


def test_iptables_ipv4_gets_no_ipv6_lines():
    p = pol(default_outgoing="drop")
    assert not any(
        "fe80" in ln.args or "ff02" in ln.args or "--hl-eq" in ln.args for ln in iptables.lines(p, 4)
    )
