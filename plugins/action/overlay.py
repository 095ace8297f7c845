# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""overlay: the module; with preshared_keys, also the pairs' preshared keys, kept here on the controller.

The keys live in one ansible-vault encrypted file (preshared_key_store), encrypted with the play's vault
secret. A pair's key is drawn the first time either of its hosts runs (under a lock: the hosts of a play
run side by side) and recorded before any host uses it; each host is given the keys of its own pairs, on
a no_log option, and never returns them. Check mode draws nothing and writes nothing.
"""

import fcntl
import os

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

from ansible_collections.bulwark.hardening.plugins.module_utils.overlay import mesh, psk
from ansible_collections.bulwark.hardening.plugins.plugin_utils import vault_file

MODULE = "bulwark.hardening.overlay"
OPTION = "overlay_preshared_key_store"


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        args.pop("preshared_key_values", None)  # the controller's to give, never the play's
        try:
            # On the controller too, whatever the state: what names files on the host, before the store
            # is read or extended; the module checks the same again on the host.
            state = mesh.host_options(args)["state"]
            if state == "present" and boolean(args.get("preshared_keys", False), strict=False):
                mesh.member_name(args.get("name"), "name")
                for i, member in enumerate(args.get("members") or []):
                    if isinstance(member, dict):
                        mesh.member_name(member.get("name"), f"members[{i}].name")
                args["preshared_key_values"] = self._keys(args)
        except mesh.MeshError as exc:
            raise AnsibleActionFail(str(exc)) from None
        result.update(self._execute_module(MODULE, module_args=args, task_vars=task_vars))
        return result

    def _keys(self, args):
        path = args.get("preshared_key_store")
        if not path:
            raise AnsibleActionFail(f"{OPTION}: required with overlay_preshared_keys. Nothing was applied")
        path = os.path.abspath(os.path.expanduser(path))
        vault = self._loader._vault
        vault_file.require_secret(vault, OPTION)
        me = args.get("name")
        # Every other member: the module takes the keys of the peers it configures (a spoke: its hub).
        others = sorted(
            {m.get("name") for m in args.get("members") or [] if isinstance(m, dict)} - {me, None}
        )
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with open(path + ".lock", "a", encoding="utf-8") as lock:
            os.chmod(path + ".lock", 0o600)
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                document = psk.parse(vault_file.read(vault, path, OPTION))
            except ValueError as exc:
                raise AnsibleActionFail(f"{OPTION}: {path}: {exc}. Nothing was applied") from None
            drawn, keys = psk.for_host(document, me, others, generate=not self._task.check_mode)
            if drawn != document:
                vault_file.write(vault, path, psk.dumps(drawn), None, OPTION)
        return keys
