"""The rollback script: each value one shell word, and its helpers run against stand-in iptables tools.

The behaviour on a real kernel (Docker's additions kept, the purge put back) is proven in
tests/adversarial/test_firewall_rollback.py; here the script's text and its position logic.
"""

import os
import shlex
import subprocess

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.firewall import rollback
from ansible_collections.bulwark.hardening.plugins.module_utils.host import commit_confirm as cc

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


# --- the script's exit status is the restore's outcome -------------------------------------------------


@pytest.fixture
def fake_nft(tmp_path):
    """A stand-in nft: `nft -f FILE` records what it loaded and succeeds (as the real one does on empty
    input), `nft list ...` succeeds only for the tables and chains named in the file `live`."""
    nft = tmp_path / "nft"
    (tmp_path / "live").write_text("")
    nft.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = -f ]; then cat "$2" >> {tmp_path}/loaded; exit 0; fi\n'
        f'if [ "$1" = list ]; then shift; grep -qxF -e "$*" {tmp_path}/live; exit; fi\n'
        f'printf "%s\\n" "$*" >> {tmp_path}/changed\n'
    )
    nft.chmod(0o755)
    return str(nft)


def _write(script, skip=()):
    for path, text in script.snapshot().items():
        if any(path.endswith(suffix) for suffix in skip):
            if os.path.exists(path):
                os.remove(path)
        else:
            with open(path, "w") as handle:
                handle.write(text)


def test_a_missing_snapshot_file_fails_the_script_and_the_restore_is_recorded_as_failed(tmp_path, fake_nft):
    # under sh without pipefail only nft's status counted: `cat` of a missing file fed nft nothing, nft
    # succeeded and the host recorded "rolled-back" with table inet bulwark not restored
    for missing in ("/rb.nft", "/rb.table0.nft"):
        script = rollback.Script(str(tmp_path), "rb")
        script.nft_tables(fake_nft, "table inet bulwark {}\n", [("inet", "gone", "table inet gone {\n}\n")])
        _write(script, skip=[missing])
        done = subprocess.run(script.argv(), capture_output=True, text=True, check=False)
        assert done.returncode != 0 and "missing" in done.stderr, missing
        assert not (tmp_path / "loaded").exists()  # nothing was loaded in part

        state = tmp_path / "cc"
        state.mkdir(exist_ok=True)
        (state / "armed").write_text("")
        (state / "restore.sh").write_text(cc.render_restore(str(state), [("the firewall", script.argv())]))
        assert subprocess.run(["/bin/sh", str(state / "restore.sh")], check=False).returncode == 1
        assert sorted(os.listdir(state)) == ["restore-failed", "restore.sh"]
        os.remove(state / "restore-failed")

    _write(script)  # every file there: one load, the owned table and the table that is gone
    done = subprocess.run(script.argv(), capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "loaded").read_text() == "table inet bulwark {}\ntable inet gone {\n}\n"


def test_a_policy_whose_chain_is_gone_is_not_a_failure(tmp_path, fake_nft):
    # the policy line is the script's last: a false probe there was the script's exit status, and the host
    # recorded "restore-failed" (needs a person) for a restore that was complete
    script = rollback.Script(str(tmp_path), "rb")
    script.nft_tables(fake_nft, "table inet bulwark {}\n", [])
    script.nft_policy(fake_nft, "ip", "filter", "INPUT", "drop")
    script.nft_policy(fake_nft, "ip", "filter", "FORWARD", "drop")
    _write(script)
    (tmp_path / "live").write_text("chain ip filter INPUT\n")  # FORWARD vanished in the window
    done = subprocess.run(script.argv(), capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "changed").read_text() == "chain ip filter INPUT { policy drop; }\n"
