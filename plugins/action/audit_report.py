# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""audit_report: the fleet's audit reports, written on the controller (playbooks/audit.yml runs it once).

It reads every host's registered security_audit result (the variable named by `result`, default
`audit`) and writes into output_dir a JSON report per host, the
fleet summary (fleet.json), a JUnit XML file (junit.xml: each failing finding a failed test case) and
one self-contained HTML page (index.html). It never touches a host. It fails, after writing, when a
host scores below min_score or could not be audited.
"""

import os

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.bulwark.hardening.plugins.module_utils.audit import report

SPEC = {
    "hosts": {"type": "list", "elements": "str", "required": True},
    "result": {"type": "str", "default": "audit"},
    "output_dir": {"type": "path", "required": True},
    "min_score": {"type": "int", "default": 0},
}


def _write(path, text):
    """Atomically (a temporary file, then a rename): a CI job never publishes half a report."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def write_reports(reports, output_dir, min_score):
    """(summary, written paths); reports: {host: security_audit's report, or None if not audited}."""
    full = []
    for host in sorted(reports):
        found = reports[host]
        if found is None:
            full.append({"host": host, "score": None, "categories": {}, "failed": [], "findings": [],
                         "error": "not audited (unreachable or failed)"})  # fmt: skip
        else:
            full.append({**found, "host": host})
    summary = report.fleet_summary(full, min_score)
    os.makedirs(output_dir, exist_ok=True)
    written = []
    for item in full:
        written.append(os.path.join(output_dir, f"{item['host']}.json"))
        _write(written[-1], report.dumps(item))
    for name, text in (
        ("fleet.json", report.dumps(summary)),
        ("junit.xml", report.junit(full)),
        ("index.html", report.html_page(summary, full)),
    ):
        written.append(os.path.join(output_dir, name))
        _write(written[-1], text)
    return summary, written


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        validated = ArgumentSpecValidator(SPEC).validate(self._task.args)
        if validated.error_messages:
            raise AnsibleActionFail("; ".join(validated.error_messages) + ". Nothing was written")
        args = validated.validated_parameters
        hostvars = (task_vars or {}).get("hostvars", {})
        reports = {}
        for host in args["hosts"]:
            registered = hostvars[host].get(args["result"]) if host in hostvars else None
            found = registered.get("report") if isinstance(registered, dict) else None
            reports[host] = found if isinstance(found, dict) and not registered.get("failed") else None
        summary, written = write_reports(reports, args["output_dir"], args["min_score"])
        # The reports are the controller's output, not a change on any host: changed stays false.
        result.update(changed=False, summary=summary, written=written, msg=report.fleet_text(summary))
        if not summary["passed"]:
            result["failed"] = True
            result["msg"] = [
                f"below audit_min_score {args['min_score']}: "
                + ", ".join(f"{h} ({summary['hosts'][h]})" for h in summary["below_min_score"]),
                *result["msg"],
            ]
        return result
