"""The iptables parser on real `iptables-save`, `ip6tables-save` and `ipset save` output of both releases.

Captured on lab hosts (iptables-nft: 1.8.9 on Debian 12, 1.8.11 on Debian 13) set up as an
iptables-persistent host with Docker: /etc/iptables/rules.v{4,6} with INPUT and FORWARD dropped and lo,
established flows, SSH and ping admitted (netfilter-persistent loads them at boot), then Debian's docker.io
with a container published on 8081, and fail2ban's iptables-multiport chain with one ban. The host is a
container on a user-defined Docker network, so its nat table also has Docker's embedded DNS rules.

- iptables-save-<release>-persistent-docker.v4/.v6: that host before bulwark;
- iptables-save-<release>-bulwark.v4/.v6 and ipset-save-<release>-bulwark: after the restore scripts of
  POLICY were applied to it (ipset restore, then iptables-restore --noflush, purge off);
- iptables-save-bookworm-legacy-persistent / -legacy-bulwark: the same with iptables-legacy (1.8.9) and
  without Docker, before and after.
"""

from pathlib import Path

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.firewall import iptables, model

FIXTURES = Path(__file__).parent / "fixtures"
RELEASES = ("bookworm", "trixie")
BEFORE = [
    ("bookworm", "persistent-docker"),
    ("trixie", "persistent-docker"),
    ("bookworm", "legacy-persistent"),
]
AFTER = [("bookworm", "bulwark"), ("trixie", "bulwark"), ("bookworm", "legacy-bulwark")]
POLICY = {
    "admin_networks": ["172.30.2.1/32", "2001:db8:a::/48"],
    "sets": {"office": ["172.30.2.20/32", "2001:db8::/48"]},
    "rules": [{"port": 8080}, {"port": 9000, "sources": ["@office"], "comment": "office only"}],
    "docker": True,
}
# What the operator's rules.v4 / rules.v6 admit: foreign to bulwark, as iptables-save prints them.
PERSISTENT = {
    4: [
        "INPUT -i lo -j ACCEPT",
        "INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "INPUT -p tcp -m tcp --dport 22 -j ACCEPT",
        "INPUT -p icmp -m icmp --icmp-type 8 -j ACCEPT",
    ],
    6: [
        "INPUT -i lo -j ACCEPT",
        "INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "INPUT -p ipv6-icmp -j ACCEPT",
        "INPUT -p tcp -m tcp --dport 22 -j ACCEPT",
    ],
}


def saved(release, state, family):
    return iptables.parse_save((FIXTURES / f"iptables-save-{release}-{state}.v{family}").read_text())


@pytest.mark.parametrize(("release", "state"), BEFORE)
@pytest.mark.parametrize("family", [4, 6])
def test_a_persistent_host_reads_as_its_policies_and_foreign_accepts(release, state, family):
    s = saved(release, state, family)
    assert {c: s.policies[c] for c in ("INPUT", "FORWARD", "OUTPUT")} == {
        "INPUT": "DROP",
        "FORWARD": "DROP",
        "OUTPUT": "ACCEPT",
    }
    # Docker's FORWARD rules (its chains, docker0) and fail2ban's jump cooperate: only the operator's accepts
    # are foreign. The nat table (Docker's DNAT and embedded DNS) is not read at all.
    assert s.foreign == PERSISTENT[family]
    assert s.owned == {}
    assert not any("DOCKER_OUTPUT" in r or "MASQUERADE" in r for rules in s.rules.values() for r in rules)


def test_the_ipv4_filter_table_is_read_rule_by_rule():
    s = saved("trixie", "persistent-docker", 4)
    assert s.rules["INPUT"][0] == "INPUT -p tcp -m multiport --dports 22 -j f2b-sshd"
    assert s.rules["FORWARD"] == [
        "FORWARD -j DOCKER-USER",
        "FORWARD -j DOCKER-ISOLATION-STAGE-1",
        "FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "FORWARD -o docker0 -j DOCKER",
        "FORWARD -i docker0 ! -o docker0 -j ACCEPT",
        "FORWARD -i docker0 -o docker0 -j ACCEPT",
    ]
    assert s.policies["DOCKER-USER"] == "-" and s.policies["f2b-sshd"] == "-"


@pytest.mark.parametrize(("release", "state"), BEFORE)
@pytest.mark.parametrize("family", [4, 6])
def test_before_bulwark_the_live_text_shows_the_jumps_missing(release, state, family):
    text = iptables.live_canonical(saved(release, state, family), {}, family)
    assert text == (
        f"iptables (IPv{family}) filter\n"
        "policy INPUT DROP\npolicy FORWARD DROP\npolicy OUTPUT ACCEPT\n"
        "jump INPUT -> BULWARK-INPUT missing\n"
        "jump FORWARD -> BULWARK-FORWARD missing\n"
        "jump OUTPUT -> BULWARK-OUTPUT missing\n"
    )


@pytest.mark.parametrize(("release", "state"), BEFORE)
@pytest.mark.parametrize("family", [4, 6])
def test_the_purge_deletes_exactly_the_foreign_accepts_as_saved(release, state, family):
    p = model.normalise(POLICY)
    script = iptables.restore_script(p, family, live=saved(release, state, family))
    deletes = [line for line in script.splitlines() if line.startswith("-D ")]
    assert deletes == [f"-D {spec}" for spec in PERSISTENT[family]]
    assert [line for line in script.splitlines() if line.startswith("-I ")] == [
        "-I INPUT 1 -j BULWARK-INPUT",
        "-I FORWARD 1 -j BULWARK-FORWARD",
        "-I OUTPUT 1 -j BULWARK-OUTPUT",
    ]


@pytest.mark.parametrize(("release", "state"), AFTER)
@pytest.mark.parametrize("family", [4, 6])
def test_after_bulwark_every_owned_rule_reads_back_by_its_id(release, state, family):
    p = model.normalise(POLICY)
    s = saved(release, state, family)
    assert None not in [rid for ids in s.owned.values() for rid in ids]
    assert iptables.live_canonical(s, iptables.known_ids(p, family), family) == iptables.canonical(p, family)
    assert s.foreign == PERSISTENT[family]  # purge was off: reported, left in place
    # the next run changes nothing in the owned chains: the jumps are first, nothing to insert again
    script = iptables.restore_script(p, family, live=s, purge=False)
    assert not [line for line in script.splitlines() if line.startswith(("-I ", "-D "))]


@pytest.mark.parametrize("release", RELEASES)
def test_a_rule_added_by_hand_to_an_owned_chain_shows(release):
    p = model.normalise(POLICY)
    text = (FIXTURES / f"iptables-save-{release}-bulwark.v4").read_text()
    text = text.replace(
        "-A BULWARK-INPUT -i lo ",
        "-A BULWARK-INPUT -p tcp -m tcp --dport 7070 -j ACCEPT\n-A BULWARK-INPUT -i lo ",
    )
    live = iptables.live_canonical(iptables.parse_save(text), iptables.known_ids(p, 4), 4)
    assert live.splitlines()[7] == "input: <rule not written by bulwark>"
    assert live != iptables.canonical(p, 4)


@pytest.mark.parametrize("release", RELEASES)
def test_ipset_save_reads_as_the_sets(release):
    text = (FIXTURES / f"ipset-save-{release}-bulwark").read_text()
    assert iptables.parse_ipset_save(text) == {
        "bw-admin-4": ["172.30.2.1/32"],
        "bw-admin-6": ["2001:db8:a::/48"],
        "bw-office-4": ["172.30.2.20/32"],
        "bw-office-6": ["2001:db8::/48"],
    }
    p = model.normalise(POLICY)
    assert iptables.live_sets_canonical(iptables.parse_ipset_save(text), p) == iptables.sets_canonical(p)
