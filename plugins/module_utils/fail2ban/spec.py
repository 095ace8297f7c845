"""The fail2ban_jail module's argument spec (its DOCUMENTATION says what each option means)."""

ARGUMENT_SPEC = {
    "jails": {"type": "dict", "required": True},
    "filters": {"type": "dict", "default": {}},
    "firewall_backend": {
        "type": "str",
        "choices": ["nftables", "iptables", "ufw"],
        "default": "nftables",
    },
    "admin_networks": {"type": "list", "elements": "str", "default": []},
    "ignoreip": {"type": "list", "elements": "str", "default": []},
    "secrets": {"type": "dict", "default": {}, "no_log": True},
    "auth_log": {"type": "path", "default": "/var/log/auth.log"},
    "config_dir": {"type": "path", "default": "/etc/fail2ban"},
    "docker": {"type": "str", "choices": ["auto", "always", "never"], "default": "auto"},
    "service_enabled": {"type": "bool", "default": True},
    "verify_timeout": {"type": "int", "default": 30},
}
