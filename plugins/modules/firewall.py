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
      - C(auto) enables it when Docker runs on the host (its socket exists), C(always) and C(never) say so
        (the same spelling as M(bulwark.hardening.fail2ban_jail)'s).
      - The earlier spelling C(true)/C(false) is still accepted for this release, as C(always)/C(never).
    type: str
    choices: [auto, always, never, "true", "false"]
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
    spec,
)
from ansible_collections.bulwark.hardening.plugins.module_utils.host import commit_confirm, executor, files
from ansible_collections.bulwark.hardening.plugins.module_utils.host.commands import Runner
from ansible_collections.bulwark.hardening.plugins.module_utils.host.docker import wanted as docker_wanted
from ansible_collections.bulwark.hardening.plugins.module_utils.host.files import HostError
from ansible_collections.bulwark.hardening.plugins.module_utils.host.origin import ssh_origin
from ansible_collections.bulwark.hardening.plugins.module_utils.host.sandbox import Sandbox
from ansible_collections.bulwark.hardening.plugins.module_utils.text import plain_path

CONCERN = "firewall"
# The policy as the model takes it; `docker` (auto/always/never) is resolved on the host below.
POLICY_OPTIONS = tuple(key for key in model.POLICY_KEYS if key != "docker")


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


class FirewallRun:
    """One module run: read, plan, and (unless in check mode) execute it with commit-confirm."""

    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.runner = Runner(module)
        self.executor = executor.Executor(self.runner, module.check_mode)
        self.transaction = commit_confirm.Transaction(self.runner, CONCERN)
        self.result = {"changed": False, "pending": False, "backend": self.p["backend"], "foreign": []}
        self.backend = backends.BACKENDS[self.p["backend"]](self.runner.run, self.runner.which, files.read)
        self.plan = self.opts = None
        self.options = None  # the policy's options as the model took them (recorded for the next run)
        self.controller_flow = None  # (address, port) of the controller's connection, when known
        self.flow_calls = []  # conntrack -D calls for the sources this run stops admitting
        self.record = (None, None)  # what the last run recorded: (its options, what a rollback restores)

    def policy(self):
        p = self.p
        clash = managers.conflict(
            p["backend"],
            ufw_conf_text=files.read("/etc/ufw/ufw.conf") or "",
            firewalld_running=files.exists("/run/firewalld/firewalld.pid"),
        )
        if clash:
            raise executor.Refused(clash)
        options = {k: p[k] for k in POLICY_OPTIONS}
        options["ssh_rate_limit"] = p["ssh_rate_limit"] or None
        options["docker"] = self.result["docker"] = docker_wanted(spec.docker_option(p["docker"]))
        self.options = options
        return model.normalise(options)

    def lockout_packet(self, policy):
        """The packet the lockout guard follows through every table, or None with the guard off."""
        address, port, local, interface = controller(self.module, self.runner)
        # Off, the guard admits anything; the flows deleted still never include the controller's.
        self.controller_flow = conntrack.controller(address, port, policy.ssh_port)
        if not self.p["guard"]:
            self.result["guard"] = "disabled"
            return None
        self.result["guard"] = guard.check(policy, address, port, interface=interface, local_address=local)
        return hooks.packet(address, local, port, interface)

    def check(self):
        """Check mode: the candidate validated by the tools themselves, in a private temporary copy."""
        with Sandbox("bulwark-firewall-", parent=self.module.tmpdir) as box:
            for step in self.plan.checks:
                path = box.write(os.path.basename(step.path), step.text)
                rc, out, err = self.runner.run([path if arg == step.path else arg for arg in step.argv])
                if rc != 0:
                    raise executor.Refused(f"{step.what} refused the candidate: {(err or out).strip()}")

    def prepare(self):
        """What the rollback restores, snapshotted from the live state: (snapshot writes, restore steps)."""
        self.backend.snapshot(self.plan, self.opts)
        return backends.snapshot_ops(self.plan), self.plan.restore

    def confirm(self, timeout):
        apply_seconds = self.backend.step_seconds * len(self.plan.steps)
        return executor.Confirm(
            self.transaction, timeout, self.prepare, staged=self.plan.boot, apply_seconds=apply_seconds,
            restored="The host restored the previous firewall",
        )  # fmt: skip

    def plan_flows(self, policy, changes):
        """The sources a changing run stops admitting (since the last run's record and the live sets)."""
        try:
            self.record = conntrack.read_record(files.read(self.record_path))
        except HostError as exc:  # compared with the live sets only, and recorded anew
            self.module.warn(f"firewall: the record of what the firewall admitted is unreadable ({exc})")
        if not changes:
            return
        live_sets = self.backend.live_sets(policy)
        removals = conntrack.removals(self.record, policy, live_sets, self.controller_flow)
        if not removals:
            return
        tool = self.runner.which("conntrack") or "conntrack"
        self.flow_calls = conntrack.calls(tool, removals, self.controller_flow)
        self.result["flows_to_delete"] = sources = conntrack.by_list(removals)
        self.result["diff"]["after"] += conntrack.diff_lines(sources)

    def finish_flows(self, pending, rolled_back):
        """Right after the apply: delete the flows of removed sources (established flows would stay admitted),
        then record what the firewall admits now. A failure is a warning: the change stays applied."""
        if self.flow_calls:
            deleted = dict.fromkeys(self.result["flows_to_delete"], 0)
            failed = [] if self.runner.which("conntrack") else [conntrack.NOT_INSTALLED]
            for call in self.flow_calls if not failed else ():
                rc, _out, err = self.runner.run(call.argv)
                count, failure = conntrack.outcome(rc, err)
                deleted[call.list] += count
                if failure:
                    failed.append(f"{call.list}: {' '.join(call.argv[1:])}: {failure}")
            self.result["flows_deleted"] = deleted
            if failed:
                self.result["flows_failed"] = failed
                self.module.warn(conntrack.FAILED_WARNING + "; ".join(failed))
        text = conntrack.record_text(self.options, self.record, pending, bool(rolled_back))
        try:
            if files.read(self.record_path) != text:
                files.private_dir(self.p["state_dir"])
                files.write(self.record_path, text, 0o600)
        except HostError as exc:  # the change is live: failing now would have it rolled back
            self.module.warn(f"firewall: could not record what the firewall admits ({exc}); the next run "
                             "compares the new policy with the live sets only")  # fmt: skip

    def read(self):
        """Check the input, settle what an earlier run left, read the live state and plan."""
        p = self.p
        timeout = commit_confirm.check_timeout(p["rollback_timeout"])
        self.record_path = os.path.join(p["state_dir"], "firewall.admitted.json")
        # persist_path is named in /etc/nftables.conf's include and state_dir in the rollback script.
        for option in ("persist_path", "state_dir"):
            p[option] = plain_path(p[option], option)
        policy = self.policy()
        packet = self.lockout_packet(policy)
        # What an interrupted run left is finished (or named) after the input was found good and before
        # the live state is read for the plan; check mode only says what the real run will do about it.
        settled = self.executor.settle(self.transaction)
        self.result["changed"] = settled.changed
        for note in settled.notes:
            self.module.warn(note)
        if settled.rolled_back:
            self.module.warn(conntrack.rolled_back_warning(settled.rolled_back))
        self.opts = backends.Options(p["purge"], p["persist_path"], p["state_dir"], packet)
        self.plan = self.backend.plan(policy, self.opts)
        if not self.plan.tools_installed and not self.module.check_mode:
            raise executor.Refused(
                f"backend: {p['backend']} needs {self.backend.packages} (install them first)"
            )
        return timeout, policy, settled

    def report(self, policy, pending, settled):
        plan = self.plan
        boot_changed = (
            commit_confirm.staged_changes(plan.boot) or not self.backend.boot_enabled() or bool(plan.takeover)
        )
        self.result.update(
            changed=plan.changed or boot_changed or pending or settled.changed,
            foreign=plan.foreign, policy=policy.as_dict(), rules=len(nftables.lines(policy)),
            tools_installed=plan.tools_installed,
            diff=plan.diff(),
            **plan.facts,
        )  # fmt: skip
        self.plan_flows(policy, plan.changed or pending)
        self.result["changed"] |= bool(self.flow_calls)
        return boot_changed

    def run(self):
        """The run, failing the one way: what was applied and restored, or "Nothing was applied"."""
        try:
            self.work()
        except executor.ConfirmFailed as exc:
            executor.fail(self.module, exc, **{**self.result, "changed": exc.changed})
        except ValueError as exc:  # Refused, PolicyError, TimeoutRefused, an option refused by name
            executor.fail(self.module, exc, **self.result)
        except HostError as exc:
            self.module.fail_json(msg=str(exc), **self.result)

    def work(self):
        timeout, policy, settled = self.read()
        pending = self.transaction.pending()
        boot_changed = self.report(policy, pending, settled)
        if self.module.check_mode:
            if self.plan.changed:
                self.check()
        elif not self.plan.changed and not pending:
            # The live firewall already is the policy (the controller is connected through it): at most
            # what loads it at boot differs.
            if boot_changed:
                commit_confirm.persist(self.runner, self.plan.boot)
        else:
            files.private_dir(self.p["state_dir"])
            started = time.monotonic()
            self.executor.run(backends.apply_plan(self.plan), self.confirm(timeout))
            self.result.update(pending=True, rollback_timeout=timeout)
            self.result["apply_seconds"] = round(time.monotonic() - started, 3)
            self.finish_flows(pending, settled.rolled_back)
        self.module.exit_json(**self.result)


def main():
    FirewallRun(AnsibleModule(argument_spec=spec.ARGUMENT_SPEC, supports_check_mode=True)).run()


if __name__ == "__main__":
    main()
