"""The overlay mesh: validate the group's members and compute one host's view of it (pure).

Members come from the inventory group, not from the play. Each member's overlay address is the one
the inventory gives, or one allocated from the CIDR by a hash of the host's name (the same host always
gets the same address, whatever else is in the group); a container subnet likewise. Hosts without an
underlay endpoint (behind NAT) are spokes: they keep a persistent keepalive to the hub, which routes
for them. Bad input raises MeshError naming the host and the option.
"""

import hashlib
import ipaddress
import re

from ..text import control_character, plain_path

_NAME = re.compile(r"[A-Za-z0-9_.@+-]{1,253}")
# What Linux and wg-quick both take (wg-quick: [a-zA-Z0-9_=+.-]{1,15}; Linux: not "." or ".."): the name is
# a file name under /etc/wireguard and a systemd instance name.
# As the firewall's rules name interfaces (model.parse_interface, no wildcard): the overlay's interface is
# named in them, so a name the firewall would refuse is refused here, under the overlay's own option.
_INTERFACE = re.compile(r"(?=.{1,15}\Z)[A-Za-z0-9_][A-Za-z0-9_.-]*")
STATES = ("key", "present", "absent", "status")
DEFAULT_INTERFACE = "wg0"
DEFAULT_KEY_DIR = "/etc/bulwark/overlay"
_DNS_NAME = re.compile(r"(?=.{1,253}\Z)(?=.*[A-Za-z])(?!.*\.\.)[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9])?\.?")
_DOCKER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
# 32 bytes in standard base64: 43 characters and one "=".
KEY_PATTERN = re.compile(r"[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=")
# WireGuard's encapsulation over IPv6 (the larger of the two underlays): 40 + 8 + 32 bytes.
OVERHEAD = 80
DEFAULT_KEEPALIVE = 25


class MeshError(ValueError):
    """Bad input; the message names the host and the option."""


def _fail(where, msg):
    raise MeshError(f"{where}: {msg}. Nothing was applied")


def _text(value, where):
    if not isinstance(value, str) or not value:
        _fail(where, f"{value!r} is not a non-empty string")
    bad = control_character(value)
    if bad:
        _fail(where, f"contains a control character ({bad})")
    return value


def valid_key(value, where):
    """A WireGuard public key (base64 of 32 bytes), whole, or MeshError."""
    _text(value, where)
    if not KEY_PATTERN.fullmatch(value):
        _fail(where, f"{value!r} is not a WireGuard public key (base64 of 32 bytes)")
    return value


def _network(value, where, version=None):
    _text(value, where)
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError:
        _fail(where, f"{value!r} is not a CIDR (host bits must be zero)")
    if version and net.version != version:
        _fail(where, f"{value!r} is not an IPv{version} network")
    return net


def _address(value, where):
    _text(value, where)
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        _fail(where, f"{value!r} is not an IP address")
    if getattr(address, "scope_id", None) is not None:
        # Python takes any text after "%" as an IPv6 scope; it would be written into wg0.conf and nft sets.
        _fail(where, f"{value!r} is not an IP address (no %scope here)")
    return address


def _endpoint_address(value, name, source=None):
    """A member's underlay address. A DNS name is refused, not resolved: the controller's answer need not be
    the one the peers get, it may change after the run, and the peers' firewalls admit addresses."""
    where = f"{name}: overlay_endpoint"
    _text(value, where)
    try:
        return _address(value, where)
    except MeshError:
        if not _DNS_NAME.fullmatch(value):
            raise
    origin = f" (its default, from {source})" if source else ""
    _fail(
        where,
        f"{value!r}{origin} is a DNS name, not an IP address: names are not resolved; set overlay_endpoint "
        "to the underlay address its peers reach it at (empty: behind NAT)",
    )


def member_name(value, where):
    """A member's (host's) name: it names a file (the peer's preshared key) and a registry entry."""
    _text(value, where)
    if not _NAME.fullmatch(value) or value in (".", ".."):
        _fail(where, f"{value!r} is not a host name")
    return value


def interface_name(value, where="bulwark_overlay_interface"):
    """The WireGuard interface's name, or MeshError: it names /etc/wireguard/<name>.conf and a unit."""
    _text(value, where)
    if not _INTERFACE.fullmatch(value) or value in (".", ".."):
        _fail(
            where,
            f"{value!r} is not an interface name (up to 15 of A-Z a-z 0-9 _ . -, not starting with . or -)",
        )
    return value


def key_directory(value, where="overlay_key_dir"):
    """The key directory, a plain absolute path, or MeshError: wg-quick's PostUp names files in it."""
    try:
        return plain_path(value, where)
    except ValueError as exc:
        raise MeshError(str(exc)) from None


def _given(options, key, default):
    value = options.get(key)
    return default if value is None else value


def host_options(options):
    """{state, interface, key_dir} of a call, checked whatever the state (each names files on the host, and
    state=absent removes one), with their defaults; MeshError naming the option."""
    state = options.get("state") or "present"
    if state not in STATES:
        _fail("state", f"{state!r} is not one of {', '.join(STATES)}")
    return {
        "state": state,
        "interface": interface_name(_given(options, "interface", DEFAULT_INTERFACE)),
        "key_dir": key_directory(_given(options, "key_dir", DEFAULT_KEY_DIR)),
    }


def unique_keys(members):
    """MeshError naming both members when two share a public key (WireGuard would keep one peer of the two,
    and route the other's addresses to it)."""
    owner = {}
    for member in members:
        key = member.public_key
        if not key:
            continue
        if key in owner:
            _fail(
                f"{member.name}: public key",
                f"{key} is also {owner[key]}'s: two members cannot share a key",
            )
        owner[key] = member.name


def _slot(name, salt, count):
    """A stable index in [0, count) from the host's name (not from its place in the group)."""
    digest = hashlib.sha256(f"{salt}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


def allocate(names, pool, fixed, salt):
    """{name: item} for every name: fixed[name] where given, else the item of pool at its hashed slot.

    pool is a sequence of addresses or of subnets; a hashed slot that is taken (or, for subnets,
    overlaps one taken) moves to the next free one, hosts taken in name order, so the result never
    depends on the order of the group and the pool's size never changes with the explicit items.
    """
    taken = list(fixed.values())

    def busy(item):
        if isinstance(item, ipaddress._BaseNetwork):
            return any(item.overlaps(t) for t in taken)
        return item in taken

    result = dict(fixed)
    for name in sorted(n for n in names if n not in fixed):
        index = _slot(name, salt, len(pool))
        for _step in range(len(pool)):
            if not busy(pool[index]):
                break
            index = (index + 1) % len(pool)
        else:
            raise MeshError(f"{name}: no free {salt} left in the pool. Nothing was applied")
        taken.append(pool[index])
        result[name] = pool[index]
    return result


class Settings:
    """The mesh-wide options (the role's overlay_* variables)."""

    def __init__(self, raw):
        self.cidr = _network(raw.get("cidr"), "bulwark_overlay_cidr", 4)
        if self.cidr.prefixlen > 30:
            _fail("bulwark_overlay_cidr", f"{self.cidr} is too small for a mesh")
        self.port = raw.get("port", 51820)
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            _fail("bulwark_overlay_port", f"{self.port!r} is not a port")
        self.interface = interface_name(raw.get("interface", DEFAULT_INTERFACE))
        self.keepalive = raw.get("keepalive", DEFAULT_KEEPALIVE)
        if isinstance(self.keepalive, bool) or not isinstance(self.keepalive, int):
            _fail("overlay_keepalive", f"{self.keepalive!r} is not a number of seconds")
        if not 0 <= self.keepalive <= 65535:
            _fail("overlay_keepalive", f"{self.keepalive} is not between 0 and 65535")
        self.mtu = raw.get("mtu")
        if self.mtu is not None and (
            isinstance(self.mtu, bool) or not isinstance(self.mtu, int) or not 1280 <= self.mtu <= 9000
        ):
            _fail("overlay_mtu", f"{self.mtu!r} is not an MTU between 1280 and 9000")
        self.container_cidr = None
        self.container_prefix = raw.get("container_prefix", 24)
        if raw.get("container_cidr"):
            self.container_cidr = _network(raw["container_cidr"], "bulwark_overlay_container_cidr", 4)
            if self.container_cidr.overlaps(self.cidr):
                _fail(
                    "bulwark_overlay_container_cidr",
                    f"{self.container_cidr} overlaps bulwark_overlay_cidr {self.cidr}",
                )
            if (
                isinstance(self.container_prefix, bool)
                or not isinstance(self.container_prefix, int)
                or not self.container_cidr.prefixlen <= self.container_prefix <= 29
            ):
                _fail(
                    "bulwark_overlay_container_prefix",
                    f"{self.container_prefix!r} is not a prefix length between "
                    f"{self.container_cidr.prefixlen} and 29",
                )
        self.container_network = _text(
            raw.get("container_network", "bulwark-overlay"), "overlay_container_network"
        )
        if not _DOCKER_NAME.fullmatch(self.container_network):
            _fail("overlay_container_network", f"{self.container_network!r} is not a Docker network name")
        self.hub = raw.get("hub") or None


class Member:
    __slots__ = ("address", "container_subnet", "endpoint", "name", "public_key")

    def __init__(self, name, address, endpoint, public_key, container_subnet):
        self.name = name
        self.address = address
        self.endpoint = endpoint
        self.public_key = public_key
        self.container_subnet = container_subnet


class Mesh:
    """Every member, with its address, endpoint and key, and the hub of the spokes."""

    def __init__(self, settings, members, hub):
        self.settings = settings
        self.members = members  # name -> Member, sorted by name
        self.hub = hub

    def spokes(self):
        return [m for m in self.members.values() if m.endpoint is None]

    def view(self, name):
        """What host `name` configures: its interface and its peers (sorted by name)."""
        me = self.members[name]
        s = self.settings
        peers = []
        if me.endpoint is None:
            # A spoke reaches everything through the hub, and keeps its NAT mapping open.
            hub = self.members[self.hub]
            routed = [s.cidr] + ([s.container_cidr] if s.container_cidr else [])
            peers.append(_peer(hub, routed, s.port, s.keepalive or DEFAULT_KEEPALIVE))
        else:
            for other in self.members.values():
                if other.name == name:
                    continue
                if other.endpoint is None and name != self.hub:
                    continue  # reached through the hub
                allowed = _own_networks(other)
                if other.name == self.hub and name != self.hub:
                    for spoke in self.spokes():
                        allowed += _own_networks(spoke)
                keepalive = 0 if other.endpoint is None else s.keepalive
                peers.append(_peer(other, allowed, s.port, keepalive))
        return {
            "name": name,
            "address": f"{me.address}/{s.cidr.prefixlen}",
            "container_subnet": str(me.container_subnet) if me.container_subnet else None,
            "listen_port": s.port,
            "interface": s.interface,
            "forwarding": name == self.hub and bool(self.spokes()),
            "peers": peers,
        }

    def underlay_peers(self, name):
        """The underlay addresses that may send to name's WireGuard port (its current peers')."""
        view = self.view(name)
        found = {self.members[p["name"]].endpoint for p in view["peers"]} - {None}
        return [str(a) for a in sorted(found)]


def _own_networks(member):
    return [ipaddress.ip_network(member.address)] + (
        [member.container_subnet] if member.container_subnet else []
    )


def _endpoint(address, port):
    # As `wg show dump` writes it (an IPv6 address in brackets), so that the live and wanted ones compare.
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


def _peer(member, allowed, port, keepalive):
    return {
        "name": member.name,
        "public_key": member.public_key,
        "allowed_ips": [str(n) for n in allowed],
        "endpoint": _endpoint(member.endpoint, port) if member.endpoint else None,
        "keepalive": keepalive,
    }


def build(settings_raw, members_raw, require_keys=True):
    """The options and the group's members (list of mappings) -> Mesh, or MeshError naming the host.

    A member: name, address (optional), endpoint (underlay address; absent behind NAT),
    public_key (None when unknown: an error with require_keys), container_subnet (optional).
    """
    s = Settings(settings_raw or {})
    if not isinstance(members_raw, list) or not members_raw:
        _fail("bulwark_overlay_group", "has no members")
    seen, fixed_addr, fixed_sub, endpoints = _given_members(s, members_raw, require_keys)
    names = sorted(seen)
    hosts = list(s.cidr.hosts())
    # Explicit addresses first, then the rest hashed into what is left: a joining host never moves one.
    addresses = allocate(names, hosts, fixed_addr, "address")
    subnets = {}
    if s.container_cidr:
        pool = list(s.container_cidr.subnets(new_prefix=s.container_prefix))
        subnets = allocate(names, pool, fixed_sub, "subnet")
    members = {
        n: Member(n, addresses[n], endpoints.get(n), seen[n].get("public_key") or None, subnets.get(n))
        for n in names
    }
    unique_keys(members.values())
    return Mesh(s, members, _hub(s.hub, members))


def _given_members(s, members_raw, require_keys):
    """Each member's given values, checked: (raw by name, fixed addresses, fixed subnets, endpoints)."""
    seen = {}
    fixed_addr, fixed_sub, endpoints = {}, {}, {}
    for i, raw in enumerate(members_raw):
        if not isinstance(raw, dict):
            _fail(f"members[{i}]", f"{raw!r} is not a mapping")
        name = member_name(raw.get("name"), f"members[{i}].name")
        if name in seen:
            _fail(name, "is listed twice in the group")
        seen[name] = raw
        if raw.get("address"):
            addr = _address(raw["address"], f"{name}: overlay_address")
            if addr not in s.cidr or addr in (s.cidr.network_address, s.cidr.broadcast_address):
                _fail(
                    f"{name}: overlay_address",
                    f"{addr} is not a host address in bulwark_overlay_cidr {s.cidr}",
                )
            other = next((n for n, a in fixed_addr.items() if a == addr), None)
            if other:
                _fail(f"{name}: overlay_address", f"{addr} is already {other}'s address")
            fixed_addr[name] = addr
        if raw.get("endpoint"):
            endpoints[name] = _endpoint_address(raw["endpoint"], name, raw.get("endpoint_from"))
        if raw.get("container_subnet"):
            where = f"{name}: overlay_container_subnet"
            if s.container_cidr is None:
                _fail(where, "is set but bulwark_overlay_container_cidr is not")
            sub = _network(raw["container_subnet"], where, 4)
            if not sub.subnet_of(s.container_cidr):
                _fail(where, f"{sub} is not inside bulwark_overlay_container_cidr {s.container_cidr}")
            other = next((n for n, o in fixed_sub.items() if o.overlaps(sub)), None)
            if other:
                _fail(where, f"{sub} overlaps {other}'s subnet {fixed_sub[other]}")
            fixed_sub[name] = sub
        key = raw.get("public_key")
        if key:
            valid_key(key, f"{name}: public key")
        elif require_keys:
            _fail(
                name,
                "its overlay public key is unknown (not in this run and not in the peer registry); "
                "run the play with this host included",
            )
    return seen, fixed_addr, fixed_sub, endpoints


def _hub(hub, members):
    """The hub of the spokes: the one named, or the first member by name with an endpoint."""
    if hub is not None and hub not in members:
        _fail("bulwark_overlay_hub", f"{hub!r} is not a member of the group")
    if hub is not None and members[hub].endpoint is None:
        _fail("bulwark_overlay_hub", f"{hub} has no overlay_endpoint: a hub must be reachable")
    if hub is None and any(m.endpoint is None for m in members.values()):
        hub = next((n for n, m in members.items() if m.endpoint is not None), None)
        if hub is None:
            _fail("bulwark_overlay_hub", "no member has an overlay_endpoint: nobody can be the hub")
    return hub


def members_from_inventory(group, hostvars, registry=None, key_result="__overlay_key"):
    """The group's members as build() takes them, from each host's variables (a mapping per host).

    endpoint: overlay_endpoint, or the address the controller reaches the host at (empty: behind NAT), with
    endpoint_from naming that default's source for build()'s messages;
    public_key: from this run's key task (key_result), else from registry (what a host configured last).
    """
    registry = registry or {}
    members = []
    for name in sorted(group or []):
        if name not in hostvars:
            raise MeshError(f"{name}: is in the overlay group but not in the inventory. Nothing was applied")
        hv = hostvars[name]
        if "overlay_endpoint" in hv:
            endpoint, source = hv["overlay_endpoint"], None
        elif "ansible_host" in hv:
            endpoint, source = hv["ansible_host"], "ansible_host"
        else:
            endpoint, source = name, "the inventory name"
        members.append(
            {
                "name": name,
                "endpoint": endpoint or None,
                **({"endpoint_from": source} if source else {}),
                "address": hv.get("overlay_address") or None,
                "container_subnet": hv.get("overlay_container_subnet") or None,
                # A rotation under way: the host's staged key is the one its peers must learn.
                "public_key": (hv.get(key_result) or {}).get("next_public_key")
                or (hv.get(key_result) or {}).get("public_key")
                or registry.get(name),
            }
        )
    return members


def firewall_part(mesh, me, services=()):
    """What me's firewall adds for the overlay: {sets, rules} in the firewall module's terms.

    The WireGuard port admits only the underlay addresses of me's current peers (set overlay_peers), or
    anyone on a hub (its spokes have no known address);
    on the overlay interface, only the declared services (a port or name, or {port, proto}), and the
    routed traffic to me's container subnet; a hub routes between its spokes and the mesh.
    """
    peers = mesh.underlay_peers(me)
    iface = mesh.settings.interface
    hub = mesh.view(me)["forwarding"]
    rules = []
    if hub:
        # Spokes are behind NAT: no address to admit. WireGuard answers nothing but its peers' keys.
        rules.append(
            {
                "port": mesh.settings.port,
                "proto": "udp",
                "comment": "overlay: WireGuard from anywhere, for the hub's spokes behind NAT",
            }
        )
    elif peers:
        rules.append(
            {
                "port": mesh.settings.port,
                "proto": "udp",
                "sources": ["@overlay_peers"],
                "comment": "overlay: WireGuard from the mesh's peers",
            }
        )
    for svc in services or []:
        rule = dict(svc) if isinstance(svc, dict) else {"port": svc}
        rule.update(interface=iface, comment=f"overlay service {rule.get('port')}")
        rules.append(rule)
    subnet = mesh.members[me].container_subnet
    if subnet:
        # Only from the mesh: the overlay's addresses (containers going out are masqueraded to their
        # host's) and the container subnets; what arrives on another interface stays dropped.
        rules.append(
            {
                "direction": "routed",
                "interface": iface,
                "sources": [str(mesh.settings.cidr), str(mesh.settings.container_cidr)],
                "destinations": [str(subnet)],
                "comment": "overlay: the mesh reaches this host's containers",
            }
        )
    if hub:
        rules.append(
            {
                "direction": "routed",
                "interface": iface,
                "destinations": [str(n) for n in (mesh.settings.cidr, mesh.settings.container_cidr) if n],
                "comment": "overlay: the hub routes for its spokes",
            }
        )
    return {"sets": {"overlay_peers": peers} if peers else {}, "rules": rules}


def default_mtu(underlay_mtu):
    """The overlay MTU for an underlay interface's MTU (room for WireGuard over IPv6)."""
    return max(1280, int(underlay_mtu) - OVERHEAD)
