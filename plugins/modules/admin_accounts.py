#!/usr/bin/python
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# ruff: noqa: E402  (Ansible wants DOCUMENTATION, EXAMPLES and RETURN before the imports)

DOCUMENTATION = r"""
---
module: admin_accounts
short_description: Admin accounts, their SSH keys, the admin group and sudo, in one call
description:
  - Creates the declared admins, puts them in the admin group (the group sshd's C(AllowGroups) names)
    and gives them sudo through one sudoers drop-in validated with C(visudo -cf) before it is installed.
  - Manages each admin's C(~/.ssh/authorized_keys) exclusively by default; keys not declared are removed,
    and a legacy C(~/.ssh/authorized_keys2) of a declared admin is deleted.
  - An admin with O(admins[].state=absent) is removed with its home, its processes are ended, and its
    declared keys are removed from every other account's C(authorized_keys).
  - The account the controller is connected with (O(connecting_user)) and the key it uses are never removed,
    locked or stripped; a run that would do so fails with a clear message before anything changes.
  - The sudoers drop-in also makes sudo log to its own file and run commands in a pseudo-terminal
    (C(use_pty)).
  - A C(~/.ssh) or C(authorized_keys) that is a symbolic link is never written through (it may be another
    account's file); a run that would write there fails naming the account, before anything changes.
  - Keys are written and removed relative to descriptors on the home and C(~/.ssh), which only root or the
    account may own; a home with a parent another user could change (its owner could swap the home for a
    link) is refused, naming that directory, before anything changes.
version_added: "0.1.0"
author: bulwark.hardening maintainers (@bulwark-hardening)
options:
  admins:
    description: The admins to manage. Accounts not listed are left alone (except for revoked keys).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The user name.
        type: str
        required: true
      ssh_keys:
        description: Public key lines (options and comment allowed) that may log in as this admin.
        type: list
        elements: str
        default: []
      state:
        description: C(absent) removes the account, its home and its keys everywhere.
        type: str
        choices: [present, absent]
        default: present
      shell:
        description: The login shell; defaults to O(shell).
        type: str
      sudo:
        description: Whether this admin gets sudo.
        type: bool
        default: true
  group:
    description: The admin group (sshd's C(AllowGroups)); created if missing.
    type: str
    required: true
  shell:
    description: The default login shell of admins.
    type: str
    default: /bin/bash
  exclusive:
    description: Whether keys not declared are removed from a declared admin's C(authorized_keys).
    type: bool
    default: true
  remove_home:
    description: Whether removing an admin also removes its home directory.
    type: bool
    default: true
  sudo:
    description: Whether to manage the sudoers drop-in at all.
    type: bool
    default: true
  sudo_nopasswd:
    description: Whether admins use sudo without a password (accounts made here have no password).
    type: bool
    default: true
  sudoers_file:
    description: The sudoers drop-in this module owns (no dot in the name, or sudo ignores it).
    type: path
    default: /etc/sudoers.d/bulwark-admins
  sudo_logfile:
    description:
      - The file sudo logs to (C(Defaults logfile)); empty for none.
      - A plain absolute path (letters, digits, C(.), C(_), C(-), C(+), C(@) between slashes); anything else,
        a quote or a line break that would add a sudoers rule, is refused.
    type: str
    default: /var/log/sudo.log
  sudo_use_pty:
    description: Whether sudo runs commands in a pseudo-terminal (C(Defaults use_pty)).
    type: bool
    default: true
  system_accounts_nologin:
    description:
      - Whether system accounts (uid below C(UID_MIN) of C(/etc/login.defs), not root) that have a login shell
        get C(/usr/sbin/nologin).
    type: bool
    default: false
  system_accounts_exempt:
    description: System accounts that keep their shell.
    type: list
    elements: str
    default: []
  connecting_user:
    description:
      - The account the controller is connected with (the role passes C(ansible_user)).
      - It is never removed or locked, keeps at least one current key (or O(connecting_key)),
        and is put in O(group) so sshd's C(AllowGroups) keeps admitting it.
    type: str
  connecting_key:
    description:
      - The public key the controller logs in with. When given, it must stay in the connecting user's keys.
      - When not given, a run that would leave the connecting user none of its current keys is refused.
    type: str
requirements:
  - On the host, C(useradd), C(usermod), C(userdel) and C(groupadd) (Debian's C(passwd)), C(pkill) (C(procps))
    and C(visudo) (C(sudo)).
attributes:
  check_mode:
    support: full
    description: Reports the accounts, keys, group members and sudoers drop-in that would change; changes
      nothing.
  diff_mode:
    support: full
    description: Keys are shown by type, fingerprint and comment, never whole.
  platform:
    support: full
    platforms: posix
    description: Debian 12 and 13 with systemd.
notes:
  - Check mode and diff mode are supported; diffs show keys by type, fingerprint and comment, never whole.
"""

EXAMPLES = r"""
- name: Admins, their keys and sudo
  bulwark.hardening.admin_accounts:
    group: sshusers
    connecting_user: "{{ ansible_user }}"
    admins:
      - name: alice
        ssh_keys:
          - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExampleExampleExampleExample alice@laptop
      - name: bob
        state: absent
        ssh_keys:
          - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBobBobBobBobBobBobBobBobBobBobBobBobBobBob bob@old
"""

RETURN = r"""
actions:
  description: What changed (or would change in check mode), one line each.
  returned: always
  type: list
  elements: str
  sample: ["create user alice (shell /bin/bash, groups sshusers)", "authorized_keys of bob: +0 -1 key(s)"]
created:
  description: Accounts created.
  returned: always
  type: list
  elements: str
removed:
  description: Accounts removed.
  returned: always
  type: list
  elements: str
key_changes:
  description: Per account whose C(authorized_keys) changed, the keys added and removed (by fingerprint).
  returned: always
  type: dict
  sample: {"bob": {"added": [], "removed": ["ssh-ed25519 SHA256:abc... stray"]}}
group_members:
  description: The members of O(group) after the run (predicted in check mode), sorted.
  returned: always
  type: list
  elements: str
sudoers_file:
  description: The sudoers drop-in path (when O(sudo) is true).
  returned: always
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.bulwark.hardening.plugins.module_utils.accounts import apply, report
from ansible_collections.bulwark.hardening.plugins.module_utils.accounts import plan as plan_mod
from ansible_collections.bulwark.hardening.plugins.module_utils.accounts.spec import ARGUMENT_SPEC
from ansible_collections.bulwark.hardening.plugins.module_utils.host import accounts, files
from ansible_collections.bulwark.hardening.plugins.module_utils.host.commands import Runner
from ansible_collections.bulwark.hardening.plugins.module_utils.host.executor import (
    Executor,
    PlanFailed,
    Refused,
    fail,
)


def _is_link(path):
    try:
        return (files.status(path) or (None,))[0] == "link"
    except files.HostError:
        return False  # nothing readable there (a home that is not a directory): no keys to read


def read_memberships(group):
    """({account: [names of its groups]}, whether `group` exists)."""
    memberships, groups = {}, accounts.groups()
    for entry in groups:
        for member in entry.members:
            memberships.setdefault(member, []).append(entry.name)
    gid_names = {entry.gid: entry.name for entry in groups}
    for entry in accounts.users():
        if entry.gid in gid_names:
            memberships.setdefault(entry.name, []).append(gid_names[entry.gid])
    return memberships, any(entry.name == group for entry in groups)


def read_live(group):
    """Accounts, groups and authorized_keys files, read directly (no command needed).

    A ~/.ssh or key file that is a symbolic link is not read through; it is listed under "links"
    and the plan refuses to write there. One that cannot be read safely (it became a link, is not a
    regular file, is too large) is listed under "unreadable" with the reason: nothing of it is used.
    """
    memberships, group_exists = read_memberships(group)
    live = {"users": {}, "group_exists": group_exists, "authorized_keys": {}, "authorized_keys2": {}}
    live.update(links={}, unreadable={})
    for entry in accounts.users():
        groups = memberships.get(entry.name, [])
        live["users"][entry.name] = {
            "uid": entry.uid,
            "home": entry.home,
            "shell": entry.shell,
            "groups": groups,
        }
        if entry.home and entry.home != "/":
            read_keys(entry, live)
    return live


def read_keys(entry, live):
    """The account's authorized_keys (and authorized_keys2) into live, or why they were not read."""
    ssh_dir = os.path.join(entry.home, ".ssh")
    paths = [ssh_dir, os.path.join(ssh_dir, "authorized_keys"), os.path.join(ssh_dir, "authorized_keys2")]
    link = next((path for path in paths if _is_link(path)), None)
    if link:
        live["links"][entry.name] = link
        return
    if not files.is_dir(ssh_dir):
        return
    # Relative to descriptors on the home and ~/.ssh: the account may swap in a link (to /etc/shadow)
    # after the check above, and what is read here is written back to its file.
    where = {"anchor": entry.home, "owner": entry.uid}
    try:
        text, text2 = files.read(paths[1], **where), files.read(paths[2], **where)
    except files.HostError as exc:
        live["unreadable"][entry.name] = str(exc)
        return
    live["authorized_keys"][entry.name] = text
    if text2 is not None:
        live["authorized_keys2"][entry.name] = text2


def write_keys(home, uid, gid, text):
    """~/.ssh/authorized_keys, owned by the account: made relative to descriptors on its home and ~/.ssh
    (which only root or the account may own), never through a link below the home."""
    ssh_dir = os.path.join(home, ".ssh")
    if files.status(ssh_dir) is None:
        files.directory(ssh_dir, 0o700, uid, gid, anchor=home, owner=uid, only_new=True)
    keys = os.path.join(ssh_dir, "authorized_keys")
    files.write(keys, text, mode=0o600, uid=uid, gid=gid, anchor=home, owner=uid)


def check_key_dirs(result, live):
    """Refuse, before anything changes, an account whose keys this run writes or removes below a home
    that a user other than root or the account could change (its owner could swap ~/.ssh for a link),
    or whose key files could not be read safely."""
    for name in sorted(set(result["keys"]) | set(result["remove_keys2"])):
        if name in live.get("unreadable", {}):
            raise files.HostError(f"account {name!r}: {live['unreadable'][name]}")
        entry = accounts.user(name)
        if entry is not None:  # else made by this run: useradd makes its home
            files.check_dir(os.path.join(entry.home, ".ssh"), anchor=entry.home, owner=entry.uid)


def write_account_keys(name, text):
    """The keys of account `name`, looked up now (useradd may have made it in this very run)."""
    entry = accounts.user(name)
    if entry is None:
        raise files.HostError(f"account {name!r} does not exist")
    write_keys(entry.home, entry.uid, entry.gid, text)


def host_plan(runner, params, live, result, sudoers):
    """The plan as host operations; a Refused when the drop-in is to be written without visudo."""
    visudo = runner.which("visudo") if sudoers else None
    if sudoers and not visudo:
        raise Refused("visudo not found: install sudo first, or sudo=false")
    entries = {name: accounts.user(name) for name in result["remove_keys2"]}
    return apply.host_plan(
        result, live, params, sudoers=sudoers, write_keys=write_account_keys, entries=entries, visudo=visudo
    )


def planned(params):
    """(admins, live, plan): the declared admins checked and the plan against the live accounts; a Refused
    naming why, before anything changes."""
    try:
        admins = plan_mod.validate_options(params)
        live = read_live(params["group"])
        result = plan_mod.plan(
            admins,
            live,
            params["group"],
            connecting_user=params["connecting_user"],
            connecting_key=params["connecting_key"],
            exclusive=params["exclusive"],
        )
        check_key_dirs(result, live)
    except (plan_mod.AdminSpecError, plan_mod.UnsafePathError, files.HostError) as exc:
        raise Refused(f"{exc}. Nothing was changed") from None
    except plan_mod.LockoutError as exc:
        raise Lockout(f"refusing to change anything: {exc}") from None
    result["nologin"] = []
    if params["system_accounts_nologin"]:
        exempt = {params["connecting_user"], *params["system_accounts_exempt"], *(a["name"] for a in admins)}
        uid_min = report.uid_min(files.read("/etc/login.defs"))
        result["nologin"] = plan_mod.system_shells(live["users"], uid_min, exempt)
    return admins, live, result


class Lockout(Refused):
    """The lockout guard refused: the result says so (lockout=True)."""


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params, runner = module.params, Runner(module)
    group = params["group"]
    try:
        admins, live, result = planned(params)
        sudoers = None  # (path, before, after) when the drop-in changes
        if params["sudo"]:
            before = files.read(params["sudoers_file"])
            after = plan_mod.render_sudoers(
                admins, params["sudo_nopasswd"], params["sudo_logfile"], params["sudo_use_pty"]
            )
            sudoers = (params["sudoers_file"], before, after) if before != after else None
        actions = plan_mod.describe(result, group) + ([f"write {params['sudoers_file']}"] if sudoers else [])
        if actions and not module.check_mode:
            Executor(runner).run(host_plan(runner, params, live, result, sudoers))
    except Lockout as exc:
        fail(module, exc, lockout=True)
    except (Refused, PlanFailed) as exc:
        fail(module, exc)
    module.exit_json(
        changed=bool(actions),
        diff=report.diffs(live, result, group, sudoers),
        **report.exit_values(
            live,
            result,
            group,
            actions=actions,
            sudoers_file=params["sudoers_file"] if params["sudo"] else "",
        ),
    )


if __name__ == "__main__":
    main()
