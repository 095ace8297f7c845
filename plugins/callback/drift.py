# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""drift: what a run changed (in check mode: would change), per host and concern, for a pipeline's gate."""
# ruff: noqa: E402  (Ansible plugins put DOCUMENTATION before the imports)

DOCUMENTATION = r"""
name: drift
type: aggregate
short_description: Per host and concern, what a run of harden.yml changed or would change
author: bulwark.hardening maintainers (@bulwark-hardening)
version_added: "0.1.0"
description:
  - Collects every task that reported a change (in check mode, a change it would make, i.e. a drift from
    the declared state) with the host, the concern (the role the task belongs to, such as V(firewall) or
    V(sshd)), the task's name and what the task's diff or result names (files, rules, commands).
  - "At the end of the run it prints one line per host and concern, and writes a JSON report when
    O(report) is set (keys C(drifted), C(check_mode), and C(hosts): host, then concern, then the entries),
    so that a pipeline gates on it (C(jq -e '.drifted | not' drift.json)) instead of parsing the recap."
  - Enable it with C(ANSIBLE_CALLBACKS_ENABLED=bulwark.hardening.drift).
options:
  report:
    description: Path of the JSON report written at the end of the run (none when unset).
    type: path
    env:
      - name: BULWARK_DRIFT_REPORT
    ini:
      - section: bulwark_drift
        key: report
"""

import json
import os

from ansible import context
from ansible.plugins.callback import CallbackBase


def concern_of(task):
    """The role a task belongs to, without the collection's prefix; 'play' for a play's own tasks."""
    role = getattr(task, "_role", None)
    if role is None:
        return "play"
    return role.get_name().rsplit(".", 1)[-1]


def what_changed(result):
    """Short, secret-free names of what a changed task touches: its diffs' headers, its commands."""
    found = []
    diffs = result.get("diff")
    for diff in diffs if isinstance(diffs, list) else [diffs] if isinstance(diffs, dict) else []:
        header = diff.get("after_header") or diff.get("before_header")
        if header and header not in found:
            found.append(str(header))
    for command in result.get("commands") or []:
        if isinstance(command, list):
            found.append(" ".join(str(word) for word in command))
    return found


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bulwark.hardening.drift"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.changes = {}  # host -> concern -> [entries]
        self.check_mode = bool(context.CLIARGS.get("check"))

    def _record(self, result):
        if not result._result.get("changed"):
            return
        host = result._host.get_name()
        entry = result._task.get_name()
        details = what_changed(result._result)
        if details:
            entry += ": " + ", ".join(details)
        entries = self.changes.setdefault(host, {}).setdefault(concern_of(result._task), [])
        if entry not in entries:
            entries.append(entry)

    def v2_runner_on_ok(self, result):
        self._record(result)

    def v2_runner_item_on_ok(self, result):
        self._record(result)

    def v2_playbook_on_stats(self, stats):
        word = "would change (drift)" if self.check_mode else "changed"
        if not self.changes:
            self._display.display(
                "DRIFT: nothing would change" if self.check_mode else "DRIFT: nothing changed"
            )
        for host in sorted(self.changes):
            for concern, entries in sorted(self.changes[host].items()):
                for entry in entries:
                    self._display.display(f"DRIFT: {host} {concern} {word}: {entry}")
        path = self.get_option("report")
        if path:
            report = {"drifted": bool(self.changes), "check_mode": self.check_mode, "hosts": self.changes}
            tmp = f"{path}.tmp"
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(report, handle, indent=2, sort_keys=True)
            os.replace(tmp, path)
