import ipaddress

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.firewall import model

ADMIN = ["192.0.2.0/24"]


def pol(**kw):
    kw.setdefault("admin_networks", ADMIN)
    return model.normalise(kw)


def test_defaults_are_default_deny_in_and_routed_allow_out():
    p = pol()
    assert (p.incoming, p.routed, p.outgoing) == ("drop", "drop", "accept")
    assert p.ssh_port == 22 and p.ssh_restricted
    assert p.ssh_rate_limit == "10/minute" and p.ssh_burst == 5


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"port": 70000}, r"rules\[0\]\.port: 70000 is not a port"),
        ({"port": 0}, r"rules\[0\]\.port: 0 is not a port"),
        ({"port": "80-70000"}, r"rules\[0\]\.port: 70000 is not a port"),
        ({"port": "90-80"}, r"rules\[0\]\.port: '90-80' is an empty range"),
        ({"port": "gopher-plus"}, r"rules\[0\]\.port: 'gopher-plus' is not a port"),
        ({"port": True}, r"rules\[0\]\.port"),
        ({"port": 80, "proto": "sctp"}, r"rules\[0\]\.proto: 'sctp' is not a protocol"),
        ({"port": 80, "proto": "icmp"}, r"rules\[0\]\.proto: ports need tcp or udp"),
        (
            {"port": 80, "sources": ["10.0.0.300/8"]},
            r"rules\[0\]\.sources\[0\]: '10.0.0.300/8' is not a CIDR",
        ),
        ({"port": 80, "sources": ["10.0.0.1/8"]}, r"rules\[0\]\.sources\[0\]: .*host bits set.*10.0.0.0/8"),
        ({"port": 80, "sources": ["@nope"]}, r"rules\[0\]\.sources\[0\]: '@nope' names no address set"),
        ({"port": 80, "portt": 1}, r"rules\[0\]\.portt: unknown option"),
        ({"port": 80, "direction": "sideways"}, r"rules\[0\]\.direction"),
        ({"port": 80, "action": "reject"}, r"rules\[0\]\.action"),
        ({"port": 80, "rate_limit": "fast"}, r"rules\[0\]\.rate_limit: 'fast' is not a rate"),
        ({"port": 80, "burst": 3}, r"rules\[0\]\.burst: needs rate_limit"),
        ({"port": 80, "comment": 'say "hi"'}, r"rules\[0\]\.comment"),
        ({"port": 80, "interface": "eth0; drop"}, r"rules\[0\]\.interface"),
        ({"proto": ["any", "tcp"]}, r"rules\[0\]\.proto: 'any' cannot"),
    ],
)
def test_bad_rules_name_the_option(rule, message):
    with pytest.raises(model.PolicyError, match=message):
        pol(rules=[rule])


def test_error_names_the_index_of_the_bad_rule():
    with pytest.raises(model.PolicyError, match=r"^rules\[2\]\.port: 70000 is not a port$"):
        pol(rules=[{"port": 22}, {"port": 80}, {"port": 70000}])


def test_port_forms_and_service_names():
    p = pol(
        rules=[{"port": "https"}, {"port": "8000-8100"}, {"port": "53"}, {"port": "dns"}, {"port": [80, 443]}]
    )
    r = p.rules
    assert (r[0].ports, r[0].protos) == (((443, 443),), ("tcp",))
    assert r[1].ports == ((8000, 8100),)
    assert r[2].ports == ((53, 53),) and r[2].protos == ("tcp",)
    assert r[3].protos == ("tcp", "udp")
    assert r[4].ports == ((80, 80), (443, 443))


def test_protocol_without_port():
    p = pol(rules=[{"proto": "icmp"}, {"proto": ["udp"], "sources": ["10.0.0.0/8"]}, {}])
    assert p.rules[0].protos == ("icmp",) and p.rules[0].ports == ()
    assert p.rules[2].protos == ("any",)


def test_sources_are_collapsed_per_family():
    p = pol(
        rules=[
            {"port": 80, "sources": ["10.0.0.0/25", "10.0.0.128/25", "10.0.0.5", "2001:db8::/48", "@office"]}
        ],
        sets={"office": ["198.51.100.0/24"]},
    )
    r = p.rules[0]
    assert [str(n) for n in r.sources] == ["10.0.0.0/24", "2001:db8::/48"]
    assert r.sets == ("office",)


def test_sets_of_any_size_are_merged_and_split_by_family():
    nets = [f"10.{i // 256}.{i % 256}.0/24" for i in range(10000)] + ["2001:db8::/32", "2001:db8:1::/48"]
    p = pol(sets={"big": nets})
    v4, v6 = p.sets["big"]
    assert sum(n.num_addresses for n in v4) == 10000 * 256
    assert v6 == [ipaddress.ip_network("2001:db8::/32")]
    assert all(a.supernet_of(b) is False or a == b for a in v4 for b in v4[:3])


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        ({"Bad-Name": []}, r"sets\.Bad-Name: a set name"),
        ({"admin": ["10.0.0.0/8"]}, r"sets\.admin: is reserved"),
        ({"ok": ["10.0.0.0/33"]}, r"sets\.ok\[0\]: '10.0.0.0/33' is not a CIDR"),
        ({"ok": "10.0.0.0/8 and more"}, r"sets\.ok\[0\]"),
    ],
)
def test_bad_sets(sets, message):
    with pytest.raises(model.PolicyError, match=message):
        pol(sets=sets)


def test_empty_admin_networks_while_ssh_restricted_is_refused():
    with pytest.raises(model.PolicyError, match=r"^admin_networks: is empty while SSH is restricted"):
        model.normalise({"admin_networks": []})


def test_empty_admin_networks_is_fine_when_ssh_is_open():
    p = model.normalise({"admin_networks": [], "ssh_restricted": False})
    assert not p.ssh_restricted


def test_bad_admin_network_is_named():
    with pytest.raises(model.PolicyError, match=r"admin_networks\[1\]: 'x' is not a CIDR"):
        model.normalise({"admin_networks": ["10.0.0.0/8", "x"]})


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ({"default_incoming": "reject"}, r"default_incoming: 'reject'"),
        ({"ssh_port": 70000}, r"ssh_port: 70000 is not a port"),
        ({"ssh_port": "https"}, r"ssh_port: 'https' is not a port number"),
        ({"ssh_rate_limit": "10 per minute"}, r"ssh_rate_limit"),
        ({"ssh_burst": 0}, r"ssh_burst"),
        ({"unknown": 1}, r"policy\.unknown: unknown option"),
        ({"docker_interfaces": ["a b"]}, r"docker_interfaces\[0\]"),
        ({"rules": "port 22"}, r"rules\[0\]"),
    ],
)
def test_bad_policy_options(opts, message):
    with pytest.raises(model.PolicyError, match=message):
        pol(**opts)


def test_ssh_rate_limit_can_be_disabled():
    p = pol(ssh_rate_limit=None, ssh_restricted=False)
    assert p.ssh_rate_limit is None and p.ssh_burst is None


def test_rate_limit_defaults_its_burst_and_is_for_incoming_accepts_only():
    assert pol(rules=[{"port": 53, "proto": "udp", "rate_limit": "30/second"}]).rules[0].burst == 5
    with pytest.raises(model.PolicyError, match=r"rules\[0\]\.rate_limit: only incoming"):
        pol(rules=[{"port": 53, "direction": "out", "rate_limit": "30/second"}])


def test_docker_needs_a_routed_drop_policy_to_matter():
    assert pol(docker=True).docker
    assert not pol(docker=True, default_routed="accept").docker


def test_as_dict_summarises_sets_by_size():
    d = pol(sets={"a": ["10.0.0.0/8", "2001:db8::/32"]}).as_dict()
    assert d["sets"] == {"a": 2}
    assert d["admin_networks"] == ["192.0.2.0/24"]


def test_services_are_open_rules_before_the_detailed_ones():
    p = pol(services=["https", 8080, "9000-9100"], rules=[{"port": 5432, "sources": ["10.0.0.0/8"]}])
    assert [r.ports for r in p.rules] == [((443, 443),), ((8080, 8080),), ((9000, 9100),), ((5432, 5432),)]
    assert p.rules[0].comment == "service https" and p.service_count == 3


@pytest.mark.parametrize(
    ("services", "message"),
    [
        ([70000], r"^services\[0\]\.port: 70000 is not a port$"),
        (["http", "nosuch"], r"^services\[1\]\.port: 'nosuch' is not a port"),
        ([{"port": 80}], r"^services\[0\]: .* is not a port or a service name"),
    ],
)
def test_bad_services_are_named(services, message):
    with pytest.raises(model.PolicyError, match=message):
        pol(services=services)


# Every value rendered into nft or iptables-restore: control characters are refused wherever they are, by
# the option and index that carries them.
@pytest.mark.parametrize(
    ("opts", "message"),
    [
        (
            {"rules": [{"port": 80, "comment": "web\nserver"}]},
            "rules[0].comment: contains a control character (U+000A)",
        ),
        (
            {"rules": [{"port": 80, "interface": "eth0\n"}]},
            "rules[0].interface: contains a control character (U+000A)",
        ),
        ({"rules": [{"port": "80\n"}]}, "rules[0].port: contains a control character (U+000A)"),
        (
            {"rules": [{}, {"sources": ["10.0.0.0/8\r"]}]},
            "rules[1].sources[0]: contains a control character (U+000D)",
        ),
        ({"rules": [{"comment": "tab\there"}]}, "rules[0].comment: contains a control character (U+0009)"),
        ({"rules": [{"comment": "esc\x1b[31m"}]}, "rules[0].comment: contains a control character (U+001B)"),
        ({"rules": [{"comment": "del\x7f"}]}, "rules[0].comment: contains a control character (U+007F)"),
        ({"rules": [{"comment": "nul\x00"}]}, "rules[0].comment: contains a control character (U+0000)"),
        ({"rules": [{"comment": "abc\u202edef"}]}, "rules[0].comment: contains a control character (U+202E)"),
        (
            {"rules": [{"comment": "line\u2028two"}]},
            "rules[0].comment: contains a control character (U+2028)",
        ),
        ({"sets": {"office\n": []}}, "sets.'office\\n': contains a control character (U+000A)"),
        ({"sets": {"office": ["10.0.0.0/8\n"]}}, "sets.office[0]: contains a control character (U+000A)"),
        ({"admin_networks": ["192.0.2.0/24\n"]}, "admin_networks[0]: contains a control character (U+000A)"),
        ({"services": [80, "443\n"]}, "services[1]: contains a control character (U+000A)"),
        ({"ssh_rate_limit": "10/minute\n"}, "ssh_rate_limit: contains a control character (U+000A)"),
        ({"docker_interfaces": ["docker0\n"]}, "docker_interfaces[0]: contains a control character (U+000A)"),
    ],
)
def test_control_characters_are_refused_in_every_value(opts, message):
    opts.setdefault("admin_networks", ADMIN)
    with pytest.raises(model.PolicyError) as exc:
        model.normalise(opts)
    assert str(exc.value) == message + "; none is allowed in a firewall value"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"interface": "eth0\n"}, r"^rules\[0\]\.interface: 'eth0\\n' is not an interface name \("),
        ({"port": "80-81\n"}, None),  # stripped, then the whole value matched: a range
    ],
)
def test_names_match_the_whole_value_not_up_to_a_trailing_newline(raw, message):
    # normalise() refuses control characters first; the patterns must hold on their own too.
    if message is None:
        assert model.normalise_rule(raw, "rules[0]", {}).ports == ((80, 81),)
        return
    with pytest.raises(model.PolicyError, match=message):
        model.normalise_rule(raw, "rules[0]", {})


def test_digits_that_are_not_ascii_are_not_a_port():
    for value in ("²", "٢٢", "22-٢٣"):
        with pytest.raises(
            model.PolicyError, match=r"^rules\[0\]\.port: .* is not a port, a range or a known"
        ):
            pol(rules=[{"port": value}])
    with pytest.raises(model.PolicyError, match=r"^ssh_port: '٢٢' is not a port"):
        pol(ssh_port="٢٢")


def test_a_zone_index_is_refused_where_python_would_keep_it_verbatim():
    assert str(ipaddress.ip_network('fe80::%x"}/64')) == 'fe80::%x"}/64'  # what would be rendered
    with pytest.raises(model.PolicyError) as exc:
        pol(admin_networks=['fe80::%x"}/64'])
    assert (
        str(exc.value)
        == "admin_networks[0]: 'fe80::%x\"}/64' has a zone index (%...); a firewall rule takes no zone"
    )


def test_comments_are_limited_in_utf8_bytes_as_nft_counts_them():
    assert model.COMMENT_BYTES == 114
    assert pol(rules=[{"comment": "x" * 114}]).rules[0].comment == "x" * 114
    assert pol(rules=[{"comment": "é" * 57}]).rules[0].comment == "é" * 57  # 114 bytes
    with pytest.raises(model.PolicyError) as exc:
        pol(rules=[{"comment": "é" * 58}])
    assert str(exc.value) == "rules[0].comment: is 116 bytes in UTF-8; nft keeps 114 of the operator's"
    with pytest.raises(model.PolicyError, match=r"^rules\[0\]\.comment: is 115 bytes"):
        pol(rules=[{"comment": "x" * 115}])


@pytest.mark.parametrize(
    "name", ["eth0", "va*", "br-*", "eth0.100", "w@t", "abcdefghijklmno", "abcdefghijklmn*", "_x"]
)
def test_interface_names_every_backend_writes_as_one_token(name):
    assert pol(rules=[{"port": 80, "interface": name}]).rules[0].interface == name
    assert pol(docker=True, docker_interfaces=[name]).docker_interfaces == (name,)


def test_iptables_wildcard_is_refused_naming_the_spelling_every_backend_reads():
    with pytest.raises(model.PolicyError) as exc:
        pol(rules=[{"port": 80}, {"port": 22, "interface": "v+", "action": "drop"}])
    assert str(exc.value) == (
        "rules[1].interface: 'v+' ends in '+', iptables' wildcard, which nftables reads as a plain "
        "character: write 'v*' (a trailing * matches any suffix on every backend)"
    )
    with pytest.raises(model.PolicyError, match=r"^docker_interfaces\[1\]: 'br\+' ends in '\+'"):
        pol(docker=True, docker_interfaces=["docker0", "br+"])


@pytest.mark.parametrize(
    "name",
    [
        "abcdefghijklmnop",  # 16: longer than the kernel's names
        "abcdefghijklmno*",  # 16 with the wildcard: nft and iptables refuse it
        "*",  # "any interface" is no interface option at all
        "eth*0",  # the wildcard only trails
        "eth0:1",  # an alias, not an interface (the kernel refuses ':')
        ".",
        "..",
        "-j",  # would read as an option of iptables or ufw
        ".eth0",
        "e+th",
        "eth 0",
        "eth/0",
        'eth0"',
        "",
    ],
)
def test_interface_names_no_backend_takes_as_one_name_are_refused(name):
    with pytest.raises(model.PolicyError, match=r"^rules\[0\]\.interface: "):
        pol(rules=[{"port": 80, "interface": name}])


@pytest.mark.parametrize("name", ["rl0", "rl12", "rlssh"])
def test_set_names_of_the_rate_limit_meters_are_reserved(name):
    with pytest.raises(model.PolicyError, match=rf"^sets\.{name}: is reserved \(the per-source rate limits"):
        pol(sets={name: ["10.0.0.0/8"]})
    assert set(pol(sets={"rlx": ["10.0.0.0/8"], "rl0a": ["10.0.0.0/8"]}).sets) == {"rlx", "rl0a"}


def test_rates_and_bursts_are_held_to_what_every_backend_counts_exactly():
    assert pol(rules=[{"port": 80, "rate_limit": "1000000/second", "burst": 100000}]).rules[0].burst == 100000
    with pytest.raises(model.PolicyError, match=r"^rules\[0\]\.rate_limit: '1000001/second' is faster than"):
        pol(rules=[{"port": 80, "rate_limit": "1000001/second"}])
    with pytest.raises(model.PolicyError) as exc:
        pol(rules=[{"port": 80, "rate_limit": "2/day", "burst": 3}])
    assert str(exc.value) == (
        "rules[0].burst: 3 packets at 2/day take more than a day to earn, more than the iptables backend's "
        "hashlimit counts: at most 2"
    )
    assert pol(rules=[{"port": 80, "rate_limit": "1/second", "burst": 86400}]).rules[0].burst == 86400
    # the default burst (5) is held to the rate; one the operator gives is refused by name
    assert pol(rules=[{"port": 80, "rate_limit": "1/day"}]).rules[0].burst == 1
    with pytest.raises(model.PolicyError, match=r"^ssh_burst: 5 packets at 1/day take more than a day"):
        pol(ssh_restricted=False, ssh_rate_limit="1/day", ssh_burst=5)
    with pytest.raises(model.PolicyError, match=r"^ssh_rate_limit: '9999999/second' is faster than"):
        pol(ssh_restricted=False, ssh_rate_limit="9999999/second")
