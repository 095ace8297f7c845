"""The commit-confirm protocol, with its real restore script run by /bin/sh; only systemd is faked."""

import json
import os
import subprocess

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.host import commit_confirm as cc


class FakeSystemd:
    """Runs commands for real, except systemd-run/systemctl, which it records (timer on/off)."""

    def __init__(self, fail_arm=False):
        self.calls = []
        self.timer = False
        self.fail_arm = fail_arm

    def run(self, argv, data=None, check=False, what=None):
        self.calls.append(argv)
        if argv[0] == "systemd-run":
            if self.fail_arm:
                if check:
                    raise cc.HostError(f"{what} failed (rc=1): no systemd")
                return 1, "", "no systemd"
            self.timer = True
            self.script = argv[-1]
            return 0, "", ""
        if argv[0] == "systemctl":
            self.timer = False
            return 0, "", ""
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if check and done.returncode:
            raise cc.HostError(f"{what} failed (rc={done.returncode}): {done.stderr.strip()}")
        return done.returncode, done.stdout, done.stderr

    def fire(self, late=False):
        """The timer elapses: systemd runs the restore script (late: it had started before the stop)."""
        assert self.timer or late, "the timer was not armed"
        self.timer = False
        return subprocess.run(["/bin/sh", self.script], capture_output=True, text=True, check=False)


@pytest.fixture
def world(tmp_path):
    live = tmp_path / "live.conf"
    live.write_text("old\n")
    backup = tmp_path / "backup.conf"
    systemd = FakeSystemd()
    tx = cc.Transaction(systemd, "firewall", root=str(tmp_path / "cc"))
    steps = [("put the previous file back", ["cp", str(backup), str(live)])]
    return tx, systemd, live, backup, steps, tmp_path


def _apply(live, backup):
    backup.write_text(live.read_text())
    live.write_text("new\n")


def test_arm_before_apply_then_the_timer_restores_and_confirm_fails_as_rolled_back(world):
    tx, systemd, live, backup, steps, tmp = world
    boot = tmp / "boot.conf"
    assert tx.arm(30, steps, {"files": [[str(boot), "new\n", 0o600]], "commands": []}) is False
    assert tx.state()[0] == cc.ARMED and systemd.timer
    _apply(live, backup)
    assert systemd.fire().returncode == 0
    assert live.read_text() == "old\n"
    assert tx.state()[0] == cc.ROLLED_BACK
    assert tx.surface(clear=False) and tx.state()[0] == cc.ROLLED_BACK  # check mode leaves the record
    with pytest.raises(cc.RolledBack, match="rolled back by the host"):
        tx.confirm()
    assert not boot.exists()  # nothing persisted
    assert tx.state() == (cc.NONE, "")


def test_confirm_wins_the_rename_and_a_late_timer_changes_nothing(world):
    tx, systemd, live, backup, steps, tmp = world
    boot = tmp / "etc/boot.conf"
    tx.arm(30, steps, {"files": [[str(boot), "new\n", 0o640]], "commands": [["true"]]})
    _apply(live, backup)
    assert tx.confirm() is True
    assert systemd.fire(late=True).returncode == 0  # the timer had fired just before it was stopped
    assert live.read_text() == "new\n"  # the restore found no "armed" to claim
    assert boot.read_text() == "new\n" and oct(boot.stat().st_mode & 0o777) == "0o640"
    assert tx.state() == (cc.NONE, "")
    assert tx.confirm() is False  # nothing pending any more


def test_a_failing_restore_step_stops_the_script_is_recorded_and_surfaced(world):
    tx, systemd, _live, _backup, _steps, tmp = world
    never = tmp / "never"
    steps = [
        ("reload the ruleset", ["false"]),
        ("a later step", ["touch", str(never)]),
    ]
    tx.arm(30, steps, {})
    assert systemd.fire().returncode == 1
    assert not never.exists()
    state, detail = tx.state()
    assert state == cc.RESTORE_FAILED and detail.startswith("reload the ruleset")
    with pytest.raises(cc.RestoreFailed, match="FAILED at step 'reload the ruleset'"):
        tx.confirm()
    with pytest.raises(cc.RestoreFailed):
        tx.surface()  # every later call says so until a person clears it


def test_restore_now_reports_rolled_back_or_raises(world):
    tx, _systemd, live, backup, steps, _tmp = world
    tx.arm(30, steps, {})
    _apply(live, backup)
    assert tx.restore_now() == cc.ROLLED_BACK
    assert live.read_text() == "old\n"
    assert tx.state() == (cc.NONE, "")


def test_arm_that_fails_leaves_no_marker(tmp_path):
    tx = cc.Transaction(FakeSystemd(fail_arm=True), "sshd", root=str(tmp_path))
    with pytest.raises(cc.HostError, match="arming the sshd rollback timer failed"):
        tx.arm(30, [("x", ["true"])], {})
    assert tx.state() == (cc.NONE, "")
    assert os.listdir(tmp_path / "sshd") == []


def test_arming_again_keeps_the_restore_of_the_last_confirmed_state(world):
    tx, systemd, live, backup, steps, _tmp = world
    tx.arm(30, steps, {"files": [], "commands": [["first"]]})
    _apply(live, backup)
    assert tx.pending()
    other = [("a restore of the unconfirmed state", ["cp", "/dev/null", str(live)])]
    assert tx.arm(30, other, {"files": [], "commands": [["second"]]}) is True
    assert tx.staged() == {"files": [], "commands": [["second"]]}
    systemd.fire()
    assert live.read_text() == "old\n"


def test_rearm_after_the_timer_fired_during_the_apply_is_rolled_back(world):
    tx, systemd, live, backup, steps, _tmp = world
    tx.arm(5, steps, {})
    _apply(live, backup)
    systemd.fire()
    with pytest.raises(cc.RolledBack):
        tx.rearm(5)


def test_state_files_are_root_only(world):
    tx, _systemd, _live, _backup, steps, _tmp = world
    tx.arm(30, steps, {"files": [], "commands": []})
    assert oct(os.stat(tx.dir).st_mode & 0o777) == "0o700"
    assert json.loads(open(os.path.join(tx.dir, "staged.json")).read()) == {"commands": [], "files": []}


@pytest.mark.parametrize("timeout", [0, 4, -1, "60", 1.5, True])
def test_arm_refuses_short_or_non_integer_timeouts(world, timeout):
    tx, _systemd, _live, _backup, steps, _tmp = world
    with pytest.raises(ValueError, match="at least 5 seconds"):
        tx.arm(timeout, steps, {})


@pytest.mark.parametrize("concern", ["", "Fire wall", "a/b", "x\n"])
def test_concern_names_are_checked_whole(concern):
    with pytest.raises(ValueError):
        cc.unit_name(concern)


def test_a_change_still_armed_whose_timer_cannot_restart_is_restored_at_once(world):
    tx, systemd, live, backup, steps, _tmp = world
    tx.arm(30, steps, {})
    _apply(live, backup)
    systemd.fail_arm = True
    with pytest.raises(cc.RestoredNow, match="restored the last confirmed state now"):
        tx.arm(30, steps, {})
    assert live.read_text() == "old\n"  # never live without a timer to undo it
    assert tx.state() == (cc.NONE, "")


def test_the_first_timer_also_covers_the_apply_and_rearm_gives_the_controller_its_window(world):
    tx, systemd, live, backup, steps, _tmp = world
    tx.arm(10, steps, {}, apply_seconds=45)
    assert "--on-active=55s" in systemd.calls[-1]
    _apply(live, backup)
    tx.rearm(10)
    assert "--on-active=10s" in systemd.calls[-1]


@pytest.mark.parametrize("value", [0, 4, -1, "4", "ten", None, True, 5.5, "60\n"])
def test_a_rollback_window_below_five_seconds_or_not_a_number_is_refused_by_name(value):
    with pytest.raises(cc.TimeoutRefused, match=r"^firewall_rollback_timeout: .* below 5 seconds"):
        cc.check_timeout(value, "firewall_rollback_timeout")


@pytest.mark.parametrize(("value", "seconds"), [(5, 5), (60, 60), ("90", 90)])
def test_a_rollback_window_of_five_seconds_or_more_is_taken(value, seconds):
    assert cc.check_timeout(value) == seconds
