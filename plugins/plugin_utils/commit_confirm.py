# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller's half of commit-confirm, in the same task as the change.

The action plugins of `sshd_config` and `firewall` run the module (which applies with the host's rollback
armed and returns `pending`), then, with `reconnect_and_confirm`, drop the SSH connection and confirm over a
NEW one at once. In the same task, because under the linear strategy a separate confirmation task starts only
when the slowest host of the batch has finished its apply: on a fleet (or a loaded controller) the fast hosts'
windows ran out before their confirmation came, and the hosts rolled back changes that let the operator in.
"""

import time

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

CONFIRM = "bulwark.hardening.commit_confirm"
OPTION = "reconnect_and_confirm"
RETRY_SECONDS = 2
# After the window: long enough for the host's own restore (sshd reload, nft -f) to have run.
MARGIN_SECONDS = 60


class CommitConfirmAction(ActionBase):
    """Run MODULE; when it returns pending and OPTION is true, confirm CONCERN over a new connection."""

    MODULE = None
    CONCERN = None

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        try:
            confirm = boolean(args.get(OPTION, False), strict=True)
        except TypeError as exc:
            raise AnsibleError(f"{OPTION}: {exc}") from None
        result.update(self._execute_module(self.MODULE, module_args=args, task_vars=task_vars))
        if not confirm or self._task.check_mode or result.get("failed") or not result.get("pending"):
            return result
        window = int(args.get("rollback_timeout", 60))
        answer, waited = self._confirm(task_vars, window)
        if answer.get("confirmed"):
            result.update(pending=False, confirmed=True)
            return result
        state = answer.get("state", "unknown")
        if answer.get("unreachable"):
            msg = (
                f"{self.CONCERN}: the controller could not log in over a new connection after the change,"
                f" nor in the {waited} s after it (window {window} s and a margin): the host's rollback"
                " timer restores the previous state by itself, and nothing is persisted (state: unknown)"
            )
        else:
            late = "" if waited is None else f"; the host was reached again after {waited} s"
            msg = f"{answer.get('msg', f'{self.CONCERN}: the confirmation failed')}{late} (state: {state})"
        result.update(failed=True, confirmed=False, msg=msg, state=state)
        return result

    def _confirm(self, task_vars, window):
        """The confirmation over a NEW connection, retried until the window and a margin have passed:
        (its result, the seconds it took when the first attempt could not log in, else None)."""
        start = time.monotonic()
        deadline = start + window + MARGIN_SECONDS
        missed = False
        while True:
            self._connection.reset()  # the next command opens a new TCP connection and logs in anew
            try:
                answer = self._execute_module(
                    CONFIRM, module_args={"concern": self.CONCERN}, task_vars=task_vars
                )
            except AnsibleConnectionFailure as exc:
                answer = {"unreachable": True, "msg": str(exc)}
            if not answer.get("unreachable") or time.monotonic() >= deadline:
                return answer, int(time.monotonic() - start) if missed else None
            missed = True
            time.sleep(RETRY_SECONDS)
