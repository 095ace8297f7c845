from pathlib import Path

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.sshd import guard
from ansible_collections.bulwark.hardening.plugins.module_utils.sshd.effective import parse

FIXTURES = Path(__file__).parent / "fixtures"
HARDENED = (FIXTURES / "sshd_T_debian12_hardened.txt").read_text()
DEFAULT13 = (FIXTURES / "sshd_T_debian13_default.txt").read_text()


def with_lines(text, **changes):
    """A dump with keywords replaced (value None removes them; a list gives several lines)."""
    if not isinstance(text, str):
        text = "\n".join(f"{k} {v}" for k, vals in text.values.items() for v in vals)
    lines = [line for line in text.splitlines() if line.split(" ", 1)[0] not in changes]
    for key, value in changes.items():
        if value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            lines.append(f"{key} {item}")
    return parse("\n".join(lines))


def facts(**overrides):
    base = {
        "user": "deploy",
        "uid": 1000,
        "groups": ["deploy", "sudo"],
        "has_password": False,
        "authorized_keys": ["ssh-ed25519"],
        "addr": "10.0.0.5",
        "host": "10.0.0.5",
        "laddr": "172.30.1.11",
        "lport": 22,
        "password_locked": False,
        "host_key_types": ["ssh-ed25519", "ssh-rsa"],
        "client_algorithms": {},
    }
    base.update(overrides)
    return base


def test_hardened_config_with_a_key_is_accepted():
    assert guard.check(parse(HARDENED), facts()) == []


def test_debian_default_is_accepted_for_a_password_user():
    assert (
        guard.check(parse(DEFAULT13), facts(authorized_keys=[], has_password=True, groups=["deploy"])) == []
    )


def test_no_password_no_kbd_and_no_key_is_refused():
    problems = guard.check(parse(HARDENED), facts(authorized_keys=[]))
    assert len(problems) == 1
    assert "no way to log in for deploy" in problems[0]
    assert (
        "deploy has no authorized key (AuthorizedKeysFile .ssh/authorized_keys .ssh/authorized_keys2)"
        in problems[0]
    )
    assert "PasswordAuthentication no" in problems[0]


def test_no_key_is_fine_while_a_password_login_stays():
    eff = with_lines(HARDENED, passwordauthentication="yes")
    assert guard.check(eff, facts(authorized_keys=[], has_password=True)) == []


def test_authorized_keys_command_counts_as_a_key_source():
    eff = with_lines(HARDENED, authorizedkeyscommand="/usr/bin/sss_ssh_authorizedkeys %u")
    assert guard.check(eff, facts(authorized_keys=[])) == []


def test_pubkey_off_while_the_user_only_has_keys_is_refused():
    eff = with_lines(HARDENED, pubkeyauthentication="no")
    problems = guard.check(eff, facts())
    assert problems and "PubkeyAuthentication no" in problems[0]
    assert guard.check(with_lines(eff, passwordauthentication="yes"), facts(has_password=True)) == []


def test_key_types_must_be_accepted():
    eff = with_lines(HARDENED, pubkeyacceptedalgorithms="ssh-ed25519")
    problems = guard.check(eff, facts(authorized_keys=["ssh-rsa"]))
    assert problems and "PubkeyAcceptedAlgorithms accepts none of deploy's key types (ssh-rsa)" in problems[0]
    assert (
        guard.check(
            with_lines(HARDENED, pubkeyacceptedalgorithms="rsa-sha2-512"), facts(authorized_keys=["ssh-rsa"])
        )
        == []
    )


@pytest.mark.parametrize(
    ("allow", "ok"),
    [
        (["deploy"], True),
        (["dep*"], True),
        (["d?ploy"], True),
        (["deploy@10.0.0.0/8"], True),
        (["deploy@10.0.0.*"], True),
        (["admin", "deploy@192.168.0.0/16"], False),
        (["admin"], False),
        (["d?"], False),
    ],
)
def test_allow_users(allow, ok):
    problems = guard.check(with_lines(HARDENED, allowusers=allow), facts())
    assert (problems == []) is ok
    if not ok:
        assert (
            problems[0].startswith("AllowUsers")
            and "does not admit the connecting user deploy" in problems[0]
        )


@pytest.mark.parametrize(
    ("deny", "ok"),
    [(["root"], True), (["deploy"], False), (["*@10.0.0.5"], False), (["*@172.16.0.0/12"], True)],
)
def test_deny_users(deny, ok):
    problems = guard.check(with_lines(HARDENED, denyusers=deny), facts())
    assert (problems == []) is ok
    if not ok:
        assert problems[0].startswith("DenyUsers")


@pytest.mark.parametrize(
    ("allow", "ok"), [(["deploy", "sshusers"], True), (["sud*"], True), (["admins"], False)]
)
def test_allow_groups(allow, ok):
    problems = guard.check(with_lines(HARDENED, allowgroups=allow), facts())
    assert (problems == []) is ok
    if not ok:
        assert problems == [
            "AllowGroups admins names no group of the connecting user deploy (member of: deploy, sudo)"
        ]


@pytest.mark.parametrize(("deny", "ok"), [(["wheel"], True), (["sudo"], False), (["s*"], False)])
def test_deny_groups(deny, ok):
    problems = guard.check(with_lines(HARDENED, denygroups=deny), facts())
    assert (problems == []) is ok


def test_root_login_off_while_connected_as_root_is_refused():
    root = facts(user="root", uid=0, groups=["root"])
    eff = with_lines(HARDENED, allowgroups=None)
    assert guard.check(eff, root) == ["PermitRootLogin no while connected as root (root)"]
    assert guard.check(with_lines(eff, permitrootlogin="without-password"), root) == []
    assert guard.check(eff, facts(allowgroups=None)) == []  # not root: PermitRootLogin no is fine


def test_forced_commands_only_for_root_is_refused():
    eff = with_lines(HARDENED, allowgroups=None, permitrootlogin="forced-commands-only")
    assert "forced-commands-only" in guard.check(eff, facts(user="root", uid=0))[0]


@pytest.mark.parametrize(
    ("methods", "password", "ok"),
    [
        ("any", False, True),
        ("publickey", False, True),
        ("publickey,password", False, False),
        ("publickey,password publickey", False, True),
        ("publickey,keyboard-interactive", False, False),
    ],
)
def test_authentication_methods(methods, password, ok):
    problems = guard.check(with_lines(HARDENED, authenticationmethods=methods), facts(has_password=password))
    assert (problems == []) is ok
    if not ok:
        assert problems[0].startswith(f"AuthenticationMethods {methods} cannot be satisfied by deploy")


def test_authentication_methods_with_password_on_and_a_password():
    eff = with_lines(HARDENED, authenticationmethods="publickey,password", passwordauthentication="yes")
    assert guard.check(eff, facts(has_password=True)) == []


def test_force_command_for_the_user_is_refused():
    eff = parse((FIXTURES / "sshd_T_debian13_match_sftponly.txt").read_text())
    problems = guard.check(eff, facts(user="sftpuser", groups=["sftpuser", "sftponly", "deploy"]))
    assert problems == ["ForceCommand internal-sftp applies to sftpuser: Ansible could not run commands"]


def test_refuse_connection_is_refused():
    assert guard.check(with_lines(HARDENED, refuseconnection="yes"), facts()) == [
        "RefuseConnection yes applies to deploy"
    ]


CLIENT_OLD = {
    "kex": ["curve25519-sha256", "diffie-hellman-group14-sha256"],
    "ciphers": ["aes128-ctr", "aes256-gcm@openssh.com"],
    "macs": ["hmac-sha2-256-etm@openssh.com"],
    "host_key_algorithms": ["ssh-ed25519", "rsa-sha2-512"],
}


def test_client_sharing_algorithms_is_accepted():
    assert guard.check(parse(HARDENED), facts(client_algorithms=CLIENT_OLD)) == []


def test_post_quantum_only_kex_against_an_old_client_is_refused():
    eff = with_lines(HARDENED, kexalgorithms="mlkem768x25519-sha256,sntrup761x25519-sha512")
    problems = guard.check(eff, facts(client_algorithms=CLIENT_OLD))
    assert len(problems) == 1
    assert problems[0].startswith("KexAlgorithms mlkem768x25519-sha256,sntrup761x25519-sha512 shares nothing")


def test_ciphers_and_host_key_algorithms_disjoint_are_refused():
    client = dict(CLIENT_OLD, ciphers=["aes128-cbc"], host_key_algorithms=["ecdsa-sha2-nistp256"])
    problems = guard.check(parse(HARDENED), facts(client_algorithms=client))
    assert [p.split()[0] for p in problems] == ["Ciphers", "HostKeyAlgorithms"]


def test_macs_matter_only_without_a_common_aead_cipher():
    client = dict(CLIENT_OLD, macs=["hmac-sha1"], ciphers=["aes256-gcm@openssh.com"])
    assert guard.check(parse(HARDENED), facts(client_algorithms=client)) == []  # AES-GCM needs no MAC
    client["ciphers"] = ["aes128-ctr", "aes256-gcm@openssh.com"]
    problems = guard.check(parse(HARDENED), facts(client_algorithms=client))
    assert len(problems) == 1 and problems[0].startswith("MACs ")


def test_host_key_algorithms_must_match_a_remaining_host_key():
    eff = with_lines(HARDENED, hostkeyalgorithms="ecdsa-sha2-nistp256")
    problems = guard.check(eff, facts())
    assert problems == [
        "HostKeyAlgorithms ecdsa-sha2-nistp256 matches none of the host keys (ssh-ed25519, ssh-rsa)"
    ]
    assert guard.check(parse(HARDENED), facts(host_key_types=["ssh-rsa"])) == []
    assert guard.check(parse(HARDENED), facts(host_key_types=[]))[0].startswith("HostKeyAlgorithms")


def test_user_matches_patterns():
    assert guard.user_matches("*", "x", None, None)
    assert guard.user_matches("deploy@*", "deploy", "h", "1.2.3.4")
    assert not guard.user_matches("deploy@10.0.0.0/8", "deploy", "h", "192.168.1.1")
    assert not guard.user_matches("deploy@10.0.0.0/8", "deploy", None, None)
    assert guard.user_matches("deploy@10.0.0.0/8", "deploy", None, None, unknown=True)


def test_unknown_origin_refuses_host_restricted_allow_and_deny():
    blind = facts(addr=None, host=None)
    problems = guard.check(with_lines(HARDENED, allowusers="deploy@10.0.0.0/8"), blind)
    assert problems == [
        "AllowUsers deploy@10.0.0.0/8 does not admit the connecting user deploy"
        " (connecting_from unknown: pass it to evaluate user@host patterns)"
    ]
    assert guard.check(with_lines(HARDENED, denyusers="deploy@192.168.0.0/16"), blind)[0].startswith(
        "DenyUsers"
    )
    assert guard.check(with_lines(HARDENED, allowusers="deploy"), blind) == []


def fixture(name):
    """A real `sshd -T -C user=deploy,host=172.30.1.1,addr=172.30.1.1,laddr=172.30.1.11,lport=22` dump of
    Debian's default configuration with one change read first."""
    return parse((FIXTURES / f"sshd_T_debian{name}.txt").read_text())


@pytest.mark.parametrize("release", ["12", "13"])
def test_port_moved_away_from_the_controllers_port_is_refused(release):
    assert guard.check(fixture(f"{release}_port_moved"), facts()) == [
        "Port 2222 no longer includes the port the controller uses (22): to move the port, serve both,"
        " confirm over the new one, then drop the old"
    ]


def test_serving_both_ports_is_accepted_and_the_new_one_alone_once_connected_there():
    both = fixture("13_both_ports")
    assert both.lines("port") == ["22", "2222"]
    assert guard.check(both, facts()) == []
    assert guard.check(fixture("13_port_moved"), facts(lport=2222)) == []


def test_listen_address_that_no_longer_covers_the_controller_is_refused():
    assert guard.check(fixture("12_listen_loopback"), facts()) == [
        "ListenAddress 127.0.0.1:22 does not cover the controller's local address and port (172.30.1.11:22)"
    ]


def test_listen_address_of_the_controllers_own_address_is_accepted():
    eff = fixture("13_listen_controller")
    assert eff.lines("listenaddress") == ["172.30.1.11:22", "[::]:22"]
    assert guard.check(eff, facts()) == []
    # The IPv6 wildcard does not serve IPv4 (sshd sets IPV6_V6ONLY), another IPv4 address is not ours.
    assert guard.check(eff, facts(laddr="172.30.1.12"))[0].startswith("ListenAddress 172.30.1.11:22 [::]:22")
    assert guard.check(eff, facts(laddr="2001:db8::11")) == []


def test_listen_address_with_its_own_port_and_an_ipv4_mapped_local_address():
    eff = with_lines(HARDENED, listenaddress=["0.0.0.0:2022"])
    assert guard.check(eff, facts(laddr="::ffff:172.30.1.11", lport=2022)) == []
    assert guard.check(eff, facts()) == [
        "ListenAddress 0.0.0.0:2022 does not cover the controller's local address and port (172.30.1.11:22)"
    ]


def test_match_local_address_that_denies_the_controller_is_refused():
    assert guard.check(fixture("12_match_localaddress_deny"), facts(groups=["deploy"])) == [
        "DenyUsers deploy matches the connecting user deploy"
    ]


def test_match_local_port_that_admits_somebody_else_is_refused():
    problems = guard.check(fixture("13_match_localport_allow"), facts())
    assert problems == ["AllowUsers somebody-else does not admit the connecting user deploy"]


@pytest.mark.parametrize("release", ["12", "13"])
def test_use_pam_no_with_a_locked_password_is_refused(release):
    eff = fixture(f"{release}_usepam_no")
    assert eff.get("usepam") == "no"
    assert guard.check(eff, facts(password_locked=True)) == [
        "UsePAM no while deploy's password is locked ('!' in /etc/shadow): without PAM sshd refuses"
        " a locked account even with a key"
    ]
    assert guard.check(eff, facts(password_locked=False)) == []
    assert guard.check(fixture(f"{release}_port_moved"), facts(password_locked=True, lport=2222)) == []


def test_use_pam_no_without_a_shadow_entry_is_refused_as_unknown():
    assert guard.check(fixture("13_usepam_no"), facts(password_locked=None)) == [
        "UsePAM no, and whether deploy's password is locked is unknown (no entry in /etc/shadow)"
    ]


def test_unknown_local_address_or_port_is_refused_by_name():
    assert guard.check(parse(HARDENED), facts(laddr=None, lport=None)) == [
        "local_address and local_port of the controller's connection unknown: cannot tell whether Port,"
        " ListenAddress and Match LocalAddress/LocalPort still admit it"
    ]
    assert guard.check(parse(HARDENED), facts(lport=None))[0].startswith("local_port of the controller's")


def test_a_listener_that_does_not_parse_is_refused_by_name():
    eff = with_lines(HARDENED, listenaddress=["somehost:22"])
    assert guard.check(eff, facts()) == [
        "ListenAddress somehost:22 cannot be evaluated against the controller's connection"
    ]


def test_parse_listener():
    assert guard.parse_listener("[::]:22") == (guard.ipaddress.ip_address("::"), 22)
    assert guard.parse_listener("10.0.0.5:2222 rdomain blue") == (
        guard.ipaddress.ip_address("10.0.0.5"),
        2222,
    )
    with pytest.raises(ValueError):
        guard.parse_listener("10.0.0.5")
