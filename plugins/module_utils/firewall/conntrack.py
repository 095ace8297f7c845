"""The flows of sources the firewall stops admitting: which sources left which list, and the `conntrack -D`
calls that delete their entries.

Every backend admits `ct state established,related` before any allowlist, so a source removed from a set
or a rule's sources keeps the flow it had (a departed overlay peer's keepalives, an SSH session, a UDP
stream) for as long as it keeps sending. The module deletes those entries right after the apply.

Pure: the policy before and after in, data out. "Before" is what the last run recorded (see `record`) and,
where the backend can read them back, the live sets; over-counting it is harmless, because only what the
new policy no longer admits is ever deleted.
"""

import collections
import copy
import ipaddress
import json
import re

from . import iptables
from .model import PolicyError, normalise

# One protocol, one source network, the destination ports the list admitted it to (() = every port).
Admission = collections.namedtuple("Admission", "list network protos ports scope")
Removal = collections.namedtuple("Removal", "list network proto ports")
Call = collections.namedtuple("Call", "list what argv")
EVERYONE = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
# conntrack 1.4.7 filters on one destination port (a range "8000:8100" matches nothing): a range is one
# call per port up to this many, and beyond it every flow of the source and protocol (wider, never narrower).
MAX_PORT_CALLS = 32
_DELETED = re.compile(r"(\d+) flow entries have been deleted")


class ControllerFlow(PolicyError):
    """A deletion would have matched the controller's own connection (a bug: never run)."""


def _label(policy, index):
    if index < policy.service_count:
        return f"services[{index}]"
    return f"rules[{index - policy.service_count}]"


def admissions(policy):
    """What each list admits: Admission per source network, in the operator's words (admin_networks,
    sets.NAME, rules[2].sources, ...). Accept rules on the input and forward paths only: an outgoing rule's
    flows start on the host. `scope` is None for a rule that admits its sources to the whole host, else
    what narrows it (interface, destinations): such a rule still admits a source only for the same scope
    (a conntrack filter cannot say which interface or destination a flow came through)."""
    out = []
    ssh = (("tcp",), ((policy.ssh_port, policy.ssh_port),), None)
    out += [Admission("admin_networks", net, *ssh) for net in policy.admin[0] + policy.admin[1]]
    if not policy.ssh_restricted:
        out += [Admission("ssh_port (every source)", net, *ssh) for net in EVERYONE]
    for i, rule in enumerate(policy.rules):
        if rule.direction == "out" or rule.action != "accept":
            continue
        where = _label(policy, i)
        narrowed = rule.interface or rule.destinations
        kind = (rule.protos, rule.ports, (rule.interface, tuple(rule.destinations)) if narrowed else None)
        if not rule.sources and not rule.sets:
            out += [Admission(where, net, *kind) for net in EVERYONE]
        out += [Admission(f"{where}.sources", net, *kind) for net in rule.sources]
        for name in rule.sets:
            v4, v6 = policy.sets[name]
            out += [Admission(f"sets.{name}", net, *kind) for net in v4 + v6]
    return out


def _covers(after, proto, ports):
    if after.protos != ("any",) and proto not in after.protos:
        return False
    if not after.ports:
        return after.protos == ("any",) or proto != "any"
    if not ports or proto == "any":
        return False
    return all(any(a_lo <= lo and hi <= a_hi for a_lo, a_hi in after.ports) for lo, hi in ports)


def _exclude(pieces, net):
    out = []
    for piece in pieces:
        if piece.version != net.version or not piece.overlaps(net):
            out.append(piece)
        elif not piece.subnet_of(net):
            out += sorted(piece.address_exclude(net))
    return out


def _port_filtered(ports):
    return bool(ports) and sum(hi - lo + 1 for lo, hi in ports) <= MAX_PORT_CALLS


def _matches_controller(removal, controller):
    """Whether deleting `removal` could match the controller's SSH flow (address, the port it reached)."""
    if controller is None or removal.proto not in ("tcp", "any"):
        return False
    address, port = controller
    if address.version != removal.network.version or address not in removal.network:
        return False
    if removal.proto == "any" or not _port_filtered(removal.ports) or port is None:
        return True
    return any(lo <= port <= hi for lo, hi in removal.ports)


def _family_fits(proto, network):
    return {"icmp": 4, "icmpv6": 6}.get(proto, network.version) == network.version


def removed(before, after, controller=None):
    """The sources each list stopped admitting: Removal(list, network, proto, ports), minus what the new
    policy still admits to the same protocol and ports and minus the controller's address (its connection
    is never deleted; the guard already refused a policy that stops admitting it). A list open to every
    source is no allowlist and is left out (closing a port to everyone is not a source leaving a list).
    controller: (ip_address, the port it reaches sshd on) or None."""
    out, seen = [], set()
    for b in before:
        if b.network.prefixlen == 0:
            continue
        for proto in b.protos:
            if not _family_fits(proto, b.network):
                continue
            pieces = [b.network]
            for a in after:
                if (a.scope is None or a.scope == b.scope) and _covers(a, proto, b.ports):
                    pieces = _exclude(pieces, a.network)
            for net in pieces:
                removal = Removal(b.list, net, proto, b.ports)
                if _matches_controller(removal, controller):
                    host = ipaddress.ip_network(controller[0])
                    pieces_left = _exclude([net], host)
                    rest = [Removal(b.list, n, proto, b.ports) for n in pieces_left]
                else:
                    rest = [removal]
                for r in rest:
                    if r not in seen:
                        seen.add(r)
                        out.append(r)
    return out


def describe(removal):
    net = removal.network
    source = str(net.network_address) if net.num_addresses == 1 else str(net)
    ports = ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in removal.ports)
    what = "every protocol" if removal.proto == "any" else removal.proto
    return f"{source} {what}" + (f" port {ports}" if ports else "")


def by_list(removals):
    """{list: [description, ...]} in the operator's words (what the result and check mode report)."""
    out = {}
    for r in removals:
        out.setdefault(r.list, []).append(describe(r))
    return out


def calls(tool, removals, controller=None):
    """The `conntrack -D` calls: original source network, protocol, destination port (one port a call).
    Raises ControllerFlow rather than return a call that could match the controller's connection."""
    out = []
    for r in removals:
        if _matches_controller(r, controller):
            raise ControllerFlow(f"conntrack: deleting {describe(r)} would cut the controller's connection")
        base = [tool, "-D", "-f", f"ipv{r.network.version}", "-s", str(r.network)]
        if r.proto != "any":
            base += ["-p", r.proto]
        if _port_filtered(r.ports):
            for lo, hi in r.ports:
                out += [Call(r.list, describe(r), [*base, "--dport", str(p)]) for p in range(lo, hi + 1)]
        else:
            out.append(Call(r.list, describe(r), base))
    return out


def outcome(rc, err):
    """(entries deleted, failure text or None) of one `conntrack -D`: exit 1 with nothing matched is not
    a failure."""
    match = _DELETED.search(err or "")
    count = int(match.group(1)) if match else 0
    if rc == 0 or (rc == 1 and match and count == 0):
        return count, None
    return count, (err or "").strip() or f"exit {rc}"


# --- what the live firewall admitted before this run ---------------------------------------------------


def nft_live_sets(live_sets):
    """nftables: the owned table's named sets as read back (`Live.sets`) -> {name: (v4, v6)}."""
    out = {}
    for name, _type, _flags, _timeout, _size, elems in live_sets:
        base, _sep, fam = name.rpartition("_")
        if elems is None or fam not in ("v4", "v6"):
            continue  # rate-limit meters
        nets = []
        for elem in elems:
            try:
                nets.append(ipaddress.ip_network(elem, strict=False))
            except ValueError:
                continue  # an element the reader could not name admits nobody this module can name
        slot = out.setdefault(base, ([], []))
        slot[0 if fam == "v4" else 1].extend(nets)
    return out


def ipset_live_sets(live_sets, policy):
    """iptables: the live bw-* ipsets (`parse_ipset_save`) -> {name: (v4, v6)} for the policy's sets."""
    out = {}
    for name in ("admin", *policy.sets):
        entries = [live_sets.get(iptables.set_name(name, fam), []) for fam in (4, 6)]
        out[name] = tuple([ipaddress.ip_network(e) for e in family] for family in entries)
    return out


def with_sets(policy, live_sets):
    """The policy with its sets (and the admin networks) as they are live: the rules of this run over the
    members the live firewall had. A set the live firewall did not have admitted nobody."""
    before = copy.copy(policy)
    before.admin = live_sets.get("admin", ([], []))
    before.sets = {name: live_sets.get(name, ([], [])) for name in policy.sets}
    return before


def controller(address, port, ssh_port):
    """(ip_address, port) of the controller's connection, or None when unknown."""
    try:
        return (ipaddress.ip_address(address), port or ssh_port) if address else None
    except ValueError:
        return None


def recorded_before(record):
    """The options the live firewall may have been made from, by the record (live options, what a rollback
    restores): both, since whether the last change was confirmed or rolled back by the host is not always
    seen by this module (the confirmation, another module, reports a rollback it finds). Counting both is
    harmless: only what the new policy no longer admits is deleted, in a run that changes the firewall."""
    return [options for options in record if options is not None]


def record_text(options, record, pending, rolled_back):
    """The record after this run's apply: what the firewall admits now, and what its rollback would put
    back (the last confirmed state while an earlier change is pending or was rolled back, else the state
    this run replaced)."""
    restores_to = record[1] if pending or rolled_back else record[0]
    return json.dumps({"live": options, "restores_to": restores_to}, sort_keys=True, indent=1) + "\n"


def read_record(text):
    """(live options, options a rollback restores) from a record, or (None, None) if unreadable."""
    try:
        data = json.loads(text or "")
        return data.get("live"), data.get("restores_to")
    except (ValueError, AttributeError):
        return None, None


def recorded_policy(options):
    """The Policy of recorded options, or None (absent, or no longer valid)."""
    if not isinstance(options, dict):
        return None
    try:
        return normalise(options)
    except (PolicyError, TypeError, KeyError):
        return None


NOT_INSTALLED = "conntrack is not installed (Debian's conntrack package)"
FAILED_WARNING = (
    "firewall: the flows of sources this change stopped admitting were not all deleted, so they may still get"
    " through as established flows (the firewall change itself stays applied, it was not undone): "
)


def removals(record, policy, live_sets, controller_flow):
    """What the policy stops admitting: compared with the policies the last run recorded and, where they
    were read (not None), the live sets."""
    before = []
    for options in recorded_before(record):
        recorded = recorded_policy(options)
        before += admissions(recorded) if recorded else []
    if live_sets is not None:
        before += admissions(with_sets(policy, live_sets))
    return removed(before, admissions(policy), controller_flow)


def diff_lines(sources):
    """The diff's lines for the flows deleted ({list: [what, ...]})."""
    return "".join(
        f"conntrack: delete the flows of {what} ({where} no longer admits it)\n"
        for where, whats in sources.items()
        for what in whats
    )


def rolled_back_warning(when):
    return (
        f"firewall: the previous change was rolled back by the host ({when}): the controller did not confirm"
        " it in time over a new connection"
    )
