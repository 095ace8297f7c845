"""admin_accounts' plan as host operations, in the order the old module applied them, each with the
operation that undoes it where there is one (pure: the module passes the host-layer functions a Call
needs and the account entries it read).

A user created by this run has no uid before useradd ran, so its keys are written by a Call that looks
the account up then (write_keys); the sudoers drop-in is checked by visudo as written (Write.verify).
"""

import os

from ansible_collections.bulwark.hardening.plugins.module_utils.host.plan import (
    Call,
    Command,
    Current,
    Plan,
    Remove,
    Write,
    replace,
)

SUDOERS_MODE = 0o440
KEYS_MODE = 0o600


def _accounts(result, params, users):
    group = params["group"]
    ops = []
    if result["group_create"]:
        ops.append(Command(("groupadd", group), what=f"create group {group}",
                           inverse=Command(("groupdel", group), what=f"remove group {group}")))  # fmt: skip
    for item in result["create"]:
        name = item["name"]
        argv = ("useradd", "--create-home", "--user-group", "--shell", item["shell"],
                "--groups", ",".join(item["groups"]), "--password", "*", name)  # fmt: skip
        undo = Command(("userdel", "--remove", name), what=f"remove the new user {name}", ok=(0, 12))
        ops.append(Command(argv, what=f"create user {name}", inverse=undo))
    for item in result["modify"]:
        name, old_shell = item["name"], users.get(item["name"], {}).get("shell")
        if "shell" in item:
            undo = _shell(name, old_shell, f"put back the shell of {name}") if old_shell else None
            ops.append(Command(("usermod", "--shell", item["shell"], name), what=f"modify user {name}: shell",
                               inverse=undo))  # fmt: skip
        if "add_groups" in item:
            groups = ",".join(item["add_groups"])
            undo = None  # gpasswd takes one group at a time
            if len(item["add_groups"]) == 1:
                undo = Command(
                    ("gpasswd", "--delete", name, groups), what=f"take {name} out of {groups} again"
                )
            ops.append(Command(("usermod", "--append", "--groups", groups, name),
                               what=f"modify user {name}: add to {groups}", inverse=undo))  # fmt: skip
    for name in result["remove"]:
        # Sessions of a revoked admin end now; userdel refuses while its processes run. Not undone.
        ops.append(Command(("pkill", "--signal", "KILL", "--uid", name), what=f"end the sessions of {name}",
                           ok=(0, 1)))  # fmt: skip
        argv = ("userdel", *(("--remove",) if params["remove_home"] else ()), name)
        ops.append(Command(argv, what=f"remove user {name}", ok=(0, 12)))
    return ops


def _shell(name, shell, what, inverse=None):
    return Command(("usermod", "--shell", shell, name), what=what, inverse=inverse)


def _keys(result, live, write_keys, entries):
    """authorized_keys written (a Call: the account may be new), legacy authorized_keys2 removed."""
    ops = []
    for name, (before, after) in sorted(result["keys"].items()):
        undo = (
            Call(write_keys, (name, before), what=f"put back the authorized_keys of {name}")
            if before
            else None
        )
        ops.append(Call(write_keys, (name, after), what=f"authorized_keys of {name}", inverse=undo))
    for name in result["nologin"]:
        undo = _shell(name, live["users"][name]["shell"], f"put back the shell of {name}")
        ops.append(_shell(name, "/usr/sbin/nologin", f"nologin shell for {name}", inverse=undo))
    for name in result["remove_keys2"]:
        entry = entries[name]
        path = os.path.join(entry.home, ".ssh", "authorized_keys2")
        where = {"anchor": entry.home, "owner": entry.uid}
        back = Write(path, live["authorized_keys2"][name], KEYS_MODE, entry.uid, entry.gid,
                     what=f"put back {name}'s authorized_keys2", **where)  # fmt: skip
        ops.append(Remove(path, what=f"remove {name}'s authorized_keys2", inverse=back, **where))
    return ops


def host_plan(result, live, params, *, sudoers, write_keys, entries, visudo):
    """The plan of `result` (accounts.plan), then the sudoers drop-in when it changes.

    sudoers: (path, before, after) or None; write_keys(name, text): the host-layer function that writes an
    account's keys; entries: {name: account} of the accounts whose legacy file is removed; visudo: its path.
    """
    plan = Plan().add(*_accounts(result, params, live["users"]))
    plan.add(*_keys(result, live, write_keys, entries))
    if sudoers:
        path, before, after = sudoers
        current = Current(before, SUDOERS_MODE) if before is not None else None
        plan.add(replace(path, after, current, what=f"write {path}", mode=SUDOERS_MODE,
                         verify=(visudo, "-cf", "{}")))  # fmt: skip
    return plan
