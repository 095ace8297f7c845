import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.firewall import guard, model


def pol(**kw):
    kw.setdefault("admin_networks", ["192.0.2.0/24", "2001:db8:a::/48"])
    return model.normalise(kw)


def test_admin_network_admits_the_controller():
    assert guard.check(pol(), "192.0.2.10", 22) == "admin_networks"
    assert guard.check(pol(), "2001:db8:a::5", 22) == "admin_networks"


def test_ipv4_mapped_controller_address_is_understood():
    assert guard.check(pol(), "::ffff:192.0.2.10", 22) == "admin_networks"


def test_controller_outside_the_admin_networks_is_refused_naming_what_is_missing():
    with pytest.raises(guard.Refused) as exc:
        guard.check(pol(), "203.0.113.7", 22)
    msg = str(exc.value)
    assert "203.0.113.7" in msg and "admin_networks" in msg and "bulwark_admin_networks" in msg
    assert "Nothing was applied" in msg


def test_open_ssh_admits_every_source():
    assert "ssh" in guard.check(pol(ssh_restricted=False), "203.0.113.7", 22)


def test_a_port_mismatch_is_named():
    with pytest.raises(guard.Refused, match=r"port 2222 but the policy opens SSH on port 22"):
        guard.check(pol(), "192.0.2.10", 2222)


def test_a_moved_ssh_port_is_followed():
    assert guard.check(pol(ssh_port=2222), "192.0.2.10", 2222) == "admin_networks"


def test_an_explicit_rule_can_admit_the_controller():
    p = pol(rules=[{"port": 22, "sources": ["203.0.113.0/24"]}])
    assert guard.check(p, "203.0.113.7", 22) == "rules[0]"


def test_a_rule_from_a_named_set_admits_the_controller():
    p = pol(sets={"ops": ["203.0.113.0/24"]}, rules=[{"port": "22", "sources": ["@ops"]}])
    assert guard.check(p, "203.0.113.7", 22) == "rules[0]"


def test_a_drop_rule_before_is_reported():
    p = pol(
        admin_networks=["10.0.0.0/8"],
        rules=[{"port": 22, "action": "drop", "sources": ["203.0.113.0/24"]}, {"port": 22}],
    )
    with pytest.raises(guard.Refused, match=r"rules\[0\] drops it"):
        guard.check(p, "203.0.113.7", 22)


def test_rules_that_do_not_match_do_not_admit():
    p = pol(
        rules=[
            {"port": 22, "proto": "udp"},
            {"port": 22, "direction": "out"},
            {"port": 23},
            {"port": 22, "sources": ["198.51.100.0/24"]},
            {"port": 22, "interface": "eth1"},
            {"port": 22, "destinations": ["192.0.2.1"]},
        ]
    )
    with pytest.raises(guard.Refused, match="default_incoming: drop"):
        guard.check(p, "203.0.113.7", 22, interface="eth0", local_address="192.0.2.2")


def test_interface_rules_match_when_the_interface_is_known():
    p = pol(rules=[{"port": 22, "interface": "eth*"}])
    assert guard.check(p, "203.0.113.7", 22, interface="eth0") == "rules[0]"
    with pytest.raises(guard.Refused, match=r"default_incoming: drop"):
        guard.check(p, "203.0.113.7", 22, interface="wg0")


# Unknown means refuse: a rule the guard cannot evaluate, and which would flip the verdict if it matched.
UNKNOWN_INTERFACE = (
    "rules[1]: cannot be evaluated against the controller's connection (interface unknown): if it matches "
    "it drops tcp from 203.0.113.7 to port 22, which decides whether the controller keeps SSH, and the "
    "lockout guard cannot tell whether it does (unknown means refuse). Drop its interface or destinations, "
    "or set guard: false (tests and emergencies only). Nothing was applied"
)


def test_a_drop_rule_on_an_unknown_interface_is_refused_by_name():
    p = pol(
        ssh_restricted=False,
        ssh_port=2222,
        services=[80],
        rules=[{"port": 80}, {"port": 22, "action": "drop", "interface": "eth1"}, {"port": 22}],
    )
    with pytest.raises(guard.Refused) as exc:
        guard.check(p, "203.0.113.7", 22, local_address="192.0.2.2")
    assert str(exc.value) == UNKNOWN_INTERFACE
    # Known, it is judged: another interface does not match, the same one drops the controller.
    assert guard.check(p, "203.0.113.7", 22, interface="eth0") == "rules[2]"
    with pytest.raises(guard.Refused, match=r"rules\[1\] drops it"):
        guard.check(p, "203.0.113.7", 22, interface="eth1")


def test_a_drop_rule_with_destinations_and_no_local_address_is_refused_by_name():
    p = pol(rules=[{"port": 22, "action": "drop", "destinations": ["192.0.2.1"]}, {"port": 22}])
    with pytest.raises(guard.Refused, match=r"^rules\[0\]: cannot be evaluated .*\(local address unknown\)"):
        guard.check(p, "203.0.113.7", 22, interface="eth0")
    assert guard.check(p, "203.0.113.7", 22, local_address="192.0.2.2") == "rules[1]"
    with pytest.raises(guard.Refused, match=r"rules\[0\] drops it"):
        guard.check(p, "203.0.113.7", 22, local_address="192.0.2.1")


def test_the_only_accept_rule_unknown_is_refused_as_unknown():
    p = pol(rules=[{"port": 22, "interface": "eth0", "destinations": ["192.0.2.1"]}])
    with pytest.raises(guard.Refused) as exc:
        guard.check(p, "203.0.113.7", 22)
    assert str(exc.value).startswith(
        "rules[0]: cannot be evaluated against the controller's connection (interface unknown, local "
        "address unknown): if it matches it admits tcp from 203.0.113.7 to port 22"
    )


def test_an_unknown_rule_that_cannot_change_the_verdict_is_no_reason_to_refuse():
    # An unknown accept before a known accept, an unknown drop before a known drop, rules after the deciding
    # one, and unknown rules for another port or source: none of them changes what happens to the controller.
    p = pol(
        admin_networks=["10.0.0.0/8"],
        rules=[
            {"port": 22, "interface": "eth0"},
            {"port": 22, "sources": ["198.51.100.0/24"], "action": "drop", "interface": "eth0"},
            {"port": 23, "action": "drop", "interface": "eth0"},
            {"port": 22},
            {"port": 22, "action": "drop", "interface": "eth0"},
        ],
    )
    assert guard.check(p, "203.0.113.7", 22) == "rules[3]"
    q = pol(rules=[{"port": 22, "action": "drop", "interface": "eth0"}, {"port": 22, "action": "drop"}])
    with pytest.raises(guard.Refused, match=r"rules\[1\] drops it"):
        guard.check(q, "203.0.113.7", 22)


def test_the_admin_networks_come_before_every_rule():
    p = pol(rules=[{"port": 22, "action": "drop", "interface": "eth0", "destinations": ["192.0.2.1"]}])
    assert guard.check(p, "192.0.2.10", 22) == "admin_networks"


def test_default_incoming_accept_admits():
    assert guard.check(pol(default_incoming="accept"), "203.0.113.7", 22) == "default_incoming: accept"


@pytest.mark.parametrize(
    ("address", "port", "message"),
    [
        (None, 22, r"^controller_address: .*guard: false"),
        ("", 22, r"^controller_address"),
        ("not-an-ip", 22, r"controller_address: 'not-an-ip' is not an IP address"),
        ("192.0.2.1", None, r"^controller_port"),
    ],
)
def test_missing_controller_details_are_named(address, port, message):
    with pytest.raises(guard.Refused, match=message):
        guard.check(pol(), address, port)


def test_refused_is_a_policy_error():
    assert issubclass(guard.Refused, model.PolicyError)


def test_guard_names_services_and_rules_by_their_option():
    p = pol(services=[80, 22], rules=[{"port": 2222}])
    assert guard.check(p, "203.0.113.7", 22) == "services[1]"
    p = pol(ssh_port=2222, services=[80], rules=[{"port": 22}, {"port": 2222}])
    assert guard.check(p, "203.0.113.7", 2222) == "rules[1]"


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("va*", "va3", True),
        ("va*", "va", True),
        ("va*", "v", False),
        ("eth0", "eth0", True),
        ("eth0", "eth00", False),
        ("eth", "eth0", False),
        ("eth.1*", "eth.10", True),
        ("eth.1*", "ethx1", False),  # '.' is itself
    ],
)
def test_the_guard_matches_an_interface_as_every_backends_kernel_does(pattern, name, matches):
    """nft's "va*" and iptables' va+ both match any name starting with "va", and nothing else does."""
    assert model.interface_matches(pattern, name) is matches
    p = pol(
        admin_networks=["10.0.0.0/8"],
        rules=[{"port": 22, "interface": pattern, "action": "drop"}, {"port": 22}],
    )
    if matches:
        with pytest.raises(guard.Refused, match=r"rules\[0\] drops it"):
            guard.check(p, "203.0.113.7", 22, interface=name)
    else:
        assert guard.check(p, "203.0.113.7", 22, interface=name) == "rules[1]"
