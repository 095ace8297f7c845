"""validate_input on the overlay role: the whole mesh checked on the controller, and every member's key
known (from this run or the host's peer registry, read on the host) before the firewall opens a hole."""

import pytest
from test_validate_input import validate

HOSTVARS = {
    "a": {"ansible_host": "192.0.2.1", "overlay_address": "10.99.0.11"},
    "b": {"ansible_host": "192.0.2.2"},
    "c": {"ansible_host": "192.0.2.3"},
}
OVERLAY = "bulwark.hardening.overlay"
KEY = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="


def overlay(calls=None, registry=None, play=("a", "b", "c"), **extra):
    host_vars = {
        "bulwark_overlay_enabled": True,
        "groups": {"overlay": ["a", "b", "c"]},
        "hostvars": HOSTVARS,
        "inventory_hostname": "a",
        "ansible_play_hosts_all": list(play),
        **extra,
    }
    outcome = {"changed": False, "registry": registry or {}, "up": False, "peers": {}}
    return validate(["overlay"], host_outcome=outcome, calls=calls, **host_vars)


def test_a_valid_mesh_is_checked_and_reads_the_registry_without_a_change():
    calls = []
    result = overlay(calls)
    assert not result.get("failed"), result.get("msg")
    assert result["checked"] == ["bulwark.hardening.overlay"]
    assert calls == [
        (
            "bulwark.hardening.overlay",
            {"state": "status", "interface": "wg0", "key_dir": "/etc/bulwark/overlay"},
        )
    ]


@pytest.mark.parametrize(
    ("host_vars", "error"),
    [
        ({"overlay_mtu": 9500}, "overlay_mtu: 9500 is not an MTU between 1280 and 9000"),
        (
            {"bulwark_overlay_container_cidr": "10.99.0.0/16"},
            "bulwark_overlay_container_cidr: 10.99.0.0/16 overlaps bulwark_overlay_cidr 10.99.0.0/24",
        ),
        ({"overlay_container_network": "bad name"}, "overlay_container_network: 'bad name' is not a Docker"),
        ({"bulwark_overlay_hub": "z"}, "bulwark_overlay_hub: 'z' is not a member of the group"),
        (
            {"hostvars": {**HOSTVARS, "b": {"ansible_host": "192.0.2.2", "overlay_address": "10.98.0.5"}}},
            "b: overlay_address: 10.98.0.5 is not a host address in bulwark_overlay_cidr 10.99.0.0/24",
        ),
    ],
)
def test_bad_overlay_input_is_refused_before_any_change(host_vars, error):
    calls = []
    result = overlay(calls, **host_vars)
    assert result["failed"] and result["changed"] is False
    assert any(error in line for line in result["errors"]), result["errors"]
    assert calls == []  # refused on the controller, before the host is asked anything


def test_a_member_outside_the_run_needs_its_key_in_the_registry():
    result = overlay(play=("a",), registry={"a": KEY, "b": KEY})
    assert result["failed"] and result["changed"] is False
    assert result["errors"] == [
        "overlay: c: its overlay public key is unknown (not in this run and not in the peer registry of a); "
        "run the play with this host included"
    ]
    assert not overlay(play=("a",), registry={"b": KEY, "c": KEY}).get("failed")


def test_a_host_outside_the_group_is_not_asked():
    calls = []
    result = overlay(calls, groups={"overlay": ["b", "c"]})
    assert not result.get("failed"), result.get("msg")
    assert calls == []


def test_numbers_from_extra_vars_are_read_as_the_module_reads_them():
    assert not overlay(overlay_mtu="1400", bulwark_overlay_port="51821").get("failed")
    result = overlay(overlay_mtu="9500")
    assert any("overlay_mtu: 9500 is not an MTU between 1280 and 9000" in e for e in result["errors"]), result


@pytest.mark.parametrize(
    "group", [["a", "b", "c"], ["b", "c"]]
)  # a member (present), a host that left (absent)
@pytest.mark.parametrize(
    ("host_vars", "error"),
    [
        (
            {"overlay_key_dir": "/etc/x;touch /etc/pwned"},
            "overlay_key_dir: '/etc/x;touch /etc/pwned' holds ' ' ';'",
        ),
        ({"overlay_key_dir": "/etc/$(id)"}, "overlay_key_dir: '/etc/$(id)' holds '$' '(' ')'"),
        (
            {"overlay_key_dir": "/etc/../root"},
            "overlay_key_dir: '/etc/../root' has an empty, '.' or '..' component",
        ),
        (
            {"bulwark_overlay_interface": "../ssh/sshd_config.d/10-bulwark"},
            "bulwark_overlay_interface: '../ssh/sshd_config.d/10-bulwark' is not an interface name",
        ),
    ],
)
def test_what_names_files_on_the_host_is_checked_whether_the_host_joins_or_leaves(group, host_vars, error):
    calls = []
    result = overlay(calls, groups={"overlay": group}, **host_vars)
    assert result["failed"] and result["changed"] is False
    assert any(line.startswith(f"overlay ({OVERLAY}): {error}") for line in result["errors"]), result[
        "errors"
    ]
    assert all(line.endswith("Nothing was applied") for line in result["errors"])
    assert calls == []
