"""The commit-confirm protocol, with its real restore script run by /bin/sh; only systemd is faked."""

import fcntl
import json
import os
import subprocess

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ansible_collections.bulwark.hardening.plugins.module_utils.host import commit_confirm as cc

MAIN, SPARE = "bulwark-rollback-firewall", "bulwark-rollback-firewall-spare"


class Killed(BaseException):
    """The module died here (a BaseException: no handler of the protocol may catch it)."""


class FakeSystemd:
    """Runs commands for real, except systemd-run/systemctl, which it records (timers by unit).
    fail_arm: systemd-run fails; fail_enable: `systemctl enable` fails; die_at: the Nth call kills the
    run (Killed) before it is made; skip_sh: `/bin/sh ...` is not run and fails."""

    def __init__(self, fail_arm=False):
        self.calls = []
        self.timers = {}  # unit -> script
        self.fail_arm = fail_arm
        self.fail_enable = False
        self.skip_sh = False
        self.die_at = None
        self.armed_after_each_call = []

    @property
    def timer(self):
        return bool(self.timers)

    def run(self, argv, data=None, check=False, what=None):
        self.calls.append(argv)
        if self.die_at is not None and len(self.calls) == self.die_at:
            raise Killed
        try:
            return self._run(argv, check, what)
        finally:
            self.armed_after_each_call.append(set(self.timers))

    def _run(self, argv, check, what):
        if argv[0] == "systemd-run":
            if self.fail_arm:
                if check:
                    raise cc.HostError(f"{what} failed (rc=1): no systemd")
                return 1, "", "no systemd"
            unit = next(a for a in argv if a.startswith("--unit=")).split("=", 1)[1]
            self.timers[unit] = argv[-1]
            return 0, "", ""
        if argv[:2] == ["systemctl", "stop"]:
            for unit in argv[2:]:
                self.timers.pop(unit.removesuffix(".timer"), None)
            return 0, "", ""
        if argv[:2] == ["systemctl", "enable"] and self.fail_enable:
            if check:
                raise cc.HostError(f"{what} failed (rc=1): enable refused")
            return 1, "", "enable refused"
        if argv[0] == "systemctl":
            return 0, "", ""
        if argv[0] == "/bin/sh" and self.skip_sh:
            if check:
                raise cc.HostError(f"{what} failed (rc=1)")
            return 1, "", "cannot fork"
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if check and done.returncode:
            raise cc.HostError(f"{what} failed (rc={done.returncode}): {done.stderr.strip()}")
        return done.returncode, done.stdout, done.stderr

    def fire(self, late=False, unit=MAIN):
        """The timer elapses: systemd runs the restore script (late: it had started before the stop)."""
        script = self.timers.pop(unit, None)
        assert script or late, f"the timer {unit} was not armed"
        return subprocess.run(["/bin/sh", script or self.script], capture_output=True, text=True, check=False)

    @property
    def script(self):
        return self.calls and next(a[-1] for a in reversed(self.calls) if a[0] == "systemd-run")


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


def _change(tx, live, backup, steps, staged=None, *, timeout=30):
    """One run of a module: arm, apply, re-arm with what to persist."""
    tx.arm(timeout, steps)
    _apply(live, backup)
    tx.rearm(timeout, {"files": [], "commands": []} if staged is None else staged)


def _listing(directory):
    """Every file below directory with its content and mtime (what check mode must not change)."""
    found = {}
    for root, _dirs, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                found[path] = (handle.read(), os.stat(path).st_mtime_ns)
    return found


def test_arm_before_apply_then_the_timer_restores_and_confirm_fails_as_rolled_back(world):
    tx, systemd, live, backup, steps, tmp = world
    boot = tmp / "boot.conf"
    assert tx.arm(30, steps) is False
    assert tx.state()[0] == cc.ARMED and systemd.timer
    _apply(live, backup)
    tx.rearm(30, {"files": [[str(boot), "new\n", 0o600]], "commands": []})
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
    _change(tx, live, backup, steps, {"files": [[str(boot), "new\n", 0o640]], "commands": [["true"]]})
    assert tx.confirm() is True
    assert not systemd.timers  # both units stopped
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
    tx.arm(30, steps)
    assert systemd.fire().returncode == 1
    assert not never.exists()
    state, detail = tx.state()
    assert state == cc.RESTORE_FAILED and detail.startswith("reload the ruleset")
    assert not os.path.exists(os.path.join(tx.dir, cc.ROLLED_BACK))  # never "rolled back" without it
    with pytest.raises(cc.RestoreFailed, match="FAILED at step 'reload the ruleset'"):
        tx.confirm()
    with pytest.raises(cc.RestoreFailed):
        tx.surface()  # every later call says so until a person clears it
    with pytest.raises(cc.RestoreFailed):
        tx.settle()


def test_restore_now_reports_rolled_back_or_raises(world):
    tx, systemd, live, backup, steps, _tmp = world
    tx.arm(30, steps)
    _apply(live, backup)
    assert tx.restore_now() == cc.ROLLED_BACK
    assert live.read_text() == "old\n"
    assert tx.state() == (cc.NONE, "")
    assert not systemd.timers


def test_a_restore_that_cannot_run_now_says_so_and_leaves_the_timer_armed(world):
    tx, systemd, live, backup, steps, _tmp = world
    tx.arm(30, steps)
    _apply(live, backup)
    systemd.skip_sh = True
    with pytest.raises(cc.RestoreFailed, match=r"the restore could not be run now .* the change stays live"):
        tx.restore_now()
    assert tx.state()[0] == cc.ARMED and MAIN in systemd.timers  # the timer still undoes it
    assert systemd.fire().returncode == 0
    assert live.read_text() == "old\n"


def test_arm_that_fails_leaves_no_marker(tmp_path):
    tx = cc.Transaction(FakeSystemd(fail_arm=True), "sshd", root=str(tmp_path))
    with pytest.raises(cc.HostError, match="arming the sshd rollback timer failed"):
        tx.arm(30, [("x", ["true"])])
    assert tx.state() == (cc.NONE, "")
    assert os.listdir(tmp_path / "sshd") == []


def test_arming_again_keeps_the_restore_of_the_last_confirmed_state(world):
    tx, systemd, live, backup, steps, _tmp = world
    _change(tx, live, backup, steps, {"files": [], "commands": [["first"]]})
    assert tx.pending()
    other = [("a restore of the unconfirmed state", ["cp", "/dev/null", str(live)])]
    assert tx.arm(30, other) is True
    assert tx.staged() is None  # what the first change staged is not what the second makes live
    tx.rearm(30, {"files": [], "commands": [["second"]]})
    assert tx.staged() == {"files": [], "commands": [["second"]]}
    systemd.fire()
    assert live.read_text() == "old\n"


def test_rearm_after_the_timer_fired_during_the_apply_is_rolled_back(world):
    tx, systemd, live, backup, steps, _tmp = world
    tx.arm(5, steps)
    _apply(live, backup)
    systemd.fire()
    with pytest.raises(cc.RolledBack):
        tx.rearm(5, {})
    assert not systemd.timers


def test_state_files_are_root_only(world):
    tx, _systemd, live, backup, steps, _tmp = world
    _change(tx, live, backup, steps)
    assert oct(os.stat(tx.dir).st_mode & 0o777) == "0o700"
    assert json.loads(open(os.path.join(tx.dir, "staged.json")).read()) == {"commands": [], "files": []}


@pytest.mark.parametrize("timeout", [0, 4, -1, "60", 1.5, True])
def test_arm_refuses_short_or_non_integer_timeouts(world, timeout):
    tx, _systemd, _live, _backup, steps, _tmp = world
    with pytest.raises(ValueError, match="at least 5 seconds"):
        tx.arm(timeout, steps)


@pytest.mark.parametrize("concern", ["", "Fire wall", "a/b", "x\n"])
def test_concern_names_are_checked_whole(concern):
    with pytest.raises(ValueError):
        cc.unit_name(concern)


def test_a_change_still_armed_whose_timer_cannot_restart_is_restored_at_once(world):
    tx, systemd, live, backup, steps, _tmp = world
    _change(tx, live, backup, steps)
    systemd.fail_arm = True
    with pytest.raises(cc.RestoredNow, match="restored the last confirmed state now"):
        tx.arm(30, steps)
    assert live.read_text() == "old\n"  # never live without a timer to undo it
    assert tx.state() == (cc.NONE, "")


def test_the_first_timer_also_covers_the_apply_and_rearm_gives_the_controller_its_window(world):
    tx, systemd, live, backup, steps, _tmp = world
    tx.arm(10, steps, apply_seconds=45)
    assert "--on-active=55s" in systemd.calls[-1]
    _apply(live, backup)
    tx.rearm(10, {})
    runs = [argv for argv in systemd.calls if argv[0] == "systemd-run"]
    assert "--on-active=10s" in runs[-1] and f"--unit={MAIN}" in runs[-1]


@pytest.mark.parametrize("value", [0, 4, -1, "4", "ten", None, True, 5.5, "60\n"])
def test_a_rollback_window_below_five_seconds_or_not_a_number_is_refused_by_name(value):
    with pytest.raises(cc.TimeoutRefused, match=r"^firewall_rollback_timeout: .* below 5 seconds"):
        cc.check_timeout(value, "firewall_rollback_timeout")


@pytest.mark.parametrize(("value", "seconds"), [(5, 5), (60, 60), ("90", 90)])
def test_a_rollback_window_of_five_seconds_or_more_is_taken(value, seconds):
    assert cc.check_timeout(value) == seconds


# --- a rollback that restores nothing is never armed ------------------------------------------------


def test_a_rollback_with_no_step_is_refused_by_name_and_nothing_is_armed(world):
    tx, systemd, _live, _backup, _steps, _tmp = world
    with pytest.raises(cc.NothingToRestore, match="no step that restores anything: refusing to arm it"):
        tx.arm(30, [])
    assert tx.state() == (cc.NONE, "") and not systemd.timers
    assert not os.path.exists(os.path.join(tx.dir, "restore.sh"))
    with pytest.raises(cc.NothingToRestore):
        cc.render_restore("/x", [])


def test_a_leftover_confirmed_is_not_pending_so_the_next_change_is_snapshotted(world):
    """The finding: a confirmation killed (or failed) while persisting left `confirmed`; the next run took
    the change for pending, skipped the snapshot and armed a rollback with no step."""
    tx, systemd, live, backup, steps, tmp = world
    boot = tmp / "boot.conf"
    _change(tx, live, backup, steps, {"files": [[str(boot), "new\n", 0o600]], "commands": []})
    os.rename(os.path.join(tx.dir, cc.ARMED), os.path.join(tx.dir, cc.CONFIRMED))  # killed after the claim
    assert not tx.pending()
    settled = tx.settle()
    assert settled.changed and "was persisted now" in settled.notes[0]
    assert boot.read_text() == "new\n" and tx.state() == (cc.NONE, "")
    assert not systemd.timers
    # the next change is a fresh one: its own restore, of the state the confirmation kept
    second = [("put the confirmed file back", ["cp", str(tmp / "confirmed.conf"), str(live)])]
    (tmp / "confirmed.conf").write_text(live.read_text())
    assert tx.arm(30, second) is False
    live.write_text("cut off\n")
    tx.rearm(30, {})
    assert systemd.fire().returncode == 0
    assert live.read_text() == "new\n"
    assert tx.state()[0] == cc.ROLLED_BACK


def test_a_leftover_confirmed_whose_persist_fails_again_is_reported_by_name_and_blocks_arming(world):
    tx, systemd, live, backup, steps, _tmp = world
    _change(tx, live, backup, steps, {"files": [], "commands": [["systemctl", "enable", "nftables.service"]]})
    systemd.fail_enable = True
    with pytest.raises(cc.PersistFailed, match=r"persisting it FAILED: systemctl enable nftables\.service"):
        tx.confirm()
    assert tx.state()[0] == cc.CONFIRMED and tx.staged()  # kept for the next run to finish
    with pytest.raises(cc.Unsettled, match=r"persisting it FAILED.*Nothing new was applied") as exc:
        tx.settle()
    assert exc.value.changed is True
    with pytest.raises(cc.Unsettled, match="settle it first"):
        tx.arm(30, steps)  # never armed over it
    systemd.fail_enable = False
    assert tx.confirm() is True  # a later confirmation finishes it
    assert tx.state() == (cc.NONE, "") and tx.staged() is None


def test_a_leftover_confirmed_without_staged_json_is_finished(world):
    tx, _systemd, live, backup, steps, _tmp = world
    _change(tx, live, backup, steps)
    os.rename(os.path.join(tx.dir, cc.ARMED), os.path.join(tx.dir, cc.CONFIRMED))
    os.unlink(os.path.join(tx.dir, "staged.json"))  # killed after persisting, before the marker went
    assert tx.settle().changed
    assert tx.state() == (cc.NONE, "")


def test_a_confirmation_of_a_change_that_never_staged_reports_that_nothing_was_persisted(world):
    tx, systemd, live, backup, steps, _tmp = world
    tx.arm(30, steps)
    _apply(live, backup)  # killed before the re-arm staged what to persist
    with pytest.raises(cc.PersistFailed, match="NOTHING was persisted"):
        tx.confirm()
    assert tx.state() == (cc.NONE, "") and not systemd.timers  # kept: the controller got through


def test_a_confirmation_that_cannot_claim_the_change_says_so_and_it_stays_armed(world, monkeypatch):
    tx, systemd, live, backup, steps, _tmp = world
    _change(tx, live, backup, steps)

    def rename(_src, _dst):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(cc.os, "rename", rename)
    with pytest.raises(cc.HostError, match=r"could not claim the change .* it stays armed"):
        tx.confirm()
    monkeypatch.undo()
    assert tx.state()[0] == cc.ARMED and MAIN in systemd.timers


def test_the_timer_of_a_confirmation_killed_before_it_stopped_it_restores_nothing(world):
    tx, systemd, live, backup, steps, _tmp = world
    _change(tx, live, backup, steps)
    os.rename(os.path.join(tx.dir, cc.ARMED), os.path.join(tx.dir, cc.CONFIRMED))  # killed here
    assert systemd.fire().returncode == 0
    assert live.read_text() == "new\n"
    assert tx.state()[0] == cc.CONFIRMED  # never "rolled back": it did not restore


def test_a_restore_cut_off_midway_is_run_again_by_the_next_run(world):
    tx, _systemd, live, backup, steps, tmp = world
    marker = tmp / "first-step-ran"
    cut = [("a first step", ["touch", str(marker)]), *steps]
    tx.arm(30, cut)
    _apply(live, backup)
    tx.rearm(30, {})
    # the restore claimed the change, ran its first step and was killed (no one holds the lock now)
    os.rename(os.path.join(tx.dir, cc.ARMED), os.path.join(tx.dir, cc.RESTORING))
    marker.touch()
    assert not tx.pending()
    settled = tx.settle()
    assert settled.changed and settled.rolled_back and "run again to its end" in settled.notes[0]
    assert live.read_text() == "old\n"
    assert tx.state() == (cc.NONE, "")


@pytest.mark.parametrize("finisher", ["timer", "confirmation"])
def test_a_cut_off_restore_is_also_finished_by_the_timer_or_a_confirmation(world, finisher):
    tx, systemd, live, backup, steps, _tmp = world
    _change(tx, live, backup, steps)
    os.rename(os.path.join(tx.dir, cc.ARMED), os.path.join(tx.dir, cc.RESTORING))
    if finisher == "timer":  # the spare of an interrupted re-arm, say
        assert systemd.fire().returncode == 0
        assert tx.state()[0] == cc.ROLLED_BACK
    else:
        with pytest.raises(cc.RolledBack):
            tx.confirm()  # the restore had claimed it: the confirmation finishes it and says so
    assert live.read_text() == "old\n"


def test_a_restore_running_now_is_waited_for_and_never_run_twice(world, monkeypatch):
    tx, _systemd, live, backup, steps, _tmp = world
    _change(tx, live, backup, steps)
    os.rename(os.path.join(tx.dir, cc.ARMED), os.path.join(tx.dir, cc.RESTORING))
    monkeypatch.setattr(cc, "RESTORE_WAIT", 1)
    fd = os.open(tx.dir, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # the timer's restore runs right now
    try:
        with pytest.raises(cc.Unsettled, match="running on the host for more than 1 s"):
            tx.settle()
        assert tx.predict().notes == ["firewall: a rollback is running on the host right now"]
    finally:
        os.close(fd)
    assert live.read_text() == "new\n"  # not run by the module while the other one held the lock


def test_a_cut_off_restore_whose_script_is_gone_needs_a_person(world):
    tx, _systemd, live, backup, steps, _tmp = world
    _change(tx, live, backup, steps)
    os.rename(os.path.join(tx.dir, cc.ARMED), os.path.join(tx.dir, cc.RESTORING))
    os.unlink(os.path.join(tx.dir, "restore.sh"))
    with pytest.raises(cc.Unsettled, match="missing or damaged: the host is in an unknown state"):
        tx.settle()
    with pytest.raises(cc.Unsettled):
        tx.arm(30, steps)


def test_restore_failed_and_rolled_back_left_beside_restoring_are_not_run_again(world):
    tx, systemd, live, backup, steps, _tmp = world
    _change(tx, live, backup, steps)
    open(os.path.join(tx.dir, cc.RESTORING), "w").close()
    os.rename(os.path.join(tx.dir, cc.ARMED), os.path.join(tx.dir, cc.ROLLED_BACK))  # killed before rm
    live.write_text("what the operator did since\n")
    assert systemd.fire().returncode == 0
    assert live.read_text() == "what the operator did since\n"
    assert not os.path.exists(os.path.join(tx.dir, cc.RESTORING))


@pytest.mark.parametrize(
    "script",
    [
        None,  # missing
        "",  # empty
        "#!/bin/sh\nset -u\nmv armed restoring || exit 0\n",  # garbled
        # what the old code wrote for a leftover `confirmed`: no step, and "rolled back" all the same
        "#!/bin/sh\nset -u\ndir=DIR\n"
        'mv "$dir/armed" "$dir/restoring" 2>/dev/null || exit 0\n'
        'date -u +%FT%TZ > "$dir/rolled-back.tmp" && mv "$dir/rolled-back.tmp" "$dir/rolled-back"\n'
        'rm -f "$dir/restoring" "$dir/staged.json"\n',
    ],
    ids=["missing", "empty", "garbled", "zero-step"],
)
def test_armed_with_an_unusable_restore_script_is_discarded_and_snapshotted_anew(world, script):
    tx, systemd, live, backup, steps, tmp = world
    _change(tx, live, backup, steps)
    path = os.path.join(tx.dir, "restore.sh")
    if script is None:
        os.unlink(path)
    else:
        with open(path, "w") as handle:
            handle.write(script.replace("DIR", tx.dir))
    assert not tx.pending()
    before = _listing(tx.dir)
    assert tx.predict().changed and _listing(tx.dir) == before  # check mode touches nothing
    settled = tx.settle()
    assert settled.changed and "could undo nothing" in settled.notes[0]
    assert tx.state() == (cc.NONE, "") and not systemd.timers
    (tmp / "now.conf").write_text(live.read_text())  # the snapshot of what is live
    assert tx.arm(30, [("put it back", ["cp", str(tmp / "now.conf"), str(live)])]) is False
    live.write_text("cut off\n")
    systemd.fire()
    assert live.read_text() == "new\n"


def test_strays_without_a_marker_are_cleared(world):
    tx, _systemd, live, backup, steps, _tmp = world
    _change(tx, live, backup, steps)
    tx.confirm()
    for name in ("staged.json", ".restore.sh.bulwark-tmp", "rolled-back.tmp", "restore-failed.tmp"):
        open(os.path.join(tx.dir, name), "w").close()
    assert tx.confirm() is False  # a stray staged.json is never persisted
    assert tx.settle() == cc.Settled([], None, False)
    assert sorted(os.listdir(tx.dir)) == ["restore.sh"]


@pytest.mark.parametrize(
    "leftover",
    ["confirmed", "confirmed-unstaged", "restoring", "armed-no-script", "rolled-back", "strays"],
)
def test_check_mode_predicts_every_leftover_without_touching_anything(world, leftover):
    tx, systemd, live, backup, steps, _tmp = world
    _change(tx, live, backup, steps)
    marker = {"restoring": cc.RESTORING, "rolled-back": cc.ROLLED_BACK}.get(leftover, cc.CONFIRMED)
    if leftover not in {"armed-no-script", "strays"}:
        os.rename(os.path.join(tx.dir, cc.ARMED), os.path.join(tx.dir, marker))
    if leftover == "confirmed-unstaged":
        os.unlink(os.path.join(tx.dir, "staged.json"))
    if leftover == "armed-no-script":
        os.unlink(os.path.join(tx.dir, "restore.sh"))
    if leftover == "strays":
        tx.confirm()
        open(os.path.join(tx.dir, "staged.json"), "w").close()
    before, calls = _listing(tx.dir), len(systemd.calls)
    predicted = tx.predict()
    assert _listing(tx.dir) == before and len(systemd.calls) == calls
    assert predicted.changed is (leftover not in ("rolled-back", "strays"))
    assert (predicted.rolled_back is not None) is (leftover == "rolled-back")


# --- a kill at any point of arming or re-arming leaves an applied change with a timer -----------------


def test_rearm_never_leaves_a_moment_without_a_timer(world):
    tx, systemd, live, backup, steps, _tmp = world
    tx.arm(30, steps)
    first = len(systemd.calls)
    _apply(live, backup)
    tx.rearm(30, {})
    tx.arm(30, steps)  # a later run while the change is still unconfirmed
    tx.rearm(30, {})
    assert all(systemd.armed_after_each_call[first - 1 :])
    assert set(systemd.timers) == {MAIN}


@pytest.mark.parametrize("die_at", range(1, 8))
def test_a_run_killed_at_any_call_of_rearm_leaves_the_change_undone_by_a_timer(world, die_at):
    tx, systemd, live, backup, steps, _tmp = world
    tx.arm(30, steps)
    _apply(live, backup)
    systemd.die_at = len(systemd.calls) + die_at
    try:
        tx.rearm(30, {})
    except Killed:
        pass
    systemd.die_at = None
    assert tx.pending() and systemd.timers
    for unit in list(systemd.timers):
        systemd.fire(unit=unit)
    assert live.read_text() == "old\n" and tx.state()[0] == cc.ROLLED_BACK


# --- the restore script round-trips, and refuses what it cannot say -----------------------------------

_WORD = st.text(st.characters(blacklist_characters="\n\0", blacklist_categories=("Cs",)), min_size=1)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(_WORD, st.lists(_WORD, min_size=1, max_size=4)), min_size=1, max_size=4))
@example([("it's $(reboot)", ["nft", "-f", "/var/lib/bulwark/a b;`x`#\\"])])
@example([("--", ["--", "-", "'\"'"])])
def test_parse_restore_reads_back_exactly_what_render_restore_wrote(steps):
    text = cc.render_restore("/var/lib/bulwark/commit-confirm/firewall", steps)
    assert cc.parse_restore("/var/lib/bulwark/commit-confirm/firewall", text) == [
        (what, list(argv)) for what, argv in steps
    ]
    assert cc.parse_restore("/elsewhere", text) is None


@pytest.mark.parametrize("step", [("two\nlines", ["true"]), ("x", ["rm", "a\nb"]), ("", ["true"]), ("x", [])])
def test_a_restore_step_the_script_cannot_carry_is_refused(step):
    with pytest.raises(ValueError):
        cc.render_restore("/x", [step])


def test_a_failed_restore_that_cannot_be_recorded_leaves_restoring(world, monkeypatch):
    # `mv ...; rm restoring` removed the only marker when the mv failed (disk full, read-only): a host
    # half restored read as clean. `restoring` stays, and the next run finishes the restore.
    tx, systemd, _live, _backup, _steps, tmp = world
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    (bin_dir / "mv").write_text(
        '#!/bin/sh\ncase "$*" in *restore-failed.tmp*) echo "No space left on device" >&2; exit 1 ;; esac\n'
        'exec /bin/mv "$@"\n'
    )
    (bin_dir / "mv").chmod(0o755)
    tx.arm(30, [("reload the ruleset", ["false"])])
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    assert systemd.fire().returncode == 1
    assert tx.state()[0] == cc.RESTORING
