"""What the audit reads on a host, and the small decisions taken on what it read (pure).

security_audit gathers its facts through the host layer from these paths, units and kernel keys; the
functions here turn raw reads (account lists, a peer registry, Docker's daemon.json) into the facts'
shape without touching the host.
"""

import json

from ansible_collections.bulwark.hardening.plugins.module_utils.audit import checks
from ansible_collections.bulwark.hardening.plugins.module_utils.sshd import effective

# The overlay role's key directory; its peer registry names the peers (public keys, no secret).
OVERLAY_DIR = "/etc/bulwark/overlay"
SECRET_STORE = "/etc/bulwark/secrets"  # noqa: S105  (secret_store's default directory, not a secret)
SENSITIVE = [
    "/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-", "/etc/sudoers", "/etc/ssh/sshd_config",
    "/etc/crontab", OVERLAY_DIR,
]  # fmt: skip
SENSITIVE_GLOBS = [
    "/etc/ssh/ssh_host_*_key", "/etc/sudoers.d/*", "/etc/ssh/sshd_config.d/*", "/etc/cron.*", "/home/*",
    "/root/.ssh/id_*", "/home/*/.ssh/id_*",
    f"{OVERLAY_DIR}/*", f"{OVERLAY_DIR}/psk/*", "/etc/wireguard", "/etc/wireguard/*",
]  # fmt: skip
SYSCTL_KEYS = sorted(
    set(checks.NETWORK_SYSCTL)
    | set(checks.KERNEL_SYSCTL)
    | {"net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"}
)
UNITS = ["auditd.service", "fail2ban.service", "docker.service"]

SSHD_CONFIG = "/etc/ssh/sshd_config"
SSHD_DIR = "/etc/ssh"  # where sshd resolves a relative Include
MAX_INCLUDE_DEPTH = 16  # sshd's own limit (SERVCONF_MAX_DEPTH)

ARGUMENT_SPEC = {
    "categories": {
        "type": "list",
        "elements": "str",
        "choices": list(checks.CATEGORIES),
        "default": list(checks.CATEGORIES),
    },
    "admin_networks": {"type": "list", "elements": "str", "default": []},
}


def admin_groups(sshd_text):
    """The groups whose members are admins: sudo and sshd's AllowGroups."""
    groups = {"sudo"}
    if sshd_text:
        groups.update(effective.parse(sshd_text).words("allowgroups"))
    return groups


def groups_of_accounts(users, groups):
    """{account: [names of its groups]}: its primary group and the groups that list it as a member."""
    names = {g.gid: g.name for g in groups}
    result = {p.name: [names[p.gid]] if p.gid in names else [] for p in users}
    for entry in groups:
        for member in entry.members:
            if member in result and entry.name not in result[member]:
                result[member].append(entry.name)
    return result


def sshd_ports(sshd_files):
    """The numeric Port values of sshd_config and its included files."""
    return [
        args[0]
        for _path, config in sshd_files
        for _line, keyword, args in effective.directives(config)
        if keyword == "port" and args and args[0].isdigit()
    ]


def json_or(text, default):
    """`text` parsed as JSON, or `default` when it is empty or not JSON."""
    try:
        return json.loads(text) if text else default
    except ValueError:
        return default


def overlay_names(registry_text):
    """{public key: peer name} from the overlay's peer registry."""
    registry = json_or(registry_text, {})
    return {key: name for name, key in registry.items() if isinstance(key, str)}


def sysctl_value(text):
    return None if text is None else " ".join(text.split())
