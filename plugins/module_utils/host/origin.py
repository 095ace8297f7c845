"""Where the controller's SSH login comes from, as this host sees it.

Under become (sudo) the module's own environment has lost SSH_CONNECTION; the login shell that sshd
started still has it, a few processes up. Reading another user's environment needs CAP_SYS_PTRACE
(root has it on a host, not always in a container): ancestors that cannot be read are skipped.
"""

import collections
import ipaddress
import os

Origin = collections.namedtuple("Origin", "user address port local_address local_port")


def parse_ssh_connection(value, user=None):
    """SSH_CONNECTION ("client_ip client_port server_ip server_port") -> Origin, or None if malformed."""
    parts = (value or "").split()
    if len(parts) != 4:
        return None
    try:
        client = _unmap(ipaddress.ip_address(parts[0].split("%")[0]))
        server = _unmap(ipaddress.ip_address(parts[2].split("%")[0]))
        client_port, server_port = int(parts[1]), int(parts[3])
    except ValueError:
        return None
    return Origin(user, str(client), client_port, str(server), server_port)


def _unmap(addr):
    return addr.ipv4_mapped if addr.version == 6 and addr.ipv4_mapped else addr


def _parent(pid, proc):
    with open(f"{proc}/{pid}/stat", encoding="utf-8") as handle:
        return int(handle.read().rsplit(")", 1)[1].split()[1])


def _environ(pid, proc):
    try:
        with open(f"{proc}/{pid}/environ", "rb") as handle:
            items = handle.read().split(b"\0")
    except OSError:
        return {}
    return dict(item.decode(errors="replace").split("=", 1) for item in items if b"=" in item)


def ssh_origin(proc="/proc", pid=None):
    """The Origin of the SSH login this process runs under, or None (local or docker connection)."""
    pid = pid or os.getpid()
    for _unused in range(16):
        if pid <= 1:
            return None
        env = os.environ if pid == os.getpid() and proc == "/proc" else _environ(pid, proc)
        if env.get("SSH_CONNECTION"):
            return parse_ssh_connection(env["SSH_CONNECTION"], env.get("USER") or env.get("LOGNAME"))
        try:
            pid = _parent(pid, proc)
        except (OSError, ValueError, IndexError):
            return None
    return None
