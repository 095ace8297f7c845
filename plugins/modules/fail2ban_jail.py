#!/usr/bin/python
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# ruff: noqa: E402  (Ansible wants DOCUMENTATION, EXAMPLES and RETURN before the imports)

DOCUMENTATION = r"""
---
module: fail2ban_jail
short_description: The whole set of fail2ban jails (and custom filters), validated, reloaded and verified
description:
  - Declares every jail this collection manages in one call. Each jail is written to its own file
    C(jail.d/bulwark-<jail>.local) (read after C(jail.conf), C(jail.d/*.conf) and C(jail.local),
    so its section wins); custom filters go to C(filter.d/<name>.conf). Files carry an ownership
    marker; only marked files are replaced or removed, and a managed jail that is no longer declared
    has its file removed.
  - C(jail.conf) and files without the marker are never touched.
  - The ban action follows O(firewall_backend) (C(nftables-multiport)/C(nftables-allports),
    C(iptables-multiport)/C(iptables-allports), C(ufw)); C(recidive) bans on all ports.
  - C(ignoreip) of every jail starts with C(127.0.0.1/8 ::1) and O(admin_networks), so the operator
    is never banned.
  - When the host has no O(auth_log) (Debian 12 and later log sshd only to the journal), jails using the
    C(sshd) filter get C(backend = systemd) and a C(journalmatch) covering C(ssh.service), C(sshd),
    C(sshd-session) and C(sshd-auth); such jails need C(python3-systemd), which is checked.
  - Before anything is replaced, the whole configuration is tested with C(fail2ban-client -t) on a
    temporary copy of O(config_dir) holding the new files. Bad input (an unknown jail
    option, a filter that does not exist, a negative duration) fails naming the option and changes nothing.
  - Only what changed is reloaded (C(fail2ban-client reload <jail>)); a jail added or removed
    reloads the server; a server that is not running is (re)started. Afterwards the module waits until
    the server runs every declared enabled jail and fails with fail2ban's own log lines otherwise,
    restoring the previous files.
  - In check mode on a host where fail2ban is not installed yet, every file is predicted as changed.
version_added: "0.1.0"
author: bulwark.hardening maintainers (@bulwark-hardening)
options:
  jails:
    description:
      - Jail name to its options, the keys of a C(jail.conf) section (C(enabled), C(filter), C(port),
        C(logpath), C(backend), C(bantime), C(findtime), C(maxretry),
        C(bantime.increment), C(bantime.maxtime), ...).
      - Lists are allowed for C(logpath), C(action), C(failregex), C(ignoreregex) (one per line), C(port)
        (comma-joined) and C(ignoreip) (space-joined). Durations are seconds or fail2ban's C(10m),
        C(1h), C(1w).
      - C(enabled) defaults to C(true); a jail with C(enabled=false) is written as disabled (useful
        to switch off a jail a package enables, such as Debian's C(sshd)).
      - Jails this module wrote before and that are not listed here are removed.
    type: dict
    required: true
  filters:
    description:
      - Custom filters, name to definition (C(failregex) required; C(ignoreregex), C(prefregex),
        C(datepattern), C(journalmatch), C(maxlines)). A jail uses one with
        C(filter=<name>) or by having the same name.
    type: dict
    default: {}
  firewall_backend:
    description: The firewall fail2ban bans through (the one the firewall role manages).
    type: str
    choices: [nftables, iptables, ufw]
    default: nftables
  admin_networks:
    description: Networks and addresses never banned (added to every jail's C(ignoreip)).
    type: list
    elements: str
    default: []
  ignoreip:
    description: Further addresses never banned, added after O(admin_networks).
    type: list
    elements: str
    default: []
  secrets:
    description:
      - Credentials the actions need (a cloud firewall's API token, a mail password), as a dictionary of
        jail names to dictionaries of names and values. Each is written as an option of that jail's
        section, for the jail's actions to use as C(%(name)s), in the root-only jail file (mode 0640).
      - The values never appear in the module's output, its diff (C(name = <redacted>)), or the host's
        log of the module call; an error names C(secrets.<jail>.<name>), never the value. Put them here,
        not in O(jails), whose action parameters are redacted in diffs but shown in the task's arguments
        at high verbosity.
      - A name must not shadow a jail option or a name C(jail.conf) interpolates (C(name), C(mta),
        C(action_*), ...). A literal C(%) in a value is written C(%%), as fail2ban reads it.
    type: dict
    default: {}
  auth_log:
    description: The file sshd logs to through syslog; when it does not exist, sshd jails read the journal.
    type: path
    default: /var/log/auth.log
  config_dir:
    description: fail2ban's configuration directory.
    type: path
    default: /etc/fail2ban
  docker:
    description:
      - Whether bans also cover Docker's published ports. Published ports are forwarded to containers
        and never reach the input hook the ban actions filter, so each jail gets a second action that
        bans the source from forwarded traffic (C(nftables-allports) on the forward hook, or
        C(iptables-allports) in C(DOCKER-USER)).
      - C(auto) does so when Docker's socket exists. Not available with the ufw backend. A jail with its own
        C(action) is left as given.
    type: str
    choices: [auto, always, never]
    default: auto
  service_enabled:
    description: Whether C(fail2ban.service) starts at boot (it is enabled when it is not).
    type: bool
    default: true
  verify_timeout:
    description: Seconds to wait for the server to run every declared jail after a (re)load.
    type: int
    default: 30
requirements:
  - On the host, fail2ban (C(fail2ban-client)), systemd (C(systemctl), C(journalctl)), and C(python3-systemd)
    for jails with the journal backend.
attributes:
  check_mode:
    support: full
    description: Reports the jail and filter files that would be written or removed and the jails that would
      restart; changes nothing. On a host where fail2ban is not installed yet, the files are predicted as new.
  diff_mode:
    support: full
    description: One diff per changed file; the values of action parameters are redacted.
  platform:
    support: full
    platforms: posix
    description: Debian 12 and 13 with systemd.
notes:
  - Supports check mode and diff mode (one diff per changed file). Diffs show the parameter names of
    C(action), C(banaction) and C(banaction_allports) but not their values (they can carry API keys).
"""

EXAMPLES = r"""
- name: Ban SSH brute force and repeat offenders through nftables
  bulwark.hardening.fail2ban_jail:
    firewall_backend: nftables
    admin_networks: [192.0.2.0/24]
    jails:
      sshd:
        port: 22
        maxretry: 5
        findtime: 10m
        bantime: 1h
      recidive:
        bantime: 1w
        findtime: 1d
        bantime.maxtime: 5w

- name: A custom filter and its jail
  bulwark.hardening.fail2ban_jail:
    jails:
      sshd: {}
      myapp:
        logpath: /var/log/myapp/auth.log
        port: [http, https]
    filters:
      myapp:
        failregex:
          - '^login failed for .* from <HOST>$'
"""

RETURN = r"""
jails:
  description: The declared enabled jails, all running when the module returns (outside check mode).
  returned: always
  type: list
  elements: str
  sample: [recidive, sshd]
running_jails:
  description: The jails C(fail2ban-client status) lists at the end (before, in check mode).
  returned: always
  type: list
  elements: str
written:
  description: Files (under O(config_dir)) written or to be written.
  returned: always
  type: list
  elements: str
  sample: [jail.d/bulwark-sshd.local]
removed:
  description: Owned files removed or to be removed.
  returned: always
  type: list
  elements: str
commands:
  description: fail2ban/systemd commands run (or that would run) to apply the change.
  returned: always
  type: list
  elements: list
  sample: [[fail2ban-client, reload, sshd]]
backends:
  description: The backend each enabled jail uses (C(default) when left to fail2ban's configuration).
  returned: always
  type: dict
  sample: {sshd: systemd, recidive: default}
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.bulwark.hardening.plugins.module_utils.fail2ban.jail import (
    FILE_MODE,
    JAIL_PREFIX,
    JAIL_SUFFIX,
    HostFacts,
    JailError,
    build,
    desired_files,
    filter_names,
    is_owned,
    secret_names,
)
from ansible_collections.bulwark.hardening.plugins.module_utils.fail2ban.spec import ARGUMENT_SPEC
from ansible_collections.bulwark.hardening.plugins.module_utils.fail2ban.state import (
    missing_jails,
    parse_actions,
    parse_status,
    plan,
    reload_commands,
)
from ansible_collections.bulwark.hardening.plugins.module_utils.host import files, waits
from ansible_collections.bulwark.hardening.plugins.module_utils.host.commands import Runner
from ansible_collections.bulwark.hardening.plugins.module_utils.host.sandbox import Sandbox

DOCKER_SOCKETS = ("/run/docker.sock", "/var/run/docker.sock")


def read_config(config_dir):
    """Filters available, owned files {relpath: content} and their modes, every relpath that exists."""
    filters = set()
    owned = {}
    modes = {}
    existing = set()

    def own(relpath):
        path = os.path.join(config_dir, relpath)
        content = files.read(path) if files.is_file(path) else None
        if content is not None and is_owned(content):
            owned[relpath] = content
            modes[relpath] = files.mode_of(path)

    for entry in files.names(os.path.join(config_dir, "filter.d")):
        base, ext = os.path.splitext(entry)
        if ext not in (".conf", ".local"):
            continue
        filters.add(base)
        existing.add(f"filter.d/{entry}")
        if ext == ".conf":
            own(f"filter.d/{entry}")
    for entry in files.names(os.path.join(config_dir, "jail.d")):
        relpath = f"jail.d/{entry}"
        existing.add(relpath)
        if relpath.startswith(JAIL_PREFIX) and relpath.endswith(JAIL_SUFFIX):
            own(relpath)
    return filters, owned, modes, existing


def server_jails(runner, client):
    """Jails the running server reports, or None when it does not answer."""
    if not client:
        return None
    rc, out, _err = runner.run([client, "status"])
    if rc != 0:
        return None
    try:
        return parse_status(out)
    except ValueError:
        return None


def apply_files(config_dir, write, remove):
    for relpath, content in sorted(write.items()):
        path = os.path.join(config_dir, relpath)
        files.write(path, content, mode=FILE_MODE, uid=0, gid=0, anchor=config_dir, make_dirs=0o755)
    for relpath in remove:
        files.remove(os.path.join(config_dir, relpath))


def test_config(module, runner, client, config_dir, the_plan):
    """Run fail2ban's own test mode on a sandbox copy of the configuration with the new files."""
    try:
        with Sandbox("bulwark-fail2ban-") as box:
            copy = box.copy_tree(config_dir, "fail2ban")
            apply_files(copy, the_plan.write, the_plan.remove)
            rc, out, err = runner.run([client, "--logtarget", "STDERR", "-c", copy, "-t"])
    except files.HostError as exc:
        module.fail_json(msg=f"{exc}. Nothing was changed")
    if rc != 0:
        lines = [line for line in (err + out).splitlines() if "ERROR" in line] or (err + out).splitlines()
        module.fail_json(
            msg="fail2ban's configuration test (fail2ban-client -t) rejects the new jails; "
            "nothing was changed: " + " | ".join(line.split("ERROR", 1)[-1].strip() for line in lines[-6:]),
            stdout=out,
            stderr=err,
        )


def check_journal_support(module, runner, client, jails):
    """Jails on the systemd backend need python3-systemd in fail2ban's interpreter."""
    if not any(jail.enabled and jail.options.get("backend", "").startswith("systemd") for jail in jails):
        return
    interpreter = "/usr/bin/python3"
    first = (files.read(client) or "").splitlines()[:1]
    if first and first[0].startswith("#!"):
        interpreter = first[0][2:].strip().split()[0]
    rc, _out, _err = runner.run([interpreter, "-c", "import systemd.journal"])
    if rc != 0:
        module.fail_json(
            msg="jails on the systemd backend need the python3-systemd package (only a Recommends of "
            "fail2ban); install it first. Nothing was changed."
        )


def start_commands(runner):
    systemctl = runner.which("systemctl")
    if systemctl:
        return [[systemctl, "reset-failed", "fail2ban.service"], [systemctl, "restart", "fail2ban.service"]]
    return [["service", "fail2ban", "restart"]]


def jail_actions(runner, client, name):
    rc, out, _err = runner.run([client, "get", name, "actions"])
    return parse_actions(out) if rc == 0 else []


def enable_commands(runner, wanted):
    """systemctl argv to enable the service at boot, when it is not (empty without systemd)."""
    systemctl = runner.which("systemctl")
    if not wanted or not systemctl:
        return []
    rc, out, _err = runner.run([systemctl, "is-enabled", "fail2ban.service"])
    if rc == 0 and out.strip() == "enabled":
        return []
    return [[systemctl, "enable", "--quiet", "fail2ban.service"]]


def wait_for_jails(runner, client, wanted, timeout):
    """The jails the server runs once every wanted one runs, or what it runs when the time is up."""
    return waits.poll(
        lambda: server_jails(runner, client),
        lambda running: running is not None and not missing_jails(wanted, running),
        timeout,
    )


def fail2ban_log_tail(runner):
    journalctl = runner.which("journalctl")
    lines = []
    if journalctl:
        argv = [journalctl, "-u", "fail2ban.service", "-n", "15", "--no-pager", "-q"]
        _rc, out, _err = runner.run(argv)
        lines += out.splitlines()
    log = files.read("/var/log/fail2ban.log")
    if log:
        lines += [line for line in log.splitlines()[-200:] if "ERROR" in line][-8:]
    return lines


def host_facts(params, installed):
    """(filters, owned, modes, existing) of the configuration and the HostFacts the jails are built for."""
    config = read_config(params["config_dir"]) if installed else (set(), {}, {}, set())
    docker = params["docker"] == "always" or (
        params["docker"] == "auto" and any(files.exists(path) for path in DOCKER_SOCKETS)
    )
    journal_only = not files.exists(params["auth_log"])
    # A bare host in check mode: the stock filters will come with the package, so none is reported missing.
    filters = config[0] if installed else filter_names(params["jails"])
    return config, HostFacts(filters=filters, journal_only=journal_only, docker=docker)


def planned(module, params, installed):
    """(jails, the plan of files): the declared jails built for this host; fails naming a bad option."""
    (_filters, owned, modes, existing), host = host_facts(params, installed)
    try:
        jails, custom = build(
            params["jails"],
            params["filters"],
            host,
            firewall_backend=params["firewall_backend"],
            admin_networks=params["admin_networks"],
            ignoreip=params["ignoreip"],
            secrets=params["secrets"],
        )
        desired = desired_files(jails, custom)
        foreign = {path for path in desired if path in existing and path not in owned}
        # A filter.d/<name>.local of someone else's would be read over the custom filter.
        foreign |= {f"filter.d/{name}.local" for name in custom if f"filter.d/{name}.local" in existing}
        return jails, plan(desired, owned, foreign, modes, secrets=secret_names(jails))
    except JailError as error:
        module.fail_json(msg=f"{error}. Nothing was changed")


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


def commands_for(runner, client, params, the_plan, *, by_filter, running, wanted):
    """The commands that make the server run the new files (start, or reload what changed), after the
    one that enables it at boot."""
    if running is None:
        commands = start_commands(runner)
    else:
        commands = reload_commands(the_plan, by_filter, running, wanted)
    commands = [
        [client, *command[1:]] if command[0] == "fail2ban-client" else command for command in commands
    ]
    return enable_commands(runner, params["service_enabled"]) + commands


def apply(runner, params, the_plan, commands):
    """Write the files and run the commands: what failed, or None."""
    try:
        apply_files(params["config_dir"], the_plan.write, the_plan.remove)
    except files.HostError as exc:
        return str(exc)
    for command in commands:
        rc, out, err = runner.run(command)
        if rc != 0:
            return f"{' '.join(command)} failed (rc={rc}): {(err or out).strip()}"
    return None


def restore_and_fail(module, runner, client, params, the_plan, *, failure, running, result):
    """The server did not come up with every declared jail: put the previous files back and say why."""
    wanted = result["jails"]
    if the_plan.changed:
        restore_write = {path: content for path, content in the_plan.before.items() if content}
        restore_remove = [path for path in the_plan.write if not the_plan.before.get(path)]
        apply_files(params["config_dir"], restore_write, restore_remove)
        for command in start_commands(runner) if running is None else [[client, "reload"]]:
            runner.run(command)
    if failure is None:
        if running is None:
            failure = "the fail2ban server is not running after the change"
        else:
            missing = missing_jails(wanted, running)
            failure = f"the fail2ban server runs {running} but not the declared jails {missing}"
    module.fail_json(
        msg=failure
        + (" The previous jail files were restored." if the_plan.changed else "")
        + " fail2ban says: "
        + " | ".join(fail2ban_log_tail(runner)[-8:]),
        **{key: value for key, value in result.items() if key != "changed"},
    )


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    runner = Runner(module)
    client = runner.which("fail2ban-client")
    installed = bool(client) and files.is_dir(params["config_dir"])
    if not installed and not module.check_mode:
        missing = f"no fail2ban-client or no {params['config_dir']}"
        module.fail_json(msg=f"fail2ban is not installed ({missing}); install it first")
    jails, the_plan = planned(module, params, installed)
    result, by_filter = report(jails, the_plan, module._diff)
    wanted = result["jails"]
    if not installed:
        result["changed"] = True
        result["commands"] = enable_commands(runner, params["service_enabled"]) + start_commands(runner)
        module.exit_json(**result)

    running = server_jails(runner, client)
    if the_plan.changed:
        check_journal_support(module, runner, client, jails)
        test_config(module, runner, client, params["config_dir"], the_plan)
    commands = commands_for(
        runner, client, params, the_plan, by_filter=by_filter, running=running, wanted=wanted
    )
    result["commands"] = commands
    result["changed"] = bool(the_plan.changed or commands)
    if module.check_mode:
        result["running_jails"] = running or []
        module.exit_json(**result)

    failure = apply(runner, params, the_plan, commands)
    running = wait_for_jails(runner, client, wanted, params["verify_timeout"]) if failure is None else None
    if failure is None and running is not None and not missing_jails(wanted, running):
        # A jail without a ban action would log bans and block nothing.
        idle = [name for name in wanted if commands and not jail_actions(runner, client, name)]
        if not idle:
            result["running_jails"] = running
            module.exit_json(**result)
        failure = f"these jails run without any ban action: {idle}"
    restore_and_fail(
        module, runner, client, params, the_plan, failure=failure, running=running, result=result
    )


if __name__ == "__main__":
    main()
