"""A host leaving the mesh: the record of its membership, what leaving removes, the Docker holes it closes."""

import json

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.overlay import leave

KEY_DIR = "/etc/bulwark/overlay"
CONF = "/etc/wireguard/wg0.conf"
FORWARDING = "/etc/sysctl.d/60-bulwark-overlay.conf"


def test_the_record_names_what_was_configured_and_no_secret():
    text = leave.record("wg0", KEY_DIR, CONF)
    assert json.loads(text) == {"interface": "wg0", "key_dir": KEY_DIR, "config": CONF}
    assert text.endswith("\n")
    assert leave.FACT_PATH == "/etc/ansible/facts.d/bulwark_overlay.fact"


@pytest.mark.parametrize("keep_key", [True, False])
def test_leaving_removes_every_trace_and_the_record_last(keep_key):
    found = [path for path, _what in leave.removals(CONF, KEY_DIR, ["b", "a"], FORWARDING, keep_key)]
    assert found[:2] == [CONF, f"{KEY_DIR}/peers.json"]
    assert found[2:4] == [f"{KEY_DIR}/psk/a.psk", f"{KEY_DIR}/psk/b.psk"]
    assert FORWARDING in found and f"{KEY_DIR}/private.key.next" in found
    assert (f"{KEY_DIR}/private.key" in found) is not keep_key
    # A run that stops half-way still finds the record and finishes the job.
    assert found[-1] == leave.FACT_PATH


IPTABLES_S = """-N DOCKER-USER
-A DOCKER-USER -d 10.100.3.0/24 -i wg0 -j ACCEPT
-A DOCKER-USER -i wg0 -o wg0 -j ACCEPT
-A DOCKER-USER -d 10.100.3.0/24 -i wg1 -j ACCEPT
-A DOCKER-USER -i wg0 -o eth0 -j ACCEPT
-A DOCKER-USER -i wg0 -p tcp -j ACCEPT
-A DOCKER-USER -i wg0 -j DROP
-A DOCKER-USER -s 10.0.0.0/8 -j ACCEPT
-A FORWARD -i wg0 -j ACCEPT
-A DOCKER-USER -i "wg0 -j ACCEPT
-A DOCKER-USER -j RETURN
"""


def test_only_the_interfaces_own_docker_holes_are_closed():
    assert leave.docker_holes_left(IPTABLES_S, "wg0") == [
        ["iptables", "-D", "DOCKER-USER", "-d", "10.100.3.0/24", "-i", "wg0", "-j", "ACCEPT"],
        ["iptables", "-D", "DOCKER-USER", "-i", "wg0", "-o", "wg0", "-j", "ACCEPT"],
    ]
    assert leave.docker_holes_left(IPTABLES_S, "wg1") == [
        ["iptables", "-D", "DOCKER-USER", "-d", "10.100.3.0/24", "-i", "wg1", "-j", "ACCEPT"]
    ]
    assert leave.docker_holes_left("", "wg0") == []
