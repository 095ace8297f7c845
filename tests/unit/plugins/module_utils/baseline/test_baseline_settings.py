import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.baseline.settings import (
    SettingsError,
    validate,
)

DEFAULTS = {
    "bootstrap_unattended_upgrades_reboot_time": "03:30",
    "bootstrap_umask": "027",
    "bootstrap_journald_system_max_use": "500M",
    "bootstrap_journald_max_file_size": "50M",
    "bootstrap_journald_max_retention": "3month",
    "bootstrap_log_forwarding_host": "",
    "bootstrap_modules_blacklist": ["cramfs", "usb-storage"],
    "bootstrap_time_servers": ["0.debian.pool.ntp.org", "192.0.2.1", "2001:db8::1"],
    "bootstrap_login_defs": {"SHA_CRYPT_MIN_ROUNDS": 5000, "HOME_MODE": "0750"},
    "bootstrap_auditd_extra_rules": ["-w /etc/hosts -p wa -k hosts"],
}


def test_the_role_defaults_pass():
    validate(DEFAULTS)


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            {"bootstrap_unattended_upgrades_reboot_time": '03:30";'},
            r"^bootstrap_unattended_upgrades_reboot_time: ",
        ),
        ({"bootstrap_umask": ""}, r"^bootstrap_umask: '' is not an octal umask"),
        ({"bootstrap_umask": "027\n"}, r"^bootstrap_umask: '027\\n' is not"),
        ({"bootstrap_modules_blacklist": ["a", "b c"]}, r"^bootstrap_modules_blacklist\[1\]: 'b c'"),
        ({"bootstrap_time_servers": "pool.ntp.org"}, r"^bootstrap_time_servers: a list is required"),
        ({"bootstrap_login_defs": {"UMASK": True}}, r"^bootstrap_login_defs\['UMASK'\]: True"),
        ({"bootstrap_journald_max_retention": "1w\\"}, r"^bootstrap_journald_max_retention: "),
        ({"bootstrap_log_forwarding_host": 'x" port="1'}, r"^bootstrap_log_forwarding_host: "),
        ({"bootstrap_auditd_extra_rules": ["-e 0"]}, r"^bootstrap_auditd_extra_rules\[0\]: '-e 0'"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(variables, message):
    with pytest.raises(SettingsError, match=message + ".*Nothing was applied"):
        validate(variables)
