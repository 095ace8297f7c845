"""Commit-confirm: one protocol for every change that can cut the controller off (sshd, firewall, ...).

A change is staged in a directory of its own (`<root>/<concern>/`, root-only):

- `restore.sh`  the steps that put back what the change replaces, written BEFORE anything is applied;
- `staged.json` what to persist once the change is confirmed: {"files": [[path, text, mode], ...],
  "commands": [[argv...], ...]} (the boot configuration, enabling the unit that loads it, ...);
- one marker whose name is the state:

      armed --(confirm wins the rename)--> confirmed --(persisted)--> (none)
      armed --(the timer or a failed apply wins)--> restoring --> rolled-back | restore-failed

The confirmation and the restore race for ONE atomic rename of `armed`: whoever renames it owns the
outcome, so a confirm that comes while the timer's restore runs fails as rolled back and persists
nothing, and a restore never undoes a change that was confirmed. The timer is a transient systemd
unit that runs `restore.sh` once, `timeout` seconds after it was armed. A restore stops at its first
failing step and records it (`restore-failed`: the step and its output); every later call surfaces it.
"""

import json
import os
import re
import shlex
import time

from . import files
from .files import HostError

ROOT = "/var/lib/bulwark/commit-confirm"
UNIT_PREFIX = "bulwark-rollback-"
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
_MARKERS = (RESTORE_FAILED, RESTORING, ARMED, CONFIRMED, ROLLED_BACK)  # precedence when several exist


# Every change is applied with commit-confirm: a shorter window than this is missed by a loaded host's
# reconnect (new SSH login, sudo, Python), and 0 would mean "no rollback", which the protocol never offers.
MIN_TIMEOUT = 5


class TimeoutRefused(ValueError):
    """A rollback timeout below MIN_TIMEOUT; the message names the option."""


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


def unit_name(concern):
    if not _CONCERN.fullmatch(concern or ""):
        raise ValueError(f"invalid commit-confirm concern name: {concern!r}")
    return UNIT_PREFIX + concern


def render_restore(directory, steps):
    """The restore script: claim the change by renaming `armed`, then each (what, argv) step in turn,
    stopping at the first that fails with what failed recorded in `restore-failed`."""
    q = shlex.quote
    lines = [
        "#!/bin/sh",
        "# bulwark.hardening commit-confirm: put back what an unconfirmed change replaced.",
        "set -u",
        f"dir={q(directory)}",
        '# Whoever renames "armed" owns the outcome: a confirmation that got there first wins.',
        'mv "$dir/armed" "$dir/restoring" 2>/dev/null || exit 0',
        "step() {",
        "  what=$1; shift",
        '  if ! out=$("$@" 2>&1); then',
        '    printf \'%s\\n%s\\n\' "$what" "$out" > "$dir/restore-failed.tmp"',
        '    mv "$dir/restore-failed.tmp" "$dir/restore-failed"; rm -f "$dir/restoring"',
        "    exit 1",
        "  fi",
        "}",
    ]
    for what, argv in steps:
        lines.append(f"step {q(what)} {shlex.join(argv)}")
    lines += [
        'date -u +%FT%TZ > "$dir/rolled-back.tmp" && mv "$dir/rolled-back.tmp" "$dir/rolled-back"',
        'rm -f "$dir/restoring" "$dir/staged.json"',
        "",
    ]
    return "\n".join(lines)


class Transaction:
    """The commit-confirm state of one concern on this host."""

    def __init__(self, runner, concern, root=ROOT):
        self.runner = runner
        self.concern = concern
        self.unit = unit_name(concern)
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
        text = files.read(self._path("staged.json"))
        return json.loads(text) if text else None

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

    def arm(self, timeout, restore_steps, staged, apply_seconds=0):
        """Arm the rollback BEFORE the change is applied. Already armed (an unconfirmed change is
        live): the restore of the last confirmed state is kept and only staged and the timer are new.
        This first timer also covers the apply (apply_seconds: the most it may take), which rearm()
        follows with the controller's own window; it only fires if the module dies during the apply.
        Returns True if a change was already armed. A HostError means nothing was armed; RestoredNow that
        the earlier unconfirmed change could not be re-armed and was restored."""
        if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 5:
            raise ValueError("rollback_timeout must be an integer of at least 5 seconds")
        files.private_dir(self._root)
        files.private_dir(self.dir)
        state, _unused = self.state()
        was_armed = state == ARMED
        if was_armed:
            self._stop_timer()
            if self.state()[0] != ARMED:
                raise RolledBack(self._rolled_back_message())
        else:
            for name in (CONFIRMED, ROLLED_BACK):
                files.remove(self._path(name))
            files.write(self._path("restore.sh"), render_restore(self.dir, restore_steps), 0o700)
        files.write(self._path("staged.json"), json.dumps(staged, sort_keys=True), 0o600)
        if not was_armed:
            files.write(self._path(ARMED), time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()), 0o600)
        try:
            self._start_timer(timeout + apply_seconds)
        except HostError as exc:
            if was_armed:
                # The unconfirmed change would stay live with no timer: put the last confirmed state back.
                self.restore_now()
                raise RestoredNow(
                    f"{self.concern}: could not re-arm the rollback of the unconfirmed change ({exc}); "
                    "the host restored the last confirmed state now"
                ) from None
            for name in (ARMED, "staged.json", "restore.sh"):  # nothing was applied: no marker may say so
                files.remove(self._path(name))
            raise
        return was_armed

    def rearm(self, timeout):
        """Restart the window after a (possibly slow) apply, so the controller's time to confirm counts
        from now. A timer that fired during the apply means the host restored: RolledBack."""
        self._stop_timer()
        if self.state()[0] != ARMED:
            raise RolledBack(self._rolled_back_message())
        try:
            self._start_timer(timeout)
        except HostError as exc:
            self.restore_now()
            raise RolledBack(f"{self.concern}: could not re-arm the rollback ({exc}); restored") from None

    def restore_now(self):
        """Run the restore here and now (a failed apply): returns ROLLED_BACK, or raises RestoreFailed."""
        self._stop_timer()
        self.runner.run(["/bin/sh", self._path("restore.sh")])
        state, _unused = self.state()
        if state == RESTORE_FAILED:
            self.surface()
        files.remove(self._path(ROLLED_BACK))
        return state

    def confirm(self):
        """Keep the change: win the rename, stop the timer, persist what was staged.
        Returns True if something was confirmed, False if nothing was armed."""
        try:
            os.rename(self._path(ARMED), self._path(CONFIRMED))
        except FileNotFoundError:
            state, _unused = self.state()
            if state == RESTORING:
                self._wait_restore()
                state, _unused = self.state()
            if state == RESTORE_FAILED:
                self.surface()
            if state == ROLLED_BACK:
                message = self._rolled_back_message()
                files.remove(self._path(ROLLED_BACK))
                raise RolledBack(message) from None
            if state != CONFIRMED:  # CONFIRMED: persisting was interrupted last time; finish it
                return False
        self._stop_timer()
        persist(self.runner, self.staged() or {})
        files.remove(self._path("staged.json"))
        files.remove(self._path(CONFIRMED))
        return True

    def pending(self):
        """True while a change waits for its confirmation (armed, or confirmed but not yet persisted)."""
        return self.state()[0] in (ARMED, CONFIRMED)

    def _rolled_back_message(self):
        when = (files.read(self._path(ROLLED_BACK)) or "").strip() or "just now"
        return (
            f"{self.concern}: the change was rolled back by the host ({when}): the controller did not "
            "confirm it in time over a new connection: the previous state is live, nothing was persisted"
        )

    def _wait_restore(self, limit=120):
        deadline = time.monotonic() + limit
        while self.state()[0] == RESTORING and time.monotonic() < deadline:
            time.sleep(0.5)

    def _start_timer(self, timeout):
        self.runner.run(
            [
                "systemd-run",
                "--quiet",
                "--collect",
                f"--unit={self.unit}",
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

    def _stop_timer(self):
        # Stopping a timer that is not there is not an error; a restore it started keeps running.
        self.runner.run(["systemctl", "stop", f"{self.unit}.timer"])


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
