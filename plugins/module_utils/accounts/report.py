"""What admin_accounts reports of a plan: the diff entries, the key changes and the admin group's members.

Pure: `live` is what the module read (read_live), `result` the plan of accounts.plan.plan.
"""

from ansible_collections.bulwark.hardening.plugins.module_utils.accounts import authorized_keys as ak


def uid_min(login_defs_text):
    """UID_MIN of /etc/login.defs (the first uid of a person's account); 1000 when it is not set."""
    for line in (login_defs_text or "").splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == "UID_MIN" and fields[1].isdigit():
            return int(fields[1])
    return 1000


def account_view(users, names, group):
    """One line per account in names: its shell and whether it is in the group (absent if it is not)."""
    lines = []
    for name in sorted(names):
        user = users.get(name)
        if user is None:
            lines.append(f"user {name}: absent\n")
            continue
        member = "yes" if group in user["groups"] else "no"
        lines.append(f"user {name}: shell {user['shell']}, in {group}: {member}\n")
    return "".join(lines)


def planned_users(users, result):
    """The accounts as the plan leaves them: {name: {"shell", "groups", ...}}."""
    after = {name: dict(user) for name, user in users.items()}
    for item in result["create"]:
        after[item["name"]] = {"shell": item["shell"], "groups": list(item["groups"])}
    for item in result["modify"]:
        user = after[item["name"]]
        user["shell"] = item.get("shell", user["shell"])
        user["groups"] = user["groups"] + item.get("add_groups", [])
    for name in result["remove"]:
        after.pop(name, None)
    for name in result.get("nologin", []):
        after[name] = {**after[name], "shell": "/usr/sbin/nologin"}
    return after


def key_changes(before, after):
    """{"added": [...], "removed": [...]}: the keys (described, never whole) between two key files."""
    before_keys = {k.identity: k for k in ak.parse_file(before)[0]}
    after_keys = {k.identity: k for k in ak.parse_file(after)[0]}
    return {
        "added": [k.describe() for i, k in after_keys.items() if i not in before_keys],
        "removed": [k.describe() for i, k in before_keys.items() if i not in after_keys],
    }


def touched(result):
    """The names of the accounts the plan creates, modifies, removes or gives the nologin shell."""
    return (
        {i["name"] for i in result["create"]}
        | {i["name"] for i in result["modify"]}
        | set(result["remove"])
        | set(result.get("nologin", []))
    )


def _entry(before_header, after_header, before, after):
    return {"before_header": before_header, "after_header": after_header, "before": before, "after": after}


def diffs(live, result, group, sudoers=None):
    """The --diff entries: the accounts touched, each key file, each authorized_keys2 removed, and the
    sudoers drop-in (sudoers: (path, before, after) when it changes, else None)."""
    names = touched(result)
    entries = []
    if names:
        before = account_view(live["users"], names, group)
        after = account_view(planned_users(live["users"], result), names, group)
        entries.append(_entry("accounts", "accounts", before, after))
    for name, (before, after) in sorted(result["keys"].items()):
        header = f"{name}: authorized_keys"
        entries.append(_entry(header, header, ak.describe_file(before), ak.describe_file(after)))
    for name in result["remove_keys2"]:
        before = ak.describe_file(live["authorized_keys2"][name])
        entries.append(_entry(f"{name}: authorized_keys2", f"{name}: authorized_keys2 (removed)", before, ""))
    if sudoers is not None:
        path, before, after = sudoers
        entries.append(_entry(path, path, before or "", after))
    return entries


def members(live, result, group):
    """The admin group's members once the plan is applied, sorted."""
    found = {name for name, user in live["users"].items() if group in user["groups"]}
    found |= {i["name"] for i in result["create"]}
    found |= {i["name"] for i in result["modify"] if group in i.get("add_groups", [])}
    found -= set(result["remove"])
    return sorted(found)


def exit_values(live, result, group, *, actions, sudoers_file):
    """The module's result besides changed and diff."""
    return {
        "actions": actions,
        "group_members": members(live, result, group),
        "created": [i["name"] for i in result["create"]],
        "removed": list(result["remove"]),
        "key_changes": {name: key_changes(b, a) for name, (b, a) in result["keys"].items()},
        "sudoers_file": sudoers_file,
    }
