"""nftables backend, pure: render the policy as ONE atomic `nft -f` script, read `nft -j list ruleset`,
tell what the module owns from what it must leave alone, and compare both in a canonical text form.

The module owns the table ``inet bulwark``. Cooperating owners are left alone: Docker (its chains, its
NAT, the embedded DNS rules ``DOCKER_OUTPUT``/``DOCKER_POSTROUTING``), fail2ban (``f2b-*`` tables and
chains). Anything else that admits traffic in the input or forward hook is foreign: purged, or reported.
"""

import collections
import ipaddress
import re

from . import managers
from .lines import Line as _Line

TABLE = "bulwark"
FAMILY = "inet"
HEADER = (
    "#!/usr/sbin/nft -f\n"
    "# Managed by bulwark.hardening (firewall module): edits are replaced on the next run.\n"
)
ICMP_TYPES = ("destination-unreachable", "time-exceeded", "parameter-problem")
ICMPV6_TYPES = ("destination-unreachable", "packet-too-big", "time-exceeded", "parameter-problem")
# What IPv6 needs to keep working, admitted always (as UFW's before6.rules does): neighbour discovery
# (133-137, only with hop limit 255, i.e. from the link itself, RFC 4861), multicast listener discovery
# from link-local sources (RFC 3810), and the DHCPv6 server's replies, which conntrack cannot match: the
# client asked ff02::1:2 and the answer comes from the server's own link-local address.
ND_TYPES = (
    "nd-router-solicit",
    "nd-router-advert",
    "nd-neighbor-solicit",
    "nd-neighbor-advert",
    "nd-redirect",
)
MLD_TYPES = ("mld-listener-query", "mld-listener-report", "mld-listener-done", "mld2-listener-report")
IPV6_NEEDS = (
    (f"icmpv6 type {{ {', '.join(ND_TYPES)} }} ip6 hoplimit 255 accept", "neighbour discovery"),
    (f"ip6 saddr fe80::/10 icmpv6 type {{ {', '.join(MLD_TYPES)} }} accept", "multicast listener discovery"),
    ("ip6 saddr fe80::/10 ip6 daddr fe80::/10 udp sport 547 udp dport 546 accept", "DHCPv6 client replies"),
)
# With outgoing traffic dropped, the client's own requests to All_DHCP_Relay_Agents_and_Servers.
DHCPV6_REQUESTS = "ip6 daddr ff02::1:2 udp sport 546 udp dport 547 accept"
IPTABLES_TABLES = ("filter", "nat", "mangle", "raw", "security")
FILTER_HOOKS = ("input", "forward")
# What nft reads back as a table or chain name (its scanner's "string"). The purge writes the names it found
# into the apply's script and the rollback's: a name outside this (made through JSON or netlink) is refused.
NAME = re.compile(r"[A-Za-z_.][A-Za-z0-9_./-]*")
FAMILIES = ("ip", "ip6", "inet", "arp", "bridge", "netdev")
_L4 = {"tcp": "tcp", "udp": "udp"}
_L4NUM = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58}


def _elements(nets):
    return [str(n.network_address) if n.num_addresses == 1 else str(n) for n in nets]


def _anon(items):
    items = list(items)
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


def _ports(ports):
    return _anon(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ports)


class Line(_Line):
    """A rendered nft rule: chain, text (without comment), user comment."""

    @property
    def text(self):
        return self.body

    def nft(self):
        comment = f"{self.id} {self.comment}".strip()
        return f'{self.text} comment "{comment}"'


def _family_terms(nets, sets, field):
    """A rule's sources (or destinations) as nft matches, per address family."""
    terms = {"ip": [], "ip6": []}
    v4 = [n for n in nets if n.version == 4]
    v6 = [n for n in nets if n.version == 6]
    if v4:
        terms["ip"].append(f"ip {field} {_anon(_elements(v4))}")
    if v6:
        terms["ip6"].append(f"ip6 {field} {_anon(_elements(v6))}")
    for name in sets:
        terms["ip"].append(f"ip {field} @{name}_v4")
        terms["ip6"].append(f"ip6 {field} @{name}_v6")
    return terms


def _matches(rule):
    """One address match per nft line: sources x destinations within one family."""
    src = _family_terms(rule.sources, rule.sets, "saddr")
    dst = _family_terms(rule.destinations, (), "daddr")
    has_src = any(src.values())
    has_dst = any(dst.values())
    if not has_src and not has_dst:
        return [""]
    out = []
    for fam in ("ip", "ip6"):
        for a in src[fam] if has_src else [""]:
            for b in dst[fam] if has_dst else [""]:
                out.append(f"{a} {b}".strip())
    return out


def _proto_port(rule, routed=False):
    protos = rule.protos
    if protos == ("any",):
        return ""
    if not rule.ports:
        if protos == ("icmp",):
            return "meta l4proto 1"
        if protos == ("icmpv6",):
            return "meta l4proto 58"
        return "meta l4proto " + _anon(str(_L4NUM[p]) for p in protos)
    ports = _ports(rule.ports)
    if routed:
        # Docker rewrites the destination before the forward hook: match what the client asked for.
        return "meta l4proto " + _anon(str(_L4NUM[p]) for p in protos) + f" ct original proto-dst {ports}"
    if len(protos) == 1:
        return f"{_L4[protos[0]]} dport {ports}"
    return "meta l4proto " + _anon(str(_L4NUM[p]) for p in protos) + f" th dport {ports}"


def rule_lines(index, rule):
    """nft rule lines for one normalised rule (one per address match when sources are given)."""
    chain = {"in": "input", "out": "output", "routed": "forward"}[rule.direction]
    base = []
    if rule.interface:
        base.append(("oifname" if rule.direction == "out" else "iifname") + f' "{rule.interface}"')
    pp = _proto_port(rule, routed=rule.direction == "routed")
    if pp:
        base.append(pp)
    out = []
    for match in _matches(rule):
        head = " ".join(x for x in (*base, match) if x)
        if rule.rate_limit:
            fams = ["ip6"] if match.startswith("ip6") else ["ip"] if match else ["ip", "ip6"]
            for fam in fams:
                meter = f"rl{index}_{'v6' if fam == 'ip6' else 'v4'}"
                limit = f"{fam} saddr limit rate over {rule.rate_limit} burst {rule.burst} packets"
                out.append(
                    Line(chain, f"{head} ct state new update @{meter} {{ {limit} }} drop", rule.comment)
                )
        out.append(Line(chain, f"{head} {rule.action}", rule.comment))
    return out


def chains(policy):
    """(name, hook, policy) of the base chains the owned table has."""
    return [
        ("input", "input", policy.incoming),
        ("forward", "forward", policy.routed),
        ("output", "output", policy.outgoing),
    ]


def sets(policy):
    """Set declarations: (name, type, flags, timeout, size, elements or None for dynamic sets)."""
    out = []
    named = {"admin": policy.admin, **policy.sets}
    for name, (v4, v6) in named.items():
        out.append((f"{name}_v4", "ipv4_addr", ("interval",), None, None, _elements(v4)))
        out.append((f"{name}_v6", "ipv6_addr", ("interval",), None, None, _elements(v6)))
    meters = []
    if policy.ssh_rate_limit and not policy.ssh_restricted:
        meters.append("rlssh")
    meters += [f"rl{i}" for i, r in enumerate(policy.rules) if r.rate_limit]
    for m in meters:
        out.append((f"{m}_v4", "ipv4_addr", ("timeout",), 60, 65535, None))
        out.append((f"{m}_v6", "ipv6_addr", ("timeout",), 60, 65535, None))
    return out


def lines(policy):
    """Every rule line of the owned table, in evaluation order."""
    out = []
    # input: the host's own traffic, then established flows, then what the operator declared.
    out.append(Line("input", 'iif "lo" accept', "loopback"))
    out.append(Line("input", "ct state established,related accept", "established flows"))
    out.append(Line("input", "ct state invalid drop", "invalid packets"))
    icmp = ICMP_TYPES + (("echo-request",) if policy.icmp_echo else ())
    icmp6 = ICMPV6_TYPES + (("echo-request",) if policy.icmp_echo else ())
    out.append(Line("input", f"icmp type {_anon(icmp)} accept", "needed ICMP"))
    out.append(Line("input", f"icmpv6 type {_anon(icmp6)} accept", "needed ICMPv6"))
    out.extend(Line("input", text, comment) for text, comment in IPV6_NEEDS)
    port = policy.ssh_port
    out.append(Line("input", f"ip saddr @admin_v4 tcp dport {port} accept", "SSH from the admin networks"))
    out.append(Line("input", f"ip6 saddr @admin_v6 tcp dport {port} accept", "SSH from the admin networks"))
    if not policy.ssh_restricted:
        if policy.ssh_rate_limit:
            for fam, suffix in (("ip", "v4"), ("ip6", "v6")):
                limit = (
                    f"{fam} saddr limit rate over {policy.ssh_rate_limit} burst {policy.ssh_burst} packets"
                )
                out.append(
                    Line(
                        "input",
                        f"tcp dport {port} ct state new update @rlssh_{suffix} {{ {limit} }} drop",
                        "SSH new-connection rate limit per source",
                    )
                )
        out.append(Line("input", f"tcp dport {port} accept", "SSH"))
    for i, rule in enumerate(policy.rules):
        if rule.direction == "in":
            out.extend(rule_lines(i, rule))

    # forward: established flows, Docker's containers going out, published ports by original port.
    if policy.routed == "drop":
        out.append(Line("forward", "ct state established,related accept", "established flows"))
        out.append(Line("forward", "ct state invalid drop", "invalid packets"))
        out.append(Line("forward", f"icmpv6 type {_anon(ICMPV6_TYPES)} accept", "needed ICMPv6"))
        if policy.docker:
            for iface in policy.docker_interfaces:
                out.append(Line("forward", f'iifname "{iface}" accept', "Docker containers' own traffic"))
    for i, rule in enumerate(policy.rules):
        if rule.direction == "routed":
            out.extend(rule_lines(i, rule))

    if policy.outgoing == "drop":
        out.append(Line("output", 'oif "lo" accept', "loopback"))
        out.append(Line("output", "ct state established,related accept", "established flows"))
        out.append(Line("output", "meta l4proto { 1, 58 } accept", "ICMP and neighbour discovery"))
        out.append(Line("output", DHCPV6_REQUESTS, "DHCPv6 client requests"))
    for i, rule in enumerate(policy.rules):
        if rule.direction == "out":
            out.extend(rule_lines(i, rule))
    return out


def canonical(policy):
    """The canonical text of the owned table: what the live table must read back as (see read_live)."""
    return _canonical_text(chains(policy), sets(policy), [ln.canonical() for ln in lines(policy)])


def _canonical_text(chain_decls, set_decls, rule_texts):
    out = [f"table {FAMILY} {TABLE}"]
    for name, hook, pol in chain_decls:
        out.append(f"chain {name}: hook {hook} priority 0 policy {pol}")
    for name, typ, flags, timeout, size, elems in set_decls:
        extra = (f" timeout {timeout}" if timeout else "") + (f" size {size}" if size else "")
        out.append(f"set {name}: {typ} flags {','.join(flags)}{extra}")
        for elem in elems or ():
            out.append(f"set {name}: {elem}")
    out.extend(rule_texts)
    return "\n".join(out) + "\n"


def render(policy, purge=()):
    """The one `nft -f` script: (re)create the owned table and drop foreign objects in ONE transaction.

    nft applies a file as a single transaction: the kernel never sees the table half built.
    """
    out = [HEADER]
    out.append(f"table {FAMILY} {TABLE} {{}}")
    out.append(f"delete table {FAMILY} {TABLE}")
    for cmd in purge:
        out.append(cmd)
    out.append(f"table {FAMILY} {TABLE} {{")
    for name, typ, flags, timeout, size, elems in sets(policy):
        out.append(f"\tset {name} {{")
        out.append(f"\t\ttype {typ}")
        if size:
            out.append(f"\t\tsize {size}")
        out.append(f"\t\tflags {'dynamic,' if timeout else ''}{','.join(flags)}")
        if timeout:
            out.append(f"\t\ttimeout {timeout}s")
        if elems:
            out.append("\t\telements = {")
            out.extend(f"\t\t\t{e}," for e in elems)
            out.append("\t\t}")
        out.append("\t}")
    by_chain = {}
    for ln in lines(policy):
        by_chain.setdefault(ln.chain, []).append(ln)
    for name, hook, pol in chains(policy):
        out.append(f"\tchain {name} {{")
        out.append(f"\t\ttype filter hook {hook} priority 0; policy {pol};")
        out.extend(f"\t\t{ln.nft()}" for ln in by_chain.get(name, []))
        out.append("\t}")
    out.append("}")
    return "\n".join(out) + "\n"


def persist_script(policy):
    """What is loaded at boot: the owned table only (no purge commands, no `flush ruleset`)."""
    return render(policy)


# --- reading the live ruleset -------------------------------------------------------------------


def _elem_text(elem):
    if isinstance(elem, dict) and "elem" in elem:
        elem = elem["elem"].get("val", elem["elem"])
    if isinstance(elem, str):
        net = ipaddress.ip_network(elem, strict=False)
    elif isinstance(elem, dict) and "prefix" in elem:
        net = ipaddress.ip_network(f"{elem['prefix']['addr']}/{elem['prefix']['len']}", strict=False)
    elif isinstance(elem, dict) and "range" in elem:
        lo, hi = (ipaddress.ip_address(a) for a in elem["range"])
        nets = list(ipaddress.summarize_address_range(lo, hi))
        return [_elements([n])[0] for n in nets]
    else:
        return [repr(elem)]
    return _elements([net])


class Live:
    """What `nft -j list ruleset` says, sorted into owned, cooperating and foreign."""

    def __init__(self):
        self.owned_exists = False
        self.chains = []  # owned (name, hook, policy)
        self.sets = []  # owned set decls
        self.rules = []  # owned rules: (chain, comment id or None, handle)
        self.foreign = []  # Foreign objects that filter the input or forward hook
        self.cooperating = []  # descriptions
        self.tables = []  # (family, name)
        self.handles = {}  # (family, name) -> the table's handle (a table made anew gets another)
        self.chain_rules = {}  # (family, table, chain) -> the handles of its rules, in order
        self.backends = set()  # "iptables-nft" when its tables exist


# A foreign object and what the purge does to it: key is ("table", family, table),
# ("rule", family, table, chain, handle) or ("policy", family, table, chain) (set to accept).
Foreign = collections.namedtuple("Foreign", "description command key")


def _rule_is_coop(rule):
    """A rule of an iptables-nft chain that Docker or fail2ban put there (jumps to their chains,
    matches on their bridges)."""
    for expr in rule.get("expr", []):
        if not isinstance(expr, dict):
            continue
        for verdict in ("jump", "goto"):
            if isinstance(expr.get(verdict), dict) and managers.cooperating_name(expr[verdict].get("target")):
                return True
        match = expr.get("match")
        if not isinstance(match, dict) or not isinstance(match.get("right"), str):
            continue
        if match.get("left", {}).get("meta", {}).get("key") in ("iifname", "oifname"):
            if managers.cooperating_interface(match["right"]):
                return True
    return False


def _accepts(rule):
    for expr in rule.get("expr", []):
        if isinstance(expr, dict) and ("accept" in expr or "jump" in expr or "goto" in expr):
            return True
    return False


def read_live(doc):
    """Parse `nft -j list ruleset` (a dict) -> Live.

    A foreign table filtering the input or forward hook is deleted whole, and so is an iptables-nft
    table that only foreign rules fill. An iptables-nft table that Docker or fail2ban share keeps their
    rules; it loses the foreign rules that admit traffic, and its input chains' drop policy becomes
    accept: our table filters, and a foreign drop policy would drop the controller whatever ours admits.
    """
    live = Live()
    items = doc.get("nftables", []) if isinstance(doc, dict) else []
    chains = {}
    for item in items:
        if "table" in item:
            t = item["table"]
            live.tables.append((t["family"], t["name"]))
            live.handles[(t["family"], t["name"])] = t.get("handle")
        if "chain" in item:
            c = item["chain"]
            chains[(c["family"], c["table"], c["name"])] = c
    for fam, name in live.tables:
        if fam in ("ip", "ip6") and name in IPTABLES_TABLES:
            live.backends.add("iptables-nft")
    table_hooks = {}
    for (fam, table, _name), c in chains.items():
        if c.get("hook") in FILTER_HOOKS and c.get("type", "filter") == "filter":
            table_hooks.setdefault((fam, table), []).append(c)
    shared = {(fam, table) for (fam, table, name) in chains if managers.cooperating_name(name)}
    ipt_rules = {}  # iptables-nft table -> its foreign accepting rules
    for item in items:
        if "table" in item:
            _read_table(live, item["table"], table_hooks)
        elif "chain" in item:
            c = item["chain"]
            if (c["family"], c["table"]) == (FAMILY, TABLE):
                live.chains.append((c["name"], c.get("hook"), c.get("policy"), c.get("prio")))
        elif "set" in item:
            _read_set(live, item["set"])
        elif "rule" in item:
            _read_rule(live, item["rule"], chains, shared, ipt_rules)
    _judge_iptables_nft(live, table_hooks, shared, ipt_rules)
    return live


def _read_table(live, t, table_hooks):
    """Ours, a cooperating owner's, iptables-nft's (judged later), or a foreign one on a filter hook."""
    fam, name = t["family"], t["name"]
    if (fam, name) == (FAMILY, TABLE):
        live.owned_exists = True
    elif managers.cooperating_name(name):
        live.cooperating.append(f"table {fam} {name}")
    elif fam in ("ip", "ip6") and name in IPTABLES_TABLES:
        pass  # iptables-nft's tables: judged in _judge_iptables_nft
    elif (fam, name) in table_hooks:
        hooks = "/".join(sorted({c["hook"] for c in table_hooks[(fam, name)]}))
        live.foreign.append(
            Foreign(
                f"table {fam} {name} (filters the {hooks} hook; not managed by bulwark)",
                f"delete table {fam} {name}",
                ("table", fam, name),
            )
        )


def _read_set(live, s):
    """One of our table's sets (the elements of those that are not dynamic meters)."""
    if (s["family"], s["table"]) != (FAMILY, TABLE):
        return
    flags = tuple(f for f in s.get("flags", []) if f != "dynamic")
    dynamic = "timeout" in flags or "dynamic" in s.get("flags", [])
    elems = None
    if not dynamic:
        elems = []
        for e in s.get("elem", []):
            elems.extend(_elem_text(e))
    live.sets.append((s["name"], s.get("type"), flags, s.get("timeout"), s.get("size"), elems))


def _read_rule(live, r, chains, shared, ipt_rules):
    """A rule: ours (by its bw: id), or one in an iptables-nft filter chain (a cooperating owner's, which
    makes its table shared, or a foreign one that admits traffic)."""
    fam, table, chain = r["family"], r["table"], r["chain"]
    live.chain_rules.setdefault((fam, table, chain), []).append(r.get("handle"))
    if (fam, table) == (FAMILY, TABLE):
        comment = r.get("comment", "")
        rid = comment.split()[0] if comment.startswith("bw:") else None
        live.rules.append((chain, rid, r.get("handle")))
        return
    if not (fam in ("ip", "ip6") and table in IPTABLES_TABLES):
        return
    c = chains.get((fam, table, chain), {})
    if not (c.get("hook") in FILTER_HOOKS and c.get("type", "filter") == "filter"):
        return
    if managers.cooperating_name(chain) or _rule_is_coop(r):
        live.cooperating.append(f"rule {fam} {table} {chain} handle {r.get('handle')}")
        shared.add((fam, table))
    elif _accepts(r):
        ipt_rules.setdefault((fam, table), []).append(
            Foreign(
                f"rule {fam} {table} {chain} handle {r.get('handle')} (admits traffic; "
                "not managed by bulwark)",
                f"delete rule {fam} {table} {chain} handle {r.get('handle')}",
                ("rule", fam, table, chain, r.get("handle")),
            )
        )


def _judge_iptables_nft(live, table_hooks, shared, ipt_rules):
    """iptables-nft's filter tables: deleted whole when only foreign rules fill them; shared with Docker or
    fail2ban, they lose their foreign accepting rules and their input chains' drop policy."""
    for (fam, table), hooked in sorted(table_hooks.items()):
        if not (fam in ("ip", "ip6") and table in IPTABLES_TABLES):
            continue
        if (fam, table) not in shared:
            hooks = ", ".join(f"{c['name']} policy {c.get('policy', 'accept')}" for c in hooked)
            live.foreign.append(
                Foreign(
                    f"table {fam} {table} (iptables-nft: {hooks}; not managed by bulwark)",
                    f"delete table {fam} {table}",
                    ("table", fam, table),
                )
            )
            continue
        live.foreign += ipt_rules.get((fam, table), [])
        for c in hooked:
            if c["hook"] == "input" and c.get("policy") == "drop":
                live.foreign.append(
                    Foreign(
                        f"chain {fam} {table} {c['name']} policy drop (drops what our table admits; "
                        "set to accept, our table filters)",
                        f"chain {fam} {table} {c['name']} {{ policy accept; }}",
                        ("policy", fam, table, c["name"]),
                    )
                )


def unwritable(foreign):
    """The first Foreign whose family, names or rule handle nft would not read back as written, or None."""
    for f in foreign:
        family, *names = f.key[1:4] if f.key[0] != "table" else f.key[1:3]
        handle = f.key[4] if f.key[0] == "rule" else 0
        if family not in FAMILIES or not all(isinstance(n, str) and NAME.fullmatch(n) for n in names):
            return f
        if isinstance(handle, bool) or not isinstance(handle, int):
            return f
    return None


def live_canonical(live, known):
    """The live owned table in canonical text. known maps rule ids to their canonical text (the candidate's
    and the last persisted script's); a rule the module did not write shows as such."""
    if not live.owned_exists:
        return ""
    decls = []
    for name, hook, pol, prio in live.chains:
        decls.append((name, hook, pol if prio == 0 else f"{pol} (priority {prio})"))
    rules = []
    for chain, rid, handle in live.rules:
        if rid and rid in known:
            rules.append(known[rid])
        else:
            rules.append(f"{chain}: <rule handle {handle} not written by bulwark>")
    return _canonical_text(decls, live.sets, rules)


def known_ids(policy, persisted_text=""):
    """Rule id -> canonical text, from the candidate and from a previously persisted script."""
    known = {ln.id: ln.canonical() for ln in lines(policy)}
    chain = None
    for raw in persisted_text.splitlines():
        s = raw.strip()
        if s.startswith("chain ") and s.endswith("{"):
            chain = s.split()[1]
        elif chain and ' comment "bw:' in s:
            text, _unused, comment = s.rpartition(' comment "')
            rid = comment.split()[0].rstrip('"')
            known.setdefault(rid, f"{chain}: {text}")
    return known


def restore_script(saved_owned):
    """Script that puts back the owned table as it was (saved_owned: `nft list table inet bulwark` output,
    or "" when it did not exist), replaced whole: right whether the apply ran or not. What the purge removed
    comes back one object at a time (rollback.py), so that what others added meanwhile stays."""
    out = [HEADER, f"table {FAMILY} {TABLE} {{}}", f"delete table {FAMILY} {TABLE}"]
    if saved_owned.strip():
        out.append(saved_owned.strip())
    return "\n".join(out) + "\n"
