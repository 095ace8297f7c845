from pathlib import Path

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.firewall import model, ufw

FIXTURES = Path(__file__).parent / "fixtures"


def pol(**kw):
    kw.setdefault("admin_networks", ["172.30.2.1/32"])
    return model.normalise(kw)


# As ufw 0.36.2 writes them (seen on Debian 13).
USER_RULES = """*filter
### RULES ###

### tuple ### allow tcp 22 0.0.0.0/0 any 10.0.0.0/8 in_eth0 comment=62772068656c6c6f
-A ufw-user-input -i eth0 -p tcp --dport 22 -s 10.0.0.0/8 -j ACCEPT -m comment --comment 'bw hello'

### tuple ### allow udp 8000:8100 0.0.0.0/0 any 0.0.0.0/0 in
-A ufw-user-input -p udp -m multiport --dports 8000:8100 -j ACCEPT

### END RULES ###
COMMIT
"""


def test_parse_tuples():
    assert ufw.parse_tuples(USER_RULES) == [
        "allow tcp 22 0.0.0.0/0 any 10.0.0.0/8 in_eth0 comment=62772068656c6c6f",
        "allow udp 8000:8100 0.0.0.0/0 any 0.0.0.0/0 in",
    ]


def test_entries_render_tuples_as_ufw_writes_them():
    p = pol(
        services=[8080],
        rules=[
            {"port": 22, "sources": ["10.0.0.0/8"], "interface": "eth0", "comment": "hello"},
            {"port": "8000-8100", "proto": "udp"},
            {"port": 443, "sources": ["2001:db8::/32"]},
            {"direction": "out", "port": 53, "proto": "udp", "destinations": ["8.8.8.8"]},
            {"action": "drop", "sources": ["1.2.3.4"]},
        ],
    )
    want = ufw.wanted_tuples(p)
    assert (
        want[4][0]
        == "allow tcp 22 0.0.0.0/0 any 172.30.2.1 in comment=" + b"bulwark SSH from the admin networks".hex()
    )
    assert "allow udp 8000:8100 0.0.0.0/0 any 0.0.0.0/0 in comment=" + b"bulwark".hex() in want[4]
    assert "allow tcp 22 0.0.0.0/0 any 10.0.0.0/8 in_eth0 comment=" + b"bulwark hello".hex() in want[4]
    assert "allow udp 53 8.8.8.8 any 0.0.0.0/0 out comment=" + b"bulwark".hex() in want[4]
    assert "deny any any 0.0.0.0/0 any 1.2.3.4 in comment=" + b"bulwark".hex() in want[4]
    assert any(t.startswith("allow tcp 443 ::/0 any 2001:db8::/32 in") for t in want[6])
    assert not any("443" in t for t in want[4])
    assert any(t.startswith("allow tcp 8080 ::/0 any ::/0 in") for t in want[6])


def test_commands_add_missing_rules_once_and_set_defaults():
    p = pol(services=[8080], default_outgoing="drop")
    cmds = ufw.commands(p, {4: [], 6: []})
    assert ["allow", "in", "from", "172.30.2.1", "to", "any", "port", "22", "proto", "tcp", "comment",
            "bulwark SSH from the admin networks"] in cmds  # fmt: skip
    assert sum(1 for c in cmds if "8080" in c) == 1  # one command makes both the IPv4 and the IPv6 rule
    assert ["default", "deny", "incoming"] in cmds and ["default", "deny", "outgoing"] in cmds


def test_commands_delete_what_is_not_declared():
    p = pol()
    live = {4: ufw.wanted_tuples(p)[4] + ["allow tcp 6666 0.0.0.0/0 any 0.0.0.0/0 in"], 6: []}
    cmds = ufw.commands(p, live)
    assert [
        "--force",
        "delete",
        "allow",
        "in",
        "from",
        "any",
        "to",
        "any",
        "port",
        "6666",
        "proto",
        "tcp",
    ] in cmds
    assert not any(c[:1] == ["allow"] for c in cmds)


def test_tuple_args_round_trip():
    # tuple_args reads a tuple line back into the `ufw delete` arguments that match it
    assert ufw.tuple_args("allow tcp 22 0.0.0.0/0 any 10.0.0.0/8 in_eth0 comment=62772068656c6c6f") == [
        "allow", "in", "on", "eth0", "from", "10.0.0.0/8", "to", "any", "port", "22", "proto", "tcp",
    ]  # fmt: skip
    for entry in ufw.entries(pol(rules=[{"port": 22, "sources": ["10.0.0.0/8"], "interface": "eth0"}])):
        args = ufw.tuple_args(entry.tuple())
        assert args == [a for a in entry.args() if a not in ("comment", entry.comment)]


# The policy the ufw fixtures were written for: ufw 0.36.2 (Debian 12) wrote them from the commands
# `ufw.commands` gives for it (ufw allow in from 172.30.2.1 to any port 22 proto tcp comment ..., and so on).
UFW_FIXTURE_POLICY = {
    "admin_networks": ["172.30.2.1/32"],
    "default_outgoing": "drop",
    "rules": [
        {"port": 22, "sources": ["10.0.0.0/8"], "interface": "eth0", "comment": "hello"},
        {"port": "8000-8100", "proto": "udp"},
        {"port": 443, "sources": ["2001:db8::/32"]},
        {"action": "drop", "sources": ["1.2.3.4"]},
        {"direction": "out", "port": 53, "proto": "udp", "destinations": ["8.8.8.8"]},
    ],
}
BULWARK = b"bulwark".hex()
UFW_FIXTURE_CANONICAL = f"""ufw enabled
default DEFAULT_FORWARD_POLICY DROP
default DEFAULT_INPUT_POLICY DROP
default DEFAULT_OUTPUT_POLICY DROP
IPv4: allow tcp 22 0.0.0.0/0 any 172.30.2.1 in comment={b"bulwark SSH from the admin networks".hex()}
IPv4: allow tcp 22 0.0.0.0/0 any 10.0.0.0/8 in_eth0 comment={b"bulwark hello".hex()}
IPv4: allow udp 8000:8100 0.0.0.0/0 any 0.0.0.0/0 in comment={BULWARK}
IPv4: deny any any 0.0.0.0/0 any 1.2.3.4 in comment={BULWARK}
IPv4: allow udp 53 8.8.8.8 any 0.0.0.0/0 out comment={BULWARK}
IPv6: allow udp 8000:8100 ::/0 any ::/0 in comment={BULWARK}
IPv6: allow tcp 443 ::/0 any 2001:db8::/32 in comment={BULWARK}
"""


def ufw_fixture(name):
    return (FIXTURES / f"ufw-0.36.2-{name}").read_text()


def test_live_ufw_files_read_as_the_policy_they_were_written_for():
    live = {4: ufw.parse_tuples(ufw_fixture("user.rules")), 6: ufw.parse_tuples(ufw_fixture("user6.rules"))}
    defaults = ufw.parse_defaults(ufw_fixture("default"))
    assert ufw.canonical(live, defaults, True) == UFW_FIXTURE_CANONICAL
    p = model.normalise(UFW_FIXTURE_POLICY)
    assert ufw.canonical(ufw.wanted_tuples(p), ufw.defaults(p), True) == UFW_FIXTURE_CANONICAL
    assert ufw.commands(p, live) == [
        ["default", "deny", "incoming"],
        ["default", "deny", "outgoing"],
        ["default", "deny", "routed"],
    ]


def test_canonical_tells_the_state_and_the_defaults_apart():
    live = {4: ufw.parse_tuples(ufw_fixture("user.rules")), 6: ufw.parse_tuples(ufw_fixture("user6.rules"))}
    defaults = ufw.parse_defaults(ufw_fixture("default"))
    assert ufw.canonical(live, defaults, False) == UFW_FIXTURE_CANONICAL.replace(
        "ufw enabled", "ufw disabled"
    )
    text = 'DEFAULT_INPUT_POLICY="ACCEPT"\nDEFAULT_OUTPUT_POLICY="ACCEPT"\nDEFAULT_FORWARD_POLICY="DROP"\n'
    assert ufw.parse_defaults(text) == {
        "DEFAULT_INPUT_POLICY": "ACCEPT",
        "DEFAULT_OUTPUT_POLICY": "ACCEPT",
        "DEFAULT_FORWARD_POLICY": "DROP",
    }


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ({"sets": {"a": ["10.0.0.0/8"]}}, r"^sets: the ufw backend has no address sets"),
        ({"rules": [{"port": 80, "rate_limit": "5/second"}]}, r"^rules\[0\]\.rate_limit"),
        ({"rules": [{"port": 80, "direction": "routed"}]}, r"^rules\[0\]\.direction"),
        ({"rules": [{"proto": "icmp"}]}, r"^rules\[0\]\.proto"),
        ({"rules": [{"port": 80, "sources": ["10.0.0.0/8", "192.168.0.0/16"]}]}, r"^rules\[0\]\.sources"),
        ({"ssh_restricted": False, "ssh_rate_limit": "3/minute"}, r"^ssh_rate_limit"),
        ({"docker": True}, r"^docker"),
    ],
)
def test_what_ufw_cannot_do_is_refused_by_name(opts, message):
    with pytest.raises(model.PolicyError, match=message):
        ufw.refuse(pol(**opts), {})


def test_icmp_echo_off_is_refused():
    with pytest.raises(model.PolicyError, match=r"^icmp_echo"):
        ufw.refuse(pol(), {"icmp_echo": False})


def test_rules_are_named_after_the_services():
    with pytest.raises(model.PolicyError, match=r"^rules\[0\]\.rate_limit"):
        ufw.refuse(pol(services=[80, 443], rules=[{"port": 81, "rate_limit": "1/second"}]), {})


def test_a_wildcard_interface_is_written_as_ufw_passes_it_to_iptables():
    [entry, _v6] = ufw.entries(pol(rules=[{"port": 22, "interface": "eth*"}]))[1:]
    assert entry.args()[:4] == ["allow", "in", "on", "eth+"]
    assert " 0.0.0.0/0 in_eth+ comment=" in entry.tuple()
