"""iptables backend, pure: the same policy as iptables-restore scripts (IPv4 and IPv6) and an ipset
restore script for the named sets (10,000 entries are one hash:net lookup, not 10,000 rules).

The module owns the chains BULWARK-INPUT, BULWARK-FORWARD, BULWARK-OUTPUT (jumped to first from the
built-in chains, whose policies are the default policies) and the ipsets named ``bw-*``. Docker's and
fail2ban's chains and jumps are left alone; other rules that accept traffic in INPUT/FORWARD are foreign.
Works with both variants of iptables (legacy and nf_tables): the module detects which one runs.
"""

import ipaddress
import shlex

from . import managers
from .lines import Line as _Line
from .model import PolicyError

CHAINS = {"input": "BULWARK-INPUT", "forward": "BULWARK-FORWARD", "output": "BULWARK-OUTPUT"}
BUILTIN = {"input": "INPUT", "forward": "FORWARD", "output": "OUTPUT"}
ICMP_TYPES = ("destination-unreachable", "time-exceeded", "parameter-problem")
ICMPV6_TYPES = ("destination-unreachable", "packet-too-big", "time-exceeded", "parameter-problem")
# What IPv6 needs, admitted always: nftables.IPV6_NEEDS says why. ip6tables names ND types; MLD by number.
ND_TYPES = (
    "router-solicitation",
    "router-advertisement",
    "neighbour-solicitation",
    "neighbour-advertisement",
    "redirect",
)
MLD_TYPES = ("130", "131", "132", "143")
DHCPV6_REPLIES = "-s fe80::/10 -d fe80::/10 -p udp --sport 547 --dport 546 -j ACCEPT"
DHCPV6_REQUESTS = "-d ff02::1:2 -p udp --sport 546 --dport 547 -j ACCEPT"
_PROTO = {"tcp": "tcp", "udp": "udp", "icmp": "icmp", "icmpv6": "ipv6-icmp"}


def set_name(name, family):
    return f"bw-{name}-{family}"


class Line(_Line):
    """A rendered iptables rule: chain, args (without comment), user comment."""

    @property
    def args(self):
        return self.body

    def restore(self):
        # In double quotes, iptables-restore takes every character but '"' and '\\' as it is (a single quote
        # too); the model keeps those two out of comments.
        comment = f"{self.id} {self.comment}".strip()
        head, _unused, target = self.args.rpartition(" -j ")
        if not head and not self.args.startswith("-j "):
            head, target = self.args, ""
        match = f'{head} -m comment --comment "{comment}"'.strip()
        if self.args.startswith("-j "):
            return f'-A {CHAINS[self.chain]} -m comment --comment "{comment}" {self.args}'
        return (
            f"-A {CHAINS[self.chain]} {match} -j {target}" if target else f"-A {CHAINS[self.chain]} {match}"
        )

    def canonical(self):
        return f"{self.chain}: {self.args}"


def ifname(pattern):
    """The model's interface (a trailing '*' matches any suffix) in iptables' syntax (a trailing '+')."""
    return pattern[:-1] + "+" if pattern.endswith("*") else pattern


def _ports(ports):
    return ",".join(str(lo) if lo == hi else f"{lo}:{hi}" for lo, hi in ports)


def _proto_port(rule, routed):
    """One argument string per protocol (iptables matches one protocol per rule)."""
    if rule.protos == ("any",):
        return [""]
    out = []
    for proto in rule.protos:
        args = f"-p {_PROTO[proto]}"
        if rule.ports:
            if routed:
                if len(rule.ports) != 1:
                    raise PolicyError("rules: a routed rule takes one port or range on the iptables backend")
                lo, hi = rule.ports[0]
                args += f" -m conntrack --ctorigdstport {lo if lo == hi else f'{lo}:{hi}'}"
            elif len(rule.ports) == 1 and rule.ports[0][0] == rule.ports[0][1]:
                args += f" --dport {rule.ports[0][0]}"
            else:
                args += f" -m multiport --dports {_ports(rule.ports)}"
        out.append(args)
    return out


def _addr_terms(rule, family):
    """Source/destination matches for one family: a list of argument strings ([""] = no match needed),
    or [] when the rule does not apply to this family."""
    version = 4 if family == 4 else 6
    srcs = [n for n in rule.sources if n.version == version]
    dsts = [n for n in rule.destinations if n.version == version]
    has_src = bool(rule.sources or rule.sets)
    has_dst = bool(rule.destinations)
    src_terms = [f"-s {','.join(str(n) for n in srcs)}"] if srcs else []
    src_terms += [f"-m set --match-set {set_name(s, family)} src" for s in rule.sets]
    dst_terms = [f"-d {','.join(str(n) for n in dsts)}"] if dsts else []
    if (has_src and not src_terms) or (has_dst and not dst_terms):
        return []
    return [f"{a} {b}".strip() for a in (src_terms or [""]) for b in (dst_terms or [""])]


def _hashlimit(rate, burst, name):
    """New connections above rate per source address (a per-source meter, like nftables' dynamic set)."""
    return (
        f"-m conntrack --ctstate NEW -m hashlimit --hashlimit-above {rate} --hashlimit-burst {burst} "
        f"--hashlimit-mode srcip --hashlimit-name {name}"
    )


def rule_lines(index, rule, family):
    chain = {"in": "input", "out": "output", "routed": "forward"}[rule.direction]
    out = []
    iface = ""
    if rule.interface:
        flag = "-o" if rule.direction == "out" else "-i"
        iface = f"{flag} {ifname(rule.interface)}"
    for pp in _proto_port(rule, rule.direction == "routed"):
        for addr in _addr_terms(rule, family):
            head = " ".join(x for x in (iface, pp, addr) if x)
            if rule.direction == "routed":
                head = f"{head} -m conntrack --ctstate DNAT".strip() if rule.ports else head
            if rule.rate_limit:
                limit = _hashlimit(rule.rate_limit, rule.burst, f"bw-rl{index}-{family}")
                out.append(Line(chain, f"{head} {limit} -j DROP".strip(), rule.comment))
            out.append(Line(chain, f"{head} -j {rule.action.upper()}".strip(), rule.comment))
    return out


def _input_lines(policy, family):
    """The input chain before the rules: loopback, flows, needed ICMP(v6), SSH."""
    out = [
        Line("input", "-i lo -j ACCEPT", "loopback"),
        Line("input", "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", "established flows"),
        Line("input", "-m conntrack --ctstate INVALID -j DROP", "invalid packets"),
    ]
    if family == 4:
        types = ICMP_TYPES + (("echo-request",) if policy.icmp_echo else ())
        out += [Line("input", f"-p icmp --icmp-type {t} -j ACCEPT", "needed ICMP") for t in types]
    else:
        types = ICMPV6_TYPES + (("echo-request",) if policy.icmp_echo else ())
        out += [Line("input", f"-p ipv6-icmp --icmpv6-type {t} -j ACCEPT", "needed ICMPv6") for t in types]
        out += [
            Line(
                "input", f"-p ipv6-icmp --icmpv6-type {t} -m hl --hl-eq 255 -j ACCEPT", "neighbour discovery"
            )
            for t in ND_TYPES
        ]
        out += [
            Line(
                "input",
                f"-s fe80::/10 -p ipv6-icmp --icmpv6-type {t} -j ACCEPT",
                "multicast listener discovery",
            )
            for t in MLD_TYPES
        ]
        out.append(Line("input", DHCPV6_REPLIES, "DHCPv6 client replies"))
    port = policy.ssh_port
    admin = set_name("admin", family)
    out.append(
        Line(
            "input",
            f"-p tcp --dport {port} -m set --match-set {admin} src -j ACCEPT",
            "SSH from the admin networks",
        )
    )
    if not policy.ssh_restricted:
        if policy.ssh_rate_limit:
            limit = _hashlimit(policy.ssh_rate_limit, policy.ssh_burst, f"bw-ssh-{family}")
            out.append(Line("input", f"-p tcp --dport {port} {limit} -j DROP", "SSH rate limit per source"))
        out.append(Line("input", f"-p tcp --dport {port} -j ACCEPT", "SSH"))
    return out


def lines(policy, family):
    out = _input_lines(policy, family)
    for i, rule in enumerate(policy.rules):
        if rule.direction == "in":
            out += rule_lines(i, rule, family)
    if policy.routed == "drop":
        out.append(
            Line("forward", "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", "established flows")
        )
        out.append(Line("forward", "-m conntrack --ctstate INVALID -j DROP", "invalid packets"))
        if policy.docker:
            for iface in policy.docker_interfaces:
                out.append(Line("forward", f"-i {ifname(iface)} -j ACCEPT", "Docker containers going out"))
    for i, rule in enumerate(policy.rules):
        if rule.direction == "routed":
            out += rule_lines(i, rule, family)
    if policy.outgoing == "drop":
        out.append(Line("output", "-o lo -j ACCEPT", "loopback"))
        out.append(
            Line("output", "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", "established flows")
        )
        proto = "icmp" if family == 4 else "ipv6-icmp"
        out.append(Line("output", f"-p {proto} -j ACCEPT", "ICMP and neighbour discovery"))
        if family == 6:
            out.append(Line("output", DHCPV6_REQUESTS, "DHCPv6 client requests"))
    for i, rule in enumerate(policy.rules):
        if rule.direction == "out":
            out += rule_lines(i, rule, family)
    return out


def _set_entries(nets):
    """A hash:net set's entries: it takes prefixes of 1 to 32 (128) bits, so /0 goes in as its two halves."""
    return [str(half) for n in nets for half in (n.subnets(new_prefix=1) if n.prefixlen == 0 else [n])]


def ipsets(policy):
    """(name, family, entries) of every set, admin first."""
    out = []
    for name, (v4, v6) in {"admin": policy.admin, **policy.sets}.items():
        out.append((set_name(name, 4), "inet", _set_entries(v4)))
        out.append((set_name(name, 6), "inet6", _set_entries(v6)))
    return out


def ipset_script(policy, existing=()):
    """`ipset restore -exist` input: each set is filled under a temporary name and swapped in (atomic per
    set). existing: the names of sets already on the host. `create -exist` fails on a live set whose
    maxelem differs, so a live set is never re-created: the swap gives it the new set's size, and a set
    that grows past its maxelem is swapped through a new set created large enough."""
    out = []
    for name, family, entries in ipsets(policy):
        size = max(65536, 2 * len(entries))
        tmp = f"{name}-n"
        if name not in existing:
            out.append(f"create {name} hash:net family {family} maxelem {size} -exist")
        out.append(f"destroy {tmp}")  # a leftover of an interrupted run, perhaps of another size
        out.append(f"create {tmp} hash:net family {family} maxelem {size}")
        out += [f"add {tmp} {e}" for e in entries]
        out.append(f"swap {tmp} {name}")
        out.append(f"destroy {tmp}")
    return "\n".join(out) + "\n"


def policies(policy):
    return {"INPUT": policy.incoming, "FORWARD": policy.routed, "OUTPUT": policy.outgoing}


def restore_script(policy, family, live=None, purge=True):
    """iptables-restore --noflush input for one family: our chains rebuilt, jumps first, policies set,
    foreign accepting rules deleted, in one COMMIT (atomic for the table)."""
    live = live or Saved()
    out = ["*filter"]
    for chain, pol in policies(policy).items():
        out.append(f":{chain} {pol.upper()} [0:0]")
    for chain in CHAINS.values():
        out.append(f":{chain} - [0:0]")  # declared chains are flushed by iptables-restore --noflush
    if purge:
        out += [f"-D {spec}" for spec in live.foreign]
    for key, builtin in BUILTIN.items():
        jump = f"{builtin} -j {CHAINS[key]}"
        rules = live.rules.get(builtin, [])
        if rules[:1] != [jump]:
            if jump in rules:
                out.append(f"-D {jump}")
            out.append(f"-I {builtin} 1 -j {CHAINS[key]}")
    out += [ln.restore() for ln in lines(policy, family)]
    out.append("COMMIT")
    return "\n".join(out) + "\n"


class Saved:
    """What `iptables-save -t filter` says."""

    def __init__(self):
        self.policies = {}
        self.rules = {}  # chain -> list of "CHAIN spec" as saved (without -A)
        self.owned = {}  # our chain -> list of rule ids (None for rules we did not write)
        self.foreign = []  # "CHAIN spec" of foreign accepting rules


def _is_coop(chain, spec):
    words = spec.split()
    target = words[words.index("-j") + 1] if "-j" in words else ""
    if managers.cooperating_name(target) or managers.cooperating_name(chain):
        return True
    ifaces = [words[i + 1] for i, w in enumerate(words) if w in ("-i", "-o") and i + 1 < len(words)]
    return any(managers.cooperating_interface(i) for i in ifaces)


def parse_save(text, table_name="filter"):
    """`iptables-save` output -> Saved, for one table (the filter table unless named)."""
    saved = Saved()
    table = None
    for raw in (text or "").splitlines():
        line = raw.strip()
        if line.startswith("*"):
            table = line[1:]
            continue
        if table != table_name:
            continue
        if line.startswith(":"):
            name, pol = line[1:].split()[:2]
            saved.policies[name] = pol
            if name in CHAINS.values():
                saved.owned.setdefault(name, [])
        elif line.startswith("-A "):
            chain, _unused, spec = line[3:].partition(" ")
            entry = f"{chain} {spec}"
            saved.rules.setdefault(chain, []).append(entry)
            if table_name == "filter" and chain in CHAINS.values():
                rid = None
                words = shlex.split(spec)
                if "--comment" in words:
                    comment = words[words.index("--comment") + 1]
                    rid = comment.split()[0] if comment.startswith("bw:") else None
                saved.owned.setdefault(chain, []).append(rid)
            elif table_name == "filter" and chain in ("INPUT", "FORWARD"):
                words = spec.split()
                target = words[words.index("-j") + 1] if "-j" in words else ""
                if target in CHAINS.values() or _is_coop(chain, spec):
                    continue
                if target == "ACCEPT" or (target and target not in ("DROP", "REJECT", "LOG", "RETURN")):
                    saved.foreign.append(entry)
    return saved


def parse_ipset_save(text):
    """`ipset save` -> {set name: sorted normalised entries} for bw-* sets."""
    sets = {}
    for raw in (text or "").splitlines():
        words = raw.split()
        if len(words) >= 2 and words[0] == "create" and words[1].startswith("bw-"):
            sets.setdefault(words[1], [])
        elif len(words) >= 3 and words[0] == "add" and words[1].startswith("bw-"):
            sets.setdefault(words[1], []).append(str(ipaddress.ip_network(words[2], strict=False)))
    return {k: sorted(v) for k, v in sets.items()}


def canonical(policy, family):
    out = [f"iptables (IPv{family}) filter"]
    for chain, pol in policies(policy).items():
        out.append(f"policy {chain} {pol.upper()}")
    for key, builtin in BUILTIN.items():
        out.append(f"jump {builtin} -> {CHAINS[key]} first")
    out += [ln.canonical() for ln in lines(policy, family)]
    return "\n".join(out) + "\n"


def sets_canonical(policy):
    out = []
    for name, _family, entries in ipsets(policy):
        out.append(f"ipset {name}")
        out += [f"ipset {name}: {e}" for e in sorted(entries)]
    return "\n".join(out) + "\n"


def live_canonical(saved, known, family):
    out = [f"iptables (IPv{family}) filter"]
    for chain in ("INPUT", "FORWARD", "OUTPUT"):
        out.append(f"policy {chain} {saved.policies.get(chain, '?')}")
    for key, builtin in BUILTIN.items():
        first = saved.rules.get(builtin, [])[:1] == [f"{builtin} -j {CHAINS[key]}"]
        out.append(f"jump {builtin} -> {CHAINS[key]} {'first' if first else 'missing'}")
    for key, chain in CHAINS.items():
        for rid in saved.owned.get(chain, []):
            out.append(known.get(rid, f"{key}: <rule not written by bulwark>"))
    return "\n".join(out) + "\n"


def live_sets_canonical(sets, policy):
    out = []
    for name, _family, _entries in ipsets(policy):
        if name in sets:
            out.append(f"ipset {name}")
            out += [f"ipset {name}: {e}" for e in sets[name]]
    return "\n".join(out) + "\n"


def known_ids(policy, family):
    return {ln.id: ln.canonical() for ln in lines(policy, family)}


def ipset_rollback(ipset_save_text):
    """`ipset restore -exist` input that puts the bw-* sets back as `ipset save` printed them, each
    rebuilt under a temporary name and swapped in: the live set may have another maxelem by now (an
    apply never destroys a bw-* set, so each one saved is there to swap with)."""
    out = []
    for raw in (ipset_save_text or "").splitlines():
        words = raw.split()
        if len(words) >= 2 and words[1].startswith("bw-") and not words[1].endswith(("-n", "-r")):
            tmp = f"{words[1]}-r"
            if words[0] == "create":
                out += [f"destroy {tmp}", " ".join(["create", tmp, *words[2:]])]
            elif words[0] == "add":
                out.append(" ".join(["add", tmp, *words[2:]]))
    names = [w.split()[1] for w in (ipset_save_text or "").splitlines() if w.startswith("create ")]
    for name in names:
        if name.startswith("bw-") and not name.endswith(("-n", "-r")):
            out += [f"swap {name}-r {name}", f"destroy {name}-r"]
    return "\n".join(out) + "\n"


def rollback(script, save_text, tool, restore, purge):
    """The rollback of one family's apply (a rollback.Script): from `iptables-save -t filter` as it was
    before the apply, bulwark's chains and the built-in chains' policies as they were (one transaction),
    the jumps to our chains where they were, the foreign rules the purge deleted back where they were, and
    our chains gone where the apply created them. Rules others added since stay."""
    saved = parse_save(save_text)
    existed = [chain for chain in CHAINS.values() if chain in saved.owned]
    owned = ["*filter"]
    owned += [f":{chain} {saved.policies.get(chain, 'ACCEPT')} [0:0]" for chain in BUILTIN.values()]
    owned += [f":{chain} - [0:0]" for chain in existed]  # declared: flushed, then refilled as saved
    owned += [f"-A {rule}" for chain in existed for rule in saved.rules.get(chain, [])]
    owned.append("COMMIT")
    script.comment("bulwark's chains and the built-in chains' policies as they were, in one transaction")
    script.run(restore, "--noflush", script.file("owned", "\n".join(owned) + "\n"))
    for key, builtin in BUILTIN.items():
        jump = f"{builtin} -j {CHAINS[key]}"
        rules = saved.rules.get(builtin, [])
        if rules[:1] == [jump]:
            continue  # the apply leaves a jump that comes first where it is
        script.comment(f"the jumps from {builtin} to {CHAINS[key]} where they were")
        script.run("unjump", tool, builtin, CHAINS[key])
        for index, rule in enumerate(rules):
            if rule == jump:
                script.readd((tool, restore), "filter", builtin, rules, index)
    if purge and saved.foreign:
        script.comment("the rules the purge deleted, where they were")
        for builtin in ("INPUT", "FORWARD"):
            rules = saved.rules.get(builtin, [])
            for index, rule in enumerate(rules):
                if rule in saved.foreign:
                    script.readd((tool, restore), "filter", builtin, rules, index)
    created = [chain for chain in CHAINS.values() if chain not in existed]
    if created:
        script.comment("our chains that the apply created")
        for chain in created:
            script.run("unchain", tool, chain)
