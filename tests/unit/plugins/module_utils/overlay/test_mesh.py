import re

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.firewall import model as firewall_model
from ansible_collections.bulwark.hardening.plugins.module_utils.overlay import mesh

KEYS = {
    "a": "YUVwZQ3HUA8g9K3WPBOzpivTgtQBR8kXN7ceGCgZ1V4=",
    "b": "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
    "c": "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=",
    "d": "gN65BkIKy1eCE9pP1wdc8ROUtkHLF2PfAqYdyYBz6EA=",
}
SETTINGS = {"cidr": "10.99.0.0/24", "port": 51820}


def members(*names, **extra):
    out = []
    for n in names:
        m = {"name": n, "endpoint": f"192.0.2.{ord(n) - 96}", "public_key": KEYS[n]}
        m.update(extra.get(n, {}))
        out.append(m)
    return out


def test_addresses_are_stable_when_a_host_joins_or_the_order_changes():
    three = mesh.build(SETTINGS, members("a", "b", "c"))
    four = mesh.build(SETTINGS, members("d", "c", "b", "a"))
    for n in "abc":
        assert three.members[n].address == four.members[n].address
    assert len({m.address for m in four.members.values()}) == 4


def test_explicit_address_wins_and_is_never_reused():
    m = mesh.build(SETTINGS, members("a", "b", a={"address": "10.99.0.7"}))
    assert str(m.members["a"].address) == "10.99.0.7"
    assert str(m.members["b"].address) != "10.99.0.7"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"b": {"address": "10.98.0.1"}},
            r"b: overlay_address: 10\.98\.0\.1 is not a host address in bulwark_overlay_cidr",
        ),
        (
            {"a": {"address": "10.99.0.5"}, "b": {"address": "10.99.0.5"}},
            "b: overlay_address: 10.99.0.5 is already a's",
        ),
        ({"b": {"public_key": None}}, "b: its overlay public key is unknown"),
        ({"b": {"public_key": "short="}}, "b: public key: 'short=' is not a WireGuard public key"),
        ({"b": {"endpoint": "300.1.1.1"}}, "b: overlay_endpoint: '300.1.1.1' is not an IP address"),
        ({"b": {"endpoint": "192.0.2.2\n"}}, "b: overlay_endpoint: contains a control character"),
        (
            {"b": {"container_subnet": "10.100.1.0/24"}},
            "b: overlay_container_subnet: is set but bulwark_overlay_container_cidr",
        ),
    ],
)
def test_bad_member_names_the_host_and_option(extra, message):
    with pytest.raises(mesh.MeshError, match=message) as err:
        mesh.build(SETTINGS, members("a", "b", **extra))
    assert str(err.value).endswith("Nothing was applied")


def test_duplicate_member_and_bad_settings():
    with pytest.raises(mesh.MeshError, match="a: is listed twice"):
        mesh.build(SETTINGS, members("a", "a"))
    with pytest.raises(mesh.MeshError, match=r"bulwark_overlay_cidr: '10\.99\.0\.1/24' is not a CIDR"):
        mesh.build({"cidr": "10.99.0.1/24"}, members("a"))
    with pytest.raises(mesh.MeshError, match="bulwark_overlay_port: 70000 is not a port"):
        mesh.build({"cidr": "10.99.0.0/24", "port": 70000}, members("a"))
    with pytest.raises(mesh.MeshError, match="overlay_mtu"):
        mesh.build({"cidr": "10.99.0.0/24", "mtu": 576}, members("a"))


def test_missing_keys_allowed_when_not_required():
    m = mesh.build(SETTINGS, members("a", "b", b={"public_key": None}), require_keys=False)
    assert m.members["b"].public_key is None


CONTAINERS = {**SETTINGS, "container_cidr": "10.100.0.0/16", "container_prefix": 24}


def test_container_subnets_do_not_overlap_and_are_stable():
    three = mesh.build(CONTAINERS, members("a", "b", "c"))
    four = mesh.build(CONTAINERS, members("a", "b", "c", "d", d={"container_subnet": "10.100.0.0/20"}))
    subs = [m.container_subnet for m in four.members.values()]
    assert all(not x.overlaps(y) for i, x in enumerate(subs) for y in subs[i + 1 :])
    assert str(four.members["d"].container_subnet) == "10.100.0.0/20"
    for n in "abc":
        # a hashed subnet inside d's explicit one would have moved; outside it, none does
        if not three.members[n].container_subnet.overlaps(four.members["d"].container_subnet):
            assert three.members[n].container_subnet == four.members[n].container_subnet
    view = four.view("a")
    peer_b = next(p for p in view["peers"] if p["name"] == "b")
    assert peer_b["allowed_ips"] == [
        f"{four.members['b'].address}/32",
        str(four.members["b"].container_subnet),
    ]


def test_overlapping_explicit_subnets_name_both_hosts():
    with pytest.raises(mesh.MeshError, match=r"b: overlay_container_subnet: 10\.100\.1\.0/24 overlaps a's"):
        mesh.build(
            CONTAINERS,
            members(
                "a", "b", a={"container_subnet": "10.100.0.0/23"}, b={"container_subnet": "10.100.1.0/24"}
            ),
        )
    with pytest.raises(mesh.MeshError, match=r"bulwark_overlay_container_cidr: 10\.99\.0\.0/25 overlaps"):
        mesh.build({**SETTINGS, "container_cidr": "10.99.0.0/25"}, members("a"))


def test_full_mesh_view():
    m = mesh.build(SETTINGS, members("a", "b", "c"))
    view = m.view("a")
    assert view["address"] == f"{m.members['a'].address}/24"
    assert [p["name"] for p in view["peers"]] == ["b", "c"]
    assert view["peers"][0] == {
        "name": "b",
        "public_key": KEYS["b"],
        "allowed_ips": [f"{m.members['b'].address}/32"],
        "endpoint": "192.0.2.2:51820",
        "keepalive": 25,
    }
    assert not view["forwarding"]
    assert m.underlay_peers("a") == ["192.0.2.2", "192.0.2.3"]


def test_hub_and_spoke():
    m = mesh.build(SETTINGS, members("a", "b", "c", "d", c={"endpoint": None}, d={"endpoint": None}))
    assert m.hub == "a"
    spoke = m.view("c")
    assert [p["name"] for p in spoke["peers"]] == ["a"]
    assert spoke["peers"][0]["allowed_ips"] == ["10.99.0.0/24"]
    assert spoke["peers"][0]["keepalive"] == 25
    hub = m.view("a")
    assert hub["forwarding"]
    assert [p["name"] for p in hub["peers"]] == ["b", "c", "d"]
    assert hub["peers"][1]["endpoint"] is None
    assert hub["peers"][1]["keepalive"] == 0
    other = m.view("b")
    assert [p["name"] for p in other["peers"]] == ["a"]
    assert other["peers"][0]["allowed_ips"] == [f"{m.members[n].address}/32" for n in ("a", "c", "d")]
    # Spokes send from unknown addresses: only endpoints get a firewall hole.
    assert m.underlay_peers("a") == ["192.0.2.2"]
    assert m.underlay_peers("c") == ["192.0.2.1"]


def test_hub_errors():
    with pytest.raises(mesh.MeshError, match="bulwark_overlay_hub: 'z' is not a member"):
        mesh.build({**SETTINGS, "hub": "z"}, members("a", "b", b={"endpoint": None}))
    with pytest.raises(mesh.MeshError, match="bulwark_overlay_hub: b has no overlay_endpoint"):
        mesh.build({**SETTINGS, "hub": "b"}, members("a", "b", b={"endpoint": None}))
    with pytest.raises(mesh.MeshError, match="bulwark_overlay_hub: no member has an overlay_endpoint"):
        mesh.build(SETTINGS, members("a", a={"endpoint": None}))


def test_pool_exhausted():
    with pytest.raises(mesh.MeshError, match="no free address"):
        mesh.build({"cidr": "10.99.0.0/30"}, members("a", "b", "c"))


def test_default_mtu():
    assert mesh.default_mtu(1500) == 1420
    assert mesh.default_mtu(1300) == 1280


def test_members_from_inventory():
    hostvars = {
        "b": {"ansible_host": "192.0.2.2", "__overlay_key": {"public_key": KEYS["b"]}},
        "a": {"ansible_host": "192.0.2.1", "overlay_address": "10.99.0.9"},
        "c": {"ansible_host": "192.0.2.3", "overlay_endpoint": ""},
    }
    got = mesh.members_from_inventory(["c", "b", "a"], hostvars, {"a": KEYS["a"], "b": KEYS["d"]})
    assert got == [
        {"name": "a", "endpoint": "192.0.2.1", "endpoint_from": "ansible_host", "address": "10.99.0.9",
         "container_subnet": None, "public_key": KEYS["a"]},
        # this run's key wins over the registry's
        {"name": "b", "endpoint": "192.0.2.2", "endpoint_from": "ansible_host", "address": None,
         "container_subnet": None, "public_key": KEYS["b"]},
        {"name": "c", "endpoint": None, "address": None, "container_subnet": None, "public_key": None},
    ]  # fmt: skip
    with pytest.raises(mesh.MeshError, match="z: is in the overlay group but not in the inventory"):
        mesh.members_from_inventory(["z"], hostvars)


def test_firewall_part():
    m = mesh.build(SETTINGS, members("a", "b", "c"))
    part = mesh.firewall_part(m, "a", [8080, {"port": 53, "proto": "udp"}])
    assert part == {
        "sets": {"overlay_peers": ["192.0.2.2", "192.0.2.3"]},
        "rules": [
            {"port": 51820, "proto": "udp", "sources": ["@overlay_peers"],
             "comment": "overlay: WireGuard from the mesh's peers"},
            {"port": 8080, "interface": "wg0", "comment": "overlay service 8080"},
            {"port": 53, "proto": "udp", "interface": "wg0", "comment": "overlay service 53"},
        ],
    }  # fmt: skip
    hub = mesh.build(SETTINGS, members("a", "b", b={"endpoint": None}))
    # The hub's spokes have no address to admit; the spoke admits its hub's.
    assert mesh.firewall_part(hub, "a")["rules"][0] == {
        "port": 51820,
        "proto": "udp",
        "comment": "overlay: WireGuard from anywhere, for the hub's spokes behind NAT",
    }
    assert mesh.firewall_part(hub, "b")["sets"] == {"overlay_peers": ["192.0.2.1"]}
    assert mesh.firewall_part(hub, "a")["rules"][-1] == {
        "direction": "routed",
        "interface": "wg0",
        "destinations": ["10.99.0.0/24"],
        "comment": "overlay: the hub routes for its spokes",
    }
    alone = mesh.build(SETTINGS, members("a"))
    assert mesh.firewall_part(alone, "a") == {"sets": {}, "rules": []}


def test_firewall_part_is_a_valid_firewall_policy():
    from ansible_collections.bulwark.hardening.plugins.module_utils.firewall import model  # noqa: PLC0415

    part = mesh.firewall_part(mesh.build(SETTINGS, members("a", "b")), "a", [8080])
    policy = model.normalise({"admin_networks": ["192.0.2.100/32"], **part})
    assert [r.as_dict()["interface"] for r in policy.rules] == [None, "wg0"]
    assert policy.sets["overlay_peers"][0][0].compressed == "192.0.2.2/32"


def test_a_rotating_host_is_known_by_its_staged_key():
    hostvars = {
        "a": {
            "ansible_host": "192.0.2.1",
            "__overlay_key": {"public_key": KEYS["a"], "next_public_key": KEYS["d"]},
        }
    }
    assert mesh.members_from_inventory(["a"], hostvars, {"a": KEYS["b"]})[0]["public_key"] == KEYS["d"]


def test_container_subnets_are_routed_from_the_overlay_only():
    settings = {**SETTINGS, "container_cidr": "10.100.0.0/16"}
    m = mesh.build(settings, members("a", "b", b={"container_subnet": "10.100.7.0/24"}))
    part = mesh.firewall_part(m, "b")
    assert part["rules"][-1] == {
        "direction": "routed",
        "interface": "wg0",
        "sources": ["10.99.0.0/24", "10.100.0.0/16"],
        "destinations": ["10.100.7.0/24"],
        "comment": "overlay: the mesh reaches this host's containers",
    }
    from ansible_collections.bulwark.hardening.plugins.module_utils.firewall import model  # noqa: PLC0415

    routed = model.normalise({"admin_networks": ["192.0.2.100/32"], **part}).rules[-1].as_dict()
    assert routed["direction"] == "routed"
    assert routed["interface"] == "wg0"
    # a's peer entry for b carries b's container subnet, so a routes it over the tunnel
    assert m.view("a")["peers"][0]["allowed_ips"] == [f"{m.members['b'].address}/32", "10.100.7.0/24"]


@pytest.mark.parametrize("name", ["", "-lead", "a b", "x" * 64, "net\n"])
def test_a_bad_container_network_name_is_refused(name):
    with pytest.raises(mesh.MeshError, match="overlay_container_network"):
        mesh.build({**SETTINGS, "container_network": name}, members("a"))


# --- what names files on the host, checked whatever the state -------------------------------------------


@pytest.mark.parametrize("state", ["key", "present", "absent", "status", None])
def test_host_options_have_defaults_and_are_checked_in_every_state(state):
    assert mesh.host_options({"state": state}) == {
        "state": state or "present",
        "interface": "wg0",
        "key_dir": "/etc/bulwark/overlay",
    }
    assert (
        mesh.host_options({"state": state, "key_dir": "/srv/k/", "interface": "wg-mesh"})["key_dir"]
        == "/srv/k"
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"key_dir": "/tmp/x;touch /tmp/pwned"}, r"^overlay_key_dir: .*';'.*Nothing was applied$"),  # noqa: S108
        ({"key_dir": "/k/$(id)"}, r"^overlay_key_dir: .*'\$'"),
        ({"key_dir": "/k/a b"}, r"^overlay_key_dir: .*' '"),
        ({"key_dir": "/k\nPostUp = id"}, r"^overlay_key_dir: contains a control character"),
        ({"key_dir": "/etc/../ssh"}, r"^overlay_key_dir: .*'\.\.'"),
        ({"key_dir": "keys"}, r"^overlay_key_dir: 'keys' is not an absolute path"),
        ({"key_dir": ""}, r"^overlay_key_dir: '' is not a path"),
        ({"interface": "../ssh/sshd_config.d/10-bulwark"}, r"^bulwark_overlay_interface: '\.\./ssh/"),
        ({"interface": ".."}, r"^bulwark_overlay_interface: '\.\.' is not an interface name"),
        ({"interface": "wg0;id"}, r"^bulwark_overlay_interface: 'wg0;id' is not an interface name"),
        ({"interface": "0123456789abcdef"}, "is not an interface name"),
        ({"interface": ""}, r"^bulwark_overlay_interface: '' is not a non-empty string"),
        ({"state": "gone"}, r"^state: 'gone' is not one of key, present, absent, status"),
    ],
)
@pytest.mark.parametrize("state", ["key", "present", "absent", "status"])
def test_host_options_refuse_what_is_not_a_plain_path_or_name(options, message, state):
    with pytest.raises(mesh.MeshError, match=message):
        mesh.host_options({"state": state, **options})


def test_the_interface_of_the_mesh_is_checked_the_same_way():
    with pytest.raises(mesh.MeshError, match=r"^bulwark_overlay_interface: '\.' is not an interface name"):
        mesh.build({**SETTINGS, "interface": "."}, members("a", "b"))


@pytest.mark.parametrize("name", [".wg", "-wg", "wg+", "wg*", "wg0123456789abcd"])
def test_an_interface_the_firewall_would_refuse_is_refused_under_the_overlays_option(name):
    with pytest.raises(mesh.MeshError, match=r"^bulwark_overlay_interface: .* is not an interface name"):
        mesh.interface_name(name)


@pytest.mark.parametrize("name", ["wg0", "wg_mesh", "wg.1", "w-g", "0wg", "wg0123456789abc"])
def test_an_interface_the_overlay_accepts_the_firewall_accepts_too(name):
    assert mesh.interface_name(name) == firewall_model.parse_interface(name, "interface") == name


@pytest.mark.parametrize("name", [".", "..", "a|b", "a b", "a/b"])
def test_member_names_that_would_name_another_file_are_refused(name):
    group = members("a", "b")
    group[1]["name"] = name
    with pytest.raises(mesh.MeshError, match=r"^members\[1\]\.name: .* is not a host name"):
        mesh.build(SETTINGS, group)


def test_two_members_with_one_public_key_are_refused_naming_both():
    with pytest.raises(mesh.MeshError) as err:
        mesh.build(SETTINGS, members("a", "b", "c", c={"public_key": KEYS["a"]}))
    assert str(err.value) == (
        f"c: public key: {KEYS['a']} is also a's: two members cannot share a key. Nothing was applied"
    )
    # Unknown keys (check mode, or before the key task) are not a collision.
    mesh.build(
        SETTINGS, members("a", "b", a={"public_key": None}, b={"public_key": None}), require_keys=False
    )


@pytest.mark.parametrize("endpoint", ["fe80::1%eth0", "fe80::1%x y;id", "fe80::1%x\\nPostUp"])
def test_an_endpoint_with_an_ipv6_scope_is_refused(endpoint):
    with pytest.raises(mesh.MeshError, match=r"^b: overlay_endpoint: .* is not an IP address"):
        mesh.build(SETTINGS, members("a", "b", b={"endpoint": endpoint}))


def test_an_ipv6_endpoint_is_written_as_wg_shows_it():
    m = mesh.build(SETTINGS, members("a", "b", b={"endpoint": "2001:db8::2"}))
    assert m.view("a")["peers"][0]["endpoint"] == "[2001:db8::2]:51820"


@pytest.mark.parametrize(
    ("hostvars", "message"),
    [
        (
            {"ansible_host": "web1.example.com"},
            "b: overlay_endpoint: 'web1.example.com' (its default, from ansible_host) is a DNS name, "
            "not an IP address: names are not resolved; set overlay_endpoint",
        ),
        (
            {"ansible_host": "192.0.2.2", "overlay_endpoint": "web1.example.com."},
            "b: overlay_endpoint: 'web1.example.com.' is a DNS name, not an IP address",
        ),
        ({}, "b: overlay_endpoint: 'b' (its default, from the inventory name) is a DNS name"),
        ({"ansible_host": "192.0.2.2;x"}, "b: overlay_endpoint: '192.0.2.2;x' is not an IP address"),
    ],
)
def test_an_endpoint_that_is_a_dns_name_is_refused_by_name_not_resolved(hostvars, message):
    inventory = {"a": {"ansible_host": "192.0.2.1"}, "b": hostvars}
    found = mesh.members_from_inventory(["a", "b"], inventory, KEYS)
    with pytest.raises(mesh.MeshError, match=re.escape(message)) as err:
        mesh.build(SETTINGS, found)
    assert str(err.value).endswith("Nothing was applied")


def test_an_endpoint_address_from_ansible_host_or_the_variable_is_taken_as_is():
    inventory = {
        "a": {"ansible_host": "192.0.2.1"},
        "b": {"ansible_host": "b.example", "overlay_endpoint": "2001:db8::2"},
    }
    built = mesh.build(SETTINGS, mesh.members_from_inventory(["a", "b"], inventory, KEYS))
    assert str(built.members["a"].endpoint) == "192.0.2.1"
    assert str(built.members["b"].endpoint) == "2001:db8::2"
