# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""secret_store: the module; with backend ansible_vault, also its store, kept here on the controller.

The store is one ansible-vault encrypted file per host (store_file), encrypted with the play's vault secret.
Before the module runs, every declared secret has a candidate value drawn here (OS random, cryptography) and
recorded, encrypted; the module gets the values on its input (a no_log option) and returns the fingerprints
of the versions it keeps, never a value; the store is then rewritten with those. A run that changes nothing
leaves the file as it was.
"""

import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.parsing.vault import AnsibleVaultError, is_encrypted, match_encrypt_secret
from ansible.plugins.action import ActionBase

from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import controller_store, policy

MODULE = "bulwark.hardening.secret_store"


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        if args.get("backend") != "ansible_vault":
            result.update(self._execute_module(MODULE, module_args=args, task_vars=task_vars))
            return result
        try:
            specs, _consumers = policy.normalise(args.get("secrets"), args.get("consumers"), "ansible_vault")
        except policy.SecretSpecError as exc:
            raise AnsibleActionFail(f"{exc}. Nothing was applied") from None
        path = args.get("store_file")
        if not path:
            raise AnsibleActionFail("store_file: required with backend ansible_vault. Nothing was applied")
        path = os.path.abspath(os.path.expanduser(path))
        vault = self._loader._vault
        if not vault.secrets:
            raise AnsibleActionFail(
                "store_file: backend ansible_vault needs a vault secret"
                " (--vault-id or --vault-password-file)."
                " Nothing was applied"
            )
        document = self._read(vault, path)
        if not self._task.check_mode:
            drawn = controller_store.with_candidates(document, specs)
            if drawn != document:
                self._write(vault, path, drawn, args.get("store_vault_id"))
                document = drawn
        args["store_values"] = controller_store.values_for(document, specs)
        result.update(self._execute_module(MODULE, module_args=args, task_vars=task_vars))
        versions = result.pop("versions", None)
        if versions is None or self._task.check_mode:
            return result
        try:
            after = controller_store.after_run(document, specs, versions, result.get("secrets", {}))
        except ValueError as exc:
            raise AnsibleActionFail(f"store_file: {path}: {exc}") from None
        if after != document:
            self._write(vault, path, after, args.get("store_vault_id"))
        return result

    @staticmethod
    def _read(vault, path):
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return controller_store.parse(None)
        if not is_encrypted(data):
            raise AnsibleActionFail(f"store_file: {path} is not ansible-vault encrypted. Nothing was applied")
        try:
            return controller_store.parse(to_text(vault.decrypt(data)))
        except AnsibleVaultError as exc:
            raise AnsibleActionFail(f"store_file: {path}: {exc}. Nothing was applied") from None
        except ValueError as exc:
            raise AnsibleActionFail(f"store_file: {path}: {exc}. Nothing was applied") from None

    @staticmethod
    def _write(vault, path, document, vault_id):
        """Encrypted, atomically (a temporary file in the same directory, 0600, then a rename)."""
        try:
            found_id, secret = match_encrypt_secret(vault.secrets, encrypt_vault_id=vault_id)
        except AnsibleVaultError as exc:
            raise AnsibleActionFail(f"store_vault_id: {exc}") from None
        data = vault.encrypt(to_bytes(controller_store.dumps(document)), secret, vault_id=found_id)
        directory = os.path.dirname(path)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".secret_store.")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
