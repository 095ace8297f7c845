"""The audit's findings on real output captured from lab hosts (fixtures/, see fixtures/README.md)."""

import json
from pathlib import Path

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.audit import checks, parse

FIXTURES = Path(__file__).parent / "fixtures"
FIREWALL_FIXTURES = Path(__file__).parents[1] / "firewall" / "fixtures"


def text(name):
    return (FIXTURES / name).read_text()


def by_id(findings):
    return {f["id"]: f for f in findings}


def stock_facts():
    """aud-stock as the module reads it: Debian 13 as debootstrap installs it, nothing hardened."""
    return {
        "sshd": text("sshd-T-stock-trixie.txt"),
        "nft": None,
        "listeners": text("ss-stock-trixie.txt"),
        "fail2ban": {"installed": False},
        "sysctl": {"net.ipv4.ip_forward": "0", "net.ipv6.conf.all.forwarding": "0"},
        "paths": {
            "/etc/shadow": ("file", 0o640, 0, 42),
            "/etc/ssh/ssh_host_ed25519_key": ("file", 0o600, 0, 0),
        },
        "group_names": {"42": "shadow", "0": "root"},
        "empty_passwords": [],
        "accounts": [{"name": "root", "uid": 0}, {"name": "deploy", "uid": 1000}],
        "admins": [],
        "apt_simulation": text("apt-s-upgrade-stock-trixie.txt"),
        "apt_config": text("apt-config-stock-trixie.txt"),
        "units": {"auditd.service": "inactive"},
        "docker": None,
        "wireguard": None,
    }


def test_listeners_from_ss():
    assert parse.listeners(text("ss-stock-trixie.txt")) == [
        parse.Listener("udp", "127.0.0.11", 42561, ""),
        parse.Listener("tcp", "0.0.0.0", 22, "sshd"),  # noqa: S104
        parse.Listener("tcp", "127.0.0.11", 35539, ""),
        parse.Listener("tcp", "::", 22, "sshd"),
    ]


def test_security_updates_only_from_the_security_archive():
    assert parse.security_updates(text("apt-s-upgrade-security.txt")) == [
        ("libssl3", "3.0.17-1~deb12u2"),
        ("openssl", "3.0.17-1~deb12u2"),
    ]
    assert parse.security_updates(text("apt-s-upgrade-stock-trixie.txt")) == []


def test_rsa_bits_of_a_real_key():
    key = text("authorized_keys-rsa2048.pub").split()[1]
    assert parse.rsa_bits(key) == 2048
    assert parse.rsa_bits("not base64!") is None


def test_stock_host_fails_what_debian_leaves_open():
    found = by_id(checks.evaluate(stock_facts(), now=0))
    failed = sorted(fid for fid, f in found.items() if f["status"] == "fail")
    assert failed == [
        "auditd",
        "fail2ban_sshd",
        "firewall_default_deny",
        "ssh_access_list",
        "ssh_algorithms",
        "ssh_forwarding",
        "ssh_max_auth_tries",
        "ssh_password_login",
        "ssh_root_login",
        "ssh_sources",
        "unattended_upgrades",
    ]
    assert found["ssh_password_login"]["evidence"] == (
        "passwordauthentication yes, kbdinteractiveauthentication no, permitemptypasswords no"
    )
    assert found["ssh_password_login"]["remediation"] == (
        "sshd_password_authentication: false, sshd_kbd_interactive_authentication: false"
    )
    assert found["ssh_root_login"]["evidence"] == "permitrootlogin without-password"
    assert found["firewall_default_deny"]["evidence"] == (
        "nft is not installed: no nftables ruleset; IPv4 to port 9: admitted; IPv6 to port 9: admitted"
    )
    assert (
        found["ssh_sources"]["evidence"]
        == "admitted from anywhere: 0.0.0.0:22 (sshd, IPv4), [::]:22 (sshd, IPv6)"
    )
    # Docker's embedded DNS listens on 127.0.0.11 only: loopback is never "exposed".
    assert found["exposed_services"]["status"] == "pass"
    assert found["ssh_algorithms"]["evidence"].startswith(
        "macs umac-64-etm@openssh.com,hmac-sha1-etm@openssh.com,"
    )
    assert (
        "kexalgorithms ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521"
        in found["ssh_algorithms"]["evidence"]
    )
    assert found["docker_daemon"]["status"] == "skip"
    assert found["overlay_handshakes"]["status"] == "skip"
    assert found["unattended_upgrades"]["evidence"] == (
        "unattended-upgrades not installed, APT::Periodic::Unattended-Upgrade unset"
    )
    # A passing finding carries no fix; a failing one names the variable.
    assert found["uid0_accounts"]["remediation"] == ""
    assert found["fail2ban_sshd"]["remediation"].startswith("fail2ban_sshd_enabled: true")


def test_categories_restrict_the_findings():
    found = checks.evaluate(stock_facts(), now=0, categories=["network"])
    assert {f["category"] for f in found} == {"network"}
    assert [f["id"] for f in found] == [
        "firewall_default_deny",
        "exposed_services",
        "ssh_sources",
        "routed_default_deny",
        "network_sysctl",
        "docker_published",
    ]


def test_a_port_opened_by_hand_is_exposed_and_the_guarded_ones_are_not():
    # Captured on a lab host: our default-deny table, plus `tcp dport 8080 accept` and a foreign
    # iptables-nft INPUT rule for 4444 that our table still drops.
    facts = stock_facts()
    facts["nft"] = json.loads((FIREWALL_FIXTURES / "ruleset-hand-added.json").read_text())
    facts["listeners"] = (
        'tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=67,fd=6))\n'
        'tcp LISTEN 0 5 0.0.0.0:8080 0.0.0.0:* users:(("python3",pid=90,fd=3))\n'
        'tcp LISTEN 0 5 0.0.0.0:4444 0.0.0.0:* users:(("nc",pid=91,fd=3))\n'
    )
    found = by_id(checks.evaluate(facts, now=0, categories=["network"]))
    assert found["firewall_default_deny"]["status"] == "pass"
    assert found["exposed_services"]["status"] == "fail"
    assert found["exposed_services"]["evidence"] == "admitted from anywhere: 0.0.0.0:8080 (python3, IPv4)"
    assert found["ssh_sources"]["status"] == "pass"


def test_an_unreadable_ruleset_fails_and_says_why():
    facts = stock_facts()
    facts["nft_error"] = "netlink: Error: cache initialization failed: Operation not permitted"
    found = by_id(checks.evaluate(facts, now=0, categories=["network"]))
    assert found["firewall_default_deny"]["status"] == "fail"
    assert found["firewall_default_deny"]["evidence"].startswith("nft -j list ruleset failed: netlink")


def test_sshd_that_cannot_answer_is_a_critical_failure():
    facts = stock_facts()
    facts["sshd"], facts["sshd_error"] = None, "/etc/ssh/sshd_config line 3: Bad configuration option: Foo"
    found = by_id(checks.evaluate(facts, now=0, categories=["authentication"]))
    assert found["ssh_effective_config"]["status"] == "fail"
    assert found["ssh_effective_config"]["severity"] == "critical"
    assert "ssh_password_login" not in found


@pytest.mark.parametrize(
    ("mode", "status"),
    [(0o600, "pass"), (0o640, "fail"), (0o644, "fail")],
)
def test_private_host_key_modes(mode, status):
    facts = stock_facts()
    facts["paths"]["/etc/ssh/ssh_host_ed25519_key"] = ("file", mode, 0, 0)
    found = by_id(checks.file_findings(facts))
    assert found["private_keys"]["status"] == status
    if status == "fail":
        assert found["private_keys"]["evidence"] == f"/etc/ssh/ssh_host_ed25519_key mode {mode:04o}"


def test_shadow_readable_by_another_group_fails():
    facts = stock_facts()
    facts["paths"]["/etc/shadow"] = ("file", 0o640, 0, 4)
    facts["group_names"]["4"] = "adm"
    assert by_id(checks.file_findings(facts))["shadow_files"]["evidence"] == "/etc/shadow group adm"


def test_admin_keys_weak_and_writable():
    facts = stock_facts()
    facts["admins"] = [
        {
            "name": "deploy",
            "uid": 1000,
            "authorized_keys": text("authorized_keys-rsa2048.pub"),
            "keys_status": ("file", 0o664, 1000, 1000),
            "ssh_dir_status": ("directory", 0o700, 1000, 1000),
        }
    ]
    found = by_id(checks.account_findings(facts))["admin_keys"]
    assert found["status"] == "fail"
    assert "deploy: authorized_keys is a file, mode 0664, owner uid 1000" in found["evidence"]
    assert "(2048 bits)" in found["evidence"]
    assert found["evidence"].endswith("deploy: 1 key(s) (ssh-rsa 2048 bits)")
    # Never the key itself: only its type and fingerprint.
    assert text("authorized_keys-rsa2048.pub").split()[1] not in found["evidence"]


def test_admin_keys_that_cannot_be_read_safely_fail_naming_why():
    """A FIFO or a huge file where sshd reads the keys is not 'no keys': the finding cannot pass."""
    facts = stock_facts()
    facts["admins"] = [
        {
            "name": "deploy",
            "uid": 1000,
            "authorized_keys": None,
            "keys_error": "/home/deploy/.ssh/authorized_keys is not a regular file",
            "keys_status": ("other", 0o600, 1000, 1000),
            "ssh_dir_status": ("directory", 0o700, 1000, 1000),
        }
    ]
    found = by_id(checks.account_findings(facts))["admin_keys"]
    assert found["status"] == "fail"
    assert (
        "deploy: authorized_keys cannot be evaluated: /home/deploy/.ssh/authorized_keys is not a regular file"
        in found["evidence"]
    )


def test_fail2ban_without_the_sshd_jail_fails():
    facts = stock_facts()
    facts["fail2ban"] = {
        "installed": True,
        "status": "Status\n|- Number of jail:\t1\n`- Jail list:\trecidive\n",
        "jails": {"recidive": "Status for the jail: recidive\n|- Filter\n|  |- Currently failed:\t0\n"
                  "|  |- Total failed:\t3\n`- Actions\n   |- Currently banned:\t1\n"},
    }  # fmt: skip
    found = by_id(checks.fail2ban_findings(facts))["fail2ban_sshd"]
    assert found["status"] == "fail"
    assert found["evidence"] == "running jails: recidive (1 banned, 3 failures seen)"


def test_overlay_peer_without_a_recent_handshake():
    facts = stock_facts()
    facts["wireguard"] = "wg0\tAAAAbbbbCCCC=\t1000\nwg0\tDDDDeeeeFFFF=\t0\n"
    found = by_id(checks.overlay_findings(facts, now=1100))["overlay_handshakes"]
    assert found["status"] == "fail"
    assert found["evidence"] == "wg0 peer DDDDeeee: never"
    found = by_id(checks.overlay_findings(facts, now=1500))["overlay_handshakes"]
    assert found["evidence"] == "wg0 peer AAAAbbbb: 500 s ago; wg0 peer DDDDeeee: never"


def test_docker_api_on_tcp_without_tls_is_critical():
    facts = stock_facts()
    facts["docker"] = {"daemon": {"hosts": ["tcp://0.0.0.0:2375"], "icc": False, "no-new-privileges": True,
                                  "live-restore": True}, "ps": "web 0.0.0.0:8081->80/tcp\n"}  # fmt: skip
    found = by_id(checks.docker_findings(facts))
    assert found["docker_daemon"]["severity"] == "critical"
    assert found["docker_daemon"]["evidence"] == "the API listens on tcp://0.0.0.0:2375 without tlsverify"
    # No firewall: nothing filters the forward hook.
    assert found["docker_published"]["status"] == "fail"
    assert found["docker_published"]["evidence"] == "published on every address: web 0.0.0.0:8081->80/tcp"


def test_every_catalog_entry_has_a_known_category_and_severity():
    for fid, (category, severity, title, remediation) in checks.CATALOG.items():
        assert category in checks.CATEGORIES, fid
        assert severity in checks.SEVERITIES, fid
        assert title and remediation, fid


def test_secret_store_expired_and_readable_by_others():
    facts = stock_facts()
    facts["secrets"] = {
        "path": "/etc/bulwark/secrets",
        "mode": 0o700,
        "secrets": [
            {"name": "db", "meta": {"current": {"expires": "2026-01-01T00:00:00Z"}},
             "modes": {"/etc/bulwark/secrets/db/meta.json": 0o600, "/etc/bulwark/secrets/db/v1": 0o644}},
            {"name": "api", "meta": {"current": {"expires": "2027-01-01T00:00:00Z"}},
             "modes": {"/etc/bulwark/secrets/api/v1": 0o600}},
            {"name": "broken", "meta": None, "modes": {}},
        ],
    }  # fmt: skip
    found = by_id(checks.secret_findings(facts, now=1_780_000_000))["secrets"]  # 2026-05-28
    assert found["status"] == "fail"
    assert found["evidence"] == (
        "db: /etc/bulwark/secrets/db/v1 mode 0644; db: expired on 2026-01-01T00:00:00Z (rotate it); "
        "broken: meta.json unreadable: its age is unknown"
    )
    facts["secrets"]["secrets"] = facts["secrets"]["secrets"][1:2]
    assert by_id(checks.secret_findings(facts, now=1_780_000_000))["secrets"]["status"] == "pass"
    assert by_id(checks.secret_findings(stock_facts(), now=0))["secrets"]["status"] == "skip"


def test_overlay_peers_are_named_and_its_key_files_private():
    facts = stock_facts()
    facts["wireguard"] = "wg0\tAAAAbbbbCCCC=\t0\n"
    facts["overlay_names"] = {"AAAAbbbbCCCC=": "node2"}
    facts["paths"] = {
        "/etc/bulwark/overlay": ("directory", 0o700, 0, 0),
        "/etc/bulwark/overlay/private.key": ("file", 0o644, 0, 0),
        "/etc/wireguard/wg0.conf": ("file", 0o600, 0, 0),
    }
    found = by_id(checks.overlay_findings(facts, now=1100))
    assert found["overlay_handshakes"]["evidence"] == "wg0 peer node2: never"
    assert found["overlay_keys"]["status"] == "fail"
    assert found["overlay_keys"]["evidence"] == "/etc/bulwark/overlay/private.key mode 0644"
    facts["paths"]["/etc/bulwark/overlay/private.key"] = ("file", 0o600, 0, 0)
    assert by_id(checks.overlay_findings(facts, now=1100))["overlay_keys"]["evidence"] == "3 file(s) checked"
    assert by_id(checks.overlay_findings(stock_facts(), now=1100))["overlay_keys"]["status"] == "skip"


def udp_facts():
    """Real `ss -Htulnp` of listeners that named themselves (prctl), behind a real default-deny ruleset
    (fixtures/ruleset-udp.nft as `nft -j list ruleset` shows it): UDP opened by a set, by `th dport` and
    for the WireGuard port from the peers' set only; TCP 5355, 8089 and 22 opened."""
    facts = stock_facts()
    facts["nft"] = json.loads(text("ruleset-udp.json"))
    facts["listeners"] = text("ss-udp-and-named.txt")
    return facts


def test_udp_listeners_are_judged_by_the_rules_that_admit_udp():
    found = by_id(checks.evaluate(udp_facts(), now=0, categories=["network"]))
    assert found["firewall_default_deny"]["status"] == "pass"
    assert found["exposed_services"]["status"] == "fail"
    assert found["exposed_services"]["evidence"] == (
        "admitted from anywhere: 0.0.0.0:5356/udp (python3, IPv4), 0.0.0.0:5359/udp (python3, IPv4), "
        "0.0.0.0:8089 (docker-proxy, IPv4)"
    )
    # UDP 5355 (only TCP 5355 is opened), UDP 22 (not SSH), the DHCP client, the WireGuard port (its
    # peers only), loopback and TCP 5356 (only UDP 5356 is opened) are not admitted from outside.
    assert found["ssh_sources"]["evidence"] == "admitted from anywhere: 0.0.0.0:22 (sshd, IPv4)"


def test_a_listener_named_docker_proxy_is_exempt_only_on_a_port_docker_publishes():
    facts = udp_facts()
    facts["docker"] = {"daemon": {}, "ps": "web 0.0.0.0:8089->80/tcp, :::8089->80/tcp\n"}
    found = by_id(checks.evaluate(facts, now=0, categories=["network"]))["exposed_services"]
    assert found["evidence"] == (
        "admitted from anywhere: 0.0.0.0:5356/udp (python3, IPv4), 0.0.0.0:5359/udp (python3, IPv4); "
        "published by Docker (see docker_published): 0.0.0.0:8089"
    )
    # Docker publishing 8089 over UDP, or on loopback only, does not explain a TCP listener on every address.
    for ps in ("web 0.0.0.0:8089->80/udp\n", "web 127.0.0.1:8089->80/tcp\n", "web 0.0.0.0:8090->80/tcp\n"):
        facts["docker"]["ps"] = ps
        found = by_id(checks.evaluate(facts, now=0, categories=["network"]))["exposed_services"]
        assert "0.0.0.0:8089 (docker-proxy, IPv4)" in found["evidence"], ps


def test_published_ports_of_docker_ps():
    assert parse.published_ports(
        "web 0.0.0.0:8081->80/tcp, :::8081->80/tcp\ndb 127.0.0.1:5432->5432/tcp\n"
        "dns [::]:5300-5301->53-54/udp\nquiet 80/tcp\n"
    ) == {
        ("tcp", "0.0.0.0", 8081),  # noqa: S104
        ("tcp", "::", 8081),
        ("tcp", "127.0.0.1", 5432),
        ("udp", "::", 5300),
        ("udp", "::", 5301),
    }
