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

from ansible_collections.bulwark.hardening.plugins.module_utils.fail2ban import apply as f2b
from ansible_collections.bulwark.hardening.plugins.module_utils.fail2ban.jail import (
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
    parse_actions,
    parse_status,
    plan,
)
from ansible_collections.bulwark.hardening.plugins.module_utils.host import docker, files, waits
from ansible_collections.bulwark.hardening.plugins.module_utils.host.commands import Runner
from ansible_collections.bulwark.hardening.plugins.module_utils.host.executor import (
    Executor,
    PlanFailed,
    Refused,
    fail,
)
from ansible_collections.bulwark.hardening.plugins.module_utils.host.sandbox import Sandbox


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


def check_before(runner, client, jails, config_dir, the_plan):
    """fail2ban's own test mode on a sandbox copy of the configuration with the new files, after the
    journal reader that jails on the systemd backend need: a Refused when either fails."""
    if f2b.needs_journal(jails):
        interpreter = f2b.interpreter_of(files.read(client))
        if runner.run([interpreter, "-c", "import systemd.journal"])[0] != 0:
            raise Refused(f2b.JOURNAL_REFUSAL)
    try:
        with Sandbox("bulwark-fail2ban-") as box:
            copy = box.copy_tree(config_dir, "fail2ban")
            Executor(runner).run(f2b.host_plan(copy, the_plan, []))
            tested = runner.run([client, "--logtarget", "STDERR", "-c", copy, "-t"])
    except files.HostError as exc:
        raise Refused(str(exc)) from None
    refusal = f2b.config_test_refusal(*tested)
    if refusal:
        raise refusal


def systemd_state(runner, wanted):
    """(systemctl or None, whether fail2ban.service is enabled at boot, asked only when it is wanted)."""
    systemctl = runner.which("systemctl")
    if not systemctl or not wanted:
        return systemctl, False
    rc, out, _err = runner.run([systemctl, "is-enabled", "fail2ban.service"])
    return systemctl, rc == 0 and out.strip() == "enabled"


def idle_jails(runner, client, wanted):
    """The running jails without any ban action."""
    idle = []
    for name in wanted:
        rc, out, _err = runner.run([client, "get", name, "actions"])
        if not (parse_actions(out) if rc == 0 else []):
            idle.append(name)
    return idle


def fail2ban_log_tail(runner):
    journalctl = runner.which("journalctl")
    lines = []
    if journalctl:
        argv = [journalctl, "-u", "fail2ban.service", "-n", "15", "--no-pager", "-q"]
        lines += runner.run(argv)[1].splitlines()
    return lines + f2b.log_errors(files.read("/var/log/fail2ban.log"))


def planned(params, installed):
    """(jails, the plan of files): the declared jails built for this host; a Refused naming a bad option."""
    filters, owned, modes, existing = (
        read_config(params["config_dir"]) if installed else (set(), {}, {}, set())
    )
    # A bare host in check mode: the stock filters will come with the package, so none is reported missing.
    host = HostFacts(
        filters=filters if installed else filter_names(params["jails"]),
        journal_only=not files.exists(params["auth_log"]),
        docker=docker.wanted(params["docker"]),
    )
    try:
        jails, custom = build(
            params["jails"], params["filters"], host, firewall_backend=params["firewall_backend"],
            admin_networks=params["admin_networks"], ignoreip=params["ignoreip"], secrets=params["secrets"],
        )  # fmt: skip
        desired = desired_files(jails, custom)
        foreign = f2b.foreign_files(desired, existing, owned, custom)
        return jails, plan(desired, owned, foreign, modes, secrets=secret_names(jails))
    except JailError as error:
        raise Refused(str(error)) from None


def verify(runner, client, params, result):
    """The jails the server runs once every declared one does, and why it does not (None when it does)."""
    wanted = result["jails"]
    running = waits.poll(
        lambda: server_jails(runner, client),
        lambda found: found is not None and not f2b.missing_jails(wanted, found),
        params["verify_timeout"],
    )
    complete = running is not None and not f2b.missing_jails(wanted, running)
    idle = idle_jails(runner, client, wanted) if complete and result["commands"] else []
    return running, f2b.verdict(wanted, running, idle)


def restore(runner, client, params, the_plan, result, *, failure, running=None, undone=None):
    """Put the previous files back (unless the executor already did: `undone`, its PlanFailed), restart
    (or reload) fail2ban on them and fail saying why."""
    applied = result["written"] + result["removed"] + [" ".join(argv) for argv in result["commands"]]
    restored = []
    if undone is not None:
        applied, restored = undone.applied, undone.restored
    elif the_plan.changed:
        restored = Executor(runner).run(f2b.restore_plan(params["config_dir"], the_plan, []))
    if the_plan.changed:
        for argv in (
            [[client, "reload"]] if running is not None else f2b.start_commands(runner.which("systemctl"))
        ):
            runner.run(argv)
    exc = PlanFailed(
        f2b.failure_text(failure, bool(restored), fail2ban_log_tail(runner)),
        applied=applied,
        restored=restored,
    )
    exc.result = {key: value for key, value in result.items() if key != "changed"}
    raise exc


def run(module, params, runner):
    client = runner.which("fail2ban-client")
    installed = bool(client) and files.is_dir(params["config_dir"])
    if not installed and not module.check_mode:
        missing = f"no fail2ban-client or no {params['config_dir']}"
        raise Refused(f"fail2ban is not installed ({missing}); install it first")
    jails, the_plan = planned(params, installed)
    result, by_filter = f2b.report(jails, the_plan, module._diff)
    systemctl, enabled = systemd_state(runner, params["service_enabled"])
    enable = f2b.enable_commands(systemctl, params["service_enabled"], enabled)
    if not installed:
        result.update(changed=True, commands=enable + f2b.start_commands(systemctl))
        return result
    running = server_jails(runner, client)
    if the_plan.changed:
        check_before(runner, client, jails, params["config_dir"], the_plan)
    result["commands"] = f2b.commands_for(
        client, the_plan, by_filter=by_filter, running=running, wanted=result["jails"],
        start=f2b.start_commands(systemctl), enable=enable,
    )  # fmt: skip
    result["changed"] = bool(the_plan.changed or result["commands"])
    if module.check_mode:
        result["running_jails"] = running or []
        return result
    try:
        Executor(runner).run(f2b.host_plan(params["config_dir"], the_plan, result["commands"]))
    except PlanFailed as exc:
        restore(runner, client, params, the_plan, result, failure=str(exc), undone=exc)
    running, failure = verify(runner, client, params, result)
    if failure:
        restore(runner, client, params, the_plan, result, failure=failure, running=running)
    result["running_jails"] = running
    return result


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        module.exit_json(**run(module, module.params, Runner(module)))
    except (Refused, PlanFailed) as exc:
        fail(module, exc, **getattr(exc, "result", {}))


if __name__ == "__main__":
    main()
