#!/usr/bin/python
# Copyright: bulwark.hardening contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# ruff: noqa: E402  (Ansible modules put DOCUMENTATION/EXAMPLES/RETURN before the imports)

DOCUMENTATION = r"""
---
module: firewall
short_description: Default-deny host firewall, applied atomically with a lockout guard and commit-confirm
description:
  - Takes the B(whole) desired policy in one call (default policies, rules, named address sets, SSH access)
    and makes the host's firewall exactly that.
  - "nftables backend: the module owns the table C(inet bulwark), rebuilt in ONE C(nft -f) transaction
    (the kernel never sees the default policy without its rules). Docker's tables and chains (also its
    embedded DNS rules in C(ip nat)) and fail2ban's C(f2b-*) tables and chains are left alone. Anything else
    that filters the input or forward hook (another table, or an accepting rule in an iptables-nft chain)
    is removed (I(purge=true)) or reported (I(purge=false))."
  - "Lockout guard: before anything is applied the candidate must admit the controller's current SSH
    connection (I(controller_address)/I(controller_port), or the C(SSH_CONNECTION) of the session the module
    runs in); otherwise the module fails naming what is missing, and changes nothing."
  - "Lockout guard, second half: the kernel runs every base chain on a hook, in every table, and a drop in
    any of them is final. So after the purge every base chain the controller's packet meets (ingress,
    prerouting and input, in every family that sees it, with its priority and policy) must accept it, or the
    change is refused naming the chain; a rule the guard cannot evaluate in front of a drop is refused too
    (unknown means refuse)."
  - "Commit-confirm (the collection's one protocol, M(bulwark.hardening.commit_confirm)): the rollback is
    armed on the host BEFORE anything is applied, with the steps that restore everything the apply replaces
    (the owned table, and the foreign tables, rules and policies the purge removes or changes, snapshotted
    first). The
    module returns RV(pending=true); the controller must confirm over a NEW connection
    (M(bulwark.hardening.commit_confirm) with C(concern=firewall)), otherwise the host restores the previous
    firewall by itself I(rollback_timeout) seconds after the apply. What loads the policy at boot (the files
    and enabling the boot unit) is persisted only when confirmed. If the rollback cannot be armed, nothing is
    applied. If an apply step fails, the host restores at once and the message says what was applied and what
    was restored. A run while an earlier change still waits for its confirmation reports C(changed=true) and
    RV(pending=true) again, so that it is confirmed, never silently undone. What an interrupted run or
    confirmation left is finished first (a confirmed change persisted, a rollback that was cut off run to its
    end, an arm that could undo nothing discarded and the live firewall snapshotted anew), or the run fails
    naming it; a rollback that would restore nothing is never armed."
  - "Check mode validates the candidate with C(nft -c) (nftables) or C(iptables-restore --test) (iptables)
    where the tools exist."
  - "Idempotent: the live owned table is read back in a canonical form (each rule carries an id in its
    comment) and is compared with the candidate; when they agree nothing runs."
  - "iptables backend: the same policy as C(iptables-restore --noflush) scripts for IPv4 and IPv6 (owned
    chains C(BULWARK-INPUT), C(BULWARK-FORWARD), C(BULWARK-OUTPUT) jumped to first from the built-in chains,
    whose policies are the default policies) and C(hash:net) ipsets C(bw-*) for the named sets (filled under
    a temporary name and swapped in). Works with the legacy and the nf_tables variant (reported as
    RV(variant)). Each family is one atomic restore; IPv4 and IPv6 are two. Persisted as
    C(/etc/bulwark/firewall.{ipset,v4,v6}) loaded by C(bulwark-firewall.service)."
  - "ufw backend (a documented subset, so that C(ufw status) tells the truth): default policies, services and
    rules by port, range, protocol (tcp, udp, any), one source and one destination CIDR, interface, direction
    in/out, allow/deny, comments; SSH from the admin networks; open SSH with UFW's own C(limit). It refuses by
    option name what UFW cannot do (I(sets), C(@set) sources, per-source C(rate_limit), routed rules, ICMP
    rules, a custom I(ssh_rate_limit), I(icmp_echo=false), Docker). Not atomic (one ufw command per rule)."
  - A host where another firewall manager is active (UFW enabled, firewalld running) is refused with a clear
    message instead of guessing.
  - "Flows of sources that leave a list: every backend admits established flows before any allowlist, so a
    source removed from a set (or from I(admin_networks), or from a rule's C(sources)) would keep its flow
    for as long as it keeps sending. Right after the apply, in the same run, the module deletes the conntrack
    entries of what it stops admitting, as narrowly as the list (source address or network, protocol,
    destination port; C(conntrack -D), Debian's C(conntrack) package), never the controller's connection,
    and reports them (RV(flows_to_delete), RV(flows_deleted)). A list open to every source is no allowlist
    and deletes nothing. A C(conntrack) failure is a warning (RV(flows_failed)); the firewall change stays
    applied. What the firewall admitted is recorded in I(state_dir)C(/firewall.admitted.json) for the
    next run, which compares it (and the live sets) with the new policy."
version_added: "0.1.0"
author: bulwark.hardening maintainers (@bulwark-hardening)
extends_documentation_fragment:
  - bulwark.hardening.commit_confirm
options:
  backend:
    description: Firewall backend.
    type: str
    choices: [nftables, iptables, ufw]
    default: nftables
  default_incoming:
    description: Policy for traffic to the host that no rule matches.
    type: str
    choices: [accept, drop]
    default: drop
  default_routed:
    description: Policy for routed (forwarded) traffic, including traffic to Docker's published ports.
    type: str
    choices: [accept, drop]
    default: drop
  default_outgoing:
    description: Policy for traffic from the host. With C(drop), add I(rules) with C(direction=out).
    type: str
    choices: [accept, drop]
    default: accept
  admin_networks:
    description:
      - CIDRs or addresses that always reach SSH, never rate-limited.
      - Must not be empty while I(ssh_restricted=true).
    type: list
    elements: str
    default: []
  sets:
    description:
      - Named address sets (name to a list of CIDRs/addresses, IPv4 and IPv6 mixed; any size,
        10,000 entries is normal). Overlapping entries are merged.
      - Rules refer to them as C(@name) in I(rules[].sources).
      - A name is lowercase letters, digits and C(_), at most 24, starting with a letter; C(admin), C(rlssh)
        and C(rl<n>) are reserved (the admin networks, the rate limits' meters).
    type: dict
    default: {}
  rules:
    description:
      - "Rules, evaluated in order after loopback, established flows, needed ICMP and SSH.
        Each rule is a mapping:
        C(port) (a port, a range C(8000-8100), a well-known name such as C(https), or a list of those),
        C(proto) (C(tcp), C(udp), C(icmp), C(icmpv6), C(any) or a list; default C(tcp), or the service's),
        C(sources) (CIDRs, addresses, C(@set) names), C(destinations) (CIDRs), C(interface),
        C(direction) (C(in) default, C(out), C(routed) for forwarded traffic such as Docker's published ports,
        matched on the port the client asked for), C(action) (C(accept) default or C(drop)), C(comment),
        C(rate_limit) (new connections per source, such as C(30/minute); at most 1000000/second) and C(burst)
        (default 5, or what the rate earns in a day if that is less; at most that: iptables' hashlimit
        overflows beyond)."
      - "C(interface): an interface name (at most 15 of C(A-Z a-z 0-9 _ . @ -)), or a prefix ending in C(*)
        that matches any suffix (C(eth*)), written C(\"eth*\") for nftables and C(eth+) for iptables and
        ufw, and matched so by the lockout guard. iptables' own C(+) is refused: nftables reads it as a
        plain character."
    type: list
    elements: dict
    default: []
  services:
    description:
      - Ports, ranges or well-known names (C(https), C(dns), ...) open to every source.
        Shorthand for I(rules) with only C(port); evaluated before I(rules).
    type: list
    elements: raw
    default: []
  ssh_port:
    description: The port sshd listens on (the role passes C(bulwark_ssh_port)).
    type: int
    default: 22
  ssh_restricted:
    description:
      - Admit SSH from I(admin_networks) only.
      - With C(false), SSH is open to every source, rate-limited per source by I(ssh_rate_limit).
    type: bool
    default: true
  ssh_rate_limit:
    description:
      - New SSH connections per source (outside the admin networks), e.g. C(10/minute). Empty disables.
    type: str
    default: 10/minute
  ssh_burst:
    description: Burst allowed above I(ssh_rate_limit) (at most what the rate earns in a day).
    type: int
    default: 5
  icmp_echo:
    description:
      - Answer pings (ICMP and ICMPv6 echo requests). The other needed ICMP types are always admitted.
    type: bool
    default: true
  docker:
    description:
      - Make Docker's published ports obey the routed default policy (open them with C(direction=routed)
        rules) while containers keep their own outbound traffic.
      - C(auto) enables it when Docker runs on the host.
    type: str
    choices: [auto, "true", "false"]
    default: auto
  docker_interfaces:
    description: Interfaces of Docker's bridges, names or prefixes ending in C(*) as in I(rules[].interface).
    type: list
    elements: str
    default: [docker0, br-*]
  purge:
    description:
      - Remove foreign objects that admit traffic (with C(false) they are only reported in RV(foreign)).
      - "nftables backend: a foreign table on the input or forward hook is deleted whole, and so is an
        iptables-nft table that only foreign rules fill (a typical iptables-persistent host). An iptables-nft
        table shared with Docker or fail2ban keeps their rules, loses the foreign rules that admit traffic,
        and the drop policy of its input chains becomes accept (our table filters)."
      - "The rollback puts back what the apply changed and removed, one object at a time, and leaves what
        other owners added during the confirm window (a rule Docker adds to its chains, a table podman
        creates): a purged table comes back unless it is there (an iptables-nft table its owner made anew
        gets its saved chains and rules beside the owner's), a purged rule comes back after the nearest of
        its former predecessors still there, a policy is set back; the owned table (nftables) or chains,
        jumps, policies and C(bw-*) sets (iptables) are set to the snapshot. iptables-nft's rules come back
        through C(iptables-nft-save)/C(iptables-nft-restore); a table shared with Docker or fail2ban that
        iptables-nft cannot write back is not purged rule by rule (refused, naming it)."
      - "nftables and iptables backends: what was purged must not come back at boot. An enabled
        C(netfilter-persistent.service) (iptables-persistent), which would load its saved rules again beside
        ours, is disabled when the change is confirmed (not stopped; its files are left as they are);
        RV(boot_disabled) names it."
    type: bool
    default: true
  guard:
    description:
      - The lockout guard. C(false) switches it off; meant for tests and emergencies only
        (commit-confirm still undoes a change the controller cannot confirm).
    type: bool
    default: true
  controller_address:
    description: The controller's address as the host sees it (the first field of C(SSH_CONNECTION)).
      Read from the session's C(SSH_CONNECTION) when omitted.
    type: str
  controller_port:
    description: The port the controller reaches sshd on (the fourth field of C(SSH_CONNECTION)).
    type: int
  controller_local_address:
    description: The host's address the controller reached sshd on (the third field of C(SSH_CONNECTION)).
      Read from the session's C(SSH_CONNECTION) when omitted.
    type: str
  rollback_timeout:
    description:
      - Seconds after the apply at which the host restores the previous firewall unless the change is
        confirmed (at least 5). Every change is applied with commit-confirm; no value applies
        without a rollback.
    type: int
    default: 60
  persist_path:
    description:
      - Where the confirmed policy is saved; C(/etc/nftables.conf) is made to include it.
      - A plain absolute path (letters, digits and C(. _ @ + -) in its names, no C(.) or C(..) component);
        anything else is refused before any change.
    type: path
    default: /etc/bulwark/firewall.nft
  state_dir:
    description:
      - Where the candidate scripts and the rollback snapshot are kept (root-only). The commit-confirm state
        itself is in C(/var/lib/bulwark/commit-confirm/firewall/).
      - A plain absolute path, as O(persist_path).
    type: path
    default: /var/lib/bulwark
requirements:
  - "On the host, for the backend in use: C(nft) (C(nftables)); or C(iptables), C(ip6tables), their
    C(-save) and C(-restore) commands and C(ipset); or C(ufw)."
  - systemd (C(systemd-run), C(systemctl)) for the commit-confirm timer and the unit that loads the firewall
    at boot.
attributes:
  action:
    support: full
    description: The action plugin confirms over a new connection with O(reconnect_and_confirm).
  check_mode:
    support: full
    description: Validates the candidate (C(nft -c), C(iptables-restore --test)) and reports what would
      change; applies nothing. Tools that are not installed yet are predicted as installed-and-changed.
  diff_mode:
    support: full
    description: Rule-level, in the canonical form of the owned table.
  platform:
    support: full
    platforms: posix
    description: Debian 12 and 13 with systemd.
notes:
  - Supports check mode and diff mode (rule-level, canonical form of the owned table).
  - C(/etc/nftables.conf) is replaced by an include of I(persist_path) without C(flush ruleset), so a reboot
    does not wipe Docker's or fail2ban's tables. The confirmation enables the boot unit (C(nftables.service),
    C(bulwark-firewall.service) or C(ufw.service)).
  - "ufw backend: UFW writes its own files as it applies, so a reboot before the confirmation loads the
    unconfirmed rules (the rollback timer does not survive a reboot)."
  - A rule edited by hand in C(inet bulwark) that keeps its C(bw:) comment id is not detected;
    added and removed rules are.
"""

EXAMPLES = r"""
- name: Apply the firewall policy (rollback armed before anything is applied)
  bulwark.hardening.firewall:
    admin_networks: [192.0.2.0/24]
    sets:
      office: [198.51.100.0/24, 2001:db8::/48]
    rules:
      - {port: https}
      - {port: 5432, sources: ["@office"], comment: postgres from the office}
      - {port: 8080, direction: routed, comment: a Docker published port}
    rollback_timeout: 60
  register: fw

- name: Reconnect so the confirmation proves a new connection gets through
  ansible.builtin.meta: reset_connection
  when: fw.pending

- name: Confirm the firewall change
  bulwark.hardening.commit_confirm:
    concern: firewall
  when: fw.pending
"""

RETURN = r"""
confirmed:
  description: With O(reconnect_and_confirm), that the change was confirmed over a new connection.
  returned: when a change was pending and O(reconnect_and_confirm=true)
  type: bool
pending:
  description:
    - A change is live with its rollback armed and waits for M(bulwark.hardening.commit_confirm)
      (C(concern=firewall)) over a new connection before I(rollback_timeout) runs out.
    - Also true when a run finds an earlier change still waiting (the timer is restarted, C(changed) is
      true).
  returned: always
  type: bool
rollback_timeout:
  description: Seconds the host waits for the confirmation.
  returned: when pending
  type: int
foreign:
  description: Foreign objects that admit traffic, or whose drop policy the purge takes over.
  returned: always
  type: list
  elements: str
  sample: ["table ip filter (iptables-nft: INPUT policy drop, FORWARD policy drop; not managed by bulwark)"]
purge:
  description: The nft commands the purge runs (nftables backend), in the same transaction as the new table.
  returned: with backend=nftables
  type: list
  elements: str
  sample: ["delete table ip filter"]
boot_disabled:
  description: Other units that load a firewall at boot, disabled on confirm because O(purge) took over.
  returned: with backend=nftables or iptables, when the tools are installed and O(purge=true)
  type: list
  elements: str
  sample: ["netfilter-persistent.service"]
flows_to_delete:
  description:
    - "The sources each list stops admitting (list in the operator's words, such as C(sets.overlay_peers),
      C(admin_networks) or C(rules[2].sources)), whose conntrack entries are deleted right after the apply
      (in check mode, would be)."
  returned: when a list loses sources
  type: dict
  sample: {"sets.overlay_peers": ["198.51.100.7 udp port 51820"]}
flows_deleted:
  description: Conntrack entries deleted, per list.
  returned: when a list lost sources and the change was applied
  type: dict
  sample: {"sets.overlay_peers": 1}
flows_failed:
  description: The conntrack deletions that failed, by list and filter (the firewall change stays applied).
  returned: when a deletion failed
  type: list
  elements: str
restored:
  description: What the host put back after a failed apply step (the restore steps, in order).
  returned: when an apply step failed
  type: list
  elements: str
guard:
  description: What admits the controller's SSH connection (or C(disabled)).
  returned: always
  type: str
  sample: admin_networks
docker:
  description: Whether Docker-aware forwarding rules were rendered.
  returned: always
  type: bool
policy:
  description: The normalised policy (set sizes instead of their contents).
  returned: always
  type: dict
tools_installed:
  description:
    - Whether the backend's tools (nft; iptables and ipset; ufw) are installed.
    - In check mode on a fresh host they are not yet, and the change is predicted.
  returned: always
  type: bool
variant:
  description: The iptables variant in use (iptables backend).
  returned: with backend=iptables when iptables is installed
  type: str
  sample: nf_tables
backend:
  description: The backend that manages the firewall.
  returned: always
  type: str
rules:
  description: Number of rule lines in the owned table.
  returned: always
  type: int
apply_seconds:
  description: How long the apply steps took.
  returned: when applied
  type: float
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.bulwark.hardening.plugins.module_utils.firewall import (
    backends,
    conntrack,
    guard,
    hooks,
    managers,
    model,
    nftables,
)
from ansible_collections.bulwark.hardening.plugins.module_utils.host import commit_confirm, files
from ansible_collections.bulwark.hardening.plugins.module_utils.host.commands import Runner
from ansible_collections.bulwark.hardening.plugins.module_utils.host.files import HostError
from ansible_collections.bulwark.hardening.plugins.module_utils.host.origin import ssh_origin
from ansible_collections.bulwark.hardening.plugins.module_utils.text import plain_path

CONCERN = "firewall"
# The policy as the model takes it; `docker` (auto/true/false) is resolved on the host below.
POLICY_OPTIONS = tuple(key for key in model.POLICY_KEYS if key != "docker")
ARGUMENT_SPEC = {
    "backend": {"type": "str", "choices": list(backends.BACKENDS), "default": "nftables"},
    "default_incoming": {"type": "str", "choices": ["accept", "drop"], "default": "drop"},
    "default_routed": {"type": "str", "choices": ["accept", "drop"], "default": "drop"},
    "default_outgoing": {"type": "str", "choices": ["accept", "drop"], "default": "accept"},
    "admin_networks": {"type": "list", "elements": "str", "default": []},
    "sets": {"type": "dict", "default": {}},
    "rules": {"type": "list", "elements": "dict", "default": []},
    "services": {"type": "list", "elements": "raw", "default": []},
    "ssh_port": {"type": "int", "default": 22},
    "ssh_restricted": {"type": "bool", "default": True},
    "ssh_rate_limit": {"type": "str", "default": "10/minute"},
    "ssh_burst": {"type": "int", "default": 5},
    "icmp_echo": {"type": "bool", "default": True},
    "docker": {"type": "str", "choices": ["auto", "true", "false"], "default": "auto"},
    "docker_interfaces": {"type": "list", "elements": "str", "default": ["docker0", "br-*"]},
    "purge": {"type": "bool", "default": True},
    "guard": {"type": "bool", "default": True},
    "controller_address": {"type": "str"},
    "controller_port": {"type": "int"},
    "controller_local_address": {"type": "str"},
    "rollback_timeout": {"type": "int", "default": 60},
    # Read by the action plugin on the controller (plugins/action/), which confirms; the module ignores it.
    "reconnect_and_confirm": {"type": "bool", "default": False},
    "persist_path": {"type": "path", "default": "/etc/bulwark/firewall.nft"},
    "state_dir": {"type": "path", "default": "/var/lib/bulwark"},
}


def controller(module, runner):
    """(address, port, local address, interface) of the controller's SSH connection, as far as known."""
    p = module.params
    address, port, local = p["controller_address"], p["controller_port"], p["controller_local_address"]
    if not address:
        origin = ssh_origin()
        if origin:
            address, port, local = origin.address, port or origin.local_port, local or origin.local_address
    interface = None
    if address:
        # The interface the controller's packets arrive on (the route back to it).
        rc, out, _err = runner.run(["ip", "-o", "route", "get", address])
        words = out.split()
        if rc == 0 and "dev" in words:
            interface = words[words.index("dev") + 1]
    return address, port, local, interface


def write_inputs(pairs):
    """Write (path, text) pairs, root-only (candidate scripts and rollback snapshots)."""
    for path, text in pairs:
        if path:
            files.write(path, text, 0o600)


class FirewallRun:
    """One module run: read, plan, and (unless in check mode) arm, apply, re-arm."""

    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.runner = Runner(module)
        self.transaction = commit_confirm.Transaction(self.runner, CONCERN)
        self.result = {"changed": False, "pending": False, "backend": self.p["backend"], "foreign": []}
        self.backend = backends.BACKENDS[self.p["backend"]](self.runner.run, self.runner.which, files.read)
        self.plan = None
        self.opts = None
        self.options = None  # the policy's options as the model took them (recorded for the next run)
        self.controller_flow = None  # (address, port) of the controller's connection, when known
        self.flow_calls = []  # conntrack -D calls for the sources this run stops admitting
        self.record = (None, None)  # what the last run recorded: (its options, what a rollback restores)

    def fail(self, msg, **extra):
        self.module.fail_json(msg=msg, **{**self.result, **extra})

    def policy(self):
        p = self.p
        clash = managers.conflict(
            p["backend"],
            ufw_conf_text=files.read("/etc/ufw/ufw.conf") or "",
            firewalld_running=os.path.exists("/run/firewalld/firewalld.pid"),
        )
        if clash:
            self.fail(clash)
        options = {k: p[k] for k in POLICY_OPTIONS}
        options["ssh_rate_limit"] = p["ssh_rate_limit"] or None
        docker_on = os.path.exists("/run/docker.sock") if p["docker"] == "auto" else p["docker"] == "true"
        options["docker"] = self.result["docker"] = docker_on
        self.options = options
        try:
            return model.normalise(options)
        except model.PolicyError as exc:
            self.fail(f"{exc}. Nothing was applied")

    def lockout_packet(self, policy):
        """The packet the lockout guard follows through every table, or None with the guard off."""
        self.result["guard"] = "disabled"
        if not self.p["guard"]:
            # Off, the guard admits anything; the flows deleted still never include the controller's.
            address, port = self.p["controller_address"], self.p["controller_port"]
            origin = None if address else ssh_origin()
            if origin:
                address, port = origin.address, port or origin.local_port
            self.controller_flow = conntrack.controller(address, port, policy.ssh_port)
            return None
        address, port, local, interface = controller(self.module, self.runner)
        self.controller_flow = conntrack.controller(address, port, policy.ssh_port)
        try:
            self.result["guard"] = guard.check(
                policy, address, port, interface=interface, local_address=local
            )
            return hooks.packet(address, local, port, interface)
        except model.PolicyError as exc:
            self.fail(str(exc))

    def apply(self):
        """Run the apply steps; on a failure, the message says what ran before the failed step."""
        started = time.monotonic()
        for n, step in enumerate(self.plan.steps):
            try:
                write_inputs([(step.path, step.text)])
            except HostError as exc:  # a step whose input cannot be written failed like one that ran
                rc, out, err = 1, "", str(exc)
            else:
                rc, out, err = self.runner.run(step.argv)
            if rc != 0:
                done = [s.what for s in self.plan.steps[:n]]
                applied = (
                    f"Applied before it: {'; '.join(done)}. " if done else "Nothing before it was applied. "
                )
                return n, f"{step.what} failed: {(err or out or '').strip()}. {applied}"
        self.result["apply_seconds"] = round(time.monotonic() - started, 3)
        return None, None

    def check(self):
        """Check mode: the candidate validated by the tools themselves, in Ansible's temporary directory."""
        for step in self.plan.checks:
            path = os.path.join(self.module.tmpdir, os.path.basename(step.path))
            files.write(path, step.text, 0o600)
            rc, out, err = self.runner.run([path if arg == step.path else arg for arg in step.argv])
            if rc != 0:
                self.fail(f"{step.what} refused the candidate: {(err or out).strip()}. Nothing was applied")

    def snapshot(self):
        try:
            self.backend.snapshot(self.plan, self.opts)
        except model.PolicyError as exc:  # the live state could not be saved for the rollback: not armed
            text = str(exc)
            self.fail(text if text.endswith("Nothing was applied") else f"{text}. Nothing was applied")
        write_inputs(self.plan.snapshot.items())

    def with_confirm(self, pending, timeout):
        """Arm BEFORE applying, apply, re-arm: the window to confirm counts from the end of the apply.
        `pending`: a change with a usable rollback is armed, whose restore (of the last confirmed state)
        is kept; otherwise the live state is snapshotted and a rollback without a step is refused."""
        if not pending:
            self.snapshot()
        try:
            self.transaction.arm(
                timeout,
                [] if pending else self.plan.restore,
                apply_seconds=self.backend.step_seconds * len(self.plan.steps),
            )
        except (commit_confirm.RestoredNow, commit_confirm.RestoreFailed) as exc:
            self.fail(f"{exc}. Nothing new was applied", changed=True)
        except commit_confirm.RolledBack as exc:
            self.fail(f"{exc}. Nothing new was applied: run it again")
        except (HostError, ValueError) as exc:
            if not pending:
                for path in self.plan.snapshot:
                    files.remove(path)
            self.fail(f"could not arm the firewall rollback ({exc}). Nothing was applied", changed=False)
        failed, msg = self.apply() if self.plan.changed else (None, None)
        if failed is not None:
            if pending:
                restored = ["the last confirmed firewall (an earlier change was still unconfirmed)"]
            else:
                restored = [what for what, _argv in self.plan.restore]
            try:
                self.transaction.restore_now()
            except HostError as exc:
                self.fail(msg + str(exc), changed=True)
            self.fail(
                msg + "The host restored the previous firewall: " + "; ".join(restored) + ".",
                changed=failed > 0 or pending,
                restored=restored,
            )
        # Staged only now: the confirmation persists what is live, never what a killed apply left unapplied.
        self.transaction.rearm(timeout, self.plan.boot)
        self.result.update(pending=True, rollback_timeout=timeout)

    def record_path(self):
        return os.path.join(self.p["state_dir"], "firewall.admitted.json")

    def plan_flows(self, policy, changes):
        """The sources this run stops admitting and the conntrack calls that delete their flows, in a run
        that changes the firewall (one that finds it already the policy stops admitting nothing). Before:
        the policies the last run recorded and the live sets."""
        try:
            self.record = conntrack.read_record(files.read(self.record_path()))
        except HostError as exc:  # compared with the live sets only, and recorded anew
            self.module.warn(f"firewall: the record of what the firewall admitted is unreadable ({exc})")
        if not changes:
            return
        before = []
        for options in conntrack.recorded_before(self.record):
            recorded = conntrack.recorded_policy(options)
            before += conntrack.admissions(recorded) if recorded else []
        live_sets = self.backend.live_sets(policy)
        if live_sets is not None:
            before += conntrack.admissions(conntrack.with_sets(policy, live_sets))
        removals = conntrack.removed(before, conntrack.admissions(policy), self.controller_flow)
        if not removals:
            return
        tool = self.runner.which("conntrack") or "conntrack"
        try:
            self.flow_calls = conntrack.calls(tool, removals, self.controller_flow)
        except conntrack.ControllerFlow as exc:
            self.fail(f"{exc}. Nothing was applied")
        sources = conntrack.by_list(removals)
        self.result["flows_to_delete"] = sources
        self.result["diff"]["after"] += "".join(
            f"conntrack: delete the flows of {what} ({where} no longer admits it)\n"
            for where, whats in sources.items()
            for what in whats
        )

    def finish_flows(self, pending, rolled_back):
        """Right after the apply: delete the removed sources' flows (ct state established would admit
        them for as long as they keep sending), then record what the firewall admits now. A failure is
        reported by name and leaves the firewall change applied."""
        if self.flow_calls:
            deleted = dict.fromkeys(self.result["flows_to_delete"], 0)
            failed = []
            if not self.runner.which("conntrack"):
                failed.append("conntrack is not installed (Debian's conntrack package)")
            else:
                for call in self.flow_calls:
                    rc, _out, err = self.runner.run(call.argv)
                    count, failure = conntrack.outcome(rc, err)
                    deleted[call.list] += count
                    if failure:
                        failed.append(f"{call.list}: {' '.join(call.argv[1:])}: {failure}")
            self.result["flows_deleted"] = deleted
            if failed:
                self.result["flows_failed"] = failed
                self.module.warn(
                    "firewall: the flows of sources this change stopped admitting were not all deleted, so "
                    "they may still get through as established flows (the firewall change itself stays "
                    "applied, it was not undone): " + "; ".join(failed)
                )
        text = conntrack.record_text(self.options, self.record, pending, bool(rolled_back))
        try:
            if files.read(self.record_path()) != text:
                files.private_dir(self.p["state_dir"])
                files.write(self.record_path(), text, 0o600)
        except HostError as exc:  # the change is live: failing now would have it rolled back
            self.module.warn(
                f"firewall: could not record what the firewall admits ({exc}); the next run compares "
                "the new policy with the live sets only"
            )

    def run(self):
        module, p = self.module, self.p
        try:
            timeout = commit_confirm.check_timeout(p["rollback_timeout"])
            # persist_path is named in /etc/nftables.conf's include and state_dir in the rollback script.
            for option in ("persist_path", "state_dir"):
                p[option] = plain_path(p[option], option)
        except commit_confirm.TimeoutRefused as exc:
            self.fail(f"{exc}. Nothing was applied")
        except ValueError as exc:
            self.fail(str(exc))
        policy = self.policy()
        packet = self.lockout_packet(policy)
        # What an interrupted run left is finished (or named) after the input was found good and before
        # the live state is read for the plan; check mode only says what the real run will do about it.
        try:
            settled = self.transaction.predict() if module.check_mode else self.transaction.settle()
        except HostError as exc:
            self.fail(str(exc), changed=getattr(exc, "changed", False))
        self.result["changed"] = settled.changed
        for note in settled.notes:
            module.warn(note)
        if settled.rolled_back:
            module.warn(
                f"firewall: the previous change was rolled back by the host ({settled.rolled_back}): the "
                "controller did not confirm it in time over a new connection"
            )
        self.opts = backends.Options(p["purge"], p["persist_path"], p["state_dir"], packet)
        try:
            self.plan = plan = self.backend.plan(policy, self.opts)
        except model.PolicyError as exc:
            text = str(exc)
            self.fail(text if text.endswith("Nothing was applied") else f"{text}. Nothing was applied")
        if not plan.tools_installed and not module.check_mode:
            self.fail(
                f"backend: {p['backend']} needs {self.backend.packages} (install them first). "
                "Nothing was applied"
            )
        pending = self.transaction.pending()
        boot_changed = (
            commit_confirm.staged_changes(plan.boot) or not self.backend.boot_enabled() or bool(plan.takeover)
        )
        self.result.update(
            changed=plan.changed or boot_changed or pending or settled.changed,
            foreign=plan.foreign,
            policy=policy.as_dict(),
            rules=len(nftables.lines(policy)),
            tools_installed=plan.tools_installed,
            diff={
                "before": plan.before,
                "after": plan.after,
                "before_header": "live",
                "after_header": "policy",
            },
            **plan.facts,
        )
        self.plan_flows(policy, plan.changed or pending)
        if self.flow_calls:
            self.result["changed"] = True
        if module.check_mode:
            if plan.changed:
                self.check()
            module.exit_json(**self.result)
        if not (plan.changed or boot_changed or pending):
            module.exit_json(**self.result)
        try:
            if not plan.changed and not pending:
                # The live firewall already is the policy (the controller is connected through it): only
                # what loads it at boot differs.
                commit_confirm.persist(self.runner, plan.boot)
                module.exit_json(**self.result)
            files.private_dir(p["state_dir"])
            self.with_confirm(pending, timeout)
            self.finish_flows(pending, settled.rolled_back)
        except commit_confirm.RestoredNow as exc:
            self.fail(str(exc), changed=True)
        except commit_confirm.RolledBack as exc:
            self.fail(
                f"{exc} (the apply took longer than rollback_timeout, {timeout} s: raise it)", changed=True
            )
        except HostError as exc:
            self.fail(str(exc))
        module.exit_json(**self.result)


def main():
    FirewallRun(AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)).run()


if __name__ == "__main__":
    main()
