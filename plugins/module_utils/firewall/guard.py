"""Lockout guard: does the candidate policy admit the controller's current SSH connection?

It follows the input chain in the order the renderer writes it, for one packet: a new TCP connection
from the controller's address to the port it reached sshd on. It refuses what it can predict;
commit-confirm covers what it cannot (see commit_confirm).
"""

import fnmatch
import ipaddress

from .model import PolicyError


class Refused(PolicyError):
    """The candidate would cut the controller off; the message says what is missing."""


def parse_ssh_connection(value):
    """SSH_CONNECTION ("client_ip client_port server_ip server_port") -> (client, server_ip, server_port)."""
    parts = (value or "").split()
    if len(parts) != 4:
        return None
    try:
        client = ipaddress.ip_address(parts[0].split("%")[0])
        server = ipaddress.ip_address(parts[2].split("%")[0])
        port = int(parts[3])
    except ValueError:
        return None
    return str(_unmap(client)), str(_unmap(server)), port


def _unmap(addr):
    if addr.version == 6 and addr.ipv4_mapped:
        return addr.ipv4_mapped
    return addr


def _in(addr, nets):
    return any(addr.version == n.version and addr in n for n in nets)


def _rule_matches(policy, rule, addr, port, *, iface, local):
    if rule.direction != "in":
        return False
    if rule.interface and not (iface and fnmatch.fnmatchcase(iface, rule.interface)):
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
    if rule.destinations and not (local and _in(local, rule.destinations)):
        return False
    return True


def _rule_name(policy, index):
    """The option a normalised rule came from: services[i] come first, then rules[j]."""
    services = policy.service_count
    return f"services[{index}]" if index < services else f"rules[{index - services}]"


def verdict(policy, address, port, interface=None, local_address=None):
    """(accepted, why) for a new TCP connection from address to port under the candidate policy."""
    addr = _unmap(ipaddress.ip_address(address))
    local = _unmap(ipaddress.ip_address(local_address)) if local_address else None
    admin = policy.admin[0] + policy.admin[1]
    if port == policy.ssh_port and _in(addr, admin):
        return True, "admin_networks"
    if port == policy.ssh_port and not policy.ssh_restricted:
        return True, "ssh (open to every source, rate-limited)" if policy.ssh_rate_limit else "ssh"
    for i, rule in enumerate(policy.rules):
        if _rule_matches(policy, rule, addr, port, iface=interface, local=local):
            name = _rule_name(policy, i)
            if rule.action == "accept":
                return True, name
            return False, f"{name} drops it"
    if policy.incoming == "accept":
        return True, "default_incoming: accept"
    return False, "default_incoming: drop"


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
    ok, why = verdict(policy, address, port, interface, local_address)
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
