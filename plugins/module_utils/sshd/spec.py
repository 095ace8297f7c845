"""The sshd_config module's argument spec (its DOCUMENTATION says what each option means)."""

from ansible_collections.bulwark.hardening.plugins.module_utils.specs import changing_the_connection

# sshd_config's own names for the controller's connection (its messages name them); the shared ones
# (controller_address, ...) are their aliases.
OWN_NAMES = {
    "controller_address": "connecting_from",
    "controller_local_address": "local_address",
    "controller_port": "local_port",
}

ARGUMENT_SPEC = {
    "options": {"type": "dict", "default": {}},
    "match": {
        "type": "list",
        "elements": "dict",
        "default": [],
        "options": {
            "criteria": {"type": "str", "required": True},
            "options": {"type": "dict", "required": True},
        },
    },
    "path": {"type": "path", "default": "/etc/ssh/sshd_config.d/00-bulwark.conf"},
    "main_config": {"type": "path", "default": "/etc/ssh/sshd_config"},
    "remove_host_keys": {
        "type": "list",
        "elements": "str",
        "default": [],
        "choices": ["dsa", "ecdsa", "rsa", "ed25519"],
    },
    "rsa_host_key_bits": {"type": "int", "default": 0},
    "moduli_min_bits": {"type": "int", "default": 0},
    "connecting_user": {"type": "str"},
    "assume_groups": {"type": "list", "elements": "str", "default": []},
    "client_algorithms": {
        "type": "dict",
        "default": {},
        # Algorithm names, not secrets ("key" in a name makes the sanity test ask).
        "options": {
            k: {"type": "list", "elements": "str", "no_log": False}
            for k in ("kex", "ciphers", "macs", "host_key_algorithms")
        },
    },
    "validate_only": {"type": "bool", "default": False},
    "reload": {"type": "bool", "default": True},
    "service": {"type": "str", "default": "ssh"},
    **changing_the_connection(OWN_NAMES),
    "mode": {"type": "str", "default": "0600"},
    "backup_dir": {"type": "path", "default": "/var/lib/bulwark/sshd"},
}
