"""validate_input on the overlay role for a host outside the group: one that was a member (its local fact
says so) is checked by the names it recorded, one that never was costs nothing; and an endpoint that is a
DNS name is refused on the controller, naming the host."""

from test_validate_input import validate

HOSTVARS = {"a": {"ansible_host": "192.0.2.1"}, "b": {"ansible_host": "192.0.2.2"}}
OVERLAY = "bulwark.hardening.overlay"


def run(calls, **host_vars):
    facts = {
        "groups": {"overlay": ["a", "b"]},
        "hostvars": HOSTVARS,
        "inventory_hostname": "a",
        "ansible_play_hosts_all": ["a", "b"],
        **host_vars,
    }
    return validate(["overlay"], host_outcome={"changed": False, "registry": {}}, calls=calls, **facts)


def test_a_host_that_never_was_a_member_is_neither_checked_nor_asked():
    calls = []
    result = run(calls, groups={"overlay": ["b"]})  # the documented layout: no bulwark_overlay_enabled here
    assert not result.get("failed"), result.get("msg")
    assert result["checked"] == []
    assert calls == []


def test_a_host_that_left_is_checked_by_the_names_it_recorded():
    calls = []
    record = {"bulwark_overlay": {"interface": "wg7", "key_dir": "/etc/bulwark/mesh"}}
    result = run(calls, groups={"overlay": ["b"]}, ansible_local=record)
    assert not result.get("failed"), result.get("msg")
    assert result["checked"] == [OVERLAY]
    assert calls == []  # state=absent needs no key from the host
    bad = {"bulwark_overlay": {"interface": "../ssh/x", "key_dir": "/etc/bulwark/mesh"}}
    result = run(calls, groups={"overlay": ["b"]}, ansible_local=bad)
    assert result["failed"] and result["changed"] is False
    assert any(
        "bulwark_overlay_interface: '../ssh/x' is not an interface name" in e for e in result["errors"]
    )


def test_an_endpoint_that_is_a_dns_name_is_refused_on_the_controller():
    calls = []
    hostvars = {**HOSTVARS, "b": {"ansible_host": "b.example.com"}}
    result = run(calls, bulwark_overlay_enabled=True, hostvars=hostvars)
    assert result["failed"] and result["changed"] is False
    assert any(
        "b: overlay_endpoint: 'b.example.com' (its default, from ansible_host) is a DNS name" in e
        for e in result["errors"]
    ), result["errors"]
    assert calls == []
