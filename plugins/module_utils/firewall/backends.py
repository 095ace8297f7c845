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

from ansible_collections.bulwark.hardening.plugins.module_utils.host import plan as host_plan

from . import conntrack, guard, hooks, iptables, managers, nftables, rollback, ufw
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


def apply_plan(plan):
    """The apply steps as host operations: each writes its script (root-only) and runs its command;
    an empty plan when the live firewall already is the policy."""
    if not plan.changed:
        return host_plan.Plan()
    return host_plan.Plan().add(
        *(
            host_plan.Command(
                tuple(step.argv), what=step.what, inputs=((step.path, step.text),) if step.path else ()
            )
            for step in plan.steps
        )
    )


def snapshot_ops(plan):
    """The writes that save what the restore steps read (root-only), each undone if arming fails."""
    return [
        host_plan.Write(
            path, text, 0o600, what=f"save {path}", inverse=host_plan.Remove(path, what=f"remove {path}")
        )
        for path, text in plan.snapshot.items()
        if path
    ]


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

    def diff(self):
        return {"before": self.before, "after": self.after, "before_header": "live", "after_header": "policy"}


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

    def live_sets(self, policy):
        """After plan: the live named sets {name: (v4, v6)} (what the firewall admits now, whatever the
        last run recorded), or None where the backend has none to read back."""
        return None

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
        odd = nftables.unwritable(purge)
        if odd is not None:
            raise BackendError(
                f"purge: {odd.description.split(' (')[0]!r} has a name nft cannot read back as written, so "
                "the purge cannot name it: remove it by hand, or set purge: false. Nothing was applied"
            )
        if doc is not None:
            self._guard_after_purge(doc, purge, opts)
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
        self._save_purged_rules(purge)
        return plan

    def _guard_after_purge(self, doc, purge, opts):
        """Every base chain the controller's packet meets after the purge must accept it."""
        remaining = hooks.after_purge(hooks.chains(doc), [f.key for f in purge])
        hint = (
            "the purge takes over tables on the input and forward hooks only: remove this chain, or "
            "admit the controller in it"
            if opts.purge
            else "it is not managed by bulwark and purge is false: set firewall_purge: true (the purge "
            "takes its tables or its policy over), or admit the controller in it"
        )
        self.judge(remaining, opts.packet, lambda c: (c.family, c.table) == OWNED or _skip_coop(c), hint)

    def _save_purged_rules(self, purge):
        """The rules the purge deletes from tables shared with Docker or fail2ban, as iptables-nft writes
        them back: read now, so that a table it cannot write back is refused before anything (also in
        check mode)."""
        chains = sorted({f.key[1:4] for f in purge if f.key[0] == "rule"})
        tables = {key[:2]: self._iptables_save(*key[:2]) for key in chains}
        self._chain_saves = {key: self._chain_save(key, tables[key[:2]]) for key in chains}

    def live_sets(self, policy):
        return conntrack.nft_live_sets(self._live.sets) if self._live.owned_exists else {}

    def snapshot(self, plan, opts):
        """The rollback puts back the owned table and what the purge removed or changed, one object at a
        time, and leaves what others add during the confirm window (see rollback)."""
        nft = self.which("nft")
        saved_owned = ""
        if self._live.owned_exists:
            saved_owned = self.run([nft, "list", "table", *OWNED], "saving table inet bulwark")
        script = rollback.Script(opts.state_dir, "firewall.rollback")
        deleted = sorted({f.key[1:3] for f in self._purge if f.key[0] == "table"})
        native, ipt_tables = [], []
        for fam, table in deleted:
            saved = self._iptables_save(fam, table)
            if saved:
                ipt_tables.append((fam, table, saved))
            else:
                native.append(
                    (fam, table, self.run([nft, "list", "table", fam, table], f"saving {fam} {table}"))
                )
        script.nft_tables(nft, nftables.restore_script(saved_owned), native)
        for fam, table, saved in ipt_tables:
            restore = self._iptables_tool(fam, "-restore")
            script.iptables_nft_table(nft, restore, (fam, table), self._live.handles[(fam, table)], saved)
        purged_rules = {}
        for f in self._purge:
            if f.key[0] == "rule":
                purged_rules.setdefault(f.key[1:4], set()).add(f.key[4])
        if purged_rules:
            script.comment(
                "the rules the purge deleted from tables shared with Docker or fail2ban, where they were"
            )
        for (fam, table, chain), handles in sorted(purged_rules.items()):
            rules = self._chain_saves[(fam, table, chain)]
            tools = (self._iptables_tool(fam), self._iptables_tool(fam, "-restore"))
            order = self._live.chain_rules.get((fam, table, chain), [])
            for index, handle in enumerate(order):
                if handle in handles:
                    script.readd(tools, table, chain, rules, index)
        for f in self._purge:
            if f.key[0] == "policy":
                script.nft_policy(nft, *f.key[1:4], "drop")
        plan.snapshot = script.snapshot()
        plan.restore = [
            (
                "the previous table inet bulwark, and what the purge removed or changed (what others added "
                "since stays)",
                script.argv(),
            )
        ]

    def _iptables_tool(self, fam, suffix=""):
        return self.which(f"{'ip6' if fam == 'ip6' else 'ip'}tables-nft{suffix}")

    def _iptables_save(self, fam, table):
        """`iptables-nft-save -t table`, or "" where iptables-nft cannot write the table back (not an
        iptables table, iptables-nft not installed, or a table nft itself wrote: "incompatible")."""
        save = self._iptables_tool(fam, "-save")
        if fam not in ("ip", "ip6") or table not in nftables.IPTABLES_TABLES or not save:
            return ""
        saved = self.run([save, "-t", table], f"saving the {fam} {table} table")
        return saved if f"*{table}" in saved.split() else ""

    def _chain_save(self, key, saved):
        """The rules of an iptables-nft chain (family, table, chain) as iptables-nft-save printed them
        (saved; "CHAIN spec", in order), one for each rule `nft -j list ruleset` listed, or BackendError."""
        fam, table, chain = key
        if not saved:
            raise BackendError(
                f"purge: table {fam} {table} is shared with Docker or fail2ban, and iptables-nft cannot "
                "write back the foreign rules the purge would remove (it is not installed, or nft itself "
                "wrote rules there), so a rollback could not put them back without touching Docker's or "
                "fail2ban's: remove them by hand, or set purge: false. Nothing was applied"
            )
        rules = iptables.parse_save(saved, table).rules.get(chain, [])
        if len(rules) != len(self._live.chain_rules.get((fam, table, chain), [])):
            raise BackendError(
                f"the rules of chain {fam} {table} {chain} changed while the firewall read them; run again. "
                "Nothing was applied"
            )
        return rules


class Iptables(Backend):
    name = "iptables"
    boot_unit = "bulwark-firewall.service"
    packages = "the iptables and ipset packages"

    def plan(self, policy, opts):
        plan = Plan(self.name)
        ipt = {4: self.which("iptables"), 6: self.which("ip6tables")}
        ipset = self.which("ipset")
        plan.tools_installed = all(ipt.values()) and bool(ipset)
        saved, live_sets, variant = self._read_saved(plan, ipt, ipset)
        self._policy, self._live_sets = policy, live_sets
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
        plan.boot = self._boot(policy, ipt, ipset)
        self.take_over_boot(plan, opts)
        self._steps(plan, policy, opts, (ipt, ipset), (saved, live_sets))
        return plan

    def _read_saved(self, plan, ipt, ipset):
        """The live filter tables (iptables-save) and bw-* sets (ipset save), and the variant: empty where
        the tools are not installed yet."""
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
        return saved, live_sets, variant

    def _boot(self, policy, ipt, ipset):
        """What the confirmation persists: the saved sets and rules and the unit that loads them."""
        ipt_path = {fam: ipt[fam] or f"/usr/sbin/ip{'6' if fam == 6 else ''}tables" for fam in (4, 6)}
        return {
            "files": [
                [IPTABLES_FILES["ipset"], iptables.ipset_script(policy), 0o600],
                [IPTABLES_FILES[4], iptables.restore_script(policy, 4), 0o600],
                [IPTABLES_FILES[6], iptables.restore_script(policy, 6), 0o600],
                [IPTABLES_UNIT, iptables_unit(ipset or "/usr/sbin/ipset", ipt_path[4], ipt_path[6]), 0o644],
            ],
            "commands": [["systemctl", "daemon-reload"], ["systemctl", "enable", self.boot_unit]],
        }

    def _steps(self, plan, policy, opts, tools, found):
        """The apply steps (sets, then each family's one COMMIT) and check mode's validations. tools: the
        iptables commands by family and ipset; found: the live rules by family and the live sets."""
        (ipt, ipset), (saved, live_sets) = tools, found
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

    def live_sets(self, policy):
        return conntrack.ipset_live_sets(self._live_sets, policy)

    def snapshot(self, plan, opts):
        """The rollback puts back the bw-* sets, bulwark's chains, jumps and policies, and the rules the
        purge deleted, one at a time, and leaves what others add during the confirm window (see rollback)."""
        ipt = {4: self.which("iptables"), 6: self.which("ip6tables")}
        ipset = self.which("ipset")
        state = opts.state_dir
        sets = os.path.join(state, "firewall.rollback.ipset")
        plan.snapshot = {sets: iptables.ipset_rollback(self._ipset_saved)}
        plan.restore = [
            ("ipset restore: the bw-* sets as they were", [ipset, "restore", "-exist", "-file", sets])
        ]
        for fam in (4, 6):
            script = rollback.Script(state, f"firewall.rollback.v{fam}")
            saved = self.run([f"{ipt[fam]}-save", "-t", "filter"], "iptables-save")
            iptables.rollback(script, saved, ipt[fam], f"{ipt[fam]}-restore", opts.purge)
            plan.snapshot.update(script.snapshot())
            plan.restore.append(
                (
                    f"the IPv{fam} filter table: bulwark's chains, jumps and policies as they were, the "
                    "purged rules back (what others added since stays)",
                    script.argv(),
                )
            )
        created = [
            name for name, _family, _entries in iptables.ipsets(self._policy) if name not in self._live_sets
        ]
        if created:
            path = os.path.join(state, "firewall.rollback.ipset-created")
            plan.snapshot[path] = "".join(f"destroy {name}\n" for name in created)
            plan.restore.append(
                (
                    "ipset destroy: the bw-* sets the apply created",
                    [ipset, "restore", "-exist", "-file", path],
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
