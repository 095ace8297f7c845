#!/usr/bin/python
# Copyright: (c) 2026, bulwark.hardening maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module bulwark.hardening.security_audit: the host's controls judged as they are, read-only."""
# ruff: noqa: E402  (Ansible modules put DOCUMENTATION/EXAMPLES/RETURN before the imports)

DOCUMENTATION = r"""
---
module: security_audit
short_description: Scored, read-only security audit of a host as it is
description:
  - Reads the host's live state in one module call and returns findings, each with an id, a category
    (V(authentication), V(network), V(data protection), V(infrastructure)), a severity, a status
    (V(pass), V(fail), or V(skip) when the control does not apply), the evidence read, and the
    remediation (the variable or playbook of this collection that fixes it).
  - "What it reads: the effective sshd configuration, globally (C(sshd -T)) and for concrete connections
    (C(sshd -T -C user=...,host=...,addr=...,laddr=...,lport=...)): root's and each admin's, anyone's from
    an address outside O(admin_networks), and one that each C(Match) block of C(/etc/ssh/sshd_config) and
    the files it includes selects; the nftables ruleset and its base chains' policies
    (C(nft -j list ruleset)); the listening TCP and UDP sockets (C(ss -Htulnp)), each judged on its
    address and port against the ruleset for a new connection from an outside address, whatever its
    process is called (only a port Docker publishes is judged by the Docker finding instead);
    fail2ban's running jails and
    their counters; sysctl values; modes and owners of password hashes, private SSH keys, sudoers,
    sshd's and cron's files and home directories; pending security updates (C(apt-get -s upgrade),
    from the host's package lists, without reaching the network) and unattended-upgrades; the admins
    (uid 0 accounts, members of C(sudo) and of sshd's C(AllowGroups)) and their keys; the audit daemon;
    Docker's daemon settings and published ports; WireGuard peers' last handshakes; the secret store's
    expiry dates and file modes (never a value)."
  - It judges the host as it is, not as this collection's variables say it should be, so a host
    hardened by hand or by another tool gets an honest score. A control that cannot be evaluated fails
    and says what could not be read.
  - An sshd control fails when the global settings or any connection asked about is weak; the evidence
    names the weak setting, the connection (for example C(address 203.0.113.7), anyone from outside) and
    the C(Match) block that makes it so, with its file and line. A block no connection can be built for
    (a group nobody is in, a criterion the audit does not know) is judged on its own settings.
  - It never changes anything on the host, in any mode.
version_added: "0.1.0"
author: bulwark.hardening maintainers (@bulwark-hardening)
options:
  categories:
    description: Only the findings of these categories.
    type: list
    elements: str
    choices: [authentication, network, data protection, infrastructure]
    default: [authentication, network, data protection, infrastructure]
  admin_networks:
    description:
      - The networks admins connect from (addresses or CIDRs; C(playbooks/audit.yml) passes
        C(bulwark_admin_networks)). An admin's connection is asked about from the first of them; the
        outside connection from the first of 203.0.113.7, 198.51.100.7 and 192.0.2.7 (RFC 5737
        documentation addresses) that is in none of them.
    type: list
    elements: str
    default: []
requirements:
  - On the host, systemd (C(systemctl)), C(ss) (iproute2) and APT; C(sshd), C(nft), C(fail2ban-client),
    C(docker) and C(wg) are read when installed (a missing tool is evidence, not an error).
notes:
  - The firewall is judged through nftables (C(nft -j list ruleset)), which also shows iptables-nft and
    UFW rules; rules of the legacy iptables backend are not read. A UDP listener off loopback is
    judged like a TCP one, by a new datagram from an outside address (the overlay's WireGuard port and
    a DHCP client pass when the ruleset admits them only from their peers or servers).
  - The secret store is judged in its default directory C(/etc/bulwark/secrets)
    (M(bulwark.hardening.secret_store), files backend) from its metadata only; a store elsewhere or in
    OpenBao is not read.
seealso:
  - module: bulwark.hardening.sshd_config
  - module: bulwark.hardening.firewall
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode runs it the same way.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
  platform:
    support: full
    platforms: posix
    description: Debian 12 and 13 with systemd.
"""

EXAMPLES = r"""
- name: Audit the host
  bulwark.hardening.security_audit:
  register: audit

- name: Only the network findings
  bulwark.hardening.security_audit:
    categories: [network]

- name: Audit, asking sshd about admins connecting from their networks
  bulwark.hardening.security_audit:
    admin_networks: "{{ bulwark_admin_networks }}"
"""

RETURN = r"""
findings:
  description: Every finding of the selected categories.
  returned: always
  type: list
  elements: dict
  sample:
    - id: ssh_password_login
      category: authentication
      severity: critical
      title: SSH refuses passwords
      status: fail
      passed: false
      evidence: passwordauthentication yes, kbdinteractiveauthentication no, permitemptypasswords no
      remediation: "sshd_password_authentication: false, sshd_kbd_interactive_authentication: false"
report:
  description: The host's report, its overall score (0-100) at the top level and each category's own.
  returned: always
  type: dict
  sample: {score: 96, categories: {network: {score: 100, passed: 5, failed: 0}}, failed: [ssh_max_auth_tries]}
score:
  description: The host's overall score, 0-100.
  returned: always
  type: int
lines:
  description: The report as a production check prints it, by category, what failed with its fix.
  returned: always
  type: list
  elements: str
"""

import json
import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.bulwark.hardening.plugins.module_utils.audit import (
    checks,
    parse,
    report,
    sources,
    sshd_contexts,
)
from ansible_collections.bulwark.hardening.plugins.module_utils.fail2ban import state as fail2ban_state
from ansible_collections.bulwark.hardening.plugins.module_utils.firewall.model import (
    PolicyError,
    parse_network,
)
from ansible_collections.bulwark.hardening.plugins.module_utils.host import accounts, docker, files
from ansible_collections.bulwark.hardening.plugins.module_utils.host.commands import Runner
from ansible_collections.bulwark.hardening.plugins.module_utils.host.executor import Refused, fail
from ansible_collections.bulwark.hardening.plugins.module_utils.sshd import effective


def _run(runner, argv):
    """(stdout, error): the error names what failed; a missing tool is (None, None)."""
    tool = runner.which(argv[0])
    if tool is None:
        return None, None
    rc, out, err = runner.run([tool, *argv[1:]])
    if rc != 0:
        return None, (err or out).strip() or f"rc={rc}"
    return out, None


def _admins(sshd_text):
    """uid 0 accounts, members of sudo and of sshd's AllowGroups, with their keys' files as they are."""
    names = set()
    for group in sources.admin_groups(sshd_text):
        entry = accounts.group(group)
        if entry is None:
            continue
        names.update(entry.members)
        names.update(p.name for p in accounts.users() if p.gid == entry.gid)
    names.update(p.name for p in accounts.users() if p.uid == 0)
    admins = []
    for name in sorted(names):
        entry = accounts.user(name)
        if entry is None:
            continue
        ssh_dir = os.path.join(entry.home, ".ssh")
        keys = os.path.join(ssh_dir, "authorized_keys")
        # The account owns its ~/.ssh: read as the host layer writes there, never through a link it
        # swaps in, never a FIFO or a huge file. What cannot be read so is reported, not evaluated.
        try:
            keys_text, keys_error = files.read(keys, anchor=entry.home, owner=entry.uid), None
        except files.HostError as exc:
            keys_text, keys_error = None, str(exc)
        admins.append({
            "name": name,
            "uid": entry.uid,
            "authorized_keys": keys_text,
            "keys_error": keys_error,
            "keys_status": files.status(keys),
            "ssh_dir_status": files.status(ssh_dir),
        })  # fmt: skip
    return admins


def _sshd_files():
    """[(path, text)] of sshd_config and every file its Include lines reach, as sshd finds them."""
    found, seen = [], set()

    def visit(path, depth):
        if path in seen or depth > sources.MAX_INCLUDE_DEPTH:
            return
        seen.add(path)
        text = files.read(path)
        if text is None:
            return
        found.append((path, text))
        for pattern in effective.includes(text):
            for included in files.matching(os.path.join(sources.SSHD_DIR, pattern)):  # an absolute one stays
                visit(included, depth + 1)

    visit(sources.SSHD_CONFIG, 0)
    return found


def _sshd_global(runner, sshd_files, admin_networks):
    """(`sshd -T`, error). OpenSSH 9 refuses -T without -C when a Match LocalPort block needs the local
    port: then the settings of anyone's connection from outside stand for the global ones."""
    text, error = _run(runner, ["sshd", "-T"])
    if text is None and "connection test specification" in (error or ""):
        spec = sshd_contexts.probe_spec(admin_networks, sources.sshd_ports(sshd_files))
        text, error = _run(runner, ["sshd", "-T", "-C", sshd_contexts.spec_text(spec)])
    if text is None and error is None:
        error = "sshd is not installed"
    return text, error


def _sshd_connections(runner, facts, sshd_files, admin_networks):
    """sshd -T -C for root, each admin, anyone from outside, and a connection each Match block selects."""
    base = effective.parse(facts["sshd"])
    blocks = [block for path, text in sshd_files for block in effective.match_blocks(text, path)]
    contexts, unjudged = sshd_contexts.plan(
        blocks,
        admins=[admin["name"] for admin in facts["admins"]],
        accounts=sources.groups_of_accounts(accounts.users(), accounts.groups()),
        admin_networks=admin_networks,
        ports=[p for p in base.lines("port") if p.isdigit()],
        listen=sshd_contexts.listen_addresses(base),
    )
    asked = []
    for context in contexts:
        output, error = _run(runner, ["sshd", "-T", "-C", sshd_contexts.spec_text(context.spec)])
        asked.append({"context": context, "output": output, "error": error})
    facts["sshd_blocks"], facts["sshd_contexts"], facts["sshd_unjudged"] = blocks, asked, unjudged


def _secret_store():
    """The store's metadata and file modes (never a value), or None when there is no store."""
    found = files.status(sources.SECRET_STORE)
    if found is None or found[0] != "directory":
        return None
    store = {"path": sources.SECRET_STORE, "mode": found[1], "secrets": []}
    for name in files.names(sources.SECRET_STORE):
        directory = os.path.join(sources.SECRET_STORE, name)
        if files.status(directory)[0] != "directory":
            continue
        meta = sources.json_or(files.read(os.path.join(directory, "meta.json")) or "null", None)
        modes = {os.path.join(directory, leaf): files.mode_of(os.path.join(directory, leaf))
                 for leaf in files.names(directory)}  # fmt: skip
        store["secrets"].append({"name": name, "meta": meta, "modes": modes})
    return store


def _fail2ban(runner):
    """Whether fail2ban is installed and answers, its status and each jail's."""
    f2b = {"installed": runner.which("fail2ban-client") is not None, "jails": {}}
    f2b["status"] = _run(runner, ["fail2ban-client", "status"])[0] if f2b["installed"] else None
    f2b["active"] = f2b["status"] is not None
    if f2b["status"]:
        try:
            for jail in fail2ban_state.parse_status(f2b["status"]):
                f2b["jails"][jail] = _run(runner, ["fail2ban-client", "status", jail])[0] or ""
        except ValueError:
            pass  # the checks report the unreadable status
    return f2b


def _files_and_accounts(facts):
    paths = set(sources.SENSITIVE)
    for pattern in sources.SENSITIVE_GLOBS:
        paths.update(files.matching(pattern))
    statuses = {path: files.status(path) for path in sorted(paths)}
    facts["paths"] = {path: status for path, status in statuses.items() if status is not None}
    facts["group_names"] = {str(g.gid): g.name for g in accounts.groups()}
    shadow = files.read("/etc/shadow")
    facts["empty_passwords"] = None if shadow is None else parse.shadow_empty_passwords(shadow)
    facts["accounts"] = [{"name": p.name, "uid": p.uid} for p in accounts.users()]
    facts["admins"] = _admins(facts["sshd"])


def gather(module, admin_networks=()):
    """Everything the checks judge, read in this one call; only reads."""
    runner = Runner(module)
    facts = {}
    sshd_files = _sshd_files()
    facts["sshd"], facts["sshd_error"] = _sshd_global(runner, sshd_files, admin_networks)
    ruleset, facts["nft_error"] = _run(runner, ["nft", "-j", "list", "ruleset"])
    facts["nft"] = json.loads(ruleset) if ruleset else None
    facts["listeners"] = _run(runner, ["ss", "-Htulnp"])[0] or ""
    facts["fail2ban"] = _fail2ban(runner)
    facts["sysctl"] = {
        key: sources.sysctl_value(files.read("/proc/sys/" + key.replace(".", "/")))
        for key in sources.SYSCTL_KEYS
    }
    _files_and_accounts(facts)
    if facts["sshd"] is not None:
        _sshd_connections(runner, facts, sshd_files, admin_networks)

    facts["apt_simulation"] = _run(runner, ["apt-get", "-s", "-o", "Debug::NoLocking=true", "upgrade"])[0]
    facts["apt_config"] = _run(runner, ["apt-config", "dump"])[0]
    facts["unattended_installed"] = runner.which("unattended-upgrade", dirs=("/usr/bin",)) is not None
    _rc, out, _err = runner.run(["systemctl", "is-active", *sources.UNITS])
    facts["units"] = dict(zip(sources.UNITS, out.split(), strict=False))

    found = docker.settings(runner)
    facts["docker"] = None if found is None else {"daemon": sources.json_or(found[0], {}), "ps": found[1]}
    facts["secrets"] = _secret_store()
    facts["wireguard"] = _run(runner, ["wg", "show", "all", "latest-handshakes"])[0]
    if facts["wireguard"] is not None and not facts["wireguard"].strip():
        facts["wireguard"] = None  # wg installed but no interface
    facts["overlay_names"] = sources.overlay_names(
        files.read(os.path.join(sources.OVERLAY_DIR, "peers.json"))
    )
    return facts


def main():
    module = AnsibleModule(argument_spec=sources.ARGUMENT_SPEC, supports_check_mode=True)
    try:
        admin_networks = [
            parse_network(value, f"admin_networks[{i}]")
            for i, value in enumerate(module.params["admin_networks"])
        ]
        facts = gather(module, admin_networks)
    except PolicyError as exc:
        fail(module, Refused(str(exc)))
    except (files.HostError, ValueError) as exc:
        fail(module, Refused(f"the audit could not read the host: {exc}"))
    now = int(time.time())
    findings = checks.evaluate(facts, now, module.params["categories"])
    # The host's inventory name is the controller's to add (playbooks/audit.yml).
    host_report = report.host_report(None, findings, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)))
    module.exit_json(
        changed=False,
        findings=findings,
        report=host_report,
        score=host_report["score"],
        lines=report.text(host_report),
    )


if __name__ == "__main__":
    main()
