"""fail2ban_jail's apply plan: files as host operations with their inverses, the commands, the verdicts."""

from ansible_collections.bulwark.hardening.plugins.module_utils.fail2ban import apply
from ansible_collections.bulwark.hardening.plugins.module_utils.fail2ban.jail import MARKER
from ansible_collections.bulwark.hardening.plugins.module_utils.fail2ban.state import plan
from ansible_collections.bulwark.hardening.plugins.module_utils.host import plan as host

OLD = MARKER + "\n[old]\nenabled = true\n"
SSHD = MARKER + "\n[sshd]\nenabled = true\n"


def _plan():
    desired = {"jail.d/bulwark-sshd.local": SSHD}
    owned = {
        "jail.d/bulwark-sshd.local": MARKER + "\n[sshd]\nenabled = false\n",
        "jail.d/bulwark-old.local": OLD,
    }
    return plan(
        desired, owned, set(), {"jail.d/bulwark-sshd.local": 0o644, "jail.d/bulwark-old.local": 0o640}
    )


def test_the_files_become_writes_and_removals_each_undone_by_putting_the_file_back():
    the_plan = _plan()
    ops = apply.host_plan("/etc/fail2ban", the_plan, [["fail2ban-client", "reload"]]).ops
    write, remove, command = ops
    assert isinstance(write, host.Write) and write.path == "/etc/fail2ban/jail.d/bulwark-sshd.local"
    assert (write.content, write.mode, write.anchor, write.make_dirs) == (SSHD, 0o640, "/etc/fail2ban", 0o755)
    assert write.inverse.content == the_plan.before["jail.d/bulwark-sshd.local"]
    assert write.inverse.mode == 0o644  # the mode it had
    assert isinstance(remove, host.Remove) and remove.inverse.content == OLD
    assert command == host.Command(("fail2ban-client", "reload"), what="fail2ban-client reload")


def test_a_new_file_is_undone_by_removing_it_and_the_restore_runs_newest_first():
    the_plan = plan({"jail.d/bulwark-sshd.local": SSHD}, {}, set())
    (write,) = apply.file_operations("/etc/fail2ban", the_plan)
    assert write.inverse == host.Remove(
        "/etc/fail2ban/jail.d/bulwark-sshd.local",
        what="remove /etc/fail2ban/jail.d/bulwark-sshd.local",
        anchor="/etc/fail2ban",
    )
    restore = apply.restore_plan("/etc/fail2ban", _plan(), [["systemctl", "restart", "fail2ban.service"]])
    assert [op.what for op in restore.ops] == [
        "put back /etc/fail2ban/jail.d/bulwark-old.local",
        "put back /etc/fail2ban/jail.d/bulwark-sshd.local",
        "systemctl restart fail2ban.service",
    ]


def test_commands_start_a_stopped_server_and_enable_it_first():
    start = apply.start_commands("/bin/systemctl")
    enable = apply.enable_commands("/bin/systemctl", True, enabled=False)
    got = apply.commands_for("/usr/bin/fail2ban-client", _plan(), by_filter={}, running=None, wanted=["sshd"],
                             start=start, enable=enable)  # fmt: skip
    assert got == [
        ["/bin/systemctl", "enable", "--quiet", "fail2ban.service"],
        ["/bin/systemctl", "reset-failed", "fail2ban.service"],
        ["/bin/systemctl", "restart", "fail2ban.service"],
    ]
    assert apply.enable_commands("/bin/systemctl", True, enabled=True) == []
    assert apply.enable_commands(None, True, enabled=False) == []
    assert apply.start_commands(None) == [["service", "fail2ban", "restart"]]


def test_a_running_server_reloads_with_the_real_client():
    got = apply.commands_for("/usr/bin/fail2ban-client", _plan(), by_filter={}, running=["old", "sshd"],
                             wanted=["sshd"], start=[], enable=[])  # fmt: skip
    # old stops (a full reload); sshd's file changed: restarted alone.
    assert got == [
        ["/usr/bin/fail2ban-client", "reload"],
        ["/usr/bin/fail2ban-client", "reload", "--restart", "sshd"],
    ]


def test_verdicts_name_what_is_missing():
    assert apply.verdict(["sshd"], None, []) == "the fail2ban server is not running after the change"
    assert apply.verdict(["sshd", "web"], ["sshd"], []) == (
        "the fail2ban server runs ['sshd'] but not the declared jails ['web']"
    )
    assert apply.verdict(["sshd"], ["sshd"], ["sshd"]) == "these jails run without any ban action: ['sshd']"
    assert apply.verdict(["sshd"], ["sshd"], []) is None


def test_the_config_test_refusal_quotes_fail2bans_errors():
    assert apply.config_test_refusal(0, "", "") is None
    refusal = apply.config_test_refusal(255, "", "x\nERROR  No file(s) found for glob /var/log/ghost.log\n")
    assert isinstance(refusal, host.Refused)
    assert str(refusal) == (
        "fail2ban's configuration test (fail2ban-client -t) rejects the new jails: "
        "No file(s) found for glob /var/log/ghost.log"
    )


def test_the_interpreter_comes_from_the_clients_shebang():
    assert apply.interpreter_of("#!/usr/bin/python3.11 -s\nimport x\n") == "/usr/bin/python3.11"
    assert apply.interpreter_of(None) == "/usr/bin/python3"


def test_the_failure_text_says_whether_the_files_were_restored():
    assert apply.failure_text("boom", True, ["a", "b"]) == (
        "boom The previous jail files were restored. fail2ban says: a | b"
    )
    assert apply.failure_text("boom", False, []) == "boom fail2ban says: "
    assert apply.log_errors("ok\nERROR one\nfine\nERROR two\n") == ["ERROR one", "ERROR two"]
