"""The connections the audit asks sshd about with `sshd -T -C` (pure, no host access).

`sshd -T` alone shows the global settings: a `Match User root` or `Match Address *` block that
re-opens what they close is invisible there. The audit therefore asks sshd for the effective
configuration of concrete connections: root's, each admin's, anyone's from an address outside the
admin networks, and, for each Match block of the configuration files, one connection that the block
selects (a user, group member, address, host name, local address and port that satisfy its criteria,
negations included). sshd evaluates every context itself; this module only chooses them, and names the
blocks that apply to each (for the evidence; the verdict is sshd's).

A block for which no connection can be built (a group nobody is in, a criterion this module does not
know) is returned as unjudged, with the reason: the checks judge its own settings instead.
"""

import collections
import ipaddress
import re

from ansible_collections.bulwark.hardening.plugins.module_utils.sshd import effective

# Documentation addresses (RFC 5737): TEST-NET-3 first; the first one in no admin network is "outside".
OUTSIDE_CANDIDATES = ("203.0.113.7", "198.51.100.7", "192.0.2.7")
# A user that is neither root nor an admin, for "anyone from outside" (sshd does not need it to exist).
PROBE_USER = "nobody"
DEFAULT_PORT = 22

# What `sshd -T -C` takes: user=,host=,addr=,laddr=,lport=[,rdomain=]; a value is one comma-free word.
SPEC_KEYS = ("user", "host", "addr", "laddr", "lport", "rdomain")
_SPEC_VALUE = re.compile(r"[A-Za-z0-9_.:@$%+-]+")

Context = collections.namedtuple("Context", "label user spec blocks")
Context.__doc__ = """label: how findings name it; spec: {user, host, addr, laddr, lport[, rdomain]};
blocks: indexes of the Match blocks that apply to it by this module's reading."""
Unjudged = collections.namedtuple("Unjudged", "block reason never")
Unjudged.__doc__ = """never: sshd can never apply the block (a criterion of negated patterns only)."""


# --- OpenSSH's matching (match.c, addrmatch.c), for choosing values and naming blocks -------------------


def _pattern(text, pattern):
    """match_pattern: `*` and `?` only (no character classes, unlike fnmatch)."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, re.DOTALL) is not None


def match_list(text, patterns, lower=False):
    """match_pattern_list: -1 if a negated pattern matches, 1 if a positive one does, else 0."""
    if lower:
        text, patterns = text.lower(), patterns.lower()
    found = 0
    for pattern in patterns.split(","):
        negated = pattern.startswith("!")
        if _pattern(text, pattern[1:] if negated else pattern):
            if negated:
                return -1
            found = 1
    return found


def _network(entry):
    """An address or CIDR entry as sshd parses it; None for a wildcard pattern; ValueError for host bits."""
    try:
        return ipaddress.ip_network(entry, strict=True)
    except ValueError:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            return None
        raise  # 10.0.0.1/8: sshd refuses it ("inconsistent mask length")


def addr_match(address, patterns):
    """addr_match_list: CIDR entries first, wildcards on the text; an unparsable address matches nothing."""
    try:
        addr = ipaddress.ip_address(address)
    except ValueError:
        return 0
    found = 0
    for written in patterns.split(","):
        negated = written.startswith("!")
        entry = written[1:] if negated else written
        try:
            net = _network(entry)
        except ValueError:
            return 0
        hit = (addr in net) if net is not None else _pattern(address, entry)
        if hit:
            if negated:
                return -1
            found = 1
    return found


def _groups_match(groups, patterns):
    """ga_match_pattern_list: one group matching positively, none negatively."""
    found = False
    for group in groups:
        result = match_list(group, patterns)
        if result == -1:
            return False
        found = found or result == 1
    return found


def applies(block, spec, groups_of):
    """True/False: does the block select this connection; None when a criterion is not known here."""
    for name, value in block.criteria:
        if name == "all":
            continue
        if name == "user":
            hit = match_list(spec["user"], value) == 1
        elif name == "group":
            hit = _groups_match(groups_of(spec["user"]), value)
        elif name == "host":
            hit = match_list(spec["host"], value, lower=True) == 1
        elif name == "address":
            hit = addr_match(spec["addr"], value) == 1
        elif name == "localaddress":
            hit = addr_match(spec["laddr"], value) == 1
        elif name == "localport":
            hit = value.isdigit() and int(value) == int(spec["lport"])
        elif name == "rdomain":
            hit = "rdomain" in spec and match_list(spec["rdomain"], value) == 1
        else:
            return None
        if not hit:
            return False
    return True


# --- choosing concrete values ------------------------------------------------------------------------


def _positives(patterns):
    return [p for p in patterns.split(",") if p and not p.startswith("!")]


def _filled(pattern, fillers):
    """The pattern with its wildcards filled in each way (a name for `*`, a character for `?`)."""
    return [pattern.replace("*", filler).replace("?", filler[:1]) for filler in fillers]


def _names(patterns, filler="x"):
    return [name for p in _positives(patterns) for name in _filled(p, (filler,))]


# Fillers that turn an address pattern (10.0.*, 2001:db8:*) into an address.
_ADDRESS_FILLERS = ("1", "1.1", "1.1.1", "1.1.1.1", ":1", "1::1", "0:0:0:1")


def _addresses(patterns):
    """Addresses inside each positive entry: a network's first and last hosts, wildcards filled in."""
    found = []
    for entry in _positives(patterns):
        try:
            net = _network(entry)
        except ValueError:
            continue
        if net is None:
            found += _filled(entry, _ADDRESS_FILLERS)
        elif net.num_addresses <= 2:
            found.append(str(net[0]))
        else:
            found += [str(net[1]), str(net[-2])]
    return found


def _first(candidates, accept):
    for candidate in candidates:
        if candidate is not None and _SPEC_VALUE.fullmatch(str(candidate)) and accept(candidate):
            return candidate
    return None


def outside_address(admin_networks):
    """The first documentation address in no admin network (the last candidate when all of them are)."""
    for address in OUTSIDE_CANDIDATES:
        if not any(ipaddress.ip_address(address) in net for net in admin_networks):
            return address
    return OUTSIDE_CANDIDATES[-1]


def admin_address(admin_networks):
    """An address inside the first admin network (an admin connects from there), or None."""
    if not admin_networks:
        return None
    net = admin_networks[0]
    return str(net[0] if net.num_addresses <= 2 else net[1])


def _local_address(listen_addresses, address):
    """sshd's own address for a connection: a ListenAddress of the same family, or the wildcard."""
    family = ipaddress.ip_address(address).version
    for listen in listen_addresses:
        try:
            parsed = ipaddress.ip_address(listen)
        except ValueError:
            continue
        if parsed.version == family and not parsed.is_loopback and not parsed.is_unspecified:
            return listen
    return "0.0.0.0" if family == 4 else "::"  # noqa: S104  (a value to match Match LocalAddress against)


def listen_addresses(eff):
    """The addresses of `sshd -T`'s listenaddress lines (0.0.0.0:22, [::]:22, 10.0.0.5:2222 rdomain x)."""
    found = []
    for line in eff.lines("listenaddress") if eff else []:
        address = line.split()[0].rpartition(":")[0].strip("[]") if line else ""
        if address:
            found.append(address)
    return found


class _Never(Exception):
    """A block sshd can never apply; the message says why."""


class _Chooser:
    """Builds one connection per Match block from what the host knows (accounts, admins, addresses)."""

    def __init__(self, *, admins, accounts, outside, admin_from, listen, lport):
        self.admins, self.accounts = admins, accounts
        self.outside, self.admin_from = outside, admin_from
        self.listen, self.lport = listen, lport

    def groups_of(self, user):
        return self.accounts.get(user, [])

    def spec(self, user, addr, *, host=None, laddr=None, lport=None, rdomain=None):
        spec = {
            "user": user,
            "host": host or addr,  # UseDNS no (Debian's default): sshd matches Host against the address
            "addr": addr,
            "laddr": laddr or _local_address(self.listen, addr),
            "lport": lport or self.lport,
        }
        if rdomain:
            spec["rdomain"] = rdomain
        return spec

    def _user(self, criteria):
        users, groups = criteria.get("user"), criteria.get("group")
        if users is None and groups is None:
            return "root", None  # root: its context judges PermitRootLogin as well as the rest
        known = ["root", *self.admins, *sorted(set(self.accounts) - {"root", *self.admins})]
        made_up = [] if groups is not None or users is None else _names(users)

        def fits(user):
            return (users is None or match_list(user, users) == 1) and (
                groups is None or _groups_match(self.groups_of(user), groups)
            )

        user = _first([*known, *made_up], fits)
        if user is not None:
            return user, None
        if groups is not None:
            return None, f"no account is in a group that Group {groups} selects"
        return None, f"no user name satisfies User {users}"

    def build(self, block):
        """(spec, None) of a connection the block selects, or (None, why not)."""
        criteria = {}
        for name, value in block.criteria:
            if name not in effective.CRITERIA:
                return None, f"the audit cannot build a connection for criterion {name!r}"
            if name not in ("all", "localport") and not _positives(value):
                raise _Never(
                    f"{effective.CRITERIA[name]} {value} has only negated patterns, which sshd never matches"
                )
            criteria.setdefault(name, value)
        user, why = self._user(criteria)
        if user is None:
            return None, why
        choices = {}
        for name, key, candidates in (
            ("address", "addr", [self.outside, *OUTSIDE_CANDIDATES, self.admin_from]),
            ("localaddress", "laddr", [*self.listen, "0.0.0.0", "::"]),  # noqa: S104
        ):
            if name in criteria:
                value = criteria[name]
                choices[key] = _first(
                    [*candidates, *_addresses(value)], lambda c, v=value: addr_match(c, v) == 1
                )
                if choices[key] is None:
                    return None, f"no address satisfies {effective.CRITERIA[name]} {value}"
        addr = choices.get("addr") or self.outside
        if "host" in criteria:
            value = criteria["host"]
            choices["host"] = _first(
                [addr, *_names(value, "probe")], lambda c: match_list(c, value, lower=True) == 1
            )
            if choices["host"] is None:
                return None, f"no host name satisfies Host {value}"
        if "localport" in criteria:
            value = criteria["localport"]
            if not value.isdigit() or not 1 <= int(value) <= 65535:
                return None, f"LocalPort {value} is not a port"
            choices["lport"] = int(value)
        if "rdomain" in criteria:
            value = criteria["rdomain"]
            choices["rdomain"] = _first(_names(value, "rd"), lambda c: match_list(c, value) == 1)
            if choices["rdomain"] is None:
                return None, f"no routing domain satisfies RDomain {value}"
        spec = self.spec(
            user, addr, host=choices.get("host"), laddr=choices.get("laddr"),
            lport=choices.get("lport"), rdomain=choices.get("rdomain"),
        )  # fmt: skip
        if applies(block, spec, self.groups_of) is not True:
            return None, "no connection satisfies all of its criteria together"
        return spec, None


def _label(spec, default_lport):
    words = [f"{spec['user']} from {spec['addr']}"]
    if spec["host"] != spec["addr"]:
        words.append(f"(host {spec['host']})")
    if spec["laddr"] not in ("0.0.0.0", "::") or spec["lport"] != default_lport:  # noqa: S104
        words.append(f"to {spec['laddr']} port {spec['lport']}")
    if "rdomain" in spec:
        words.append(f"in rdomain {spec['rdomain']}")
    return " ".join(words)


def plan(blocks, *, admins, accounts, admin_networks=(), ports=(), listen=()):
    """([Context], [Unjudged]) to ask sshd about.

    blocks: [effective.MatchBlock] of the configuration files; admins: the admins' names (root left out);
    accounts: {user: [group names]} of the host's accounts; admin_networks: [ip_network];
    ports, listen: `sshd -T`'s ports and listen addresses.
    """
    lport = int(ports[0]) if ports else DEFAULT_PORT
    outside = outside_address(admin_networks)
    admin_from = admin_address(admin_networks) or outside
    admins = [name for name in admins if name != "root" and _SPEC_VALUE.fullmatch(name)]
    chooser = _Chooser(
        admins=admins,
        accounts=accounts,
        outside=outside,
        admin_from=admin_from,
        listen=list(listen),
        lport=lport,
    )
    wanted = [(f"root from {outside}", chooser.spec("root", outside))]
    wanted += [(f"admin {name} from {admin_from}", chooser.spec(name, admin_from)) for name in admins]
    wanted.append((f"address {outside}", chooser.spec(PROBE_USER, outside)))
    unjudged = []
    for block in blocks:
        try:
            spec, why = chooser.build(block)
        except _Never as exc:
            unjudged.append(Unjudged(block, str(exc), True))
            continue
        if spec is None:
            unjudged.append(Unjudged(block, why, False))
        else:
            wanted.append((_label(spec, lport), spec))
    contexts, seen = [], set()
    for label, spec in wanted:
        key = spec_text(spec)
        if key in seen:
            continue  # a block's connection that is already asked about (Match Address * and root's)
        seen.add(key)
        matched = [i for i, block in enumerate(blocks) if applies(block, spec, chooser.groups_of)]
        contexts.append(Context(label, spec["user"], spec, matched))
    return contexts, unjudged


def probe_spec(admin_networks, ports=()):
    """Anyone's connection from outside: what the audit reads as the global settings when sshd refuses
    `sshd -T` without -C (OpenSSH 9 does when a Match LocalPort block needs the local port)."""
    outside = outside_address(admin_networks)
    lport = int(ports[0]) if ports else DEFAULT_PORT
    return _Chooser(admins=[], accounts={}, outside=outside, admin_from=outside, listen=[], lport=lport).spec(
        PROBE_USER, outside
    )


def spec_text(spec):
    """The argument of `sshd -T -C`."""
    return ",".join(f"{key}={spec[key]}" for key in SPEC_KEYS if key in spec)
