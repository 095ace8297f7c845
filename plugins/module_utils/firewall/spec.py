"""The firewall module's argument spec (its DOCUMENTATION says what each option means)."""

from ansible_collections.bulwark.hardening.plugins.module_utils.specs import changing_the_connection

BACKENDS = ("nftables", "iptables", "ufw")
DOCKER = ("auto", "always", "never")
# The spelling before 0.x (YAML's true/false arrive as "True"/"False"): accepted for this release.
DOCKER_ALIASES = {"true": "always", "false": "never"}
POLICIES = ["accept", "drop"]

ARGUMENT_SPEC = {
    "backend": {"type": "str", "choices": list(BACKENDS), "default": "nftables"},
    "default_incoming": {"type": "str", "choices": POLICIES, "default": "drop"},
    "default_routed": {"type": "str", "choices": POLICIES, "default": "drop"},
    "default_outgoing": {"type": "str", "choices": POLICIES, "default": "accept"},
    "admin_networks": {"type": "list", "elements": "str", "default": []},
    "sets": {"type": "dict", "default": {}},
    "rules": {"type": "list", "elements": "dict", "default": []},
    "services": {"type": "list", "elements": "raw", "default": []},
    "ssh_port": {"type": "int", "default": 22},
    "ssh_restricted": {"type": "bool", "default": True},
    "ssh_rate_limit": {"type": "str", "default": "10/minute"},
    "ssh_burst": {"type": "int", "default": 5},
    "icmp_echo": {"type": "bool", "default": True},
    "docker": {"type": "str", "choices": [*DOCKER, *DOCKER_ALIASES], "default": "auto"},
    "docker_interfaces": {"type": "list", "elements": "str", "default": ["docker0", "br-*"]},
    "purge": {"type": "bool", "default": True},
    **changing_the_connection(),
    "persist_path": {"type": "path", "default": "/etc/bulwark/firewall.nft"},
    "state_dir": {"type": "path", "default": "/var/lib/bulwark"},
}


def docker_option(value):
    """The docker option in its one spelling (auto/always/never); the old true/false map onto it."""
    return DOCKER_ALIASES.get(str(value).lower(), value)
