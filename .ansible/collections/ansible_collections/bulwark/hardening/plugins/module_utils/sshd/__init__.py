"""Pure layer of the sshd_config module: keyword table, renderer, sshd -T parser, lockout guard."""
