import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.firewall import managers

ENABLED = "# /etc/ufw/ufw.conf\n#\nENABLED=yes\nLOGLEVEL=low\n"
DISABLED = "ENABLED=no\nLOGLEVEL=low\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [(ENABLED, True), (DISABLED, False), ("", False), ("ENABLED='yes'\n", True), ("# ENABLED=yes\n", False)],
)
def test_ufw_enabled(text, expected):
    assert managers.ufw_enabled(text) is expected


def test_ufw_enabled_while_nftables_is_chosen_is_a_conflict():
    msg = managers.conflict("nftables", ufw_conf_text=ENABLED)
    assert "UFW is enabled" in msg and "ufw disable" in msg and "Nothing was applied" in msg


def test_ufw_disabled_or_chosen_is_fine():
    assert managers.conflict("nftables", ufw_conf_text=DISABLED) is None
    assert managers.conflict("ufw", ufw_conf_text=ENABLED) is None


def test_firewalld_conflicts_with_every_backend():
    for backend in ("nftables", "iptables", "ufw"):
        assert "firewalld is running" in managers.conflict(backend, firewalld_running=True)
