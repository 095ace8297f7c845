"""The one executor: runs a host plan (host/plan.py) through the host layer.

- check mode reports the plan's words and touches nothing;
- every file operation goes through host/files (no link followed, directory descriptors, mode and owner
  before the rename, fsync);
- it records what it applied; when an operation fails it runs the inverses of the applied ones, newest
  first, and the failure says what was applied and what was put back (or "Nothing was applied").

`fail(module, exc, **result)` is the one way a module fails: a Refused or a PlanFailed becomes fail_json
with the suffix added once.

`run(plan, confirm=Confirm(...))` wraps the run in commit-confirm (host/commit_confirm.py), the one driver of
the protocol: snapshot what the restore reads, arm BEFORE the first operation, apply, restore at once on a
failure, re-arm so that the window to confirm counts from the end of the apply. `settle()` finishes what an
interrupted run left before anything is decided.
"""

import dataclasses

from . import commit_confirm, files
from .files import HostError
from .plan import Attributes, Call, Command, Directory, Kernel, Refused, Remove, Unit, Write

NOTHING = "Nothing was applied"
SAID_OTHERWISE = (
    "Nothing was changed"  # admin_accounts' older words for the same, which operators and tests read
)


class PlanFailed(HostError):
    """An operation failed; `applied` lists what ran before it, `restored` the inverses that ran and
    `unrestored` what could not be put back."""

    def __init__(self, msg, applied=(), restored=(), unrestored=()):
        super().__init__(msg)
        self.applied = list(applied)
        self.restored = list(restored)
        self.unrestored = list(unrestored)

    @property
    def changed(self):
        return bool(self.applied)


class Executor:
    def __init__(self, runner, check_mode=False):
        self.runner = runner
        self.check_mode = check_mode
        self.warnings = []  # best-effort commands (Command.warn) that failed

    def run(self, plan, confirm=None):
        """Apply `plan`; the words of what was applied (check mode: of what would be; nothing is armed).
        With `confirm` (a Confirm) the run is wrapped in commit-confirm (ConfirmFailed when it stops)."""
        if self.check_mode:
            return plan.words()
        if confirm is not None:
            return _Confirmed(self, confirm).run(plan)
        applied = []
        for op in plan.ops:
            try:
                self.perform(op)
            except HostError as exc:
                raise self._failed(op, exc, applied) from None
            applied.append(op)
        return [op.what for op in applied]

    def perform(self, op):
        """One operation through the host layer (a HostError when it fails)."""
        if isinstance(op, Write):
            verify = None
            if op.verify:
                verify = self._verifier(op)
            files.write(
                op.path, op.content, op.mode, op.uid, op.gid, anchor=op.anchor, make_dirs=op.make_dirs,
                owner=op.owner, verify=verify,
            )  # fmt: skip
        elif isinstance(op, Remove):
            files.remove(op.path, anchor=op.anchor, owner=op.owner)
        elif isinstance(op, Attributes):
            files.set_attributes(
                op.path, op.mode, op.uid, op.gid, op.directory, anchor=op.anchor, owner=op.owner
            )
        elif isinstance(op, Directory) and op.private:
            files.private_dir(op.path, op.mode)
        elif isinstance(op, Directory):
            files.directory(op.path, op.mode, op.uid, op.gid, make_dirs=op.make_dirs, only_new=op.only_new)
        elif isinstance(op, Kernel):
            try:
                files.set_kernel_value(op.path, op.value)
            except OSError as exc:
                raise HostError(f"cannot set {op.path}: {exc.strerror}") from None
        elif isinstance(op, (Command, Unit)):
            for path, content in getattr(op, "inputs", ()):
                files.write(path, content, 0o600)
            self._command(op)
        elif isinstance(op, Call):
            op.function(*op.args)
        else:
            raise TypeError(f"not a host operation: {op!r}")

    def _command(self, op):
        """Run a Command or a Unit: its exit codes (ok; warn: best effort) and, for a check, its output."""
        ok, warn, expect = getattr(op, "ok", (0,)), getattr(op, "warn", False), getattr(op, "expect", None)
        data, env = getattr(op, "data", None), dict(getattr(op, "env", ()) or ())
        rc, out, err = self.runner.run(
            list(op.argv), data=data, env=env or None, check=ok == (0,) and not warn, what=op.what
        )
        if ok is not None and rc not in ok:
            detail = (err or out or "").strip()
            failure = f"{op.what} failed (rc={rc}){': ' + detail if detail else ''}"
            if not warn:
                raise HostError(failure)
            self.warnings.append(failure)
        elif expect is not None and (out or "").strip() != expect[0]:
            raise HostError(expect[1])

    def settle(self, transaction):
        """What an interrupted run left, finished before anything is decided (check mode: predicted,
        touching nothing): a commit_confirm.Settled, or ConfirmFailed naming what could not be finished."""
        try:
            return transaction.predict() if self.check_mode else transaction.settle()
        except HostError as exc:
            raise ConfirmFailed(str(exc), changed=getattr(exc, "changed", False)) from None

    def _verifier(self, op):
        def verify(tmp_path):
            self.runner.run(
                [tmp_path if word == "{}" else word for word in op.verify],
                check=True,
                what=f"{op.verify[0]} on the new file",  # the failure names op.what already
            )

        return verify

    def undo(self, applied):
        """Run the inverses of `applied`, newest first: (put back, NOT put back), in words."""
        restored, unrestored = [], []
        for done in reversed(applied):
            if done.inverse is None and getattr(done, "expect", None) is not None:
                continue  # a check changed nothing
            if done.inverse is None:
                unrestored.append(done.what)
                continue
            try:
                self.perform(done.inverse)
            except HostError as undo_exc:
                unrestored.append(f"{done.what} ({done.inverse.what} failed: {undo_exc})")
            else:
                restored.append(done.inverse.what)
        return restored, unrestored

    def _failed(self, op, exc, applied):
        """The PlanFailed for `op`, after running the inverses of `applied`, newest first."""
        restored, unrestored = self.undo(applied)
        msg = f"{op.what} failed: {exc}. "
        if not applied:
            msg += NOTHING
        else:
            msg += f"Applied before it: {'; '.join(done.what for done in applied)}."
            if restored:
                msg += f" Put back: {'; '.join(restored)}."
            if unrestored:
                msg += f" NOT put back: {'; '.join(unrestored)}."
        return PlanFailed(msg, [done.what for done in applied], restored, unrestored)


# --- commit-confirm -------------------------------------------------------------------------------------


@dataclasses.dataclass
class Confirm:
    """Run a plan with commit-confirm (host/commit_confirm.py) on `transaction`'s concern.

    prepare(): called only when no change is pending (an unconfirmed change keeps the restore of the last
    confirmed state, armed already); returns (snapshot, restore): the operations that save what the restore
    reads, run before arming (their inverses run if arming fails), and the restore script's (what, argv)
    steps. staged: what the confirmation persists, staged after the apply (None keeps what is staged).
    apply_seconds: the most the apply may take (the first timer covers it). check: (what, callable) run
    after the last operation, a HostError failing the apply like an operation (sshd answers again).
    restored: how the operator is told the previous state is back."""

    transaction: object
    timeout: int
    prepare: object
    staged: dict = None
    apply_seconds: int = 0
    check: tuple = None
    restored: str = "The host restored the previous state"


class ConfirmFailed(HostError):
    """Commit-confirm stopped the run. changed: whether the host is (or was) changed; restored: the restore
    steps that put the previous state back after a failed apply ([] when that restore failed, None when no
    restore ran); applied: what was applied before the failure."""

    def __init__(self, msg, changed=False, restored=None, applied=()):
        super().__init__(msg)
        self.changed = changed
        self.restored = restored
        self.applied = list(applied)


def _unarmed(concern, why):
    return (
        f"could not arm the {concern} rollback ({why}): while the host cannot arm the rollback, no change is"
        f" applied. {NOTHING}"
    )


class _Confirmed:
    """One commit-confirmed run: arm, apply, (restore), re-arm."""

    def __init__(self, executor, confirm):
        self.executor, self.confirm, self.tx = executor, confirm, confirm.transaction
        self.steps = []  # the words of the restore steps armed (or, when pending, armed already)

    def run(self, plan):
        pending = self.tx.pending()
        if not plan.ops and not pending:
            return []  # nothing to apply and nothing waiting: nothing to arm
        self.arm(pending)  # pending, with nothing more to apply: the armed change gets a full window again
        applied = []
        ops = list(plan.ops) + (
            [Call(self.confirm.check[1], (), self.confirm.check[0])]
            if plan.ops and self.confirm.check
            else []
        )
        for op in ops:
            try:
                self.executor.perform(op)
            except HostError as exc:
                raise self.restore(op, exc, applied, pending) from None
            applied.append(op)
        self.rearm(after_apply=bool(plan.ops))
        return [op.what for op in applied]

    def arm(self, pending):
        """Snapshot (unless pending) and arm, BEFORE the first operation; ConfirmFailed when nothing was
        armed (the snapshot undone) or the change armed earlier was rolled back or restored meanwhile."""
        concern = self.tx.concern
        snapshot, steps = ((), ()) if pending else self.confirm.prepare()
        if not pending and not steps:
            raise ConfirmFailed(_unarmed(concern, commit_confirm.NOTHING_TO_RESTORE))
        self.steps = [what for what, _argv in (steps or self.tx.restore_steps() or ())]
        saved = []
        for op in snapshot:
            try:
                self.executor.perform(op)
            except HostError as exc:
                self.executor.undo(saved)
                raise ConfirmFailed(
                    f"could not save what the {concern} rollback restores ({op.what}: {exc}). {NOTHING}"
                ) from None
            saved.append(op)
        try:
            self.tx.arm(self.confirm.timeout, list(steps), apply_seconds=self.confirm.apply_seconds)
        except commit_confirm.RestoredNow as exc:
            raise ConfirmFailed(
                f"{exc}. Nothing new was applied", changed=True, restored=self.steps
            ) from None
        except commit_confirm.RestoreFailed as exc:
            raise ConfirmFailed(f"{exc}. Nothing new was applied", changed=True, restored=[]) from None
        except commit_confirm.RolledBack as exc:
            raise ConfirmFailed(f"{exc}. Nothing new was applied: run it again") from None
        except (HostError, ValueError) as exc:  # ValueError: NothingToRestore, a timeout refused
            self.executor.undo(saved)
            raise ConfirmFailed(_unarmed(concern, exc)) from None

    def restore(self, op, exc, applied, pending):
        """A failed operation: the restore runs now; the ConfirmFailed says what was applied and restored."""
        text = str(exc).rstrip(". ")
        msg = text if text.startswith(f"{op.what} failed") else f"{op.what} failed: {text}"
        done = [each.what for each in applied]
        msg += f". Applied before it: {'; '.join(done)}. " if done else ". Nothing before it was applied. "
        try:
            self.tx.restore_now()
        except HostError as failure:
            return ConfirmFailed(msg + str(failure), changed=True, restored=[], applied=done)
        return ConfirmFailed(
            f"{msg}{self.confirm.restored}: {'; '.join(self.steps)}.",
            changed=bool(done) or pending,
            restored=self.steps,
            applied=done,
        )

    def rearm(self, after_apply):
        """The window to confirm counts from now; stage what the confirmation persists."""
        try:
            self.tx.rearm(self.confirm.timeout, self.confirm.staged)
        except commit_confirm.RestoredNow as exc:
            raise ConfirmFailed(str(exc), changed=True, restored=self.steps) from None
        except commit_confirm.RolledBack as exc:
            if not after_apply:
                raise ConfirmFailed(f"{exc}. Nothing new was applied: run it again") from None
            raise ConfirmFailed(
                f"{exc} (the apply took longer than rollback_timeout, {self.confirm.timeout} s: raise it)",
                changed=True,
            ) from None
        except HostError as exc:
            raise ConfirmFailed(str(exc), changed=True) from None


def message(exc):
    """The failure text with "Nothing was applied" said once (a Refused changed nothing)."""
    if isinstance(exc, ConfirmFailed):
        return str(exc)  # it says what was applied and restored, or that nothing (new) was applied
    text = str(exc).rstrip(". ")
    if isinstance(exc, PlanFailed) or NOTHING in text or SAID_OTHERWISE in text:
        return text
    return f"{text}. {NOTHING}"


def fail(module, exc, **result):
    """The one way a module fails: Refused (nothing applied) or PlanFailed (what was applied and put back)."""
    if isinstance(exc, PlanFailed):
        result.update(applied=exc.applied, restored=exc.restored, unrestored=exc.unrestored)
        result.setdefault("changed", exc.changed)
    elif isinstance(exc, ConfirmFailed):
        result.setdefault("changed", exc.changed)
        if exc.restored is not None:
            result.setdefault("restored", exc.restored)
    else:
        result.setdefault("changed", False)
    module.fail_json(msg=message(exc), **result)


__all__ = ["Confirm", "ConfirmFailed", "Executor", "PlanFailed", "Refused", "fail", "message"]
