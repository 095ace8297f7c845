# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""secret_store: the module; with backend ansible_vault, also its store, kept here on the controller.

The store is one ansible-vault encrypted file per host (store_file), encrypted with the play's vault secret.
Before the module runs, every declared secret has a candidate value drawn here (OS random, cryptography) and
recorded, encrypted; the module gets the values on its input (a no_log option) and returns the fingerprints
of the versions it keeps, never a value; the store is then rewritten with those. A run that changes nothing
leaves the file as it was.

A call with `acknowledge` (the role's, once it has shown a run's result) only records that on the host: it
goes to the module as it is, with no store to read.
"""

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import (
    controller_store,
    policy,
    redact,
)
from ansible_collections.bulwark.hardening.plugins.plugin_utils import vault_file

MODULE = "bulwark.hardening.secret_store"


def _store_values(document):
    for entry in document["secrets"].values():
        if isinstance(entry, dict):
            yield from (entry.get("versions") or {}).values()
            yield entry.get("candidate")


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        redactor = redact.Redactor()
        try:
            result.update(self._run(task_vars, redactor))
        except AnsibleActionFail as exc:
            # What Ansible would make of it, with the store's values masked and marked as such: the role
            # prints a failure's message only when it is.
            result.update(failed=True, msg=redactor.scrub(str(exc)), redacted=True)
        return redactor.scrub_data(result)

    def _run(self, task_vars, redactor):
        args = dict(self._task.args)
        if args.get("acknowledge") is not None:
            if args.get("backend") == "ansible_vault":
                args.update(store_values={}, store_file=None)
            return self._execute_module(MODULE, module_args=args, task_vars=task_vars)
        if args.get("backend") != "ansible_vault":
            return self._execute_module(MODULE, module_args=args, task_vars=task_vars)
        try:
            specs, _consumers = policy.normalise(
                args.get("secrets"),
                args.get("consumers"),
                "ansible_vault",
                directory=args.get("directory", policy.DEFAULT_DIRECTORY),
                keep_overlap=args.get("keep_overlap"),
            )
        except policy.SecretSpecError as exc:
            raise AnsibleActionFail(f"{exc}. Nothing was applied") from None
        path = args.get("store_file")
        if not path:
            raise AnsibleActionFail("store_file: required with backend ansible_vault. Nothing was applied")
        path = os.path.abspath(os.path.expanduser(path))
        vault = self._loader._vault
        vault_file.require_secret(vault, "store_file")
        try:
            document = controller_store.parse(vault_file.read(vault, path, "store_file"))
        except ValueError as exc:
            raise AnsibleActionFail(f"store_file: {path}: {exc}. Nothing was applied") from None
        redactor.add(*_store_values(document))
        if not self._task.check_mode:
            drawn = controller_store.with_candidates(document, specs)
            redactor.add(*_store_values(drawn))
            if drawn != document:
                vault_file.write(
                    vault, path, controller_store.dumps(drawn), args.get("store_vault_id"), "store_vault_id"
                )
                document = drawn
        args["store_values"] = controller_store.values_for(document, specs)
        result = self._execute_module(MODULE, module_args=args, task_vars=task_vars)
        versions = result.pop("versions", None)
        if versions is None or self._task.check_mode:
            return result
        try:
            after = controller_store.after_run(document, specs, versions, result.get("secrets", {}))
        except ValueError as exc:
            raise AnsibleActionFail(f"store_file: {path}: {exc}") from None
        if after != document:
            vault_file.write(
                vault, path, controller_store.dumps(after), args.get("store_vault_id"), "store_vault_id"
            )
        return result
