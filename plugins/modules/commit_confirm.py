#!/usr/bin/python
# Copyright: (c) 2026, bulwark.hardening maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# ruff: noqa: E402  (Ansible modules put DOCUMENTATION/EXAMPLES/RETURN before the imports)

DOCUMENTATION = r"""
---
module: commit_confirm
short_description: Confirm a change that sshd_config or firewall applied with a rollback armed
description:
  - The second half of commit-confirm. Call it over a B(new) connection after a module returned
    C(pending=true); reaching the host at all proves that the change lets the controller in.
  - It wins an atomic rename against the host's rollback timer, stops the timer, and persists what the change
    staged (for the firewall, the files that load it at boot). A confirm that comes after the timer fired
    (or while its restore runs) fails as rolled back and persists nothing; a failed restore is reported.
  - A confirmation whose persist fails (for example C(systemctl enable) of the boot unit) keeps the change,
    fails naming the step (RV(state=persist-failed)), and is finished by the next confirmation or the next
    run of the module that armed it. One that was interrupted (killed) is finished the same way.
  - The state lives in C(/var/lib/bulwark/commit-confirm/<concern>/), root-only.
version_added: "0.1.0"
author: bulwark.hardening maintainers (@bulwark-hardening)
options:
  concern:
    description: Whose change to confirm (the module that armed it).
    type: str
    required: true
    choices: [sshd, firewall]
requirements:
  - On the host, systemd (C(systemctl)), which runs the rollback timer that the confirmation stops.
attributes:
  check_mode:
    support: full
    description: Reports whether a change is pending; confirms nothing.
  diff_mode:
    support: none
    description: Nothing is rendered; the module that armed the change showed its diff.
  platform:
    support: full
    platforms: posix
    description: Debian 12 and 13 with systemd.
"""

EXAMPLES = r"""
- name: Drop the connection so that the confirmation logs in anew
  ansible.builtin.meta: reset_connection

- name: Confirm the firewall change over the new connection
  bulwark.hardening.commit_confirm:
    concern: firewall
"""

RETURN = r"""
confirmed:
  description: Whether a pending change was confirmed (its rollback disarmed and its staged files persisted).
  returned: always
  type: bool
state:
  description:
    - The state found (none, armed, confirmed, restoring, rolled-back, restore-failed), or C(persist-failed)
      when the change was kept but persisting it failed.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.bulwark.hardening.plugins.module_utils import specs
from ansible_collections.bulwark.hardening.plugins.module_utils.host import commit_confirm
from ansible_collections.bulwark.hardening.plugins.module_utils.host.commands import Runner
from ansible_collections.bulwark.hardening.plugins.module_utils.host.files import HostError


def main():
    module = AnsibleModule(
        argument_spec=specs.concern(),
        supports_check_mode=True,
    )
    transaction = commit_confirm.Transaction(Runner(module), module.params["concern"])
    state, _unused = transaction.state()
    result = {"changed": False, "confirmed": False, "state": state}
    if module.check_mode:
        try:
            predicted = transaction.predict()
        except HostError as exc:
            module.fail_json(msg=str(exc), **result)
        result["changed"] = state in (commit_confirm.ARMED, commit_confirm.CONFIRMED) or predicted.changed
        module.exit_json(**result)
    try:
        result["confirmed"] = result["changed"] = transaction.confirm()
    except commit_confirm.PersistFailed as exc:
        # The change is kept (never undone now), but it is not what the host loads at boot: not "confirmed".
        module.fail_json(msg=str(exc), **{**result, "changed": True, "state": commit_confirm.PERSIST_FAILED})
    except HostError as exc:
        module.fail_json(msg=str(exc), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
