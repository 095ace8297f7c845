"""Lockout guard: does the candidate policy admit the controller's current SSH connection?

It follows the input chain in the order the renderer writes it, for one packet: a new TCP connection
from the controller's address to the port it reached sshd on. It refuses what it can predict;
commit-confirm covers what it cannot (see commit_confirm). A rule it cannot evaluate (an interface or
destinations, while the controller's interface or local address is unknown) is refused by name when it
could change the verdict: unknown means refuse.
"""

import ipaddress

from .model import PolicyError, interface_matches


class Refused(PolicyError):
    """The candidate would cut the controller off; the message says what is missing."""


def _unmap(addr):
    if addr.version == 6 and addr.ipv4_mapped:
        return addr.ipv4_mapped
    return addr


def _in(addr, nets):
    return any(addr.version == n.version and addr in n for n in nets)


def _rule_matches(policy, rule, addr, port, *, iface, local):
    """True, False, or the reason the rule cannot be evaluated (a criterion the guard does not know)."""
    if rule.direction != "in":
        return False
    if not ("tcp" in rule.protos or rule.protos == ("any",)):
        return False
    if rule.ports and not any(lo <= port <= hi for lo, hi in rule.ports):
        return False
    if rule.sources or rule.sets:
        nets = list(rule.sources)
        for name in rule.sets:
            nets += policy.sets[name][0] + policy.sets[name][1]
        if not _in(addr, nets):
            return False
    unknown = []
    if rule.interface:
        if not iface:
            unknown.append("interface unknown")
        elif not interface_matches(rule.interface, iface):
            return False
    if rule.destinations:
        if not local:
            unknown.append("local address unknown")
        elif not _in(local, rule.destinations):
            return False
    return ", ".join(unknown) if unknown else True


def _rule_name(policy, index):
    """The option a normalised rule came from: services[i] come first, then rules[j]."""
    services = policy.service_count
    return f"services[{index}]" if index < services else f"rules[{index - services}]"


def verdict(policy, address, port, interface=None, local_address=None):
    """(accepted, why, unknown) for a new TCP connection from address to port under the candidate policy.

    unknown lists (rule name, reason) of the rules before the deciding one that might match but cannot be
    evaluated, and whose action differs from the verdict: if any of them matched, the verdict would flip.
    """
    addr = _unmap(ipaddress.ip_address(address))
    local = _unmap(ipaddress.ip_address(local_address)) if local_address else None
    admin = policy.admin[0] + policy.admin[1]
    if port == policy.ssh_port and _in(addr, admin):
        return True, "admin_networks", []
    if port == policy.ssh_port and not policy.ssh_restricted:
        return True, "ssh (open to every source, rate-limited)" if policy.ssh_rate_limit else "ssh", []
    undecided = []
    accepted, why = policy.incoming == "accept", f"default_incoming: {policy.incoming}"
    for i, rule in enumerate(policy.rules):
        match = _rule_matches(policy, rule, addr, port, iface=interface, local=local)
        if match is True:
            name = _rule_name(policy, i)
            accepted = rule.action == "accept"
            why = name if accepted else f"{name} drops it"
            break
        if match:
            undecided.append((_rule_name(policy, i), match, rule.action == "accept"))
    unknown = [(name, reason) for name, reason, accepts in undecided if accepts != accepted]
    return accepted, why, unknown


def check(policy, address, port, interface=None, local_address=None):
    """Raise Refused naming what is missing, or return the rule that admits the controller."""
    if not address:
        raise Refused(
            "controller_address: the lockout guard needs the controller's address and SSH port (the role "
            "passes them from the connection; the module also reads SSH_CONNECTION); none was found. "
            "Pass controller_address/controller_port, or set guard: false (tests and emergencies only)"
        )
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise Refused(f"controller_address: {address!r} is not an IP address") from None
    if port is None:
        raise Refused("controller_port: the lockout guard needs the port the controller reaches sshd on")
    ok, why, unknown = verdict(policy, address, port, interface, local_address)
    if unknown:
        name, reason = unknown[0]
        raise Refused(
            f"{name}: cannot be evaluated against the controller's connection ({reason}): if it matches it "
            f"{'drops' if ok else 'admits'} tcp from {address} to port {port}, which decides whether the "
            "controller keeps SSH, and the lockout guard cannot tell whether it does (unknown means refuse). "
            "Drop its interface or destinations, or set guard: false (tests and emergencies only). "
            "Nothing was applied"
        )
    if ok:
        return why
    admin = ", ".join(str(n) for n in policy.admin[0] + policy.admin[1]) or "empty"
    if port != policy.ssh_port:
        hint = (
            f"the controller reaches sshd on port {port} but the policy opens SSH on port {policy.ssh_port} "
            "(ssh_port, from bulwark_ssh_port): make them agree"
        )
    elif policy.ssh_restricted:
        hint = (
            f"{address} is not in admin_networks ({admin}) and SSH is restricted to them: "
            "add the controller's network to admin_networks (bulwark_admin_networks)"
        )
    else:
        hint = f"no rule admits tcp port {port} from {address}"
    raise Refused(
        f"lockout guard: the candidate policy would drop the controller's SSH connection "
        f"(tcp from {address} to port {port}; {why}): {hint}. Nothing was applied"
    )
