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
  - "Commit-confirm: a change is applied together with a rollback timer on the host (systemd). The controller
    must open a NEW connection and call the module again with I(confirm=true); otherwise the host restores the
    previous owned table (and purged tables) by itself after I(rollback_timeout) seconds. The new policy is
    persisted (C(/etc/bulwark/firewall.nft), included from C(/etc/nftables.conf)) only when confirmed."
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
version_added: "1.0.0"
author: bulwark.hardening maintainers (@bulwark-hardening)
options:
  backend:
    description: Firewall backend.
    type: str
    choices: [nftables, iptables, ufw]
    default: nftables
  confirm:
    description:
      - Confirm a change applied by a previous call (run it over a new connection). Disarms the rollback timer
        and persists the policy. The policy options are ignored.
      - Fails when the host already rolled the change back.
    type: bool
    default: false
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
        C(rate_limit) (new connections per source, such as C(30/minute)) and C(burst) (default 5)."
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
    description: Burst allowed above I(ssh_rate_limit).
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
    description: Interfaces of Docker's bridges (wildcards allowed).
    type: list
    elements: str
    default: [docker0, br-*]
  purge:
    description:
      - Remove foreign objects that admit traffic (with C(false) they are only reported in RV(foreign)).
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
  rollback_timeout:
    description:
      - Seconds after which the host restores the previous firewall unless confirmed (at least 5).
        C(0) applies and persists at once without commit-confirm.
    type: int
    default: 60
  persist_path:
    description: Where the confirmed policy is saved; C(/etc/nftables.conf) is made to include it.
    type: path
    default: /etc/bulwark/firewall.nft
  state_dir:
    description: Where the rollback snapshot and the change waiting for confirmation are kept.
    type: path
    default: /var/lib/bulwark
notes:
  - Supports check mode and diff mode (rule-level, canonical form of the owned table).
  - C(/etc/nftables.conf) is replaced by an include of I(persist_path) without C(flush ruleset), so a reboot
    does not wipe Docker's or fail2ban's tables. Enable C(nftables.service) for it to load at boot.
  - A rule edited by hand in C(inet bulwark) that keeps its C(bw:) comment id is not detected;
    added and removed rules are.
"""

EXAMPLES = r"""
- name: Apply the firewall policy (rollback armed)
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

- name: Confirm the firewall change
  bulwark.hardening.firewall:
    confirm: true
  when: fw.pending
"""

RETURN = r"""
pending:
  description: A change was applied and waits for I(confirm=true) before I(rollback_timeout) runs out.
  returned: always
  type: bool
rollback_timeout:
  description: Seconds the host waits for the confirmation.
  returned: when pending
  type: int
foreign:
  description: Foreign objects that admit traffic (removed with I(purge=true)).
  returned: always
  type: list
  elements: str
  sample: ["table inet filter (filters the forward/input hook; not managed by bulwark)"]
guard:
  description: What admits the controller's SSH connection (or C(disabled)).
  returned: when not confirm
  type: str
  sample: admin_networks
docker:
  description: Whether Docker-aware forwarding rules were rendered.
  returned: when not confirm
  type: bool
policy:
  description: The normalised policy (set sizes instead of their contents).
  returned: when not confirm
  type: dict
tools_installed:
  description:
    - Whether the backend's tools (nft; iptables and ipset) are installed.
    - In check mode on a fresh host they are not yet, and the change is predicted.
  returned: when not confirm
  type: bool
variant:
  description: The iptables variant in use (iptables backend).
  returned: with backend=iptables when iptables is installed
  type: str
  sample: nf_tables
backend:
  description: The backend that manages the firewall.
  returned: when not confirm
  type: str
rules:
  description: Number of rule lines in the owned table.
  returned: when not confirm
  type: int
"""

import json
import os
import shlex
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.bulwark.hardening.plugins.module_utils import commit_confirm
from ansible_collections.bulwark.hardening.plugins.module_utils.firewall import (
    guard,
    iptables,
    managers,
    model,
    nftables,
    ufw,
)

CONCERN = "firewall"
NFT_CONF = "/etc/nftables.conf"
# The policy as the model takes it; `docker` (auto/true/false) is resolved on the host below.
POLICY_OPTIONS = tuple(key for key in model.POLICY_KEYS if key != "docker")


def nft_conf_text(persist_path):
    return (
        "#!/usr/sbin/nft -f\n"
        "# Managed by bulwark.hardening (firewall module). No `flush ruleset` here: Docker and fail2ban\n"
        "# keep tables of their own, and a reboot must not wipe them.\n"
        f'include "{persist_path}"\n'
    )


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def write(module, path, text, mode=0o600):
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.bulwark-tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    module.atomic_move(tmp, path)


def ssh_connection_from_ancestry():
    """SSH_CONNECTION of the session this module runs in (sudo drops it from our own environment)."""
    value = os.environ.get("SSH_CONNECTION")
    if value:
        return value
    pid = os.getppid()
    for _unused in range(12):
        if pid <= 1:
            break
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                for item in f.read().split(b"\0"):
                    if item.startswith(b"SSH_CONNECTION="):
                        return item.split(b"=", 1)[1].decode()
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return None


def confirm(module, paths):
    result = {"changed": False, "pending": False, "foreign": []}
    systemctl = module.get_bin_path("systemctl", required=True)
    pending_rc = module.run_command([systemctl, *commit_confirm.pending_command(CONCERN)[1:]])[0]
    staged = read(paths["staged"])
    rolled = read(paths["rolled_back"])
    if pending_rc != 0 and staged is not None:
        # The timer fired (or the host rebooted) before this confirmation: the host is restoring, or has
        # restored, the previous firewall. Wait for the restore to end, then say so; never persist it.
        restoring = [systemctl, "is-active", "--quiet", commit_confirm.unit_name(CONCERN) + ".service"]
        deadline = time.monotonic() + 120
        while module.run_command(restoring)[0] == 0 and time.monotonic() < deadline:
            time.sleep(1)
        rolled = read(paths["rolled_back"]) or "before this confirmation"
        if not module.check_mode and os.path.exists(paths["staged"]):
            os.unlink(paths["staged"])  # the change it staged was never confirmed
        staged = None
    if pending_rc != 0 and staged is None and rolled:
        module.fail_json(
            msg=f"the firewall change was rolled back by the host ({rolled.strip()}): the controller did not "
            "confirm it in time over a new connection",
            **result,
        )
    if module.check_mode:
        result["changed"] = pending_rc == 0 or staged is not None
        module.exit_json(**result)
    if pending_rc == 0:
        rc, _out, err = module.run_command([systemctl, *commit_confirm.disarm_command(CONCERN)[1:]])
        if rc != 0:
            module.fail_json(msg=f"could not disarm the firewall rollback timer: {err.strip()}", **result)
        result["changed"] = True
    if staged is not None:
        persist(module, json.loads(staged))
        os.unlink(paths["staged"])
        result["changed"] = True
    module.exit_json(**result)


def persist(module, files):
    """Write what loads the policy at boot (path -> [text, mode])."""
    for path, (text, mode) in files.items():
        if read(path) != text:
            write(module, path, text, mode)


def run_checked(module, argv, what, data=None):
    rc, out, err = module.run_command(argv, data=data, binary_data=True)
    if rc != 0:
        module.fail_json(msg=f"{what} failed: {err.strip() or out.strip()}")
    return out


class Plan:
    """What a backend found and will do: before/after text, foreign objects, the apply steps
    (argv, file), the rollback snapshot files and command, and the files that load it at boot."""

    def __init__(self):
        self.before = ""
        self.after = ""
        self.foreign = []
        self.changed = False
        self.steps = []  # (argv, path of the input file, its text, whether argv reads it on stdin)
        self.snapshot = {}  # path -> text, written before applying
        self.restore = ""  # shell command that puts the snapshot back
        self.persist = {}  # path -> (text, mode)
        self.facts = {}


def plan_nftables(module, p, policy, paths):
    plan = Plan()
    nft = module.get_bin_path("nft")
    live_doc = {"nftables": []}
    if nft:
        out = run_checked(module, [nft, "-j", "list", "ruleset"], "nft -j list ruleset")
        try:
            live_doc = json.loads(out or '{"nftables": []}')
        except ValueError as exc:
            module.fail_json(msg=f"nft -j list ruleset printed something that is not JSON: {exc}")
    elif not module.check_mode:
        module.fail_json(msg="nft is not installed (install the nftables package first)")
    plan.facts["tools_installed"] = bool(nft)
    live = nftables.read_live(live_doc)
    candidate = nftables.canonical(policy)
    persisted = read(p["persist_path"]) or ""
    current = nftables.live_canonical(live, nftables.known_ids(policy, persisted))
    plan.foreign = [desc for desc, _cmd in live.foreign]
    purge = [cmd for _desc, cmd in live.foreign] if p["purge"] else []
    plan.changed = current != candidate or bool(purge)
    plan.before = current + "".join(f"foreign: {d}\n" for d in plan.foreign)
    plan.after = candidate + ("" if p["purge"] else "".join(f"foreign: {d}\n" for d in plan.foreign))
    plan.persist = {
        p["persist_path"]: (nftables.persist_script(policy), 0o600),
        NFT_CONF: (nft_conf_text(p["persist_path"]), 0o755),
    }
    if not plan.changed or module.check_mode:
        return plan
    script = nftables.render(policy, purge)
    plan.steps = [([nft, "-f", paths["candidate"]], paths["candidate"], script, False)]
    saved_owned = ""
    if live.owned_exists:
        saved_owned = run_checked(
            module, [nft, "list", "table", nftables.FAMILY, nftables.TABLE], "saving the table"
        )
    saved_foreign = []
    for cmd in purge:
        if cmd.startswith("delete table "):
            fam, name = cmd.split()[2:4]
            rc, out, _err = module.run_command([nft, "list", "table", fam, name])
            if rc == 0:
                saved_foreign.append(out)
    rollback = os.path.join(p["state_dir"], "firewall.rollback.nft")
    plan.snapshot = {rollback: nftables.restore_script(saved_owned, saved_foreign)}
    plan.restore = f"{shlex.quote(nft)} -f {shlex.quote(rollback)}"
    return plan


IPTABLES_UNIT = "/etc/systemd/system/bulwark-firewall.service"


def iptables_unit(ipset, ipt4, ipt6, files):
    return (
        "# Managed by bulwark.hardening (firewall module, iptables backend).\n"
        "[Unit]\n"
        "Description=bulwark.hardening firewall (iptables backend)\n"
        "DefaultDependencies=no\n"
        "Before=network-pre.target\n"
        "Wants=network-pre.target\n"
        "After=local-fs.target\n\n"
        "[Service]\n"
        "Type=oneshot\n"
        "RemainAfterExit=yes\n"
        f"ExecStart={ipset} restore -exist -file {files['ipset']}\n"
        f"ExecStart={ipt4}-restore --noflush {files[4]}\n"
        f"ExecStart={ipt6}-restore --noflush {files[6]}\n\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


def plan_iptables(module, p, policy, paths):
    plan = Plan()
    ipt = {4: module.get_bin_path("iptables"), 6: module.get_bin_path("ip6tables")}
    ipset = module.get_bin_path("ipset")
    installed = all(ipt.values()) and bool(ipset)
    plan.facts["tools_installed"] = installed
    if not installed and not module.check_mode:
        module.fail_json(msg="backend: iptables needs the iptables and ipset packages (install them first)")
    saved = {4: iptables.Saved(), 6: iptables.Saved()}
    live_sets, ipset_saved = {}, ""
    if installed:
        version = run_checked(module, [ipt[4], "-V"], "iptables -V")
        plan.facts["variant"] = "nf_tables" if "nf_tables" in version else "legacy"
        for fam in (4, 6):
            saved[fam] = iptables.parse_save(
                run_checked(module, [f"{ipt[fam]}-save", "-t", "filter"], "iptables-save")
            )
        ipset_saved = run_checked(module, [ipset, "save"], "ipset save")
        live_sets = iptables.parse_ipset_save(ipset_saved)
    candidate = iptables.sets_canonical(policy)
    current = iptables.live_sets_canonical(live_sets, policy)
    for fam in (4, 6):
        candidate += iptables.canonical(policy, fam)
        current += iptables.live_canonical(saved[fam], iptables.known_ids(policy, fam), fam)
        plan.foreign += [
            f"IPv{fam} rule {spec} (admits traffic; not managed by bulwark)" for spec in saved[fam].foreign
        ]
    nft = module.get_bin_path("nft")
    leftover = False
    if nft:
        rc, _out, _err = module.run_command([nft, "list", "table", nftables.FAMILY, nftables.TABLE])
        leftover = rc == 0
        if leftover:
            plan.foreign.append("table inet bulwark (left by the nftables backend)")
    plan.changed = current != candidate or (p["purge"] and bool(plan.foreign))
    plan.before = current + "".join(f"foreign: {d}\n" for d in plan.foreign)
    plan.after = candidate + ("" if p["purge"] else "".join(f"foreign: {d}\n" for d in plan.foreign))
    state = p["state_dir"]
    files = {
        "ipset": "/etc/bulwark/firewall.ipset",
        4: "/etc/bulwark/firewall.v4",
        6: "/etc/bulwark/firewall.v6",
    }
    ipt_path = {fam: ipt[fam] or f"/usr/sbin/ip{'6' if fam == 6 else ''}tables" for fam in (4, 6)}
    plan.persist = {
        files["ipset"]: (iptables.ipset_script(policy), 0o600),
        files[4]: (iptables.restore_script(policy, 4), 0o600),
        files[6]: (iptables.restore_script(policy, 6), 0o600),
        IPTABLES_UNIT: (iptables_unit(ipset or "/usr/sbin/ipset", ipt_path[4], ipt_path[6], files), 0o644),
    }
    if not plan.changed or module.check_mode:
        return plan
    plan.steps = [([ipset, "restore", "-exist"], os.path.join(state, "firewall.candidate.ipset"),
                   iptables.ipset_script(policy), True)]  # fmt: skip
    for fam in (4, 6):
        script = iptables.restore_script(policy, fam, saved[fam], p["purge"])
        plan.steps.append(
            (
                [f"{ipt[fam]}-restore", "--noflush"],
                os.path.join(state, f"firewall.candidate.v{fam}"),
                script,
                True,
            )
        )
    if leftover and p["purge"]:
        plan.steps.append(([nft, "-f", "-"], os.path.join(state, "firewall.candidate.nft"),
                           f"delete table {nftables.FAMILY} {nftables.TABLE}\n", True))  # fmt: skip
    rb = {k: os.path.join(state, f"firewall.rollback.{k}") for k in ("v4", "v6", "ipset")}
    plan.snapshot = {
        rb["ipset"]: iptables.ipset_rollback(ipset_saved),
        rb["v4"]: run_checked(module, [f"{ipt[4]}-save", "-t", "filter"], "iptables-save"),
        rb["v6"]: run_checked(module, [f"{ipt[6]}-save", "-t", "filter"], "ip6tables-save"),
    }
    plan.restore = f"{shlex.quote(ipset)} restore -exist -file {shlex.quote(rb['ipset'])}; " + "; ".join(
        f"{shlex.quote(ipt[fam])}-restore {shlex.quote(rb[f'v{fam}'])}" for fam in (4, 6)
    )
    return plan


UFW_FILES = ("/etc/ufw/user.rules", "/etc/ufw/user6.rules", "/etc/default/ufw", "/etc/ufw/ufw.conf")


def plan_ufw(module, p, policy, paths):
    plan = Plan()
    ufw_bin = module.get_bin_path("ufw")
    plan.facts["tools_installed"] = bool(ufw_bin)
    if not ufw_bin and not module.check_mode:
        module.fail_json(msg="backend: ufw needs the ufw package (install it first)")
    ufw.refuse(policy, p)
    live = {4: ufw.parse_tuples(read(UFW_FILES[0])), 6: ufw.parse_tuples(read(UFW_FILES[1]))}
    enabled = managers.ufw_enabled(read(UFW_FILES[3]) or "")
    current = ufw.canonical(live, ufw.parse_defaults(read(UFW_FILES[2])), enabled)
    candidate = ufw.canonical(ufw.wanted_tuples(policy), ufw.defaults(policy), True)
    nft = module.get_bin_path("nft")
    leftover = (
        bool(nft) and module.run_command([nft, "list", "table", nftables.FAMILY, nftables.TABLE])[0] == 0
    )
    if leftover:
        plan.foreign.append("table inet bulwark (left by the nftables backend)")
    plan.changed = current != candidate or (p["purge"] and leftover)
    plan.before = current + "".join(f"foreign: {d}\n" for d in plan.foreign)
    plan.after = candidate + ("" if p["purge"] else "".join(f"foreign: {d}\n" for d in plan.foreign))
    if not plan.changed or module.check_mode:
        return plan
    plan.steps = [([ufw_bin, *argv], None, None, False) for argv in ufw.commands(policy, live)]
    plan.steps.append(([ufw_bin, "reload"] if enabled else [ufw_bin, "--force", "enable"], None, None, False))
    if leftover and p["purge"]:
        plan.steps.append(([nft, "delete", "table", nftables.FAMILY, nftables.TABLE], None, None, False))
    snap = {
        path: os.path.join(p["state_dir"], "firewall.rollback." + path.strip("/").replace("/", "_"))
        for path in UFW_FILES
    }
    plan.snapshot = {snap[path]: read(path) or "" for path in UFW_FILES}
    copies = "; ".join(
        f"cp {shlex.quote(snap[path])} {shlex.quote(path)}" for path in UFW_FILES if read(path) is not None
    )
    again = f"{shlex.quote(ufw_bin)} reload" if enabled else f"{shlex.quote(ufw_bin)} --force disable"
    plan.restore = f"{copies}; {again}"
    return plan


def main():
    module = AnsibleModule(
        argument_spec={
            "backend": {"type": "str", "choices": ["nftables", "iptables", "ufw"], "default": "nftables"},
            "confirm": {"type": "bool", "default": False},
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
            "rollback_timeout": {"type": "int", "default": 60},
            "persist_path": {"type": "path", "default": "/etc/bulwark/firewall.nft"},
            "state_dir": {"type": "path", "default": "/var/lib/bulwark"},
        },
        supports_check_mode=True,
    )
    p = module.params
    state = p["state_dir"]
    paths = {
        "persist": p["persist_path"],
        "staged": os.path.join(state, "firewall.staged.nft"),
        "rollback": os.path.join(state, "firewall.rollback.nft"),
        "candidate": os.path.join(state, "firewall.candidate.nft"),
        "rolled_back": os.path.join(state, "firewall.rolled-back"),
    }
    if p["confirm"]:
        confirm(module, paths)
    timeout = p["rollback_timeout"]
    if timeout != 0 and timeout < 5:
        module.fail_json(msg=f"rollback_timeout: {timeout} is too short (at least 5 seconds, or 0 for none)")

    options = {k: p[k] for k in POLICY_OPTIONS}
    options["ssh_rate_limit"] = p["ssh_rate_limit"] or None
    clash = managers.conflict(
        p["backend"],
        ufw_conf_text=read("/etc/ufw/ufw.conf") or "",
        firewalld_running=os.path.exists("/run/firewalld/firewalld.pid"),
    )
    if clash:
        module.fail_json(msg=clash)
    if p["docker"] == "auto":
        docker_on = os.path.exists("/run/docker.sock")
    else:
        docker_on = p["docker"] == "true"
    options["docker"] = docker_on

    try:
        policy = model.normalise(options)
    except model.PolicyError as exc:
        module.fail_json(msg=f"{exc}. Nothing was applied")

    admitted = "disabled"
    if p["guard"]:
        address, port, local = p["controller_address"], p["controller_port"], None
        if not address:
            conn = guard.parse_ssh_connection(ssh_connection_from_ancestry())
            if conn:
                address, local, conn_port = conn
                port = port or conn_port
        iface = None
        if address and any(r.interface for r in policy.rules):
            rc, out, _err = module.run_command(["ip", "-o", "route", "get", address])
            words = out.split()
            if rc == 0 and "dev" in words:
                iface = words[words.index("dev") + 1]
        try:
            admitted = guard.check(policy, address, port, interface=iface, local_address=local)
        except model.PolicyError as exc:
            module.fail_json(msg=str(exc))

    try:
        if p["backend"] == "nftables":
            plan = plan_nftables(module, p, policy, paths)
        elif p["backend"] == "iptables":
            plan = plan_iptables(module, p, policy, paths)
        else:
            plan = plan_ufw(module, p, policy, paths)
    except model.PolicyError as exc:
        module.fail_json(msg=f"{exc}. Nothing was applied")
    staged = read(paths["staged"])
    staged_files = json.loads(staged) if staged else None
    wanted = {k: list(v) for k, v in plan.persist.items()}
    persist_changed = (
        any(read(path) != text for path, (text, _m) in plan.persist.items()) and staged_files != wanted
    )
    result = {
        "changed": plan.changed or persist_changed,
        "pending": False,
        "backend": p["backend"],
        "foreign": plan.foreign,
        "guard": admitted,
        "docker": docker_on,
        "policy": policy.as_dict(),
        "rules": len(nftables.lines(policy)),
        "diff": {
            "before": plan.before,
            "after": plan.after,
            "before_header": "live firewall",
            "after_header": "policy",
        },
        **plan.facts,
    }
    if module.check_mode or not result["changed"]:
        module.exit_json(**result)

    timeout = p["rollback_timeout"]
    systemctl = module.get_bin_path("systemctl", required=timeout > 0)
    if plan.changed:
        pending = (
            timeout > 0
            and module.run_command([systemctl, *commit_confirm.pending_command(CONCERN)[1:]])[0] == 0
        )
        if pending:
            # An unconfirmed change is still armed: keep its snapshot (the last state that was confirmed).
            module.run_command([systemctl, *commit_confirm.disarm_command(CONCERN)[1:]])
        else:
            for path, text in plan.snapshot.items():
                write(module, path, text)
        if os.path.exists(paths["rolled_back"]):
            os.unlink(paths["rolled_back"])
        restore = (
            f"{plan.restore}; rm -f {shlex.quote(paths['staged'])}; "
            f"date -u +%FT%TZ > {shlex.quote(paths['rolled_back'])}"
        )
        if timeout > 0:
            rc, _out, err = module.run_command(commit_confirm.arm_command(CONCERN, timeout, restore))
            if rc != 0:
                module.fail_json(
                    msg=f"could not arm the firewall rollback timer: {err.strip()}. Nothing was applied"
                )
        started = time.monotonic()
        for n, (argv, path, text, stdin) in enumerate(plan.steps):
            data = None
            if path:
                write(module, path, text)
                if stdin:
                    with open(path, "rb") as f:
                        data = f.read()
            rc, _out, err = module.run_command(argv, data=data, binary_data=True)
            if rc != 0:
                if n > 0:
                    module.run_command(["/bin/sh", "-c", plan.restore])
                if timeout > 0:
                    module.run_command([systemctl, *commit_confirm.disarm_command(CONCERN)[1:]])
                module.fail_json(
                    msg=f"{' '.join(argv[:2])} refused the ruleset (nothing was applied): {err.strip()}"
                )
        result["apply_seconds"] = round(time.monotonic() - started, 3)
        if timeout > 0:
            # The controller's window to confirm counts from the end of the apply, not from its start
            # (ufw applies rule by rule and can take seconds). If the timer fired during the apply, the
            # host is already restoring the previous firewall: say so instead of staging the change.
            if module.run_command([systemctl, *commit_confirm.pending_command(CONCERN)[1:]])[0] != 0:
                module.fail_json(
                    msg=f"applying took longer than rollback_timeout ({timeout} s) and the host restored the "
                    "previous firewall by itself; raise the rollback timeout"
                )
            module.run_command([systemctl, *commit_confirm.disarm_command(CONCERN)[1:]])
            rc, _out, err = module.run_command(commit_confirm.arm_command(CONCERN, timeout, restore))
            if rc != 0:
                module.run_command(["/bin/sh", "-c", plan.restore])
                module.fail_json(msg=f"could not re-arm the firewall rollback timer: {err.strip()}; restored")
    if timeout > 0 and plan.changed:
        write(module, paths["staged"], json.dumps(wanted))
        result["pending"] = True
        result["rollback_timeout"] = timeout
    else:
        persist(module, plan.persist)
        if os.path.exists(paths["staged"]):
            os.unlink(paths["staged"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
