"""ufw backend, pure: the documented subset of the policy as ufw rules, so `ufw status` tells the truth.

UFW has no address sets, no per-source rate limits with a chosen rate, no routed rules by original port and
no atomic apply across IPv4 and IPv6: those options are refused by name. Supported: default policies,
services and rules by port/range/protocol (tcp, udp, any), one source or destination CIDR each, interface,
direction in/out, action accept (allow) or drop (deny), comment; SSH from the admin networks; open SSH with
UFW's own limit (6 new connections in 30 s per source) when ssh_rate_limit is set.
Loopback, established flows and the needed ICMP come from UFW's own before.rules.
"""

from .iptables import ifname
from .model import PolicyError

UFW_DEFAULTS = {
    "incoming": "DEFAULT_INPUT_POLICY",
    "outgoing": "DEFAULT_OUTPUT_POLICY",
    "routed": "DEFAULT_FORWARD_POLICY",
}
_ACTION = {"accept": "allow", "drop": "deny"}


def refuse(policy, options):
    """PolicyError naming the first option the ufw backend cannot honour."""
    if policy.sets:
        raise PolicyError("sets: the ufw backend has no address sets (use nftables or iptables)")
    for i, rule in enumerate(policy.rules):
        where = f"services[{i}]" if i < policy.service_count else f"rules[{i - policy.service_count}]"
        if rule.sets:
            raise PolicyError(f"{where}.sources: the ufw backend has no address sets (@{rule.sets[0]})")
        if rule.rate_limit:
            raise PolicyError(f"{where}.rate_limit: the ufw backend has no per-source rate limits")
        if rule.direction == "routed":
            raise PolicyError(f"{where}.direction: routed rules are not supported by the ufw backend")
        if any(p in ("icmp", "icmpv6") for p in rule.protos):
            raise PolicyError(
                f"{where}.proto: ufw rules cannot match ICMP (its before.rules admit what is needed)"
            )
        if len(rule.sources) > 1 or len(rule.destinations) > 1:
            raise PolicyError(
                f"{where}.sources: the ufw backend takes one source and one destination per rule"
            )
    if policy.ssh_rate_limit and not policy.ssh_restricted and policy.ssh_rate_limit != "10/minute":
        raise PolicyError("ssh_rate_limit: the ufw backend has only its own limit (6 connections in 30 s)")
    if options.get("icmp_echo") is False:
        raise PolicyError("icmp_echo: the ufw backend keeps UFW's own ICMP rules (before.rules)")
    if policy.docker:
        raise PolicyError("docker: UFW does not filter Docker's published ports; use nftables or iptables")


def _addr(net, family):
    if net is None:
        return "0.0.0.0/0" if family == 4 else "::/0"
    return str(net.network_address) if net.num_addresses == 1 else str(net)


def _ports(ports):
    return ",".join(str(lo) if lo == hi else f"{lo}:{hi}" for lo, hi in ports) or "any"


def _proto(rule):
    protos = [p for p in rule.protos if p != "any"]
    return protos[0] if len(protos) == 1 else "any"


class Entry:
    """One ufw rule: the tuple line ufw writes in user.rules/user6.rules, and the command that adds it."""

    def __init__(self, family, *, action, proto, dport, dst, src, direction, iface="", comment=""):
        self.family = family
        self.action = action
        self.proto = proto
        self.dport = dport
        self.dst = dst
        self.src = src
        self.direction = direction
        self.iface = iface
        self.comment = comment

    def tuple(self):
        direction = f"{self.direction}_{self.iface}" if self.iface else self.direction
        out = f"{self.action} {self.proto} {self.dport} {self.dst} any {self.src} {direction}"
        if self.comment:
            out += " comment=" + self.comment.encode().hex()
        return out

    def args(self):
        argv = [self.action, self.direction]
        if self.iface:
            argv += ["on", self.iface]
        argv += ["from", self._any(self.src), "to", self._any(self.dst)]
        if self.dport != "any":
            argv += ["port", self.dport]
        if self.proto != "any":
            argv += ["proto", self.proto]
        if self.comment:
            argv += ["comment", self.comment]
        return argv

    @staticmethod
    def _any(addr):
        return "any" if addr in ("0.0.0.0/0", "::/0") else addr


def entries(policy):
    """Every ufw rule of the policy, in order, one per family it applies to."""
    out = []
    port = str(policy.ssh_port)
    for net in policy.admin[0] + policy.admin[1]:
        fam = net.version
        out.append(
            Entry(fam, action="allow", proto="tcp", dport=port, dst=_addr(None, fam), src=_addr(net, fam),
                  direction="in", comment="bulwark SSH from the admin networks")
        )  # fmt: skip
    if not policy.ssh_restricted:
        action = "limit" if policy.ssh_rate_limit else "allow"
        for fam in (4, 6):
            out.append(
                Entry(fam, action=action, proto="tcp", dport=port, dst=_addr(None, fam), src=_addr(None, fam),
                      direction="in", comment="bulwark SSH")
            )  # fmt: skip
    for rule in policy.rules:
        src = rule.sources[0] if rule.sources else None
        dst = rule.destinations[0] if rule.destinations else None
        fams = [n.version for n in (src, dst) if n is not None][:1] or [4, 6]
        comment = f"bulwark {rule.comment}".strip()
        for fam in fams:
            out.append(
                Entry(fam, action=_ACTION[rule.action], proto=_proto(rule), dport=_ports(rule.ports),
                      dst=_addr(dst, fam), src=_addr(src, fam), direction=rule.direction,
                      iface=ifname(rule.interface or ""), comment=comment)
            )  # fmt: skip
    return out


def parse_tuples(text):
    """The '### tuple ###' lines of a user.rules file, in order."""
    prefix = "### tuple ### "
    return [line[len(prefix) :].strip() for line in (text or "").splitlines() if line.startswith(prefix)]


def wanted_tuples(policy):
    return {fam: [e.tuple() for e in entries(policy) if e.family == fam] for fam in (4, 6)}


def defaults(policy):
    return {
        "DEFAULT_INPUT_POLICY": policy.incoming.upper(),
        "DEFAULT_OUTPUT_POLICY": policy.outgoing.upper(),
        "DEFAULT_FORWARD_POLICY": policy.routed.upper(),
    }


def parse_defaults(text):
    out = {}
    for line in (text or "").splitlines():
        key, _unused, value = line.strip().partition("=")
        if key in ("DEFAULT_INPUT_POLICY", "DEFAULT_OUTPUT_POLICY", "DEFAULT_FORWARD_POLICY"):
            out[key] = value.strip().strip('"')
    return out


def canonical(tuples, default_policies, enabled):
    out = [f"ufw {'enabled' if enabled else 'disabled'}"]
    out += [f"default {k} {v}" for k, v in sorted(default_policies.items())]
    for fam in (4, 6):
        out += [f"IPv{fam}: {t}" for t in tuples.get(fam, [])]
    return "\n".join(out) + "\n"


def commands(policy, live_tuples):
    """ufw commands (argv lists after `ufw`) that turn the live rules into the wanted ones.

    Rules are removed and re-added from the first difference on, so the order ends up as declared."""
    want = entries(policy)
    live = {4: list(live_tuples.get(4, [])), 6: list(live_tuples.get(6, []))}
    wanted = wanted_tuples(policy)
    cmds = []
    for fam in (4, 6):
        keep = 0
        while keep < min(len(live[fam]), len(wanted[fam])) and live[fam][keep] == wanted[fam][keep]:
            keep += 1
        for t in live[fam][keep:]:
            argv = ["--force", "delete", *tuple_args(t)]
            if argv not in cmds:
                cmds.append(argv)
        live[fam] = live[fam][:keep]
    added = set()
    for entry in want:
        if entry.tuple() in live[entry.family]:
            continue
        key = tuple(entry.args())
        if key not in added:
            added.add(key)
            cmds.append(list(key))
    for key, value in defaults(policy).items():
        word = {
            "DEFAULT_INPUT_POLICY": "incoming",
            "DEFAULT_OUTPUT_POLICY": "outgoing",
            "DEFAULT_FORWARD_POLICY": "routed",
        }
        cmds.append(["default", "deny" if value == "DROP" else "allow", word[key]])
    return cmds


def tuple_args(text):
    """A tuple line back into the ufw command that matches it (for `ufw delete`)."""
    words = text.split()
    action, proto, dport, dst, sport, src, direction = words[:7]
    iface = ""
    if "_" in direction:
        direction, iface = direction.split("_", 1)
    argv = [action.split("_")[0], direction]
    if iface:
        argv += ["on", iface]
    argv += ["from", Entry._any(src)]
    if sport != "any":
        argv += ["port", sport]
    argv += ["to", Entry._any(dst)]
    if dport != "any":
        argv += ["port", dport]
    if proto != "any":
        argv += ["proto", proto]
    return argv
