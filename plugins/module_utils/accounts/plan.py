"""Admin accounts: validate the declared admins, compare with the live accounts, plan the changes.

The lockout guard lives here: the account the controller is connected with, and the key it uses,
are never removed, locked or stripped. A plan that would do so raises LockoutError before the
module changes anything. Pure: the module reads the live state and acts on the plan.
"""

import os
import re

from ansible_collections.bulwark.hardening.plugins.module_utils import text
from ansible_collections.bulwark.hardening.plugins.module_utils.accounts import authorized_keys as ak

# Matched with fullmatch: "alice\n" is not alice.
NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
NO_LOGIN_SHELLS = frozenset({"/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false"})
STATES = ("present", "absent")
HEADER = "Managed by bulwark.hardening (admin_accounts): keys not declared here are removed."


class AdminSpecError(ValueError):
    """The declared admins are invalid; the message names the bad option."""


class UnsafePathError(RuntimeError):
    """An account's key file (or its ~/.ssh) is a symbolic link that the plan would write through."""


class LockoutError(RuntimeError):
    """The plan would remove, lock or strip the account or key the controller is connected with."""


def validate_admins(admins, default_shell="/bin/bash"):
    """Normalise the admins option: names, states, shells, parsed keys. Raises AdminSpecError."""
    if not isinstance(admins, list):
        raise AdminSpecError("admins must be a list")
    seen, result = set(), []
    for index, entry in enumerate(admins):
        where = f"admins[{index}]"
        if not isinstance(entry, dict):
            raise AdminSpecError(f"{where} must be a dict with at least a name")
        unknown = set(entry) - {"name", "ssh_keys", "state", "shell", "sudo"}
        if unknown:
            raise AdminSpecError(f"{where} has unknown key(s): {', '.join(sorted(unknown))}")
        name = entry.get("name")
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise AdminSpecError(f"{where}.name {name!r} is not a valid user name")
        where = f"admins[{index}] ({name})"
        if name in seen:
            raise AdminSpecError(f"{where}.name is declared twice")
        seen.add(name)
        state = entry.get("state") or "present"
        if state not in STATES:
            raise AdminSpecError(f"{where}.state must be one of {', '.join(STATES)}, not {state!r}")
        if name == "root" and state == "absent":
            raise AdminSpecError(f"{where}.state: root cannot be declared absent")
        shell = entry.get("shell") or default_shell
        if not text.plain_absolute_path(shell):
            raise AdminSpecError(f"{where}.shell must be a plain absolute path, not {shell!r}")
        raw_keys = entry.get("ssh_keys") or []
        if isinstance(raw_keys, str):
            raw_keys = [raw_keys]
        if not isinstance(raw_keys, list):
            raise AdminSpecError(f"{where}.ssh_keys must be a list of public key lines")
        keys = []
        for key_index, line in enumerate(raw_keys):
            if not isinstance(line, str):
                raise AdminSpecError(f"{where}.ssh_keys[{key_index}] must be a string")
            try:
                key = ak.parse_key(line)
            except ak.InvalidKeyError as exc:
                raise AdminSpecError(f"{where}.ssh_keys[{key_index}]: {exc}") from exc
            if key.identity not in ak.identities(keys):
                keys.append(key)
        sudo = entry.get("sudo", True)
        if not isinstance(sudo, bool):
            raise AdminSpecError(f"{where}.sudo must be true or false")
        result.append({"name": name, "state": state, "shell": shell, "keys": keys, "sudo": sudo})
    return result


def validate_options(params):
    """The module's options (as AnsibleModule gives them) -> validated admins; AdminSpecError names it.

    Pure, so the controller runs it before the play changes anything (the validate_input action).
    """
    group = params.get("group")
    if not isinstance(group, str) or not NAME.fullmatch(group):
        raise AdminSpecError(f"group: {group!r} is not a valid group name")
    shell = params.get("shell") or "/bin/bash"
    if not text.plain_absolute_path(shell):
        raise AdminSpecError(f"shell: {shell!r} is not a plain absolute path")
    sudoers_file = params.get("sudoers_file") or "/etc/sudoers.d/bulwark-admins"
    if not text.plain_absolute_path(sudoers_file):
        raise AdminSpecError(f"sudoers_file: {sudoers_file!r} is not a plain absolute path")
    if "." in os.path.basename(sudoers_file) or sudoers_file.endswith("~"):
        raise AdminSpecError("sudoers_file: sudo ignores drop-ins whose name has a dot or ends with ~")
    # Rendered into sudoers (Defaults logfile="...") and logrotate: a quote or a line break would add rules.
    logfile = params.get("sudo_logfile")
    if logfile and not text.plain_absolute_path(logfile):
        raise AdminSpecError(
            f"sudo_logfile: {logfile!r} is not a plain absolute path "
            "(letters, digits, '.', '_', '-', '+', '@' between slashes)"
        )
    key = params.get("connecting_key")
    if key:
        try:
            ak.parse_key(key)
        except ak.InvalidKeyError as exc:
            raise AdminSpecError(f"connecting_key: {exc}") from exc
    admins = [{k: v for k, v in a.items() if v is not None} for a in params.get("admins") or []]
    return validate_admins(admins, default_shell=shell)


def render_sudoers(admins, nopasswd, logfile="/var/log/sudo.log", use_pty=True):
    """The sudoers drop-in: sudo's own log file, use_pty, and the rule for the present admins."""
    lines = ["# Managed by bulwark.hardening (admin_accounts): changes here are overwritten."]
    if use_pty:
        lines.append("Defaults use_pty")
    if logfile:
        lines.append(f'Defaults logfile="{logfile}"')
    names = [a["name"] for a in admins if a["state"] == "present" and a["sudo"]]
    if names:
        lines.append("User_Alias BULWARK_ADMINS = " + ", ".join(names))
        tag = "NOPASSWD: " if nopasswd else ""
        lines.append(f"BULWARK_ADMINS ALL=(ALL:ALL) {tag}ALL")
    return "\n".join(lines) + "\n"


def plan(admins, live, group, *, connecting_user=None, connecting_key=None, exclusive=True):
    """Compare the validated admins with the live state and return what must change.

    live = {
      "users": {name: {"home": str, "shell": str, "groups": [str]}},   # every account
      "group_exists": bool,
      "authorized_keys": {name: text or None},                      # every account that has a home
      "authorized_keys2": {name: text},                             # accounts that have that legacy file
      "links": {name: path},                     # accounts whose ~/.ssh or key file is a symbolic link
    }
    Returns a dict: group_create, create, modify, remove, keys {user: (before, after)},
    remove_keys2 [user], messages. Raises LockoutError (nothing planned) when the guard refuses.
    """
    users = live.get("users", {})
    result = {
        "group_create": not live.get("group_exists", False),
        "create": [],
        "modify": [],
        "remove": [],
        "keys": {},
        "remove_keys2": [],
    }
    connecting = None
    if connecting_key:
        try:
            connecting = ak.parse_key(connecting_key)
        except ak.InvalidKeyError as exc:
            raise AdminSpecError(f"connecting_key: {exc}") from exc
    _plan_accounts(result, admins, users, group, connecting_user)
    declared = {a["name"]: a for a in admins if a["state"] == "present"}
    guard = (connecting_user, connecting)
    _plan_keys(result, live, declared, _revoked(admins), guard=guard, exclusive=exclusive)
    # sshd reads .ssh/authorized_keys2 too unless AuthorizedKeysFile says otherwise: an exclusive
    # list leaves no second file where an undeclared key keeps working.
    for name in sorted(live.get("authorized_keys2", {})):
        if name in declared and exclusive:
            result["remove_keys2"].append(name)
    # Writing (and chowning) through a link would change a file the account's owner chose: another
    # account's keys, root's included.
    links = live.get("links", {})
    for name in sorted(set(result["keys"]) | set(result["remove_keys2"])):
        if name in links:
            raise UnsafePathError(
                f"account {name!r}: {links[name]} is a symbolic link; refusing to write {name}'s "
                "authorized_keys through it (it may be another account's file)"
            )
    return result


def _revoked(admins):
    """The identities of absent admins' keys, but never one a present admin declares (the same key,
    two accounts)."""
    revoked, kept = set(), set()
    for admin in admins:
        (revoked if admin["state"] == "absent" else kept).update(ak.identities(admin["keys"]))
    return revoked - kept


def _plan_accounts(result, admins, users, group, connecting_user):
    """The accounts to create, modify and remove; LockoutError for the controller's own account."""
    for admin in admins:
        name = admin["name"]
        if admin["state"] == "absent":
            if name == connecting_user:
                raise LockoutError(
                    f"admin {name!r} is declared absent but it is the account the controller is connected "
                    "with (connecting_user): refusing to remove it; connect as another admin first"
                )
            if name in users:
                result["remove"].append(name)
            continue
        if name == connecting_user and admin["shell"] in NO_LOGIN_SHELLS:
            raise LockoutError(
                f"admin {name!r} would get the shell {admin['shell']} but it is the account the controller "
                "is connected with (connecting_user): refusing to lock it"
            )
        if name not in users:
            result["create"].append({"name": name, "shell": admin["shell"], "groups": [group]})
        else:
            account = users[name]
            change = {}
            if account.get("shell") != admin["shell"]:
                change["shell"] = admin["shell"]
            if group not in account.get("groups", []):
                change["add_groups"] = [group]
            if change:
                result["modify"].append({"name": name, **change})
    # The connecting user stays in the admin group: sshd's AllowGroups names it.
    if connecting_user and connecting_user in users and connecting_user not in {a["name"] for a in admins}:
        if group not in users[connecting_user].get("groups", []):
            result["modify"].append({"name": connecting_user, "add_groups": [group]})


def _plan_keys(result, live, declared, revoked, *, guard, exclusive):
    """Each account's authorized_keys before and after; the guard (connecting user, key) refuses a file
    that would no longer let the controller in."""
    connecting_user, connecting = guard
    files = live.get("authorized_keys", {})
    legacy = live.get("authorized_keys2", {})
    removed = set(result["remove"])
    for name in sorted(set(files) | set(declared)):
        if name in removed:
            continue
        before_text = files.get(name)
        before_keys = ak.parse_file(before_text)[0]
        kept_keys = [k for k in before_keys if k.identity not in revoked]
        if name in declared and exclusive:
            after_keys = list(declared[name]["keys"])
            after_text = ak.render_file(after_keys, HEADER)
        else:
            known = ak.identities(kept_keys)
            added = [k for k in declared[name]["keys"] if k.identity not in known] if name in declared else []
            after_keys = kept_keys + added
            if len(kept_keys) == len(before_keys) and not added:
                after_text = before_text or ""
            else:
                after_text = _strip_lines(before_text, after_keys) + ak.render_file(added)
        if name == connecting_user:
            legacy_keys = ak.parse_file(legacy.get(name))[0] if name in declared and exclusive else []
            _guard_keys(name, before_keys + legacy_keys, after_keys, connecting)
        if before_text is None and not after_text:
            continue
        if (before_text or "") != after_text:
            result["keys"][name] = (before_text, after_text)


def _strip_lines(before_text, after_keys):
    """Remove only the revoked keys' lines from a file bulwark does not own."""
    keep = ak.identities(after_keys)
    lines = []
    for raw in (before_text or "").splitlines(keepends=True):
        try:
            key = ak.parse_key(raw)
        except ak.InvalidKeyError:
            lines.append(raw)
            continue
        if key.identity in keep:
            lines.append(raw)
    text = "".join(lines)
    if text and not text.endswith("\n"):
        text += "\n"
    return text


def _guard_keys(name, before_keys, after_keys, connecting):
    after = ak.identities(after_keys)
    if connecting is not None:
        if connecting.identity not in after:
            raise LockoutError(
                f"the key the controller is connected with ({connecting.describe()}) would be removed from "
                f"{name!r}'s authorized_keys (connecting_user): declare it in that admin's ssh_keys"
            )
        return
    before = ak.identities(before_keys)
    if before and not before & after:
        raise LockoutError(
            f"every key {name!r} (connecting_user) has now would be removed from its authorized_keys: "
            "refusing to strip the account the controller is connected with; declare the key it uses "
            "in ssh_keys or pass connecting_key"
        )


def system_shells(users, uid_min, exempt=()):
    """System accounts (uid below uid_min, not root) that still have a login shell -> [names].

    They log in to nothing, so they keep no shell that would let a stolen credential in.
    """
    names = []
    for name, user in sorted(users.items()):
        uid = user.get("uid")
        if uid is None or uid == 0 or uid >= uid_min or name in exempt:
            continue
        if user.get("shell") in NO_LOGIN_SHELLS or user.get("shell") in ("/bin/sync", ""):
            continue
        names.append(name)
    return names


def describe(admins_plan, group):
    """Human-readable list of the planned changes (for messages and the module's result)."""
    lines = []
    if admins_plan["group_create"]:
        lines.append(f"create group {group}")
    for item in admins_plan["create"]:
        groups = ", ".join(item["groups"])
        lines.append(f"create user {item['name']} (shell {item['shell']}, groups {groups})")
    for item in admins_plan["modify"]:
        parts = []
        if "shell" in item:
            parts.append(f"shell {item['shell']}")
        if "add_groups" in item:
            parts.append(f"add to {', '.join(item['add_groups'])}")
        lines.append(f"modify user {item['name']}: {'; '.join(parts)}")
    for name in admins_plan["remove"]:
        lines.append(f"remove user {name} and its home")
    for name in admins_plan.get("nologin", []):
        lines.append(f"set the shell of system account {name} to /usr/sbin/nologin")
    for name, (before, after) in sorted(admins_plan["keys"].items()):
        gone = ak.identities(ak.parse_file(before)[0]) - ak.identities(ak.parse_file(after)[0])
        added = ak.identities(ak.parse_file(after)[0]) - ak.identities(ak.parse_file(before)[0])
        lines.append(f"authorized_keys of {name}: +{len(added)} -{len(gone)} key(s)")
    for name in admins_plan["remove_keys2"]:
        lines.append(f"remove {name}'s legacy authorized_keys2")
    return lines
