"""The kernel's view: what every base chain the controller's packet meets does with it.

nftables runs every base chain registered on a hook, whatever its table or family, in priority order: an
accept ends only that chain, a drop (a rule's, or the chain's policy) is final. So our default-deny table
admits the controller only if every OTHER base chain on the way accepts the packet too; a foreign
iptables-nft INPUT chain with policy drop cuts the operator off although our table lets them in.

This follows one packet, a new TCP connection from the controller to the address and port it reached
sshd on, through the base chains of a parsed `nft -j list ruleset` (ingress, prerouting and input, in
the families that see it). A match it cannot evaluate in front of a drop is reported as unknown: unknown
means refuse. In front of an accept it is taken as not matching, the cautious reading.
"""

import collections
import ipaddress

from . import managers

Packet = collections.namedtuple("Packet", "source destination port interface")
Chain = collections.namedtuple("Chain", "family table name hook prio policy rules")
HOOKS = ("ingress", "prerouting", "input")
ACCEPT, DROP, UNKNOWN = "accept", "drop", "unknown"
_FALL, _RETURN = "fall", "return"
_VERDICTS = ("accept", "drop", "reject", "queue", "jump", "goto", "return")
_HARMLESS = ("counter", "log", "comment")  # statements that never decide a packet's fate
_TCP = (6, "tcp")


def packet(source, destination, port, interface=None):
    src = ipaddress.ip_address(source)
    dst = ipaddress.ip_address(destination) if destination else None
    return Packet(src, dst, port, interface)


def chains(doc):
    """{(family, table, name): Chain} of `nft -j list ruleset`, each chain's rules (handle, expr) in order."""
    found = {}
    items = doc.get("nftables", []) if isinstance(doc, dict) else []
    for item in items:
        if "chain" in item:
            c = item["chain"]
            key = (c["family"], c["table"], c["name"])
            found[key] = Chain(*key, c.get("hook"), c.get("prio", 0), c.get("policy", "accept"), [])
    for item in items:
        if "rule" in item:
            r = item["rule"]
            chain = found.get((r["family"], r["table"], r["chain"]))
            if chain is not None:
                chain.rules.append((r.get("handle"), r.get("expr", [])))
    return found


def describe(chain):
    return (
        f"table {chain.family} {chain.table} chain {chain.name} "
        f"(hook {chain.hook}, priority {chain.prio}, policy {chain.policy})"
    )


def _sees(chain, pkt):
    family = "ip" if pkt.source.version == 4 else "ip6"
    return chain.hook in HOOKS and chain.family in (family, "inet", "netdev")


def _values(right):
    if isinstance(right, dict) and "set" in right:
        return right["set"]
    if isinstance(right, list):
        return right
    return [right]


def _addr_in(addr, value):
    """True/False whether addr matches one element of a match's right side; None if it cannot tell."""
    try:
        if isinstance(value, str):
            if value.startswith("@"):
                return None  # a named set: its content is not in the rule
            return addr in ipaddress.ip_network(value, strict=False)
        if isinstance(value, dict) and "prefix" in value:
            net = ipaddress.ip_network(f"{value['prefix']['addr']}/{value['prefix']['len']}", strict=False)
            return addr in net
        if isinstance(value, dict) and "range" in value:
            lo, hi = (ipaddress.ip_address(a) for a in value["range"])
            return lo <= addr <= hi
    except (ValueError, TypeError):
        return None
    return None


def _port_in(port, value):
    if isinstance(value, int):
        return port == value
    if isinstance(value, dict) and "range" in value:
        lo, hi = value["range"]
        return lo <= port <= hi if isinstance(lo, int) and isinstance(hi, int) else None
    return None


def ifname_matches(value, name):
    """Whether interface `name` matches an iifname string as `nft -j` prints it, read as nft reads it: a
    backslash makes the next character plain ("eth\\*" is the name with a star), an unescaped trailing '*'
    matches any suffix, and every other character (also '?', '[', '+') is itself."""
    plain, wildcard, i = [], False, 0
    while i < len(value):
        char = value[i]
        if char == "\\" and i + 1 < len(value):
            plain.append(value[i + 1])
            i += 2
            continue
        if char == "*" and i == len(value) - 1:
            wildcard = True
        else:
            plain.append(char)
        i += 1
    text = "".join(plain)
    return name.startswith(text) if wildcard else name == text


def _element(left, value, pkt):
    """Whether the packet's field named by `left` equals `value`: True, False or None (cannot tell)."""
    if "meta" in left:
        key = left["meta"].get("key")
        if key in ("iifname", "iif"):
            if pkt.interface is None or not isinstance(value, str):
                return None
            # iif names the interface itself (resolved to its index when the rule was added): no wildcard
            return ifname_matches(value, pkt.interface) if key == "iifname" else value == pkt.interface
        if key == "l4proto":
            return value in _TCP
        if key == "nfproto":
            return value == ("ipv4" if pkt.source.version == 4 else "ipv6")
        return None
    if "payload" in left:
        proto, field = left["payload"].get("protocol"), left["payload"].get("field")
        if proto in ("ip", "ip6"):
            if (proto == "ip") != (pkt.source.version == 4):
                return False  # a match on the other family's header never matches this packet
            addr = {"saddr": pkt.source, "daddr": pkt.destination}.get(field)
            if addr is None:
                return None
            return _addr_in(addr, value)
        if proto in ("tcp", "th") and field == "dport":
            return _port_in(pkt.port, value)
        if proto in ("udp", "udplite", "sctp", "dccp", "icmp", "icmpv6", "ipv6-icmp"):
            return False  # the controller's packet is TCP
        return None
    if "ct" in left and left["ct"].get("key") == "state":
        return value == "new"
    return None


def _match(expr, pkt):
    m = expr["match"]
    op = m.get("op", "==")
    if op not in ("==", "!=", "in"):
        return None
    results = [_element(m.get("left", {}), v, pkt) for v in _values(m.get("right"))]
    if True in results:
        hit = True
    elif None in results:
        return None
    else:
        hit = False
    return hit if op != "!=" else not hit


def _rule(exprs, pkt):
    """(matches, verdict, target): matches is True/False/None; verdict None for a rule without one."""
    matches, verdict, target = True, None, None
    for expr in exprs:
        if not isinstance(expr, dict) or not expr:
            continue
        key = next(iter(expr))
        if key == "match":
            hit = _match(expr, pkt)
            if hit is False:
                return False, None, None
            if hit is None:
                matches = None
        elif key in _VERDICTS:
            verdict = key
            value = expr[key]
            target = value.get("target") if isinstance(value, dict) else None
        elif key == "xt" and expr[key].get("type") == "target":
            verdict = "xt"  # an iptables target nft only wraps (REJECT, LOG, ...): not judged
            target = expr[key].get("name")
        elif key not in _HARMLESS:
            matches = None  # a match or statement this guard does not model
    return matches, verdict, target


def _walk(table, chain, pkt, depth=0):
    """(outcome, why) of a chain: ACCEPT, DROP, UNKNOWN, or _FALL/_RETURN to its caller."""
    for handle, exprs in chain.rules:
        matches, verdict, target = _rule(exprs, pkt)
        if verdict is None or matches is False:
            continue
        where = f"rule handle {handle} of chain {chain.name}"
        if verdict == "accept":
            if matches:
                return ACCEPT, where
            continue  # whether it matches is unknown: the cautious reading is that it does not
        if verdict in ("jump", "goto"):
            if managers.cooperating_name(target):
                continue  # Docker's and fail2ban's chains: trusted (see managers)
            sub = table.get(target)
            if sub is None or depth > 8:
                return UNKNOWN, f"{where} jumps to {target}, which cannot be followed"
            outcome, why = _walk(table, sub, pkt, depth + 1)
            if outcome in (_FALL, _RETURN):
                if verdict == "goto":
                    return _FALL, why
                continue
            if outcome == ACCEPT and not matches:
                continue
            if outcome == DROP and not matches:
                return UNKNOWN, f"{where} may jump to {target}, where {why} drops it"
            return outcome, why
        if verdict == "return":
            if matches:
                return _RETURN, where
            return UNKNOWN, f"{where} may return before what follows"
        if matches:
            return (DROP, f"{where} drops it") if verdict in ("drop", "reject") else (
                UNKNOWN, f"{where} ends in {target or verdict}, which this guard does not model")  # fmt: skip
        return UNKNOWN, f"{where} may drop it (a match this guard cannot evaluate)"
    return _FALL, f"the end of chain {chain.name}"


def verdict(all_chains, chain, pkt):
    """(ACCEPT|DROP|UNKNOWN, why) of one base chain for the packet."""
    table = {
        name: c for (fam, tab, name), c in all_chains.items() if (fam, tab) == (chain.family, chain.table)
    }
    outcome, why = _walk(table, chain, pkt)
    if outcome in (_FALL, _RETURN):
        return (ACCEPT, "its policy accept") if chain.policy == "accept" else (DROP, "its policy drop")
    return outcome, why


def judge(all_chains, pkt, skip=lambda chain: False):
    """[(chain, outcome, why)] of every base chain the packet meets that does not accept it
    (skip: chains judged elsewhere, such as the owned table's, or trusted cooperating owners')."""
    out = []
    for chain in sorted(
        all_chains.values(), key=lambda c: (HOOKS.index(c.hook) if c.hook in HOOKS else 9, c.prio)
    ):
        if chain.hook is None or not _sees(chain, pkt) or skip(chain):
            continue
        outcome, why = verdict(all_chains, chain, pkt)
        if outcome != ACCEPT:
            out.append((chain, outcome, why))
    return out


def after_purge(all_chains, keys):
    """The chains as they will be once the purge has run (keys: nftables.Foreign keys it applies)."""
    tables = {k[1:3] for k in keys if k[0] == "table"}
    rules = {k[1:5] for k in keys if k[0] == "rule"}
    policies = {k[1:4] for k in keys if k[0] == "policy"}
    out = {}
    for key, chain in all_chains.items():
        if key[:2] in tables:
            continue
        kept = [(handle, exprs) for handle, exprs in chain.rules if (*key, handle) not in rules]
        out[key] = chain._replace(rules=kept, policy="accept" if key in policies else chain.policy)
    return out
