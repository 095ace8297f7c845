import json
import shutil
import subprocess
from pathlib import Path

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.firewall import model, nftables

FIXTURES = Path(__file__).parent / "fixtures"


def pol(**kw):
    kw.setdefault("admin_networks", ["192.0.2.0/24"])
    return model.normalise(kw)


# The policy the fixture's owned table was built from (on a Debian 12 lab host, nft 1.0.6).
FIXTURE_POLICY = {
    "admin_networks": ["172.30.2.1/32"],
    "sets": {"office": ["172.30.2.20/32", "2001:db8::/48"]},
    "rules": [{"port": 8080}, {"port": 9000, "sources": ["@office"]}],
    "docker": True,
}


def fixture(name):
    return json.loads((FIXTURES / name).read_text())


def test_script_replaces_the_owned_table_in_one_transaction():
    script = nftables.render(pol())
    body = script.splitlines()
    assert body[0] == "#!/usr/sbin/nft -f"
    # create-if-missing, delete, refill: one file, one transaction, never half a table
    i = body.index("table inet bulwark {}")
    assert body[i + 1] == "delete table inet bulwark"
    assert body[i + 2] == "table inet bulwark {"
    assert "flush ruleset" not in script


def test_default_policies_are_on_the_base_chains():
    script = nftables.render(pol(default_outgoing="drop"))
    assert "type filter hook input priority 0; policy drop;" in script
    assert "type filter hook forward priority 0; policy drop;" in script
    assert "type filter hook output priority 0; policy drop;" in script
    assert 'oif "lo" accept' in script


def test_loopback_established_and_needed_icmp_come_first():
    texts = [ln.text for ln in nftables.lines(pol()) if ln.chain == "input"]
    assert texts[0] == 'iif "lo" accept'
    assert texts[1] == "ct state established,related accept"
    assert texts[2] == "ct state invalid drop"
    assert "echo-request" in texts[3] and texts[3].startswith("icmp type")
    assert texts[4] == (
        "icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem, "
        "echo-request } accept"
    )
    assert texts[5:8] == [
        "icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, "
        "nd-redirect } ip6 hoplimit 255 accept",
        "ip6 saddr fe80::/10 icmpv6 type { mld-listener-query, mld-listener-report, mld-listener-done, "
        "mld2-listener-report } accept",
        "ip6 saddr fe80::/10 ip6 daddr fe80::/10 udp sport 547 udp dport 546 accept",
    ]


def test_icmp_echo_can_be_switched_off():
    texts = [ln.text for ln in nftables.lines(pol(icmp_echo=False))]
    assert not any("echo-request" in t for t in texts)
    assert any("packet-too-big" in t for t in texts)


def test_restricted_ssh_only_from_admin_sets():
    texts = [ln.text for ln in nftables.lines(pol(ssh_port=2222))]
    assert "ip saddr @admin_v4 tcp dport 2222 accept" in texts
    assert "ip6 saddr @admin_v6 tcp dport 2222 accept" in texts
    assert "tcp dport 2222 accept" not in texts


def test_open_ssh_is_rate_limited_per_source_after_the_admin_exemption():
    texts = [ln.text for ln in nftables.lines(pol(ssh_restricted=False))]
    admin = texts.index("ip saddr @admin_v4 tcp dport 22 accept")
    limit = texts.index(
        "tcp dport 22 ct state new update @rlssh_v4 { ip saddr limit rate over 10/minute burst 5 packets } "
        "drop"
    )
    accept = texts.index("tcp dport 22 accept")
    assert admin < limit < accept
    assert any("@rlssh_v6 { ip6 saddr" in t for t in texts)
    decl = {s[0]: s for s in nftables.sets(pol(ssh_restricted=False))}
    assert decl["rlssh_v4"][2] == ("timeout",) and decl["rlssh_v4"][5] is None


def test_ssh_rate_limit_configurable_and_removable():
    texts = [
        ln.text for ln in nftables.lines(pol(ssh_restricted=False, ssh_rate_limit="3/minute", ssh_burst=2))
    ]
    assert any("limit rate over 3/minute burst 2 packets" in t for t in texts)
    texts = [ln.text for ln in nftables.lines(pol(ssh_restricted=False, ssh_rate_limit=None))]
    assert not any("limit rate" in t for t in texts)


def test_named_sets_are_interval_sets_per_family():
    p = pol(sets={"office": ["198.51.100.0/24", "198.51.100.7", "2001:db8::/48"]})
    decl = {s[0]: s for s in nftables.sets(p)}
    assert decl["office_v4"] == ("office_v4", "ipv4_addr", ("interval",), None, None, ["198.51.100.0/24"])
    assert decl["office_v6"][5] == ["2001:db8::/48"]
    assert decl["admin_v4"][5] == ["192.0.2.0/24"]


def test_rule_with_mixed_sources_is_one_line_per_family_and_set():
    p = pol(
        sets={"office": ["198.51.100.0/24"]},
        rules=[
            {
                "port": 5432,
                "sources": ["10.0.0.0/8", "10.1.0.0/16", "2001:db8::/32", "@office"],
                "comment": "pg",
            }
        ],
    )
    mine = [ln for ln in nftables.lines(p) if "5432" in ln.text]
    assert [ln.text for ln in mine] == [
        "tcp dport 5432 ip saddr 10.0.0.0/8 accept",
        "tcp dport 5432 ip saddr @office_v4 accept",
        "tcp dport 5432 ip6 saddr 2001:db8::/32 accept",
        "tcp dport 5432 ip6 saddr @office_v6 accept",
    ]
    assert all(ln.comment == "pg" for ln in mine)


def test_ports_ranges_protocol_lists_and_interfaces():
    p = pol(
        rules=[
            {"port": ["80", "8000-8100"], "proto": ["tcp", "udp"], "interface": "eth0"},
            {"port": "dns"},
            {"proto": "icmp"},
            {"proto": "any", "sources": ["10.9.0.0/16"]},
        ]
    )
    texts = [ln.text for ln in nftables.lines(p)]
    assert 'iifname "eth0" meta l4proto { 6, 17 } th dport { 80, 8000-8100 } accept' in texts
    assert "meta l4proto { 6, 17 } th dport 53 accept" in texts
    assert "meta l4proto 1 accept" in texts
    assert "ip saddr 10.9.0.0/16 accept" in texts


def test_per_source_rate_limit_uses_a_dynamic_set_before_the_accept():
    p = pol(
        rules=[
            {"port": 53, "proto": "udp", "rate_limit": "30/second", "burst": 50, "sources": ["10.0.0.0/8"]}
        ]
    )
    texts = [ln.text for ln in nftables.lines(p) if "53" in ln.text]
    assert texts == [
        "udp dport 53 ip saddr 10.0.0.0/8 ct state new update @rl0_v4 { ip saddr limit rate over 30/second "
        "burst 50 packets } drop",
        "udp dport 53 ip saddr 10.0.0.0/8 accept",
    ]
    names = [s[0] for s in nftables.sets(p)]
    assert "rl0_v4" in names and "rl0_v6" in names


def test_outgoing_rules_match_destinations():
    p = pol(
        default_outgoing="drop",
        rules=[{"direction": "out", "port": "https", "destinations": ["203.0.113.0/24"]}],
    )
    out = [ln.text for ln in nftables.lines(p) if ln.chain == "output"]
    assert "tcp dport 443 ip daddr 203.0.113.0/24 accept" in out
    assert "ct state established,related accept" in out


def test_docker_forward_rules_key_on_the_original_port_not_container_addresses():
    p = pol(docker=True, rules=[{"direction": "routed", "port": 8080, "sources": ["198.51.100.0/24"]}])
    fwd = [ln.text for ln in nftables.lines(p) if ln.chain == "forward"]
    assert fwd[0] == "ct state established,related accept"
    assert 'iifname "docker0" accept' in fwd and 'iifname "br-*" accept' in fwd
    assert "meta l4proto 6 ct original proto-dst 8080 ip saddr 198.51.100.0/24 accept" in fwd
    assert not any("172.17." in t for t in fwd)


def test_no_docker_rules_without_docker():
    fwd = [ln.text for ln in nftables.lines(pol()) if ln.chain == "forward"]
    assert not any("docker0" in t for t in fwd)


def test_routed_accept_policy_adds_no_forward_rules():
    assert not [ln for ln in nftables.lines(pol(default_routed="accept")) if ln.chain == "forward"]


def test_every_rule_carries_a_stable_id_in_its_comment():
    a = nftables.lines(pol(rules=[{"port": 80, "comment": "web"}]))
    b = nftables.lines(pol(rules=[{"port": 80, "comment": "web"}]))
    assert [ln.id for ln in a] == [ln.id for ln in b]
    web = next(ln for ln in a if ln.text.startswith("tcp dport 80 "))
    assert web.nft() == f'tcp dport 80 accept comment "{web.id} web"'
    assert len(web.nft().split('comment "')[1]) <= 128


def test_ten_thousand_entries_render_as_one_set_not_ten_thousand_rules():
    nets = [f"10.{i // 250}.{i % 250}.1" for i in range(10000)]
    p = pol(sets={"allow": nets}, rules=[{"port": 443, "sources": ["@allow"]}])
    script = nftables.render(p)
    assert script.count("\t\t\t10.") == 10000
    assert sum(1 for ln in nftables.lines(p) if "443" in ln.text) == 2


def test_read_live_sorts_owned_cooperating_and_foreign():
    live = nftables.read_live(fixture("ruleset-hand-added.json"))
    assert live.owned_exists
    assert [c[0] for c in live.chains] == ["input", "forward", "output"]
    foreign = {f.description: f.command for f in live.foreign}
    descs = "\n".join(foreign)
    assert "table inet hole" in descs
    assert "rule ip filter INPUT" in descs  # iptables -A INPUT --dport 4444 -j ACCEPT
    assert "delete table inet hole" in foreign.values()
    assert any(c.startswith("delete rule ip filter INPUT handle ") for c in foreign.values())
    # Docker's embedded DNS NAT, Docker's chains and bridge rules, fail2ban, a nat-only table: left alone
    assert "DOCKER" not in descs and "nat" not in descs and "f2b" not in descs and "natonly" not in descs
    assert len(live.foreign) == 2
    assert "table inet f2b-table" in live.cooperating
    assert "iptables-nft" in live.backends


def test_live_canonical_shows_a_hand_added_rule():
    p = model.normalise(FIXTURE_POLICY)
    live = nftables.read_live(fixture("ruleset-hand-added.json"))
    text = nftables.live_canonical(live, nftables.known_ids(p))
    want = nftables.canonical(p)
    extra = [ln for ln in text.splitlines() if ln not in want.splitlines()]
    assert len(extra) == 1 and "not written by bulwark" in extra[0] and extra[0].startswith("input:")
    assert text != want


def test_live_canonical_matches_after_removing_the_hand_added_rule():
    p = model.normalise(FIXTURE_POLICY)
    doc = fixture("ruleset-hand-added.json")
    doc["nftables"] = [
        i
        for i in doc["nftables"]
        if not ("rule" in i and i["rule"]["table"] == "bulwark" and "comment" not in i["rule"])
    ]
    text = nftables.live_canonical(nftables.read_live(doc), nftables.known_ids(p))
    assert text == nftables.canonical(p)


def test_a_changed_policy_differs_from_the_live_table():
    p = model.normalise({**FIXTURE_POLICY, "rules": [{"port": 8080}]})
    live = nftables.read_live(fixture("ruleset-hand-added.json"))
    assert nftables.live_canonical(live, nftables.known_ids(p)) != nftables.canonical(p)


def test_missing_owned_table_reads_as_empty():
    live = nftables.read_live({"nftables": [{"metainfo": {}}]})
    assert not live.owned_exists and nftables.live_canonical(live, {}) == ""


def test_live_elements_are_normalised():
    doc = {
        "nftables": [
            {"table": {"family": "inet", "name": "bulwark"}},
            {
                "set": {
                    "family": "inet",
                    "table": "bulwark",
                    "name": "x_v4",
                    "type": "ipv4_addr",
                    "flags": ["interval"],
                    "elem": [
                        "10.0.0.1",
                        {"prefix": {"addr": "10.1.0.0", "len": 16}},
                        {"range": ["10.2.0.0", "10.2.1.255"]},
                    ],
                }
            },
        ]
    }
    live = nftables.read_live(doc)
    assert live.sets[0][5] == ["10.0.0.1", "10.1.0.0/16", "10.2.0.0/23"]


def test_known_ids_read_the_persisted_script():
    old = pol(rules=[{"port": 8080, "comment": "old"}])
    new = pol()
    known = nftables.known_ids(new, nftables.render(old))
    old_line = next(ln for ln in nftables.lines(old) if "8080" in ln.text)
    assert known[old_line.id] == "input: tcp dport 8080 accept"


def test_restore_script_rebuilds_what_was_saved():
    saved = "table inet bulwark {\n\tchain input {\n\t}\n}\n"
    script = nftables.restore_script(saved)
    assert script.index("delete table inet bulwark") < script.index("table inet bulwark {\n")
    empty = nftables.restore_script("")
    assert empty.rstrip().endswith("delete table inet bulwark")


def _nft_can_check():
    nft = shutil.which("nft") or "/usr/sbin/nft"
    try:
        r = subprocess.run(
            [nft, "-c", "-f", "-"],
            input="table inet bulwark_probe {}\n",
            text=True,
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return nft if r.returncode == 0 else None


@pytest.mark.parametrize(
    "opts",
    [
        {},
        {"ssh_restricted": False, "default_outgoing": "drop"},
        FIXTURE_POLICY,
        {
            "docker": True,
            "sets": {"a": ["10.0.0.0/8", "2001:db8::/32"]},
            "rules": [
                {
                    "port": "8000-8100",
                    "proto": ["tcp", "udp"],
                    "sources": ["@a", "192.0.2.9"],
                    "rate_limit": "5/second",
                    "interface": "eth0",
                    "comment": "app",
                },
                {"direction": "routed", "port": 8080},
                {"direction": "out", "port": 53, "proto": "udp"},
            ],
        },
    ],
)
def test_nft_accepts_the_script(opts):
    """nft -c parses and checks the script against the kernel without committing (skipped where it cannot)."""
    nft = _nft_can_check()
    if not nft:
        pytest.skip("nft -c is not usable here")
    script = nftables.render(model.normalise({"admin_networks": ["192.0.2.0/24"], **opts}))
    r = subprocess.run([nft, "-c", "-f", "-"], input=script, text=True, capture_output=True, check=False)
    assert r.returncode == 0, r.stderr
