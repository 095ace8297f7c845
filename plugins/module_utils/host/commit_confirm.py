"""Commit-confirm: one protocol for every change that can cut the controller off (sshd, firewall, ...).

A change is staged in a directory of its own (`<root>/<concern>/`, root-only):

- `restore.sh`  the steps that put back what the change replaces, written BEFORE anything is applied
  (never without a step: a rollback that restores nothing is refused by name, not armed);
- `staged.json` what to persist once the change is confirmed: {"files": [[path, text, mode], ...],
  "commands": [[argv...], ...]} (the boot configuration, enabling the unit that loads it, ...), written
  AFTER the apply, so that it always describes what is live;
- one marker whose name is the state:

      armed --(confirm wins the rename)--> confirmed --(persisted)--> (none)
      armed --(the timer or a failed apply wins)--> restoring --> rolled-back | restore-failed

The confirmation and the restore race for ONE atomic rename of `armed`: whoever renames it owns the
outcome, so a confirm that comes while the timer's restore runs fails as rolled back and persists
nothing, and a restore never undoes a change that was confirmed. The timer is a transient systemd
unit that runs `restore.sh` once, `timeout` seconds after it was armed; restarting it starts a spare
unit first, so that a run killed at any point leaves an applied change with a timer. A restore holds a
lock on the directory while it runs; a `restoring` that nobody holds was cut off, and is run again from
its first step. A restore stops at its first failing step and records it (`restore-failed`: the step and
its output); every later call surfaces it. Only a restore whose every step ran and succeeded records
`rolled-back`.

What a killed or failed run leaves is settled by the next one (`settle`) before anything new is decided:
a `confirmed` is persisted (or its failure named), a cut-off restore is finished, an `armed` whose
restore script is missing or damaged is discarded (it could undo nothing) so that the live state is
snapshotted anew, and strays are removed.
"""

import collections
import fcntl
import json
import os
import re
import shlex
import time

from . import files
from .files import HostError

ROOT = "/var/lib/bulwark/commit-confirm"
UNIT_PREFIX = "bulwark-rollback-"
SPARE_SUFFIX = "-spare"
_CONCERN = re.compile(r"[a-z0-9][a-z0-9-]{0,40}")

# States, as the marker files are named, and what each means to the operator.
NONE, ARMED, CONFIRMED, RESTORING, ROLLED_BACK, RESTORE_FAILED = (
    "none",
    "armed",
    "confirmed",
    "restoring",
    "rolled-back",
    "restore-failed",
)
# Reported by the confirmation when the change was kept but persisting it failed (not a marker).
PERSIST_FAILED = "persist-failed"
_MARKERS = (RESTORE_FAILED, RESTORING, ARMED, CONFIRMED, ROLLED_BACK)  # precedence when several exist
# Left by a write or a restore that was killed between its temporary file and the rename.
_STRAYS = (
    "staged.json",
    ".staged.json.bulwark-tmp",
    ".restore.sh.bulwark-tmp",
    ".armed.bulwark-tmp",
    "restore-failed.tmp",
    "rolled-back.tmp",
)
# How long a run waits for a restore that runs right now (a reload, nft -f) before it gives up.
RESTORE_WAIT = 120


# Every change is applied with commit-confirm: a shorter window than this is missed by a loaded host's
# reconnect (new SSH login, sudo, Python), and 0 would mean "no rollback", which the protocol never offers.
MIN_TIMEOUT = 5


class TimeoutRefused(ValueError):
    """A rollback timeout below MIN_TIMEOUT; the message names the option."""


class NothingToRestore(ValueError):
    """A rollback without a step would record "rolled back" and restore nothing: it is never armed."""


NOTHING_TO_RESTORE = (
    "the rollback has no step that restores anything: refusing to arm it (it would record 'rolled back'"
    " and put nothing back)"
)


def check_timeout(value, option="rollback_timeout"):
    """The rollback window in seconds, or TimeoutRefused naming `option`."""
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        seconds = None
    if isinstance(value, bool) or seconds is None or str(seconds) != str(value) or seconds < MIN_TIMEOUT:
        raise TimeoutRefused(
            f"{option}: {value!r} is below {MIN_TIMEOUT} seconds or not a number of seconds (every change is"
            " applied with commit-confirm; there is no 'no rollback')"
        )
    return seconds


class RolledBack(HostError):
    """The change was undone by the host (timer or failed apply) instead of being kept."""


class RestoredNow(RolledBack):
    """The rollback of a change that was still armed could not be re-armed, so it was restored at once."""


class RestoreFailed(HostError):
    """The host tried to put the previous state back and a step failed: the host needs a person."""


class PersistFailed(HostError):
    """The change was confirmed and stays live, but what loads it at boot could not be persisted."""


class Unsettled(HostError):
    """What an interrupted run left could not be finished; nothing new may be armed over it.
    `changed`: whether the host was changed on the way (a restore run again, some files persisted)."""

    def __init__(self, msg, changed=False):
        super().__init__(msg)
        self.changed = changed


# What settle() (or predict(), in check mode) found: warnings for the operator, the time of a finished
# rollback (or None), and whether the host was (or would be) changed.
Settled = collections.namedtuple("Settled", "notes rolled_back changed")


def unit_name(concern):
    if not _CONCERN.fullmatch(concern or ""):
        raise ValueError(f"invalid commit-confirm concern name: {concern!r}")
    return UNIT_PREFIX + concern


def render_restore(directory, steps):
    """The restore script: take the directory's lock, claim the change by renaming `armed` (or finish a
    restore that was cut off), then each (what, argv) step in turn, stopping at the first that fails with
    what failed recorded in `restore-failed`; `rolled-back` only when every step succeeded.

    NothingToRestore when there is no step: such a script could only claim to have rolled back."""
    steps = list(steps or ())
    if not steps:
        raise NothingToRestore(NOTHING_TO_RESTORE)
    for what, argv in steps:
        if not what or not argv or any("\n" in word or "\0" in word for word in [what, *argv]):
            raise ValueError(f"restore step {what!r}: {argv!r} is empty or has a line break")
    q = shlex.quote
    lines = [
        "#!/bin/sh",
        "# bulwark.hardening commit-confirm: put back what an unconfirmed change replaced.",
        "set -u",
        f"dir={q(directory)}",
        "# One restore at a time: the lock on the directory is held while the steps run (and by them).",
        'exec 9<"$dir" || exit 1',
        "if command -v flock >/dev/null; then flock -w 300 9 || exit 1; fi",
        '# Whoever renames "armed" owns the outcome: a confirmation that got there first wins. A "restoring"',
        "# that nobody holds the lock on was cut off before it recorded an outcome: run it again.",
        'if ! mv "$dir/armed" "$dir/restoring" 2>/dev/null; then',
        '  [ -e "$dir/restoring" ] || exit 0',
        '  if [ -e "$dir/rolled-back" ] || [ -e "$dir/restore-failed" ]; then',
        '    rm -f "$dir/restoring"; exit 0',
        "  fi",
        "fi",
        "failed() {",
        '  printf \'%s\\n%s\\n\' "$1" "$2" > "$dir/restore-failed.tmp"',
        '  # without the record, "restoring" stays: a half-restored host must never read as clean',
        '  mv -f "$dir/restore-failed.tmp" "$dir/restore-failed" && rm -f "$dir/restoring"',
        "  exit 1",
        "}",
        "step() {",
        "  what=$1; shift",
        '  out=$("$@" 2>&1) || failed "$what" "$out"',
        "}",
    ]
    lines += [f"step {q(what)} {shlex.join(argv)}" for what, argv in steps]
    lines += [
        '{ date -u +%FT%TZ > "$dir/rolled-back.tmp" && mv -f "$dir/rolled-back.tmp" "$dir/rolled-back"; } ||',
        '  failed "recording the rollback" "the steps ran, but rolled-back could not be written"',
        'rm -f "$dir/restoring" "$dir/staged.json"',
        "",
    ]
    return "\n".join(lines)


def parse_restore(directory, text):
    """The steps of a restore script exactly as render_restore(directory, steps) writes it, or None
    (missing, damaged, without a step, or another directory's)."""
    if not text:
        return None
    steps = []
    for line in text.split("\n"):  # as sh reads it (str.splitlines also splits at \x85, \u2028, ...)
        if line.startswith("step "):
            try:
                words = shlex.split(line[len("step ") :])
            except ValueError:
                return None
            if len(words) < 2:
                return None
            steps.append((words[0], words[1:]))
    try:
        return steps if render_restore(directory, steps) == text else None
    except ValueError:
        return None


class Transaction:
    """The commit-confirm state of one concern on this host."""

    def __init__(self, runner, concern, root=ROOT):
        self.runner = runner
        self.concern = concern
        self.unit = unit_name(concern)
        self.units = (self.unit, self.unit + SPARE_SUFFIX)
        self.dir = os.path.join(root, concern)
        self._root = root

    def _path(self, name):
        return os.path.join(self.dir, name)

    def state(self):
        """(state, detail): the marker present (restore-failed first), and its content."""
        for name in _MARKERS:
            text = files.read(self._path(name))
            if text is not None:
                return name, text.strip()
        return NONE, ""

    def staged(self):
        """What the change staged to persist, or None (not staged yet, or damaged)."""
        text = files.read(self._path("staged.json"))
        try:
            staged = json.loads(text) if text else None
        except ValueError:
            return None
        return staged if isinstance(staged, dict) else None

    def restore_steps(self):
        """The steps of the restore script on disk, or None if it is missing, damaged or has none."""
        return parse_restore(self.dir, files.read(self._path("restore.sh")))

    def pending(self):
        """True while a change waits for its confirmation with a rollback that can undo it."""
        return self.state()[0] == ARMED and self.restore_steps() is not None

    def surface(self, clear=True):
        """Fail on a restore that failed; return a finished rollback's time (cleared unless clear is
        False, as in check mode, which changes nothing), or None."""
        state, detail = self.state()
        if state == RESTORE_FAILED:
            what, _unused, output = detail.partition("\n")
            raise RestoreFailed(
                f"{self.concern}: the host's rollback of an unconfirmed change FAILED at step '{what}'"
                f" ({output.strip() or 'no output'}); the host is in an unknown state and needs a person. "
                f"Nothing was changed now. Fix it by hand, then remove {self._path(RESTORE_FAILED)}"
            )
        if state == ROLLED_BACK:
            if clear:
                files.remove(self._path(ROLLED_BACK))
            return detail
        return None

    # --- what an interrupted run left -------------------------------------------------------------

    def predict(self):
        """Check mode: what settle() would find and do, touching nothing (RestoreFailed as settle)."""
        state, _unused = self.state()
        notes = []
        if state == RESTORING:
            if self._restore_running():
                notes.append(f"{self.concern}: a rollback is running on the host right now")
            else:
                notes.append(
                    f"{self.concern}: a rollback was cut off before it finished; the next run finishes it"
                )
            return Settled(notes, None, True)
        rolled_back = self.surface(clear=False)
        if state == CONFIRMED:
            notes.append(
                f"{self.concern}: the last confirmed change was not persisted (its confirmation was"
                " interrupted or its persist failed); the next run persists it"
            )
        elif state == ARMED and self.restore_steps() is None:
            notes.append(self._unusable_note("the next run discards it"))
        return Settled(notes, rolled_back, bool(notes))

    def settle(self):
        """Finish or clear what an interrupted run left, before anything new is decided.

        Raises RestoreFailed (a restore failed: the host needs a person) or Unsettled (what was left
        could not be finished: nothing new may be armed over it); both say what and that nothing new was
        applied."""
        notes, changed = [], False
        state, _unused = self.state()
        if state == RESTORING:
            changed = self._finish_restore()
            state, _unused = self.state()
            if changed and state == ROLLED_BACK:
                notes.append(
                    f"{self.concern}: a rollback of an unconfirmed change had been cut off before it"
                    " finished; it was run again to its end"
                )
        if state == RESTORE_FAILED:
            try:
                self.surface()
            except RestoreFailed as exc:
                exc.changed = changed
                raise
        if state == CONFIRMED:
            try:
                persisted = self._finish_confirm()
            except PersistFailed as exc:
                raise Unsettled(f"{exc}. Nothing new was applied", changed=True) from None
            notes.append(
                f"{self.concern}: the last confirmed change had not been persisted (its confirmation was"
                " interrupted or its persist failed); it was persisted now"
                if persisted
                else f"{self.concern}: the last confirmation was interrupted after it persisted; finished now"
            )
            changed = True
        if state == ARMED and self.restore_steps() is None:
            self._stop_timers()
            for name in (ARMED, "staged.json", "restore.sh"):
                files.remove(self._path(name))
            notes.append(self._unusable_note("it was discarded and the live state is snapshotted anew"))
            changed = True
        rolled_back = self.surface() if state == ROLLED_BACK else None
        if state in (NONE, ROLLED_BACK):
            for name in _STRAYS:
                if os.path.lexists(self._path(name)):
                    files.remove(self._path(name))
        return Settled(notes, rolled_back, changed)

    def _unusable_note(self, then):
        return (
            f"{self.concern}: an unconfirmed change was armed with a restore script that is missing, damaged"
            f" or without a step ({self._path('restore.sh')}): it could undo nothing, so {then}"
        )

    def _restore_running(self):
        """True while a restore script holds the directory's lock."""
        try:
            fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:  # no directory (nothing ever ran), or not root (check mode as another user)
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # releases the lock if it was taken
        return False

    def _finish_restore(self):
        """A `restoring` found: wait for the restore that runs, or run again one that was cut off.
        Returns True if it ran the restore here."""
        deadline = time.monotonic() + RESTORE_WAIT
        while self._restore_running() and time.monotonic() < deadline:
            time.sleep(0.5)
        if self.state()[0] != RESTORING:
            return False
        if self._restore_running():
            raise Unsettled(
                f"{self.concern}: a rollback has been running on the host for more than {RESTORE_WAIT} s."
                " Nothing new was applied; try again when it has finished"
            )
        if self.restore_steps() is None:
            raise Unsettled(
                f"{self.concern}: a rollback was cut off before it finished and its restore script"
                f" ({self._path('restore.sh')}) is missing or damaged: the host is in an unknown state"
                " and needs a person. Nothing new was applied. Fix it by hand, then remove"
                f" {self._path(RESTORING)}",
                changed=False,
            )
        rc, out, err = self.runner.run(["/bin/sh", self._path("restore.sh")])
        state, _unused = self.state()
        if state == RESTORING:
            raise Unsettled(
                f"{self.concern}: a rollback was cut off before it finished, and running it again did not"
                f" finish it (rc={rc}: {(err or out or '').strip() or 'no output'}). Nothing new was applied"
            )
        return True

    # --- arm, apply, re-arm, confirm, restore -----------------------------------------------------

    def arm(self, timeout, restore_steps, apply_seconds=0):
        """Arm the rollback BEFORE the change is applied. Already armed (an unconfirmed change is
        live): the restore of the last confirmed state is kept and only the timer is new.
        This first timer also covers the apply (apply_seconds: the most it may take), which rearm()
        follows with the controller's own window; it only fires if the module dies during the apply.
        Returns True if a change was already armed. A HostError or ValueError (NothingToRestore: no
        step) means nothing was armed; RolledBack that the armed change was rolled back meanwhile;
        RestoredNow that the earlier unconfirmed change could not be re-armed and was restored."""
        if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < MIN_TIMEOUT:
            raise ValueError(f"rollback_timeout must be an integer of at least {MIN_TIMEOUT} seconds")
        files.private_dir(self._root)
        files.private_dir(self.dir)
        state, _unused = self.state()
        was_armed = self.pending()
        if was_armed:
            try:
                self._restart_timer(timeout + apply_seconds)
            except HostError as exc:
                # The unconfirmed change would stay live with no timer: put the last confirmed state back.
                self.restore_now()
                raise RestoredNow(
                    f"{self.concern}: could not re-arm the rollback of the unconfirmed change ({exc}); "
                    "the host restored the last confirmed state now"
                ) from None
            if self.state()[0] != ARMED:
                self._stop_timers()
                raise RolledBack(self._rolled_back_message())
            # Staged again after this apply: until then nothing may persist what is not live.
            files.remove(self._path("staged.json"))
            return True
        if state == ROLLED_BACK and not restore_steps:
            raise RolledBack(self._rolled_back_message())  # it was pending a moment ago
        if state not in (NONE, ROLLED_BACK, ARMED):
            raise Unsettled(f"{self.concern}: the state {state} was left by an earlier run; settle it first")
        script = render_restore(self.dir, restore_steps)  # NothingToRestore before anything is touched
        self._stop_timers()  # one left by a confirmation that was killed before it stopped it
        for name in (ROLLED_BACK, "staged.json"):
            if os.path.lexists(self._path(name)):
                files.remove(self._path(name))
        files.write(self._path("restore.sh"), script, 0o700)
        files.write(self._path(ARMED), time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()), 0o600)
        try:
            self._start_timer(self.unit, timeout + apply_seconds)
        except HostError:
            for name in (ARMED, "restore.sh"):  # nothing was applied: no marker may say so
                files.remove(self._path(name))
            raise
        return False

    def rearm(self, timeout, staged=None):
        """After a (possibly slow) apply: restart the window so that the controller's time to confirm
        counts from now, then stage what the confirmation persists (`staged`; None keeps what is there).
        A timer that fired during the apply means the host restored: RolledBack. A timer that cannot be
        restarted (or staging that fails): the change is restored now, RestoredNow."""
        try:
            self._restart_timer(timeout)
            if self.state()[0] != ARMED:
                self._stop_timers()
                raise RolledBack(self._rolled_back_message())
            if staged is not None:
                files.write(self._path("staged.json"), json.dumps(staged, sort_keys=True), 0o600)
        except RolledBack:
            raise
        except HostError as exc:
            self.restore_now()
            raise RestoredNow(f"{self.concern}: could not re-arm the rollback ({exc}); restored") from None

    def restore_now(self):
        """Run the restore here and now (a failed apply): returns ROLLED_BACK, or raises RestoreFailed.
        The timer stays armed until the restore has run, so a restore that cannot run still has it."""
        rc, out, err = self.runner.run(["/bin/sh", self._path("restore.sh")])
        state, _unused = self.state()
        if state in (ROLLED_BACK, RESTORE_FAILED):
            self._stop_timers()
        if state == RESTORE_FAILED:
            self.surface()
        if state != ROLLED_BACK:
            raise RestoreFailed(
                f"{self.concern}: the restore could not be run now (rc={rc}:"
                f" {(err or out or '').strip() or 'no output'}; state {state}): the change stays live, and"
                " the host's rollback timer undoes it when it fires unless it is confirmed"
            )
        files.remove(self._path(ROLLED_BACK))
        return state

    def confirm(self):
        """Keep the change: win the rename, stop the timer, persist what was staged.
        Returns True if something was confirmed (or an interrupted confirmation finished), False if
        nothing was armed. PersistFailed: the change is kept but persisting it failed (said by name)."""
        staged = self.staged() is not None
        try:
            os.rename(self._path(ARMED), self._path(CONFIRMED))
        except FileNotFoundError:
            state, _unused = self.state()
            if state == RESTORING:
                self._finish_restore()
                state, _unused = self.state()
            if state == RESTORE_FAILED:
                self.surface()
            if state == ROLLED_BACK:
                message = self._rolled_back_message()
                files.remove(self._path(ROLLED_BACK))
                raise RolledBack(message) from None
            if state != CONFIRMED:
                return False
            self._finish_confirm()  # persisting was interrupted last time; finish it
            return True
        except OSError as exc:
            raise HostError(
                f"{self.concern}: the confirmation could not claim the change ({exc.strerror}): it stays"
                " armed, and the host's timer undoes it unless a later confirmation gets through"
            ) from None
        if not staged:
            self._stop_timers()
            files.remove(self._path(CONFIRMED))
            raise PersistFailed(
                f"{self.concern}: the change was kept (its rollback is disarmed), but the run that applied it"
                " was interrupted before it staged what loads it at boot: NOTHING was persisted. Run the"
                " module again to persist it"
            )
        self._finish_confirm()
        return True

    def _finish_confirm(self):
        """The change is confirmed: stop the timers, persist what was staged, then forget both.
        Returns whether something was staged."""
        self._stop_timers()
        staged = self.staged()
        try:
            persist(self.runner, staged or {})
        except HostError as exc:
            raise PersistFailed(
                f"{self.concern}: the change was confirmed and stays live (its rollback is disarmed), but"
                f" persisting it FAILED: {exc}. It is not what the host loads at boot; the next run of"
                " commit_confirm or of the module persists it"
            ) from None
        files.remove(self._path("staged.json"))
        files.remove(self._path(CONFIRMED))
        return staged is not None

    def _rolled_back_message(self):
        when = (files.read(self._path(ROLLED_BACK)) or "").strip() or "just now"
        return (
            f"{self.concern}: the change was rolled back by the host ({when}): the controller did not "
            "confirm it in time over a new connection: the previous state is live, nothing was persisted"
        )

    def _restart_timer(self, timeout):
        """Replace the running timer with one of `timeout` seconds, never leaving a moment without one:
        the spare unit covers while the main one restarts."""
        main, spare = self.units
        self._stop_timer(spare)
        self._start_timer(spare, timeout)
        self._stop_timer(main)
        self._start_timer(main, timeout)
        self._stop_timer(spare)

    def _start_timer(self, unit, timeout):
        self.runner.run(
            [
                "systemd-run",
                "--quiet",
                "--collect",
                f"--unit={unit}",
                f"--description=bulwark.hardening: undo the {self.concern} change unless the controller "
                "confirms it",
                f"--on-active={timeout}s",
                "--timer-property=AccuracySec=1s",
                "/bin/sh",
                self._path("restore.sh"),
            ],
            check=True,
            what=f"arming the {self.concern} rollback timer",
        )

    def _stop_timer(self, *units):
        # Stopping a timer that is not there is not an error; a restore it started keeps running.
        self.runner.run(["systemctl", "stop", *(f"{unit}.timer" for unit in units)])

    def _stop_timers(self):
        self._stop_timer(*self.units)


def persist(runner, staged):
    """Write the staged files (only where they differ) and run the staged commands, in order."""
    for path, text, mode in staged.get("files", []):
        if files.read(path) != text or files.mode_of(path) != mode:
            files.write(path, text, mode, make_dirs=0o755, anchor="/")
    for argv in staged.get("commands", []):
        runner.run(argv, check=True, what=" ".join(argv))


def staged_changes(staged):
    """True if persisting `staged` would change a file (the commands only run along with a file)."""
    return any(
        files.read(path) != text or files.mode_of(path) != mode
        for path, text, mode in staged.get("files", [])
    )
