from pathlib import Path

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.sshd.effective import parse

FIXTURES = Path(__file__).parent / "fixtures"


def dump(name):
    return parse((FIXTURES / name).read_text())


@pytest.mark.parametrize("name", ["sshd_T_debian12_default.txt", "sshd_T_debian13_default.txt"])
def test_debian_defaults(name):
    eff = dump(name)
    assert eff.get("permitrootlogin") == "without-password"
    assert eff.flag("pubkeyauthentication")
    assert eff.flag("passwordauthentication")
    assert not eff.flag("kbdinteractiveauthentication")
    assert eff.lines("hostkey") == [
        "/etc/ssh/ssh_host_rsa_key",
        "/etc/ssh/ssh_host_ecdsa_key",
        "/etc/ssh/ssh_host_ed25519_key",
    ]
    assert eff.words("authorizedkeysfile") == [".ssh/authorized_keys", ".ssh/authorized_keys2"]
    assert eff.words("allowusers") == []
    assert "chacha20-poly1305@openssh.com" in eff.csv("ciphers")


def test_debian13_offers_mlkem_first_and_repeats_acceptenv():
    eff = dump("sshd_T_debian13_default.txt")
    assert eff.csv("kexalgorithms")[0] == "mlkem768x25519-sha256"
    assert eff.lines("acceptenv") == ["LANG", "LC_*", "COLORTERM", "NO_COLOR"]
    assert eff.get("persourcepenaltyexemptlist") == "none"
    assert eff.csv("persourcepenaltyexemptlist") == []


def test_debian12_has_no_mlkem():
    eff = dump("sshd_T_debian12_default.txt")
    assert "mlkem768x25519-sha256" not in eff.csv("kexalgorithms")
    assert eff.csv("kexalgorithms")[:2] == ["sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com"]


def test_hardened_dump_keeps_each_allowgroups_line():
    eff = dump("sshd_T_debian12_hardened.txt")
    assert eff.lines("allowgroups") == ["deploy", "sshusers"]
    assert eff.get("permitrootlogin") == "no"
    assert eff.get("loglevel") == "VERBOSE"


def test_match_is_evaluated_in_the_dump():
    eff = dump("sshd_T_debian13_match_sftponly.txt")
    assert eff.get("forcecommand") == "internal-sftp"
    assert eff.get("allowtcpforwarding") == "no"


def test_as_dict_flattens_single_values_and_keeps_lists():
    flat = dump("sshd_T_debian13_default.txt").as_dict()
    assert flat["port"] == ["22"]
    assert flat["hostkey"][0] == "/etc/ssh/ssh_host_rsa_key"
    assert flat["maxauthtries"] == "6"
    assert flat["subsystem"] == ["sftp /usr/lib/openssh/sftp-server"]
