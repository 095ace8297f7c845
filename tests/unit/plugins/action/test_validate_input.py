"""validate_input on the controller: the roles' real files, real templating, every bad input named."""

from unittest import mock

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext
from ansible.template import Templar

from ansible_collections.bulwark.hardening.plugins.action.validate_input import ActionModule

ROLES = ["bootstrap", "sshd", "firewall", "fail2ban"]
MODULES = [
    "bulwark.hardening.admin_accounts",
    "bulwark.hardening.sysctl_baseline",
    "bulwark.hardening.baseline_packages",
    "bulwark.hardening.baseline_files",
    "bulwark.hardening.baseline_services",
    "bulwark.hardening.sshd_config",
    "bulwark.hardening.firewall",
    "bulwark.hardening.fail2ban_jail",
]
# What a host's inventory and facts give the play (the lab's shape).
HOST = {
    "ansible_facts": {"distribution_major_version": "12"},
    "ansible_user": "deploy",
    "bootstrap_connecting_user": "deploy",
    "bulwark_admin_networks": ["172.30.5.1/32"],
    "ansible_check_mode": False,
    "omit": "__omit_place_holder__",
}


def validate(roles=None, host_outcome=None, calls=None, **host_vars):
    """Run the action; its one host call (sshd -t of the candidate) answers `host_outcome`."""
    loader = DataLoader()
    task = mock.MagicMock(args={"roles": roles or ROLES}, check_mode=False, async_val=0, diff=False)
    action = ActionModule(
        task,
        connection=mock.MagicMock(),
        play_context=PlayContext(),
        loader=loader,
        templar=Templar(loader=loader),
        shared_loader_obj=None,
    )

    def execute_module(module_name, module_args, task_vars):
        (calls if calls is not None else []).append((module_name, module_args))
        return host_outcome or {"changed": False, "validated": True}

    action._execute_module = execute_module
    return action.run(task_vars={**HOST, **host_vars})


def test_the_defaults_with_admin_networks_pass_and_every_module_is_checked():
    result = validate()
    assert not result.get("failed"), result.get("msg")
    assert result["checked"] == MODULES
    assert result["changed"] is False


@pytest.mark.parametrize(
    ("host_vars", "error"),
    [
        (
            {"sshd_extra_options": {"PermitRootLogn": "no"}},
            "sshd (bulwark.hardening.sshd_config): options: unknown sshd keyword: 'PermitRootLogn' "
            "(set by sshd_extra_options)",
        ),
        (
            {"bulwark_admin_networks": ["10.0.0.300/8"]},
            "firewall (bulwark.hardening.firewall): admin_networks[0]: '10.0.0.300/8' is not a CIDR or an "
            "address (set by bulwark_admin_networks)",
        ),
        (
            {"firewall_rules": [{"port": 70000}]},
            "firewall (bulwark.hardening.firewall): rules[0].port: 70000 is not a port "
            "(set by firewall_rules)",
        ),
        (
            {"fail2ban_jails": {"sshd": {"maxretry": 0}}},
            "fail2ban (bulwark.hardening.fail2ban_jail): jails.sshd.maxretry: must be at least 1, got 0 "
            "(set by fail2ban_jails)",
        ),
        (
            {"bootstrap_sudo_logfile": '/var/log/sudo".log'},
            "bootstrap: bootstrap_sudo_logfile: '/var/log/sudo\".log' is not a plain absolute path",
        ),
        (
            {"bootstrap_sudo_logfile": "/var/log/sudo.log\nALL ALL=(ALL) NOPASSWD: ALL"},
            "bootstrap: bootstrap_sudo_logfile: the control character '\\n' is not allowed",
        ),
        (
            {"bootstrap_sysctl_extra": {"kernel.sysrq ": 1}},
            "bootstrap (bulwark.hardening.sysctl_baseline): settings: 'kernel.sysrq ' is not a sysctl key "
            "(dotted, like net.ipv4.tcp_syncookies) (set by bootstrap_sysctl_extra)",
        ),
        (
            {"bootstrap_admins": [{"name": "alice\n"}]},
            "bootstrap: bootstrap_admins: the control character '\\n' is not allowed "
            "(at bootstrap_admins[0]['name'])",
        ),
        (
            {"bootstrap_permissions": {"/etc/crontab": 384}},
            "bootstrap (bulwark.hardening.baseline_files): files[23].mode: 384 is not a mode (a quoted octal "
            "string such as '0644') (for /etc/crontab)",
        ),
        (
            {"bootstrap_services_disabled": ["cups service"]},
            "bootstrap (bulwark.hardening.baseline_services): disabled[0]: 'cups service' is not a unit name "
            "(such as auditd.service) (set by bootstrap_services_disabled)",
        ),
        (
            {"bootstrap_packages_extra": ["nginx; rm -rf /"]},
            "bootstrap (bulwark.hardening.baseline_packages): present[9]: 'nginx; rm -rf /' is not a Debian "
            "package name (set by bootstrap_packages_extra)",
        ),
        (
            {"bootstrap_admins": [{"name": "Alice"}]},
            "bootstrap (bulwark.hardening.admin_accounts): admins[0].name 'Alice' is not a valid user name "
            "(set by bootstrap_admins)",
        ),
        # Every change is applied with commit-confirm, for both concerns alike.
        (
            {"firewall_rollback_timeout": 0},
            "firewall (bulwark.hardening.firewall): rollback_timeout: 0 is below 5 seconds",
        ),
        (
            {"sshd_rollback_timeout": 3},
            "sshd (bulwark.hardening.sshd_config): rollback_timeout: 3 is below 5 seconds",
        ),
        # The role's argument spec, as the role would check it when it starts (too late).
        ({"bulwark_ssh_port": "twenty-two"}, "common: argument 'bulwark_ssh_port' is of type"),
        (
            {"bootstrap_needrestart_mode": "x"},
            "bootstrap: value of bootstrap_needrestart_mode must be one of",
        ),
    ],
)
def test_each_bad_input_fails_naming_the_option_and_the_variable(host_vars, error):
    result = validate(**host_vars)
    assert result["failed"] is True
    assert result["changed"] is False
    assert any(message.startswith(error) for message in result["errors"]), result["errors"]
    assert result["msg"].startswith("Bad input, refused before any change (nothing was applied):\n- ")


def test_a_feature_switched_off_is_not_validated():
    bad_key = {"bootstrap_sysctl_extra": {"kernel.sysrq ": 1}}
    assert validate(**bad_key)["failed"]
    result = validate(bootstrap_sysctl_enabled=False, **bad_key)
    assert not result.get("failed"), result.get("msg")
    assert "bulwark.hardening.sysctl_baseline" not in result["checked"]


def test_lockdown_validates_only_the_firewall_with_its_switch():
    result = validate(roles=["firewall"], firewall_lockdown=True, firewall_rules=[{"port": 70000}])
    # Lockdown ignores the rules: they cannot fail it; the admin networks still must be sound.
    assert not result.get("failed"), result.get("msg")
    assert result["checked"] == ["bulwark.hardening.firewall"]
    assert validate(roles=["firewall"], firewall_lockdown=True, bulwark_admin_networks=[])["failed"]


def test_an_unknown_role_is_an_error():
    with pytest.raises(Exception, match="roles: a list of"):
        validate(roles=["nginx"])


def test_the_sshd_candidate_goes_to_the_host_once_with_validate_only():
    calls = []
    result = validate(calls=calls, sshd_extra_options={"MaxAuthTries": "lots"})
    assert not result.get("failed"), result.get("msg")
    [(module, args)] = calls
    assert module == "bulwark.hardening.sshd_config"
    assert args["validate_only"] is True
    assert args["options"]["MaxAuthTries"] == "lots"
    assert set(args) == {"options", "match", "rollback_timeout", "validate_only"}


def test_what_sshd_t_rejects_on_the_host_fails_the_validation():
    rejected = {
        "failed": True,
        "msg": "sshd -t rejects the candidate configuration: /etc/ssh/sshd_config.d/00-bulwark.conf line 9"
        " ('MaxAuthTries lots'): Badly formatted number. Nothing was applied",
    }
    result = validate(host_outcome=rejected, sshd_extra_options={"MaxAuthTries": "lots"})
    assert result["failed"]
    assert result["errors"] == ["sshd (bulwark.hardening.sshd_config, on the host): " + rejected["msg"]]
    assert result["changed"] is False


def test_no_host_call_when_the_controller_already_refused_or_sshd_is_not_checked():
    calls = []
    assert validate(calls=calls, bulwark_admin_networks=["10.0.0.300/8"])["failed"]
    assert not validate(roles=["firewall"], calls=calls).get("failed")
    assert calls == []


def test_a_refused_rollback_timeout_names_the_role_variable():
    [message] = validate(firewall_rollback_timeout=2)["errors"]
    assert message.endswith("(set by firewall_rollback_timeout)"), message
