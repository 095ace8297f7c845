#!/usr/bin/python
# Copyright: (c) 2026, bulwark.hardening maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module bulwark.hardening.baseline_files: many files, directories and modes in one call."""
# ruff: noqa: E402  (Ansible modules put DOCUMENTATION/EXAMPLES/RETURN before the imports)

DOCUMENTATION = r"""
---
module: baseline_files
short_description: A host's baseline files, directories, modes and owners reconciled in one call
description:
  - Takes one declarative list of paths and what each must be, reads the live state of all of them once,
    and changes only the entries that differ, each with one atomic write (a temporary file in the same
    directory, mode and owner set before the rename) or one mode and owner change.
  - Never writes, changes or removes through a symbolic link, and never replaces a directory by a file or
    the reverse; such a path fails the module naming the entry.
  - The whole list is validated before anything is read or changed; a fault fails the module naming the
    entry and field (V(files[3].mode)) and nothing is applied.
  - Content is given rendered (templates are rendered on the controller); the module never parses a
    file format. An entry with C(state=lines) replaces single lines of a file a package owns.
version_added: "0.1.0"
author: bulwark.hardening maintainers (@bulwark-hardening)
options:
  files:
    description:
      - What each path must be, in the order applied (list a directory before the files in it). Each entry
        is a mapping.
      - C(path), required, a plain absolute path (no blank, quote, glob, C(.) or C(..) component).
      - C(state), default C(file). C(file) has exactly C(content), C(mode) and owner. C(directory) is a
        directory with that mode and owner (created if missing). C(absent) is removed (a file or link; a
        directory is refused). C(attributes) only gets the mode and owner, and is skipped (reported in
        RV(skipped_paths)) where the path is missing. C(lines) edits a file that exists; each of C(lines), a
        list of C({regexp, line}), replaces the last line its C(regexp) matches, or is appended; each line
        must match its own regexp (otherwise every run would append it once more).
      - C(content), for C(file), the whole content; control characters other than line feeds and tabs are
        refused.
      - C(mode), a quoted octal string (V('0644')), required except for C(absent) and C(lines) (where the file
        keeps its mode); setuid, setgid and sticky bits are refused.
      - C(owner) and C(group), default V(root), must exist on the host.
      - C(secret), default V(false); the diff shows that the content changed, never the content.
      - C(validate), a command as a list, one argument being V(%s), run on the temporary file before it
        replaces the path (for example V([rsyslogd, -N1, -f, "%s"])); if it fails the path is left as it was.
        Not run in check mode.
    type: list
    elements: dict
    required: true
  homes_mode_at_most:
    description:
      - The most a regular account's home directory may allow, as a quoted octal string (V('0750')). Each
        home of an account with C(UID_MIN) (from C(/etc/login.defs)) <= uid < 65534 under C(/home/) loses
        the bits beyond it; its owner and its other bits stay. A home that is missing or a link is left
        alone. Omitted, homes are not looked at.
    type: str
notes:
  - In check mode a file whose directory does not exist yet (its package is installed by the same run) is
    predicted as created, and so is a C(state=lines) file that is not there yet.
requirements:
  - Python 3 on the managed host (standard library only).
attributes:
  check_mode:
    support: full
    description: Reads everything and reports exactly what would change, changing nothing.
  diff_mode:
    support: full
    description: One diff per changed path; content of C(secret) entries is replaced by a marker.
  platform:
    support: full
    platforms: posix
    description: Debian 12 and 13 (any POSIX host with Python 3).
"""

EXAMPLES = r"""
- name: The baseline's files in one call
  bulwark.hardening.baseline_files:
    files:
      - {path: /etc/systemd/journald.conf.d, state: directory, mode: "0755"}
      - path: /etc/systemd/journald.conf.d/90-bulwark.conf
        content: "{{ lookup('ansible.builtin.template', 'journald.conf.j2') }}"
        mode: "0644"
      - {path: /etc/shadow, state: attributes, mode: "0640", group: shadow}
      - path: /etc/login.defs
        state: lines
        lines: [{regexp: '^\s*UMASK\s', line: UMASK 027}]
      - {path: /etc/profile.d/90-bulwark-umask.sh, state: absent}
  register: baseline
"""

RETURN = r"""
changed_paths:
  description: The paths changed (or that would be, in check mode), in the order of O(files).
  returned: always
  type: list
  elements: str
changes:
  description: For each changed path, what was done (V(write), V(attributes), V(directory), V(remove)).
  returned: always
  type: list
  elements: dict
  sample: [{"path": "/etc/issue", "action": "write"}]
skipped_paths:
  description: V(attributes) entries left alone, with the reason (a path missing on this host).
  returned: always
  type: dict
  sample: {"/etc/at.allow": "not on this host"}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.bulwark.hardening.plugins.module_utils.baseline import files as baseline
from ansible_collections.bulwark.hardening.plugins.module_utils.host import files
from ansible_collections.bulwark.hardening.plugins.module_utils.host.commands import Runner
from ansible_collections.bulwark.hardening.plugins.module_utils.host.executor import (
    Executor,
    PlanFailed,
    Refused,
    fail,
)


def read_live(entries):
    """One read of every path: its kind, mode, owner and (for what is compared or shown) its content."""
    live = {}
    for entry in entries:
        found = files.status(entry["path"])
        if found is None:
            live[entry["path"]] = None
            continue
        kind, mode, uid, gid = found
        content = None
        if kind == "file" and entry["state"] in ("file", "lines", "absent"):
            content = files.read(entry["path"])
        live[entry["path"]] = {"kind": kind, "mode": mode, "uid": uid, "gid": gid, "content": content}
    return live


def read_homes():
    """The regular accounts' homes and each one's kind, mode and owner (one read of each)."""
    login_defs = files.read("/etc/login.defs") if files.status("/etc/login.defs") else ""
    homes = baseline.regular_homes(files.accounts(), login_defs)
    live = {}
    for home in homes:
        found = files.status(home)
        live[home] = None if found is None else dict(zip(("kind", "mode", "uid", "gid"), found, strict=True))
    return homes, live


def resolve_ids(entries):
    """The uid and gid of every user and group name the entries use (None where the host has none)."""
    users = {entry["owner"] for entry in entries if entry["state"] != "absent"}
    groups = {entry["group"] for entry in entries if entry["state"] != "absent"}
    return {"user": {n: files.user_id(n) for n in users}, "group": {n: files.group_id(n) for n in groups}}


def planned(params, check_mode):
    """(changes, skipped, host plan); a Refused naming the bad entry before anything changes."""
    try:
        entries = baseline.validate(params["files"])
        live = read_live(entries)
        changes, skipped = baseline.plan(entries, live, resolve_ids(entries), check_mode)
        at_most = baseline.validate_at_most(params["homes_mode_at_most"])
        if at_most is not None:
            homes, homes_live = read_homes()
            changes += baseline.plan_homes(homes, homes_live, at_most)
            live = {**homes_live, **live}
    except (baseline.BaselineSpecError, files.HostError) as exc:
        raise Refused(str(exc)) from None
    return changes, skipped, baseline.host_plan(changes, live)


def main():
    module = AnsibleModule(
        argument_spec={
            "files": {"type": "list", "elements": "dict", "required": True},
            "homes_mode_at_most": {"type": "str"},
        },
        supports_check_mode=True,
    )
    try:
        changes, skipped, plan = planned(module.params, module.check_mode)
        Executor(Runner(module), module.check_mode).run(plan)
    except PlanFailed as exc:
        fail(module, exc, changed_paths=[change["path"] for change in changes[: len(exc.applied)]])
    except Refused as exc:
        fail(module, exc)
    module.exit_json(
        changed=bool(changes),
        changed_paths=[c["path"] for c in changes],
        changes=[{"path": c["path"], "action": c["action"]} for c in changes],
        skipped_paths=skipped,
        diff=plan.diff,
    )


if __name__ == "__main__":
    main()
