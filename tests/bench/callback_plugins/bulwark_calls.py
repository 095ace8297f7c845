# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Counts, per host, the module calls a play makes (each loop item apart) and writes them as JSON.

A result that carries `invocation` came from a module run on the host; set_fact, debug, assert and the
argument validation run on the controller and carry none. validate_input runs on the controller too,
except for its one `sshd -t` check of the sshd role's candidate on the host. The apt commands are counted
from baseline_packages' `apt_runs` (`apt_calls`: how many; `apt_commands`: one list per package call that
ran any). Enabled with
ANSIBLE_CALLBACK_PLUGINS=tests/bench/callback_plugins ANSIBLE_CALLBACKS_ENABLED=bulwark_calls, writing
to $BULWARK_CALLS_FILE.
"""

import json
import os
from collections import defaultdict

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: bulwark_calls
type: aggregate
short_description: module calls per host, as JSON in $BULWARK_CALLS_FILE
description: Counts the results that came from a module run on the host (each loop item apart).
requirements: [enabled in callbacks_enabled]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bulwark_calls"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.calls = defaultdict(int)
        self.tasks = defaultdict(list)
        self.apt = defaultdict(list)

    def _count(self, result):
        data = result._result
        items = data.get("results") if isinstance(data.get("results"), list) else [data]
        calls = sum(1 for item in items if isinstance(item, dict) and "invocation" in item)
        if "bulwark.hardening.sshd_config" in (data.get("checked") or []):
            calls += 1  # validate_input's sshd -t on the host
        host = result._host.get_name()
        self.calls[host] += calls
        self.apt[host] += [
            item["apt_runs"] for item in items if isinstance(item, dict) and item.get("apt_runs")
        ]
        if calls:
            self.tasks[host].append(f"{result._task.get_name()} ({calls})")

    def v2_runner_on_ok(self, result):
        self._count(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._count(result)

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get("BULWARK_CALLS_FILE")
        if path:
            with open(path, "w", encoding="utf-8") as out:
                json.dump({host: self._figures(host) for host in self.calls}, out)

    def _figures(self, host):
        return {
            "module_calls": self.calls[host],
            "tasks": self.tasks[host],
            "apt_calls": sum(len(runs) for runs in self.apt[host]),
            "apt_commands": self.apt[host],
        }
