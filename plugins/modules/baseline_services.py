#!/usr/bin/python
# Copyright: (c) 2026, bulwark.hardening maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module bulwark.hardening.baseline_services: the baseline's units enabled, started, disabled."""
# ruff: noqa: E402  (Ansible modules put DOCUMENTATION/EXAMPLES/RETURN before the imports)

DOCUMENTATION = r"""
---
module: baseline_services
short_description: The baseline's systemd units enabled and started, or disabled and stopped, in one call
description:
  - Reads the state of every unit with one C(systemctl show), then enables and starts each unit of
    O(enabled) that is not, and disables and stops each unit of O(disabled) that is enabled or running.
  - A unit that cannot run on this host is reported in RV(skipped_units) with the reason, and as a warning,
    never silently; the module does not fail for it. That is a unit whose start condition fails here
    (timesyncd and chrony where the clock cannot be set), or one that fails to start inside a container
    (auditd and acct need kernel privileges a container lacks). Anywhere else a unit of O(enabled) that does
    not start, or is not installed, fails the module naming it.
  - With O(load_audit_rules), once C(auditd.service) runs, the rules under C(/etc/audit/rules.d) are loaded
    with C(augenrules --load) when C(augenrules --check) reports a change.
version_added: "0.1.0"
author: bulwark.hardening maintainers (@bulwark-hardening)
options:
  enabled:
    description: Units that must be enabled and running.
    type: list
    elements: str
    default: []
  disabled:
    description: Units that must be disabled and stopped (missing ones are fine).
    type: list
    elements: str
    default: []
  load_audit_rules:
    description: Load the audit rules where C(auditd.service) runs and they differ from the loaded ones.
    type: bool
    default: false
notes:
  - In check mode a unit that is not installed yet (its package comes with the same run) is predicted as
    installed, enabled and started; a unit that failed here before inside a container is predicted as skipped.
requirements:
  - systemd (C(systemctl)); C(augenrules) for O(load_audit_rules).
attributes:
  check_mode:
    support: full
    description: Reads the units' state and reports what would change, changing nothing.
  diff_mode:
    support: none
    description: What changed is reported per unit in RV(services), not as a diff.
  platform:
    support: full
    platforms: posix
    description: Debian 12 and 13 with systemd.
"""

EXAMPLES = r"""
- name: The features' services
  bulwark.hardening.baseline_services:
    enabled: [auditd.service, systemd-timesyncd.service, dailyaidecheck.timer]
    disabled: [avahi-daemon.service, cups.service]
    load_audit_rules: true
"""

RETURN = r"""
services:
  description: Each unit's outcome (V(ok), V(changed), V(skipped)) and what was done or why.
  returned: always
  type: dict
  sample: {"auditd.service": {"status": "changed", "what": "enable start"}}
skipped_units:
  description: Units this host cannot run, with the reason.
  returned: always
  type: dict
  sample: {"acct.service": "cannot run inside a container"}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.bulwark.hardening.plugins.module_utils.baseline import services
from ansible_collections.bulwark.hardening.plugins.module_utils.host.commands import Runner
from ansible_collections.bulwark.hardening.plugins.module_utils.host.executor import PlanFailed, Refused, fail
from ansible_collections.bulwark.hardening.plugins.module_utils.host.files import HostError


class Host:
    def __init__(self, runner):
        self.runner = runner
        self._container = None

    def show(self, units):
        argv = ["systemctl", "show", "--property=" + ",".join(services.PROPERTIES), "--", *units]
        _rc, out, _err = self.runner.run(argv, check=True, what="systemctl show")
        return services.parse_show(out, units)

    def failed_requirements(self, props):
        """The units a unit requires that have failed here."""
        required = services.requirements(props)
        state = self.show(required) if required else {}
        return [unit for unit in required if state[unit].get("ActiveState") == "failed"]

    def in_container(self):
        if self._container is None:
            self._container = self.runner.run(["systemd-detect-virt", "--container", "--quiet"])[0] == 0
        return self._container

    def last_log_line(self, unit):
        _rc, out, _err = self.runner.run(
            ["journalctl", f"_SYSTEMD_UNIT={unit}", "--lines=1", "--output=cat", "--no-pager"]
        )
        lines = out.strip().splitlines()
        return lines[-1] if lines else ""

    def systemctl(self, *args):
        return self.runner.run(["systemctl", *args])[0] == 0


# Not a host plan: each unit is converged on its own and reported (a unit a container cannot run is
# skipped with systemd's reason, one that fails does not stop the others), and whether a start worked is
# known only by asking systemd afterwards; the systemctl calls stay behind Host.
def converge(host, enabled, disabled, check_mode):
    """{unit: (status, what)} after acting (or as predicted in check mode), and the units changed."""
    state = host.show(enabled + disabled)
    actions, report = services.plan(enabled, disabled, state, check_mode)
    changed = {unit for unit, (status, _what) in report.items() if status == "changed"}
    for unit, todo in actions.items():
        if todo == ["disable"]:
            if not check_mode and not host.systemctl("disable", "--now", "--quiet", unit):
                report[unit] = ("failed", "does not disable")
            continue
        done = []
        if "enable" in todo:
            if not check_mode and not host.systemctl("enable", "--quiet", unit):
                report[unit] = ("failed", "does not enable")
                continue
            done.append("enabled")
        if "start" not in todo:
            continue
        if check_mode:
            prediction = services.not_running(
                state[unit],
                host.in_container(),
                tried=False,
                failed_requirements=host.failed_requirements(state[unit]) if host.in_container() else (),
            )
            if prediction[0] == "skipped":
                report[unit] = prediction
                if not done:
                    changed.discard(unit)
            continue
        host.systemctl("start", unit)
        if host.show([unit])[unit].get("ActiveState") == "active":
            report[unit] = ("changed", " ".join([*done, "started"]))
            continue
        props = host.show([unit])[unit]
        in_container = host.in_container()
        status, what = services.not_running(
            props,
            in_container,
            tried=True,
            why=host.last_log_line(unit) if in_container else "",
            failed_requirements=host.failed_requirements(props) if in_container else (),
        )
        # Enabled all the same where it was not: on a host that allows it (a VM), it starts at boot.
        report[unit] = (status, what + (" (enabled)" if done else ""))
        if not done:
            changed.discard(unit)
    return report, changed


def audit_rules(host, runner, check_mode):
    """'changed' when the rules on disk differ from the loaded ones (and are loaded, outside check mode)."""
    if not host.systemctl("is-active", "--quiet", "auditd.service"):
        return None
    _rc, out, _err = runner.run(["augenrules", "--check"])
    if "No change" in out:
        return None
    if check_mode:
        return ("changed", "rules would be loaded")
    rc, out, err = runner.run(["augenrules", "--load"])
    return (
        ("changed", "rules loaded") if rc == 0 else ("failed", "rules do not load: " + (err or out).strip())
    )


def main():
    module = AnsibleModule(
        argument_spec={
            "enabled": {"type": "list", "elements": "str", "default": []},
            "disabled": {"type": "list", "elements": "str", "default": []},
            "load_audit_rules": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    try:
        enabled, disabled = services.validate(module.params["enabled"], module.params["disabled"])
    except services.ServiceSpecError as exc:
        fail(module, Refused(str(exc)))
    runner = Runner(module)
    host = Host(runner)
    try:
        report, changed = (
            converge(host, enabled, disabled, module.check_mode) if enabled or disabled else ({}, set())
        )
        if module.params["load_audit_rules"] and "auditd.service" in enabled:
            rules = audit_rules(host, runner, module.check_mode)
            if rules:
                report["audit rules"] = rules
                if rules[0] == "changed":
                    changed.add("audit rules")
    except (HostError, services.ServiceSpecError) as exc:
        fail(module, PlanFailed(str(exc)))
    result = {
        "changed": bool(changed),
        "services": {unit: {"status": status, "what": what} for unit, (status, what) in report.items()},
        "skipped_units": {unit: what for unit, (status, what) in report.items() if status == "skipped"},
    }
    failed = {unit: what for unit, (status, what) in report.items() if status == "failed"}
    if failed:
        message = "; ".join(f"{unit} {what}" for unit, what in failed.items())
        fail(module, PlanFailed(message, applied=sorted(changed)), **result)
    for unit, why in result["skipped_units"].items():
        module.warn(f"{unit} skipped: {why}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
