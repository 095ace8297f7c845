"""The one executor: runs a host plan (host/plan.py) through the host layer.

- check mode reports the plan's words and touches nothing;
- every file operation goes through host/files (no link followed, directory descriptors, mode and owner
  before the rename, fsync);
- it records what it applied; when an operation fails it runs the inverses of the applied ones, newest
  first, and the failure says what was applied and what was put back (or "Nothing was applied").

`fail(module, exc, **result)` is the one way a module fails: a Refused or a PlanFailed becomes fail_json
with the suffix added once.
"""

from . import files
from .files import HostError
from .plan import Attributes, Command, Directory, Refused, Remove, Unit, Write

NOTHING = "Nothing was applied"


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

    def run(self, plan):
        """Apply `plan`; the words of what was applied (check mode: of what would be)."""
        if self.check_mode:
            return plan.words()
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
        elif isinstance(op, Directory):
            files.directory(op.path, op.mode, op.uid, op.gid, make_dirs=op.make_dirs, only_new=op.only_new)
        elif isinstance(op, (Command, Unit)):
            data = getattr(op, "data", None)
            env = dict(getattr(op, "env", ()) or ())
            self.runner.run(list(op.argv), data=data, env=env or None, check=True, what=op.what)
        else:
            raise TypeError(f"not a host operation: {op!r}")

    def _verifier(self, op):
        def verify(tmp_path):
            self.runner.run(
                [tmp_path if word == "{}" else word for word in op.verify], check=True, what=op.what
            )

        return verify

    def _failed(self, op, exc, applied):
        """The PlanFailed for `op`, after running the inverses of `applied`, newest first."""
        restored, unrestored = [], []
        for done in reversed(applied):
            if done.inverse is None:
                unrestored.append(done.what)
                continue
            try:
                self.perform(done.inverse)
            except HostError as undo_exc:
                unrestored.append(f"{done.what} ({done.inverse.what} failed: {undo_exc})")
            else:
                restored.append(done.inverse.what)
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


def message(exc):
    """The failure text with "Nothing was applied" said once (a Refused changed nothing)."""
    text = str(exc).rstrip(". ")
    if isinstance(exc, PlanFailed) or NOTHING in text:
        return text
    return f"{text}. {NOTHING}"


def fail(module, exc, **result):
    """The one way a module fails: Refused (nothing applied) or PlanFailed (what was applied and put back)."""
    if isinstance(exc, PlanFailed):
        result.update(applied=exc.applied, restored=exc.restored, unrestored=exc.unrestored)
        result.setdefault("changed", exc.changed)
    else:
        result.setdefault("changed", False)
    module.fail_json(msg=message(exc), **result)


__all__ = ["Executor", "PlanFailed", "Refused", "fail", "message"]
