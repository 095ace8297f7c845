"""The admin_accounts module's argument spec (its DOCUMENTATION says what each option means)."""

ARGUMENT_SPEC = {
    "admins": {
        "type": "list",
        "elements": "dict",
        "default": [],
        "options": {
            "name": {"type": "str", "required": True},
            # Public keys, not secrets: shown in results by fingerprint only.
            "ssh_keys": {"type": "list", "elements": "str", "default": [], "no_log": False},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "shell": {"type": "str"},
            "sudo": {"type": "bool", "default": True},
        },
    },
    "group": {"type": "str", "required": True},
    "shell": {"type": "str", "default": "/bin/bash"},
    "exclusive": {"type": "bool", "default": True},
    "remove_home": {"type": "bool", "default": True},
    "sudo": {"type": "bool", "default": True},
    "sudo_nopasswd": {"type": "bool", "default": True},
    "sudoers_file": {"type": "path", "default": "/etc/sudoers.d/bulwark-admins"},
    "sudo_logfile": {"type": "str", "default": "/var/log/sudo.log"},
    "sudo_use_pty": {"type": "bool", "default": True},
    "system_accounts_nologin": {"type": "bool", "default": False},
    "system_accounts_exempt": {"type": "list", "elements": "str", "default": []},
    "connecting_user": {"type": "str"},
    "connecting_key": {"type": "str", "no_log": False},
}
