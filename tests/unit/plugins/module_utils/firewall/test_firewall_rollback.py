"""The rollback script: each value one shell word, and its helpers run against stand-in iptables tools.

The behaviour on a real kernel (Docker's additions kept, the purge put back) is proven in
tests/adversarial/test_firewall_rollback.py; here the script's text and its position logic.
"""

import shlex
import subprocess

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.firewall import rollback

HOSTILE = '-s 203.0.113.9/32 -m comment --comment "it\\\'s $(reboot) `id`; x" -j ACCEPT'


def test_every_value_is_one_shell_word():
    script = rollback.Script("/var/lib/bulwark", "firewall.rollback")
    rules = [
        "INPUT -j f2b-sshd",
        f"INPUT {HOSTILE}",
        "INPUT -p tcp -m tcp --dport 23 -j DROP",
        f"INPUT {HOSTILE}",
    ]
    script.readd(("/usr/sbin/iptables", "/usr/sbin/iptables-restore"), "filter", "INPUT", rules, 3)
    line = script.lines[-1]
    assert shlex.split(line) == [
        "readd", "/usr/sbin/iptables", "/usr/sbin/iptables-restore", "filter", "INPUT",
        "2",  # the second of two identical rules: back unless the chain holds it twice
        HOSTILE,
        "-p tcp -m tcp --dport 23 -j DROP", HOSTILE, "-j f2b-sshd",  # its predecessors, nearest first
    ]  # fmt: skip


def test_table_names_and_paths_are_quoted():
    script = rollback.Script("/var/lib/bul wark", "firewall.rollback")
    script.nft_tables("/usr/sbin/nft", "table inet bulwark {}\n", [("inet", "a;b", "table inet a;b {\n}\n")])
    script.iptables_nft_table(
        "/usr/sbin/nft", "/usr/sbin/iptables-nft-restore", ("ip", "filter"), 7, "*filter\n"
    )
    text = script.text()
    assert (
        "/usr/sbin/nft list table inet 'a;b' >/dev/null 2>&1 || "
        "cat '/var/lib/bul wark/firewall.rollback.table0.nft'" in text
    )
    assert "cat '/var/lib/bul wark/firewall.rollback.nft'" in text
    assert (
        "/usr/sbin/iptables-nft-restore --noflush '/var/lib/bul wark/firewall.rollback.ip-filter.save'"
        in text
    )
    assert set(script.snapshot()) == {
        "/var/lib/bul wark/firewall.rollback.sh",
        "/var/lib/bul wark/firewall.rollback.nft",
        "/var/lib/bul wark/firewall.rollback.table0.nft",
        "/var/lib/bul wark/firewall.rollback.ip-filter.save",
    }
    assert script.argv() == ["/bin/sh", "/var/lib/bul wark/firewall.rollback.sh"]
    assert subprocess.run(["sh", "-n"], input=text, text=True, check=False).returncode == 0


@pytest.fixture
def fake_iptables(tmp_path):
    """A stand-in `iptables -t T -S CHAIN` that prints the file `chain`, and an -restore that records its
    input: readd's decisions, without a kernel."""
    tool, restore = tmp_path / "iptables", tmp_path / "iptables-restore"
    tool.write_text(f"#!/bin/sh\ncat {tmp_path}/chain\n")
    restore.write_text(f'#!/bin/sh\n[ "$1" = --noflush ] && cat >> {tmp_path}/restored\n')
    for path in (tool, restore):
        path.chmod(0o755)

    def readd(chain_now, rules, index):
        (tmp_path / "chain").write_text("".join(f"{line}\n" for line in chain_now))
        (tmp_path / "restored").write_text("")
        script = rollback.Script(str(tmp_path), "rb")
        script.readd((str(tool), str(restore)), "filter", "INPUT", rules, index)
        done = subprocess.run(["sh", "-c", script.text()], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        return (tmp_path / "restored").read_text()

    return readd


SAVED = ["INPUT -j DOCKER-USER", f"INPUT {HOSTILE}", "INPUT -p tcp -m tcp --dport 23 -j DROP"]


def test_a_purged_rule_goes_back_after_its_predecessor_where_that_is_now(fake_iptables):
    # Docker put a rule first meanwhile: the predecessor is now rule 2, so the purged rule becomes rule 3
    now = [
        "-P INPUT DROP",
        "-A INPUT -j NEW",
        "-A INPUT -j DOCKER-USER",
        "-A INPUT -p tcp -m tcp --dport 23 -j DROP",
    ]
    assert fake_iptables(now, SAVED, 1) == f"*filter\n-I INPUT 3 {HOSTILE}\nCOMMIT\n"


def test_a_purged_rule_goes_first_when_none_of_its_predecessors_is_left(fake_iptables):
    now = ["-P INPUT DROP", "-A INPUT -p tcp -m tcp --dport 23 -j DROP"]
    assert fake_iptables(now, SAVED, 1) == f"*filter\n-I INPUT 1 {HOSTILE}\nCOMMIT\n"


def test_a_rule_that_is_there_is_not_put_back_twice(fake_iptables):
    # the apply did not run (or not this far): the rule is where it was
    now = [
        "-P INPUT DROP",
        "-A INPUT -j DOCKER-USER",
        f"-A INPUT {HOSTILE}",
        "-A INPUT -p tcp -m tcp --dport 23 -j DROP",
    ]
    assert fake_iptables(now, SAVED, 1) == ""
    # two identical rules were purged, one is back: the second goes back after the first
    twice = ["INPUT -j DOCKER-USER", f"INPUT {HOSTILE}", f"INPUT {HOSTILE}"]
    assert fake_iptables(now[:3], twice, 2) == f"*filter\n-I INPUT 3 {HOSTILE}\nCOMMIT\n"
