import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils import commit_confirm


def test_arm_command_runs_restore_once_after_timeout():
    argv = commit_confirm.arm_command("sshd", 60, ["cp", "/a b", "/c"])
    assert argv[0] == "systemd-run"
    assert "--unit=bulwark-rollback-sshd" in argv
    assert "--on-active=60s" in argv
    assert argv[-3:] == ["/bin/sh", "-c", "cp '/a b' /c"]


def test_arm_command_takes_a_shell_script_as_is():
    argv = commit_confirm.arm_command("firewall", 10, "nft -f /x && echo done")
    assert argv[-1] == "nft -f /x && echo done"


@pytest.mark.parametrize("timeout", [0, 4, -1, "60", 1.5])
def test_arm_command_refuses_short_or_non_integer_timeouts(timeout):
    with pytest.raises(ValueError, match="timeout"):
        commit_confirm.arm_command("sshd", timeout, ["true"])


@pytest.mark.parametrize("concern", ["", "SSHD", "a b", "x;rm", "-x"])
def test_unit_names_are_safe(concern):
    with pytest.raises(ValueError, match="concern"):
        commit_confirm.unit_name(concern)


def test_pending_and_disarm_name_the_timer():
    assert commit_confirm.pending_command("sshd")[-1] == "bulwark-rollback-sshd.timer"
    assert commit_confirm.disarm_command("sshd") == ["systemctl", "stop", "bulwark-rollback-sshd.timer"]
