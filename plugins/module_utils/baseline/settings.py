"""The bootstrap role's variables that its templates write into other programs' files (pure).

The templates are rendered on the controller into the baseline's file contents, so these values reach
the host only as text inside those files: an apt.conf string, a modprobe `install` line (run by a
shell), a shell profile, login.defs, journald and timesyncd settings, chrony's sources, an rsyslog
action, audit rules. Each value must be the one word (or rule) it claims to be there; anything else is
refused here, by the variable's name, before any template is rendered (validate_input runs this).
"""

import re

from .. import text


class SettingsError(ValueError):
    """A variable of another shape than its file needs; the message names it."""


_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.:-]*[A-Za-z0-9])?")
# name: (pattern the value must match whole, what it must be, where it is written)
SHAPES = {
    # apt.conf: Unattended-Upgrade::Automatic-Reboot-Time "<value>"; a quote would end the string and
    # let the rest be apt options (DPkg::Post-Invoke runs commands as root).
    "bootstrap_unattended_upgrades_reboot_time": (
        re.compile(r"now|([01][0-9]|2[0-3]):[0-5][0-9]"),
        "a time HH:MM (or now)",
    ),
    # profile.d (a shell script) and login.defs.
    "bootstrap_umask": (re.compile(r"0?[0-7]{3}"), "an octal umask such as 027"),
    # journald.conf.d: one value per setting (a trailing '\\' would continue the line).
    "bootstrap_journald_system_max_use": (re.compile(r"[0-9]+(\.[0-9]+)?[KMGTPE]?"), "a size such as 500M"),
    "bootstrap_journald_max_file_size": (re.compile(r"[0-9]+(\.[0-9]+)?[KMGTPE]?"), "a size such as 50M"),
    "bootstrap_journald_max_retention": (
        re.compile(r"[0-9]+ ?[a-z]*( [0-9]+ ?[a-z]*)*"),
        "a time span such as 3month",
    ),
    # rsyslog: target="<value>" and a comment line.
    "bootstrap_log_forwarding_host": (_HOST, "a host name or an IP address"),
}
# name: (pattern of each element, what each must be)
LIST_SHAPES = {
    # modprobe.d: "install <module> /bin/false" is a shell command line modprobe runs.
    "bootstrap_modules_blacklist": (re.compile(r"[A-Za-z0-9_-]+"), "a kernel module name"),
    # chrony: "server <value> iburst"; timesyncd: NTP=<values joined by blanks>.
    "bootstrap_time_servers": (_HOST, "a host name or an IP address"),
}
# login.defs: "<KEY> <value>", and the regexp that finds the key's line.
_LOGIN_DEFS_KEY = re.compile(r"[A-Z][A-Z0-9_]*")
_LOGIN_DEFS_VALUE = re.compile(r"[A-Za-z0-9._/:+-]+")
# audit rules: one rule per element (the immutable flag, -e, has its own variable; -D would delete the
# collection's rules, -b/-f/-r/-s change auditd itself).
_AUDIT_RULE = re.compile(r"-[aAwWd] \S.*")


def _check(name, value, pattern, what, where=None):
    place = where or name
    shown = text.control_character(value) if isinstance(value, str) else None
    if isinstance(value, bool) or not isinstance(value, (str, int)) or shown:
        raise SettingsError(f"{place}: {value!r} is not {what}. Nothing was applied")
    if not pattern.fullmatch(str(value)):
        raise SettingsError(f"{place}: {value!r} is not {what}. Nothing was applied")


def validate(variables):
    """The bootstrap variables (templated) that its templates render; SettingsError names the first bad one.

    Only the variables present are checked.
    """
    for name, (pattern, what) in SHAPES.items():
        value = variables.get(name)
        # The log host is empty while forwarding is off (the role asserts it is set when on).
        if value is not None and not (value == "" and name == "bootstrap_log_forwarding_host"):
            _check(name, value, pattern, what)
    for name, (pattern, what) in LIST_SHAPES.items():
        values = variables.get(name)
        if values is None:
            continue
        if not isinstance(values, list):
            raise SettingsError(f"{name}: a list is required. Nothing was applied")
        for index, value in enumerate(values):
            _check(name, value, pattern, what, f"{name}[{index}]")
    login_defs = variables.get("bootstrap_login_defs")
    if login_defs is not None:
        if not isinstance(login_defs, dict):
            raise SettingsError("bootstrap_login_defs: a dictionary is required. Nothing was applied")
        for key, value in login_defs.items():
            _check("bootstrap_login_defs", key, _LOGIN_DEFS_KEY, "a login.defs setting name (upper case)")
            _check(
                "bootstrap_login_defs",
                value,
                _LOGIN_DEFS_VALUE,
                "one word (letters, digits and . _ / : + -)",
                f"bootstrap_login_defs[{key!r}]",
            )
    rules = variables.get("bootstrap_auditd_extra_rules")
    if rules is not None:
        if not isinstance(rules, list):
            raise SettingsError("bootstrap_auditd_extra_rules: a list is required. Nothing was applied")
        for index, rule in enumerate(rules):
            _check(
                "bootstrap_auditd_extra_rules",
                rule,
                _AUDIT_RULE,
                "one audit rule (-a, -A, -w, -W or -d and its fields)",
                f"bootstrap_auditd_extra_rules[{index}]",
            )
