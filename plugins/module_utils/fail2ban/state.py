"""What must change between the files on the host and the declared set, and what to reload.

Pure: the module passes the owned files it read and the output of ``fail2ban-client status``.
"""

import re

from ansible_collections.bulwark.hardening.plugins.module_utils.fail2ban.jail import (
    FILE_MODE,
    JailError,
    is_owned,
    jail_name_from_path,
    redact,
)


class Plan:
    """Files to write and remove, and the reload that applies them."""

    def __init__(self, write, remove, before, after, modes=None, *, secrets=frozenset()):
        self.secrets = secrets  # option names whose values a diff never shows
        self.write = write  # {path: content}
        self.remove = remove  # [path]
        self.before = before  # {path: content} for every changed path (absent: "")
        self.after = after
        self.modes = modes or {}  # {path: mode} of the owned files as found

    @property
    def changed(self):
        return bool(self.write or self.remove)

    def diffs(self):
        """Ansible's diff list: one before/after pair per changed file, action parameters redacted."""
        return [
            {
                "before_header": self._header(path, self.modes.get(path)),
                "after_header": self._header(path, FILE_MODE if path in self.write else None),
                "before": redact(self.before.get(path, ""), self.secrets),
                "after": redact(self.after.get(path, ""), self.secrets),
            }
            for path in sorted(set(self.write) | set(self.remove))
        ]

    @staticmethod
    def _header(path, mode):
        return f"/etc/fail2ban/{path}" + (f" (mode {mode:04o})" if mode is not None else "")


def plan(desired, current, foreign, modes=None, secrets=frozenset()):
    """Compare desired {path: content} with the owned files {path: content} found on the host.

    foreign: paths the desired set would write that exist without the ownership marker; they are
    never overwritten (an operator's own file or a stock filter of the same name).
    modes: {path: mode} of the owned files; a file whose mode is not FILE_MODE is rewritten too.
    secrets: option names whose values the diffs redact.
    """
    modes = modes or {}
    clash = sorted(path for path in foreign if path in desired or path.endswith(".local"))
    if clash:
        raise JailError(
            "these files exist and are not managed by bulwark.hardening, refusing to replace them: "
            + ", ".join(f"/etc/fail2ban/{path}" for path in clash)
            + " (rename the jail or filter, or remove the file)"
        )
    for path, content in current.items():
        if not is_owned(content):
            raise JailError(f"internal: {path} is listed as owned but has no marker")
    write = {
        path: content
        for path, content in desired.items()
        if current.get(path) != content or modes.get(path, FILE_MODE) != FILE_MODE
    }
    remove = sorted(path for path in current if path not in desired)
    before = {path: current.get(path, "") for path in list(write) + remove}
    after = {path: desired.get(path, "") for path in list(write) + remove}
    return Plan(write, remove, before, after, modes, secrets=secrets)


def reload_commands(the_plan, jails_by_filter, running, wanted):
    """fail2ban-client argv lists that apply the plan to a running server.

    jails_by_filter: {filter name: [enabled jails using it]} for the declared set.
    running: the jails the server runs (None when it does not answer: the module starts the service).
    wanted: the declared enabled jails.
    A jail to start or stop needs a full reload (``reload <jail>`` cannot start a jail the server does
    not know). A running jail whose file or filter changed is restarted alone (``reload --restart``):
    fail2ban 1.1 keeps no ban action after a plain reload that changes the jail's action.
    """
    if running is None:
        return []
    running = set(running)
    changed = set()
    stopped = set()
    for path in list(the_plan.write) + the_plan.remove:
        if path in the_plan.write and the_plan.before.get(path) == the_plan.after.get(path):
            continue  # only its mode changes: fail2ban reads nothing new
        name = jail_name_from_path(path)
        if name is not None:
            if path in the_plan.remove or not _enabled(the_plan.after.get(path)):
                stopped.add(name)
            else:
                changed.add(name)
        elif path.startswith("filter.d/") and path.endswith(".conf"):
            changed.update(jails_by_filter.get(path[len("filter.d/") : -len(".conf")], []))
    commands = []
    if set(wanted) - running or stopped & running:
        commands.append(["fail2ban-client", "reload"])
    for name in sorted(changed & running & set(wanted)):
        commands.append(["fail2ban-client", "reload", "--restart", name])
    return commands


_ENABLED = re.compile(r"^enabled\s*=\s*(\S+)", re.MULTILINE)


def _enabled(content):
    match = _ENABLED.search(content or "")
    return bool(match) and match.group(1).lower() in ("true", "yes", "1", "on")


def parse_status(output):
    """Jail names from ``fail2ban-client status`` ("`- Jail list:\\tsshd, recidive")."""
    for line in output.splitlines():
        if "Jail list:" in line:
            names = line.split("Jail list:", 1)[1]
            return sorted(name.strip() for name in names.split(",") if name.strip())
    raise ValueError("no 'Jail list' in fail2ban-client status output")


def parse_jail_status(output):
    """Banned addresses and counters from ``fail2ban-client status <jail>``."""
    result = {
        "currently_failed": 0,
        "total_failed": 0,
        "currently_banned": 0,
        "total_banned": 0,
        "banned": [],
    }
    keys = {
        "Currently failed:": "currently_failed",
        "Total failed:": "total_failed",
        "Currently banned:": "currently_banned",
        "Total banned:": "total_banned",
    }
    for line in output.splitlines():
        for label, key in keys.items():
            if label in line:
                result[key] = int(line.split(label, 1)[1].strip() or 0)
        if "Banned IP list:" in line:
            result["banned"] = line.split("Banned IP list:", 1)[1].split()
    return result


def parse_actions(output):
    """Action names from ``fail2ban-client get <jail> actions`` (none: "No actions for jail ...")."""
    if "No actions for jail" in output:
        return []
    lines = output.strip().splitlines()
    return [name.strip() for line in lines[1:] for name in line.split(",") if name.strip()]


def missing_jails(declared_enabled, running):
    return sorted(set(declared_enabled) - set(running))
