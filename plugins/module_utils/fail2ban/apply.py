"""How fail2ban_jail applies a file plan: the host operations, the commands that make the server read
them, the result it reports and the words of its failures.

Pure: the module passes what it read (the jails the server runs, whether systemd is there, fail2ban's
log) and runs what comes back through the host layer's executor.
"""

import os

from ansible_collections.bulwark.hardening.plugins.module_utils.fail2ban.jail import FILE_MODE
from ansible_collections.bulwark.hardening.plugins.module_utils.fail2ban.state import (
    missing_jails,
    reload_commands,
)
from ansible_collections.bulwark.hardening.plugins.module_utils.host.plan import (
    Command,
    Current,
    Plan,
    Refused,
    delete,
    replace,
)


def foreign_files(desired, existing, owned, custom):
    """Paths the desired set would write that exist without the ownership marker."""
    foreign = {path for path in desired if path in existing and path not in owned}
    # A filter.d/<name>.local of someone else's would be read over the custom filter.
    foreign |= {f"filter.d/{name}.local" for name in custom if f"filter.d/{name}.local" in existing}
    return foreign


def file_operations(config_dir, the_plan):
    """The writes and removals of `the_plan` under `config_dir`, each undone by putting back the file
    as it was (an owned file is root's)."""
    ops = []
    for relpath, content in sorted(the_plan.write.items()):
        path = os.path.join(config_dir, relpath)
        before = the_plan.before.get(relpath)
        current = Current(before, the_plan.modes.get(relpath, FILE_MODE)) if before else None
        ops.append(
            replace(path, content, current, what=f"write {path}", mode=FILE_MODE, anchor=config_dir,
                    make_dirs=0o755)
        )  # fmt: skip
    for relpath in the_plan.remove:
        path = os.path.join(config_dir, relpath)
        current = Current(the_plan.before.get(relpath, ""), the_plan.modes.get(relpath, FILE_MODE))
        ops.append(delete(path, current, what=f"remove {path}", anchor=config_dir))
    return ops


def host_plan(config_dir, the_plan, commands):
    """The files, then the commands that make the server run them (a command is not undone: after a
    failure the module restarts the server on the files put back)."""
    plan = Plan().add(*file_operations(config_dir, the_plan))
    plan.add(*(Command(tuple(argv), what=" ".join(argv)) for argv in commands))
    plan.diff = the_plan.diffs()
    return plan


def restore_plan(config_dir, the_plan, commands):
    """Put back the files `the_plan` changed (newest first), then run `commands` (restart or reload)."""
    ops = [op.inverse for op in reversed(file_operations(config_dir, the_plan)) if op.inverse is not None]
    plan = Plan().add(*ops)
    return plan.add(*(Command(tuple(argv), what=" ".join(argv)) for argv in commands))


def start_commands(systemctl):
    if systemctl:
        return [[systemctl, "reset-failed", "fail2ban.service"], [systemctl, "restart", "fail2ban.service"]]
    return [["service", "fail2ban", "restart"]]


def enable_commands(systemctl, wanted, enabled):
    """systemctl argv to enable the service at boot, when it is not (empty without systemd)."""
    if not wanted or not systemctl or enabled:
        return []
    return [[systemctl, "enable", "--quiet", "fail2ban.service"]]


def commands_for(client, the_plan, *, by_filter, running, wanted, start, enable):
    """The commands that make the server run the new files (start, or reload what changed), after the
    one that enables it at boot."""
    commands = start if running is None else reload_commands(the_plan, by_filter, running, wanted)
    commands = [[client, *argv[1:]] if argv[0] == "fail2ban-client" else argv for argv in commands]
    return enable + commands


def report(jails, the_plan, diff):
    """The result before anything runs, and the enabled jails' names by filter (for the reloads)."""
    wanted = sorted(jail.name for jail in jails if jail.enabled)
    by_filter = {}
    for jail in jails:
        if jail.enabled:
            by_filter.setdefault(jail.filter_name, []).append(jail.name)
    result = {
        "changed": the_plan.changed,
        "jails": wanted,
        "running_jails": [],
        "written": sorted(the_plan.write),
        "removed": the_plan.remove,
        "commands": [],
        "backends": {jail.name: jail.options.get("backend", "default") for jail in jails if jail.enabled},
    }
    if diff:
        result["diff"] = the_plan.diffs()
    return result, by_filter


def config_test_refusal(rc, out, err):
    """A Refused quoting fail2ban's own test mode (fail2ban-client -t) when it rejects the new files."""
    if rc == 0:
        return None
    lines = [line for line in (err + out).splitlines() if "ERROR" in line] or (err + out).splitlines()
    return Refused(
        "fail2ban's configuration test (fail2ban-client -t) rejects the new jails: "
        + " | ".join(line.split("ERROR", 1)[-1].strip() for line in lines[-6:])
    )


def interpreter_of(client_text):
    """The Python fail2ban-client runs with (its #! line), where python3-systemd must import."""
    first = (client_text or "").splitlines()[:1]
    if first and first[0].startswith("#!"):
        return first[0][2:].strip().split()[0]
    return "/usr/bin/python3"


def needs_journal(jails):
    return any(jail.enabled and jail.options.get("backend", "").startswith("systemd") for jail in jails)


JOURNAL_REFUSAL = (
    "jails on the systemd backend need the python3-systemd package (only a Recommends of "
    "fail2ban); install it first"
)


def verdict(wanted, running, idle):
    """Why the server does not run the declared set after the change, or None when it does."""
    if running is None:
        return "the fail2ban server is not running after the change"
    missing = missing_jails(wanted, running)
    if missing:
        return f"the fail2ban server runs {running} but not the declared jails {missing}"
    if idle:
        # A jail without a ban action would log bans and block nothing.
        return f"these jails run without any ban action: {idle}"
    return None


def failure_text(failure, restored, log_lines):
    return (
        failure
        + (" The previous jail files were restored." if restored else "")
        + " fail2ban says: "
        + " | ".join(log_lines[-8:])
    )


def log_errors(log_text):
    """The last ERROR lines of fail2ban's own log."""
    return [line for line in (log_text or "").splitlines()[-200:] if "ERROR" in line][-8:]
