"""The sshd_config module's argument spec (its DOCUMENTATION says what each option means)."""

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
    "connecting_from": {"type": "str"},
    "local_address": {"type": "str"},
    "local_port": {"type": "int"},
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
    "guard": {"type": "bool", "default": True},
    "validate_only": {"type": "bool", "default": False},
    "reload": {"type": "bool", "default": True},
    "service": {"type": "str", "default": "ssh"},
    "rollback_timeout": {"type": "int", "default": 60},
    # Read by the action plugin on the controller (plugins/action/), which confirms; the module ignores it.
    "reconnect_and_confirm": {"type": "bool", "default": False},
    "mode": {"type": "str", "default": "0600"},
    "backup_dir": {"type": "path", "default": "/var/lib/bulwark/sshd"},
}
