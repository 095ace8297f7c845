"""The firewall's backends as objects with one interface.

A backend reads the live state through the callables the module gives it (`run(argv)` -> (rc, out, err),
`which(name)`, `read(path)`: the host layer on a host, fakes in tests), and returns a Plan: the canonical
text before and after, the foreign objects, the apply steps, the steps that restore what the apply
replaces (and the snapshot files they read), the check-mode validations, and what loads the policy at
boot (persisted only once the change is confirmed). The module arms, applies, re-arms and returns.

The guard's second half lives here because it needs the live ruleset: after the purge, every base chain
the controller's packet meets, in every table, must accept it (see hooks).
"""

import collections
import json
import os

from . import guard, hooks, iptables, managers, nftables, ufw
from .model import PolicyError

Step = collections.namedtuple("Step", "what argv path text")
Options = collections.namedtuple("Options", "purge persist_path state_dir packet")
NFT_CONF = "/etc/nftables.conf"
IPTABLES_UNIT = "/etc/systemd/system/bulwark-firewall.service"
IPTABLES_FILES = {
    "ipset": "/etc/bulwark/firewall.ipset",
    4: "/etc/bulwark/firewall.v4",
    6: "/etc/bulwark/firewall.v6",
}
UFW_FILES = ("/etc/ufw/user.rules", "/etc/ufw/user6.rules", "/etc/default/ufw", "/etc/ufw/ufw.conf")
OWNED = (nftables.FAMILY, nftables.TABLE)


class BackendError(PolicyError):
    """The host's state could not be read or is not what the backend can manage; nothing was applied."""


class Plan:
    """What a backend found and would do."""

    def __init__(self, backend):
        self.backend = backend
        self.tools_installed = True
        self.before = ""
        self.after = ""
        self.foreign = []  # descriptions
        self.changed = False  # the live firewall differs from the policy (or foreign objects go)
        self.steps = []  # Step: write text to path (when given), then run argv
        self.checks = []  # Step: check mode's validation of the candidate
        self.snapshot = {}  # path -> text, the restore steps' input, written before arming
        self.restore = []  # (what, argv), in order
        self.boot = {"files": [], "commands": []}  # persisted on confirm (host.commit_confirm.persist)
        self.takeover = []  # other units that load a firewall at boot, disabled on confirm
        self.facts = {}


def nft_conf_text(persist_path):
    return (
        "#!/usr/sbin/nft -f\n"
        "# Managed by bulwark.hardening (firewall module). No `flush ruleset` here: Docker and fail2ban\n"
        "# keep tables of their own, and a reboot must not wipe them.\n"
        f'include "{persist_path}"\n'
    )


def iptables_unit(ipset, ipt4, ipt6):
    files = IPTABLES_FILES
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


# Units that load a saved firewall at boot, besides the backend's own (iptables-persistent's).
COMPETING_BOOT_UNITS = ("netfilter-persistent.service",)


def _diff(plan, current, candidate, purge):
    listed = "".join(f"foreign: {d}\n" for d in plan.foreign)
    plan.before = current + listed
    plan.after = candidate + ("" if purge else listed)


class Backend:
    name = None
    boot_unit = None
    packages = None  # what to install, for the message when the tools are missing
    step_seconds = 5  # the most one apply step may take on a loaded host (the rollback covers the apply)

    def __init__(self, run, which, read):
        self._run = run
        self.which = which
        self.read = read

    def run(self, argv, what):
        """Output of a command that must succeed to read the live state."""
        rc, out, err = self._run(argv)
        if rc != 0:
            raise BackendError(f"{what} failed (rc={rc}): {(err or out or '').strip()}. Nothing was applied")
        return out

    def ruleset(self):
        """`nft -j list ruleset` parsed, or None where nft is not installed."""
        nft = self.which("nft")
        if not nft:
            return None
        out = self.run([nft, "-j", "list", "ruleset"], "nft -j list ruleset")
        try:
            return json.loads(out or '{"nftables": []}')
        except ValueError as exc:
            raise BackendError(f"nft -j list ruleset printed something that is not JSON: {exc}") from None

    def boot_enabled(self):
        return self._run(["systemctl", "is-enabled", "--quiet", self.boot_unit])[0] == 0

    def take_over_boot(self, plan, opts):
        """With purge, what we purged must not come back at boot: netfilter-persistent would load its saved
        rules again beside ours. Disabled on confirm (not stopped: its stop action may flush)."""
        if not (opts.purge and plan.tools_installed):
            return
        plan.takeover = [
            u for u in COMPETING_BOOT_UNITS if self._run(["systemctl", "is-enabled", "--quiet", u])[0] == 0
        ]
        for unit in plan.takeover:
            plan.boot["commands"].append(["systemctl", "disable", unit])
            plan.before += f"boot: {unit} enabled\n"
            plan.after += f"boot: {unit} disabled (it would load the purged rules again)\n"
        plan.facts["boot_disabled"] = plan.takeover

    def judge(self, all_chains, packet, skip, hint):
        """Refuse, naming the chain, when a base chain outside `skip` would drop the controller."""
        if packet is None or all_chains is None:
            return
        blocked = hooks.judge(all_chains, packet, skip)
        if blocked:
            chain, outcome, why = blocked[0]
            what = "would drop" if outcome == hooks.DROP else "cannot be shown to admit"
            raise guard.Refused(
                f"lockout guard: {hooks.describe(chain)} {what} the controller's SSH connection "
                f"(tcp from {packet.source} to port {packet.port}) after this change: {why}. The kernel "
                f"runs every base chain on the hook and a drop in any of them is final; {hint}. "
                "Nothing was applied"
            )

    def other_tables(self, plan, opts, own):
        """iptables and ufw backends: a leftover `inet bulwark` is foreign, and the nftables tables they do
        not manage must still admit the controller (own: the chains the backend writes itself)."""
        doc = self.ruleset()
        self._leftover = bool(doc) and any(
            "table" in i and (i["table"]["family"], i["table"]["name"]) == OWNED for i in doc["nftables"]
        )
        if self._leftover:
            plan.foreign.append("table inet bulwark (left by the nftables backend)")

        def skip(chain):
            return own(chain) or _skip_coop(chain) or ((chain.family, chain.table) == OWNED and opts.purge)

        self.judge(
            doc and hooks.chains(doc),
            opts.packet,
            skip,
            f"the {self.name} backend does not manage nftables tables: remove it, or choose "
            "bulwark_firewall_backend: nftables",
        )

    def leftover_restore(self, plan, opts):
        """The restore step of a purged leftover `inet bulwark`."""
        if self._leftover and opts.purge:
            nft = self.which("nft")
            saved = self.run([nft, "list", "table", *OWNED], "saving table inet bulwark")
            path = os.path.join(opts.state_dir, "firewall.rollback.nft")
            plan.snapshot[path] = nftables.restore_script(saved)
            plan.restore.append(("nft -f: table inet bulwark as it was", [nft, "-f", path]))

    def plan(self, policy, opts):
        raise NotImplementedError

    def snapshot(self, plan, opts):
        """Fill plan.snapshot and plan.restore: what puts back everything the apply replaces."""
        raise NotImplementedError


def _skip_coop(chain):
    return managers.cooperating_name(chain.table)


class Nftables(Backend):
    name = "nftables"
    boot_unit = "nftables.service"
    packages = "the nftables package"

    def plan(self, policy, opts):
        plan = Plan(self.name)
        doc = self.ruleset()
        nft = self.which("nft")
        plan.tools_installed = doc is not None
        live = nftables.read_live(doc or {"nftables": []})
        purge = live.foreign if opts.purge else []
        if doc is not None:
            remaining = hooks.after_purge(hooks.chains(doc), [f.key for f in purge])
            hint = (
                "the purge takes over tables on the input and forward hooks only: remove this chain, or "
                "admit the controller in it"
                if opts.purge
                else "it is not managed by bulwark and purge is false: set firewall_purge: true (the purge "
                "takes its tables or its policy over), or admit the controller in it"
            )
            self.judge(remaining, opts.packet, lambda c: (c.family, c.table) == OWNED or _skip_coop(c), hint)
        candidate = nftables.canonical(policy)
        persisted = self.read(opts.persist_path) or ""
        current = nftables.live_canonical(live, nftables.known_ids(policy, persisted))
        plan.foreign = [f.description for f in live.foreign]
        plan.changed = current != candidate or bool(purge)
        _diff(plan, current, candidate, opts.purge)
        plan.boot = {
            "files": [
                [opts.persist_path, nftables.persist_script(policy), 0o600],
                [NFT_CONF, nft_conf_text(opts.persist_path), 0o755],
            ],
            "commands": [["systemctl", "enable", self.boot_unit]],
        }
        self.take_over_boot(plan, opts)
        script = nftables.render(policy, [f.command for f in purge])
        path = os.path.join(opts.state_dir, "firewall.candidate.nft")
        if nft:
            plan.checks = [
                Step(
                    "nft -c (the candidate ruleset, checked by the kernel)",
                    [nft, "-c", "-f", path],
                    path,
                    script,
                )
            ]
        plan.steps = [
            Step(
                "nft -f (table inet bulwark and the purge, one transaction)", [nft, "-f", path], path, script
            )
        ]
        plan.facts["purge"] = [f.command for f in purge]
        self._live = live
        self._purge = purge
        return plan

    def snapshot(self, plan, opts):
        nft = self.which("nft")
        saved_owned = ""
        if self._live.owned_exists:
            saved_owned = self.run([nft, "list", "table", *OWNED], "saving table inet bulwark")
        touched = sorted({f.key[1:3] for f in self._purge})
        native, ipt = [], {}
        for fam, table in touched:
            save = self.which(f"{'ip6' if fam == 'ip6' else 'ip'}tables-nft-save")
            saved = ""
            if fam in ("ip", "ip6") and table in nftables.IPTABLES_TABLES and save:
                # nft cannot write back what iptables-nft wrote (its xt matches): iptables-nft-save can,
                # unless the table was written by nft itself ("incompatible"), which nft can write back
                saved = self.run([save, "-t", table], f"saving the {fam} {table} table")
            if f"*{table}" in saved.split():
                ipt.setdefault(fam, []).append(saved)
            else:
                native.append(self.run([nft, "list", "table", fam, table], f"saving table {fam} {table}"))
        rollback = os.path.join(opts.state_dir, "firewall.rollback.nft")
        plan.snapshot = {rollback: nftables.restore_script(saved_owned, native)}
        plan.restore = [
            ("nft -f: the previous table inet bulwark and the foreign nftables tables", [nft, "-f", rollback])
        ]
        for fam, saves in sorted(ipt.items()):
            path = os.path.join(opts.state_dir, f"firewall.rollback.{fam}tables")
            plan.snapshot[path] = "".join(saves)
            restore = self.which(f"{'ip6' if fam == 'ip6' else 'ip'}tables-nft-restore")
            plan.restore.append(
                (f"{os.path.basename(restore)}: the foreign {fam} tables as they were", [restore, path])
            )


class Iptables(Backend):
    name = "iptables"
    boot_unit = "bulwark-firewall.service"
    packages = "the iptables and ipset packages"

    def plan(self, policy, opts):
        plan = Plan(self.name)
        ipt = {4: self.which("iptables"), 6: self.which("ip6tables")}
        ipset = self.which("ipset")
        plan.tools_installed = all(ipt.values()) and bool(ipset)
        saved = {4: iptables.Saved(), 6: iptables.Saved()}
        live_sets, self._ipset_saved = {}, ""
        variant = None
        if plan.tools_installed:
            version = self.run([ipt[4], "-V"], "iptables -V")
            variant = "nf_tables" if "nf_tables" in version else "legacy"
            plan.facts["variant"] = variant
            for fam in (4, 6):
                saved[fam] = iptables.parse_save(
                    self.run([f"{ipt[fam]}-save", "-t", "filter"], "iptables-save")
                )
            self._ipset_saved = self.run([ipset, "save"], "ipset save")
            live_sets = iptables.parse_ipset_save(self._ipset_saved)
        candidate = iptables.sets_canonical(policy)
        current = iptables.live_sets_canonical(live_sets, policy)
        for fam in (4, 6):
            candidate += iptables.canonical(policy, fam)
            current += iptables.live_canonical(saved[fam], iptables.known_ids(policy, fam), fam)
            plan.foreign += [
                f"IPv{fam} rule {spec} (admits traffic; not managed by bulwark)"
                for spec in saved[fam].foreign
            ]
        self.other_tables(
            plan,
            opts,
            lambda chain: (
                variant == "nf_tables" and chain.family in ("ip", "ip6") and chain.table == "filter"
            ),
        )
        plan.changed = current != candidate or (opts.purge and bool(plan.foreign))
        _diff(plan, current, candidate, opts.purge)
        ipt_path = {fam: ipt[fam] or f"/usr/sbin/ip{'6' if fam == 6 else ''}tables" for fam in (4, 6)}
        plan.boot = {
            "files": [
                [IPTABLES_FILES["ipset"], iptables.ipset_script(policy), 0o600],
                [IPTABLES_FILES[4], iptables.restore_script(policy, 4), 0o600],
                [IPTABLES_FILES[6], iptables.restore_script(policy, 6), 0o600],
                [IPTABLES_UNIT, iptables_unit(ipset or "/usr/sbin/ipset", ipt_path[4], ipt_path[6]), 0o644],
            ],
            "commands": [["systemctl", "daemon-reload"], ["systemctl", "enable", self.boot_unit]],
        }
        self.take_over_boot(plan, opts)
        state = opts.state_dir
        ipset_path = os.path.join(state, "firewall.candidate.ipset")
        plan.steps = [
            Step(
                "ipset restore (the bw-* sets, each swapped in whole)",
                [ipset, "restore", "-exist", "-file", ipset_path],
                ipset_path,
                iptables.ipset_script(policy, set(live_sets)),
            )
        ]
        for fam in (4, 6):
            path = os.path.join(state, f"firewall.candidate.v{fam}")
            script = iptables.restore_script(policy, fam, saved[fam], opts.purge)
            plan.steps.append(
                Step(
                    f"ip{'6' if fam == 6 else ''}tables-restore (IPv{fam}, one COMMIT)",
                    [f"{ipt[fam]}-restore", "--noflush", path],
                    path,
                    script,
                )
            )
            if plan.tools_installed:
                plan.checks.append(
                    Step(
                        f"ip{'6' if fam == 6 else ''}tables-restore --test (IPv{fam})",
                        [f"{ipt[fam]}-restore", "--test", "--noflush", path],
                        path,
                        script,
                    )
                )
        if self._leftover and opts.purge:
            path = os.path.join(state, "firewall.candidate.nft")
            text = f"delete table {nftables.FAMILY} {nftables.TABLE}\n"
            plan.steps.append(
                Step("nft -f (delete table inet bulwark)", [self.which("nft"), "-f", path], path, text)
            )
        return plan

    def snapshot(self, plan, opts):
        ipt = {4: self.which("iptables"), 6: self.which("ip6tables")}
        ipset = self.which("ipset")
        state = opts.state_dir
        rb = {k: os.path.join(state, f"firewall.rollback.{k}") for k in ("ipset", "v4", "v6")}
        plan.snapshot = {rb["ipset"]: iptables.ipset_rollback(self._ipset_saved)}
        plan.restore = [
            ("ipset restore: the bw-* sets as they were", [ipset, "restore", "-exist", "-file", rb["ipset"]])
        ]
        for fam in (4, 6):
            plan.snapshot[rb[f"v{fam}"]] = self.run([f"{ipt[fam]}-save", "-t", "filter"], "iptables-save")
            plan.restore.append(
                (
                    f"iptables-restore: the IPv{fam} filter table as it was",
                    [f"{ipt[fam]}-restore", rb[f"v{fam}"]],
                )
            )
        self.leftover_restore(plan, opts)


class Ufw(Backend):
    name = "ufw"
    boot_unit = "ufw.service"
    packages = "the ufw package"
    step_seconds = 15  # each ufw command reloads UFW's whole ruleset: a change took 9-11 s on a loaded host

    def plan(self, policy, opts):
        plan = Plan(self.name)
        ufw_bin = self.which("ufw")
        plan.tools_installed = bool(ufw_bin)
        ufw.refuse(policy, {"icmp_echo": policy.icmp_echo})
        live = {4: ufw.parse_tuples(self.read(UFW_FILES[0])), 6: ufw.parse_tuples(self.read(UFW_FILES[1]))}
        self._enabled = managers.ufw_enabled(self.read(UFW_FILES[3]) or "")
        current = ufw.canonical(live, ufw.parse_defaults(self.read(UFW_FILES[2])), self._enabled)
        candidate = ufw.canonical(ufw.wanted_tuples(policy), ufw.defaults(policy), True)
        # UFW's own iptables-nft tables are judged by the guard on the policy
        self.other_tables(plan, opts, lambda chain: chain.family in ("ip", "ip6") and chain.table == "filter")
        plan.changed = current != candidate or (opts.purge and self._leftover)
        _diff(plan, current, candidate, opts.purge)
        plan.boot = {"files": [], "commands": [["systemctl", "enable", self.boot_unit]]}
        plan.steps = [
            Step(f"ufw {' '.join(argv)}", [ufw_bin, *argv], None, None) for argv in ufw.commands(policy, live)
        ]
        if self._enabled:
            plan.steps.append(Step("ufw reload", [ufw_bin, "reload"], None, None))
        else:
            plan.steps.append(Step("ufw enable", [ufw_bin, "--force", "enable"], None, None))
        if self._leftover and opts.purge:
            plan.steps.append(
                Step(
                    "nft delete table inet bulwark",
                    [self.which("nft"), "delete", "table", *OWNED],
                    None,
                    None,
                )
            )
        return plan

    def snapshot(self, plan, opts):
        ufw_bin = self.which("ufw")
        plan.snapshot, plan.restore = {}, []
        for path in UFW_FILES:
            text = self.read(path)
            if text is None:
                plan.restore.append((f"remove {path} (it did not exist)", ["rm", "-f", path]))
                continue
            snap = os.path.join(opts.state_dir, "firewall.rollback." + path.strip("/").replace("/", "_"))
            plan.snapshot[snap] = text
            plan.restore.append((f"put back {path}", ["cp", snap, path]))
        if self._enabled:
            plan.restore.append(("ufw reload", [ufw_bin, "reload"]))
        else:
            plan.restore.append(("ufw disable", [ufw_bin, "--force", "disable"]))
        self.leftover_restore(plan, opts)


BACKENDS = {b.name: b for b in (Nftables, Iptables, Ufw)}
