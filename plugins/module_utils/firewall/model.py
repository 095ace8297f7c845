"""The firewall policy: validate and normalise what the operator declared.

Pure: a dict of options in, a normalised Policy out, or PolicyError naming the bad option
(``rules[2].port: 70000 is not a port``). Every backend renders the same Policy.
"""

import ipaddress
import re
import unicodedata

PROTOCOLS = ("tcp", "udp", "icmp", "icmpv6", "any")
PORT_PROTOCOLS = ("tcp", "udp")
DIRECTIONS = ("in", "out", "routed")
POLICIES = ("accept", "drop")
# Every pattern is used with fullmatch: `$` would let a trailing newline through ("eth0\n").
# Named sets of addresses; the name becomes part of nft set names (<name>_v4, <name>_v6).
_SET_NAME = re.compile(r"[a-z][a-z0-9_]{0,23}")
# An interface name as the kernel takes it (at most 15 bytes; '.', '..', '/', ':' and spaces refused), in
# characters every backend passes through as one token, with at most one wildcard: a trailing '*' matches
# any suffix. Each backend writes it in its own syntax (nft "eth*", iptables and ufw eth+), and the lockout
# guard matches it the same way (interface_matches). iptables' own '+' is refused: nftables reads it
# literally, so one spelling would mean two things.
_IFACE = re.compile(r"(?=.{1,15}\Z)[A-Za-z0-9_][A-Za-z0-9_.@-]*\*?")
_RATE = re.compile(r"([1-9][0-9]{0,6})/(second|minute|hour|day)")
_PORT = re.compile(r"[0-9]{1,5}")
_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
# iptables' hashlimit (the iptables backend's per-source limits) counts at most a million per second.
MAX_RATE = 1_000_000
DEFAULT_BURST = 5
_RANGE = re.compile(r"([0-9]{1,5})\s*[-:]\s*([0-9]{1,5})")
# nft keeps at most 128 bytes of a comment (measured: nft 1.0.6 and 1.1.3 refuse 129); the renderers put the
# rule id and a space first ("bw:" and 10 hex digits), which leaves the operator's comment 114 bytes.
COMMENT_BYTES = 128 - len("bw:0123456789 ")
# Unicode categories refused in every value: control characters (newline, tab, escape, DEL), format
# characters (bidirectional overrides, zero-width joiners) and the line and paragraph separators.
_CONTROL = ("Cc", "Cf", "Zl", "Zp")
RESERVED_SETS = ("admin",)
# The per-source rate limits keep their meters in sets of the same table: rl<rule index>_v4/_v6, rlssh_v4/_v6.
_METER_SET = re.compile(r"rl(ssh|[0-9]+)")

# Well-known service names accepted instead of a port (minbase hosts have no /etc/services).
SERVICES = {
    "ssh": (22, ("tcp",)),
    "http": (80, ("tcp",)),
    "https": (443, ("tcp",)),
    "dns": (53, ("tcp", "udp")),
    "domain": (53, ("tcp", "udp")),
    "smtp": (25, ("tcp",)),
    "submission": (587, ("tcp",)),
    "smtps": (465, ("tcp",)),
    "imaps": (993, ("tcp",)),
    "ntp": (123, ("udp",)),
    "http-alt": (8080, ("tcp",)),
    "postgresql": (5432, ("tcp",)),
    "mysql": (3306, ("tcp",)),
    "redis": (6379, ("tcp",)),
    "prometheus": (9090, ("tcp",)),
    "node-exporter": (9100, ("tcp",)),
    "wireguard": (51820, ("udp",)),
    "syslog": (514, ("udp",)),
    "ldap": (389, ("tcp",)),
    "ldaps": (636, ("tcp",)),
}


class PolicyError(ValueError):
    """Bad input; the message names the option."""


def _fail(where, msg):
    raise PolicyError(f"{where}: {msg}")


def refuse_control(value, where):
    """PolicyError naming the first control character in value or, for lists and mappings, in any item."""
    if isinstance(value, str):
        bad = next((c for c in value if unicodedata.category(c) in _CONTROL), None)
        if bad is not None:
            _fail(
                where, f"contains a control character (U+{ord(bad):04X}); none is allowed in a firewall value"
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_control(key, f"{where}.{key!r}")
            refuse_control(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            refuse_control(item, f"{where}[{i}]")


def parse_network(value, where):
    """A CIDR or a single address -> ip_network (host bits refused: 10.0.0.1/8 is a typo, not a network)."""
    if not isinstance(value, str) or not value.strip():
        _fail(where, f"{value!r} is not a CIDR or an address")
    text = value.strip()
    if "%" in text:
        # Python keeps a zone index verbatim ("fe80::%eth0"), and it would be rendered into the rules as is.
        _fail(where, f"{value!r} has a zone index (%...); a firewall rule takes no zone")
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError:
        pass
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        _fail(where, f"{value!r} is not a CIDR or an address")
    _fail(where, f"{value!r} has host bits set (did you mean {ipaddress.ip_network(text, strict=False)}?)")
    return None  # unreachable


def collapse(networks):
    """Split by family and merge overlaps/adjacent prefixes (nft interval sets refuse overlaps)."""
    v4 = [n for n in networks if n.version == 4]
    v6 = [n for n in networks if n.version == 6]
    return list(ipaddress.collapse_addresses(v4)), list(ipaddress.collapse_addresses(v6))


def parse_port(value, where):
    """22, "22", "8000-8100", "https" -> list of (lo, hi) tuples and protocols implied by a service name."""
    if isinstance(value, bool):
        _fail(where, f"{value!r} is not a port")
    if isinstance(value, int):
        if not 1 <= value <= 65535:
            _fail(where, f"{value} is not a port")
        return (value, value), None
    if isinstance(value, str):
        text = value.strip()
        if _PORT.fullmatch(text):
            return parse_port(int(text), where)
        m = _RANGE.fullmatch(text)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            for p in (lo, hi):
                if not 1 <= p <= 65535:
                    _fail(where, f"{p} is not a port")
            if lo > hi:
                _fail(where, f"{text!r} is an empty range")
            return (lo, hi), None
        if text.lower() in SERVICES:
            port, protos = SERVICES[text.lower()]
            return (port, port), protos
        _fail(where, f"{value!r} is not a port, a range or a known service name")
    _fail(where, f"{value!r} is not a port")
    return None  # unreachable


def parse_interface(value, where):
    """An interface name, or a prefix with a trailing '*' (any suffix) -> itself, or PolicyError."""
    if not isinstance(value, str):
        _fail(where, f"{value!r} is not an interface name")
    if value.endswith("+"):
        _fail(
            where,
            f"{value!r} ends in '+', iptables' wildcard, which nftables reads as a plain character: write "
            f"{value[:-1] + '*'!r} (a trailing * matches any suffix on every backend)",
        )
    if not _IFACE.fullmatch(value):
        _fail(
            where,
            f"{value!r} is not an interface name (at most 15 of A-Z a-z 0-9 _ . @ -, not starting with . "
            "or -, optionally ending in * to match any suffix)",
        )
    return value


def interface_matches(pattern, name):
    """Whether interface `name` matches `pattern` as every backend's kernel match does: a trailing '*'
    matches any suffix (nft's "eth*", iptables' eth+), anything else only the same name."""
    if pattern.endswith("*"):
        return name.startswith(pattern[:-1])
    return name == pattern


def parse_rate(value, where):
    """ "10/minute" -> "10/minute" (checked)."""
    match = _RATE.fullmatch(value.strip()) if isinstance(value, str) else None
    if not match:
        _fail(where, f"{value!r} is not a rate like 10/minute")
    if int(match.group(1)) > MAX_RATE * _SECONDS[match.group(2)]:
        _fail(
            where,
            f"{value!r} is faster than {MAX_RATE}/second, the most the iptables backend's hashlimit counts",
        )
    return value.strip()


def most_burst(rate):
    """The largest burst a rate keeps exactly on every backend: what the rate earns in a day."""
    count, unit = rate.split("/")
    return int(count) * _SECONDS["day"] // _SECONDS[unit]


def parse_burst(value, rate, where):
    """A rate limit's burst: a packet count the rate earns within a day (iptables' hashlimit overflows
    beyond that, refusing the rule or, worse, taking it with another burst)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100000:
        _fail(where, f"{value!r} is not a packet count")
    if value > most_burst(rate):
        _fail(
            where,
            f"{value} packets at {rate} take more than a day to earn, more than the iptables backend's "
            f"hashlimit counts: at most {most_burst(rate)}",
        )
    return value


def _as_list(value, where):
    if value is None:
        return []
    if isinstance(value, (str, int)):
        return [value]
    if isinstance(value, (list, tuple)):
        return list(value)
    _fail(where, f"{value!r} must be a list")
    return None


def _check_keys(obj, allowed, where):
    if not isinstance(obj, dict):
        _fail(where, f"{obj!r} must be a mapping")
    for key in obj:
        if key not in allowed:
            _fail(f"{where}.{key}", f"unknown option (known: {', '.join(sorted(allowed))})")


RULE_KEYS = (
    "port",
    "proto",
    "sources",
    "destinations",
    "interface",
    "comment",
    "rate_limit",
    "burst",
    "direction",
    "action",
)


class Rule:
    """One normalised rule. Equality is by value so diffs and tests compare plainly."""

    __slots__ = (
        "action",
        "burst",
        "comment",
        "destinations",
        "direction",
        "interface",
        "ports",
        "protos",
        "rate_limit",
        "sets",
        "sources",
    )

    def __init__(self, **kw):
        for key in self.__slots__:
            setattr(self, key, kw.get(key))

    def as_dict(self):
        return {
            "direction": self.direction,
            "action": self.action,
            "protos": list(self.protos),
            "ports": [f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in self.ports],
            "sources": [str(n) for n in self.sources],
            "sets": list(self.sets),
            "destinations": [str(n) for n in self.destinations],
            "interface": self.interface,
            "rate_limit": self.rate_limit,
            "burst": self.burst,
            "comment": self.comment,
        }

    def __eq__(self, other):
        return isinstance(other, Rule) and self.as_dict() == other.as_dict()

    def __hash__(self):
        return hash(repr(self))

    def __repr__(self):
        return f"Rule({self.as_dict()!r})"


def _rule_ports_protos(raw, where):
    """A rule's port ranges (sorted) and protocols: given, or implied by a service name (else tcp/any)."""
    ports, implied = [], None
    for i, p in enumerate(_as_list(raw.get("port"), f"{where}.port")):
        rng, protos = parse_port(
            p, f"{where}.port" if not isinstance(raw.get("port"), list) else f"{where}.port[{i}]"
        )
        ports.append(rng)
        implied = implied or protos
    protos_raw = raw.get("proto")
    if protos_raw is None:
        protos = list(implied) if implied else (["tcp"] if ports else ["any"])
    else:
        protos = []
        for proto in _as_list(protos_raw, f"{where}.proto"):
            name = str(proto).lower()
            if name not in PROTOCOLS:
                _fail(f"{where}.proto", f"{proto!r} is not a protocol ({', '.join(PROTOCOLS)})")
            if name not in protos:
                protos.append(name)
    if ports and any(p not in PORT_PROTOCOLS for p in protos):
        _fail(f"{where}.proto", f"ports need tcp or udp, not {', '.join(protos)}")
    if "any" in protos and len(protos) > 1:
        _fail(f"{where}.proto", "'any' cannot be combined with other protocols")
    return sorted(set(ports)), protos


def _rule_addresses(raw, where, set_names):
    """A rule's sources (collapsed, IPv4 then IPv6), the @sets it names, and its destinations."""
    sources, sets = [], []
    for i, src in enumerate(_as_list(raw.get("sources"), f"{where}.sources")):
        here = f"{where}.sources[{i}]"
        if isinstance(src, str) and src.startswith("@"):
            name = src[1:]
            if name not in set_names:
                _fail(here, f"{src!r} names no address set (known: {', '.join(sorted(set_names)) or 'none'})")
            if name not in sets:
                sets.append(name)
        else:
            sources.append(parse_network(src, here))
    destinations = [
        parse_network(d, f"{where}.destinations[{i}]")
        for i, d in enumerate(_as_list(raw.get("destinations"), f"{where}.destinations"))
    ]
    v4, v6 = collapse(sources)
    d4, d6 = collapse(destinations)
    return tuple(v4 + v6), tuple(sets), tuple(d4 + d6)


def _rule_comment(raw, where):
    comment = raw.get("comment") or ""
    if not isinstance(comment, str) or '"' in comment or "\\" in comment:
        _fail(f"{where}.comment", "must be text without quotes or backslashes")
    if len(comment.encode()) > COMMENT_BYTES:
        _fail(
            f"{where}.comment",
            f"is {len(comment.encode())} bytes in UTF-8; nft keeps {COMMENT_BYTES} of the operator's",
        )
    return comment


def _rule_rate(raw, where, action, direction):
    """A rule's per-source rate limit and burst (None, None without one)."""
    rate = raw.get("rate_limit")
    burst = raw.get("burst")
    if burst is not None and rate is None:
        _fail(f"{where}.burst", "needs rate_limit")
    if rate is not None:
        rate = parse_rate(rate, f"{where}.rate_limit")
        burst = min(DEFAULT_BURST, most_burst(rate)) if burst is None else burst
        burst = parse_burst(burst, rate, f"{where}.burst")
    if rate is not None and action != "accept":
        _fail(f"{where}.rate_limit", "only accept rules are rate-limited")
    if rate is not None and direction != "in":
        _fail(f"{where}.rate_limit", "only incoming rules are rate-limited")
    return rate, burst


def normalise_rule(raw, where, set_names):
    _check_keys(raw, RULE_KEYS, where)
    direction = raw.get("direction") or "in"
    if direction not in DIRECTIONS:
        _fail(f"{where}.direction", f"{direction!r} is not one of {', '.join(DIRECTIONS)}")
    action = raw.get("action") or "accept"
    if action not in POLICIES:
        _fail(f"{where}.action", f"{action!r} is not one of {', '.join(POLICIES)}")
    ports, protos = _rule_ports_protos(raw, where)
    sources, sets, destinations = _rule_addresses(raw, where, set_names)
    iface = raw.get("interface")
    if iface is not None:
        parse_interface(iface, f"{where}.interface")
    comment = _rule_comment(raw, where)
    rate, burst = _rule_rate(raw, where, action, direction)
    return Rule(
        direction=direction,
        action=action,
        protos=tuple(protos),
        ports=tuple(ports),
        sources=sources,
        sets=sets,
        destinations=destinations,
        interface=iface,
        comment=comment,
        rate_limit=rate,
        burst=burst,
    )


class Policy:
    """The normalised, complete desired state of the host firewall."""

    def __init__(self, **kw):
        self.incoming = kw["incoming"]
        self.routed = kw["routed"]
        self.outgoing = kw["outgoing"]
        self.admin = kw["admin"]  # (v4 list, v6 list)
        self.sets = kw["sets"]  # name -> (v4 list, v6 list), ordered by name
        self.rules = kw["rules"]
        self.service_count = kw.get("service_count", 0)
        self.ssh_port = kw["ssh_port"]
        self.ssh_restricted = kw["ssh_restricted"]
        self.ssh_rate_limit = kw["ssh_rate_limit"]
        self.ssh_burst = kw["ssh_burst"]
        self.icmp_echo = kw["icmp_echo"]
        self.docker = kw["docker"]
        self.docker_interfaces = kw["docker_interfaces"]

    def as_dict(self):
        return {
            "default_incoming": self.incoming,
            "default_routed": self.routed,
            "default_outgoing": self.outgoing,
            "admin_networks": [str(n) for n in self.admin[0] + self.admin[1]],
            "sets": {k: len(v[0]) + len(v[1]) for k, v in self.sets.items()},
            "rules": [r.as_dict() for r in self.rules],
            "ssh": {
                "port": self.ssh_port,
                "restricted": self.ssh_restricted,
                "rate_limit": self.ssh_rate_limit,
                "burst": self.ssh_burst,
            },
            "icmp_echo": self.icmp_echo,
            "docker": self.docker,
        }


POLICY_KEYS = (
    "default_incoming",
    "default_routed",
    "default_outgoing",
    "admin_networks",
    "sets",
    "rules",
    "services",
    "ssh_port",
    "ssh_restricted",
    "ssh_rate_limit",
    "ssh_burst",
    "icmp_echo",
    "docker",
    "docker_interfaces",
)


def _sets(options):
    """The named address sets: {name: (IPv4 networks, IPv6 networks)}, names checked."""
    raw_sets = options.get("sets") or {}
    if not isinstance(raw_sets, dict):
        _fail("sets", "must be a mapping of set name to a list of CIDRs")
    sets = {}
    for name in sorted(raw_sets):
        if not isinstance(name, str) or not _SET_NAME.fullmatch(name):
            _fail(
                f"sets.{name}",
                "a set name is lowercase letters, digits and _, at most 24, starting with a letter",
            )
        if name in RESERVED_SETS:
            _fail(f"sets.{name}", "is reserved (the admin networks)")
        if _METER_SET.fullmatch(name):
            _fail(
                f"sets.{name}",
                "is reserved (the per-source rate limits keep their meters as rl<n> and rlssh)",
            )
        nets = [
            parse_network(n, f"sets.{name}[{i}]")
            for i, n in enumerate(_as_list(raw_sets[name], f"sets.{name}"))
        ]
        sets[name] = collapse(nets)
    return sets


def _rules(options, sets):
    """The services (ports open to every source, first) and the rules: (rules, how many are services)."""
    rules = []
    for i, svc in enumerate(_as_list(options.get("services"), "services")):
        if isinstance(svc, dict):
            _fail(f"services[{i}]", f"{svc!r} is not a port or a service name (put mappings in rules)")
        rule = normalise_rule({"port": svc, "comment": f"service {svc}"}, f"services[{i}]", sets)
        rules.append(rule)
    service_count = len(rules)
    rules += [
        normalise_rule(raw, f"rules[{i}]", sets)
        for i, raw in enumerate(_as_list(options.get("rules"), "rules"))
    ]
    return rules, service_count


def _ssh(options, admin):
    """SSH's port, whether it is restricted to the admin networks, and its per-source rate and burst."""
    ssh_port = options.get("ssh_port", 22)
    if ssh_port is None:
        ssh_port = 22
    (ssh_lo, _hi), _unused = parse_port(ssh_port, "ssh_port")
    if isinstance(ssh_port, str) and not _PORT.fullmatch(ssh_port.strip()):
        _fail("ssh_port", f"{ssh_port!r} is not a port number")
    restricted = options.get("ssh_restricted", True)
    if restricted is None:
        restricted = True
    if not isinstance(restricted, bool):
        _fail("ssh_restricted", f"{restricted!r} is not a boolean")
    if restricted and not admin:
        _fail(
            "admin_networks",
            "is empty while SSH is restricted to the admin networks: nobody could reach SSH "
            "(set bulwark_admin_networks, or ssh_restricted: false)",
        )
    rate = options.get("ssh_rate_limit", "10/minute")
    burst = options.get("ssh_burst", 5)
    if rate in (None, "", False):
        rate, burst = None, None
    else:
        rate = parse_rate(rate, "ssh_rate_limit")
        burst = parse_burst(DEFAULT_BURST if burst is None else burst, rate, "ssh_burst")
    return ssh_lo, restricted, rate, burst


def normalise(options):
    """Options (as the module receives them) -> Policy, or PolicyError naming the option."""
    _check_keys(options, POLICY_KEYS, "policy")
    for key, value in options.items():
        refuse_control(value, key)
    pol = {}
    for key, default in (
        ("default_incoming", "drop"),
        ("default_routed", "drop"),
        ("default_outgoing", "accept"),
    ):
        value = options.get(key) or default
        if value not in POLICIES:
            _fail(key, f"{value!r} is not one of {', '.join(POLICIES)}")
        pol[key] = value
    admin = [
        parse_network(n, f"admin_networks[{i}]")
        for i, n in enumerate(_as_list(options.get("admin_networks"), "admin_networks"))
    ]
    sets = _sets(options)
    rules, service_count = _rules(options, sets)
    ssh_port, restricted, rate, burst = _ssh(options, admin)
    icmp_echo = options.get("icmp_echo", True)
    if not isinstance(icmp_echo, bool):
        _fail("icmp_echo", f"{icmp_echo!r} is not a boolean")
    docker = bool(options.get("docker", False))
    ifaces = _as_list(options.get("docker_interfaces") or ["docker0", "br-*"], "docker_interfaces")
    for i, iface in enumerate(ifaces):
        parse_interface(iface, f"docker_interfaces[{i}]")
    if docker and pol["default_routed"] == "accept":
        docker = False  # nothing to do: routed traffic is accepted anyway
    return Policy(
        incoming=pol["default_incoming"],
        routed=pol["default_routed"],
        outgoing=pol["default_outgoing"],
        admin=collapse(admin),
        sets=sets,
        rules=rules,
        service_count=service_count,
        ssh_port=ssh_port,
        ssh_restricted=restricted,
        ssh_rate_limit=rate,
        ssh_burst=burst,
        icmp_echo=icmp_echo,
        docker=docker,
        docker_interfaces=tuple(ifaces),
    )
