#!/usr/bin/python
# Copyright: (c) 2026, bulwark.hardening maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module bulwark.hardening.baseline_packages: install, purge and upgrade in one apt transaction."""
# ruff: noqa: E402  (Ansible modules put DOCUMENTATION/EXAMPLES/RETURN before the imports)

DOCUMENTATION = r"""
---
module: baseline_packages
short_description: Packages installed, purged and upgraded in one apt transaction, cheap when nothing changes
description:
  - Reads the installed packages with one C(dpkg-query), then installs what O(present) lacks and purges what
    O(absent) names that is installed, in B(one) C(apt-get install) transaction. A call with nothing to
    install, purge or upgrade runs nothing else (no apt command at all).
  - Refreshes the package lists first when the call installs or upgrades and the last refresh is older than
    O(cache_valid_time). The last refresh is this module's own record (C(apt-refresh.stamp) in O(state_dir),
    written after each C(apt-get update) that fetched every index), or apt's, whichever is newer; not the
    lists' modification times, which apt leaves as they were when nothing new came. So a second call in the
    same run does not refresh again.
  - With O(upgrade=safe), applies the pending updates (C(apt-get upgrade --with-new-pkgs); new dependencies
    may come, nothing is removed). What an upgrade would do depends only on the package lists, the installed
    packages and apt's configuration; their fingerprint is kept in O(state_dir) after every check (after the
    upgrade, when it applied some; updates it could not apply, held ones for example, stay as they were), and
    while it is unchanged the check is not repeated (RV(upgrade_checked=false)).
    Updates that arrive later change the lists, so they are never skipped.
  - Needs no C(python3-apt), so check mode works on a bare host. Bad input fails naming the option and index,
    and nothing is applied.
  - Waits, up to O(lock_timeout) seconds, while another process holds apt's or dpkg's locks (the transaction
    of a killed earlier run that goes on, C(unattended-upgrades) at a cloud host's first boot), warning which
    process holds them; fails naming the lock and its holder when the time is up.
version_added: "0.1.0"
author: bulwark.hardening maintainers (@bulwark-hardening)
options:
  present:
    description: Packages that must be installed.
    type: list
    elements: str
    default: []
  absent:
    description: Packages that must not be installed (purged, with their configuration files).
    type: list
    elements: str
    default: []
  upgrade:
    description: V(safe) applies the pending updates; V(none) does not.
    type: str
    choices: [none, safe]
    default: none
  cache_valid_time:
    description: Refresh the package lists when the last refresh is older than this many seconds (V(0)
      refreshes at every call that installs or upgrades).
    type: int
    default: 3600
  install_recommends:
    description: Whether packages Recommended by the installed ones come too.
    type: bool
    default: false
  state_dir:
    description: Root-only directory for the record of the last refresh and the upgrade check's fingerprint.
    type: path
    default: /var/lib/bulwark
  lock_timeout:
    description:
      - Seconds the run waits, in all, for apt's and dpkg's locks (C(/var/lib/dpkg/lock-frontend),
        C(/var/lib/dpkg/lock), C(/var/cache/apt/archives/lock), and C(/var/lib/apt/lists/lock) for a refresh)
        held by another process. V(0) fails at once, naming the holder.
      - The default outlasts C(unattended-upgrades) installing the security updates at a cloud host's first
        boot, which often takes longer than the 60 s of M(ansible.builtin.apt).
      - Only a run that has something to do waits; check mode never does (it takes no lock).
    type: int
    default: 300
notes:
  - In check mode the package lists are not refreshed; missing packages are reported from C(dpkg-query) (exact
    on a bare host), and pending updates from C(apt-get --simulate) with the lists the host has (where it has
    none yet, RV(upgrade_checked=false) and the message says they cannot be known before the first refresh).
requirements:
  - C(apt-get) and C(dpkg-query) on the host (Debian, Ubuntu).
attributes:
  check_mode:
    support: full
    description: Reports what would be installed, purged and upgraded; changes nothing.
  diff_mode:
    support: full
    description: One line per package installed, purged or upgraded.
  platform:
    support: full
    platforms: debian
    description: Debian 12 and 13.
"""

EXAMPLES = r"""
- name: What the roles need, in one transaction
  bulwark.hardening.baseline_packages:
    present: [auditd, aide, sudo]
    absent: [telnet, rsh-client]
    upgrade: safe
    cache_valid_time: 3600
"""

RETURN = r"""
installed:
  description: Packages of O(present) that were (or would be) installed.
  returned: always
  type: list
  elements: str
purged:
  description: Packages of O(absent) that were (or would be) purged.
  returned: always
  type: list
  elements: str
upgraded:
  description: Updates applied (or pending, in check mode), as C(name old -> new).
  returned: always
  type: list
  elements: str
upgrade_checked:
  description: Whether apt was asked for pending updates this run (false while its inputs are unchanged
    since a check that found none).
  returned: always
  type: bool
cache_updated:
  description: Whether the package lists were refreshed.
  returned: always
  type: bool
apt_runs:
  description: The apt commands this call ran, in order (C(apt-get update), C(apt-get install),
    C(apt-get upgrade --simulate), C(apt-get upgrade)); empty when C(dpkg-query) was enough.
  returned: always
  type: list
  elements: str
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.bulwark.hardening.plugins.module_utils.baseline import packages
from ansible_collections.bulwark.hardening.plugins.module_utils.host import files
from ansible_collections.bulwark.hardening.plugins.module_utils.host.commands import Runner
from ansible_collections.bulwark.hardening.plugins.module_utils.host.executor import PlanFailed, Refused, fail
from ansible_collections.bulwark.hardening.plugins.module_utils.host.locks import LockTimeout, Waiter

LISTS = "/var/lib/apt/lists"
UPDATE_STAMP = "/var/lib/apt/periodic/update-success-stamp"
# What an upgrade's outcome depends on (apt's lock and download folders left out).
UPGRADE_INPUTS = [
    LISTS,
    "/var/lib/dpkg/status",
    "/etc/apt/sources.list",
    "/etc/apt/sources.list.d",
    "/etc/apt/preferences",
    "/etc/apt/preferences.d",
    "/etc/apt/apt.conf.d",
]


def lists_present():
    # Names, links included: apt links a local (file:) repository's uncompressed index instead of copying it.
    return any(name.endswith("_Packages") for name in files.names(LISTS))


def refreshed_at(state_dir):
    """When the lists were refreshed, as each witness says (None: it does not say): this module's stamp,
    apt's periodic stamp, the last change of the lists directory (a new list renamed into it)."""
    stamp = os.path.join(state_dir, packages.REFRESH_STAMP)
    return [files.modified(stamp), files.modified(UPDATE_STAMP), files.modified(LISTS)]


# Not a host plan: apt's transactions wait for the package manager's locks (host/locks.Waiter) and retry
# when another process takes one in between, and what an upgrade does is known only once apt simulated it.
# Each apt run stays behind apt() below; failures go through executor.fail all the same.
def main():
    module = AnsibleModule(
        argument_spec={
            "present": {"type": "list", "elements": "str", "default": []},
            "absent": {"type": "list", "elements": "str", "default": []},
            "upgrade": {"type": "str", "choices": list(packages.UPGRADES), "default": "none"},
            "cache_valid_time": {"type": "int", "default": packages.CACHE_VALID_TIME},
            "install_recommends": {"type": "bool", "default": False},
            "state_dir": {"type": "path", "default": "/var/lib/bulwark"},
            "lock_timeout": {"type": "int", "default": packages.LOCK_TIMEOUT},
        },
        supports_check_mode=True,
    )
    p, check = module.params, module.check_mode
    try:
        packages.validate(p["present"], p["absent"], p["upgrade"])
        packages.validate_times(p["cache_valid_time"], p["lock_timeout"])
    except packages.PackageSpecError as exc:
        fail(module, Refused(str(exc)))
    runner = Runner(module)
    waiter = Waiter(p["lock_timeout"], lambda *holder: module.warn(packages.waiting_for_lock(*holder)))
    result = {key: [] for key in ("installed", "purged", "upgraded", "apt_runs")}
    result.update(upgrade_checked=False, cache_updated=False)
    applied = []
    try:
        dpkg = runner.run(
            ["dpkg-query", "--show", "--showformat=${Package} ${db:Status-Status}\n"],
            check=True,
            what="dpkg-query",
            env=packages.APT_ENV,
        )[1]
        missing, remove = packages.plan(p["present"], p["absent"], packages.installed(dpkg))
        result["installed"], result["purged"] = missing, remove
        needed = bool(missing) or p["upgrade"] == "safe"
        due = packages.refresh_due(
            time.time(), refreshed_at(p["state_dir"]), p["cache_valid_time"], lists_present(), needed
        )
        if due and not check:
            refresh(module, runner, waiter, result)
            applied.append("the package lists were refreshed")
        if (missing or remove) and not check:
            argv = packages.transaction_argv(missing, remove, p["install_recommends"])
            apt(runner, waiter, argv, packages.DPKG_LOCKS, "apt-get install", runs=result["apt_runs"])
            applied.append("the packages were installed and purged")
        if p["upgrade"] == "safe":
            upgrade(module, runner, waiter, result, check)
    except LockTimeout as exc:
        done = {key: result[key] for key in ("installed", "purged", "upgraded", "cache_updated", "apt_runs")}
        message = packages.lock_timed_out(exc.path, exc.pid, exc.command, exc.waited, "; ".join(applied))
        fail(module, PlanFailed(message, applied), changed=bool(applied), **done)
    except files.HostError as exc:
        done = {key: result[key] for key in ("installed", "purged", "upgraded", "cache_updated", "apt_runs")}
        changed = not check and bool(result["installed"] or result["purged"])
        fail(module, PlanFailed(str(exc), applied), changed=changed, **done)
    text = packages.summary(result["installed"], result["purged"], result["upgraded"])
    module.exit_json(changed=bool(text), diff={"prepared": text}, **result)


def refresh(module, runner, waiter, result):
    """apt-get update, then this module's record of it (what later calls, of this run and the next ones,
    read: apt does not change the lists when nothing new came). An update that could not fetch every
    index is not recorded: the next call tries again."""
    argv = ["apt-get", "update", "--quiet"]
    _out, err = apt(
        runner, waiter, argv, packages.LISTS_LOCKS, "apt-get update", runs=result["apt_runs"], both=True
    )
    if not packages.refresh_complete(err):
        module.warn("apt-get update could not fetch every package index; the next package call tries again")
        return
    result["cache_updated"] = True
    state_dir = module.params["state_dir"]
    files.private_dir(state_dir)
    stamp = "the package lists were refreshed (apt-get update) by bulwark.hardening.baseline_packages\n"
    files.write(os.path.join(state_dir, packages.REFRESH_STAMP), stamp, 0o600)


def apt(runner, waiter, argv, locks, what, *, runs=None, both=False):
    """Run an apt-get command once the locks it takes are free; when another process took one in between
    (apt fails, saying so), wait again within the same budget. Returns its output (with both, and its
    errors); `runs` (a list) records it."""
    if runs is not None:
        runs.append(what)
    while True:
        waiter.wait(locks)
        try:
            _rc, out, err = runner.run(argv, check=True, what=what, env=packages.APT_ENV)
            return (out, err) if both else out
        except files.HostError as exc:
            if not packages.lock_failure(str(exc)):
                raise
            if not waiter.remaining():
                waiter.wait(locks)  # names the holder (LockTimeout) while it still holds the lock
                raise
            waiter.sleep(min(waiter.POLL, waiter.remaining()))


def upgrade(module, runner, waiter, result, check):
    """Apply the pending updates, unless nothing they depend on changed since a check found none."""
    stamp_path = os.path.join(module.params["state_dir"], packages.UPGRADE_STAMP)
    now = packages.fingerprint(files.listing(UPGRADE_INPUTS, skip={"lock"}))
    if files.read(stamp_path) == now:
        return
    if not lists_present():
        # Only in check mode on a bare host (a real run has just refreshed them).
        module.warn("pending updates cannot be known before the package lists are first refreshed")
        return
    result["upgrade_checked"] = True
    if not check:
        # The simulation takes no lock: let a transaction in progress finish first, so that what it
        # reports is what the upgrade will find.
        waiter.wait(packages.DPKG_LOCKS)
    result["apt_runs"].append("apt-get upgrade --simulate")
    out = runner.run(
        packages.upgrade_argv(True, module.params["install_recommends"]),
        check=True,
        what="apt-get upgrade --simulate",
        env=packages.APT_ENV,
    )[1]
    pending = packages.simulated(out)
    result["upgraded"] = pending["upgrade"] + [f"{name} (new dependency)" for name in pending["install"]]
    if check:
        return
    if result["upgraded"]:
        argv = packages.upgrade_argv(False, module.params["install_recommends"])
        apt(runner, waiter, argv, packages.DPKG_LOCKS, "apt-get upgrade", runs=result["apt_runs"])
        now = packages.fingerprint(files.listing(UPGRADE_INPUTS, skip={"lock"}))
    files.private_dir(module.params["state_dir"])
    files.write(stamp_path, now, 0o600)


if __name__ == "__main__":
    main()
