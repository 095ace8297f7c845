"""Parsers for what the audit reads on a host that no other concern parses (pure, no host access).

`sshd -T`, `nft -j list ruleset` and `fail2ban-client status` have their parsers in their concerns'
module_utils; the audit reuses those.
"""

import base64
import binascii
import collections
import re
import struct

Listener = collections.namedtuple("Listener", "proto address port process")

_USERS = re.compile(r'\("([^"]+)"')


def listeners(text):
    """TCP and UDP sockets from `ss -Htulnp` (netid state recv send local peer [process]) -> [Listener].

    The process is the name the kernel keeps for it (comm): any process may choose it, so it names a
    listener in the evidence and never exempts one."""
    found = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 5 or fields[0] not in ("tcp", "udp"):
            continue
        address, _sep, port = fields[4].rpartition(":")
        if not port.isdigit():
            continue
        address = address.strip("[]")
        address = address.split("%", 1)[0]  # an interface-scoped address: 0.0.0.0%lo
        process = _USERS.search(" ".join(fields[6:]))
        found.append(Listener(fields[0], address, int(port), process.group(1) if process else ""))
    return found


def is_loopback(address):
    return address.startswith("127.") or address in ("::1", "localhost")


WILDCARDS = ("*", "0.0.0.0", "::", "")  # noqa: S104  (recognised in ss output, never bound)


def is_wildcard(address):
    return address in WILDCARDS


# `docker ps` Ports: 0.0.0.0:8081->80/tcp, [::]:8081->80/tcp, :::8081->80/tcp,
# 127.0.0.1:8000-8002->8000-8002/udp (container ports that are not published have no `->`)
_PUBLISHED = re.compile(r"(?:^|[\s,])(\[[^\]]*\]|[^\s,]*):(\d+)(?:-(\d+))?->\d+(?:-\d+)?/(tcp|udp|sctp)")


def published_ports(docker_ps):
    """{(proto, host address, host port)} Docker publishes (`docker ps --format '{{.Names}} {{.Ports}}'`)."""
    found = set()
    for match in _PUBLISHED.finditer(docker_ps):
        address, first, last, proto = match.groups()
        address = address.strip("[]")
        address = "::" if address in ("::", ":") else address
        for port in range(int(first), int(last or first) + 1):
            found.add((proto, address, port))
    return found


def is_published(published, sock):
    """Whether a listener is the host side of a port Docker publishes (same protocol, port and address)."""
    return any(
        proto == sock.proto
        and port == sock.port
        and (address == sock.address or (is_wildcard(address) and is_wildcard(sock.address)))
        for proto, address, port in published
    )


_INST = re.compile(r"^Inst (\S+) (?:\[(\S+)\] )?\((\S+) (.*)\)")


def security_updates(apt_simulation):
    """[(package, new version)] of `apt-get -s upgrade` lines that come from a security archive."""
    found = []
    for line in apt_simulation.splitlines():
        match = _INST.match(line)
        if match and re.search(r"security", match.group(4), re.IGNORECASE):
            found.append((match.group(1), match.group(3)))
    return found


def apt_config(text):
    """`apt-config dump` -> {key: value} (the last value of a key wins, as in apt)."""
    values = {}
    for line in text.splitlines():
        key, _sep, value = line.partition(" ")
        values[key] = value.strip().rstrip(";").strip('"')
    return values


def shadow_empty_passwords(shadow_text):
    """Accounts of /etc/shadow with an empty password field (a login without any password)."""
    empty = []
    for line in shadow_text.splitlines():
        fields = line.split(":")
        if len(fields) > 1 and fields[1] == "":
            empty.append(fields[0])
    return empty


def rsa_bits(blob):
    """Modulus size of an ssh-rsa public key blob (base64), or None if it cannot be read."""
    try:
        raw = base64.b64decode(blob, validate=True)
        parts = []
        offset = 0
        for _unused in range(3):  # key type, e, n
            (length,) = struct.unpack(">I", raw[offset : offset + 4])
            parts.append(raw[offset + 4 : offset + 4 + length])
            offset += 4 + length
    except (binascii.Error, ValueError, struct.error):
        return None
    return int.from_bytes(parts[2], "big").bit_length() or None


def latest_handshakes(text):
    """`wg show all latest-handshakes` (interface, peer public key, epoch seconds) -> [(iface, peer, t)]."""
    found = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[2].isdigit():
            found.append((fields[0], fields[1], int(fields[2])))
    return found
