"""validate_input refuses, before any change, every value a renderer would write as something else:
the bootstrap templates' variables, sshd's words and Match criteria, fail2ban's shell-bound options."""

import pytest
from test_validate_input import validate


@pytest.mark.parametrize(
    ("host_vars", "error"),
    [
        (
            {"bootstrap_unattended_upgrades_reboot_time": '03:30"; DPkg::Post-Invoke {"touch /tmp/x";}; x "'},
            "bootstrap: bootstrap_unattended_upgrades_reboot_time: ",
        ),
        ({"bootstrap_modules_blacklist": ["dccp /bin/sh -c id #"]}, "bootstrap_modules_blacklist[0]: "),
        (
            {"bootstrap_umask": "027; touch /tmp/x"},
            "bootstrap_umask: '027; touch /tmp/x' is not an octal umask",
        ),
        (
            {"bootstrap_login_defs": {"UMASK": "027 #"}},
            "bootstrap_login_defs['UMASK']: '027 #' is not one word",
        ),
        ({"bootstrap_login_defs": {"UMASK x": "027"}}, "bootstrap_login_defs: 'UMASK x' is not a login.defs"),
        ({"bootstrap_time_servers": ["pool.ntp.org iburst key 1"]}, "bootstrap_time_servers[0]: "),
        ({"bootstrap_journald_system_max_use": "500M\\"}, "bootstrap_journald_system_max_use: "),
        (
            {
                "bootstrap_log_forwarding_enabled": True,
                "bootstrap_log_forwarding_host": 'x") module(load="omprog',
            },
            "bootstrap_log_forwarding_host: ",
        ),
        (
            {"bootstrap_auditd_extra_rules": ["-D"]},
            "bootstrap_auditd_extra_rules[0]: '-D' is not one audit rule",
        ),
        ({"sshd_extra_options": {"DenyUsers": ["alice", "#root"]}}, None),
        (
            {"sshd_match": [{"criteria": "User a PermitRootLogin yes", "options": {"PermitTTY": False}}]},
            "match[0].criteria must be a non-empty line of Match criteria",
        ),
        (
            {"sshd_extra_options": {"AuthorizedKeysFile": ".ssh/%k"}},
            "options: AuthorizedKeysFile value '.ssh/%k' has '%k'",
        ),
        (
            {"fail2ban_jails": {"sshd": {"port": "22; touch /tmp/x"}}},
            "fail2ban (bulwark.hardening.fail2ban_jail): jails.sshd.port: ",
        ),
        ({"fail2ban_ignoreip": ["10.0.0.1 ;"]}, "ignoreip: '10.0.0.1 ;' is not a single address"),
    ],
)
def test_values_a_renderer_would_misread_are_refused_by_variable(host_vars, error):
    result = validate(["bootstrap", "sshd", "fail2ban"], **host_vars)
    if error is None:  # accepted: rendered as one quoted word
        assert not result.get("failed"), result.get("msg")
        return
    assert result.get("failed"), host_vars
    assert any(error in message for message in result["errors"]), result["errors"]


def test_the_bootstrap_defaults_pass_the_template_checks():
    result = validate(["bootstrap"])
    assert not result.get("failed"), result.get("msg")
